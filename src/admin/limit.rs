//! Reports accepted per source address per hour: a fixed one-hour window per address,
//! in a table with a size bound so a flood of addresses cannot grow it without limit.
//! Nothing here is written to disk; the addresses are forgotten when their hour ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(3600);
/// Addresses tracked at most; beyond it expired windows are dropped, and if none has
/// expired the new address is refused (a flood of sources must not grow memory).
const MAX_SOURCES: usize = 100_000;

/// Per-source counters.
#[derive(Debug)]
pub struct ReportLimiter {
    per_hour: u32,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl ReportLimiter {
    /// Allows `per_hour` reports from each address (0 = no reports at all).
    pub fn new(per_hour: u32) -> Self {
        ReportLimiter {
            per_hour,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The quota it was made with.
    pub fn per_hour(&self) -> u32 {
        self.per_hour
    }

    /// Whether `source` may report now; counts the attempt when it may.
    pub fn allow(&self, source: IpAddr, now: Instant) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        if seen.len() >= MAX_SOURCES && !seen.contains_key(&source) {
            seen.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if seen.len() >= MAX_SOURCES {
                return false;
            }
        }
        let entry = seen.entry(source).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_hour {
            return false;
        }
        entry.1 += 1;
        true
    }

    /// Gives back the report [`ReportLimiter::allow`] counted for `source` (the report
    /// turned out invalid and was not stored, so it must not use up the quota).
    pub fn refund(&self, source: IpAddr) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if let Some(entry) = seen.get_mut(&source) {
            entry.1 = entry.1.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_source_and_window() {
        let l = ReportLimiter::new(2);
        let (a, b): (IpAddr, IpAddr) = ([192, 0, 2, 1].into(), [192, 0, 2, 2].into());
        let t = Instant::now();
        assert!(l.allow(a, t));
        assert!(l.allow(a, t));
        assert!(!l.allow(a, t));
        assert!(l.allow(b, t), "another source has its own budget");
        assert!(l.allow(a, t + WINDOW), "a new hour starts afresh");
    }

    #[test]
    fn a_refund_gives_the_report_back() {
        let l = ReportLimiter::new(1);
        let a: IpAddr = [192, 0, 2, 1].into();
        let t = Instant::now();
        assert!(l.allow(a, t));
        l.refund(a);
        assert!(l.allow(a, t));
        assert!(!l.allow(a, t));
        l.refund([192, 0, 2, 9].into()); // unknown: nothing to give back
    }
}
