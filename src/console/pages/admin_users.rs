//! Accounts (administrators only): the list a page at a time, a new parent, teacher or
//! reviewer account, and giving a profile to an owner.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::{
    Common, PAGE, St, back, csrf_field, ctx, field, flash, layout, on_profiles, page, posted,
    to_login,
};
use crate::console::accounts::{AccountError, Role};
use crate::console::i18n::Lang;
use crate::profiles::PageCursor;

/// Profiles suggested in the forms' list (any id may be typed).
const PROFILES_IN_FORM: usize = 500;

/// `?page=` and the common parameters.
#[derive(Deserialize, Default)]
pub struct UsersQuery {
    #[serde(default)]
    page: usize,
    #[serde(flatten)]
    common: Common,
}

fn role_name(l: Lang, r: Role) -> &'static str {
    match r {
        Role::Admin => l.t("role_admin"),
        Role::Reviewer => l.t("role_reviewer"),
        Role::Owner => l.t("role_owner"),
    }
}

/// `GET /users`
pub async fn show(State(c): St, headers: HeaderMap, Query(q): Query<UsersQuery>) -> Response {
    let ctx = ctx(&c, &headers, q.common.lang.as_deref()).await;
    let Some(s) = ctx.session.clone() else {
        return to_login();
    };
    if s.user.role != Role::Admin {
        return super::forbidden(&c, &ctx);
    }
    let offset = q.page * PAGE;
    let users = c.on_accounts(move |a| a.users(offset, PAGE)).await;
    let Ok((users, more)) = users else {
        return super::error_page(&c, &ctx, StatusCode::SERVICE_UNAVAILABLE, "err_store", "");
    };
    // The names of the profiles this page's users own (read by id), and the first
    // profiles as suggestions for the forms (any id can be typed: a national store holds
    // far more than a form can list).
    let owned: Vec<String> = users
        .iter()
        .flat_map(|u| u.profiles.iter().cloned())
        .take(PROFILES_IN_FORM)
        .collect();
    let lang = ctx.lang;
    let profiles = on_profiles(&c, move |store| {
        let mut suggested = store.page(PageCursor::First, PROFILES_IN_FORM)?.profiles;
        suggested.retain(|p| !p.read_only);
        let named: Vec<(String, String)> = owned
            .iter()
            .filter_map(|id| {
                store
                    .get(id)
                    .ok()
                    .map(|p| (p.id.clone(), super::profile_name(lang, &p)))
            })
            .collect();
        Ok((suggested, named))
    })
    .await;
    let Ok((profiles, named)) = profiles else {
        return super::error_page(&c, &ctx, StatusCode::SERVICE_UNAVAILABLE, "err_store", "");
    };
    let name_of = |id: &str| {
        named
            .iter()
            .find(|(pid, _)| pid == id)
            .map_or(id.to_owned(), |(_, name)| name.clone())
    };
    let l = ctx.lang;
    let body = html! {
        (flash(l, &q.common))
        section.card aria-labelledby="ulist" {
            h2 #ulist { (l.t("users_title")) }
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { (l.t("username")) } th scope="col" { (l.t("role")) } th scope="col" { (l.t("profiles")) } } }
                    tbody {
                        @for u in &users {
                            tr {
                                td { (u.user.name) }
                                td { (role_name(l, u.user.role)) }
                                td {
                                    @for (i, p) in u.profiles.iter().enumerate() { @if i > 0 { ", " } (name_of(p)) }
                                    // A school's thousands are counted, not listed.
                                    @if u.owned > u.profiles.len() as u64 { " " (l.t("and_more")) " " (u.owned - u.profiles.len() as u64) }
                                }
                            }
                        }
                    }
                }
            }
            @if q.page > 0 || more {
                nav.pager {
                    @if q.page > 0 { a href={ "/users?page=" (q.page - 1) } { (l.t("previous")) } } @else { span {} }
                    @if more { a href={ "/users?page=" (q.page + 1) } { (l.t("next")) } }
                }
            }
        }
        div.grid.two {
            section.card aria-labelledby="unew" {
                h2 #unew { (l.t("new_user")) }
                form method="post" action="/users" {
                    (csrf_field(&s))
                    label for="u-name" { (l.t("username")) }
                    input #u-name type="text" name="name" required maxlength="64" autocomplete="off";
                    label for="u-pass" { (l.t("password")) }
                    input #u-pass type="password" name="password" required minlength="10" autocomplete="new-password" aria-describedby="u-help";
                    p #u-help .help { (l.t("password_hint")) }
                    label for="u-role" { (l.t("role")) }
                    select #u-role name="role" {
                        option value="owner" { (l.t("role_owner")) }
                        option value="reviewer" { (l.t("role_reviewer")) }
                        option value="admin" { (l.t("role_admin")) }
                    }
                    label for="u-profile" { (l.t("profile")) }
                    input #u-profile type="text" name="profile" list="profile-ids" maxlength="80" autocomplete="off" aria-describedby="profile-id-help";
                    p #profile-id-help .help { (l.t("profile_id_help")) }
                    p { button type="submit" { (l.t("create")) } }
                }
            }
            section.card aria-labelledby="uassign" {
                h2 #uassign { (l.t("assign")) }
                form method="post" action="/users/assign" {
                    (csrf_field(&s))
                    label for="a-user" { (l.t("user")) }
                    select #a-user name="user" {
                        @for u in users.iter().filter(|u| u.user.role == Role::Owner) { option value=(u.user.id) { (u.user.name) } }
                    }
                    label for="a-profile" { (l.t("profile")) }
                    input #a-profile type="text" name="profile" list="profile-ids" required maxlength="80" autocomplete="off" aria-describedby="profile-id-help";
                    p { button type="submit" { (l.t("assign")) } }
                }
                datalist #profile-ids {
                    @for p in &profiles { option value=(p.id) { (p.spec.name) } }
                }
            }
        }
    };
    page(
        &c,
        &ctx,
        &q.common,
        StatusCode::OK,
        layout(&ctx, l.t("users_title"), body),
    )
}

