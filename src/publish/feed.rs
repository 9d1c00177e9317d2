//! [`SignedFeed`]: each published list as the HTTP feed serves it, a text body and its
//! minisign signature, built once per serial and kept until the list changes.
//!
//! The body is one normalized name per line under a comment header naming the list and
//! its serial (the format `[[lists.source]] url = ...` reads as `auto`/`domains`); the
//! signature is minisign's (prehashed Ed25519) with the central's secret key, its trusted
//! comment naming the list and serial. No key, no feed: a key that is missing or
//! unreadable makes [`SignedFeed::get`] fail with [`FeedError::KeyUnavailable`], and
//! nothing is ever served unsigned.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use minisign::SecretKey;

use super::lists::{PublishError, PublishedLists};

/// How often a key that could not be read is tried again (a fixed key file is picked up
/// without a restart, and a flood of requests does not hammer the disk).
const KEY_RETRY: Duration = Duration::from_secs(2);

/// One list at one serial, ready to serve.
#[derive(Debug)]
pub struct Signed {
    /// The list's serial.
    pub serial: u32,
    /// The body's strong ETag (quoted): store id, list and serial.
    pub etag: String,
    /// The list.
    pub body: Bytes,
    /// The `.minisig` file for `body`.
    pub signature: Bytes,
}

/// Why a list cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// No such list.
    #[error("no published list named `{0}`")]
    UnknownList(String),
    /// The signing key is missing or unreadable: publishing has stopped.
    #[error(
        "publishing is stopped: the signing key ([publish] minisign_key_file) cannot be read, \
         and nothing is published unsigned"
    )]
    KeyUnavailable,
    /// The store failed (logged; the message names it).
    #[error("published lists unavailable: {0}")]
    Store(String),
}

enum Key {
    Loaded(Box<SecretKey>),
    /// The last failure, when it happened.
    Failed(String, Instant),
    Untried,
}

/// The HTTP feed's bodies and signatures, per list.
pub struct SignedFeed {
    lists: Arc<dyn PublishedLists>,
    key_file: PathBuf,
    store_id: String,
    key: Mutex<Key>,
    cache: Mutex<HashMap<String, Arc<Signed>>>,
    /// One build at a time: concurrent requests for a new serial wait for the one build.
    building: Mutex<()>,
}

impl std::fmt::Debug for SignedFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedFeed")
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

/// Reads the unencrypted minisign secret key at `path` (as `minisign -G -W` writes it).
///
/// # Errors
/// The file cannot be read or is not an unencrypted minisign secret key; the message names
/// the file and never holds key material.
pub fn load_key(path: &Path) -> Result<SecretKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the signing key {}: {e}", path.display()))?;
    let not_key = |why: String| format!("{} is not a minisign secret key: {why}", path.display());
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
        .ok_or_else(|| not_key("no key line".into()))?;
    let bytes = data_encoding::BASE64
        .decode(line.as_bytes())
        .map_err(|e| not_key(format!("not base64 ({e})")))?;
    // sig_alg "Ed", kdf_alg, chk_alg, salt (32), opslimit (8), memlimit (8), then the
    // key number, the key and its checksum.
    const KEY_LEN: usize = 2 + 2 + 2 + 32 + 8 + 8 + 8 + 64 + 32;
    if bytes.len() != KEY_LEN || &bytes[..2] != b"Ed" {
        return Err(not_key(format!(
            "{} bytes, not an Ed25519 secret key",
            bytes.len()
        )));
    }
    if bytes[2..4] != [0, 0] {
        return Err(format!(
            "{} is encrypted with a password; a server cannot type one: make an unencrypted key \
             with `minisign -G -W`",
            path.display()
        ));
    }
    // minisign 0.11 leaves the checksum of an unencrypted key zero, which the crate's
    // `into_secret_key` refuses; a zero checksum is read as is, any other is checked.
    if bytes[KEY_LEN - 32..].iter().all(|b| *b == 0) {
        return SecretKey::from_bytes(&bytes).map_err(|e| not_key(e.to_string()));
    }
    minisign::SecretKeyBox::from_string(&text)
        .and_then(|boxed| boxed.into_secret_key(Some(String::new())))
        .map_err(|e| not_key(e.to_string()))
}

impl SignedFeed {
    /// The feed of `lists`, signed with the key in `key_file` (read on the first request,
    /// and again every few seconds while it cannot be); `store_id` goes in the ETags.
    pub fn new(lists: Arc<dyn PublishedLists>, key_file: PathBuf, store_id: String) -> Self {
        SignedFeed {
            lists,
            key_file,
            store_id,
            key: Mutex::new(Key::Untried),
            cache: Mutex::new(HashMap::new()),
            building: Mutex::new(()),
        }
    }

    /// `list` at its current serial: from the cache, or built (and signed) now. Blocking
    /// (reads the store): call it from `spawn_blocking`.
    ///
    /// # Errors
    /// [`FeedError`].
    pub fn get(&self, list: &str) -> Result<Arc<Signed>, FeedError> {
        let serial = self.current_serial(list)?;
        if let Some(hit) = self.cached(list, serial) {
            return Ok(hit);
        }
        let _one = self.building.lock().map_err(|_| poisoned())?;
        if let Some(hit) = self.cached(list, serial) {
            return Ok(hit);
        }
        let (serial, names) = self.lists.snapshot(list).map_err(store_error)?;
        let body = body(list, serial, &names);
        let signature = self.sign(list, serial, &body)?;
        let signed = Arc::new(Signed {
            serial,
            etag: format!("\"{}-{list}-{serial}\"", self.store_id),
            body: Bytes::from(body),
            signature: Bytes::from(signature),
        });
        self.cache
            .lock()
            .map_err(|_| poisoned())?
            .insert(list.to_owned(), signed.clone());
        Ok(signed)
    }

