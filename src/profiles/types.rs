//! What goes in and out of the profile store, shaped for the HTTP layer (serde).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::ProfileError;
use crate::answer::BlockingMode;
use crate::policy::GroupConfig;
use crate::policy::safesearch::YouTubeMode;

pub use crate::policy::CONFIG_ID_PREFIX;
/// Prefix of the ids of profiles stored through the API (`p12`).
pub const STORED_ID_PREFIX: char = 'p';

/// A profile's editable part: what a `POST` or `PUT` sends, and what a `GET` returns
/// (with [`Profile`]'s id and version around it). Unknown fields are refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    /// Unique among all profiles (those of the config file included); 1 to 64 printable
    /// characters.
    pub name: String,
    /// Block-list categories that apply; absent or `null` = all.
    #[serde(default)]
    pub categories: Option<Vec<String>>,
    /// The profile's own allowed names.
    #[serde(default)]
    pub allow: Vec<String>,
    /// The profile's own blocked names.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Rewrite search engines to their SafeSearch hosts.
    #[serde(default)]
    pub safesearch: bool,
    /// YouTube restriction when `safesearch` is on: `strict` (default) or `moderate`.
    #[serde(default)]
    pub youtube: YouTubeMode,
    /// Blocking mode override: `nxdomain`, `null` or `ip`; absent = `blocking.mode`.
    #[serde(default)]
    pub mode: Option<Mode>,
    /// Extra categories during a weekly time window (same shape as `[groups.schedule]`).
    #[serde(default)]
    pub schedule: Option<ScheduleSpec>,
    /// Blocked services, by catalog id (`tiktok`).
    #[serde(default)]
    pub services: Vec<String>,
    /// Blocked service groups (`games`): every catalog service of the group.
    #[serde(default)]
    pub service_groups: Vec<String>,
    /// Block the ways around the filter ([`crate::bypass`]); absent or `null` = on when
    /// the profile filters anything ([`GroupConfig::bypass_on`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bypass_protection: Option<bool>,
    /// Block search engines whose SafeSearch cannot be forced.
    #[serde(default)]
    pub block_unsafe_search: bool,
    /// Several weekly windows, each blocking or allowing (as `[[groups.schedules]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<WindowSpec>,
}

/// A weekly window of a stored profile, as in `[[groups.schedules]]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// Days the window opens: `mon`, `tue`, ...
    pub days: Vec<String>,
    /// `HH:MM`.
    pub start: String,
    /// `HH:MM` (earlier than `start` = overnight; `24:00` = midnight).
    pub end: String,
    /// IANA time zone, e.g. `Europe/Paris`.
    pub timezone: String,
    /// Local dates it does not open: `2027-04-30`, `2027-02-14..2027-02-20`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
    /// `block` (absent = block) or `allow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Categories a block window adds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Services the window blocks, or allows only while open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// Service groups, as `services`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_groups: Vec<String>,
}

/// `mode` of a profile: [`BlockingMode`] with a serialized form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// NXDOMAIN with an SOA.
    Nxdomain,
    /// 0.0.0.0 / ::.
    Null,
    /// The block page's address.
    Ip,
}

impl From<Mode> for BlockingMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Nxdomain => BlockingMode::Nxdomain,
            Mode::Null => BlockingMode::Null,
            Mode::Ip => BlockingMode::Ip,
        }
    }
}

impl From<BlockingMode> for Mode {
    fn from(m: BlockingMode) -> Self {
        match m {
            BlockingMode::Nxdomain => Mode::Nxdomain,
            BlockingMode::Null => Mode::Null,
            BlockingMode::Ip => Mode::Ip,
        }
    }
}

/// A weekly window with extra categories, as in `[groups.schedule]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Days the window opens: `mon`, `tue`, ...
    pub days: Vec<String>,
    /// `HH:MM`.
    pub start: String,
    /// `HH:MM` (earlier than `start` = overnight; `24:00` = midnight).
    pub end: String,
    /// IANA time zone, e.g. `Europe/Paris`.
    pub timezone: String,
    /// Categories added while the window is open.
    #[serde(default)]
    pub categories: Vec<String>,
}

