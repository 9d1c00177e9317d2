//! One profile: categories and services toggles, devices (with setup steps), the weekly
//! schedule, "unblock for 60 minutes" and "is this site safe?". Only an administrator or
//! the profile's owner gets here (403 otherwise); every change goes through the profile
//! store (validated there, recorded in its audit log as `console:<name>`).

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Common, St, actor, back, csrf_field, ctx, field, fields, flash, layout, on_profiles, page,
    posted, to_login,
};
use crate::console::Console;
use crate::console::accounts::Session;
use crate::console::i18n::{DAYS, Lang};
use crate::console::sessions::Ctx;
use crate::exceptions::Target;
use crate::profiles::{Identity, IdentityKind, NewIdentity, Profile, ProfileSpec, WindowSpec};

/// The time zone of a profile without one of its own.
pub const DEFAULT_TZ: &str = "Asia/Ho_Chi_Minh";
/// How long "unblock" lasts.
pub const UNBLOCK_MINUTES: i64 = 60;

/// `?check=` and the common parameters.
#[derive(Deserialize, Default)]
pub struct ProfileQuery {
    check: Option<String>,
    #[serde(flatten)]
    common: Common,
}

/// The profile's time zone: its first window's, else [`DEFAULT_TZ`].
fn zone_of(p: &Profile) -> String {
    p.spec
        .schedules
        .first()
        .map(|w| w.timezone.clone())
        .or_else(|| p.spec.schedule.as_ref().map(|s| s.timezone.clone()))
        .unwrap_or_else(|| DEFAULT_TZ.to_owned())
}

/// The session, if it may see profile `id` (asked of the accounts database: one indexed
/// lookup); otherwise the response (login, 403, 503).
async fn allowed(c: &Console, ctx: &Ctx, id: &str) -> Result<Session, Box<Response>> {
    let Some(s) = &ctx.session else {
        return Err(Box::new(to_login()));
    };
    let (user, profile) = (s.user.clone(), id.to_owned());
    match c.on_accounts(move |a| a.may_edit(&user, &profile)).await {
        Ok(true) => Ok(s.clone()),
        Ok(false) => {
            tracing::warn!(user = %s.user.name, profile = id, "console: profile refused (not theirs)");
            Err(Box::new(super::forbidden(c, ctx)))
        }
        Err(e) => {
            tracing::error!(error = %e, "console: ownership not read");
            Err(Box::new(super::error_page(
                c,
                ctx,
                StatusCode::SERVICE_UNAVAILABLE,
                "err_store",
                "",
            )))
        }
    }
}

/// `GET /profiles/{id}`
pub async fn show(
    State(c): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ProfileQuery>,
) -> Response {
    let ctx = ctx(&c, &headers, q.common.lang.as_deref()).await;
    let s = match allowed(&c, &ctx, &id).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let pid = id.clone();
    let read = on_profiles(&c, move |store| {
        let p = store.get(&pid)?;
        let ids = if p.read_only {
            Vec::new()
        } else {
            store.identities(&pid)?
        };
        Ok((p, ids))
    })
    .await;
    let (p, identities) = match read {
        Ok(x) => x,
        Err(crate::profiles::ProfileError::NotFound { .. }) => {
            return super::error_page(&c, &ctx, StatusCode::NOT_FOUND, "err_not_found", "");
        }
        Err(e) => {
            tracing::error!(error = %e, "console: profile not read");
            return super::error_page(&c, &ctx, StatusCode::SERVICE_UNAVAILABLE, "err_store", "");
        }
    };
    let l = ctx.lang;
    let body = html! {
        (flash(l, &q.common))
        @if p.read_only { p.msg.ok { (l.t("read_only")) } }
        div.grid.two {
            div {
                (devices_card(&c, &s, l, &p, &identities))
                (unblock_card(&c, &s, l, &p))
                (check_card(&c, l, &p, q.check.as_deref()))
            }
            div {
                (categories_card(&c, &s, l, &p))
                (schedule_card(&c, &s, l, &p))
            }
        }
        (services_card(&c, &s, l, &p))
    };
    page(
        &c,
        &ctx,
        &q.common,
        StatusCode::OK,
        layout(&ctx, &super::profile_name(l, &p), body),
    )
}

