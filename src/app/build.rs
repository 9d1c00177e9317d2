//! Building what serves from a config: the policy (groups' own lists, SafeSearch data),
//! and why that can fail. Start and the config reload both build with it.

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::feed::guard::Refusal;
use crate::feed::install::OpenError;
use crate::lists::load::{Blocklist, LoadError};
use crate::lists::swap::LiveBlocklist;
use crate::policy::GroupConfig;
use crate::policy::decide::{Clock, GroupParts, Policy};
use crate::policy::safesearch::{SafeSearch, SafeSearchError, YouTubeMode};
use crate::server;

/// Why the resolver could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No list to serve: none compiled and none could be built.
    #[error("{0}")]
    Open(#[from] OpenError),
    /// A group's compiled list could not be loaded.
    #[error("loading the compiled list failed: {0}")]
    Load(#[from] LoadError),
    /// A listen address could not be bound.
    #[error("{0}")]
    Listen(#[from] std::io::Error),
    /// A group's own list could not be compiled.
    #[error("group `{group}`: {source}")]
    GroupList {
        /// The group.
        group: String,
        /// What failed.
        #[source]
        source: Refusal,
    },
    /// The SafeSearch data could not be read.
    #[error("SafeSearch data: {0}")]
    SafeSearch(#[from] SafeSearchError),
    /// Two groups claim the same network.
    #[error("client groups: {0}")]
    Groups(#[from] crate::policy::groups::GroupError),
    /// The admin API's report store could not be opened.
    #[error("{0}")]
    Reports(#[from] crate::admin::reports::ReportError),
    /// The admin API's stores (reports, profiles) could not be opened.
    #[error("{0}")]
    Admin(#[from] crate::admin::AdminError),
    /// The console's accounts database or certificate.
    #[error("console: {0}")]
    Console(String),
    /// The exceptions file could not be read.
    #[error("{0}")]
    Exceptions(#[from] crate::exceptions::ExceptionError),
    /// A DNS, DoT or DoH listener could not start.
    #[error("{0}")]
    Server(#[from] server::ListenError),
    /// TLS to the upstream resolvers cannot be set up.
    #[error("{0}")]
    UpstreamTls(#[from] crate::upstream::tls::TlsClientError),
    /// `[publish]`: the published store cannot be opened, or (`check-config`) the signing
    /// key cannot be read.
    #[error("{0}")]
    Publish(String),
}

/// Builds the per-client policy: compiles and loads each group's own list, loads SafeSearch
/// data once per YouTube mode.
///
/// With `private_dir` `None` (the resolver) each group's list is compiled beside
/// `lists.compiled` through the guards, against the one already there; a refused list
/// leaves the one there serving. With a directory (`check`), the lists are compiled into
/// it, leaving the resolver's files alone.
///
/// # Errors
/// A group list that cannot be built (and none to fall back on), bad SafeSearch data, or
/// groups that clash.
pub fn build_policy(
    config: &Config,
    clock: Clock,
    private_dir: Option<&Path>,
) -> Result<Policy, StartError> {
    build_policy_with(config, clock, |group| {
        Ok(if group.has_own_lists() {
            Some(Arc::new(group_list(config, group, private_dir)?))
        } else {
            None
        })
    })
}

/// [`build_policy`] with each group's own list from `own` (a config reload has the feed
/// pipeline build them): loads the SafeSearch data once per YouTube mode.
///
/// # Errors
/// `own`'s error, bad SafeSearch data, or groups that clash.
pub fn build_policy_with(
    config: &Config,
    clock: Clock,
    mut own: impl FnMut(&GroupConfig) -> Result<Option<Arc<LiveBlocklist>>, StartError>,
) -> Result<Policy, StartError> {
    let mut safesearch: Vec<(YouTubeMode, Arc<SafeSearch>)> = Vec::new();
    let mut parts = Vec::with_capacity(config.policy.groups.len());
    for group in &config.policy.groups {
        let own = own(group)?;
        let ss = if group.safesearch {
            match safesearch.iter().find(|(m, _)| *m == group.youtube) {
                Some((_, s)) => Some(s.clone()),
                None => {
                    let s = Arc::new(match &config.policy.safesearch_dir {
                        Some(dir) => SafeSearch::load(dir, group.youtube)?,
                        None => SafeSearch::builtin(group.youtube)?,
                    });
                    safesearch.push((group.youtube, s.clone()));
                    Some(s)
                }
            }
        } else {
            None
        };
        parts.push(GroupParts {
            own,
            safesearch: ss,
        });
    }
    Ok(Policy::new(&config.policy, &config.blocking, parts, clock)?)
}

/// Group `group`'s own list, compiled as [`build_policy`] says.
fn group_list(
    config: &Config,
    group: &GroupConfig,
    private_dir: Option<&Path>,
) -> Result<LiveBlocklist, StartError> {
    use crate::feed::install::{build_group, group_list_path};
    let failed = |source| StartError::GroupList {
        group: group.name.clone(),
        source,
    };
    let Some(dir) = private_dir else {
        let path = group_list_path(&config.lists.compiled, group.list_key());
        let old = Blocklist::open(&path).ok();
        if let Err(refusal) = build_group(&config.lists, group, &path, old.as_ref(), false) {
            if old.is_none() {
                return Err(failed(refusal));
            }
            tracing::error!(group = %group.name, error = %refusal, "group list refused; serving the one compiled before");
        }
        return Ok(LiveBlocklist::new(Blocklist::open(&path)?, path));
    };
    let path = group_list_path(&dir.join("list.fst"), group.list_key());
    build_group(&config.lists, group, &path, None, false).map_err(failed)?;
    Ok(LiveBlocklist::new(Blocklist::open(&path)?, path))
}