/// A profile as read: its id, version and editable part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// Stable id: `p<n>` for a stored profile, `config:<name>` for one of the config file.
    pub id: String,
    /// Bumped by every write; the `ETag`. Config profiles are always version 0.
    pub version: i64,
    /// True for a profile of the config file: the API does not change it.
    pub read_only: bool,
    /// The editable part.
    #[serde(flatten)]
    pub spec: ProfileSpec,
    /// The client networks a config profile lists (stored profiles use identities).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<String>,
    /// A config profile's allowlist files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_paths: Vec<String>,
    /// A config profile's blocklist files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny_paths: Vec<String>,
}

impl Profile {
    /// The read-only view of a config file group. Its schedule's time zone and times are
    /// not kept by [`GroupConfig`], so only the extra categories are shown (under
    /// `schedule.categories`, with empty days and times).
    pub fn from_config(group: &GroupConfig) -> Profile {
        Profile {
            id: format!("{CONFIG_ID_PREFIX}{}", group.name),
            version: 0,
            read_only: true,
            spec: ProfileSpec {
                name: group.name.clone(),
                categories: group.categories.clone(),
                allow: group.allow.clone(),
                deny: group.deny.clone(),
                safesearch: group.safesearch,
                youtube: group.youtube,
                mode: group.mode.map(Mode::from),
                schedule: group.schedule.as_ref().map(|(_, extra)| ScheduleSpec {
                    categories: extra.clone(),
                    ..ScheduleSpec::default()
                }),
                services: group.services.clone(),
                service_groups: group.service_groups.clone(),
                bypass_protection: group.bypass_protection,
                block_unsafe_search: group.block_unsafe_search,
                schedules: Vec::new(),
            },
            clients: group.clients.iter().map(ToString::to_string).collect(),
            allow_paths: group
                .allow_paths
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            deny_paths: group
                .deny_paths
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        }
    }
}

/// What kind of value identifies a client as a profile's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    /// One IPv4 or IPv6 address.
    Ip,
    /// A network, e.g. `10.1.0.0/16`.
    Cidr,
    /// A DoT/DoH ClientID: one DNS label, `[a-z0-9-]`, 1 to 63 characters.
    ClientId,
    /// A MAC address `aa:bb:cc:dd:ee:ff` (EDNS client MAC from a local forwarder).
    Mac,
}

impl IdentityKind {
    /// The name as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Ip => "ip",
            IdentityKind::Cidr => "cidr",
            IdentityKind::ClientId => "client_id",
            IdentityKind::Mac => "mac",
        }
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IdentityKind {
    type Err = ProfileError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ip" => Ok(IdentityKind::Ip),
            "cidr" => Ok(IdentityKind::Cidr),
            "client_id" => Ok(IdentityKind::ClientId),
            "mac" => Ok(IdentityKind::Mac),
            _ => Err(ProfileError::invalid(
                "kind",
                format!("unknown kind {s:?}; expected ip, cidr, client_id or mac"),
            )),
        }
    }
}

/// An identity as sent to `POST /v1/profiles/{id}/identities`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewIdentity {
    /// What `value` is.
    pub kind: IdentityKind,
    /// The address, network, ClientID or MAC address (normalized when stored).
    pub value: String,
}

/// A stored identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// Stable id.
    pub id: i64,
    /// The profile it belongs to.
    pub profile: String,
    /// What `value` is.
    pub kind: IdentityKind,
    /// The normalized value.
    pub value: String,
}

/// A subscriber line: an address or prefix served by a profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscriber {
    /// The address or network, normalized (`192.0.2.7/32`, `2001:db8::/56`).
    pub prefix: String,
    /// The profile's id.
    pub profile: String,
}

/// One entry of the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Increasing id.
    pub id: i64,
    /// When, in seconds since the Unix epoch.
    pub at: u64,
    /// Who: `admin`, `portal`, or a token's name; never a token.
    pub actor: String,
    /// `create`, `update`, `delete`, `bulk`.
    pub action: String,
    /// What: `profile:p3`, `identity:7`, `subscriber:192.0.2.0/24`, `subscribers`.
    pub entity: String,
    /// The entity before the write (`null` for a creation).
    pub before: Option<serde_json::Value>,
    /// The entity after the write (`null` for a deletion).
    pub after: Option<serde_json::Value>,
}

