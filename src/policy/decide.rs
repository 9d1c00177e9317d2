//! Which policy applies to a query, in one place, in order of precedence:
//!
//! 0. a name in a mandatory category (`lists.mandatory`) is blocked for everyone, before
//!    anything below can let it through (EDE 15);
//! 1. the client must be allowed to use the resolver at all (closed resolver, RFC 5358),
//!    and be under its rate limit;
//! 2. the client's group (its profile), most specific identity first: the group listing
//!    its ClientID, else the one listing its MAC address, else the one whose CIDR matches
//!    its address (or trusted Client Subnet) most specifically, else the profile the ISP's
//!    subscriber line for that address names (API edits over the feed's map), else
//!    `default` ([`Policy::choose`]);
//!    Then a temporary exception of the profile for the name or a service covering it,
//!    or a pause of the profile, lets it through ([`crate::exceptions`]; SafeSearch
//!    still applies);
//! 3. the group's own allow list lets a name through, whatever any list says;
//! 4. the group's own deny list blocks a name (EDE 17 "Filtered": a local policy);
//!    Then, with bypass protection on, a way around the filter ([`crate::bypass`]: the
//!    browser DoH canary, iCloud Private Relay, public DoH resolvers, VPNs) is blocked
//!    (EDE 17, `blocked: bypass resolver dns.google (profile kids)`), and with
//!    `block_unsafe_search` a search engine whose SafeSearch cannot be forced;
//!    Then a service the group blocks ([`crate::services`]) that covers the name blocks
//!    it (EDE 17 too, the text naming the service: `blocked: service tiktok (profile kids)`);
//!    the group's windows ([`crate::policy::windows`]) change that set over the week;
//! 5. the shared blocklist blocks a name in one of the group's categories, plus the
//!    schedule's and open block windows' extra categories (EDE 15 "Blocked");
//! 6. SafeSearch rewrites search engines to their restricted hosts;
//! 7. everything else is forwarded.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::activity::{Activity, DEFAULT_TIME_ZONE, ProfileActivity};
use crate::answer::{BlockingConfig, BlockingMode, SinkholeBuilder};
use crate::bypass::{Bypass, Kind};
use crate::exceptions::ExceptionSet;
use crate::lists::manifest::Manifest;
use crate::lists::matcher::MatchedRule;
use crate::lists::rule::Scope;
use crate::lists::swap::LiveBlocklist;
use crate::lists::{Blocklist, Decision, Verdict};
use crate::policy::access::AccessList;
use crate::policy::client::{ChosenBy, Client, ClientId, Mac};
use crate::policy::groups::{GroupError, GroupTable, IdTable};
use crate::policy::ratelimit::RateLimiter;
use crate::policy::safesearch::{SafeSearch, UnsafeSearch};
use crate::policy::schedule::Schedule;
use crate::policy::settings::{GroupConfig, PolicyConfig, RefuseAction};
use crate::policy::subscribers::SubscriberLines;
use crate::policy::windows::{Window, WindowAction};
use crate::services::{Catalog, ServiceIndex, ServiceSet};
use crate::subscribers::SubscriberSource;

/// The wall clock schedules are judged by; tests inject their own.
pub type Clock = Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(jiff::Timestamp::now)
}

/// Whether a client may be answered at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Go on.
    Admit,
    /// Outside `server.allow_clients`.
    NotAllowed(RefuseAction),
    /// Over its rate limit.
    RateLimited(RefuseAction),
}

/// Category names resolved to bits of one manifest, cached by its serial.
#[derive(Debug)]
struct MaskCache {
    names: Option<Vec<String>>,
    /// `(serial as u32) << 32 | mask`, or `u64::MAX` when empty.
    cached: AtomicU64,
}

impl MaskCache {
    fn new(names: Option<Vec<String>>) -> Self {
        MaskCache {
            names,
            cached: AtomicU64::new(u64::MAX),
        }
    }

    fn mask(&self, manifest: &Manifest) -> u32 {
        let Some(names) = &self.names else {
            return u32::MAX;
        };
        let serial = manifest.serial as u32;
        let c = self.cached.load(Ordering::Relaxed);
        if c != u64::MAX && (c >> 32) as u32 == serial {
            return c as u32;
        }
        let mask = names
            .iter()
            .filter_map(|n| manifest.categories.iter().position(|c| c == n))
            .fold(0u32, |m, bit| m | (1 << bit));
        self.cached
            .store(u64::from(serial) << 32 | u64::from(mask), Ordering::Relaxed);
        mask
    }
}

