//! [`SubscriberSource`]: the serving map, swapped whole by the feed and read by every
//! query, with the counters the admin API's `/metrics` reports.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::{ArcSwapOption, Guard};

use super::map::SubscriberMap;

/// Why a new source was refused (the `reason` label of
/// `kidsafe_subscribers_refused_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not one usable row.
    Parse,
    /// The minisign signature is missing or does not verify.
    Signature,
    /// Fewer than half the rows of the serving map.
    Shrink,
    /// The download or the file read failed.
    Fetch,
    /// The compiled map could not be written or read back.
    Compile,
}

impl Refused {
    /// Every reason, in label order.
    pub const ALL: [Refused; 5] = [
        Refused::Parse,
        Refused::Signature,
        Refused::Shrink,
        Refused::Fetch,
        Refused::Compile,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Parse => "parse",
            Refused::Signature => "signature",
            Refused::Shrink => "shrink",
            Refused::Fetch => "fetch",
            Refused::Compile => "compile",
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    map: ArcSwapOption<SubscriberMap>,
    refused: [AtomicU64; Refused::ALL.len()],
    unknown_profile: AtomicU64,
}

/// A handle on the serving subscriber map (none until one is loaded). Clones share it;
/// a config reload hands the same handle to the new policy, so the feed keeps swapping
/// the map the queries read.
#[derive(Clone, Debug, Default)]
pub struct SubscriberSource(Arc<Inner>);

impl SubscriberSource {
    /// An empty handle: no map yet.
    pub fn new() -> SubscriberSource {
        SubscriberSource::default()
    }

    /// The serving map (cheap: no reference count is touched on the fast path).
    #[inline]
    pub fn load(&self) -> Guard<Option<Arc<SubscriberMap>>> {
        self.0.map.load()
    }

    /// Serves `map` from now on; queries already deciding keep the one they hold.
    pub fn store(&self, map: SubscriberMap) {
        self.0.map.store(Some(Arc::new(map)));
    }

    /// Rows of the serving map (0 without one): the `kidsafe_subscribers_rows` gauge.
    pub fn rows(&self) -> u64 {
        self.load().as_ref().map_or(0, |m| m.rows())
    }

    /// Counts a refused source.
    pub fn refused(&self, why: Refused) {
        self.0.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Sources refused for `why` since start.
    pub fn refused_total(&self, why: Refused) -> u64 {
        self.0.refused[why as usize].load(Ordering::Relaxed)
    }

    /// Counts a query whose line names a profile id no group has (it got `default`).
    pub fn unknown_profile(&self) {
        self.0.unknown_profile.fetch_add(1, Ordering::Relaxed);
    }

    /// Queries whose line named an unknown profile id, since start.
    pub fn unknown_profile_total(&self) -> u64 {
        self.0.unknown_profile.load(Ordering::Relaxed)
    }
}
