//! Checks on what the API sends, before anything is written: names, categories (against
//! the compiled list's), allow/deny names, schedules, identities and prefixes. Each error
//! names the field.

use std::net::IpAddr;

use ipnet::IpNet;

use super::types::{IdentityKind, ProfileSpec, WindowSpec};
use super::{MAX_LIST_ENTRIES, MAX_NAME_LEN, ProfileError};
use crate::lists::normalize::normalize;
use crate::policy::schedule::Schedule;
use crate::policy::windows::{Window, WindowAction, WindowError};
use crate::services::Catalog;
use crate::services::catalog::Unknown;

/// `spec` cleaned (names normalized) if every field is valid; `known` are the categories
/// the compiled list has, `catalog` the services `services` and `service_groups` may name.
pub(super) fn validate_spec(
    spec: &ProfileSpec,
    known: &[String],
    catalog: &Catalog,
) -> Result<ProfileSpec, ProfileError> {
    let name = spec.name.trim();
    if name.is_empty() {
        return Err(ProfileError::invalid("name", "empty"));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(ProfileError::invalid(
            "name",
            format!("longer than {MAX_NAME_LEN} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ProfileError::invalid(
            "name",
            "control characters are not allowed",
        ));
    }
    for (i, w) in spec.schedules.iter().enumerate() {
        window_of(w)
            .map_err(|(field, e)| ProfileError::invalid(format!("schedules[{i}].{field}"), e))?;
        categories(&w.categories, known, &format!("schedules[{i}].categories"))?;
        if let Err(u) = catalog.resolve(&w.services, &w.service_groups) {
            let field = match &u {
                Unknown::Service(j, _) => format!("schedules[{i}].services[{j}]"),
                Unknown::Group(j, _) => format!("schedules[{i}].service_groups[{j}]"),
            };
            return Err(ProfileError::invalid(field, catalog.unknown_message(&u)));
        }
    }
    let categories = spec
        .categories
        .as_ref()
        .map(|c| categories(c, known, "categories"))
        .transpose()?;
    let schedule = match &spec.schedule {
        Some(s) => {
            Schedule::new(&s.days, &s.start, &s.end, &s.timezone)
                .map_err(|e| ProfileError::invalid(schedule_field(&e), e.to_string()))?;
            let mut s = s.clone();
            s.categories = categories_required(&s.categories, known, "schedule.categories")?;
            Some(s)
        }
        None => None,
    };
    if let Err(u) = catalog.resolve(&spec.services, &spec.service_groups) {
        let field = match &u {
            Unknown::Service(i, _) => format!("services[{i}]"),
            Unknown::Group(i, _) => format!("service_groups[{i}]"),
        };
        return Err(ProfileError::invalid(field, catalog.unknown_message(&u)));
    }
    Ok(ProfileSpec {
        name: name.to_owned(),
        categories,
        allow: names(&spec.allow, "allow")?,
        deny: names(&spec.deny, "deny")?,
        safesearch: spec.safesearch,
        youtube: spec.youtube,
        mode: spec.mode,
        schedule,
        services: dedup(&spec.services),
        service_groups: dedup(&spec.service_groups),
        bypass_protection: spec.bypass_protection,
        block_unsafe_search: spec.block_unsafe_search,
        schedules: spec.schedules.clone(),
    })
}

/// The [`Window`] of a stored window, or the field at fault (`days`, `timezone`, ...)
/// and why; categories and services are checked by `validate_spec`.
pub fn window_of(w: &WindowSpec) -> Result<Window, (&'static str, String)> {
    use crate::policy::schedule::ScheduleError as E;
    let schedule = Schedule::new(&w.days, &w.start, &w.end, &w.timezone).map_err(|e| {
        let field = match e {
            E::UnknownDay(_) | E::NoDays => "days",
            E::BadTime { field: "start", .. } => "start",
            E::BadTime { .. } | E::EmptyWindow(_) => "end",
            E::UnknownTimeZone { .. } => "timezone",
        };
        (field, e.to_string())
    })?;
    let action = WindowAction::parse(w.action.as_deref().unwrap_or("block"))
        .map_err(|e| ("action", e.to_string()))?;
    Window::new(
        schedule,
        action,
        &w.except,
        w.categories.clone(),
        w.services.clone(),
        w.service_groups.clone(),
    )
    .map_err(|e| {
        let field = match e {
            WindowError::BadExcept(_) => "except",
            WindowError::AllowWithCategories => "categories",
            _ => "services",
        };
        (field, e.to_string())
    })
}

fn dedup(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for x in list {
        if !out.contains(x) {
            out.push(x.clone());
        }
    }
    out
}

fn schedule_field(e: &crate::policy::schedule::ScheduleError) -> &'static str {
    use crate::policy::schedule::ScheduleError as E;
    match e {
        E::UnknownDay(_) | E::NoDays => "schedule.days",
        E::BadTime { field: "start", .. } => "schedule.start",
        E::BadTime { .. } | E::EmptyWindow(_) => "schedule.end",
        E::UnknownTimeZone { .. } => "schedule.timezone",
    }
}