/// One client group, ready to answer.
pub struct Group {
    /// The profile id (`config:<name>`, `p<n>`).
    pub id: String,
    /// The group's name.
    pub name: String,
    /// False for the implicit `default` created when no groups are configured: its EDE
    /// texts say `(kidsafe-dns)` instead of naming a group.
    pub named: bool,
    categories: MaskCache,
    schedule: Option<(Schedule, MaskCache)>,
    /// The group's windows, with their categories and services resolved.
    windows: Vec<LiveWindow>,
    /// What the schedule and the windows say this minute (`None` until a query asks).
    this_minute: ArcSwapOption<MinuteState>,
    /// The group's own allow/deny entries, compiled like any list.
    pub own: Option<Arc<LiveBlocklist>>,
    /// SafeSearch targets, when the group has SafeSearch on.
    pub safesearch: Option<Arc<SafeSearch>>,
    /// How this group's blocked names are answered.
    pub sinkhole: SinkholeBuilder,
    /// How the network signals of bypass protection are answered: NXDOMAIN, whatever
    /// the group's mode ([`Kind::is_signal`]).
    pub nxdomain: SinkholeBuilder,
    /// Bypass protection on ([`GroupConfig::bypass_on`]).
    pub bypass: bool,
    /// Search engines whose SafeSearch cannot be forced are blocked.
    pub block_unsafe_search: bool,
    /// The catalog services the group blocks.
    services: ServiceSet,
    /// A fingerprint of the domains of those services (0 for none): cached answers
    /// checked for one group's services are told apart from another's by it.
    pub services_key: u64,
    /// Today's and this week's counts, found in the registry on the first query.
    activity: std::sync::OnceLock<Arc<ProfileActivity>>,
}

impl Group {
    /// The group's counters for the console's activity ([`crate::activity`]), from
    /// `registry` on first use; its days are local to the group's time zone (its first
    /// window's, else its schedule's, else [`DEFAULT_TIME_ZONE`]).
    pub fn activity(&self, registry: &Activity) -> &ProfileActivity {
        self.activity.get_or_init(|| {
            let zone = self
                .windows
                .first()
                .map(|w| w.window.schedule.zone().clone())
                .or_else(|| self.schedule.as_ref().map(|(s, _)| s.zone().clone()))
                .or_else(|| jiff::tz::TimeZone::get(DEFAULT_TIME_ZONE).ok())
                .unwrap_or(jiff::tz::TimeZone::UTC);
            registry.for_profile(&self.id, &zone)
        })
    }

    /// The suffix of EDE texts: `profile school`, or `kidsafe-dns` for the implicit default.
    pub fn label(&self) -> String {
        if self.named {
            format!("profile {}", self.name)
        } else {
            "kidsafe-dns".to_owned()
        }
    }
}

/// A window ready to judge: its extra categories cached per manifest, its services as a set.
struct LiveWindow {
    window: Window,
    categories: MaskCache,
    services: ServiceSet,
}

/// What a group's schedule and windows say during one UTC minute. They open and close on
/// whole minutes (`HH:MM` times, in zones whose offsets are whole minutes), so the first
/// query of a minute works it out and the others read it: converting the time into each
/// window's zone for every query cost about a tenth of a blocked answer with 3 windows
/// (BENCHMARKS.md, "Blocked services and windows").
struct MinuteState {
    /// Unix minute (seconds div 60) it was worked out for.
    minute: i64,
    /// The group's `schedule` is active.
    schedule_active: bool,
    /// Which windows are open, in the group's order.
    open: Vec<bool>,
    /// The services the group blocks this minute (its own, windows applied).
    blocked: ServiceSet,
}

