//! The policy's settings: who may query, how fast, and each client group's rules. The
//! `[server]` access keys (`allow_clients`, `rate_limit_*`, `refuse_action`), `[[groups]]`
//! and `[safesearch]` tables become a [`PolicyConfig`] once [`crate::config`] has checked
//! them; [`crate::policy::decide`] builds the serving policy from it.

use std::path::PathBuf;
use std::sync::Arc;

use ipnet::IpNet;
use serde::Deserialize;

use crate::answer::BlockingMode;
use crate::policy::client::{ClientId, Mac};
use crate::policy::safesearch::YouTubeMode;
use crate::policy::schedule::Schedule;
use crate::policy::windows::Window;
use crate::services::Catalog;

/// Access, rate limiting and per-client groups.
#[derive(Clone, Debug)]
pub struct PolicyConfig {
    /// Networks allowed to query (closed resolver, RFC 5358).
    pub allow_clients: Vec<IpNet>,
    /// Per-client rate limit, if any.
    pub rate_limit: Option<RateLimitConfig>,
    /// What refused and rate-limited clients get.
    pub refuse_action: RefuseAction,
    /// Client groups; the last one is always `default`.
    pub groups: Vec<GroupConfig>,
    /// SafeSearch data folder (`safesearch.dir`); `None` = the lists built into the binary.
    pub safesearch_dir: Option<PathBuf>,
    /// TTL of SafeSearch CNAMEs.
    pub safesearch_ttl: u32,
    /// The service catalog groups' `services` and `service_groups` name (the built-in one
    /// with `[services] dir` merged over it).
    pub services: Arc<Catalog>,
    /// Each group's time windows (`[[groups.schedules]]`), by group id; a group absent
    /// here has none beyond its single `schedule`.
    pub windows: std::collections::HashMap<String, Vec<Window>>,
    /// Categories blocked for every group whatever else says (`lists.mandatory`).
    pub mandatory: Vec<String>,
}

/// Token-bucket settings.
#[derive(Clone, Copy, Debug)]
pub struct RateLimitConfig {
    /// Sustained queries per second per client.
    pub qps: u32,
    /// Burst size.
    pub burst: u32,
    /// Clients tracked (memory bound).
    pub clients: usize,
}

/// Prefix of the ids of profiles defined in the config file (`config:kids`).
pub const CONFIG_ID_PREFIX: &str = "config:";

/// One client group.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    /// The profile id: `config:<name>` for a `[[groups]]` table of the config file, `p<n>`
    /// for a profile stored through the API. Subscriber rows point at it.
    pub id: String,
    /// Name, shown in EDE texts (`blocked: gambling (profile school)`).
    pub name: String,
    /// Client networks (empty for `default`).
    pub clients: Vec<IpNet>,
    /// ClientIDs of the group's devices (DoH path, TLS server name): they win over MACs
    /// and addresses.
    pub client_ids: Vec<ClientId>,
    /// MAC addresses of the group's devices (from trusted forwarders): they win over
    /// addresses.
    pub macs: Vec<Mac>,
    /// Categories that apply; `None` = all.
    pub categories: Option<Vec<String>>,
    /// The group's own allowed names.
    pub allow: Vec<String>,
    /// The group's own allowlist files.
    pub allow_paths: Vec<PathBuf>,
    /// The group's own blocked names.
    pub deny: Vec<String>,
    /// The group's own blocklist files.
    pub deny_paths: Vec<PathBuf>,
    /// SafeSearch rewriting on?
    pub safesearch: bool,
    /// YouTube restriction level.
    pub youtube: YouTubeMode,
    /// Blocking mode override.
    pub mode: Option<BlockingMode>,
    /// Extra categories in a time window.
    pub schedule: Option<(Schedule, Vec<String>)>,
    /// Blocked services, by catalog id (`tiktok`).
    pub services: Vec<String>,
    /// Blocked service groups: every catalog service of the group (`games`).
    pub service_groups: Vec<String>,
    /// `bypass_protection`: block the ways around the filter ([`crate::bypass`]); `None`
    /// = the default, [`GroupConfig::bypass_on`].
    pub bypass_protection: Option<bool>,
    /// `block_unsafe_search`: block the search engines whose SafeSearch cannot be
    /// forced ([`crate::policy::safesearch::UnsafeSearch`]).
    pub block_unsafe_search: bool,
}

