//! Wall-clock time as the resolver records it: whole seconds since the Unix epoch, for
//! state files, manifests, the query log and TSIG signing. A bottom-layer module: it
//! imports nothing from the crate, so any module may use it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now; a clock set before 1970 reads 0.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
