//! The service catalog: which domains make up each service, in two languages, with where
//! each domain was sourced.
//!
//! A catalog file is TOML with one `[[service]]` table per entry:
//!
//! ```toml
//! [[service]]
//! id = "tiktok"                 # lowercase a-z, 0-9, _ (what configs and the API name)
//! name_en = "TikTok"
//! name_vi = "TikTok"
//! group = "video"               # what `service_groups` names
//! verified = "2026-11-29"       # or source = "https://vendor.example/firewall-docs"
//! domains = [
//!     "tiktok.com",             # blocks tiktok.com and every name under it
//!     { name = "fbcdn.net", shared_with = ["instagram"], source = "https://..." },
//! ]
//! ```
//!
//! The built-in files ([`BUILTIN`]) are compiled in. [`Catalog::load`] merges a directory
//! over them: an entry with a built-in id replaces it, a new id adds one; a file that does
//! not parse or check is named in a warning and skipped as a whole.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The catalog files built into the binary: (file name, text).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "social.toml",
        include_str!("../../data/services/social.toml"),
    ),
    ("chat.toml", include_str!("../../data/services/chat.toml")),
    ("video.toml", include_str!("../../data/services/video.toml")),
    ("games.toml", include_str!("../../data/services/games.toml")),
    (
        "dating.toml",
        include_str!("../../data/services/dating.toml"),
    ),
    (
        "anonymous_chat.toml",
        include_str!("../../data/services/anonymous_chat.toml"),
    ),
    (
        "ai_companion.toml",
        include_str!("../../data/services/ai_companion.toml"),
    ),
];

/// The longest service id.
pub const MAX_ID_LEN: usize = 40;

/// A catalog file that does not parse or check: names the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Not TOML of the catalog's shape.
    #[error("{file}: {message} (see data/services/README.md for the entry format)")]
    Parse {
        /// The file.
        file: PathBuf,
        /// What the TOML parser said, with its line.
        message: String,
    },
    /// A value that parses but is not allowed.
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The key, e.g. `service[3].domains[1]` (`tiktok`'s second domain).
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// The override directory cannot be read.
    #[error("services dir {dir}: {source}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// One domain of a service: it blocks itself and its subdomains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceDomain {
    /// Lowercase, no trailing dot, at least two labels.
    pub name: String,
    /// The vendor's documentation (or a cross-check) this domain comes from.
    pub source: Option<String>,
    /// The date (`YYYY-MM-DD`) the domain was checked to belong to the service.
    pub verified: Option<String>,
    /// Other services that list this domain too, on purpose (one vendor's shared CDN).
    pub shared_with: Vec<String>,
}

/// One service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// Lowercase id: what configs and the API name (`tiktok`).
    pub id: String,
    /// English name.
    pub name_en: String,
    /// Vietnamese name.
    pub name_vi: String,
    /// Group (`social`, `games`, ...): what `service_groups` names.
    pub group: String,
    /// The domains; the first is the service's main one.
    pub domains: Vec<ServiceDomain>,
}

/// Every known service, in file order (built-in files first), ids unique.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    services: Vec<Service>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    service: Vec<RawService>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    id: String,
    name_en: String,
    name_vi: String,
    group: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    verified: Option<String>,
    domains: Vec<RawDomain>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDomain {
    Name(String),
    Table(RawDomainTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomainTable {
    name: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    verified: Option<String>,
    #[serde(default)]
    shared_with: Vec<String>,
}

/// True for a service id or group name: 1 to [`MAX_ID_LEN`] of `a-z`, `0-9`, `_`, starting
/// with a letter.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.as_bytes()[0].is_ascii_lowercase()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Why `name` is not a valid catalog domain (lowercase LDH labels, two at least), if not.
pub fn domain_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 253 {
        return Some("must be 1 to 253 characters");
    }
    if name.ends_with('.') {
        return Some("no trailing dot");
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Some("needs at least two labels (a registrable domain or below)");
    }
    for l in labels {
        if l.is_empty() || l.len() > 63 {
            return Some("every label must be 1 to 63 characters");
        }
        if !l
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Some("lowercase letters, digits and `-` only (punycode for IDNs)");
        }
        if l.starts_with('-') || l.ends_with('-') {
            return Some("a label cannot start or end with `-`");
        }
    }
    None
}