fn categories_card(c: &Console, s: &Session, l: Lang, p: &Profile) -> Markup {
    let all = c.admin.categories_now();
    let on = |cat: &String| {
        p.spec
            .categories
            .as_ref()
            .is_none_or(|list| list.contains(cat))
    };
    html! {
        section.card aria-labelledby="cats" {
            h2 #cats { (l.t("categories")) }
            p.help { (l.t("categories_help")) }
            form method="post" action={ "/profiles/" (p.id) "/categories" } {
                (csrf_field(s))
                div.toggles {
                    @for cat in &all {
                        label { input type="checkbox" name="category" value=(cat) checked[on(cat)] disabled[p.read_only]; (l.category(cat)) }
                    }
                }
                @if !p.read_only { button type="submit" { (l.t("save")) } }
            }
        }
    }
}

fn services_card(c: &Console, s: &Session, l: Lang, p: &Profile) -> Markup {
    let catalog = c.admin.config.load().policy.services.clone();
    let groups = catalog.groups();
    html! {
        section.card aria-labelledby="svcs" {
            h2 #svcs { (l.t("services")) }
            p.help { (l.t("services_help")) }
            div.hidden data-filter="svc-list" {
                label for="svc-filter" { (l.t("check_button")) }
                input #svc-filter type="search" autocomplete="off";
            }
            form method="post" action={ "/profiles/" (p.id) "/services" } {
                (csrf_field(s))
                // One fold per group (closed unless something in it is blocked), so the
                // page stays short on a phone; <details> needs no script.
                div #svc-list {
                    @for g in &groups {
                        @let members: Vec<_> = catalog.services().iter().filter(|x| x.group == *g).collect();
                        @let blocked = members.iter().filter(|x| p.spec.services.contains(&x.id)).count();
                        details.svc-group data-group=(g) open[blocked > 0] {
                            summary { (l.service_group(g)) " " span.count { "(" (blocked) "/" (members.len()) ")" } }
                            fieldset {
                                legend.sr-only { (l.service_group(g)) }
                                div.toggles.wide {
                                    @for svc in &members {
                                        label { input type="checkbox" name="service" value=(svc.id) checked[p.spec.services.contains(&svc.id)] disabled[p.read_only]; (l.service(svc)) }
                                    }
                                }
                            }
                        }
                    }
                }
                @if !p.read_only { button type="submit" { (l.t("save")) } }
            }
        }
    }
}

fn devices_card(c: &Console, s: &Session, l: Lang, p: &Profile, ids: &[Identity]) -> Markup {
    let routers: Vec<String> = c
        .dns_addrs
        .iter()
        .map(|a| {
            if a.port() == 53 {
                a.ip().to_string()
            } else {
                a.to_string()
            }
        })
        .collect();
    let client_ids: Vec<&Identity> = ids
        .iter()
        .filter(|i| i.kind == IdentityKind::ClientId)
        .collect();
    html! {
        section.card aria-labelledby="devs" {
            h2 #devs { (l.t("devices")) }
            @if ids.is_empty() && p.clients.is_empty() { p { (l.t("no_devices")) } }
            ul.plain {
                @for client in &p.clients { li { code { (client) } } }
                @for i in ids {
                    li {
                        span { code { (i.value) } " " span.badge { (i.kind.as_str()) } }
                        form method="post" action={ "/profiles/" (p.id) "/devices/" (i.id) "/delete" } {
                            (csrf_field(s))
                            button.danger type="submit" aria-label={ (l.t("remove")) " " (i.value) } { (l.t("remove")) }
                        }
                    }
                }
            }
            @if !p.read_only {
                form method="post" action={ "/profiles/" (p.id) "/devices" } {
                    (csrf_field(s))
                    div.row {
                        div {
                            label for="dev-ip" { (l.t("device_ip")) }
                            input #dev-ip type="text" name="value" required inputmode="decimal" aria-describedby="dev-help" autocomplete="off";
                        }
                        button type="submit" { (l.t("add_device")) }
                    }
                    p #dev-help .help { (l.t("device_ip_help")) }
                }
            }
            details {
                summary { (l.t("setup_steps")) }
                ol {
                    li { (l.t("step_router")) " " @for (i, r) in routers.iter().enumerate() { @if i > 0 { ", " } code { (r) } } }
                    li {
                        @match &c.dot_name {
                            Some(name) => {
                                (l.t("step_android")) " "
                                @if client_ids.is_empty() { code { (name) } }
                                @for i in &client_ids { code { (i.value) "." (name) } " " }
                            }
                            None => { (l.t("step_android_none")) }
                        }
                    }
                }
            }
        }
    }
}

