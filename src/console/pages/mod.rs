//! The pages: [`login`] (and first-run setup), [`dashboard`], [`profile`],
//! [`admin_users`], [`reviews`], [`published`], [`status`], [`audit`], a device's [`setup`] steps; here the frame they share (header, language switch, the
//! CSRF field) and the answers every page gives (redirects, 403, errors).

pub mod activity;
pub mod admin_users;
pub mod audit;
pub mod dashboard;
pub mod login;
pub mod own_lists;
pub mod profile;
pub mod published;
pub mod reviews;
pub mod setup;
pub mod status;

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::Console;
use super::accounts::{Role, Session};
use super::i18n::Lang;
use super::sessions::{self, COOKIE, Ctx};

/// Rows per page of a list.
pub const PAGE: usize = 50;

/// `?lang=` (and a flash message) on any page.
#[derive(Deserialize, Default)]
pub struct Common {
    /// `vi` or `en`: switches the language (kept in a cookie).
    pub lang: Option<String>,
    /// A message key to show (`saved`, an error key): never free text.
    pub msg: Option<String>,
    /// `ok` or `error`.
    pub kind: Option<String>,
}

/// The request's language and session.
pub async fn ctx(console: &Console, headers: &HeaderMap, lang: Option<&str>) -> Ctx {
    let lang = sessions::lang(headers, lang);
    let session = match sessions::cookie(headers, COOKIE) {
        Some(token) => {
            let token = token.to_owned();
            console
                .on_accounts(move |a| a.session(&token))
                .await
                .ok()
                .flatten()
        }
        None => None,
    };
    Ctx { lang, session }
}

/// The frame around a page's `body`.
pub fn layout(ctx: &Ctx, title: &str, body: Markup) -> Markup {
    let l = ctx.lang;
    let other = match l {
        Lang::Vi => "en",
        Lang::En => "vi",
    };
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (l.t("app_name")) }
                link rel="stylesheet" href="/assets/console.css";
            }
            body {
                a.skip href="#main" { (l.t("skip")) }
                header.top {
                    div.bar {
                        a.brand href="/" { (l.t("app_name")) }
                        nav aria-label=(l.t("app_name")) {
                            @if let Some(s) = &ctx.session {
                                @if s.user.role != Role::Reviewer {
                                    a href="/" { (l.t("nav_home")) }
                                }
                                @if s.user.role != Role::Owner {
                                    a href="/reviews" { (l.t("nav_reviews")) }
                                    a href="/published" { (l.t("nav_published")) }
                                }
                                @if s.user.role == Role::Admin {
                                    a href="/users" { (l.t("nav_users")) }
                                    a href="/status" { (l.t("nav_status")) }
                                    a href="/audit" { (l.t("nav_audit")) }
                                }
                            }
                            a href={ "?lang=" (other) } lang=(other) { (l.t("lang_switch")) }
                            @if let Some(s) = &ctx.session {
                                form method="post" action="/logout" {
                                    (csrf_field(s))
                                    button.link type="submit" { (l.t("logout")) " (" (s.user.name) ")" }
                                }
                            }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
                script src="/assets/console.js" defer {}
            }
        }
    }
}

/// The hidden CSRF field of a form.
pub fn csrf_field(s: &Session) -> Markup {
    html! { input type="hidden" name=(super::csrf::FIELD) value=(s.csrf); }
}

/// A flash message from `?msg=` (a translation key; unknown keys show nothing).
pub fn flash(l: Lang, common: &Common) -> Markup {
    let Some(key) = common.msg.as_deref() else {
        return html! {};
    };
    let text = l.t(key);
    if text == "?" {
        return html! {};
    }
    let class = if common.kind.as_deref() == Some("error") {
        "msg error"
    } else {
        "msg ok"
    };
    html! { p class=(class) role="status" { (text) } }
}

