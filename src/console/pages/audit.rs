//! The profile store's audit log (administrators only): who changed which profile,
//! identity or subscriber line, when, with the entity before and after; newest first, a
//! page at a time by keyset on the entry id (`?before=`), so the thousandth page of a
//! long log costs what the first does. Every value is shown escaped (maud), the typed
//! names in the JSON included. The accounts store keeps no log of its own changes, and
//! the page says so rather than showing one.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::reviews::when;
use super::{Common, PAGE, St, ctx, flash, layout, on_profiles, page, to_login};
use crate::console::accounts::Role;
use crate::console::i18n::Lang;
use crate::profiles::AuditEntry;

/// `?before=` (an entry id: the page holds older ones) and the common parameters.
#[derive(Deserialize, Default)]
pub struct AuditQuery {
    before: Option<String>,
    #[serde(flatten)]
    common: Common,
}

/// `GET /audit`
pub async fn show(State(c): St, headers: HeaderMap, Query(q): Query<AuditQuery>) -> Response {
    let ctx = ctx(&c, &headers, q.common.lang.as_deref()).await;
    let Some(s) = ctx.session.clone() else {
        return to_login();
    };
    if s.user.role != Role::Admin {
        return super::forbidden(&c, &ctx);
    }
    let l = ctx.lang;
    let before = match q.before.as_deref().map(str::parse::<i64>) {
        None => None,
        Some(Ok(id)) if id > 0 => Some(id),
        Some(_) => {
            let given = q.before.as_deref().unwrap_or_default();
            return super::error_page(&c, &ctx, StatusCode::BAD_REQUEST, "err_invalid", given);
        }
    };
    let entries = match on_profiles(&c, move |p| p.audit_before(before, PAGE)).await {
        Ok(e) => e,
        Err(error) => {
            tracing::error!(%error, "console: audit log not read");
            return super::error_page(&c, &ctx, StatusCode::SERVICE_UNAVAILABLE, "err_store", "");
        }
    };
    let body = html! {
        (flash(l, &q.common))
        p.help { (l.t("audit_help")) }
        p.card #accounts-log { (l.t("audit_accounts_none")) }
        @if entries.is_empty() { p.card { (l.t("audit_empty")) } }
        ol.plain.audit {
            @for e in &entries { (entry(l, e)) }
        }
        @if before.is_some() || entries.len() == PAGE {
            nav.pager {
                @if before.is_some() { a rel="first" href="/audit" { (l.t("newest")) } } @else { span {} }
                @if entries.len() == PAGE {
                    @if let Some(last) = entries.last() {
                        a rel="next" href={ "/audit?before=" (last.id) } { (l.t("older")) }
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
        layout(&ctx, l.t("audit_title"), body),
    )
}

/// One entry: when, who, what was done to what, and the entity before and after.
fn entry(l: Lang, e: &AuditEntry) -> Markup {
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    html! {
        li.card.audit-entry id={ "a-" (e.id) } {
            div {
                strong.actor { (e.actor) } " · "
                span.badge.action { (action_name(l, &e.action)) } " "
                code.entity { (e.entity) }
                br;
                small { (when(e.at)) }
            }
            @if e.before.is_some() || e.after.is_some() {
                details {
                    summary { (l.t("audit_details")) }
                    @if let Some(b) = &e.before { h3 { (l.t("audit_before")) } pre.json { (pretty(b)) } }
                    @if let Some(a) = &e.after { h3 { (l.t("audit_after")) } pre.json { (pretty(a)) } }
                }
            }
        }
    }
}

fn action_name(l: Lang, action: &str) -> String {
    let key = match action {
        "create" => "audit_create",
        "update" => "audit_update",
        "delete" => "audit_delete",
        "bulk" => "audit_bulk",
        other => return other.to_owned(),
    };
    l.t(key).to_owned()
}
