//! `[subscribers]` as [`crate::config`] validated it: where the subscriber lines come
//! from, how often to look again, and where the compiled map lives.

use std::path::PathBuf;
use std::time::Duration;

/// Default poll interval of the source.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);

/// Default cap on a downloaded source (5M rows of ~25 bytes fit with room to spare).
pub const DEFAULT_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// Default bound on one download.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// File name of the compiled map in `lists.state_dir`.
pub const COMPILED_NAME: &str = "subscribers.map";

/// The `[subscribers]` table.
#[derive(Clone, Debug, PartialEq)]
pub struct SubscribersConfig {
    /// Where the lines come from.
    pub source: SubscriberOrigin,
    /// How often the source is looked at again (a file's size and time, a conditional GET).
    pub refresh: Duration,
    /// The compiled map (`subscribers.map` in `lists.state_dir`): served from at start,
    /// before the source is read again.
    pub compiled: PathBuf,
}

/// Where the subscriber lines come from.
#[derive(Clone, Debug, PartialEq)]
pub enum SubscriberOrigin {
    /// A local file, polled every `refresh`.
    Path(PathBuf),
    /// A file downloaded over HTTP(S), with the list feeds' client.
    Url {
        /// The source's URL.
        url: String,
        /// The publisher's minisign public key: `<url>.minisig` must verify.
        pubkey: Option<String>,
        /// Largest body accepted.
        max_bytes: u64,
        /// Bound on one download.
        timeout: Duration,
    },
}

impl SubscriberOrigin {
    /// The file or URL, for log lines.
    pub fn describe(&self) -> String {
        match self {
            SubscriberOrigin::Path(p) => p.display().to_string(),
            SubscriberOrigin::Url { url, .. } => url.clone(),
        }
    }
}
