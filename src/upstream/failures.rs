//! Upstream failures, summarised for the log: when the upstreams go away every forwarded
//! query fails, and one log line per query would bury everything else (and name only the
//! last server tried). Instead the first failure after a quiet spell is logged at once,
//! and the ones after it are tallied and written as one line per [`SUMMARY_EVERY`] while
//! they go on: how many client queries got SERVFAIL, and what each server did.
//!
//! The tally is pure bookkeeping over an `Instant` the caller passes, so it is tested
//! without waiting; [`crate::upstream::resolve::Resolver`] owns one and writes its lines.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::forwarder::{Failure, UpstreamError};

/// At most one summary line per this long.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// The tally of failed client queries since the last line written.
#[derive(Debug)]
pub struct FailureLog {
    every: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When the last line was written; `None` before the first.
    last_line: Option<Instant>,
    /// The first failure not yet written.
    since: Option<Instant>,
    /// Client queries that got SERVFAIL since then.
    queries: u64,
    /// Per server, in the order they first failed (a handful: the configured ones).
    servers: Vec<ServerTally>,
    /// The last query that could not even be encoded (a bug), if any.
    encode: Option<String>,
}

#[derive(Debug)]
struct ServerTally {
    server: SocketAddr,
    /// Queries it failed (timed out, refused, errored).
    failed: u64,
    /// Queries it was not asked, the servers before it having used the time budget.
    not_asked: u64,
    /// Its last error.
    last: Option<String>,
}

/// One summary line: the failures between two lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Client queries that got SERVFAIL because no upstream answered.
    pub queries: u64,
    /// How long the failures spanned (zero for a single one).
    pub over: Duration,
    /// Per server: address, queries failed, queries not asked, last error.
    pub servers: Vec<(SocketAddr, u64, u64, Option<String>)>,
    /// The last encoding error, if a query could not be encoded.
    pub encode: Option<String>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.queries == 1 { "y" } else { "ies" };
        write!(
            f,
            "no upstream answered {} quer{plural} (SERVFAIL to the client) in {:.1}s",
            self.queries,
            self.over.as_secs_f64()
        )?;
        for (server, failed, not_asked, last) in &self.servers {
            write!(f, "; {server}: failed {failed}")?;
            if let Some(last) = last {
                write!(f, " (last: {last})")?;
            }
            if *not_asked > 0 {
                write!(f, ", not asked {not_asked} (no time left)")?;
            }
        }
        if let Some(e) = &self.encode {
            write!(f, "; cannot encode a query: {e}")?;
        }
        write!(
            f,
            "; further failures are summarised every {}s",
            SUMMARY_EVERY.as_secs()
        )
    }
}

impl Default for FailureLog {
    fn default() -> Self {
        FailureLog::new(SUMMARY_EVERY)
    }
}

impl FailureLog {
    /// A tally that yields at most one line per `every`.
    pub fn new(every: Duration) -> Self {
        FailureLog {
            every,
            state: Mutex::new(State::default()),
        }
    }

    /// Counts one client query that failed with `error` at `now`; returns the line to
    /// write when one is due (the first failure after a quiet `every`, or `every` after
    /// the last line).
    pub fn record(&self, error: &UpstreamError, now: Instant) -> Option<Summary> {
        let mut s = self.lock();
        s.queries += 1;
        s.since.get_or_insert(now);
        match error {
            UpstreamError::Unanswered(attempts) => {
                for a in attempts {
                    let i = match s.servers.iter().position(|t| t.server == a.server) {
                        Some(i) => i,
                        None => {
                            s.servers.push(ServerTally {
                                server: a.server,
                                failed: 0,
                                not_asked: 0,
                                last: None,
                            });
                            s.servers.len() - 1
                        }
                    };
                    let t = &mut s.servers[i];
                    match &a.failure {
                        Failure::NotAsked => t.not_asked += 1,
                        other => {
                            t.failed += 1;
                            t.last = Some(other.to_string());
                        }
                    }
                }
            }
            UpstreamError::Encode(e) => s.encode = Some(e.clone()),
        }
        self.take_if_due(&mut s, now)
    }

