//! What the primary counts: transfers by kind, refusals by reason, NOTIFY outcomes. Plain
//! atomics, read by tests and copied into the Prometheus registry by whoever renders it
//! ([`RpzStats::totals`]). Nothing here says which secondary asked.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a request was not answered with data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The source address is not in `xfr_allow`: REFUSED.
    Address,
    /// A transfer without TSIG while a key is configured: REFUSED.
    Unsigned,
    /// TSIG with an unknown key, a bad MAC or a time outside the fudge: NOTAUTH.
    BadTsig,
    /// A zone we do not serve: NOTAUTH (transfers) or REFUSED (other queries).
    UnknownZone,
    /// Not a question we answer (FORMERR, NOTIMP, or a type other than SOA/AXFR/IXFR).
    Unsupported,
}

/// Counters of one primary.
#[derive(Debug, Default)]
pub struct RpzStats {
    /// AXFR answers started.
    pub axfr: AtomicU64,
    /// IXFR answered with difference sequences.
    pub ixfr_incremental: AtomicU64,
    /// IXFR answered with the whole zone (journal too short, or asked over an empty
    /// journal).
    pub ixfr_full: AtomicU64,
    /// IXFR answered with the current SOA alone (up to date, or over UDP when the answer
    /// did not fit).
    pub ixfr_soa_only: AtomicU64,
    /// SOA queries answered.
    pub soa: AtomicU64,
    /// Octets of answer messages sent over TCP (transfers and SOA).
    pub tcp_bytes: AtomicU64,
    /// Refused: address not allowed.
    pub refused_address: AtomicU64,
    /// Refused: transfer without TSIG.
    pub refused_unsigned: AtomicU64,
    /// Refused: bad TSIG (key, MAC or time).
    pub refused_bad_tsig: AtomicU64,
    /// Refused: unknown zone.
    pub refused_unknown_zone: AtomicU64,
    /// Refused: unsupported request.
    pub refused_unsupported: AtomicU64,
    /// TCP connections closed at once because too many were open.
    pub tcp_rejected: AtomicU64,
    /// NOTIFY messages sent (every try).
    pub notify_sent: AtomicU64,
    /// NOTIFY acknowledged.
    pub notify_acked: AtomicU64,
    /// NOTIFY given up on after the last try, or answered with an error.
    pub notify_failed: AtomicU64,
    /// NOTIFY answered REFUSED or NOTAUTH: the secondary does not carry that zone.
    pub notify_refused: AtomicU64,
}

/// Adds one.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl RpzStats {
    /// Counts a refusal.
    pub fn refused(&self, why: Refusal) {
        bump(match why {
            Refusal::Address => &self.refused_address,
            Refusal::Unsigned => &self.refused_unsigned,
            Refusal::BadTsig => &self.refused_bad_tsig,
            Refusal::UnknownZone => &self.refused_unknown_zone,
            Refusal::Unsupported => &self.refused_unsupported,
        });
    }

    /// Every counter as `(metric name, label name, label value, total)`, for
    /// [`crate::metrics::Metrics::counter_total`].
    pub fn totals(&self) -> Vec<(&'static str, &'static str, &'static str, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        const XFR: &str = "kidsafe_rpz_transfers_total";
        const REFUSED: &str = "kidsafe_rpz_refused_total";
        const NOTIFY: &str = "kidsafe_rpz_notify_total";
        vec![
            (XFR, "kind", "axfr", get(&self.axfr)),
            (XFR, "kind", "ixfr", get(&self.ixfr_incremental)),
            (XFR, "kind", "ixfr_full", get(&self.ixfr_full)),
            (XFR, "kind", "ixfr_soa_only", get(&self.ixfr_soa_only)),
            (XFR, "kind", "soa", get(&self.soa)),
            (REFUSED, "reason", "address", get(&self.refused_address)),
            (REFUSED, "reason", "unsigned", get(&self.refused_unsigned)),
            (REFUSED, "reason", "bad_tsig", get(&self.refused_bad_tsig)),
            (
                REFUSED,
                "reason",
                "unknown_zone",
                get(&self.refused_unknown_zone),
            ),
            (
                REFUSED,
                "reason",
                "unsupported",
                get(&self.refused_unsupported),
            ),
            (REFUSED, "reason", "tcp_limit", get(&self.tcp_rejected)),
            (NOTIFY, "result", "sent", get(&self.notify_sent)),
            (NOTIFY, "result", "acked", get(&self.notify_acked)),
            (NOTIFY, "result", "failed", get(&self.notify_failed)),
            (NOTIFY, "result", "refused", get(&self.notify_refused)),
            (
                "kidsafe_rpz_tcp_bytes_total",
                "transport",
                "tcp",
                get(&self.tcp_bytes),
            ),
        ]
    }
}
