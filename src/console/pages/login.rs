//! Logging in and out, and the first-run setup that creates the administrator.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::{Common, St, ctx, field, layout, page};
use crate::console::accounts::{AccountError, Role};
use crate::console::sessions::{self, COOKIE, Ctx};

/// Where a login goes next: `next` when it is one of the console's own paths (`/…`, not
/// `//host` or `/\host`, which browsers read as another site: no open redirect), else
/// `fallback`.
pub fn next_or<'a>(next: Option<&'a str>, fallback: &'a str) -> &'a str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.len() <= 512
                && HeaderValue::from_str(n).is_ok() =>
        {
            n
        }
        _ => fallback,
    }
}

/// `GET /login`'s parameters: where to go once logged in (a QR code's download link opened
/// on a phone with no session comes back to it).
#[derive(Deserialize, Default)]
pub struct LoginQuery {
    next: Option<String>,
    #[serde(flatten)]
    common: Common,
}

fn login_form(ctx: &Ctx, error: Option<&str>, next: Option<&str>) -> maud::Markup {
    let l = ctx.lang;
    let next = next.map(|n| next_or(Some(n), "/")).filter(|n| *n != "/");
    html! {
        div.card.login {
            @if let Some(key) = error { p.msg.error role="alert" { (l.t(key)) } }
            form method="post" action="/login" {
                @if let Some(n) = next { input type="hidden" name="next" value=(n); }
                label for="name" { (l.t("username")) }
                input #name type="text" name="name" autocomplete="username" required;
                label for="password" { (l.t("password")) }
                input #password type="password" name="password" autocomplete="current-password" required;
                p { button type="submit" { (l.t("login_button")) } }
            }
        }
    }
}

/// `GET /login`
pub async fn show(State(c): St, headers: HeaderMap, Query(q): Query<LoginQuery>) -> Response {
    let ctx = ctx(&c, &headers, q.common.lang.as_deref()).await;
    if ctx.session.is_some() {
        return Redirect::to(next_or(q.next.as_deref(), "/")).into_response();
    }
    let l = ctx.lang;
    page(
        &c,
        &ctx,
        &q.common,
        StatusCode::OK,
        layout(
            &ctx,
            l.t("login_title"),
            login_form(&ctx, None, q.next.as_deref()),
        ),
    )
}

