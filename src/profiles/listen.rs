//! The LISTEN thread of a PostgreSQL store: every other node's committed write moves
//! this node's generation, so its app reloads the policy. A lost connection is retried
//! with backoff, and each (re)connection moves the generation once: notifications sent
//! while it was away are lost, so the node rereads everything.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use tokio::sync::watch;

use super::pg_connect::{CHANNEL, connect};

/// First wait after a failed connection; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the loop wakes to check `stop` and the connection.
const TICK: Duration = Duration::from_millis(200);
/// How often an idle connection is pinged (a silent network loss shows no error).
const PING_EVERY: Duration = Duration::from_secs(5);

/// What the thread needs.
pub(super) struct Listener {
    pub url: String,
    pub target: String,
    /// This node's payload: its own writes bumped the generation at commit already.
    pub node: String,
    pub changed: Arc<watch::Sender<u64>>,
    pub stop: Arc<AtomicBool>,
}

/// Starts the thread; it ends soon after `stop` is set.
pub(super) fn spawn(l: Listener) {
    let spawned = std::thread::Builder::new()
        .name("profiles-listen".into())
        .spawn(move || run(&l));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "profile store: cannot start the LISTEN thread");
    }
}

fn run(l: &Listener) {
    let mut backoff = MIN_BACKOFF;
    while !l.stop.load(Ordering::Relaxed) {
        let mut client = match connect(&l.url, &l.target).and_then(|mut c| {
            c.batch_execute(&format!("LISTEN {CHANNEL}"))
                .map_err(|e| super::pg_connect::pg_error(&l.target, e))?;
            Ok(c)
        }) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "profile store: LISTEN connection failed");
                sleep_unless_stopped(backoff, &l.stop);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = MIN_BACKOFF;
        tracing::info!(postgres = %l.target, "profile store: listening for other nodes' writes");
        bump(l);
        let mut pinged = Instant::now();
        while !l.stop.load(Ordering::Relaxed) {
            let next = client.notifications().timeout_iter(TICK).next();
            match next {
                Ok(Some(note)) => {
                    if note.payload() != l.node {
                        bump(l);
                    }
                }
                Ok(None) => {
                    if client.is_closed() {
                        break;
                    }
                    if pinged.elapsed() >= PING_EVERY {
                        pinged = Instant::now();
                        if client.is_valid(TICK * 5).is_err() {
                            break;
                        }
                    }
                }
                Err(_) => break,
            }
        }
        if !l.stop.load(Ordering::Relaxed) {
            tracing::warn!(postgres = %l.target, "profile store: LISTEN connection lost; reconnecting");
        }
    }
}

fn bump(l: &Listener) {
    l.changed.send_modify(|g| *g += 1);
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(TICK.min(until.saturating_duration_since(Instant::now())));
    }
}
