//! The node's status (administrators only): the serving list and each source (entries,
//! serial or version, last successful update, last error and the refusals counted per
//! guard), the compile stage, each upstream server's health, and the node itself. All of
//! it is [`crate::admin::Admin::status`], the reading `GET /v1/status` serves.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};

use super::reviews::when;
use super::{Common, St, ctx, flash, layout, page, to_login};
use crate::admin::status::{Status, UpstreamServer};
use crate::console::accounts::Role;
use crate::console::i18n::Lang;
use crate::feed::guard::Guard;
use crate::feed::state::ErrorRecord;
use crate::feed::status::SourceStatus;
use crate::upstream::health::State as Health;

/// `GET /status`
pub async fn show(State(c): St, headers: HeaderMap, Query(q): Query<Common>) -> Response {
    let ctx = ctx(&c, &headers, q.lang.as_deref()).await;
    let Some(s) = ctx.session.clone() else {
        return to_login();
    };
    if s.user.role != Role::Admin {
        return super::forbidden(&c, &ctx);
    }
    let l = ctx.lang;
    let status = c.admin.status().await;
    let body = html! {
        (flash(l, &q))
        p.help { (l.t("status_help")) }
        (serving(l, &status))
        (upstream(l, &status))
        @for source in &status.sources { (source_card(l, source)) }
        (node(l, &status))
    };
    page(
        &c,
        &ctx,
        &q,
        StatusCode::OK,
        layout(&ctx, l.t("status_title"), body),
    )
}

/// The serving list and the compile stage.
fn serving(l: Lang, st: &Status) -> Markup {
    let (sv, p) = (&st.serving, &st.pipeline);
    html! {
        section.card #serving aria-labelledby="serving-h" {
            h2 #serving-h { (l.t("status_serving")) }
            ul.stats {
                li { strong #serving-entries { (num(l, sv.entries)) } (l.t("status_entries")) }
                li { strong #serving-serial { (sv.serial) } (l.t("serial")) }
                li { strong { (when(sv.built_at_unix)) } (l.t("status_built")) }
                li { strong { (when(sv.loaded_at_unix)) } (l.t("status_loaded")) }
                li { strong { (p.installs) } (l.t("status_installs")) }
            }
            (refusals(l, &p.refused))
            @if let Some(e) = &p.last_error {
                (last_error(l, "compile-error", e))
            }
        }
    }
}

/// One source: what it is, what it yields, when it last changed, what was refused.
fn source_card(l: Lang, source: &SourceStatus) -> Markup {
    let s = &source.state;
    let id = format!("src-{}", source.name);
    let mut version = Vec::new();
    if let Some(serial) = s.serial {
        version.push(format!("{} {serial}", l.t("serial")));
    }
    if let Some(etag) = &s.etag {
        version.push(format!("ETag {etag}"));
    }
    if let Some(lm) = &s.last_modified {
        version.push(lm.clone());
    }
    if version.is_empty()
        && let Some(sha) = &s.sha256
    {
        version.push(format!("SHA-256 {}", sha.get(..12).unwrap_or(sha)));
    }
    html! {
        section.card id=(id) aria-labelledby={ (id) "-h" } {
            h2 id={ (id) "-h" } {
                (source.name) " "
                span.badge { (source.kind) }
                " "
                span.badge {
                    @match &source.category {
                        Some(c) => { (l.category(c)) }
                        None => { (l.t("allowlist")) }
                    }
                }
            }
            p { code { (source.origin) } }
            ul.stats {
                li {
                    strong id={ (id) "-entries" } {
                        @match s.entries { Some(n) => { (num(l, n)) } None => { "–" } }
                    }
                    (l.t("status_entries"))
                }
                li {
                    strong { @if version.is_empty() { "–" } @else { (version.join(" · ")) } }
                    (l.t("status_version"))
                }
                li {
                    strong { @match s.last_success_unix { Some(t) => { (when(t)) } None => { (l.t("status_never")) } } }
                    (l.t("status_last_success"))
                }
                li {
                    strong { @match s.last_check_unix { Some(t) => { (when(t)) } None => { (l.t("status_never")) } } }
                    (l.t("status_last_check"))
                }
                li { strong { (s.updates) } (l.t("status_updates")) }
                @if let Some(r) = s.rejected { li { strong { (num(l, r)) } (l.t("status_rejected_lines")) } }
            }
            (refusals(l, &s.refused))
            @if let Some(e) = &s.last_error {
                (last_error(l, &format!("{id}-error"), e))
            }
        }
    }
}

/// The refusals counted per guard ("none" when there are none).
fn refusals(l: Lang, counted: &BTreeMap<String, u64>) -> Markup {
    let shown: Vec<(Guard, u64)> = Guard::ALL
        .iter()
        .filter_map(|g| counted.get(g.as_str()).map(|n| (*g, *n)))
        .filter(|(_, n)| *n > 0)
        .collect();
    html! {
        p.refusals {
            strong { (l.t("status_refused")) ": " }
            @if shown.is_empty() { (l.t("status_none")) }
            @for (i, (g, n)) in shown.iter().enumerate() {
                @if i > 0 { ", " }
                span.badge.bad data-guard=(g.as_str()) { (guard_name(l, g.as_str())) " × " (n) }
            }
        }
    }
}

/// The last refusal: when, which guard, the guard's own message (escaped).
fn last_error(l: Lang, id: &str, e: &ErrorRecord) -> Markup {
    html! {
        p.msg.error id=(id) {
            strong { (l.t("status_last_error")) } " · " (when(e.at_unix)) " · "
            (guard_name(l, &e.guard)) ": " (e.message)
        }
    }
}

/// The upstream servers: reachable as `/readyz` decides, and each server's health.
fn upstream(l: Lang, st: &Status) -> Markup {
    let u = &st.upstream;
    html! {
        section.card #upstream aria-labelledby="upstream-h" {
            h2 #upstream-h {
                (l.t("status_upstream")) " "
                @if u.reachable {
                    span.badge.good #upstream-ready { (l.t("status_reachable")) }
                } @else {
                    span.badge.bad #upstream-ready { (l.t("status_unreachable")) }
                }
            }
            ul.plain {
                @for server in &u.servers { (upstream_server(l, server)) }
            }
        }
    }
}