/// With a session cookie for `token`.
fn logged_in(token: &str, secure: bool, to: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    if let Ok(v) = HeaderValue::from_str(&sessions::session_cookie(token, secure)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `POST /login`: rate-limited per address and per account; failures say nothing about
/// which of name or password was wrong.
pub async fn submit(
    State(c): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let ctx = ctx(&c, &headers, None).await;
    let l = ctx.lang;
    let name = field(&form, "name").unwrap_or("").to_owned();
    let password = field(&form, "password").unwrap_or("").to_owned();
    let next = field(&form, "next").map(str::to_owned);
    let fail = |key: &str, status| {
        page(
            &c,
            &ctx,
            &Common::default(),
            status,
            layout(
                &ctx,
                l.t("login_title"),
                login_form(&ctx, Some(key), next.as_deref()),
            ),
        )
    };
    if !c.limits.attempt(peer.ip(), &name) {
        tracing::warn!(peer = %peer.ip(), "console: login rate limit reached");
        return fail("login_limited", StatusCode::TOO_MANY_REQUESTS);
    }
    let who = name.clone();
    let started = c
        .on_accounts(move |a| match a.verify(&who, &password)? {
            Some(user) => a.start_session(&user).map(Some),
            None => Ok(None),
        })
        .await;
    match started {
        Ok(Some((token, session))) => {
            c.limits.succeeded(peer.ip(), &name);
            let home = if session.user.role == Role::Reviewer {
                "/reviews"
            } else {
                "/"
            };
            logged_in(&token, c.secure, next_or(next.as_deref(), home))
        }
        Ok(None) => fail("login_failed", StatusCode::UNAUTHORIZED),
        Err(e) => {
            tracing::error!(error = %e, "console: login failed");
            fail("err_store", StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// `POST /logout`
pub async fn logout(
    State(c): St,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let ctx = ctx(&c, &headers, None).await;
    if let Err(r) = super::posted(&c, &ctx, &form) {
        return *r;
    }
    if let Some(token) = sessions::cookie(&headers, COOKIE) {
        let token = token.to_owned();
        let _ = c.on_accounts(move |a| a.end_session(&token)).await;
    }
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&sessions::clear_cookie(c.secure)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `?token=` of the setup link.
#[derive(Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
    lang: Option<String>,
}

fn setup_form(ctx: &Ctx, token: &str, error: Option<&str>) -> maud::Markup {
    let l = ctx.lang;
    html! {
        div.card.login {
            p { (l.t("setup_intro")) }
            @if let Some(key) = error { p.msg.error role="alert" { (l.t(key)) } }
            form method="post" action="/setup" {
                input type="hidden" name="token" value=(token);
                label for="name" { (l.t("username")) }
                input #name type="text" name="name" autocomplete="username" required;
                label for="password" { (l.t("password")) }
                input #password type="password" name="password" autocomplete="new-password" required minlength="10" aria-describedby="pwhelp";
                p #pwhelp .help { (l.t("password_hint")) }
                p { button type="submit" { (l.t("setup_button")) } }
            }
        }
    }
}

/// `GET /setup?token=...`: the form, while the token is unused.
pub async fn setup_show(State(c): St, headers: HeaderMap, Query(q): Query<SetupQuery>) -> Response {
    let ctx = ctx(&c, &headers, q.lang.as_deref()).await;
    let l = ctx.lang;
    let common = Common {
        lang: q.lang.clone(),
        ..Common::default()
    };
    let token = q.token.unwrap_or_default();
    if !c.is_setup(&token) {
        let body = html! { p.msg.error { (l.t("setup_invalid")) } p { a href="/login" { (l.t("login_title")) } } };
        return page(
            &c,
            &ctx,
            &common,
            StatusCode::FORBIDDEN,
            layout(&ctx, l.t("setup_title"), body),
        );
    }
    page(
        &c,
        &ctx,
        &common,
        StatusCode::OK,
        layout(&ctx, l.t("setup_title"), setup_form(&ctx, &token, None)),
    )
}

/// `POST /setup`: creates the administrator and logs them in; the token is used up.
pub async fn setup_submit(
    State(c): St,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let ctx = ctx(&c, &headers, None).await;
    let l = ctx.lang;
    let token = field(&form, "token").unwrap_or("").to_owned();
    if !c.is_setup(&token) {
        let body = html! { p.msg.error { (l.t("setup_invalid")) } };
        return page(
            &c,
            &ctx,
            &Common::default(),
            StatusCode::FORBIDDEN,
            layout(&ctx, l.t("setup_title"), body),
        );
    }
    let name = field(&form, "name").unwrap_or("").to_owned();
    let password = field(&form, "password").unwrap_or("").to_owned();
    let created = c
        .on_accounts(move |a| {
            if a.count()? > 0 {
                return Err(AccountError::Invalid("setup_invalid"));
            }
            let user = a.create(&name, &password, Role::Admin)?;
            a.start_session(&user)
        })
        .await;
    match created {
        Ok((session_token, _)) => {
            c.take_setup(&token);
            tracing::info!("console: administrator created; the setup link no longer works");
            logged_in(&session_token, c.secure, "/")
        }
        Err(AccountError::Invalid(key)) => page(
            &c,
            &ctx,
            &Common::default(),
            StatusCode::BAD_REQUEST,
            layout(
                &ctx,
                l.t("setup_title"),
                setup_form(&ctx, &token, Some(key)),
            ),
        ),
        Err(e) => {
            tracing::error!(error = %e, "console: setup failed");
            super::error_page(&c, &ctx, StatusCode::INTERNAL_SERVER_ERROR, "err_store", "")
        }
    }
}
