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
use crate::admin::reports::{Kind, ListQuery, SortBy, Status};
use crate::admin::review::{self, Decision, Failed, Verdict};
use crate::console::accounts::Role;
use crate::console::i18n::Lang;
use crate::publish::ALLOW_LIST;

/// Reviewers read dates in Vietnam's time (reports belong to no profile).
const REVIEW_TZ: &str = "Asia/Ho_Chi_Minh";

/// `?status=`, `?sort=` (`count`: most reported first; `last_seen`: most recently
/// reported first; else newest report first), `?category=` (one of the lists'
/// categories; empty for all), `?after=` (newest first: keyset on the id) or `?page=`
/// (the sorted orders), and the common parameters.
#[derive(Deserialize, Default)]
pub struct ReviewQuery {
    status: Option<String>,
    sort: Option<String>,
    category: Option<String>,
    after: Option<i64>,
    #[serde(default)]
    page: usize,
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
    let sort = match q.sort.as_deref() {
        Some("count") => Some(SortBy::Count),
        Some("last_seen") => Some(SortBy::LastSeen),
        _ => None,
    };
    let categories = c.admin.categories_now();
    // One of the lists' categories, never free text: an unknown one is refused (the page
    // links and the select only ever send a listed one).
    let category = match q.category.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(wanted) => match categories.iter().find(|c| c.as_str() == wanted) {
            Some(known) => Some(known.clone()),
            None => {
                return super::error_page(
                    &c,
                    &ctx,
                    StatusCode::BAD_REQUEST,
                    "err_category",
                    wanted,
                );
            }
        },
    };
    let (after, page_no, wanted) = (q.after, q.page, category.clone());
    let store = c.admin.reports();
    let listed = tokio::task::spawn_blocking(move || {
        let s = store
            .lock()
            .map_err(|_| "report store poisoned".to_owned())?;
        match sort {
            None => s.list(&ListQuery {
                status,
                limit: Some(PAGE),
                after_id: after,
                category: wanted,
            }),
            Some(by) => s.list_sorted(
                status,
                wanted.as_deref(),
                by,
                Some(PAGE),
                page_no.saturating_mul(PAGE),
            ),
        }
        .map_err(|e| e.to_string())
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
    let sort_key = match sort {
        Some(SortBy::Count) => "count",
        Some(SortBy::LastSeen) => "last_seen",
        _ => "newest",
    };
    // The category as the links carry it (a listed one, encoded all the same).
    let in_category = category
        .as_deref()
        .map(|c| format!("&category={}", super::query_value(c)))
        .unwrap_or_default();
    let here = format!("/reviews?status={filter}&sort={sort_key}{in_category}");
    // Newest first pages by id (`after`); the sorted orders by page number.
    let (previous, next) = match sort {
        None => (
            q.after.map(|_| here.clone()),
            (reports.len() == PAGE)
                .then(|| reports.last().map(|r| format!("{here}&after={}", r.id)))
                .flatten(),
        ),
        Some(_) => (
            (q.page > 0).then(|| format!("{here}&page={}", q.page - 1)),
            (reports.len() == PAGE).then(|| format!("{here}&page={}", q.page + 1)),
        ),
    };
    // Where a decision returns to: this very page of this queue.
    let this_page = match (sort, q.after, q.page) {
        (None, Some(a), _) => format!("{here}&after={a}"),
        (Some(_), _, p) if p > 0 => format!("{here}&page={p}"),
        _ => here.clone(),
    };
    let body = html! {
        (flash(l, &q.common))
        nav.tabs aria-label=(l.t("status")) {
            @for (key, label) in [("open", "status_open"), ("accepted", "status_accepted"), ("rejected", "status_rejected"), ("all", "filter_all")] {
                @if filter == key { strong { (l.t(label)) } } @else { a href={ "/reviews?status=" (key) "&sort=" (sort_key) (in_category) } { (l.t(label)) } }
            }
        }
        nav.tabs aria-label=(l.t("sort_by")) {
            @for (key, label) in [("newest", "sort_newest"), ("count", "sort_count"), ("last_seen", "sort_last_seen")] {
                @if sort_key == key { strong { (l.t(label)) } } @else { a href={ "/reviews?status=" (filter) "&sort=" (key) (in_category) } { (l.t(label)) } }
            }
        }
        form.filter method="get" action="/reviews" {
            input type="hidden" name="status" value=(filter);
            input type="hidden" name="sort" value=(sort_key);
            div.row {
                div {
                    label for="f-category" { (l.t("category")) }
                    select #f-category name="category" {
                        option value="" selected[category.is_none()] { (l.t("all_categories")) }
                        @for cat in &categories { option value=(cat) selected[category.as_ref() == Some(cat)] { (l.category(cat)) } }
                    }
                }
                button type="submit" { (l.t("filter")) }
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
                        input type="hidden" name="back" value=(this_page);
                        label for={ "why-" (r.id) } { (l.t("reason")) }
                        input #{ "why-" (r.id) } type="text" name="note" maxlength="500";
                        @if r.kind != Kind::Mistake {
                            // Where an accept publishes: the report's category unless the
                            // reviewer picks another (or the allowlist).
                            label for={ "cat-" (r.id) } { (l.t("publish_to")) }
                            select #{ "cat-" (r.id) } name="category" {
                                @if !categories.contains(&r.category) { option value=(r.category) selected { (l.category(&r.category)) } }
                                @for cat in &categories { option value=(cat) selected[*cat == r.category] { (l.category(cat)) } }
                                option value=(ALLOW_LIST) { (l.t("allowlist")) }
                            }
                        }
                        div.row {
                            button type="submit" name="decision" value="accepted" { (l.t("accept")) }
                            button.secondary type="submit" name="decision" value="rejected" { (l.t("reject")) }
                        }
                    }
                }
            }
        }
        @if previous.is_some() || next.is_some() {
            nav.pager aria-label=(l.t("pages")) {
                @if let Some(p) = &previous { a rel="prev" href=(p) { (l.t("previous")) } } @else { span {} }
                @if let Some(n) = &next { a rel="next" href=(n) { (l.t("next")) } }
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
    let to = return_to(field(&form, "back"));
    let verdict = match field(&form, "decision") {
        Some("accepted") => Verdict::Accept,
        Some("rejected") => Verdict::Reject,
        _ => return back(to, "err_invalid", "error"),
    };
    let decision = Decision {
        verdict,
        category: field(&form, "category")
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
        note: field(&form, "note").map(str::to_owned),
        actor: actor(&s),
    };
    let api = c.admin.review();
    let done = review::on_reports(&api, move |api, reports| {
        review::decide_report(api, reports, id, decision)
    })
    .await;
    match done {
        Ok((_, Some(record))) if record.list.is_some() => back(to, "published_ok", "ok"),
        Ok(_) => back(to, "saved", "ok"),
        Err(f) => back(to, failed_key(&f), "error"),
    }
}

/// The queue page a decision goes back to: the form's `back` when it is a page of this
/// queue (`/reviews?...`, no other path or host), else the queue's first page.
fn return_to(back: Option<&str>) -> &str {
    match back {
        Some(b)
            if b.strip_prefix("/reviews?")
                .is_some_and(|q| q.bytes().all(|c| c.is_ascii_graphic())) =>
        {
            b
        }
        _ => "/reviews",
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

#[cfg(test)]
mod tests {
    use super::return_to;

    #[test]
    fn a_decision_returns_to_its_queue_page_only() {
        let page = "/reviews?status=open&sort=count&category=gambling&page=2";
        assert_eq!(return_to(Some(page)), page);
        for elsewhere in [
            None,
            Some(""),
            Some("https://evil.example/reviews?x"),
            Some("//evil.example/reviews?x"),
            Some("/reviewsx?status=open"),
            Some("/profiles/p1"),
            Some("/reviews?status=open\r\nSet-Cookie: x=1"),
        ] {
            assert_eq!(return_to(elsewhere), "/reviews", "{elsewhere:?}");
        }
    }
}
