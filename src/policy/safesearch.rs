//! SafeSearch / Restricted Mode enforcement by CNAME rewriting.
//!
//! Google, YouTube, Bing, DuckDuckGo, Yandex, Ecosia, Brave Search and Pixabay each have a
//! hostname that serves only filtered results (`forcesafesearch.google.com`, ...). Answering a search host with a CNAME to it
//! makes every device on the network use the filtered service, whatever its settings.
//!
//! Which hosts to rewrite is data, not code: one file per engine under
//! `blocklists/safesearch/` (`google.txt`, `youtube.txt`, `bing.txt`, `duckduckgo.txt`,
//! `yandex.txt`, `ecosia.txt`, `brave.txt`, `pixabay.txt`),
//! one domain per line, `#` starts a comment. For Google the `www.` form of every listed
//! domain is implied (Google asks for both `google.com` and `www.google.com`); the other
//! files list every host exactly.
//!
//! The shipped files are built into the binary ([`SafeSearch::builtin`]), so a config works
//! wherever it is installed; `safesearch.dir` replaces them with one's own files
//! ([`SafeSearch::load`]).
//!
//! Engines whose safe mode cannot be forced are listed in `unsafe_search.txt`: a group
//! with `block_unsafe_search` blocks them ([`UnsafeSearch`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::services::{Catalog, Service, ServiceDomain, ServiceIndex, ServiceSet};

/// How strict YouTube's Restricted Mode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum YouTubeMode {
    /// `restrict.youtube.com`: the most restrictive mode; the default, for children.
    #[default]
    Strict,
    /// `restrictmoderate.youtube.com`: filters less, for older pupils.
    Moderate,
}

/// A search engine whose safe mode can be enforced by DNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// Google Search, every country domain.
    Google,
    /// YouTube, in the given Restricted Mode.
    YouTube(YouTubeMode),
    /// Microsoft Bing.
    Bing,
    /// DuckDuckGo.
    DuckDuckGo,
    /// Yandex (family search).
    Yandex,
    /// Ecosia.
    Ecosia,
    /// Brave Search.
    Brave,
    /// Pixabay (image search).
    Pixabay,
}

impl Engine {
    /// The host that serves the engine's filtered results: the CNAME target.
    pub const fn target(self) -> &'static str {
        match self {
            Engine::Google => "forcesafesearch.google.com",
            Engine::YouTube(YouTubeMode::Strict) => "restrict.youtube.com",
            Engine::YouTube(YouTubeMode::Moderate) => "restrictmoderate.youtube.com",
            Engine::Bing => "strict.bing.com",
            Engine::DuckDuckGo => "safe.duckduckgo.com",
            Engine::Yandex => "familysearch.yandex.ru",
            Engine::Ecosia => "strict-safe-search.ecosia.org",
            Engine::Brave => "forcesafe.search.brave.com",
            Engine::Pixabay => "safesearch.pixabay.com",
        }
    }

    /// The engine's host list as shipped in `blocklists/safesearch/`, built into the binary.
    pub const fn builtin_list(self) -> &'static str {
        match self {
            Engine::Google => include_str!("../../blocklists/safesearch/google.txt"),
            Engine::YouTube(_) => include_str!("../../blocklists/safesearch/youtube.txt"),
            Engine::Bing => include_str!("../../blocklists/safesearch/bing.txt"),
            Engine::DuckDuckGo => include_str!("../../blocklists/safesearch/duckduckgo.txt"),
            Engine::Yandex => include_str!("../../blocklists/safesearch/yandex.txt"),
            Engine::Ecosia => include_str!("../../blocklists/safesearch/ecosia.txt"),
            Engine::Brave => include_str!("../../blocklists/safesearch/brave.txt"),
            Engine::Pixabay => include_str!("../../blocklists/safesearch/pixabay.txt"),
        }
    }

    /// The file, inside the SafeSearch directory, listing the engine's hosts.
    pub const fn file_name(self) -> &'static str {
        match self {
            Engine::Google => "google.txt",
            Engine::YouTube(_) => "youtube.txt",
            Engine::Bing => "bing.txt",
            Engine::DuckDuckGo => "duckduckgo.txt",
            Engine::Yandex => "yandex.txt",
            Engine::Ecosia => "ecosia.txt",
            Engine::Brave => "brave.txt",
            Engine::Pixabay => "pixabay.txt",
        }
    }

    /// Engines added after `safesearch.dir` folders were first written: a folder without
    /// their file gets the built-in list instead of an error.
    const fn optional_file(self) -> bool {
        matches!(
            self,
            Engine::Yandex | Engine::Ecosia | Engine::Brave | Engine::Pixabay
        )
    }

    /// Whether each listed domain also stands for its `www.` form.
    const fn implies_www(self) -> bool {
        matches!(self, Engine::Google)
    }
}

