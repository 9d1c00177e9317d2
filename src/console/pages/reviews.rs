//! The reviewer's queue (reviewers and administrators): reports of harmful sites from
//! the report store, open ones first, a page at a time, each with accept / reject and a
//! reason, decided by the review API's own path ([`review::decide_report`], the one behind
//! `POST /v1/reports/{id}/decision`): on a central an accept publishes the name.

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::{
    Common, PAGE, St, actor, back, csrf_field, ctx, field, flash, layout, page, posted, to_login,
};
use crate::admin::reports::{ListQuery, Status};
use crate::admin::review::{self, Decision, Failed, Verdict};
use crate::console::accounts::Role;
use crate::console::i18n::Lang;

/// Reviewers read dates in Vietnam's time (reports belong to no profile).
const REVIEW_TZ: &str = "Asia/Ho_Chi_Minh";

/// `?status=`, `?after=` and the common parameters.
#[derive(Deserialize, Default)]
pub struct ReviewQuery {
    status: Option<String>,
    after: Option<i64>,
    #[serde(flatten)]
    common: Common,
}

fn status_name(l: Lang, s: Status) -> &'static str {
    match s {
        Status::Open => l.t("status_open"),
        Status::Accepted => l.t("status_accepted"),
        Status::Rejected => l.t("status_rejected"),
    }
}

/// A date and time as reviewers read them.
pub fn when(unix: u64) -> String {
    let tz = jiff::tz::TimeZone::get(REVIEW_TZ).unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::from_second(unix as i64)
        .map(|t| {
            t.to_zoned_datetime(tz)
                .strftime("%H:%M %d/%m/%Y")
                .to_string()
        })
        .unwrap_or_default()
}

/// `GET /reviews`
pub async fn show(State(c): St, headers: HeaderMap, Query(q): Query<ReviewQuery>) -> Response {
    let ctx = ctx(&c, &headers, q.common.lang.as_deref()).await;
    let Some(s) = ctx.session.clone() else {
        return to_login();
    };
    if s.user.role == Role::Owner {
        return super::forbidden(&c, &ctx);
    }
    let status: Option<Status> = match q.status.as_deref() {
        Some("all") => None,
        Some("accepted") => Some(Status::Accepted),
        Some("rejected") => Some(Status::Rejected),
        _ => Some(Status::Open),
    };
    let query = ListQuery {
        status,
        limit: Some(PAGE),
        after_id: q.after,
    };
    let store = c.admin.reports();
    let listed = tokio::task::spawn_blocking(move || {
        store
            .lock()
            .map_err(|_| "report store poisoned".to_owned())
            .and_then(|s| s.list(&query).map_err(|e| e.to_string()))
    })
    .await;
    let reports = match listed {
        Ok(Ok(r)) => r,
        other => {
            tracing::error!(?other, "console: reports not read");
            return super::error_page(&c, &ctx, StatusCode::SERVICE_UNAVAILABLE, "err_store", "");
        }
    };
    let l = ctx.lang;
    // The tab's key as the page links carry it: one of four, never the raw input.
    let filter = match status {
        None => "all",
        Some(Status::Accepted) => "accepted",
        Some(Status::Rejected) => "rejected",
        Some(Status::Open) => "open",
    };
    let body = html! {
        (flash(l, &q.common))
        nav.tabs aria-label=(l.t("status")) {
            @for (key, label) in [("open", "status_open"), ("accepted", "status_accepted"), ("rejected", "status_rejected"), ("all", "filter_all")] {
                @if filter == key { strong { (l.t(label)) } } @else { a href={ "/reviews?status=" (key) } { (l.t(label)) } }
            }
        }
        @if reports.is_empty() { p.card { (l.t("no_reports")) } }
        @for r in &reports {
            section.card aria-labelledby={ "r-" (r.id) } {
                h2 #{ "r-" (r.id) } { code { (r.name) } }
                ul.stats {
                    li { strong { (l.category(&r.category)) } (l.t("category")) }
                    li { strong { (r.count) } (l.t("reports_count")) }
                    li { strong { (when(r.last_seen)) } (l.t("last_seen")) }
                    li { strong { (status_name(l, r.status)) } (l.t("status")) }
                }
                @if !r.notes.is_empty() {
                    details { summary { (l.t("notes")) " (" (r.notes.len()) ")" } ul { @for n in &r.notes { li { (n) } } } }
                }
                @if r.status == Status::Open {
                    form method="post" action={ "/reviews/" (r.id) } {
                        (csrf_field(&s))
                        label for={ "why-" (r.id) } { (l.t("reason")) }
                        input #{ "why-" (r.id) } type="text" name="note" maxlength="500";
                        div.row {
                            button type="submit" name="decision" value="accepted" { (l.t("accept")) }
                            button.secondary type="submit" name="decision" value="rejected" { (l.t("reject")) }
                        }
                    }
                }
            }
        }
        @if q.after.is_some() || reports.len() == PAGE {
            nav.pager {
                @if q.after.is_some() { a href={ "/reviews?status=" (filter) } { (l.t("newest")) } } @else { span {} }
                @if reports.len() == PAGE {
                    @if let Some(last) = reports.last() {
                        a href={ "/reviews?status=" (filter) "&after=" (last.id) } { (l.t("next")) }
                    }
                }
            }
        }
    };
    page(
        &c,
        &ctx,
        &q.common,
        StatusCode::OK,
        layout(&ctx, l.t("reviews_title"), body),
    )
}

/// `POST /reviews/{id}`: accept or reject, with the reason.
pub async fn decide(
    State(c): St,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let ctx = ctx(&c, &headers, None).await;
    let s = match posted(&c, &ctx, &form) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if s.user.role == Role::Owner {
        return super::forbidden(&c, &ctx);
    }
    let verdict = match field(&form, "decision") {
        Some("accepted") => Verdict::Accept,
        Some("rejected") => Verdict::Reject,
        _ => return back("/reviews", "err_invalid", "error"),
    };
    let decision = Decision {
        verdict,
        category: None,
        note: field(&form, "note").map(str::to_owned),
        actor: actor(&s),
    };
    let api = c.admin.review();
    let done = review::on_reports(&api, move |api, reports| {
        review::decide_report(api, reports, id, decision)
    })
    .await;
    match done {
        Ok((_, Some(record))) if record.list.is_some() => back("/reviews", "published_ok", "ok"),
        Ok(_) => back("/reviews", "saved", "ok"),
        Err(f) => back("/reviews", failed_key(&f), "error"),
    }
}

/// The message for a refused decision or revert (the detail is in the server's log).
pub fn failed_key(f: &Failed) -> &'static str {
    match f.status {
        StatusCode::CONFLICT => "err_decided",
        StatusCode::NOT_FOUND => "err_not_found",
        StatusCode::BAD_REQUEST => "err_invalid",
        _ => "err_store",
    }
}