/// Calls `f` with `group`'s [`MinuteState`] for the minute of `now`, worked out first if
/// it is not yet (a guard, not a reference count: the queries of every thread read it).
fn this_minute<R>(group: &Group, now: jiff::Timestamp, f: impl FnOnce(&MinuteState) -> R) -> R {
    let minute = now.as_second().div_euclid(60);
    let current = group.this_minute.load();
    if let Some(state) = &*current
        && state.minute == minute
    {
        return f(state);
    }
    drop(current);
    let state = Arc::new(MinuteState::new(group, now, minute));
    let result = f(&state);
    group.this_minute.store(Some(state));
    result
}

impl MinuteState {
    /// The services blocked: the group's own and those of allow windows none of which is
    /// open, then those of open block windows (an open block window wins over an open allow
    /// window; an open allow window wins over the group's own `services`).
    fn new(group: &Group, now: jiff::Timestamp, minute: i64) -> MinuteState {
        let open: Vec<bool> = group
            .windows
            .iter()
            .map(|w| w.window.is_open(now))
            .collect();
        let mut blocked = group.services.clone();
        let (mut allowed, mut extra) = (ServiceSet::default(), ServiceSet::default());
        for (w, &open) in group.windows.iter().zip(&open) {
            match (w.window.action, open) {
                (WindowAction::Block, true) => extra.insert_all(&w.services),
                (WindowAction::Block, false) => {}
                (WindowAction::Allow, true) => allowed.insert_all(&w.services),
                (WindowAction::Allow, false) => blocked.insert_all(&w.services),
            }
        }
        blocked.remove_all(&allowed);
        blocked.insert_all(&extra);
        MinuteState {
            minute,
            schedule_active: group
                .schedule
                .as_ref()
                .is_some_and(|(s, _)| s.is_active(now)),
            open,
            blocked,
        }
    }
}

/// Catalog positions of the services `g` names (unknown names were refused by config or
/// the API; any left are skipped).
fn service_positions(catalog: &Catalog, g: &GroupConfig) -> Vec<usize> {
    positions(catalog, &g.services, &g.service_groups)
}

/// Catalog positions of `services` and of every service in `service_groups`.
fn positions(catalog: &Catalog, services: &[String], service_groups: &[String]) -> Vec<usize> {
    let mut out: Vec<usize> = services
        .iter()
        .filter_map(|id| catalog.position(id))
        .collect();
    for group in service_groups {
        out.extend(
            catalog
                .services()
                .iter()
                .enumerate()
                .filter(|(_, s)| &s.group == group)
                .map(|(p, _)| p),
        );
    }
    out
}

/// A fingerprint of every domain of the services `g` blocks; 0 when none.
fn services_key(catalog: &Catalog, g: &GroupConfig) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut positions = service_positions(catalog, g);
    if positions.is_empty() {
        return 0;
    }
    positions.sort_unstable();
    positions.dedup();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in positions {
        if let Some(s) = catalog.services().get(p) {
            s.id.hash(&mut h);
            for d in &s.domains {
                d.name.hash(&mut h);
            }
        }
    }
    h.finish() | 1
}

