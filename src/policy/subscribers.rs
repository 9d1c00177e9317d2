//! Step 2's last identity before `default`: the ISP's subscriber lines. An address (or
//! Client Subnet) that no ClientID, MAC or configured CIDR claimed is looked up first in
//! the lines edited through the API (`PUT /v1/subscribers/{prefix}`), then in the feed's
//! compiled map ([`crate::subscribers`]); either gives a profile id, which names a group.
//!
//! The API lines win over the feed's because an operator's edit is a correction of the
//! export, and the export may lag it by a refresh or a day.

use std::net::IpAddr;

use ipnet::IpNet;
use prefix_trie::joint::JointPrefixMap;

use crate::policy::groups::{canonical_net, host_net};
use crate::subscribers::SubscriberSource;

/// The subscriber lines a policy consults: the API overlay, resolved to group indices
/// when the policy is built, and the feed's live map, resolved per query.
#[derive(Debug, Default)]
pub struct SubscriberLines {
    overlay: JointPrefixMap<IpNet, usize>,
    map: Option<SubscriberSource>,
}

impl SubscriberLines {
    /// Replaces the API overlay with `rows`, each profile id turned into a group index by
    /// `index_of`; rows naming no group are left out (and logged): they would only send
    /// their subscribers to `default`, which the feed's map may do better.
    pub fn set_overlay(
        &mut self,
        rows: &[(IpNet, String)],
        index_of: impl Fn(&str) -> Option<usize>,
    ) {
        let mut trie = JointPrefixMap::new();
        let mut unknown = 0usize;
        for (net, id) in rows {
            match index_of(id) {
                Some(i) => {
                    trie.insert(canonical_net(*net), i);
                }
                None => unknown += 1,
            }
        }
        if unknown > 0 {
            tracing::warn!(unknown, "API subscriber lines name no profile; left out");
        }
        self.overlay = trie;
    }

    /// Serves the feed's map from `map` (a shared handle the feed swaps).
    pub fn set_map(&mut self, map: Option<SubscriberSource>) {
        self.map = map;
    }

    /// The feed's map handle, if the policy has one.
    pub fn map(&self) -> Option<&SubscriberSource> {
        self.map.as_ref()
    }

    /// The group of the most specific line containing `ip`: the overlay's, else the
    /// map's. A map line naming a profile id no group has gives `None` (the caller's
    /// `default`) and is counted (`kidsafe_subscribers_unknown_profile_total`).
    #[inline]
    pub fn lookup(&self, ip: IpAddr, index_of: impl Fn(&str) -> Option<usize>) -> Option<usize> {
        if !self.overlay.is_empty()
            && let Some((_, &i)) = self.overlay.get_lpm(&host_net(ip))
        {
            return Some(i);
        }
        let source = self.map.as_ref()?;
        let guard = source.load();
        let id = guard.as_ref()?.lookup(ip)?;
        let found = index_of(id);
        if found.is_none() {
            source.unknown_profile();
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscribers::{SubscriberMap, compile, parse};

    #[test]
    fn overlay_wins_and_unknown_ids_are_counted() {
        let index_of = |id: &str| match id {
            "config:kids" => Some(0),
            "p2" => Some(1),
            _ => None,
        };
        let source = SubscriberSource::new();
        let rows = parse::parse(b"10.0.0.0/24 config:kids\n10.0.0.9 p404\n").rows;
        source.store(SubscriberMap::from_vec(compile::compile(&rows).unwrap().bytes).unwrap());
        let mut lines = SubscriberLines::default();
        lines.set_map(Some(source.clone()));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(lines.lookup(ip("10.0.0.1"), index_of), Some(0));
        assert_eq!(lines.lookup(ip("10.0.0.9"), index_of), None);
        assert_eq!(source.unknown_profile_total(), 1);
        assert_eq!(lines.lookup(ip("10.0.1.1"), index_of), None);
        lines.set_overlay(
            &[
                ("10.0.0.1/32".parse().unwrap(), "p2".to_owned()),
                ("10.0.0.2/32".parse().unwrap(), "gone".to_owned()),
            ],
            index_of,
        );
        assert_eq!(lines.lookup(ip("10.0.0.1"), index_of), Some(1));
        assert_eq!(lines.lookup(ip("10.0.0.2"), index_of), Some(0));
        assert_eq!(lines.lookup(ip("::ffff:10.0.0.1"), index_of), Some(1));
    }
}