/// Why the SafeSearch lists could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SafeSearchError {
    /// A list file could not be read.
    #[error("cannot read SafeSearch list {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a single valid domain name.
    #[error("{}:{line}: {text:?} is not a domain name", path.display())]
    BadName {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The offending text, comment removed.
        text: String,
    },
    /// A list has no domains, which would silently switch the engine's enforcement off.
    #[error("SafeSearch list {} has no domains", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// One host is listed for two engines, so its target would be ambiguous.
    #[error("{name} is listed for both {first} and {second}")]
    Conflict {
        /// The host.
        name: String,
        /// Target of the engine that listed it first.
        first: &'static str,
        /// Target of the engine that listed it again.
        second: &'static str,
    },
}

/// Search hosts mapped to the CNAME target that enforces their safe mode.
#[derive(Debug, Clone, Default)]
pub struct SafeSearch {
    targets: HashMap<Box<str>, &'static str>,
}

impl SafeSearch {
    /// Every engine from the lists built into the binary (the shipped
    /// `blocklists/safesearch/` files), YouTube in `youtube` mode.
    ///
    /// # Errors
    /// Only if the shipped data were broken (a unit test keeps them valid).
    pub fn builtin(youtube: YouTubeMode) -> Result<Self, SafeSearchError> {
        let mut safe = Self::default();
        for engine in Self::engines(youtube) {
            let path = Path::new("(built in)").join(engine.file_name());
            safe.add_list(engine, engine.builtin_list(), &path)?;
        }
        Ok(safe)
    }

    /// Every engine, YouTube in `youtube` mode.
    fn engines(youtube: YouTubeMode) -> [Engine; 8] {
        [
            Engine::Google,
            Engine::YouTube(youtube),
            Engine::Bing,
            Engine::DuckDuckGo,
            Engine::Yandex,
            Engine::Ecosia,
            Engine::Brave,
            Engine::Pixabay,
        ]
    }

    /// Loads every engine from `dir` (e.g. `blocklists/safesearch`), YouTube in `youtube`
    /// mode. Every file must exist and list at least one domain, except those of the
    /// engines added later (Yandex, Ecosia, Brave, Pixabay): without their file, the
    /// built-in list is used.
    pub fn load(dir: &Path, youtube: YouTubeMode) -> Result<Self, SafeSearchError> {
        Self::load_engines(dir, &Self::engines(youtube))
    }

    /// Loads only the given engines from `dir`, for deployments that enforce a subset.
    pub fn load_engines(dir: &Path, engines: &[Engine]) -> Result<Self, SafeSearchError> {
        let mut safe = Self::default();
        for &engine in engines {
            let path = dir.join(engine.file_name());
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => Cow::Owned(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && engine.optional_file() => {
                    Cow::Borrowed(engine.builtin_list())
                }
                Err(source) => {
                    return Err(SafeSearchError::Read {
                        path: path.clone(),
                        source,
                    });
                }
            };
            safe.add_list(engine, &text, &path)?;
        }
        Ok(safe)
    }