    /// The line for failures tallied but not yet written, if `every` has passed since the
    /// last line (call it periodically, so the tail of a streak is written too), or
    /// whatever the time when `force` (at shutdown).
    pub fn flush(&self, now: Instant, force: bool) -> Option<Summary> {
        let mut s = self.lock();
        if s.queries == 0 {
            return None;
        }
        if force {
            return Some(take(&mut s, now));
        }
        self.take_if_due(&mut s, now)
    }

    fn take_if_due(&self, s: &mut State, now: Instant) -> Option<Summary> {
        let due = s
            .last_line
            .is_none_or(|at| now.saturating_duration_since(at) >= self.every);
        due.then(|| take(s, now))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The tally holds counters only: one a panicking thread left half-updated is
        // still worth reporting.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The summary of `s`, which starts over (remembering that a line was written at `now`).
fn take(s: &mut State, now: Instant) -> Summary {
    let since = s.since.unwrap_or(now);
    let old = std::mem::replace(
        s,
        State {
            last_line: Some(now),
            ..State::default()
        },
    );
    Summary {
        queries: old.queries,
        over: now.saturating_duration_since(since),
        servers: old
            .servers
            .into_iter()
            .map(|t| (t.server, t.failed, t.not_asked, t.last))
            .collect(),
        encode: old.encode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::forwarder::Attempt;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn both_failed() -> UpstreamError {
        UpstreamError::Unanswered(vec![
            Attempt {
                server: addr(1),
                failure: Failure::Network(std::io::ErrorKind::ConnectionRefused.into()),
            },
            Attempt {
                server: addr(2),
                failure: Failure::TimedOut(Duration::from_millis(500)),
            },
        ])
    }

    #[test]
    fn first_failure_at_once_then_one_line_per_interval() {
        let log = FailureLog::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let first = log
            .record(&both_failed(), t0)
            .expect("first failure logged");
        assert_eq!(first.queries, 1);
        let line = first.to_string();
        assert!(
            line.contains("127.0.0.1:1: failed 1 (last: connection refused)"),
            "{line}"
        );
        assert!(
            line.contains("127.0.0.1:2: failed 1 (last: no answer within 500ms)"),
            "{line}"
        );

        // 99 more within the interval: tallied, nothing written.
        for i in 1..100 {
            let at = t0 + Duration::from_millis(50 * i);
            assert_eq!(log.record(&both_failed(), at), None);
        }
        assert_eq!(log.flush(t0 + Duration::from_secs(9), false), None);
        // The interval passed: the tail comes out on the next flush, once.
        let tail = log.flush(t0 + Duration::from_secs(10), false).unwrap();
        assert_eq!(tail.queries, 99);
        assert_eq!(tail.servers.len(), 2);
        assert!(tail.servers.iter().all(|s| s.1 == 99));
        assert_eq!(log.flush(t0 + Duration::from_secs(30), false), None);
    }

    #[test]
    fn servers_not_asked_are_told_apart_and_shutdown_flushes() {
        let log = FailureLog::new(Duration::from_secs(10));
        let t0 = Instant::now();
        log.record(&both_failed(), t0);
        let late = UpstreamError::Unanswered(vec![
            Attempt {
                server: addr(2),
                failure: Failure::TimedOut(Duration::from_secs(1)),
            },
            Attempt {
                server: addr(3),
                failure: Failure::NotAsked,
            },
        ]);
        assert_eq!(log.record(&late, t0 + Duration::from_secs(1)), None);
        let s = log.flush(t0 + Duration::from_secs(2), true).unwrap();
        assert_eq!(s.queries, 1);
        let line = s.to_string();
        assert!(
            line.contains("127.0.0.1:3: failed 0, not asked 1"),
            "{line}"
        );
        assert!(line.starts_with("no upstream answered 1 query "), "{line}");
        assert_eq!(log.flush(t0 + Duration::from_secs(3), true), None);
    }
}