/// Everything the query path needs from the store, read in one transaction: for the
/// live policy swap. Config profiles are not in `groups` (they are in the config's
/// policy already), but `subscribers` may point at them (`config:<name>` ids).
#[derive(Clone, Debug, Default)]
pub struct ProfilesSnapshot {
    /// The stored profiles' windows by profile id (filled by the reader of the store
    /// beside the snapshot, see `app::profiles`).
    pub windows: HashMap<String, Vec<crate::policy::windows::Window>>,
    /// The store's generation this was read at (the value of the change notification).
    pub generation: u64,
    /// The stored profiles by id, as client groups: `clients` holds their `ip` and `cidr`
    /// identities; no list files.
    pub groups: Vec<(String, GroupConfig)>,
    /// Address or network → profile id: `ip`/`cidr` identities.
    pub by_prefix: Vec<(IpNet, String)>,
    /// Subscriber lines edited through the API: address or prefix → profile id (stored
    /// or `config:<name>`).
    pub subscribers: Vec<(IpNet, String)>,
    /// ClientID → profile id.
    pub by_client_id: HashMap<String, String>,
    /// MAC address (lowercase, colon-separated) → profile id.
    pub by_mac: HashMap<String, String>,
}

/// Keys a client may send back from a `GET` that are not part of the editable spec.
const READ_ONLY_KEYS: [&str; 6] = [
    "id",
    "version",
    "read_only",
    "clients",
    "allow_paths",
    "deny_paths",
];

impl ProfileSpec {
    /// Parses a JSON body into a spec, ignoring the read-only keys a `GET` returned (`id`,
    /// `version`, ...), naming the failing field (`schedule.days`) on error.
    ///
    /// # Errors
    /// [`ProfileError::Invalid`] naming the field that does not fit.
    pub fn from_json(mut value: serde_json::Value) -> Result<ProfileSpec, ProfileError> {
        let Some(object) = value.as_object_mut() else {
            return Err(ProfileError::invalid("body", "expected a JSON object"));
        };
        for key in READ_ONLY_KEYS {
            object.remove(key);
        }
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { path };
            let reason = e.into_inner().to_string();
            // An unknown field is reported at the top: name it.
            let field = if field.is_empty() {
                reason
                    .split('`')
                    .nth(1)
                    .filter(|_| {
                        reason.starts_with("unknown field") || reason.starts_with("missing field")
                    })
                    .unwrap_or("body")
                    .to_owned()
            } else {
                field
            };
            ProfileError::invalid(field, reason)
        })
    }
}

/// Applies a JSON merge patch (RFC 7396) to `target`: objects merge key by key, `null`
/// removes a key, anything else replaces.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                }
            }
        }
        _ => {
            if let Some(p) = patch.as_object() {
                let mut fresh = serde_json::Value::Object(serde_json::Map::new());
                merge_patch(&mut fresh, &serde_json::Value::Object(p.clone()));
                *target = fresh;
            } else {
                *target = patch.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bypass_fields_are_optional_and_round_trip() {
        let spec: ProfileSpec = serde_json::from_str(r#"{"name": "kids"}"#).unwrap();
        assert_eq!(spec.bypass_protection, None);
        assert!(!spec.block_unsafe_search);
        let json = serde_json::to_value(&spec).unwrap();
        assert!(json.get("bypass_protection").is_none(), "{json}");
        let spec: ProfileSpec = serde_json::from_str(
            r#"{"name": "staff", "bypass_protection": false, "block_unsafe_search": true}"#,
        )
        .unwrap();
        assert_eq!(spec.bypass_protection, Some(false));
        assert!(spec.block_unsafe_search);
        let mut group = GroupConfig::implicit_default();
        group.bypass_protection = Some(false);
        let shown = Profile::from_config(&group);
        assert_eq!(shown.spec.bypass_protection, Some(false));
    }
}
