//! Bypass protection: the names a device asks for when it is about to stop using us.
//!
//! Four kinds, each counted on its own (`kidsafe_bypass_attempts_total{profile,kind}`):
//!
//! | kind | names | answer |
//! |---|---|---|
//! | `canary` | `use-application-dns.net` (Firefox's DoH canary) | NXDOMAIN: Firefox keeps using the network's resolver |
//! | `relay` | `mask.icloud.com`, `mask-h2.icloud.com` (iCloud Private Relay) | NXDOMAIN: Apple devices turn Private Relay off on this network |
//! | `resolver` | public DoH/DoT resolvers (`dns.google`, `cloudflare-dns.com`, ...) | the group's sinkhole |
//! | `vpn` | VPN and proxy services (`nordvpn.com`, `psiphon.ca`, ...) | the group's sinkhole |
//!
//! The names are a catalog in the services' format ([`crate::services::catalog`]), one
//! file per kind group in `data/bypass/*.toml`, compiled in ([`BUILTIN`]); a domain blocks
//! itself and every name under it, the most specific domain deciding the kind. A profile
//! has it on or off (`bypass_protection`, [`crate::policy::GroupConfig::bypass_on`]).
//! Discovery of our own encrypted endpoints (DDR, RFC 9462) is answered by the server:
//! [`crate::server::ddr`].

use std::path::Path;

use crate::services::catalog::parse_file;
use crate::services::{Catalog, CatalogError, ServiceIndex, ServiceSet};

/// The bypass catalog files built into the binary: (file name, text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("signals.toml", include_str!("../data/bypass/signals.toml")),
    (
        "resolvers.toml",
        include_str!("../data/bypass/resolvers.toml"),
    ),
    ("vpn.toml", include_str!("../data/bypass/vpn.toml")),
];

/// What kind of bypass a name belongs to (a catalog entry's `group`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A browser's DNS-over-HTTPS canary domain.
    Canary,
    /// Apple's iCloud Private Relay.
    Relay,
    /// A public DoH/DoT resolver.
    Resolver,
    /// A VPN or proxy service.
    Vpn,
}

impl Kind {
    /// Every kind, in metric slot order.
    pub const ALL: [Kind; 4] = [Kind::Canary, Kind::Relay, Kind::Resolver, Kind::Vpn];

    /// The metric label and catalog group: `canary`, `relay`, `resolver`, `vpn`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Canary => "canary",
            Kind::Relay => "relay",
            Kind::Resolver => "resolver",
            Kind::Vpn => "vpn",
        }
    }

    /// The kind a catalog group names, if any.
    pub fn of_group(group: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == group)
    }

    /// True for the network signals (canary, relay), which are answered NXDOMAIN whatever
    /// the profile's blocking mode: that answer is the documented signal.
    pub fn is_signal(self) -> bool {
        matches!(self, Kind::Canary | Kind::Relay)
    }
}

/// A name that bypass protection blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BypassHit {
    /// Its kind.
    pub kind: Kind,
    /// The catalog domain that covers it (the name itself or a parent).
    pub domain: String,
}

/// The bypass names, indexed for lookups by label.
#[derive(Clone, Debug, Default)]
pub struct Bypass {
    catalog: Catalog,
    index: ServiceIndex,
    all: ServiceSet,
    /// The kind of each catalog entry, by position.
    kinds: Vec<Kind>,
}

impl Bypass {
    /// The catalog built into the binary.
    ///
    /// # Errors
    /// A built-in file does not parse or check, or names a group that is not a [`Kind`]
    /// (the unit tests keep either from shipping).
    pub fn builtin() -> Result<Bypass, CatalogError> {
        let mut services = Vec::new();
        for (name, text) in BUILTIN {
            let file = Path::new("data/bypass").join(name);
            for s in parse_file(&file, text)? {
                if Kind::of_group(&s.group).is_none() {
                    return Err(CatalogError::Invalid {
                        file,
                        key: format!("service ({}).group", s.id),
                        message: format!("`{}`: one of canary, relay, resolver, vpn", s.group),
                    });
                }
                services.push(s);
            }
        }
        Ok(Bypass::from_catalog(Catalog::from_services(services)))
    }

