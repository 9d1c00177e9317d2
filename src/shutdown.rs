//! Graceful shutdown: stop taking queries, let the ones in flight finish, then stop.
//!
//! Stopping the listeners at once would drop the tasks still answering, so a query waiting
//! on upstream would be lost. [`Drain`] closes the gate first: from then on new queries are
//! dropped unanswered (to the client that is the same as a closed socket, and it retries
//! elsewhere), queries already inside finish, and only when none is left (or the grace
//! period ends) are the listeners shut.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Counts queries in flight and closes the gate on shutdown.
#[derive(Debug, Default)]
pub struct Drain {
    closing: AtomicBool,
    inflight: AtomicUsize,
    idle: Notify,
}

/// Held while a query is being answered.
#[derive(Debug)]
pub struct InFlight<'a>(&'a Drain);

/// [`InFlight`] that owns a handle on its [`Drain`], for a query answered by a task of its
/// own.
#[derive(Debug)]
pub struct InFlightOwned(Arc<Drain>);

impl Drain {
    /// Lets a query in, unless shutdown has begun.
    pub fn enter(&self) -> Option<InFlight<'_>> {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        if self.closing.load(Ordering::SeqCst) {
            self.leave();
            return None;
        }
        Some(InFlight(self))
    }

    fn leave(&self) {
        if self.inflight.fetch_sub(1, Ordering::SeqCst) == 1 && self.closing.load(Ordering::SeqCst)
        {
            self.idle.notify_waiters();
        }
    }

    /// Queries being answered right now.
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::SeqCst)
    }

    /// Closes the gate and waits until no query is in flight, or `grace` passes.
    /// Returns how many were still in flight at the end (0 on a clean drain).
    pub async fn close_and_wait(&self, grace: Duration) -> usize {
        self.closing.store(true, Ordering::SeqCst);
        let wait = async {
            loop {
                let idle = self.idle.notified();
                if self.inflight() == 0 {
                    return;
                }
                idle.await;
            }
        };
        let _ = tokio::time::timeout(grace, wait).await;
        self.inflight()
    }
}

impl InFlight<'_> {
    /// The same query, now counted by an owned guard; `drain` must be the drain this guard
    /// came from (else the other drain is the one left).
    pub fn into_owned(self, drain: Arc<Drain>) -> InFlightOwned {
        debug_assert!(std::ptr::eq(self.0, &*drain));
        std::mem::forget(self);
        InFlightOwned(drain)
    }
}

impl Drop for InFlightOwned {
    fn drop(&mut self) {
        self.0.leave();
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_inflight_and_refuses_new() {
        let drain = std::sync::Arc::new(Drain::default());
        let d2 = drain.clone();
        let worker = tokio::spawn(async move {
            let _g = d2.enter().unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(drain.inflight(), 1);
        let left = drain.close_and_wait(Duration::from_secs(5)).await;
        assert_eq!(left, 0);
        assert!(drain.enter().is_none());
        worker.await.unwrap();
    }
}