    /// The CNAME target for `qname` (lowercase, no trailing dot; other spellings are
    /// normalized at a cost), or `None` when the name is not a search host.
    pub fn target(&self, qname: &str) -> Option<&'static str> {
        let trimmed = qname.strip_suffix('.').unwrap_or(qname);
        let name: Cow<'_, str> = if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(trimmed.to_ascii_lowercase())
        } else {
            Cow::Borrowed(trimmed)
        };
        self.targets.get(name.as_ref()).copied()
    }

    /// [`SafeSearch::target`] for a name given as wire labels, leftmost first: the name is
    /// joined and lowercased in a stack buffer, so the per-query check allocates nothing
    /// (it runs for every query of a SafeSearch group, and nearly all of them miss).
    pub fn target_labels<'a>(
        &self,
        labels: impl Iterator<Item = &'a [u8]>,
    ) -> Option<&'static str> {
        let mut buf = [0u8; 256];
        let mut at = 0;
        for (i, label) in labels.enumerate() {
            let need = label.len() + usize::from(i > 0);
            if at + need > buf.len() {
                return None;
            }
            if i > 0 {
                buf[at] = b'.';
                at += 1;
            }
            for &b in label {
                buf[at] = b.to_ascii_lowercase();
                at += 1;
            }
        }
        let name = std::str::from_utf8(&buf[..at]).ok()?;
        self.targets.get(name).copied()
    }

    /// Number of hosts rewritten (implied `www.` forms included).
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True when no engine is enforced.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    fn add_list(&mut self, engine: Engine, text: &str, path: &Path) -> Result<(), SafeSearchError> {
        let mut found = false;
        for (index, raw) in text.lines().enumerate() {
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let name = content
                .strip_suffix('.')
                .unwrap_or(content)
                .to_ascii_lowercase();
            if !is_domain(&name) {
                return Err(SafeSearchError::BadName {
                    path: path.to_owned(),
                    line: index + 1,
                    text: content.to_owned(),
                });
            }
            found = true;
            if engine.implies_www() && !name.starts_with("www.") {
                self.insert(format!("www.{name}"), engine)?;
            }
            self.insert(name, engine)?;
        }
        if found {
            Ok(())
        } else {
            Err(SafeSearchError::Empty {
                path: path.to_owned(),
            })
        }
    }

    fn insert(&mut self, name: String, engine: Engine) -> Result<(), SafeSearchError> {
        let target = engine.target();
        match self.targets.get(name.as_str()) {
            Some(&first) if first != target => Err(SafeSearchError::Conflict {
                name,
                first,
                second: target,
            }),
            Some(_) => Ok(()),
            None => {
                self.targets.insert(name.into_boxed_str(), target);
                Ok(())
            }
        }
    }
}

/// The shipped list of search engines whose safe mode cannot be forced
/// (`blocklists/safesearch/unsafe_search.txt`), built into the binary.
pub const UNSAFE_SEARCH_LIST: &str = include_str!("../../blocklists/safesearch/unsafe_search.txt");

/// Search engines whose safe mode cannot be forced: blocked, with every name under them,
/// for a group with `block_unsafe_search`.
#[derive(Clone, Debug, Default)]
pub struct UnsafeSearch {
    index: ServiceIndex,
    all: ServiceSet,
}

impl UnsafeSearch {
    /// The shipped list ([`UNSAFE_SEARCH_LIST`]); a line that is not a domain is skipped
    /// (a unit test keeps the shipped list clean).
    pub fn builtin() -> UnsafeSearch {
        UnsafeSearch::from_list(UNSAFE_SEARCH_LIST)
    }