    /// An index over `catalog`; entries whose group is not a [`Kind`] are left out.
    pub fn from_catalog(catalog: Catalog) -> Bypass {
        let kinds: Vec<Option<Kind>> = catalog
            .services()
            .iter()
            .map(|s| Kind::of_group(&s.group))
            .collect();
        let positions: Vec<usize> = (0..kinds.len()).filter(|&p| kinds[p].is_some()).collect();
        Bypass {
            index: ServiceIndex::new(&catalog),
            all: ServiceSet::of(&positions),
            kinds: kinds.into_iter().map(|k| k.unwrap_or(Kind::Vpn)).collect(),
            catalog,
        }
    }

    /// The entries, in file order.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The bypass kind and catalog domain covering `labels` (a name's labels, leftmost
    /// first, any case), the most specific domain first.
    pub fn lookup<'a, I>(&self, labels: I) -> Option<BypassHit>
    where
        I: DoubleEndedIterator<Item = &'a [u8]>,
    {
        let m = self.index.lookup(labels, &self.all)?;
        Some(BypassHit {
            kind: *self.kinds.get(m.position)?,
            domain: m.domain,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(b: &Bypass, name: &str) -> Option<(Kind, String)> {
        b.lookup(name.split('.').map(str::as_bytes))
            .map(|h| (h.kind, h.domain))
    }

    #[test]
    fn the_builtin_catalog_parses_and_covers_every_kind() {
        let b = Bypass::builtin().expect("built-in bypass catalog");
        for kind in Kind::ALL {
            assert!(
                b.kinds.contains(&kind),
                "no built-in entry of kind {}",
                kind.as_str()
            );
        }
        assert!(
            b.catalog().domain_count() >= 80,
            "{}",
            b.catalog().domain_count()
        );
    }

    #[test]
    fn names_and_their_subdomains_get_their_kind() {
        let b = Bypass::builtin().expect("built-in bypass catalog");
        let cases = [
            (
                "use-application-dns.net",
                Kind::Canary,
                "use-application-dns.net",
            ),
            ("mask.icloud.com", Kind::Relay, "mask.icloud.com"),
            ("MASK-H2.iCloud.com", Kind::Relay, "mask-h2.icloud.com"),
            ("dns.google", Kind::Resolver, "dns.google"),
            ("cloudflare-dns.com", Kind::Resolver, "cloudflare-dns.com"),
            (
                "1dot1dot1dot1.cloudflare-dns.com",
                Kind::Resolver,
                "1dot1dot1dot1.cloudflare-dns.com",
            ),
            ("dns.quad9.net", Kind::Resolver, "dns.quad9.net"),
            ("abc123.dns.nextdns.io", Kind::Resolver, "dns.nextdns.io"),
            ("doh.mullvad.net", Kind::Resolver, "doh.mullvad.net"),
            ("mullvad.net", Kind::Vpn, "mullvad.net"),
            ("downloads.nordvpn.com", Kind::Vpn, "nordvpn.com"),
            (
                "engage.cloudflareclient.com",
                Kind::Vpn,
                "engage.cloudflareclient.com",
            ),
        ];
        for (name, kind, domain) in cases {
            assert_eq!(hit(&b, name), Some((kind, domain.to_owned())), "{name}");
        }
        for name in [
            "icloud.com",
            "www.icloud.com",
            "google.com",
            "quad9.net",
            "net",
        ] {
            assert_eq!(hit(&b, name), None, "{name}");
        }
    }

    #[test]
    fn only_canary_and_relay_are_signals() {
        let signals: Vec<Kind> = Kind::ALL.into_iter().filter(|k| k.is_signal()).collect();
        assert_eq!(signals, [Kind::Canary, Kind::Relay]);
    }

    #[test]
    fn a_group_that_is_not_a_kind_is_refused() {
        let text = "[[service]]\nid = \"x\"\nname_en = \"X\"\nname_vi = \"X\"\n\
                    group = \"games\"\nverified = \"2026-11-29\"\ndomains = [\"x.example\"]\n";
        let services = parse_file(Path::new("x.toml"), text).expect("parses");
        let b = Bypass::from_catalog(Catalog::from_services(services));
        assert_eq!(hit(&b, "x.example"), None);
    }
}
