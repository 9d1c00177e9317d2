//! One profile: categories and services toggles, devices (with setup steps, [`super::setup`],
//! and a ClientID device's `.mobileconfig`), the weekly schedule (block and allow windows),
//! "unblock for 60 minutes" and "is this site safe?". Only an administrator or
//! the profile's owner gets here (403 otherwise); every change goes through the profile
//! store (validated there, recorded in its audit log as `console:<name>`).

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    Common, St, actor, back, csrf_field, ctx, field, fields, flash, layout, on_profiles, page,
    posted,
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
/// lookup); otherwise the response (login coming back to `here`, 403, 503).
async fn allowed(c: &Console, ctx: &Ctx, id: &str, here: &str) -> Result<Session, Box<Response>> {
    let Some(s) = &ctx.session else {
        return Err(Box::new(super::to_login_then(here)));
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
    let s = match allowed(&c, &ctx, &id, &format!("/profiles/{id}")).await {
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
    let base = super::setup::base_url(c.secure, &headers);
    let body = html! {
        (flash(l, &q.common))
        @if p.read_only { p.msg.ok { (l.t("read_only")) } }
        div.grid.two {
            div {
                (devices_card(&c, &s, l, &p, &identities, base.as_deref()))
                (unblock_card(&c, &s, l, &p))
                (check_card(&c, l, &p, q.check.as_deref()))
            }
            div {
                (categories_card(&c, &s, l, &p))
                (schedule_card(&c, &s, l, &p))
            }
        }
        (services_card(&c, &s, l, &p))
        (super::own_lists::card(&s, l, &p))
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

fn devices_card(
    c: &Console,
    s: &Session,
    l: Lang,
    p: &Profile,
    ids: &[Identity],
    base: Option<&str>,
) -> Markup {
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
            (super::setup::steps(c, l, p, ids, base))
        }
    }
}

/// Whether `w` is an `allow` window (services allowed only while open).
fn is_allow(w: &WindowSpec) -> bool {
    w.action.as_deref() == Some("allow")
}

/// Whether hour `h` (0..24) of weekday `d` (0 = Monday) is inside one of the windows
/// that are `allow` ones (`allow`) or block ones (not `allow`).
fn covered(windows: &[WindowSpec], allow: bool, d: usize, h: u32) -> bool {
    let minutes = |t: &str| -> Option<u32> {
        let (hh, mm) = t.split_once(':')?;
        Some(hh.parse::<u32>().ok()? * 60 + mm.parse::<u32>().ok()?)
    };
    let (from, to) = (h * 60, h * 60 + 60);
    windows.iter().filter(|w| is_allow(w) == allow).any(|w| {
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

/// A week-view cell of two hours from `h`: its class and what it says (a symbol for the
/// eye, words for a screen reader: never the colour alone).
fn week_cell(l: Lang, w: &[WindowSpec], d: usize, h: u32) -> Markup {
    let on = |allow| covered(w, allow, d, h) || covered(w, allow, d, h + 1);
    let (block, allow) = (on(false), on(true));
    let class = match (block, allow) {
        (true, true) => "both",
        (true, false) => "on",
        (false, true) => "allow",
        (false, false) => "off",
    };
    html! {
        td class=(class) {
            @if block { span aria-hidden="true" { "■" } span.sr-only { (l.t("legend_block")) } }
            @if allow { span aria-hidden="true" { "✓" } span.sr-only { (l.t("legend_allow")) } }
        }
    }
}

fn schedule_card(c: &Console, s: &Session, l: Lang, p: &Profile) -> Markup {
    let w = &p.spec.schedules;
    let catalog = c.admin.config.load().policy.services.clone();
    let groups = catalog.groups();
    let categories = c.admin.categories_now();
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
                                @for d in 0..7 { (week_cell(l, w, d, h)) }
                            }
                        }
                    }
                }
            }
            p.legend {
                span.key.on aria-hidden="true" { "■" } " " (l.t("legend_block"))
                " · "
                span.key.allow aria-hidden="true" { "✓" } " " (l.t("legend_allow"))
            }
            @if w.is_empty() { p { (l.t("no_windows")) } }
            ul.plain {
                @for (n, win) in w.iter().enumerate() {
                    li {
                        span {
                            @if is_allow(win) { span.badge.allow { (l.t("kind_allow")) } } @else { span.badge.block { (l.t("kind_block")) } }
                            " "
                            @for (i, d) in win.days.iter().enumerate() { @if i > 0 { ", " } (l.day(d)) }
                            " " (win.start) "–" (win.end) ": "
                            @let names: Vec<String> = win.service_groups.iter().map(|g| l.service_group(g))
                                .chain(win.categories.iter().map(|cat| l.category(cat)))
                                .chain(win.services.iter().map(|svc| catalog.get(svc).map_or(svc.clone(), |x| l.service(x))))
                                .collect();
                            @if names.is_empty() { (l.t("everything_listed")) } @else { (names.join(", ")) }
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
                form #window-form method="post" action={ "/profiles/" (p.id) "/schedule" } {
                    (csrf_field(s))
                    h3 { (l.t("add_window")) }
                    fieldset {
                        legend { (l.t("window_action")) }
                        div.toggles {
                            label { input type="radio" name="action" value="block" checked; (l.t("action_block")) }
                            label { input type="radio" name="action" value="allow"; (l.t("action_allow")) }
                        }
                    }
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
                        legend { (l.t("window_groups")) }
                        div.toggles { @for g in &groups { label { input type="checkbox" name="group" value=(g); (l.service_group(g)) } } }
                    }
                    details.svc-group {
                        summary { (l.t("window_services")) }
                        @for g in &groups {
                            fieldset {
                                legend { (l.service_group(g)) }
                                div.toggles.wide {
                                    @for svc in catalog.services().iter().filter(|x| x.group == *g) {
                                        label { input type="checkbox" name="window_service" value=(svc.id); (l.service(svc)) }
                                    }
                                }
                            }
                        }
                    }
                    details.svc-group {
                        summary { (l.t("window_categories")) }
                        p.help { (l.t("window_categories_help")) }
                        div.toggles { @for cat in &categories { label { input type="checkbox" name="window_category" value=(cat); (l.category(cat)) } } }
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
        Err(e @ crate::profiles::ProfileError::Invalid { .. }) => {
            tracing::info!(error = %e, "console: profile change refused");
            back(&path, "err_invalid", "error")
        }
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
    allowed(c, &ctx, id, &format!("/profiles/{id}")).await?;
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

/// `POST /profiles/{id}/names`: a name onto the profile's own `list` (`allow`, `deny`), or
/// off it with `op=remove`; an unknown list, an empty name or one the store finds invalid
/// is refused with a message and changes nothing.
pub async fn names(
    State(c): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): F,
) -> Response {
    let s = match post_on(&c, &headers, &id, &form).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let which = field(&form, "list").and_then(super::own_lists::Which::parse);
    let name = super::own_lists::normalize(field(&form, "name").unwrap_or(""));
    let (Some(which), false) = (which, name.is_empty()) else {
        return back(&format!("/profiles/{id}"), "err_invalid", "error");
    };
    let remove = field(&form, "op") == Some("remove");
    update(&c, &s, id, move |spec| {
        super::own_lists::apply(spec, which, name, remove)
    })
    .await
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

/// `POST /profiles/{id}/schedule`: a window (days, start, end) that blocks (service
/// groups, services, categories) or allows services only while open (`action=allow`).
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
    let path = format!("/profiles/{id}");
    let action = match field(&form, "action").unwrap_or("block") {
        // Absent means block: the stored window stays as it always was.
        "block" => None,
        "allow" => Some("allow".to_owned()),
        _ => return back(&path, "err_invalid", "error"),
    };
    let window = WindowSpec {
        days: fields(&form, "day"),
        start: field(&form, "start").unwrap_or("").to_owned(),
        end: field(&form, "end").unwrap_or("").to_owned(),
        timezone: field(&form, "timezone").unwrap_or(DEFAULT_TZ).to_owned(),
        action,
        // Named apart from the categories and services cards' fields on the same page.
        categories: fields(&form, "window_category"),
        services: fields(&form, "window_service"),
        service_groups: fields(&form, "group"),
        ..WindowSpec::default()
    };
    // The store refuses these too; here the page can say which rule was broken.
    if is_allow(&window) {
        if !window.categories.is_empty() {
            return back(&path, "err_allow_categories", "error");
        }
        if window.services.is_empty() && window.service_groups.is_empty() {
            return back(&path, "err_allow_empty", "error");
        }
    }
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

/// `GET /profiles/{id}/devices/{iid}/mobileconfig`: the iOS/macOS configuration profile
/// of a ClientID device of this profile (DNS over HTTPS with its ClientID), for the
/// profile's owner or an administrator; 404 for any other identity or without a DoH name.
pub async fn mobileconfig(
    State(c): St,
    headers: HeaderMap,
    Path((id, iid)): Path<(String, i64)>,
) -> Response {
    let ctx = ctx(&c, &headers, None).await;
    let here = format!("/profiles/{id}/devices/{iid}/mobileconfig");
    if let Err(r) = allowed(&c, &ctx, &id, &here).await {
        return *r;
    }
    let Some(doh) = c.doh.clone() else {
        return super::error_page(&c, &ctx, StatusCode::NOT_FOUND, "step_doh_none", "");
    };
    let pid = id.clone();
    let read = on_profiles(&c, move |store| {
        let p = store.get(&pid)?;
        let device = store
            .identities(&pid)?
            .into_iter()
            .find(|i| i.id == iid && i.kind == IdentityKind::ClientId);
        Ok((p, device))
    })
    .await;
    let (p, device) = match read {
        Ok((p, Some(device))) => (p, device),
        Ok((_, None)) | Err(crate::profiles::ProfileError::NotFound { .. }) => {
            return super::error_page(&c, &ctx, StatusCode::NOT_FOUND, "err_not_found", "");
        }
        Err(e) => {
            tracing::error!(error = %e, "console: profile not read");
            return super::error_page(&c, &ctx, StatusCode::SERVICE_UNAVAILABLE, "err_store", "");
        }
    };
    let l = ctx.lang;
    let name = super::profile_name(l, &p);
    let config = super::setup::mobileconfig(
        &super::setup::DeviceProfile {
            profile_name: &name,
            client_id: &device.value,
            description: l.t("mobileconfig_description"),
        },
        &doh,
    );
    let bytes = match config {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "console: mobileconfig not written");
            return super::error_page(&c, &ctx, StatusCode::INTERNAL_SERVER_ERROR, "err_store", "");
        }
    };
    // A ClientID is `[a-z0-9-]`: always a valid header value.
    let disposition = format!(
        "attachment; filename=\"{}\"",
        super::setup::mobileconfig_file(&device.value)
    );
    let Ok(disposition) = HeaderValue::from_str(&disposition) else {
        return super::error_page(&c, &ctx, StatusCode::INTERNAL_SERVER_ERROR, "err_store", "");
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(super::setup::MOBILECONFIG_TYPE),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        bytes,
    )
        .into_response()
}