fn categories(list: &[String], known: &[String], field: &str) -> Result<Vec<String>, ProfileError> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        if !known.iter().any(|k| k == c) {
            return Err(ProfileError::invalid(
                format!("{field}[{i}]"),
                format!(
                    "unknown category {c:?}; the list has: {}",
                    if known.is_empty() {
                        "no categories".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
    Ok(out)
}

fn categories_required(
    list: &[String],
    known: &[String],
    field: &str,
) -> Result<Vec<String>, ProfileError> {
    if list.is_empty() {
        return Err(ProfileError::invalid(
            field,
            "a schedule adds categories: give at least one",
        ));
    }
    categories(list, known, field)
}

fn names(list: &[String], field: &str) -> Result<Vec<String>, ProfileError> {
    if list.len() > MAX_LIST_ENTRIES {
        return Err(ProfileError::invalid(
            field,
            format!("more than {MAX_LIST_ENTRIES} names"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let n = normalize(raw.trim())
            .map_err(|r| {
                ProfileError::invalid(format!("{field}[{i}]"), format!("{raw:?}: {}", r.as_str()))
            })?
            .into_owned();
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// The normalized value of an identity of `kind`, or why it is not one (field `value`).
pub(super) fn identity_value(kind: IdentityKind, raw: &str) -> Result<String, ProfileError> {
    let raw = raw.trim();
    let bad = |reason: String| ProfileError::invalid("value", reason);
    match kind {
        IdentityKind::Ip => raw
            .parse::<IpAddr>()
            .map(|a| a.to_string())
            .map_err(|_| bad(format!("{raw:?} is not an IP address"))),
        IdentityKind::Cidr => network(raw).map(|n| n.to_string()).map_err(bad),
        IdentityKind::Mac => mac(raw).ok_or_else(|| {
            bad(format!(
                "{raw:?} is not a MAC address; expected six hex pairs like aa:bb:cc:dd:ee:ff"
            ))
        }),
        IdentityKind::ClientId => client_id(raw).ok_or_else(|| {
            bad(format!(
                "{raw:?} is not a ClientID: one DNS label of 1 to 63 characters a-z, 0-9 \
                 and '-', not starting or ending with '-'"
            ))
        }),
    }
}

/// A network in canonical form (`10.1.0.0/16`); an address alone is its host prefix.
/// Host bits set are refused (`10.1.2.3/16` is ambiguous).
pub(super) fn network(raw: &str) -> Result<IpNet, String> {
    let raw = raw.trim();
    if let Ok(addr) = raw.parse::<IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    let net: IpNet = raw
        .parse()
        .map_err(|_| format!("{raw:?} is not an IP address or network (CIDR)"))?;
    if net.trunc() != net {
        return Err(format!(
            "{raw:?} has host bits set; did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}

fn mac(raw: &str) -> Option<String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then(|| raw.to_ascii_lowercase())
}

fn client_id(raw: &str) -> Option<String> {
    let id = raw.to_ascii_lowercase();
    let ok = (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    ok.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_normalized_or_refused() {
        use IdentityKind::*;
        assert_eq!(identity_value(Ip, " 2001:DB8::1 ").unwrap(), "2001:db8::1");
        assert_eq!(identity_value(Cidr, "10.1.0.0/16").unwrap(), "10.1.0.0/16");
        assert_eq!(identity_value(Cidr, "192.0.2.7").unwrap(), "192.0.2.7/32");
        assert!(identity_value(Cidr, "10.1.2.3/16").is_err());
        assert!(identity_value(Ip, "10.0.0.0/8").is_err());
        assert_eq!(
            identity_value(Mac, "AA:bb:cc:dd:ee:0F").unwrap(),
            "aa:bb:cc:dd:ee:0f"
        );
        for bad in [
            "aa:bb:cc:dd:ee",
            "aa-bb-cc-dd-ee-ff",
            "aa:bb:cc:dd:ee:fg",
            "aabb:cc:dd:ee:ff:00",
        ] {
            assert!(identity_value(Mac, bad).is_err(), "{bad}");
        }
        assert_eq!(
            identity_value(ClientId, "Kid-Tablet").unwrap(),
            "kid-tablet"
        );
        let long = "a".repeat(64);
        for bad in ["", "-a", "a-", "a.b", "a_b", long.as_str()] {
            assert!(identity_value(ClientId, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_categories_are_named_with_their_index() {
        let known = vec!["adult".to_owned(), "gambling".to_owned()];
        let spec = ProfileSpec {
            name: "kids".into(),
            categories: Some(vec!["adult".into(), "nope".into()]),
            ..ProfileSpec::default()
        };
        let e = validate_spec(&spec, &known, &Catalog::default()).unwrap_err();
        assert_eq!(e.field(), Some("categories[1]"), "{e}");
    }

    #[test]
    fn unknown_services_and_service_groups_are_named_with_the_known_ones() {
        let catalog = Catalog::builtin().unwrap();
        let spec = ProfileSpec {
            name: "kids".into(),
            services: vec!["tiktok".into(), "tiktok".into(), "tikstok".into()],
            ..ProfileSpec::default()
        };
        let e = validate_spec(&spec, &[], &catalog).unwrap_err();
        assert_eq!(e.field(), Some("services[2]"), "{e}");
        assert!(e.to_string().contains("roblox"), "{e}");
        let spec = ProfileSpec {
            name: "kids".into(),
            service_groups: vec!["gamez".into()],
            ..ProfileSpec::default()
        };
        let e = validate_spec(&spec, &[], &catalog).unwrap_err();
        assert_eq!(e.field(), Some("service_groups[0]"), "{e}");
        assert!(e.to_string().contains("games"), "{e}");
        let spec = ProfileSpec {
            name: "kids".into(),
            services: vec!["tiktok".into(), "tiktok".into()],
            service_groups: vec!["games".into()],
            ..ProfileSpec::default()
        };
        let ok = validate_spec(&spec, &[], &catalog).unwrap();
        assert_eq!(ok.services, ["tiktok"]);
    }
}