/// `POST /users`: a new account (and, for an owner, a first profile).
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
    if s.user.role != Role::Admin {
        return super::forbidden(&c, &ctx);
    }
    let Some(role) = field(&form, "role").and_then(Role::parse) else {
        return back("/users", "err_invalid", "error");
    };
    let name = field(&form, "name").unwrap_or("").to_owned();
    let password = field(&form, "password").unwrap_or("").to_owned();
    let profile = field(&form, "profile")
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    if let Some(pid) = profile.clone()
        && on_profiles(&c, move |store| store.get(&pid)).await.is_err()
    {
        return back("/users", "err_not_found", "error");
    }
    let created = c
        .on_accounts(move |a| {
            let u = a.create(&name, &password, role)?;
            if let (Role::Owner, Some(p)) = (role, profile) {
                a.assign(u.id, &p)?;
            }
            Ok(u)
        })
        .await;
    match created {
        Ok(u) => {
            tracing::info!(by = %s.user.name, user = %u.name, role = u.role.as_str(), "console: account created");
            back("/users", "saved", "ok")
        }
        Err(AccountError::Invalid(key)) => back("/users", key, "error"),
        Err(e) => {
            tracing::error!(error = %e, "console: account not created");
            back("/users", "err_store", "error")
        }
    }
}

/// `POST /users/assign`
pub async fn assign(
    State(c): St,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let ctx = ctx(&c, &headers, None).await;
    let s = match posted(&c, &ctx, &form) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if s.user.role != Role::Admin {
        return super::forbidden(&c, &ctx);
    }
    let Some(user) = field(&form, "user").and_then(|u| u.parse::<i64>().ok()) else {
        return back("/users", "err_invalid", "error");
    };
    let profile = field(&form, "profile").unwrap_or("").to_owned();
    let pid = profile.clone();
    if on_profiles(&c, move |store| store.get(&pid)).await.is_err() {
        return back("/users", "err_not_found", "error");
    }
    match c.on_accounts(move |a| a.assign(user, &profile)).await {
        Ok(()) => back("/users", "saved", "ok"),
        Err(AccountError::Invalid(key)) => back("/users", key, "error"),
        Err(_) => back("/users", "err_store", "error"),
    }
}