fn valid_date(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Parses and checks one catalog file's text; `file` names it in errors.
///
/// # Errors
/// [`CatalogError::Parse`] for TOML that is not of the catalog's shape,
/// [`CatalogError::Invalid`] for a bad id, name, group, domain, date or missing source.
pub fn parse_file(file: &Path, text: &str) -> Result<Vec<Service>, CatalogError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| CatalogError::Parse {
        file: file.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    let invalid = |key: String, message: String| CatalogError::Invalid {
        file: file.to_owned(),
        key,
        message,
    };
    let mut out: Vec<Service> = Vec::with_capacity(raw.service.len());
    for (i, s) in raw.service.into_iter().enumerate() {
        let at = |k: &str| format!("service[{i}] ({}).{k}", s.id);
        if !valid_id(&s.id) {
            return Err(invalid(
                format!("service[{i}].id"),
                format!(
                    "`{}`: 1 to {MAX_ID_LEN} of a-z, 0-9 and _, starting with a letter",
                    s.id
                ),
            ));
        }
        if out.iter().any(|o| o.id == s.id) {
            return Err(invalid(at("id"), "used twice in this file".into()));
        }
        for (k, v) in [("name_en", &s.name_en), ("name_vi", &s.name_vi)] {
            if v.trim().is_empty() {
                return Err(invalid(at(k), "must not be empty".into()));
            }
        }
        if !valid_id(&s.group) {
            return Err(invalid(
                at("group"),
                format!("`{}`: a lowercase word such as `games`", s.group),
            ));
        }
        for (k, v) in [("verified", &s.verified)] {
            if let Some(d) = v
                && !valid_date(d)
            {
                return Err(invalid(at(k), format!("`{d}`: expected YYYY-MM-DD")));
            }
        }
        if s.domains.is_empty() {
            return Err(invalid(at("domains"), "give at least one domain".into()));
        }
        let mut domains: Vec<ServiceDomain> = Vec::with_capacity(s.domains.len());
        for (j, d) in s.domains.into_iter().enumerate() {
            let key = at(&format!("domains[{j}]"));
            let d = match d {
                RawDomain::Name(name) => RawDomainTable {
                    name,
                    source: None,
                    verified: None,
                    shared_with: Vec::new(),
                },
                RawDomain::Table(t) => t,
            };
            if let Some(why) = domain_problem(&d.name) {
                return Err(invalid(key, format!("`{}`: {why}", d.name)));
            }
            if domains.iter().any(|x| x.name == d.name) {
                return Err(invalid(key, format!("`{}` is listed twice", d.name)));
            }
            if let Some(v) = &d.verified
                && !valid_date(v)
            {
                return Err(invalid(key, format!("verified `{v}`: expected YYYY-MM-DD")));
            }
            if let Some(bad) = d.shared_with.iter().find(|x| !valid_id(x)) {
                return Err(invalid(
                    key,
                    format!("shared_with: `{bad}` is not a service id"),
                ));
            }
            let source = d.source.or_else(|| s.source.clone());
            let verified = d.verified.or_else(|| s.verified.clone());
            if source.as_deref().is_none_or(|x| x.trim().is_empty()) && verified.is_none() {
                return Err(invalid(
                    key,
                    format!(
                        "`{}` has no `source` (the vendor's documentation) or `verified` date, \
                         on the domain or on the entry",
                        d.name
                    ),
                ));
            }
            domains.push(ServiceDomain {
                name: d.name,
                source,
                verified,
                shared_with: d.shared_with,
            });
        }
        out.push(Service {
            id: s.id,
            name_en: s.name_en.trim().to_owned(),
            name_vi: s.name_vi.trim().to_owned(),
            group: s.group,
            domains,
        });
    }
    Ok(out)
}

impl Catalog {
    /// A catalog of exactly these services (later duplicates of an id replace earlier).
    pub fn from_services(services: Vec<Service>) -> Catalog {
        let mut c = Catalog::default();
        for s in services {
            c.put(s);
        }
        c
    }

    fn put(&mut self, s: Service) {
        match self.services.iter_mut().find(|o| o.id == s.id) {
            Some(slot) => *slot = s,
            None => self.services.push(s),
        }
    }

    /// The catalog built into the binary.
    ///
    /// # Errors
    /// A built-in file does not parse or check (the unit tests keep that from shipping).
    pub fn builtin() -> Result<Catalog, CatalogError> {
        let mut c = Catalog::default();
        for (name, text) in BUILTIN {
            let file = Path::new("data/services").join(name);
            for s in parse_file(&file, text)? {
                c.put(s);
            }
        }
        Ok(c)
    }

    /// The built-in catalog with `dir`'s `*.toml` files merged over it (in file name
    /// order): an entry with a known id replaces that entry, a new id is added. A file that
    /// does not parse or check is skipped whole; its error comes back in the warnings.
    ///
    /// # Errors
    /// The built-in catalog is broken, or `dir` cannot be listed.
    pub fn load(dir: Option<&Path>) -> Result<(Catalog, Vec<CatalogError>), CatalogError> {
        let mut c = Catalog::builtin()?;
        let mut warnings = Vec::new();
        let Some(dir) = dir else {
            return Ok((c, warnings));
        };
        let dir_err = |source| CatalogError::Dir {
            dir: dir.to_owned(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(dir_err)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        for file in files {
            let parsed = std::fs::read_to_string(&file)
                .map_err(|e| CatalogError::Parse {
                    file: file.clone(),
                    message: e.to_string(),
                })
                .and_then(|text| parse_file(&file, &text));
            match parsed {
                Ok(services) => services.into_iter().for_each(|s| c.put(s)),
                Err(e) => warnings.push(e),
            }
        }
        Ok((c, warnings))
    }

    /// Every service.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// The service with this id.
    pub fn get(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }

    /// The index of the service with this id in [`Catalog::services`].
    pub fn position(&self, id: &str) -> Option<usize> {
        self.services.iter().position(|s| s.id == id)
    }

    /// The groups, sorted, each once.
    pub fn groups(&self) -> Vec<&str> {
        let mut g: Vec<&str> = self.services.iter().map(|s| s.group.as_str()).collect();
        g.sort_unstable();
        g.dedup();
        g
    }

    /// The ids, sorted.
    pub fn ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.services.iter().map(|s| s.id.as_str()).collect();
        ids.sort_unstable();
        ids
    }

    /// Domains listed by more than one service where the entries do not name each other
    /// in `shared_with`: `(domain, services)`.
    pub fn unshared_overlaps(&self) -> Vec<(String, Vec<String>)> {
        let mut by_domain: BTreeMap<&str, Vec<(&str, &ServiceDomain)>> = BTreeMap::new();
        for s in &self.services {
            for d in &s.domains {
                by_domain
                    .entry(d.name.as_str())
                    .or_default()
                    .push((s.id.as_str(), d));
            }
        }
        by_domain
            .into_iter()
            .filter(|(_, users)| users.len() > 1)
            .filter(|(_, users)| {
                users.iter().any(|(id, d)| {
                    users
                        .iter()
                        .any(|(other, _)| other != id && !d.shared_with.iter().any(|x| x == other))
                })
            })
            .map(|(name, users)| {
                (
                    name.to_owned(),
                    users.iter().map(|(id, _)| (*id).to_owned()).collect(),
                )
            })
            .collect()
    }

    /// How many domains the catalog lists (a shared domain once per service).
    pub fn domain_count(&self) -> usize {
        self.services.iter().map(|s| s.domains.len()).sum()
    }

    /// The services a group's `services` and `service_groups` name, as positions into
    /// [`Catalog::services`], or the first unknown name.
    ///
    /// # Errors
    /// [`Unknown`] naming the first id or group the catalog does not have.
    pub fn resolve(&self, ids: &[String], groups: &[String]) -> Result<Vec<usize>, Unknown> {
        let mut out = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            match self.position(id) {
                Some(p) => out.push(p),
                None => return Err(Unknown::Service(i, id.clone())),
            }
        }
        let known: HashMap<&str, ()> = self.groups().into_iter().map(|g| (g, ())).collect();
        for (i, g) in groups.iter().enumerate() {
            if !known.contains_key(g.as_str()) {
                return Err(Unknown::Group(i, g.clone()));
            }
            out.extend(
                self.services
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| &s.group == g)
                    .map(|(p, _)| p),
            );
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// The message for an unknown name: what was asked and every known one.
    pub fn unknown_message(&self, u: &Unknown) -> String {
        match u {
            Unknown::Service(_, id) => {
                format!("unknown service `{id}`; known: {}", self.ids().join(", "))
            }
            Unknown::Group(_, g) => format!(
                "unknown service group `{g}`; known: {}",
                self.groups().join(", ")
            ),
        }
    }
}

/// A name [`Catalog::resolve`] does not know, with its index in the list given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unknown {
    /// In `services`.
    Service(usize, String),
    /// In `service_groups`.
    Group(usize, String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> Catalog {
        match Catalog::builtin() {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn builtin_catalog_is_big_enough_and_has_the_required_services() {
        let c = builtin();
        assert!(c.services().len() >= 50, "{} services", c.services().len());
        for id in [
            "tiktok",
            "youtube",
            "facebook",
            "instagram",
            "messenger",
            "threads",
            "zalo",
            "telegram",
            "discord",
            "snapchat",
            "twitter",
            "reddit",
            "whatsapp",
            "viber",
            "wechat",
            "roblox",
            "minecraft",
            "garena",
            "free_fire",
            "lien_quan",
            "pubg_mobile",
            "mobile_legends",
            "epic_games",
            "steam",
            "hoyoverse",
            "riot_games",
            "supercell",
            "twitch",
            "kick",
            "bigo_live",
            "netflix",
            "tinder",
            "bumble",
            "ome_tv",
            "chatroulette",
            "character_ai",
            "replika",
        ] {
            assert!(c.get(id).is_some(), "missing {id}");
        }
        for g in ["social", "chat", "video", "games", "dating", "ai_companion"] {
            assert!(c.groups().contains(&g), "missing group {g}");
        }
    }

    #[test]
    fn every_entry_is_complete_and_every_domain_valid() {
        let c = builtin();
        for s in c.services() {
            assert!(valid_id(&s.id), "{}", s.id);
            assert!(!s.name_en.is_empty() && !s.name_vi.is_empty(), "{}", s.id);
            assert!(!s.domains.is_empty(), "{}", s.id);
            for d in &s.domains {
                assert_eq!(domain_problem(&d.name), None, "{} {}", s.id, d.name);
                assert_eq!(d.name, d.name.to_ascii_lowercase());
                assert!(
                    d.source.is_some() || d.verified.is_some(),
                    "{} {} has no source",
                    s.id,
                    d.name
                );
                for other in &d.shared_with {
                    assert!(c.get(other).is_some(), "{}: shared_with {other}", s.id);
                }
            }
        }
    }

    #[test]
    fn no_domain_is_in_two_services_unless_both_say_shared_with() {
        let overlaps = builtin().unshared_overlaps();
        assert!(overlaps.is_empty(), "{overlaps:?}");
    }

    #[test]
    fn overlaps_are_found() {
        let svc = |id: &str, shared: &[&str]| Service {
            id: id.into(),
            name_en: id.into(),
            name_vi: id.into(),
            group: "social".into(),
            domains: vec![ServiceDomain {
                name: "cdn.example".into(),
                source: None,
                verified: Some("2026-11-29".into()),
                shared_with: shared.iter().map(|s| (*s).to_owned()).collect(),
            }],
        };
        let c = Catalog::from_services(vec![svc("a", &["b"]), svc("b", &[])]);
        assert_eq!(c.unshared_overlaps().len(), 1);
        let c = Catalog::from_services(vec![svc("a", &["b"]), svc("b", &["a"])]);
        assert!(c.unshared_overlaps().is_empty());
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let f = Path::new("x.toml");
        let text = r#"
[[service]]
id = "a"
name_en = "A"
name_vi = "A"
group = "games"
verified = "2026-11-29"
domains = ["a.example", "Bad.example"]
"#;
        let e = parse_file(f, text).unwrap_err().to_string();
        assert!(
            e.contains("x.toml") && e.contains("service[0] (a).domains[1]"),
            "{e}"
        );
        let e = parse_file(f, &text.replace("verified = \"2026-11-29\"", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no `source`"), "{e}");
        let e = parse_file(f, "[[service]]\nid = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.toml:"), "{e}");
    }

    #[test]
    fn a_directory_replaces_adds_and_skips_broken_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.toml"),
            r#"
[[service]]
id = "tiktok"
name_en = "TikTok (ours)"
name_vi = "TikTok"
group = "video"
verified = "2026-11-29"
domains = ["tiktok.example"]

[[service]]
id = "newapp"
name_en = "New"
name_vi = "Mới"
group = "games"
source = "https://newapp.example/network"
domains = ["newapp.example"]
"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("b.toml"), "[[service]]\nid = \"x\"\n").unwrap();
        let (c, warnings) = Catalog::load(Some(dir.path())).unwrap();
        let builtin = builtin();
        assert_eq!(c.services().len(), builtin.services().len() + 1);
        assert_eq!(c.get("tiktok").unwrap().name_en, "TikTok (ours)");
        assert!(c.get("newapp").is_some());
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].to_string().contains("b.toml"),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn resolve_expands_groups_and_names_unknowns() {
        let c = builtin();
        let got = c.resolve(&["tiktok".into()], &["games".into()]).unwrap();
        assert!(got.contains(&c.position("tiktok").unwrap()));
        assert!(got.contains(&c.position("roblox").unwrap()));
        let u = c.resolve(&["tikstok".into()], &[]).unwrap_err();
        let m = c.unknown_message(&u);
        assert!(m.contains("tikstok") && m.contains("tiktok, "), "{m}");
        let u = c.resolve(&[], &["gamez".into()]).unwrap_err();
        assert!(c.unknown_message(&u).contains("games"));
    }
}