/// Whether hour `h` (0..24) of weekday `d` (0 = Monday) is inside a window.
fn covered(windows: &[WindowSpec], d: usize, h: u32) -> bool {
    let minutes = |t: &str| -> Option<u32> {
        let (hh, mm) = t.split_once(':')?;
        Some(hh.parse::<u32>().ok()? * 60 + mm.parse::<u32>().ok()?)
    };
    let (from, to) = (h * 60, h * 60 + 60);
    windows.iter().any(|w| {
        let (Some(start), Some(end)) = (minutes(&w.start), minutes(&w.end)) else {
            return false;
        };
        let opens = |day: usize| w.days.iter().any(|x| x == DAYS[day % 7]);
        if start < end {
            opens(d) && start < to && end > from
        } else {
            // Overnight: from `start` to midnight, then to `end` the next day.
            (opens(d) && to > start) || (opens(d + 6) && from < end)
        }
    })
}

fn schedule_card(c: &Console, s: &Session, l: Lang, p: &Profile) -> Markup {
    let w = &p.spec.schedules;
    let catalog = c.admin.config.load().policy.services.clone();
    let groups = catalog.groups();
    html! {
        section.card aria-labelledby="sched" {
            h2 #sched { (l.t("schedule")) }
            p.help { (l.t("schedule_help")) " " (l.t("time_zone")) ": " (zone_of(p)) }
            div.table-wrap {
                table.week {
                    caption.skip { (l.t("schedule")) }
                    thead { tr { th.h scope="col" { (l.t("hour")) } @for d in DAYS { th scope="col" { (l.day(d)) } } } }
                    tbody {
                        @for h in (0..24u32).step_by(2) {
                            tr {
                                th.h scope="row" { (format!("{h:02}")) }
                                @for d in 0..7 {
                                    @let on = covered(w, d, h) || covered(w, d, h + 1);
                                    td class=(if on { "on" } else { "off" }) { @if on { "■" } }
                                }
                            }
                        }
                    }
                }
            }
            @if w.is_empty() { p { (l.t("no_windows")) } }
            ul.plain {
                @for (n, win) in w.iter().enumerate() {
                    li {
                        span {
                            @for (i, d) in win.days.iter().enumerate() { @if i > 0 { ", " } (l.day(d)) }
                            " " (win.start) "–" (win.end) ": "
                            @for (i, g) in win.service_groups.iter().enumerate() { @if i > 0 { ", " } (l.service_group(g)) }
                            @for cat in &win.categories { ", " (l.category(cat)) }
                            @for svc in &win.services { ", " (catalog.get(svc).map_or(svc.clone(), |x| l.service(x))) }
                        }
                        @if !p.read_only {
                            form method="post" action={ "/profiles/" (p.id) "/schedule/" (n) "/delete" } {
                                (csrf_field(s))
                                button.danger type="submit" { (l.t("remove")) }
                            }
                        }
                    }
                }
            }
            @if !p.read_only {
                form method="post" action={ "/profiles/" (p.id) "/schedule" } {
                    (csrf_field(s))
                    h3 { (l.t("add_window")) }
                    fieldset {
                        legend { (l.t("days")) }
                        div.toggles.days { @for d in DAYS { label { input type="checkbox" name="day" value=(d); (l.day(d)) } } }
                    }
                    div.row {
                        div { label for="w-start" { (l.t("start")) } input #w-start type="time" name="start" value="20:00" required; }
                        div { label for="w-end" { (l.t("end")) } input #w-end type="time" name="end" value="06:00" required; }
                    }
                    input type="hidden" name="timezone" value=(zone_of(p));
                    fieldset {
                        legend { (l.t("window_blocks")) }
                        div.toggles { @for g in &groups { label { input type="checkbox" name="group" value=(g); (l.service_group(g)) } } }
                    }
                    button type="submit" { (l.t("add")) }
                }
            }
        }
    }
}

fn unblock_card(c: &Console, s: &Session, l: Lang, p: &Profile) -> Markup {
    let catalog = c.admin.config.load().policy.services.clone();
    let live = c
        .admin
        .exceptions_api()
        .map(|e| e.store.list(&p.id))
        .unwrap_or_default();
    let tz = jiff::tz::TimeZone::get(&zone_of(p)).unwrap_or(jiff::tz::TimeZone::UTC);
    html! {
        section.card aria-labelledby="unb" {
            h2 #unb { (l.t("unblock")) }
            @if live.is_empty() { p { (l.t("no_unblocks")) } }
            ul.plain {
                @for e in &live {
                    li {
                        span {
                            @match &e.target {
                                Target::Service(id) => { (catalog.get(id).map_or(id.clone(), |x| l.service(x))) }
                                Target::Name(n) => { (n) }
                                Target::Pause => { "⏸" }
                            }
                            " " (l.t("until")) " "
                            time datetime=(e.until.to_string()) { (e.until.to_zoned_datetime(tz.clone()).strftime("%H:%M %d/%m/%Y")) }
                        }
                    }
                }
            }
            form method="post" action={ "/profiles/" (p.id) "/unblock" } {
                (csrf_field(s))
                div.row {
                    div {
                        label for="unb-svc" { (l.t("service")) }
                        select #unb-svc name="service" {
                            @for svc in catalog.services().iter().filter(|x| p.spec.services.contains(&x.id)) {
                                option value=(svc.id) { (l.service(svc)) }
                            }
                            @for svc in catalog.services().iter().filter(|x| !p.spec.services.contains(&x.id)) {
                                option value=(svc.id) { (l.service(svc)) }
                            }
                        }
                    }
                    button type="submit" { (l.t("unblock_for")) }
                }
            }
        }
    }
}

fn check_card(c: &Console, l: Lang, p: &Profile, name: Option<&str>) -> Markup {
    let report = name.filter(|n| !n.trim().is_empty()).map(|n| {
        crate::admin::check::check(n, &c.admin.lists.current(), &c.admin.policy.load(), None)
    });
    html! {
        section.card aria-labelledby="chk" {
            h2 #chk { (l.t("check")) }
            form method="get" action={ "/profiles/" (p.id) } {
                div.row {
                    div {
                        label for="chk-name" { (l.t("check_name")) }
                        input #chk-name type="text" name="check" value=(name.unwrap_or("")) required autocomplete="off" inputmode="url";
                    }
                    button type="submit" { (l.t("check_button")) }
                }
            }
            @match &report {
                Some(Ok(r)) => {
                    @let verdict = r.groups.iter().find(|g| g.group == p.spec.name || g.group == p.id);
                    @let blocked = verdict.map_or(r.listed, |g| g.verdict == "blocked" || g.verdict == "filtered");
                    div role="status" {
                        p class={ "verdict " (if blocked { "blocked" } else { "allowed" }) } {
                            code { (r.normalized) } ": "
                            @if verdict.is_some_and(|g| g.verdict == "safesearch") { (l.t("verdict_safesearch")) }
                            @else if blocked { (l.t("verdict_blocked")) } @else { (l.t("verdict_allowed")) }
                        }
                        @if r.categories.is_empty() { p { (l.t("not_listed")) } }
                        @else { p { (l.t("listed_in")) ": " @for (i, cat) in r.categories.iter().enumerate() { @if i > 0 { ", " } (l.category(cat)) } } }
                    }
                }
                Some(Err(e)) => { p.msg.error role="alert" { (l.t("err_invalid")) ": " (e) } }
                None => {}
            }
        }
    }
}

/// Applies `change` to profile `id`'s settings (read and written under the store's lock,
/// at the version read) and goes back to the page.
async fn update(
    c: &Console,
    s: &Session,
    id: String,
    change: impl FnOnce(&mut ProfileSpec) + Send + 'static,
) -> Response {
    let who = actor(s);
    let path = format!("/profiles/{id}");
    let done = on_profiles(c, move |store| {
        let current = store.get(&id)?;
        let mut spec = current.spec.clone();
        change(&mut spec);
        store.replace(&id, &spec, Some(&current.version.to_string()), &who)
    })
    .await;
    match done {
        Ok(_) => back(&path, "saved", "ok"),
        Err(e) => {
            tracing::info!(error = %e, "console: profile change refused");
            back(&path, "err_store", "error")
        }
    }
}

/// The session of a POST on profile `id` (CSRF checked, the profile theirs).
async fn post_on(
    c: &Console,
    headers: &HeaderMap,
    id: &str,
    form: &[(String, String)],
) -> Result<Session, Box<Response>> {
    let ctx = ctx(c, headers, None).await;
    let s = posted(c, &ctx, form)?;
    allowed(c, &ctx, id).await?;
    Ok(s)
}

/// A form's body.
type F = Form<Vec<(String, String)>>;

/// `POST /profiles/{id}/categories`
pub async fn categories(
    State(c): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): F,
) -> Response {
    let s = match post_on(&c, &headers, &id, &form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let chosen = fields(&form, "category");
    update(&c, &s, id, move |spec| spec.categories = Some(chosen)).await
}

/// `POST /profiles/{id}/services`
pub async fn services(
    State(c): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): F,
) -> Response {
    let s = match post_on(&c, &headers, &id, &form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let chosen = fields(&form, "service");
    update(&c, &s, id, move |spec| spec.services = chosen).await
}

/// `POST /profiles/{id}/devices`: an IP address (or a ClientID, when not an address).
pub async fn add_device(
    State(c): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): F,
) -> Response {
    let s = match post_on(&c, &headers, &id, &form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let value = field(&form, "value").unwrap_or("").trim().to_owned();
    let kind = if value.parse::<std::net::IpAddr>().is_ok() {
        IdentityKind::Ip
    } else if value.contains('/') {
        IdentityKind::Cidr
    } else {
        IdentityKind::ClientId
    };
    let who = actor(&s);
    let path = format!("/profiles/{id}");
    let added = on_profiles(&c, move |store| {
        store.add_identity(&id, &NewIdentity { kind, value }, &who)
    })
    .await;
    match added {
        Ok(_) => back(&path, "saved", "ok"),
        Err(e) => {
            tracing::info!(error = %e, "console: device refused");
            back(&path, "err_invalid", "error")
        }
    }
}

/// `POST /profiles/{id}/devices/{iid}/delete`: only an identity of this profile.
pub async fn remove_device(
    State(c): St,
    headers: HeaderMap,
    Path((id, iid)): Path<(String, i64)>,
    Form(form): F,
) -> Response {
    let s = match post_on(&c, &headers, &id, &form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let who = actor(&s);
    let path = format!("/profiles/{id}");
    let removed = on_profiles(&c, move |store| {
        // The identity must be this profile's: the route's profile was the one checked.
        if !store.identities(&id)?.iter().any(|i| i.id == iid) {
            return Err(crate::profiles::ProfileError::invalid(
                "identity",
                "not this profile's",
            ));
        }
        store.delete_identity(iid, &who)
    })
    .await;
    match removed {
        Ok(_) => back(&path, "saved", "ok"),
        Err(_) => back(&path, "err_invalid", "error"),
    }
}

/// `POST /profiles/{id}/schedule`: a block window (days, start, end, service groups).
pub async fn add_window(
    State(c): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): F,
) -> Response {
    let s = match post_on(&c, &headers, &id, &form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let window = WindowSpec {
        days: fields(&form, "day"),
        start: field(&form, "start").unwrap_or("").to_owned(),
        end: field(&form, "end").unwrap_or("").to_owned(),
        timezone: field(&form, "timezone").unwrap_or(DEFAULT_TZ).to_owned(),
        service_groups: fields(&form, "group"),
        ..WindowSpec::default()
    };
    update(&c, &s, id, move |spec| spec.schedules.push(window)).await
}

/// `POST /profiles/{id}/schedule/{n}/delete`
pub async fn remove_window(
    State(c): St,
    headers: HeaderMap,
    Path((id, n)): Path<(String, usize)>,
    Form(form): F,
) -> Response {
    let s = match post_on(&c, &headers, &id, &form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    update(&c, &s, id, move |spec| {
        if n < spec.schedules.len() {
            spec.schedules.remove(n);
        }
    })
    .await
}

/// `POST /profiles/{id}/unblock`: the service for [`UNBLOCK_MINUTES`], through the
/// exceptions API's own checks.
pub async fn unblock(
    State(c): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): F,
) -> Response {
    if let Err(r) = post_on(&c, &headers, &id, &form).await {
        return *r;
    }
    let path = format!("/profiles/{id}");
    let Some(api) = c.admin.exceptions_api() else {
        return back(&path, "err_store", "error");
    };
    let service = field(&form, "service").unwrap_or("").to_owned();
    match api
        .grant(&id, Some(service), None, false, Some(UNBLOCK_MINUTES))
        .await
    {
        Ok(_) => back(&path, "saved", "ok"),
        Err(refused) => {
            tracing::info!(error = %refused.message, "console: unblock refused");
            back(&path, "err_invalid", "error")
        }
    }
}
