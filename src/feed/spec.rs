//! What the configuration says about the lists, each list source and the feed guards,
//! typed and validated (see [`crate::config`] for the TOML side): [`ListsConfig`] is the
//! `[lists]` table, its [`FeedConfig`] the feed part of it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::feed::xfr::TsigKey;
use crate::lists::compile::ListSource;
use crate::lists::parse::Format;

/// Default cap on one downloaded list (after HTTP decoding).
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Default poll interval of a `url` source.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(15 * 60);

/// Default timeout of one download or zone transfer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest interval the SOA refresh of an RPZ zone is trusted with: a zone that says
/// "check me daily" is still checked hourly (NOTIFY makes changes immediate anyway).
pub const MAX_RPZ_REFRESH: Duration = Duration::from_secs(3600);

/// Lists to compile and where the result lives: the `[lists]` table with its sources, as
/// [`crate::config`] validated them.
#[derive(Clone, Debug)]
pub struct ListsConfig {
    /// Compiled FST path (absolute or relative to the working directory after resolution).
    pub compiled: PathBuf,
    /// Block lists and allowlists (an allowlist has no category).
    pub sources: Vec<ListSource>,
    /// Watch the compiled file and the `path` sources, and swap in changes.
    pub watch: bool,
    /// Each source's kind (`path`, `url`, `rpz`), the state directory and the guards.
    pub feeds: FeedConfig,
}

impl ListsConfig {
    /// The sources a compile can read now: every `path` source, and the feeds that have a
    /// stored copy in the state directory (a feed not yet fetched is left out, not failed).
    pub fn available_sources(&self) -> Vec<ListSource> {
        self.sources
            .iter()
            .zip(&self.feeds.sources)
            .filter(|(s, spec)| !spec.is_feed() || s.path.exists())
            .map(|(s, _)| s.clone())
            .collect()
    }
}

/// Feed settings of `[lists]` and every source, in the order of
/// [`ListsConfig::sources`].
#[derive(Clone, Debug, PartialEq)]
pub struct FeedConfig {
    /// Where downloaded bodies, zone snapshots and their status files live.
    pub state_dir: PathBuf,
    /// A download whose rejected entries exceed this share is refused.
    pub max_reject_ratio: f64,
    /// A new list with fewer entries than this share of the serving one is refused.
    pub min_keep_ratio: f64,
    /// Take shrinking lists anyway (the other guards still apply).
    pub force: bool,
    /// One per configured source (block lists first, then allowlists).
    pub sources: Vec<SourceSpec>,
}

/// One `[[lists.source]]` or `[[lists.allow]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceSpec {
    /// Unique name: state files and log lines use it.
    pub name: String,
    /// Category of its block rules; `None` for an allowlist.
    pub category: Option<String>,
    /// List format (`auto` sniffs).
    pub format: Format,
    /// Where its rules come from.
    pub kind: SourceKind,
}

/// Where a source's rules come from.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceKind {
    /// A local file, watched for changes.
    Path(PathBuf),
    /// A list downloaded over HTTP(S).
    Url(UrlFeed),
    /// An RPZ zone transferred from a primary.
    Rpz(RpzFeed),
}

/// A `url = "..."` source.
#[derive(Clone, Debug, PartialEq)]
pub struct UrlFeed {
    /// The list's URL (http or https).
    pub url: String,
    /// How often to poll (±10 % jitter is added).
    pub refresh: Duration,
    /// The publisher's minisign public key; when set, `<url>.minisig` must verify.
    pub minisign_pubkey: Option<String>,
    /// Largest body accepted.
    pub max_bytes: u64,
    /// Bound on one download.
    pub timeout: Duration,
}

/// An `rpz = { ... }` source.
#[derive(Clone, Debug, PartialEq)]
pub struct RpzFeed {
    /// The primary's address.
    pub primary: SocketAddr,
    /// The zone, absolute (`kidsafe.rpz.`).
    pub zone: String,
    /// TSIG key for transfers.
    pub tsig: Option<TsigKey>,
    /// Poll interval; `None` follows the zone's SOA refresh (at most [`MAX_RPZ_REFRESH`]).
    pub refresh: Option<Duration>,
    /// Where to listen for the primary's NOTIFY (UDP and TCP).
    pub notify_listen: Option<SocketAddr>,
    /// Bound on one SOA query or transfer.
    pub timeout: Duration,
}

impl SourceKind {
    /// `path`, `url` or `rpz`.
    pub fn label(&self) -> &'static str {
        match self {
            SourceKind::Path(_) => "path",
            SourceKind::Url(_) => "url",
            SourceKind::Rpz(_) => "rpz",
        }
    }

    /// Where it comes from, for people: the file, the URL, or `zone from primary`.
    pub fn origin(&self) -> String {
        match self {
            SourceKind::Path(p) => p.display().to_string(),
            SourceKind::Url(u) => u.url.clone(),
            SourceKind::Rpz(r) => format!("{} from {}", r.zone, r.primary),
        }
    }
}

impl SourceSpec {
    /// True for sources fetched from the network (their list lives in the state directory).
    pub fn is_feed(&self) -> bool {
        !matches!(self.kind, SourceKind::Path(_))
    }

    /// The format the stored list is read with (a zone snapshot is always RPZ).
    pub fn list_format(&self) -> Format {
        match self.kind {
            SourceKind::Rpz(_) => Format::Rpz,
            _ => self.format,
        }
    }

    /// The compiler's view of this source.
    pub fn list_source(&self, state_dir: &Path) -> ListSource {
        ListSource {
            category: self.category.clone(),
            path: self.list_path(state_dir),
            format: self.list_format(),
        }
    }
}

/// Parses `"15m"`, `"1s"`, `"2h"`, `"500ms"` or a bare number of seconds.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let bad = || format!("`{text}` is not a duration: use e.g. \"30s\", \"15m\", \"1h\"");
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(bad()),
    };
    if d.is_zero() {
        return Err(format!("`{text}` is zero: give a positive duration"));
    }
    Ok(d)
}

/// `d` ± 10 %, so a fleet started together does not poll the publisher in lockstep.
pub fn jittered(d: Duration) -> Duration {
    let factor: f64 = rand::random_range(0.9..=1.1);
    d.mul_f64(factor)
}

/// A file-system-safe form of `text`: ASCII letters, digits, `-`, `_` and `.` kept,
/// anything else `_`, at most 80 characters.
pub fn sanitize(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let s = s.trim_matches('.').to_owned();
    if s.is_empty() { "source".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 days").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let j = jittered(Duration::from_secs(100));
            assert!(j >= Duration::from_secs(90) && j <= Duration::from_secs(110));
        }
    }

    #[test]
    fn names_are_file_safe() {
        assert_eq!(
            sanitize("adult-https://x.example/a b"),
            "adult-https___x.example_a_b"
        );
        assert_eq!(sanitize("../.."), "_");
        assert_eq!(sanitize(""), "source");
    }
}
