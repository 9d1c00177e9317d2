//! The optional query log (`[querylog] enabled = true`): one JSON line per *blocked* query,
//! never for allowed ones, so it answers "what is being blocked, and for which group"
//! without recording anyone's browsing.
//!
//! The client is written as its network only (IPv4 /24, IPv6 /56: a street, not a house),
//! as a salted hash whose salt lives only in memory and changes every day (events of one
//! day can be grouped, not traced to an address or across days), or not at all. The file
//! rotates at `max_bytes` and `keep` old files are kept, so the log's size is bounded.
//!
//! Queries hand events to a writer task over a bounded channel; when the writer falls
//! behind, events are dropped and counted, the query path never waits on the disk.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::clock::now_unix;
use crate::metrics::Metrics;

/// Events buffered for the writer.
const QUEUE: usize = 4096;
const DAY: u64 = 86_400;

/// `[querylog]`, when enabled, as [`crate::config`] validated it.
#[derive(Clone, Debug)]
pub struct QueryLogConfig {
    /// The JSON-lines file.
    pub path: PathBuf,
    /// Rotate at this size.
    pub max_bytes: u64,
    /// Rotated files kept.
    pub keep: u32,
    /// How clients are written.
    pub client: ClientPrivacy,
}

/// How a query log entry names the client (`querylog.client`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientPrivacy {
    /// The network only: IPv4 /24, IPv6 /56.
    #[default]
    Truncate,
    /// A salted hash; the salt lives in memory and changes every day.
    Hash,
    /// No client field at all.
    Omit,
}

/// One blocked query.
#[derive(Debug)]
pub struct Event {
    /// The question name (lowercase).
    pub name: String,
    /// The question type, e.g. `A`.
    pub qtype: String,
    /// The client's group.
    pub group: String,
    /// `blocked`, `blocked_cname` or `filtered`.
    pub verdict: &'static str,
    /// The list categories behind the block.
    pub categories: Vec<String>,
    /// The client, before the privacy transform.
    pub client: IpAddr,
}

#[derive(Serialize)]
struct Line<'a> {
    ts: u64,
    name: &'a str,
    qtype: &'a str,
    group: &'a str,
    verdict: &'a str,
    categories: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<String>,
}

/// The query path's end of the log.
#[derive(Clone, Debug)]
pub struct QueryLog {
    tx: mpsc::Sender<Event>,
    metrics: Arc<Metrics>,
}

impl QueryLog {
    /// Starts the writer task for `config`.
    ///
    /// # Errors
    /// The log file cannot be opened (its directory is created if missing).
    pub fn start(config: &QueryLogConfig, metrics: Arc<Metrics>) -> io::Result<Self> {
        let writer = Writer::open(config)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::task::spawn_blocking(move || writer.run(rx));
        Ok(QueryLog { tx, metrics })
    }

    /// Logs `event`, or drops and counts it when the writer is behind.
    pub fn blocked(&self, event: Event) {
        if self.tx.try_send(event).is_err() {
            self.metrics.querylog_dropped.increment(1);
        }
    }
}

struct Writer {
    path: PathBuf,
    file: File,
    written: u64,
    max_bytes: u64,
    keep: u32,
    privacy: ClientPrivacy,
    salt: [u8; 32],
    salt_day: u64,
}

fn open_append(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// `path.N`: the N-th newest rotated file.
fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    name.into()
}