fn upstream_server(l: Lang, s: &UpstreamServer) -> Markup {
    let h = &s.health;
    let (class, state) = match h.state {
        Health::Answering => ("badge good", l.t("status_answering")),
        Health::Failing => ("badge bad", l.t("status_failing")),
        Health::Unknown => ("badge", l.t("status_not_asked")),
    };
    html! {
        li.upstream-server {
            div {
                code { (s.server) } " " span class=(class) data-state=(state_name(h.state)) { (state) }
                @if let Some((ago_s, what)) = &h.last_failure {
                    br;
                    small { (l.t("status_last_failure")) " " (ago(l, *ago_s)) ": " (what) }
                }
            }
            ul.stats {
                li {
                    strong { @match h.last_answer_secs { Some(a) => { (ago(l, a)) } None => { (l.t("status_never")) } } }
                    (l.t("status_last_answer"))
                }
                li { strong.recent-failures { (h.recent_failures) } (l.t("status_recent_failures")) }
            }
        }
    }
}

fn state_name(s: Health) -> &'static str {
    match s {
        Health::Answering => "answering",
        Health::Failing => "failing",
        Health::Unknown => "unknown",
    }
}

/// The node: version, uptime, id, profiles, queries, listeners.
fn node(l: Lang, st: &Status) -> Markup {
    let n = &st.node;
    let q = &n.queries;
    html! {
        section.card #node aria-labelledby="node-h" {
            h2 #node-h { (l.t("status_node")) }
            ul.stats {
                li { strong { (n.version) } (l.t("status_version_sw")) }
                li { strong { (duration(l, n.uptime_secs)) } (l.t("status_uptime")) }
                li { strong { (n.node_id.as_deref().unwrap_or("–")) } (l.t("status_node_id")) }
                li {
                    strong #node-profiles { @match n.profiles { Some(p) => { (num(l, p)) } None => { "–" } } }
                    (l.t("status_profiles"))
                }
            }
            h3 { (l.t("status_queries")) }
            ul.stats {
                li { strong #q-received { (num(l, q.received)) } (l.t("status_q_received")) }
                li { strong #q-answered { (num(l, q.answered)) } (l.t("status_q_answered")) }
                li { strong #q-blocked { (num(l, q.blocked)) } (l.t("status_q_blocked")) }
                li { strong { (num(l, q.servfail)) } (l.t("status_q_servfail")) }
                li { strong { (num(l, q.refused)) } (l.t("status_q_refused")) }
            }
            h3 { (l.t("status_listeners")) }
            ul.plain {
                @for (kind, addr) in &n.listeners {
                    li { span.badge { (kind) } code { (addr) } }
                }
            }
            p.help { (l.t("status_zone")) }
        }
    }
}

/// A guard's name for people.
fn guard_name(l: Lang, guard: &str) -> &'static str {
    match guard {
        "download" => l.t("guard_download"),
        "signature" => l.t("guard_signature"),
        "unreadable" => l.t("guard_unreadable"),
        "rejects" => l.t("guard_rejects"),
        "shrink" => l.t("guard_shrink"),
        "compile" => l.t("guard_compile"),
        _ => l.t("guard_other"),
    }
}

/// `1.234.567` (vi) or `1,234,567` (en).
fn num(l: Lang, n: u64) -> String {
    let sep = match l {
        Lang::Vi => '.',
        Lang::En => ',',
    };
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// `3 phút` / `3 min`: the largest whole unit.
fn duration(l: Lang, secs: u64) -> String {
    let (n, unit) = match secs {
        0..120 => (secs, "unit_s"),
        120..7200 => (secs / 60, "unit_m"),
        7200..172_800 => (secs / 3600, "unit_h"),
        _ => (secs / 86_400, "unit_d"),
    };
    format!("{n} {}", l.t(unit))
}

/// `3 phút trước` / `3 min ago`.
fn ago(l: Lang, secs: u64) -> String {
    format!("{} {}", duration(l, secs), l.t("ago"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_ages_read_well() {
        assert_eq!(num(Lang::Vi, 1_234_567), "1.234.567");
        assert_eq!(num(Lang::En, 1_234_567), "1,234,567");
        assert_eq!(num(Lang::En, 999), "999");
        assert_eq!(num(Lang::En, 1000), "1,000");
        assert_eq!(ago(Lang::En, 30), "30 s ago");
        assert_eq!(ago(Lang::Vi, 600), "10 phút trước");
        assert_eq!(duration(Lang::En, 3 * 86_400), "3 d");
    }
}
