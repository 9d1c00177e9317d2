//! NOTIFY (RFC 1996): tells every configured secondary, at once, that a zone changed, so it
//! transfers within a second instead of at its next SOA poll.
//!
//! At start every zone is announced (a secondary may have missed changes while we were
//! down), then each zone whose serial moved. A NOTIFY is retried, with a doubling wait,
//! until the secondary acknowledges it or [`TRIES`] have gone unanswered; a newer change to
//! the same zone replaces a NOTIFY still being retried. With a TSIG key the NOTIFY is
//! signed (secondaries that know the key may insist on it).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, Record, RecordType, TSigner};
use tokio::net::UdpSocket;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use super::stats::{RpzStats, bump};
use super::zone::Zones;
use crate::clock::now_unix;
use crate::publish::lists::PublishedLists;

/// Sends of one NOTIFY before giving up.
pub const TRIES: u32 = 5;
/// Wait for the acknowledgement of the first send; doubled after each.
pub const FIRST_WAIT: Duration = Duration::from_millis(500);

/// Who is told, and how.
pub struct Notifier {
    /// The published lists (their serials are watched).
    pub lists: Arc<dyn PublishedLists>,
    /// Zone naming.
    pub zones: Zones,
    /// Signs each NOTIFY when set.
    pub key: Option<TSigner>,
    /// The secondaries.
    pub targets: Vec<SocketAddr>,
    /// Counters.
    pub stats: Arc<RpzStats>,
}

impl Notifier {
    /// Watches for changes until `shutdown`, sending NOTIFY for each changed zone.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut changed = self.lists.subscribe();
        let mut known: HashMap<String, u32> = HashMap::new();
        let mut pending: HashMap<(String, SocketAddr), AbortHandle> = HashMap::new();
        loop {
            let lists = self.lists.clone();
            match tokio::task::spawn_blocking(move || lists.lists()).await {
                Ok(Ok(now)) => {
                    for (list, serial) in now {
                        if known.get(&list) == Some(&serial) {
                            continue;
                        }
                        self.announce(&list, serial, &mut pending);
                        known.insert(list, serial);
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "rpz notify: cannot read the lists"),
                Err(e) => tracing::warn!(error = %e, "rpz notify: lists() panicked"),
            }
            pending.retain(|_, task| !task.is_finished());
            tokio::select! {
                () = shutdown.cancelled() => break,
                got = changed.changed() => if got.is_err() { break },
            }
        }
        for task in pending.values() {
            task.abort();
        }
    }

    fn announce(
        &self,
        list: &str,
        serial: u32,
        pending: &mut HashMap<(String, SocketAddr), AbortHandle>,
    ) {
        let Some(zone) = self.zones.zone_of(list) else {
            return;
        };
        let soa = self.zones.soa(&zone, serial);
        for &target in &self.targets {
            let task = tokio::spawn(notify(
                zone.clone(),
                soa.clone(),
                target,
                self.key.clone(),
                self.stats.clone(),
            ));
            if let Some(older) = pending.insert((list.to_owned(), target), task.abort_handle()) {
                older.abort();
            }
        }
    }
}

/// The NOTIFY for `zone` announcing `soa`, signed when `key` is set.
pub fn notify_message(zone: &Name, soa: &Record, key: Option<&TSigner>) -> Option<Message> {
    let mut msg = Message::new(rand::random(), MessageType::Query, OpCode::Notify);
    msg.metadata.authoritative = true;
    let mut q = Query::query(zone.clone(), RecordType::SOA);
    q.set_query_class(DNSClass::IN);
    msg.add_query(q);
    msg.add_answer(soa.clone());
    if let Some(key) = key {
        msg.finalize(key, now_unix()).ok()?;
    }
    Some(msg)
}

/// Sends one NOTIFY until acknowledged or out of tries.
async fn notify(
    zone: Name,
    soa: Record,
    target: SocketAddr,
    key: Option<TSigner>,
    stats: Arc<RpzStats>,
) {
    let local: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = match UdpSocket::bind(local).await {
        Ok(s) if s.connect(target).await.is_ok() => s,
        _ => {
            bump(&stats.notify_failed);
            tracing::warn!(%target, zone = %zone, "rpz notify: no socket");
            return;
        }
    };
    let mut wait = FIRST_WAIT;
    // A late acknowledgement of an earlier try counts too.
    let mut ids = Vec::new();
    for _ in 0..TRIES {
        let Some(msg) = notify_message(&zone, &soa, key.as_ref()) else {
            bump(&stats.notify_failed);
            return;
        };
        let Ok(bytes) = msg.to_vec() else {
            bump(&stats.notify_failed);
            return;
        };
        ids.push(msg.id);
        if socket.send(&bytes).await.is_ok() {
            bump(&stats.notify_sent);
        }
        match tokio::time::timeout(wait, acknowledgement(&socket, &ids)).await {
            Ok(hickory_proto::op::ResponseCode::NoError) => {
                bump(&stats.notify_acked);
                return;
            }
            // A secondary that does not carry this zone (Unbound, or an edge following
            // other lists of ours): an answer, nothing to retry or warn about.
            Ok(
                hickory_proto::op::ResponseCode::Refused | hickory_proto::op::ResponseCode::NotAuth,
            ) => {
                bump(&stats.notify_refused);
                tracing::debug!(%target, zone = %zone, "rpz notify: the secondary does not carry the zone");
                return;
            }
            Ok(rcode) => {
                bump(&stats.notify_failed);
                tracing::warn!(%target, zone = %zone, %rcode, "rpz notify: refused by the secondary");
                return;
            }
            Err(_) => wait *= 2,
        }
    }
    bump(&stats.notify_failed);
    tracing::warn!(%target, zone = %zone, tries = TRIES, "rpz notify: never acknowledged");
}

/// Waits for the answer to one of the NOTIFYs `ids` (ignoring anything else) and returns
/// its RCODE.
async fn acknowledgement(socket: &UdpSocket, ids: &[u16]) -> hickory_proto::op::ResponseCode {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok(len) = socket.recv(&mut buf).await else {
            // An ICMP "port unreachable" from an earlier send: no one there yet; wait on.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(answer) = Message::from_vec(&buf[..len]) else {
            continue;
        };
        if ids.contains(&answer.id)
            && answer.message_type == MessageType::Response
            && answer.op_code == OpCode::Notify
        {
            return answer.response_code;
        }
    }
}
