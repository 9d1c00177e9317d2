//! The dashboard: the profiles this account may see (an owner's own, every profile for an
//! administrator, a page at a time), each with counts the stores hold (devices, blocked
//! categories and services, unblocks in force) and its activity today and this week
//! ([`super::activity`]); never a list of a child's queries.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::{
    Common, PAGE, St, actor, back, csrf_field, ctx, field, flash, layout, on_profiles, page,
    posted, to_login,
};
use crate::console::accounts::Role;
use crate::profiles::{PageCursor, Profile, ProfileError, ProfileSpec};

/// The page: `?after=` / `?before=` (a profile id: keyset paging, over every stored
/// profile for an administrator, over the ids an owner owns for an owner), and the
/// common parameters.
#[derive(Deserialize, Default)]
pub struct DashQuery {
    after: Option<String>,
    before: Option<String>,
    #[serde(flatten)]
    common: Common,
}

/// One profile's card.
struct Card {
    profile: Profile,
    devices: usize,
    unblocks: usize,
}

/// Where the page links go: previous and next, as query strings.
#[derive(Default)]
struct Pager {
    previous: Option<String>,
    next: Option<String>,
}

/// The page `?after=` / `?before=` ask for.
fn cursor<'a>(after: &'a Option<String>, before: &'a Option<String>) -> PageCursor<'a> {
    match (after, before) {
        (Some(a), _) => PageCursor::After(a),
        (None, Some(b)) => PageCursor::Before(b),
        (None, None) => PageCursor::First,
    }
}

