//! How each upstream server is doing, for the operator's status page and `/v1/status`:
//! whether its last exchange got an answer, how long ago it last answered, and how many
//! queries it failed lately. The [`Resolver`](super::resolve::Resolver) notes every
//! exchange here (client queries and `/readyz` probes alike); nothing here says which
//! name was asked or by whom.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Failures older than this no longer count as recent.
pub const RECENT: Duration = Duration::from_secs(300);
/// Most failure times kept per server (a server failing every query at load would
/// otherwise grow the window without bound; the count then reads "at least").
const MAX_KEPT: usize = 10_000;

/// The per-server tally.
#[derive(Debug, Default)]
pub struct Health {
    servers: Mutex<HashMap<SocketAddr, Tally>>,
}

#[derive(Debug, Default)]
struct Tally {
    last_answer: Option<Instant>,
    /// When it last failed, and how (`Failure`'s text: "no answer within 500ms").
    last_failure: Option<(Instant, String)>,
    /// Failures since its last answer.
    consecutive: u64,
    /// When its recent failures happened, oldest first.
    recent: VecDeque<Instant>,
}

/// One server as the status page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerHealth {
    /// What it answers: its last exchange got a usable reply (`Answering`), did not
    /// (`Failing`), or it has not been asked since the start (`Unknown`).
    pub state: State,
    /// Seconds since it last answered; `None`: not since the start.
    pub last_answer_secs: Option<u64>,
    /// Queries it failed in the last [`RECENT`].
    pub recent_failures: u64,
    /// Failures since its last answer.
    pub consecutive_failures: u64,
    /// Its last failure: seconds ago and what happened.
    pub last_failure: Option<(u64, String)>,
}

/// Whether a server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Its last exchange got a usable reply.
    Answering,
    /// Its last exchange did not.
    Failing,
    /// Not asked since the start.
    Unknown,
}

impl Health {
    /// `server` gave a usable reply at `now`.
    pub fn answered(&self, server: SocketAddr, now: Instant) {
        let mut map = self.lock();
        let t = map.entry(server).or_default();
        t.last_answer = Some(now);
        t.consecutive = 0;
    }

    /// `server` failed one query at `now`, as `what` says.
    pub fn failed(&self, server: SocketAddr, what: String, now: Instant) {
        let mut map = self.lock();
        let t = map.entry(server).or_default();
        t.last_failure = Some((now, what));
        t.consecutive += 1;
        t.recent.push_back(now);
        forget_old(&mut t.recent, now);
        if t.recent.len() > MAX_KEPT {
            t.recent.pop_front();
        }
    }

    /// How `server` is doing at `now`.
    pub fn of(&self, server: SocketAddr, now: Instant) -> ServerHealth {
        let mut map = self.lock();
        let Some(t) = map.get_mut(&server) else {
            return ServerHealth {
                state: State::Unknown,
                last_answer_secs: None,
                recent_failures: 0,
                consecutive_failures: 0,
                last_failure: None,
            };
        };
        forget_old(&mut t.recent, now);
        let ago = |at: Instant| now.saturating_duration_since(at).as_secs();
        let state = match (t.last_answer, &t.last_failure) {
            (Some(a), Some((f, _))) if *f > a => State::Failing,
            (Some(_), _) => State::Answering,
            (None, Some(_)) => State::Failing,
            (None, None) => State::Unknown,
        };
        ServerHealth {
            state,
            last_answer_secs: t.last_answer.map(ago),
            recent_failures: t.recent.len() as u64,
            consecutive_failures: t.consecutive,
            last_failure: t.last_failure.as_ref().map(|(at, w)| (ago(*at), w.clone())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Tally>> {
        // Counters and times only: a tally a panicking thread left is still worth showing.
        self.servers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn forget_old(recent: &mut VecDeque<Instant>, now: Instant) {
    while recent
        .front()
        .is_some_and(|at| now.saturating_duration_since(*at) > RECENT)
    {
        recent.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_failures_are_told_apart_and_old_failures_expire() {
        let h = Health::default();
        let (a, b) = (
            SocketAddr::from(([127, 0, 0, 1], 1)),
            SocketAddr::from(([127, 0, 0, 1], 2)),
        );
        let t0 = Instant::now();
        assert_eq!(h.of(a, t0).state, State::Unknown);
        h.answered(a, t0);
        h.failed(b, "connection refused".into(), t0);
        h.failed(b, "connection refused".into(), t0 + Duration::from_secs(1));
        let later = t0 + Duration::from_secs(2);
        let (ha, hb) = (h.of(a, later), h.of(b, later));
        assert_eq!(ha.state, State::Answering);
        assert_eq!(ha.last_answer_secs, Some(2));
        assert_eq!(hb.state, State::Failing);
        assert_eq!((hb.recent_failures, hb.consecutive_failures), (2, 2));
        assert_eq!(hb.last_failure, Some((1, "connection refused".into())));
        // b answers again: answering, the failures stay counted as recent until they age.
        h.answered(b, later);
        let hb = h.of(b, later);
        assert_eq!(
            (hb.state, hb.consecutive_failures, hb.recent_failures),
            (State::Answering, 0, 2)
        );
        let much_later = t0 + RECENT + Duration::from_secs(5);
        assert_eq!(h.of(b, much_later).recent_failures, 0);
        // a fails after answering: failing.
        h.failed(a, "SERVFAIL".into(), much_later);
        assert_eq!(h.of(a, much_later).state, State::Failing);
    }
}
