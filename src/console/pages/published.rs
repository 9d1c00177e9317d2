//! What was published and when (reviewers and administrators, on a central): every
//! decision of the published store's audit trail, newest first, a page at a time, with
//! its list, serial, reviewer and note; an active one can be reverted, through the review
//! API's own path ([`review::revert_report`], behind `POST /v1/reports/{id}/revert`).

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::reviews::{failed_key, when};
use super::{
    Common, PAGE, St, actor, back, csrf_field, ctx, field, flash, layout, page, posted, to_login,
};
use crate::admin::review;
use crate::console::accounts::Role;
use crate::publish::ALLOW_LIST;

/// `?before=` (a decision id: the page holds older ones) and the common parameters.
#[derive(Deserialize, Default)]
pub struct PublishedQuery {
    before: Option<i64>,
    #[serde(flatten)]
    common: Common,
}

/// `GET /published`
pub async fn show(State(c): St, headers: HeaderMap, Query(q): Query<PublishedQuery>) -> Response {
    let ctx = ctx(&c, &headers, q.common.lang.as_deref()).await;
    let Some(s) = ctx.session.clone() else {
        return to_login();
    };
    if s.user.role == Role::Owner {
        return super::forbidden(&c, &ctx);
    }
    let l = ctx.lang;
    let Some(store) = c.admin.published_store() else {
        let body = html! { p.card { (l.t("not_central")) } };
        return page(
            &c,
            &ctx,
            &q.common,
            StatusCode::OK,
            layout(&ctx, l.t("published_title"), body),
        );
    };
    let before = q.before;
    let read = tokio::task::spawn_blocking(move || store.recent_decisions(before, PAGE)).await;
    let decisions = match read {
        Ok(Ok(d)) => d,
        other => {
            tracing::error!(?other, "console: published decisions not read");
            return super::error_page(&c, &ctx, StatusCode::SERVICE_UNAVAILABLE, "err_store", "");
        }
    };
    let body = html! {
        (flash(l, &q.common))
        p.help { (l.t("published_help")) }
        @if decisions.is_empty() { p.card { (l.t("no_decisions")) } }
        @for d in &decisions {
            section.card aria-labelledby={ "d-" (d.id) } {
                h2 #{ "d-" (d.id) } { code { (d.name) } }
                ul.stats {
                    li {
                        strong {
                            @match (d.decision.as_str(), d.list.as_deref()) {
                                ("accept", Some(ALLOW_LIST)) => { (l.t("allowlist")) }
                                ("accept", Some(list)) => { (l.category(list)) }
                                _ => { (l.t("status_rejected")) }
                            }
                        }
                        (l.t("list"))
                    }
                    li { strong { (when(d.at)) } (l.t("decided_at")) }
                    li { strong { (d.actor) } (l.t("decided_by")) }
                    @if let Some(serial) = d.serial { li { strong { (serial) } (l.t("serial")) } }
                }
                @if let Some(note) = &d.note { p { (l.t("reason")) ": " (note) } }
                @if let Some(at) = d.reverted_at {
                    p.msg.error {
                        (l.t("reverted")) " · " (when(at))
                        @if let Some(by) = &d.reverted_by { " · " (by) }
                        @if let Some(n) = &d.revert_note { " · " (n) }
                    }
                } @else {
                    form method="post" action={ "/published/" (d.report_id) "/revert" } {
                        (csrf_field(&s))
                        label for={ "rv-" (d.id) } { (l.t("revert_reason")) }
                        input #{ "rv-" (d.id) } type="text" name="note" maxlength="500";
                        button.secondary type="submit" { (l.t("revert")) }
                    }
                }
            }
        }
        @if q.before.is_some() || decisions.len() == PAGE {
            nav.pager {
                @if q.before.is_some() { a href="/published" { (l.t("newest")) } } @else { span {} }
                @if decisions.len() == PAGE {
                    @if let Some(last) = decisions.last() {
                        a href={ "/published?before=" (last.id) } { (l.t("older")) }
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
        layout(&ctx, l.t("published_title"), body),
    )
}

/// `POST /published/{report}/revert`: reverts the report's active decision.
pub async fn revert(
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
    let (who, note) = (actor(&s), field(&form, "note").map(str::to_owned));
    let api = c.admin.review();
    let done = review::on_reports(&api, move |api, reports| {
        review::revert_report(api, reports, id, &who, note)
    })
    .await;
    match done {
        Ok(_) => back("/published", "reverted_ok", "ok"),
        Err(f) => back("/published", failed_key(&f), "error"),
    }
}