impl GroupConfig {
    /// The implicit group that covers everyone when none is configured.
    pub fn implicit_default() -> Self {
        GroupConfig {
            id: format!("{CONFIG_ID_PREFIX}default"),
            name: "default".into(),
            clients: Vec::new(),
            client_ids: Vec::new(),
            macs: Vec::new(),
            categories: None,
            allow: Vec::new(),
            allow_paths: Vec::new(),
            deny: Vec::new(),
            deny_paths: Vec::new(),
            safesearch: false,
            youtube: YouTubeMode::Strict,
            mode: None,
            schedule: None,
            services: Vec::new(),
            service_groups: Vec::new(),
            bypass_protection: None,
            block_unsafe_search: false,
        }
    }

    /// Whether bypass protection is on: `bypass_protection` when set, else on for a group
    /// that filters anything (any list category, a service, its own deny list, SafeSearch),
    /// off for an unfiltered one (`categories = []` and nothing else). The implicit
    /// `default` of a config without groups filters every category, so it is on: a
    /// filtering resolver that lets Firefox switch to its own DoH filters nothing.
    pub fn bypass_on(&self) -> bool {
        self.bypass_protection.unwrap_or_else(|| {
            self.categories.as_ref().is_none_or(|c| !c.is_empty())
                || self.has_services()
                || !(self.deny.is_empty() && self.deny_paths.is_empty())
                || self.safesearch
                || self.schedule.is_some()
                || self.block_unsafe_search
        })
    }

    /// What names the group's own compiled list on disk: the config file's groups by
    /// name (as always), a stored profile by its id (its name may change, and two names
    /// may read the same once made safe for a file name).
    pub fn list_key(&self) -> &str {
        if self.id.starts_with(CONFIG_ID_PREFIX) {
            &self.name
        } else {
            &self.id
        }
    }

    /// True when the group blocks any service.
    pub fn has_services(&self) -> bool {
        !(self.services.is_empty() && self.service_groups.is_empty())
    }

    /// True when the group has its own allow/deny entries to compile.
    pub fn has_own_lists(&self) -> bool {
        !(self.allow.is_empty()
            && self.allow_paths.is_empty()
            && self.deny.is_empty()
            && self.deny_paths.is_empty())
    }
}

/// What a client that may not be answered gets (`server.refuse_action`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RefuseAction {
    /// REFUSED with an Extended DNS Error.
    #[default]
    Refuse,
    /// No answer at all (nothing to amplify).
    Drop,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bypass_protection_is_on_where_a_profile_filters_anything() {
        let d = GroupConfig::implicit_default();
        assert!(d.bypass_on(), "the implicit default filters every category");
        let mut open = GroupConfig::implicit_default();
        open.categories = Some(Vec::new());
        assert!(!open.bypass_on(), "an unfiltered profile");
        let mut g = open.clone();
        g.services = vec!["tiktok".into()];
        assert!(g.bypass_on());
        let mut g = open.clone();
        g.deny = vec!["x.example".into()];
        assert!(g.bypass_on());
        let mut g = open.clone();
        g.safesearch = true;
        assert!(g.bypass_on());
        let mut g = open.clone();
        g.categories = Some(vec!["adult".into()]);
        assert!(g.bypass_on());
        // Set explicitly, it wins either way.
        let mut g = d.clone();
        g.bypass_protection = Some(false);
        assert!(!g.bypass_on());
        let mut g = open;
        g.bypass_protection = Some(true);
        assert!(g.bypass_on());
    }
}
