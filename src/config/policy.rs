//! The policy sections: the access keys of `[server]` (`allow_clients`, `rate_limit_*`,
//! `refuse_action`), `[[groups]]` and `[safesearch]`, checked into a
//! [`PolicyConfig`]: every error names the key, a group's by its name
//! (`groups.pupils.schedule`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ConfigError, Invalid, line_col, nets, raw};
use crate::policy::client::{ClientId, Mac};
use crate::policy::schedule::{Schedule, ScheduleError};
use crate::policy::windows::{Window, WindowAction, WindowError};
use crate::policy::{CONFIG_ID_PREFIX, GroupConfig, PolicyConfig, RateLimitConfig};
use crate::services::Catalog;

/// The [`PolicyConfig`] of `raw` (whose source is `text`, for the line of a duplicate
/// group name); paths go through `resolve`.
pub(super) fn validate_policy(
    raw: &raw::RawConfig,
    text: &str,
    _path: &Path,
    resolve: &dyn Fn(&Path) -> PathBuf,
    invalid: &Invalid<'_>,
) -> Result<PolicyConfig, ConfigError> {
    let nets = |list: &[toml::Spanned<String>], key: &str| nets(list, key, invalid);
    let allow_clients = match &raw.server.allow_clients {
        Some(list) => nets(list, "server.allow_clients")?,
        None => crate::policy::access::default_private_nets(),
    };
    let rate_limit = (raw.server.rate_limit_qps > 0).then(|| RateLimitConfig {
        qps: raw.server.rate_limit_qps,
        burst: if raw.server.rate_limit_burst == 0 {
            raw.server.rate_limit_qps.saturating_mul(2)
        } else {
            raw.server.rate_limit_burst
        },
        clients: raw.server.rate_limit_clients.max(1),
    });
    // Categories a group may name: those of the configured sources (when any are configured;
    // a list compiled elsewhere may carry others).
    let known: Vec<&str> = raw
        .lists
        .source
        .iter()
        .map(|s| s.get_ref().category.as_str())
        .collect();
    let check_categories =
        |list: &[toml::Spanned<String>], key: &str| -> Result<Vec<String>, ConfigError> {
            list.iter()
                .map(|c| {
                    if known.is_empty() || known.contains(&c.get_ref().as_str()) {
                        Ok(c.get_ref().clone())
                    } else {
                        Err(invalid(
                            Some(c.span()),
                            Some(key.to_owned()),
                            format!(
                                "unknown category `{}`; the lists define: {}",
                                c.get_ref(),
                                known.join(", ")
                            ),
                        ))
                    }
                })
                .collect()
        };

    let services_dir = raw
        .services
        .as_ref()
        .and_then(|s| s.dir.as_deref())
        .map(resolve);
    let (catalog, warnings) = Catalog::load(services_dir.as_deref())
        .map_err(|e| invalid(None, Some("services.dir".into()), e.to_string()))?;
    for w in warnings {
        tracing::warn!(error = %w, "service catalog file skipped; the built-in entries stay");
    }
    // Services and service groups a group names must be in the catalog.
    let check_services = |list: &[toml::Spanned<String>],
                          key: &str,
                          groups: bool|
     -> Result<Vec<String>, ConfigError> {
        list.iter()
            .map(|s| {
                let name = s.get_ref();
                let known = if groups {
                    catalog.groups().contains(&name.as_str())
                } else {
                    catalog.get(name).is_some()
                };
                if known {
                    return Ok(name.clone());
                }
                let message = if groups {
                    format!(
                        "unknown service group `{name}`; known: {}",
                        catalog.groups().join(", ")
                    )
                } else {
                    format!(
                        "unknown service `{name}`; known: {}",
                        catalog.ids().join(", ")
                    )
                };
                Err(invalid(Some(s.span()), Some(key.to_owned()), message))
            })
            .collect()
    };

    let mandatory = check_categories(&raw.lists.mandatory, "lists.mandatory")?;
    let mut windows = std::collections::HashMap::new();
    let mut groups = Vec::with_capacity(raw.groups.len() + 1);
    // Every ClientID and MAC seen so far, with the group that listed it.
    let mut seen_ids: std::collections::HashMap<ClientId, &str> = Default::default();
    let mut seen_macs: std::collections::HashMap<Mac, &str> = Default::default();
    for (i, spanned) in raw.groups.iter().enumerate() {
        let g = spanned.get_ref();
        let name = g.name.get_ref();
        // Keys name the group (`groups.pupils.schedule`), not its index.
        let key = |k: &str| {
            if name.is_empty() {
                format!("groups[{i}].{k}")
            } else {
                format!("groups.{name}.{k}")
            }
        };
        if name.is_empty() {
            return Err(invalid(
                Some(g.name.span()),
                Some(key("name")),
                "a group needs a name".into(),
            ));
        }
        if let Some(first) = raw.groups[..i]
            .iter()
            .find(|x| x.get_ref().name.get_ref() == name)
        {
            let (line, _) = line_col(text, first.get_ref().name.span().start);
            return Err(invalid(
                Some(g.name.span()),
                Some(key("name")),
                format!("group name `{name}` is used twice (first on line {line})"),
            ));
        }
        let clients = nets(&g.clients, &key("clients"))?;
        if name == "default" && !clients.is_empty() {
            return Err(invalid(
                g.clients.first().map(toml::Spanned::span),
                Some(key("clients")),
                "the `default` group covers everyone not in another group: give it no clients"
                    .into(),
            ));
        }
        let mut client_ids = Vec::with_capacity(g.client_ids.len());
        for s in &g.client_ids {
            let id = ClientId::parse(s.get_ref()).map_err(|e| {
                invalid(
                    Some(s.span()),
                    Some(key("client_ids")),
                    format!("`{}`: {e}", s.get_ref()),
                )
            })?;
            match seen_ids.get(&id) {
                Some(&other) if other != name.as_str() => {
                    return Err(invalid(
                        Some(s.span()),
                        Some(key("client_ids")),
                        format!(
                            "ClientID `{id}` is listed by both group `{other}` and group `{name}`"
                        ),
                    ));
                }
                _ => {
                    seen_ids.insert(id.clone(), name);
                }
            }
            client_ids.push(id);
        }
        let mut macs = Vec::with_capacity(g.macs.len());
        for s in &g.macs {
            let mac = Mac::parse(s.get_ref())
                .map_err(|e| invalid(Some(s.span()), Some(key("macs")), e.to_string()))?;
            match seen_macs.get(&mac) {
                Some(&other) if other != name.as_str() => {
                    return Err(invalid(
                        Some(s.span()),
                        Some(key("macs")),
                        format!(
                            "MAC address {mac} is listed by both group `{other}` and group `{name}`"
                        ),
                    ));
                }
                _ => {
                    seen_macs.insert(mac, name);
                }
            }
            macs.push(mac);
        }
        if name == "default" && !(client_ids.is_empty() && macs.is_empty()) {
            return Err(invalid(
                g.client_ids
                    .first()
                    .or(g.macs.first())
                    .map(toml::Spanned::span),
                Some(key(if client_ids.is_empty() {
                    "macs"
                } else {
                    "client_ids"
                })),
                "the `default` group covers everyone not in another group: give it no clients"
                    .into(),
            ));
        }
        // With `[subscribers]`, the ISP's lines may be a group's only way in.
        let by_lines = raw.subscribers.is_some();
        if name != "default"
            && !by_lines
            && clients.is_empty()
            && client_ids.is_empty()
            && macs.is_empty()
        {
            return Err(invalid(
                Some(spanned.span()),
                Some(key("clients")),
                format!(
                    "group `{name}` needs clients (CIDRs), client_ids or macs (or a [subscribers] map naming it); only `default` has none"
                ),
            ));
        }
        let categories = match &g.categories {
            Some(list) => Some(check_categories(list, &key("categories"))?),
            None => None,
        };
        let schedule = match &g.schedule {
            Some(spanned) => {
                let s = spanned.get_ref();
                let sched = Schedule::new(&s.days, &s.start, &s.end, &s.timezone).map_err(|e| {
                    invalid(Some(spanned.span()), Some(key("schedule")), e.to_string())
                })?;
                Some((
                    sched,
                    check_categories(&s.categories, &key("schedule.categories"))?,
                ))
            }
            None => None,
        };
        let mut group_windows = Vec::with_capacity(g.schedules.len());
        for (n, spanned) in g.schedules.iter().enumerate() {
            let w = spanned.get_ref();
            let at = |e: String, k: &str| {
                invalid(
                    Some(spanned.span()),
                    Some(key(&format!("schedules[{n}].{k}"))),
                    e,
                )
            };
            let sched = Schedule::new(&w.days, &w.start, &w.end, &w.timezone).map_err(|e| {
                let k = match e {
                    ScheduleError::UnknownDay(_) | ScheduleError::NoDays => "days",
                    ScheduleError::BadTime { field, .. } => field,
                    ScheduleError::UnknownTimeZone { .. } => "timezone",
                    ScheduleError::EmptyWindow(_) => "end",
                };
                at(e.to_string(), k)
            })?;
            let action = WindowAction::parse(&w.action).map_err(|e| at(e.to_string(), "action"))?;
            let sub = |k: &str| key(&format!("schedules[{n}].{k}"));
            let window = Window::new(
                sched,
                action,
                &w.except,
                check_categories(&w.categories, &sub("categories"))?,
                check_services(&w.services, &sub("services"), false)?,
                check_services(&w.service_groups, &sub("service_groups"), true)?,
            )
            .map_err(|e| {
                let k = match e {
                    WindowError::BadExcept(_) => "except",
                    WindowError::AllowWithCategories => "categories",
                    _ => "services",
                };
                at(e.to_string(), k)
            })?;
            group_windows.push(window);
        }
        if !group_windows.is_empty() {
            windows.insert(format!("{CONFIG_ID_PREFIX}{name}"), group_windows);
        }
        groups.push(GroupConfig {
            id: format!("{CONFIG_ID_PREFIX}{name}"),
            name: name.clone(),
            clients,
            client_ids,
            macs,
            categories,
            allow: g.allow.clone(),
            allow_paths: g.allow_paths.iter().map(|p| resolve(p)).collect(),
            deny: g.deny.clone(),
            deny_paths: g.deny_paths.iter().map(|p| resolve(p)).collect(),
            safesearch: g.safesearch,
            youtube: g.youtube,
            mode: g.mode.as_ref().map(|m| *m.get_ref()),
            schedule,
            services: check_services(&g.services, &key("services"), false)?,
            service_groups: check_services(&g.service_groups, &key("service_groups"), true)?,
            bypass_protection: g.bypass_protection,
            block_unsafe_search: g.block_unsafe_search,
        });
    }
    // `default` goes last (index = groups.len() - 1), implicit if not configured.
    match groups.iter().position(|g| g.name == "default") {
        Some(i) => {
            let d = groups.remove(i);
            groups.push(d);
        }
        None => groups.push(GroupConfig::implicit_default()),
    }
    let (safesearch_dir, safesearch_ttl) = match &raw.safesearch {
        Some(s) => (s.dir.as_deref().map(resolve), s.ttl),
        None => (None, 300),
    };
    Ok(PolicyConfig {
        allow_clients,
        rate_limit,
        refuse_action: raw.server.refuse_action,
        groups,
        safesearch_dir,
        safesearch_ttl,
        services: Arc::new(catalog),
        windows,
        mandatory,
    })
}