/// What the policy says about a query.
#[derive(Debug)]
pub enum Outcome {
    /// Blocked by the shared list (EDE 15).
    Blocked(Verdict),
    /// Blocked by the group's own deny list (EDE 17).
    Filtered(Verdict),
    /// A service the group blocks (EDE 17).
    Service(ServiceBlock),
    /// A way around the filter, bypass protection being on (EDE 17).
    Bypass(BypassBlock),
    /// A search engine whose SafeSearch cannot be forced, `block_unsafe_search` being on
    /// (EDE 17); the verdict's rule is the listed domain.
    UnsafeSearch(Verdict),
    /// Answer with a CNAME to this SafeSearch host.
    SafeSearch(&'static str),
    /// Forward upstream.
    Forward,
}

/// A name blocked as part of a service.
#[derive(Clone, Debug)]
pub struct ServiceBlock {
    /// The service's catalog id (`tiktok`).
    pub id: Arc<str>,
    /// A blocked verdict whose rule is the catalog domain that matched (a subtree rule):
    /// replies derive their SOA owner from it as for any list rule.
    pub verdict: Verdict,
}

/// A name blocked by bypass protection.
#[derive(Clone, Debug)]
pub struct BypassBlock {
    /// What kind of bypass it is.
    pub kind: Kind,
    /// A blocked verdict whose rule is the catalog domain that matched (a subtree rule).
    pub verdict: Verdict,
}

/// A blocked verdict for a whole catalog `domain` (its subtree), no list categories.
fn subtree_verdict(domain: String) -> Verdict {
    Verdict {
        decision: Decision::Blocked,
        categories: 0,
        rule: Some(MatchedRule {
            name: domain,
            scope: Scope::Subtree,
        }),
    }
}

/// Everything per-client, built once from config.
pub struct Policy {
    groups: Vec<Group>,
    /// Profile id → index into `groups`.
    by_id: std::collections::HashMap<String, usize>,
    table: GroupTable,
    /// The ISP's subscriber lines (API overlay, feed map): after `table`, before default.
    subscribers: SubscriberLines,
    client_ids: IdTable<ClientId>,
    macs: IdTable<Mac>,
    access: AccessList,
    ratelimit: Option<RateLimiter>,
    refuse_action: RefuseAction,
    clock: Clock,
    /// The service catalog's domains, and each service's id by catalog position.
    service_index: ServiceIndex,
    service_ids: Vec<Arc<str>>,
    /// The ways around the filter that bypass protection blocks.
    bypass: Arc<Bypass>,
    /// Search engines whose SafeSearch cannot be forced.
    unsafe_search: Arc<UnsafeSearch>,
    /// Queries from clients outside `allow_clients`, and queries over a client's rate
    /// limit, since start: shared with the policies a reload replaces this one with.
    counts: Arc<[AtomicU64; 2]>,
    /// Categories blocked for every group, before anything can let them through.
    mandatory: MaskCache,
    /// Temporary exceptions and pauses, read per query (written by the admin API).
    exceptions: Arc<ArcSwap<ExceptionSet>>,
}

/// Group parts that need I/O (compiled own lists, SafeSearch data) are made by the caller.
pub struct GroupParts {
    /// Own allow/deny list, if the group has one.
    pub own: Option<Arc<LiveBlocklist>>,
    /// SafeSearch data, if on.
    pub safesearch: Option<Arc<SafeSearch>>,
}

impl Policy {
    /// Builds the policy; `parts[i]` belongs to `config.groups[i]`.
    ///
    /// # Errors
    /// Two groups claim the same CIDR, ClientID or MAC address.
    pub fn new(
        config: &PolicyConfig,
        blocking: &BlockingConfig,
        parts: Vec<GroupParts>,
        clock: Clock,
    ) -> Result<Policy, GroupError> {
        let named = config.groups.len() > 1
            || config.groups.iter().any(|g| {
                g.safesearch
                    || g.has_own_lists()
                    || g.categories.is_some()
                    || g.schedule.is_some()
                    || g.mode.is_some()
                    || g.has_services()
                    || g.bypass_protection.is_some()
                    || g.block_unsafe_search
            })
            || !config.windows.is_empty();
        let bypass = Arc::new(Bypass::builtin().unwrap_or_else(|e| {
            // The unit tests keep a broken built-in file from shipping.
            tracing::error!(error = %e, "built-in bypass catalog unusable; bypass names not blocked");
            Bypass::default()
        }));
        let unsafe_search = Arc::new(UnsafeSearch::builtin());
        let catalog: &Catalog = &config.services;
        let groups: Vec<Group> = config
            .groups
            .iter()
            .zip(parts)
            .map(|(g, p)| {
                let mut b = blocking.clone();
                if let Some(mode) = g.mode {
                    b.mode = mode;
                }
                Group {
                    id: g.id.clone(),
                    name: g.name.clone(),
                    named,
                    categories: MaskCache::new(g.categories.clone()),
                    schedule: g
                        .schedule
                        .as_ref()
                        .map(|(s, cats)| (s.clone(), MaskCache::new(Some(cats.clone())))),
                    own: p.own,
                    safesearch: p.safesearch,
                    sinkhole: SinkholeBuilder::new(&b),
                    nxdomain: SinkholeBuilder::new(&BlockingConfig {
                        mode: BlockingMode::Nxdomain,
                        ..b.clone()
                    }),
                    bypass: g.bypass_on(),
                    block_unsafe_search: g.block_unsafe_search,
                    windows: config
                        .windows
                        .get(&g.id)
                        .into_iter()
                        .flatten()
                        .map(|w| LiveWindow {
                            categories: MaskCache::new(Some(w.categories.clone())),
                            services: ServiceSet::of(&positions(
                                catalog,
                                &w.services,
                                &w.service_groups,
                            )),
                            window: w.clone(),
                        })
                        .collect(),
                    this_minute: ArcSwapOption::empty(),
                    services: ServiceSet::of(&service_positions(catalog, g)),
                    services_key: services_key(catalog, g),
                    activity: std::sync::OnceLock::new(),
                }
            })
            .collect();
        // `default` is last and has no clients, so it never wins a CIDR match.
        let cidrs: Vec<Vec<ipnet::IpNet>> =
            config.groups.iter().map(|g| g.clients.clone()).collect();
        let ids: Vec<Vec<ClientId>> = config.groups.iter().map(|g| g.client_ids.clone()).collect();
        let client_ids =
            IdTable::new(&ids).map_err(|(id, first, second)| GroupError::DuplicateClientId {
                id: id.to_string(),
                first,
                second,
            })?;
        let macs: Vec<Vec<Mac>> = config.groups.iter().map(|g| g.macs.clone()).collect();
        let macs =
            IdTable::new(&macs).map_err(|(mac, first, second)| GroupError::DuplicateMac {
                mac: mac.to_string(),
                first,
                second,
            })?;
        let by_id = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.id.clone(), i))
            .collect();
        Ok(Policy {
            by_id,
            table: GroupTable::new(&cidrs)?,
            subscribers: SubscriberLines::default(),
            client_ids,
            macs,
            groups,
            access: AccessList::new(&config.allow_clients),
            ratelimit: config
                .rate_limit
                .map(|r| RateLimiter::new(r.qps, r.burst, r.clients)),
            refuse_action: config.refuse_action,
            clock,
            service_index: ServiceIndex::new(catalog),
            service_ids: catalog
                .services()
                .iter()
                .map(|s| Arc::from(s.id.as_str()))
                .collect(),
            bypass,
            unsafe_search,
            counts: Arc::default(),
            mandatory: MaskCache::new(Some(config.mandatory.clone())),
            exceptions: Arc::default(),
        })
    }

    /// This policy, reading temporary exceptions from `exceptions` (the store's live set).
    pub fn with_exceptions(mut self, exceptions: Arc<ArcSwap<ExceptionSet>>) -> Policy {
        self.exceptions = exceptions;
        self
    }

    /// This policy, counting its refusals on from `old`'s (a config reload replacing `old`:
    /// the totals and the refusal log go on).
    pub fn counting_on_from(mut self, old: &Policy) -> Policy {
        self.counts = Arc::clone(&old.counts);
        self.exceptions = Arc::clone(&old.exceptions);
        self
    }

    /// This policy, choosing by the subscriber map `map` serves (after the CIDR table,
    /// before `default`); `None` turns the map off. The handle is shared: the feed swaps
    /// the map under every policy holding it, and a reload hands it on.
    pub fn with_subscribers(mut self, map: Option<SubscriberSource>) -> Policy {
        self.subscribers.set_map(map);
        self
    }

    /// This policy, with the subscriber lines edited through the API (the profile
    /// snapshot's `subscribers`): they win over the feed's map. Rows whose profile id
    /// names no group are left out.
    pub fn with_subscriber_overlay(mut self, rows: &[(ipnet::IpNet, String)]) -> Policy {
        let by_id = &self.by_id;
        self.subscribers
            .set_overlay(rows, |id| by_id.get(id).copied());
        self
    }

    /// The subscriber map handle, if the policy has one (for a reload to hand on, and
    /// for `/metrics`).
    pub fn subscribers(&self) -> Option<&SubscriberSource> {
        self.subscribers.map()
    }

    /// Step 1: may this client be answered?
    pub fn admit(&self, ip: IpAddr) -> Admission {
        if !self.access.allows(ip) {
            self.counts[0].fetch_add(1, Ordering::Relaxed);
            return Admission::NotAllowed(self.refuse_action);
        }
        if let Some(rl) = &self.ratelimit
            && !rl.check(ip, Instant::now())
        {
            self.counts[1].fetch_add(1, Ordering::Relaxed);
            return Admission::RateLimited(self.refuse_action);
        }
        Admission::Admit
    }

    /// Queries refused (outside `allow_clients`) and rate-limited since start.
    pub fn refusals(&self) -> (u64, u64) {
        (
            self.counts[0].load(Ordering::Relaxed),
            self.counts[1].load(Ordering::Relaxed),
        )
    }

    /// Logs, once a minute while there are any, how many queries were refused and
    /// rate-limited: counts only, never which clients (privacy), until `stop`.
    pub fn spawn_refusal_log(self: &Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut last = (0, 0);
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let now = me.refusals();
                if now != last {
                    tracing::warn!(
                        refused = now.0 - last.0,
                        rate_limited = now.1 - last.1,
                        refused_total = now.0,
                        rate_limited_total = now.1,
                        "queries refused in the last minute"
                    );
                    last = now;
                }
            }
        });
    }

    /// Step 2: the client's group.
    pub fn group_for(&self, client: &Client) -> &Group {
        &self.groups[self.group_index(client)]
    }

    /// Step 2, as an index into [`Policy::groups`].
    pub fn group_index(&self, client: &Client) -> usize {
        self.choose(client).0
    }

    /// Step 2 with the identity that decided: the index into [`Policy::groups`] of the
    /// group listing the client's ClientID, else its MAC address, else the most specific
    /// CIDR containing its [`Client::profile_addr`], else the group its subscriber line
    /// names, else `default` (the last).
    pub fn choose(&self, client: &Client) -> (usize, ChosenBy) {
        if let Some(i) = client
            .client_id
            .as_ref()
            .and_then(|id| self.client_ids.lookup(id))
        {
            return (i, ChosenBy::ClientId);
        }
        if let Some(i) = client.mac.as_ref().and_then(|mac| self.macs.lookup(mac)) {
            return (i, ChosenBy::Mac);
        }
        let addr = client.profile_addr();
        if let Some(i) = self.table.lookup(addr) {
            return (i, ChosenBy::Address);
        }
        // Explicit identities and configured CIDRs are more specific than an ISP's line
        // table, so the lines come last.
        match self.subscribers.lookup(addr, |id| self.index_of(id)) {
            Some(i) => (i, ChosenBy::Subscriber),
            None => (self.groups.len() - 1, ChosenBy::Default),
        }
    }

    /// The index into [`Policy::groups`] of the group with profile id `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// True when the service catalog has `id`.
    pub fn knows_service(&self, id: &str) -> bool {
        self.service_ids.iter().any(|s| &**s == id)
    }

    /// Every catalog service id, in catalog order (for error messages).
    pub fn service_names(&self) -> Vec<&str> {
        self.service_ids.iter().map(|s| &**s).collect()
    }

    /// All groups (the last is `default`).
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The shared list's categories that apply to `group` right now: the mandatory ones
    /// always; while the profile is paused, only those.
    pub fn mask(&self, group: &Group, manifest: &Manifest) -> u32 {
        let mandatory = self.mandatory.mask(manifest);
        let now = (self.clock)();
        let exceptions = self.exceptions.load();
        if !exceptions.is_empty() && exceptions.paused(&group.id, now) {
            return mandatory;
        }
        let mut mask = group.categories.mask(manifest) | mandatory;
        if group.schedule.is_none() && group.windows.is_empty() {
            return mask;
        }
        this_minute(group, now, |state| {
            if let Some((_, extra)) = &group.schedule
                && state.schedule_active
            {
                mask |= extra.mask(manifest);
            }
            for (w, &open) in group.windows.iter().zip(&state.open) {
                if open && w.window.action == WindowAction::Block {
                    mask |= w.categories.mask(manifest);
                }
            }
        });
        mask
    }

    /// What cached answers checked for `group` depend on besides the mask: its services,
    /// which of its windows are open, its exceptions in force; 0 when it blocks no service
    /// and has none of those (the CNAME check then needs only the mask).
    pub fn services_key(&self, group: &Group) -> u64 {
        let now = (self.clock)();
        let mut key = group.services_key;
        if !group.windows.is_empty() {
            this_minute(group, now, |state| {
                for (i, &open) in state.open.iter().enumerate() {
                    if open {
                        key ^= 0x9E37_79B9_7F4A_7C15u64.rotate_left(i as u32 + 1);
                    }
                }
            });
            key |= 1;
        }
        let exceptions = self.exceptions.load().key(&group.id, now);
        if exceptions != 0 {
            key = (key ^ exceptions) | 1;
        }
        key
    }

    /// Step 0: the verdict blocking `labels` by a mandatory category, if any.
    pub fn mandatory<'a, I>(&self, list: &Blocklist, labels: I) -> Option<Verdict>
    where
        I: DoubleEndedIterator<Item = &'a [u8]>,
    {
        let mask = self.mandatory.mask(list.manifest());
        if mask == 0 {
            return None;
        }
        let v = list.lookup_labels(labels, mask);
        v.is_blocked().then_some(v)
    }

    /// Step 2b: true when a pause of `group`'s profile, or an exception for the name or a
    /// service covering it, lets `labels` through now.
    pub fn excepted<'a, I>(&self, group: &Group, labels: impl Fn() -> I) -> bool
    where
        I: DoubleEndedIterator<Item = &'a [u8]>,
    {
        let exceptions = self.exceptions.load();
        if exceptions.is_empty() {
            return false;
        }
        let now = (self.clock)();
        if exceptions.paused(&group.id, now) || exceptions.covers_name(&group.id, now, labels()) {
            return true;
        }
        let excepted: Vec<usize> = exceptions
            .services(&group.id, now)
            .filter_map(|id| self.service_ids.iter().position(|s| &**s == id))
            .collect();
        !excepted.is_empty()
            && self
                .service_index
                .lookup(labels(), &ServiceSet::of(&excepted))
                .is_some()
    }

    /// Step 4b alone: the service of `group`'s blocked services (now, windows applied)
    /// that covers `labels` (a name's labels, leftmost first, any case), most specific
    /// domain first. The CNAME check asks it of every name in an answer's chain.
    pub fn service<'a, I>(&self, group: &Group, labels: I) -> Option<ServiceBlock>
    where
        I: DoubleEndedIterator<Item = &'a [u8]>,
    {
        let m = if group.windows.iter().all(|w| w.services.is_empty()) {
            self.service_index.lookup(labels, &group.services)?
        } else {
            this_minute(group, (self.clock)(), |state| {
                self.service_index.lookup(labels, &state.blocked)
            })?
        };
        Some(ServiceBlock {
            id: Arc::clone(self.service_ids.get(m.position)?),
            verdict: Verdict {
                decision: Decision::Blocked,
                categories: 0,
                rule: Some(MatchedRule {
                    name: m.domain,
                    scope: Scope::Subtree,
                }),
            },
        })
    }

    /// Steps 0 and 2b to 7 for a name given as wire labels (leftmost first).
    pub fn decide<'a, I>(&self, group: &Group, list: &Blocklist, labels: impl Fn() -> I) -> Outcome
    where
        I: DoubleEndedIterator<Item = &'a [u8]>,
    {
        if let Some(v) = self.mandatory(list, labels()) {
            return Outcome::Blocked(v);
        }
        if !self.excepted(group, &labels) {
            if let Some(own) = &group.own {
                let v = own.current().lookup_labels(labels(), u32::MAX);
                match v.decision {
                    Decision::Allowed => return Outcome::Forward,
                    Decision::Blocked => return Outcome::Filtered(v),
                    Decision::NotListed => {}
                }
            }
            if group.bypass
                && let Some(hit) = self.bypass.lookup(labels())
            {
                return Outcome::Bypass(BypassBlock {
                    kind: hit.kind,
                    verdict: subtree_verdict(hit.domain),
                });
            }
            if group.block_unsafe_search
                && let Some(hit) = self.unsafe_search.lookup(labels())
            {
                return Outcome::UnsafeSearch(subtree_verdict(hit));
            }
            if let Some(block) = self.service(group, labels()) {
                return Outcome::Service(block);
            }
            let v = list.lookup_labels(labels(), self.mask(group, list.manifest()));
            if v.is_blocked() {
                return Outcome::Blocked(v);
            }
        }
        if let Some(ss) = &group.safesearch
            && let Some(target) = ss.target_labels(labels())
        {
            return Outcome::SafeSearch(target);
        }
        Outcome::Forward
    }
}
