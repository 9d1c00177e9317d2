//! Stored profiles in the live policy: the profiles written through the API are client
//! groups like the config file's `[[groups]]`, so the policy that serves is built from
//! the config file's groups plus the store's snapshot ([`with_profiles`]).
//!
//! The store is opened at start, before the first policy is built, so the first answer
//! already follows the stored profiles. After that a follower task waits on the store's
//! change notification and has the reloader rebuild and swap the policy
//! (`Reloader::reload_profiles`, `reload::spawn_profile_follower`): an API write is in force for queries a few hundred
//! milliseconds later (the feed pipeline's settle time, then the build).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::lists::load::Blocklist;
use crate::profiles::{ProfileError, ProfileStore, ProfilesSnapshot};

/// The profile store `[store]` names: the SQLite file under the state directory, or the
/// fleet's PostgreSQL (booting from the last-good copy when it is unreachable).
fn open(config: &Config) -> Result<ProfileStore, ProfileError> {
    match &config.store.url {
        None => ProfileStore::open(&crate::admin::profiles_path(config)),
        Some(url) => ProfileStore::open_postgres(url, &crate::admin::last_good_path(config)),
    }
}

/// Opens (or creates) the profile store `[store]` names (SQLite under the state
/// directory by default), with the config's
/// groups as its read-only profiles and the categories a profile may name: those of the
/// configured sources and of the serving list.
///
/// # Errors
/// The store cannot be opened (named in the error).
pub fn open_store(config: &Config, list: &Blocklist) -> Result<ProfileStore, ProfileError> {
    let mut store = open(config)?;
    store.set_categories(crate::admin::categories(config, list));
    store.set_config_profiles(config.policy.groups.clone());
    store.set_services(Arc::clone(&config.policy.services));
    Ok(store)
}

/// `config` with the stored profiles the resolver serves beside it (see [`with_profiles`]),
/// for `check`, which must judge as the resolver does. A state directory without a
/// profile store (the resolver never ran there) gives `config` as it is: nothing is
/// created.
///
/// # Errors
/// The store exists but cannot be read.
pub fn serving_config(config: &Config) -> Result<Config, ProfileError> {
    if config.store.url.is_none() && !crate::admin::profiles_path(config).exists() {
        return Ok(config.clone());
    }
    let mut store = open(config)?;
    store.set_config_profiles(config.policy.groups.clone());
    store.set_services(Arc::clone(&config.policy.services));
    Ok(with_profiles(config, &full_snapshot(&store)?))
}

/// The store's snapshot with the stored profiles' windows filled in (the store's own
/// snapshot does not carry them).
///
/// # Errors
/// The store could not be read.
pub fn full_snapshot(store: &ProfileStore) -> Result<ProfilesSnapshot, ProfileError> {
    let mut snap = store.snapshot()?;
    for profile in store.list()? {
        if profile.read_only || profile.spec.schedules.is_empty() {
            continue;
        }
        let mut windows = Vec::with_capacity(profile.spec.schedules.len());
        for w in &profile.spec.schedules {
            match crate::profiles::window_of(w) {
                Ok(window) => windows.push(window),
                // Validated when written; only a tzdb change could get here.
                Err((field, error)) => {
                    tracing::warn!(profile = %profile.id, field, %error, "profile window ignored");
                }
            }
        }
        snap.windows.insert(profile.id.clone(), windows);
    }
    Ok(snap)
}

/// The store's snapshot, read off the async threads.
///
/// # Errors
/// The store could not be read (the error names it).
pub async fn snapshot(store: &Arc<Mutex<ProfileStore>>) -> Result<ProfilesSnapshot, String> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || {
        let store = store
            .lock()
            .map_err(|_| "profile store poisoned".to_owned())?;
        full_snapshot(&store).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// `config` with the stored profiles of `snap` as client groups, placed before `default`
/// (which stays last and catches everyone else).
///
/// The store keeps each identity with one profile, but cannot see every clash with the
/// config file (which can change after the identity was stored): a stored identity (a
/// network, ClientID or MAC address) that a `[[groups]]` table also lists is left out, so
/// the file wins and one clash does not keep every other profile change from applying.
/// Each one left out is logged.
pub fn with_profiles(config: &Config, snap: &ProfilesSnapshot) -> Config {
    let mut merged = config.clone();
    let groups = &mut merged.policy.groups;
    let Some(default) = groups.pop() else {
        return merged;
    };
    let nets: HashSet<_> = groups.iter().flat_map(|g| g.clients.iter()).collect();
    let ids: HashSet<_> = groups.iter().flat_map(|g| g.client_ids.iter()).collect();
    let macs: HashSet<_> = groups.iter().flat_map(|g| g.macs.iter()).collect();
    let mut stored = Vec::with_capacity(snap.groups.len());
    for (_, group) in &snap.groups {
        let mut group = group.clone();
        let profile = group.id.clone();
        let keep = |taken: bool, what: &dyn std::fmt::Display| {
            if taken {
                tracing::warn!(%profile, identity = %what, "identity also listed by a [[groups]] table of the config file: the file's group gets it");
            }
            !taken
        };
        group.clients.retain(|n| keep(nets.contains(n), n));
        group.client_ids.retain(|i| keep(ids.contains(i), i));
        group.macs.retain(|m| keep(macs.contains(m), m));
        stored.push(group);
    }
    groups.extend(stored);
    groups.push(default);
    for (id, windows) in &snap.windows {
        merged.policy.windows.insert(id.clone(), windows.clone());
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::GroupConfig;

    fn group(id: &str, name: &str, clients: &[&str]) -> GroupConfig {
        let mut g = GroupConfig::implicit_default();
        g.id = id.to_owned();
        g.name = name.to_owned();
        g.clients = clients.iter().map(|c| c.parse().unwrap()).collect();
        g
    }

    fn config(groups: Vec<GroupConfig>) -> Config {
        let mut c = crate::config::parse(
            "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nservers = [\"127.0.0.1:5353\"]\n[lists]\ncompiled = \"x.fst\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        c.policy.groups = groups;
        c
    }

    #[test]
    fn stored_profiles_go_before_default_and_the_file_wins_a_clash() {
        let file = config(vec![
            group("config:school", "school", &["10.0.0.0/8"]),
            GroupConfig::implicit_default(),
        ]);
        let snap = ProfilesSnapshot {
            groups: vec![(
                "p1".into(),
                group("p1", "kids", &["10.0.0.0/8", "192.0.2.7/32"]),
            )],
            ..ProfilesSnapshot::default()
        };
        let merged = with_profiles(&file, &snap);
        let names: Vec<_> = merged.policy.groups.iter().map(|g| &g.name).collect();
        assert_eq!(names, ["school", "kids", "default"]);
        let kids = &merged.policy.groups[1];
        assert_eq!(kids.clients, vec!["192.0.2.7/32".parse().unwrap()]);
        // The file's config is untouched.
        assert_eq!(file.policy.groups.len(), 2);
    }
}