/// A page's response: the HTML, and the language cookie when `?lang=` chose one.
pub fn page(
    console: &Console,
    ctx: &Ctx,
    common: &Common,
    status: StatusCode,
    m: Markup,
) -> Response {
    let mut r = (status, Html(m.into_string())).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if common.lang.is_some()
        && let Ok(v) = HeaderValue::from_str(&sessions::lang_cookie(ctx.lang, console.secure))
    {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// To the login page.
pub fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// To the login page, coming back to `path` (the console's own) once logged in.
pub fn to_login_then(path: &str) -> Response {
    Redirect::to(&format!("/login?next={}", query_value(path))).into_response()
}

/// Back to `path` with message `key` (`kind` ok or error). The path is the console's own;
/// one that is no valid header value (an id with control characters) goes home instead.
pub fn back(path: &str, key: &str, kind: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    let to = format!("{path}{sep}msg={key}&kind={kind}");
    let location = HeaderValue::from_str(&to).unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// A 403 page.
pub fn forbidden(console: &Console, ctx: &Ctx) -> Response {
    let l = ctx.lang;
    let body = html! { p.msg.error { (l.t("err_forbidden")) } p { a href="/" { (l.t("back")) } } };
    page(
        console,
        ctx,
        &Common::default(),
        StatusCode::FORBIDDEN,
        layout(ctx, l.t("forbidden_title"), body),
    )
}

/// A page for an error the person can act on (`key` translated, `detail` shown escaped).
pub fn error_page(
    console: &Console,
    ctx: &Ctx,
    status: StatusCode,
    key: &str,
    detail: &str,
) -> Response {
    let l = ctx.lang;
    let body = html! {
        p.msg.error { (l.t(key)) @if !detail.is_empty() { ": " (detail) } }
        p { a href="/" { (l.t("back")) } }
    };
    page(
        console,
        ctx,
        &Common::default(),
        status,
        layout(ctx, l.t("err_invalid"), body),
    )
}

/// The session of a POST whose form carries its CSRF token; otherwise the response
/// (to the login page without a session, 403 without the token).
pub fn posted(
    console: &Console,
    ctx: &Ctx,
    form: &[(String, String)],
) -> Result<Session, Box<Response>> {
    let Some(s) = &ctx.session else {
        return Err(Box::new(to_login()));
    };
    if !super::csrf::valid(s, form) {
        let l = ctx.lang;
        let body = html! { p.msg.error { (l.t("err_csrf")) } };
        return Err(Box::new(page(
            console,
            ctx,
            &Common::default(),
            StatusCode::FORBIDDEN,
            layout(ctx, l.t("forbidden_title"), body),
        )));
    }
    Ok(s.clone())
}

/// The first value of field `name`.
pub fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Every value of field `name` (checkbox lists).
pub fn fields(form: &[(String, String)], name: &str) -> Vec<String> {
    form.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// The console's state, as the handlers take it.
pub type St = axum::extract::State<Arc<Console>>;

/// Runs `op` on the profile store (the admin API's) on a blocking thread.
pub async fn on_profiles<T: Send + 'static>(
    console: &Console,
    op: impl FnOnce(&mut crate::profiles::ProfileStore) -> Result<T, crate::profiles::ProfileError>
    + Send
    + 'static,
) -> Result<T, crate::profiles::ProfileError> {
    let store = console.admin.profiles();
    tokio::task::spawn_blocking(move || {
        let mut s = store
            .lock()
            .map_err(|_| crate::profiles::ProfileError::invalid("store", "lock poisoned"))?;
        op(&mut s)
    })
    .await
    .map_err(|e| crate::profiles::ProfileError::invalid("store", e.to_string()))?
}

/// `value` percent-encoded for a query string (a cursor in a page link; maud escapes the
/// attribute, this keeps the URL itself well formed whatever the value holds).
pub fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A profile's name as the page shows it: the config file's implicit `default` group
/// (every device no other profile claims) is named in the page's language.
pub fn profile_name(l: Lang, p: &crate::profiles::Profile) -> String {
    // "default" is the config's catch-all group name (`GroupConfig::implicit_default`,
    // and the `[[groups]] name = "default"` the config checks treat specially).
    if p.read_only && p.spec.name == "default" {
        l.t("default_profile").to_owned()
    } else {
        p.spec.name.clone()
    }
}

/// Who the profile store's audit log names for a console change.
pub fn actor(s: &Session) -> String {
    format!("console:{}", s.user.name)
}