    fn current_serial(&self, list: &str) -> Result<u32, FeedError> {
        self.lists
            .lists()
            .map_err(store_error)?
            .into_iter()
            .find_map(|(name, serial)| (name == list).then_some(serial))
            .ok_or_else(|| FeedError::UnknownList(list.to_owned()))
    }

    fn cached(&self, list: &str, serial: u32) -> Option<Arc<Signed>> {
        let cache = self.cache.lock().ok()?;
        cache.get(list).filter(|s| s.serial == serial).cloned()
    }

    /// Reads the key now (at start: a missing key is logged then, not at the first
    /// request); whether it is usable.
    pub fn check_key(&self) -> bool {
        self.key_lock().is_ok_and(|k| matches!(&*k, Key::Loaded(_)))
    }

    /// The key, (re)read if it has not been read yet or failed a while ago.
    fn key_lock(&self) -> Result<std::sync::MutexGuard<'_, Key>, FeedError> {
        let mut key = self.key.lock().map_err(|_| poisoned())?;
        let retry = match &*key {
            Key::Loaded(_) => false,
            Key::Untried => true,
            Key::Failed(_, at) => at.elapsed() >= KEY_RETRY,
        };
        if retry {
            *key = match load_key(&self.key_file) {
                Ok(k) => {
                    if matches!(&*key, Key::Failed(..)) {
                        tracing::info!(key = %self.key_file.display(), "published feed: the signing key reads again; publishing resumed");
                    }
                    Key::Loaded(Box::new(k))
                }
                Err(why) => {
                    // Logged once per distinct failure, not per request.
                    let same = matches!(&*key, Key::Failed(old, _) if *old == why);
                    if !same {
                        tracing::error!(error = %why, "published feed: publishing stopped, nothing is published unsigned");
                    }
                    Key::Failed(why, Instant::now())
                }
            };
        }
        Ok(key)
    }

    fn sign(&self, list: &str, serial: u32, body: &[u8]) -> Result<Vec<u8>, FeedError> {
        let key = self.key_lock()?;
        let Key::Loaded(sk) = &*key else {
            return Err(FeedError::KeyUnavailable);
        };
        let trusted = format!("kidsafe-dns published list {list} serial {serial}");
        minisign::sign(None, sk, std::io::Cursor::new(body), Some(&trusted), None)
            .map(|sig| sig.into_string().into_bytes())
            .map_err(|e| {
                tracing::error!(error = %e, "published feed: signing failed");
                FeedError::KeyUnavailable
            })
    }
}

/// A name every published list carries besides its own: under `.invalid`, which never
/// resolves (RFC 6761 §6.4), so listing it blocks nothing. It keeps a list that reviewers
/// emptied (the last name reverted) a list the edges accept: their guards refuse a copy
/// with no valid entry, so without it the last revert would never reach them.
pub const KEEPALIVE_NAME: &str = "published-list.kidsafe.invalid";

/// The text a list is served as.
fn body(list: &str, serial: u32, names: &[String]) -> Vec<u8> {
    let size: usize = names.iter().map(|n| n.len() + 1).sum();
    let mut text = String::with_capacity(size + 256);
    let _ = writeln!(text, "# kidsafe-dns published list: {list}");
    let _ = writeln!(text, "# serial: {serial}");
    let _ = writeln!(text, "# names: {}", names.len());
    let _ = writeln!(
        text,
        "# the next name never resolves (.invalid): it keeps an emptied list non-empty"
    );
    let _ = writeln!(text, "{KEEPALIVE_NAME}");
    for name in names {
        text.push_str(name);
        text.push('\n');
    }
    text.into_bytes()
}

fn store_error(e: PublishError) -> FeedError {
    match e {
        PublishError::UnknownList(l) => FeedError::UnknownList(l),
        PublishError::Store(m) => FeedError::Store(m),
    }
}

fn poisoned() -> FeedError {
    FeedError::Store("a thread panicked while building the feed".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_made_by_the_minisign_cli_loads_and_bad_ones_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let (p, s) = (dir.path().join("k.pub"), dir.path().join("k.key"));
        let made = std::process::Command::new("minisign")
            .args(["-G", "-W", "-p"])
            .arg(&p)
            .arg("-s")
            .arg(&s)
            .output();
        let Ok(made) = made else {
            eprintln!("minisign CLI not installed: skipping the CLI key");
            return;
        };
        assert!(made.status.success(), "{made:?}");
        let key = load_key(&s).unwrap();
        let sig = minisign::sign(None, &key, std::io::Cursor::new(b"a.example\n"), None, None)
            .unwrap()
            .into_string();
        let public = std::fs::read_to_string(&p).unwrap();
        let public = minisign_verify::PublicKey::decode(&public).unwrap();
        let sig = minisign_verify::Signature::decode(&sig).unwrap();
        public.verify(b"a.example\n", &sig, false).unwrap();
        assert!(public.verify(b"b.example\n", &sig, false).is_err());
        let e = load_key(&dir.path().join("none.key")).unwrap_err();
        assert!(e.contains("none.key"), "{e}");
        std::fs::write(&p, "not a key\n").unwrap();
        assert!(load_key(&p).is_err());
    }
}