impl Writer {
    fn open(config: &QueryLogConfig) -> io::Result<Self> {
        let file = open_append(&config.path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("query log {}: {e}", config.path.display()),
            )
        })?;
        let written = file.metadata().map_or(0, |m| m.len());
        Ok(Writer {
            path: config.path.clone(),
            file,
            written,
            max_bytes: config.max_bytes,
            keep: config.keep,
            privacy: config.client,
            salt: rand::random(),
            salt_day: now_unix() / DAY,
        })
    }

    fn run(mut self, mut rx: mpsc::Receiver<Event>) {
        let mut line = Vec::with_capacity(256);
        while let Some(event) = rx.blocking_recv() {
            line.clear();
            let ts = now_unix();
            let client = self.client(event.client, ts);
            let record = Line {
                ts,
                name: &event.name,
                qtype: &event.qtype,
                group: &event.group,
                verdict: event.verdict,
                categories: &event.categories,
                client,
            };
            if serde_json::to_writer(&mut line, &record).is_err() {
                continue;
            }
            line.push(b'\n');
            if let Err(error) = self.write(&line) {
                tracing::warn!(%error, path = %self.path.display(), "query log write failed");
            }
        }
    }

    fn client(&mut self, ip: IpAddr, now: u64) -> Option<String> {
        match self.privacy {
            ClientPrivacy::Omit => None,
            ClientPrivacy::Truncate => Some(truncate(ip)),
            ClientPrivacy::Hash => {
                if now / DAY != self.salt_day {
                    self.salt = rand::random();
                    self.salt_day = now / DAY;
                }
                let mut h = Sha256::new();
                h.update(self.salt);
                match ip {
                    IpAddr::V4(v4) => h.update(v4.octets()),
                    IpAddr::V6(v6) => h.update(v6.octets()),
                }
                Some(hex::encode(&h.finalize()[..8]))
            }
        }
    }

    fn write(&mut self, line: &[u8]) -> io::Result<()> {
        if self.written > 0 && self.written + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.written += line.len() as u64;
        Ok(())
    }

    /// `log` → `log.1` → `log.2` …, the oldest beyond `keep` removed.
    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.keep == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            let _ = std::fs::remove_file(rotated(&self.path, self.keep));
            for n in (1..self.keep).rev() {
                let _ = std::fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1));
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
        }
        self.file = open_append(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

/// The client's network: IPv4 /24, IPv6 /56 (IPv4-mapped IPv6 as IPv4).
pub fn truncate(ip: IpAddr) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let net = match ip {
        IpAddr::V4(_) => ipnet::IpNet::new(ip, 24),
        IpAddr::V6(_) => ipnet::IpNet::new(ip, 56),
    };
    net.map_or_else(|_| String::new(), |n| n.trunc().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, privacy: ClientPrivacy, max_bytes: u64) -> QueryLogConfig {
        QueryLogConfig {
            path: dir.join("q.jsonl"),
            max_bytes,
            keep: 2,
            client: privacy,
        }
    }

    fn event(client: &str) -> Event {
        Event {
            name: "casino.example".into(),
            qtype: "A".into(),
            group: "default".into(),
            verdict: "blocked",
            categories: vec!["gambling".into()],
            client: client.parse().unwrap(),
        }
    }

    #[test]
    fn truncates_to_the_network() {
        assert_eq!(truncate("192.0.2.77".parse().unwrap()), "192.0.2.0/24");
        assert_eq!(
            truncate("2001:db8:1:2ff::1".parse().unwrap()),
            "2001:db8:1:200::/56"
        );
        assert_eq!(truncate("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.0/24");
    }

    #[test]
    fn hashes_are_stable_within_a_day_and_hide_the_address() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::open(&config(dir.path(), ClientPrivacy::Hash, 4096)).unwrap();
        let ip: IpAddr = "192.0.2.77".parse().unwrap();
        let day = w.salt_day * DAY;
        let a = w.client(ip, day).unwrap();
        assert_eq!(a, w.client(ip, day + 10).unwrap());
        assert!(!a.contains("192"));
        assert_ne!(
            a,
            w.client(ip, day + DAY).unwrap(),
            "the salt changes daily"
        );
    }

    #[test]
    fn writes_lines_and_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), ClientPrivacy::Truncate, 4096);
        let mut w = Writer::open(&cfg).unwrap();
        let (tx, rx) = mpsc::channel(QUEUE);
        for _ in 0..200 {
            tx.try_send(event("192.0.2.77")).unwrap();
        }
        drop(tx);
        let keep = w.keep;
        w.max_bytes = 4096;
        w.run(rx);
        let current = std::fs::read_to_string(&cfg.path).unwrap();
        let first = current.lines().next().unwrap();
        let v: serde_json::Value = serde_json::from_str(first).unwrap();
        assert_eq!(v["client"], "192.0.2.0/24");
        assert_eq!(v["categories"][0], "gambling");
        assert!(!current.contains("192.0.2.77"));
        assert!(rotated(&cfg.path, 1).exists());
        assert!(rotated(&cfg.path, keep).exists());
        assert!(
            !rotated(&cfg.path, keep + 1).exists(),
            "only `keep` old files"
        );
        for n in 0..=keep {
            let p = if n == 0 {
                cfg.path.clone()
            } else {
                rotated(&cfg.path, n)
            };
            assert!(std::fs::metadata(p).unwrap().len() <= 4096);
        }
    }
}
