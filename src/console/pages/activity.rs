//! A profile's activity as a parent sees it on the dashboard: today's and this week's
//! queries, blocked answers and bypass attempts, and what was blocked by category and by
//! service. Counts only ([`crate::activity`]): the console never lists a child's queries.

use maud::{Markup, html};

use crate::activity::{Counts, Snapshot};
use crate::console::i18n::Lang;
use crate::lists::manifest::Manifest;
use crate::services::Catalog;

/// One line of the breakdown: what was blocked, today's count, this week's.
struct Row {
    label: String,
    today: u64,
    week: u64,
}

/// The breakdown's lines, most blocked this week first: list categories (translated),
/// services (by their catalog names), the profile's own deny list, unsafe search engines
/// and each kind of bypass attempt. The week holds every key today has.
fn rows(l: Lang, s: &Snapshot, manifest: &Manifest, catalog: &Catalog) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut add = |label: String, today: u64, week: u64| {
        if week > 0 {
            rows.push(Row { label, today, week });
        }
    };
    let of = |pairs: &[(u32, u64)], bit: u32| {
        pairs.iter().find(|(b, _)| *b == bit).map_or(0, |(_, n)| *n)
    };
    for &(bit, week) in &s.week.categories {
        let name = manifest
            .category_name(bit)
            .map_or_else(|| format!("#{bit}"), |c| l.category(c));
        add(name, of(&s.today.categories, bit), week);
    }
    for (id, week) in &s.week.services {
        let name = catalog
            .get(id)
            .map_or_else(|| id.clone(), |svc| l.service(svc));
        let today = s
            .today
            .services
            .iter()
            .find(|(t, _)| t == id)
            .map_or(0, |(_, n)| *n);
        add(name, today, *week);
    }
    add(
        l.t("activity_own_list").to_owned(),
        s.today.own_list,
        s.week.own_list,
    );
    add(
        l.t("activity_unsafe_search").to_owned(),
        s.today.unsafe_search,
        s.week.unsafe_search,
    );
    for &(kind, week) in &s.week.bypass {
        let today = s
            .today
            .bypass
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n);
        add(l.t(&format!("bypass_{kind}")).to_owned(), today, week);
    }
    rows.sort_by(|a, b| b.week.cmp(&a.week).then_with(|| a.label.cmp(&b.label)));
    rows
}

fn bypass_total(c: &Counts) -> u64 {
    c.bypass.iter().map(|(_, n)| n).sum()
}

/// The activity block of profile `id`'s dashboard card.
pub fn block(l: Lang, id: &str, s: &Snapshot, manifest: &Manifest, catalog: &Catalog) -> Markup {
    let rows = rows(l, s, manifest, catalog);
    let caption = format!("act-{id}");
    html! {
        div.activity {
            table.counts aria-labelledby=(caption) {
                caption #(caption) { (l.t("activity")) }
                thead { tr { td {} th scope="col" { (l.t("today")) } th scope="col" { (l.t("this_week")) } } }
                tbody {
                    tr { th scope="row" { (l.t("activity_queries")) } td { (s.today.queries) } td { (s.week.queries) } }
                    tr { th scope="row" { (l.t("activity_blocked")) } td { (s.today.blocked) } td { (s.week.blocked) } }
                    tr { th scope="row" { (l.t("activity_bypass")) } td { (bypass_total(&s.today)) } td { (bypass_total(&s.week)) } }
                }
            }
            @if !rows.is_empty() {
                details {
                    summary { (l.t("activity_by_kind")) }
                    table.counts {
                        thead { tr { th scope="col" { (l.t("activity_what")) } th scope="col" { (l.t("today")) } th scope="col" { (l.t("this_week")) } } }
                        tbody {
                            @for r in &rows {
                                tr { th scope="row" { (r.label) } td { (r.today) } td { (r.week) } }
                            }
                        }
                    }
                }
            }
        }
    }
}