    /// The domains of `text`, one a line, `#` starting a comment.
    pub fn from_list(text: &str) -> UnsafeSearch {
        let domains: Vec<ServiceDomain> = text
            .lines()
            .map(|l| {
                l.split('#')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .filter(|l| is_domain(l))
            .map(|name| ServiceDomain {
                name,
                source: None,
                verified: None,
                shared_with: Vec::new(),
            })
            .collect();
        let catalog = Catalog::from_services(vec![Service {
            id: "unsafe_search".into(),
            name_en: "Search engines without forced SafeSearch".into(),
            name_vi: "Công cụ tìm kiếm không ép được SafeSearch".into(),
            group: "unsafe_search".into(),
            domains,
        }]);
        UnsafeSearch {
            index: ServiceIndex::new(&catalog),
            all: ServiceSet::of(&[0]),
        }
    }

    /// The listed domain covering `labels` (a name's labels, leftmost first, any case).
    pub fn lookup<'a, I>(&self, labels: I) -> Option<String>
    where
        I: DoubleEndedIterator<Item = &'a [u8]>,
    {
        self.index.lookup(labels, &self.all).map(|m| m.domain)
    }
}

/// A hostname in presentation form: 2+ labels of `a-z0-9-`, 1..=63 bytes each, not starting
/// or ending with `-`, at most 253 bytes.
fn is_domain(name: &str) -> bool {
    name.len() <= 253
        && name.contains('.')
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("blocklists/safesearch")
    }

    fn shipped(mode: YouTubeMode) -> SafeSearch {
        SafeSearch::load(&data_dir(), mode).unwrap()
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("kidsafe-ss-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn write(&self, file: &str, text: &str) -> &Self {
            std::fs::write(self.0.join(file), text).unwrap();
            self
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn google_country_domains_and_www_forms() {
        let ss = shipped(YouTubeMode::Strict);
        for name in [
            "google.com",
            "www.google.com",
            "google.com.vn",
            "www.google.com.vn",
            "google.co.uk",
            "www.google.co.uk",
            "google.de",
            "www.google.fr",
            "google.co.jp",
            "google.com.br",
            "google.cat",
        ] {
            assert_eq!(
                ss.target(name),
                Some("forcesafesearch.google.com"),
                "{name}"
            );
        }
    }

    #[test]
    fn shipped_google_list_is_complete() {
        let text = std::fs::read_to_string(data_dir().join("google.txt")).unwrap();
        let domains: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert!(
            domains.len() >= 185,
            "only {} Google domains",
            domains.len()
        );
        assert!(domains.iter().all(|d| d.starts_with("google.")));
        // Each domain plus its www. form.
        assert_eq!(
            SafeSearch::load_engines(&data_dir(), &[Engine::Google])
                .unwrap()
                .len(),
            2 * domains.len()
        );
    }

    #[test]
    fn other_google_services_are_untouched() {
        let ss = shipped(YouTubeMode::Strict);
        for name in [
            "maps.google.com",
            "mail.google.com",
            "accounts.google.com",
            "forcesafesearch.google.com",
            "googleapis.com",
            "www.googleapis.com",
            "google.example",
            "notgoogle.com",
            "www.www.google.com",
            "images.google.com.vn",
            "youtube.com",
            "",
        ] {
            assert_eq!(ss.target(name), None, "{name}");
        }
    }

    #[test]
    fn youtube_modes() {
        let strict = shipped(YouTubeMode::Strict);
        let moderate = shipped(YouTubeMode::Moderate);
        for name in [
            "www.youtube.com",
            "m.youtube.com",
            "youtubei.googleapis.com",
            "youtube.googleapis.com",
            "www.youtube-nocookie.com",
        ] {
            assert_eq!(strict.target(name), Some("restrict.youtube.com"), "{name}");
            assert_eq!(
                moderate.target(name),
                Some("restrictmoderate.youtube.com"),
                "{name}"
            );
        }
        // No implied www. outside Google.
        assert_eq!(strict.target("www.m.youtube.com"), None);
    }

    #[test]
    fn bing_and_duckduckgo() {
        let ss = shipped(YouTubeMode::Strict);
        assert_eq!(ss.target("www.bing.com"), Some("strict.bing.com"));
        assert_eq!(ss.target("bing.com"), None);
        for name in [
            "duckduckgo.com",
            "www.duckduckgo.com",
            "start.duckduckgo.com",
        ] {
            assert_eq!(ss.target(name), Some("safe.duckduckgo.com"), "{name}");
        }
        assert_eq!(ss.target("html.duckduckgo.com"), None);
    }

    #[test]
    fn targets_are_never_rewritten_themselves() {
        for mode in [YouTubeMode::Strict, YouTubeMode::Moderate] {
            let ss = shipped(mode);
            for target in [
                "forcesafesearch.google.com",
                "restrict.youtube.com",
                "restrictmoderate.youtube.com",
                "strict.bing.com",
                "safe.duckduckgo.com",
            ] {
                assert_eq!(ss.target(target), None, "{target} would loop");
            }
        }
    }

    #[test]
    fn lookup_tolerates_case_and_trailing_dot() {
        let ss = shipped(YouTubeMode::Strict);
        assert_eq!(
            ss.target("WWW.Google.Com.VN."),
            Some("forcesafesearch.google.com")
        );
        assert_eq!(ss.target("www.bing.com."), Some("strict.bing.com"));
    }

    #[test]
    fn youtube_mode_config_spelling() {
        #[derive(Deserialize)]
        struct Cfg {
            youtube: YouTubeMode,
        }
        let parse = |s: &str| from_field(s).map(|c: Cfg| c.youtube);
        assert_eq!(parse("strict"), Some(YouTubeMode::Strict));
        assert_eq!(parse("moderate"), Some(YouTubeMode::Moderate));
        assert_eq!(parse("Strict"), None);
        assert_eq!(YouTubeMode::default(), YouTubeMode::Strict);
    }

    /// Deserializes `{ youtube = <value> }` through serde's value deserializer, so the test
    /// needs no format crate.
    fn from_field<T: serde::de::DeserializeOwned>(value: &str) -> Option<T> {
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, MapDeserializer};
        let entries = [("youtube", value)]
            .into_iter()
            .map(|(k, v)| (k, v.into_deserializer()));
        T::deserialize(MapDeserializer::<_, Error>::new(entries)).ok()
    }

    #[test]
    fn engines_with_a_forced_mode_since_bypass_protection() {
        let ss = SafeSearch::builtin(YouTubeMode::Strict).unwrap();
        for (host, target) in [
            ("yandex.ru", "familysearch.yandex.ru"),
            ("www.yandex.com.tr", "familysearch.yandex.ru"),
            ("ya.ru", "familysearch.yandex.ru"),
            ("www.ecosia.org", "strict-safe-search.ecosia.org"),
            ("search.brave.com", "forcesafe.search.brave.com"),
            ("pixabay.com", "safesearch.pixabay.com"),
            ("www.bing.com", "strict.bing.com"),
            ("duckduckgo.com", "safe.duckduckgo.com"),
        ] {
            assert_eq!(ss.target(host), Some(target), "{host}");
        }
        // The targets themselves are not rewritten (no loop).
        for target in ["familysearch.yandex.ru", "safesearch.pixabay.com"] {
            assert_eq!(ss.target(target), None, "{target}");
        }
    }

    #[test]
    fn a_dir_without_the_newer_engines_gets_their_built_in_lists() {
        let dir = TempDir::new("older");
        for e in [
            Engine::Google,
            Engine::YouTube(YouTubeMode::Strict),
            Engine::Bing,
            Engine::DuckDuckGo,
        ] {
            dir.write(e.file_name(), e.builtin_list());
        }
        let ss = SafeSearch::load(&dir.0, YouTubeMode::Strict).unwrap();
        assert_eq!(ss.target("yandex.ru"), Some("familysearch.yandex.ru"));
        // The four original files stay required.
        std::fs::remove_file(dir.0.join("bing.txt")).unwrap();
        let err = SafeSearch::load(&dir.0, YouTubeMode::Strict).unwrap_err();
        assert!(matches!(err, SafeSearchError::Read { .. }), "{err}");
    }

    #[test]
    fn unsafe_search_engines_are_listed_with_their_subdomains() {
        let bad: Vec<&str> = UNSAFE_SEARCH_LIST
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty() && !is_domain(l))
            .collect();
        assert!(bad.is_empty(), "{bad:?}");
        let u = UnsafeSearch::builtin();
        let lookup = |n: &str| u.lookup(n.split('.').map(str::as_bytes));
        assert_eq!(lookup("www.startpage.com"), Some("startpage.com".into()));
        assert_eq!(lookup("search.yahoo.com"), Some("search.yahoo.com".into()));
        assert_eq!(lookup("Search.Yahoo.com"), Some("search.yahoo.com".into()));
        // Mail and the forced engines are not search engines without a forced mode.
        for ok in [
            "mail.yahoo.com",
            "yahoo.com",
            "www.google.com",
            "duckduckgo.com",
        ] {
            assert_eq!(lookup(ok), None, "{ok}");
        }
    }

    #[test]
    fn comments_blank_lines_and_subset() {
        let dir = TempDir::new("subset");
        dir.write(
            "google.txt",
            "# header\n\ngoogle.com   # the main one\n  Google.Com.VN.  \n",
        );
        let ss = SafeSearch::load_engines(&dir.0, &[Engine::Google]).unwrap();
        assert_eq!(ss.len(), 4);
        assert_eq!(
            ss.target("www.google.com.vn"),
            Some("forcesafesearch.google.com")
        );
        assert_eq!(ss.target("www.bing.com"), None, "Bing not loaded");
    }

    #[test]
    fn missing_file_is_an_error_naming_it() {
        let dir = TempDir::new("missing");
        dir.write("google.txt", "google.com\n");
        let err = SafeSearch::load(&dir.0, YouTubeMode::Strict).unwrap_err();
        assert!(matches!(err, SafeSearchError::Read { .. }));
        assert!(err.to_string().contains("youtube.txt"), "{err}");
    }

    #[test]
    fn bad_lines_are_reported_with_position() {
        let dir = TempDir::new("bad");
        dir.write("bing.txt", "www.bing.com\nbad name.com\n");
        let err = SafeSearch::load_engines(&dir.0, &[Engine::Bing]).unwrap_err();
        assert!(
            matches!(err, SafeSearchError::BadName { line: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("bing.txt:2"), "{err}");
        for bad in ["localhost", "-x.com", "a..b", "x_y.com", "*.bing.com"] {
            dir.write("bing.txt", bad);
            let err = SafeSearch::load_engines(&dir.0, &[Engine::Bing]).unwrap_err();
            assert!(
                matches!(err, SafeSearchError::BadName { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn empty_list_is_an_error() {
        let dir = TempDir::new("empty");
        dir.write("duckduckgo.txt", "# nothing yet\n\n");
        let err = SafeSearch::load_engines(&dir.0, &[Engine::DuckDuckGo]).unwrap_err();
        assert!(matches!(err, SafeSearchError::Empty { .. }), "{err}");
    }

    #[test]
    fn host_claimed_by_two_engines_is_an_error() {
        let dir = TempDir::new("conflict");
        dir.write("google.txt", "google.com\n")
            .write("bing.txt", "www.google.com\n");
        let err = SafeSearch::load_engines(&dir.0, &[Engine::Google, Engine::Bing]).unwrap_err();
        assert!(
            matches!(err, SafeSearchError::Conflict { ref name, first: "forcesafesearch.google.com", second: "strict.bing.com" } if name == "www.google.com"),
            "{err}"
        );
    }

    #[test]
    fn builtin_lists_are_the_shipped_files() {
        for mode in [YouTubeMode::Strict, YouTubeMode::Moderate] {
            let built_in = SafeSearch::builtin(mode).unwrap();
            let shipped = shipped(mode);
            assert_eq!(built_in.targets, shipped.targets);
        }
        assert_eq!(
            SafeSearch::builtin(YouTubeMode::Strict)
                .unwrap()
                .target("www.google.de"),
            Some("forcesafesearch.google.com")
        );
    }

    #[test]
    fn wire_labels_match_like_text() {
        let ss = SafeSearch::load(&data_dir(), YouTubeMode::Strict).unwrap();
        let labels: [&[u8]; 4] = [b"WWW", b"Google", b"com", b"vn"];
        assert_eq!(
            ss.target_labels(labels.into_iter()),
            Some("forcesafesearch.google.com")
        );
        let labels: [&[u8]; 3] = [b"maps", b"google", b"com"];
        assert_eq!(ss.target_labels(labels.into_iter()), None);
        let long = [&[b'a'; 63][..]; 5];
        assert_eq!(ss.target_labels(long.into_iter()), None);
    }
}