/// `GET /`
pub async fn show(State(c): St, headers: HeaderMap, Query(q): Query<DashQuery>) -> Response {
    let ctx = ctx(&c, &headers, q.common.lang.as_deref()).await;
    let Some(s) = ctx.session.clone() else {
        return to_login();
    };
    if s.user.role == Role::Reviewer {
        return Redirect::to("/reviews").into_response();
    }
    let admin = s.user.role == Role::Admin;
    // An owner's page of their own ids, asked of the accounts database (a keyset walk of
    // its index): the session does not carry them, a school may own thousands.
    let owned = if admin {
        None
    } else {
        let (uid, after, before) = (s.user.id, q.after.clone(), q.before.clone());
        let page = c
            .on_accounts(move |a| a.owned_page(uid, cursor(&after, &before), PAGE))
            .await;
        match page {
            Ok(page) => Some(page),
            Err(e) => {
                tracing::error!(error = %e, "console: owned profiles not read");
                return super::error_page(
                    &c,
                    &ctx,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "err_store",
                    "",
                );
            }
        }
    };
    let (after, before) = (q.after.clone(), q.before.clone());
    let listed = on_profiles(&c, move |store| {
        // An administrator's page of every profile, read from the store a page at a time;
        // an owner's page of their own ids, and only those profiles read.
        let (profiles, pager) = if admin {
            let page = store.page(cursor(&after, &before), PAGE)?;
            let pager = Pager {
                previous: page
                    .previous
                    .map(|id| format!("before={}", super::query_value(&id))),
                next: page
                    .next
                    .map(|id| format!("after={}", super::query_value(&id))),
            };
            (page.profiles, pager)
        } else {
            let owned = owned.unwrap_or_default();
            let pager = Pager {
                previous: owned
                    .previous
                    .map(|id| format!("before={}", super::query_value(&id))),
                next: owned
                    .next
                    .map(|id| format!("after={}", super::query_value(&id))),
            };
            (
                owned
                    .ids
                    .iter()
                    .filter_map(|id| store.get(id).ok())
                    .collect(),
                pager,
            )
        };
        let mut cards = Vec::with_capacity(profiles.len());
        for p in profiles {
            let devices = if p.read_only {
                p.clients.len()
            } else {
                store.identities(&p.id).map(|i| i.len()).unwrap_or(0)
            };
            cards.push(Card {
                profile: p,
                devices,
                unblocks: 0,
            });
        }
        Ok((cards, pager))
    })
    .await;
    let (mut cards, pager) = match listed {
        Ok(x) => x,
        Err(e @ ProfileError::Invalid { .. }) => {
            return super::error_page(
                &c,
                &ctx,
                StatusCode::BAD_REQUEST,
                "err_invalid",
                &e.to_string(),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "console: profiles not read");
            return super::error_page(&c, &ctx, StatusCode::SERVICE_UNAVAILABLE, "err_store", "");
        }
    };
    if let Some(ex) = c.admin.exceptions_api() {
        for card in &mut cards {
            card.unblocks = ex.store.list(&card.profile.id).len();
        }
    }
    let l = ctx.lang;
    let all_categories = c.admin.categories_now();
    let (list, catalog) = (
        c.admin.lists.current(),
        c.admin.config.load().policy.services.clone(),
    );
    let now = crate::clock::now_unix() as i64;
    let body = html! {
        (flash(l, &q.common))
        @if cards.is_empty() { p.card { (l.t("no_profiles")) } }
        div.grid.three {
            @for card in &cards {
                @let p = &card.profile;
                section.card.profile-card aria-labelledby={ "p-" (p.id) } {
                    h2 #{ "p-" (p.id) } { a href={ "/profiles/" (p.id) } { (super::profile_name(l, p)) } }
                    @if p.read_only { p.help { (l.t("read_only")) } }
                    ul.stats {
                        li { strong { (card.devices) } (l.t("devices")) }
                        li { strong { (p.spec.categories.as_ref().map_or(all_categories.len(), Vec::len)) } (l.t("categories_blocked")) }
                        li { strong { (p.spec.services.len()) } (l.t("services_blocked")) }
                        li { strong { (card.unblocks) } (l.t("unblocks_active")) }
                    }
                    (super::activity::block(l, &p.id, &c.admin.metrics.activity.snapshot(&p.id, now), list.manifest(), &catalog))
                    a.button href={ "/profiles/" (p.id) } { (l.t("open")) }
                }
            }
        }
        @if pager.previous.is_some() || pager.next.is_some() {
            nav.pager aria-label=(l.t("pages")) {
                @if let Some(p) = &pager.previous { a rel="prev" href={ "/?" (p) } { (l.t("previous")) } } @else { span {} }
                @if let Some(n) = &pager.next { a rel="next" href={ "/?" (n) } { (l.t("next")) } }
            }
        }
        section.card aria-labelledby="new-profile" {
            h2 #new-profile { (l.t("new_profile")) }
            form method="post" action="/profiles" {
                (csrf_field(&s))
                div.row {
                    div {
                        label for="pname" { (l.t("profile_name")) }
                        input #pname type="text" name="name" required maxlength="64";
                    }
                    button type="submit" { (l.t("create")) }
                }
            }
        }
    };
    page(
        &c,
        &ctx,
        &q.common,
        StatusCode::OK,
        layout(&ctx, l.t("dashboard_title"), body),
    )
}

/// `POST /profiles`: a new profile (every category blocked); an owner owns it.
pub async fn create(
    State(c): St,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let ctx = ctx(&c, &headers, None).await;
    let s = match posted(&c, &ctx, &form) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if s.user.role == Role::Reviewer {
        return super::forbidden(&c, &ctx);
    }
    let spec = ProfileSpec {
        name: field(&form, "name").unwrap_or("").to_owned(),
        ..ProfileSpec::default()
    };
    let who = actor(&s);
    let created = on_profiles(&c, move |store| store.create(&spec, &who)).await;
    match created {
        Ok(p) => {
            if s.user.role == Role::Owner {
                let (uid, pid) = (s.user.id, p.id.clone());
                if let Err(e) = c.on_accounts(move |a| a.assign(uid, &pid)).await {
                    tracing::error!(error = %e, "console: new profile not assigned");
                    return back("/", "err_store", "error");
                }
            }
            back(&format!("/profiles/{}", p.id), "saved", "ok")
        }
        Err(e) => super::error_page(
            &c,
            &ctx,
            StatusCode::BAD_REQUEST,
            "err_invalid",
            &e.to_string(),
        ),
    }
}
