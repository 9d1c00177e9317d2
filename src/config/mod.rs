//! Configuration: a TOML file in, a validated, typed [`Config`] out.
//!
//! [`raw`] mirrors the file; [`load`] parses it and checks what serde cannot (non-empty
//! lists, `mode = "ip"` needs an address, ...). Every error names the file, the line and
//! the key. Relative paths in the file are relative to the file's own directory, so a
//! config works the same whatever directory the resolver is started from.

pub mod raw;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use raw::BlockingMode;

use crate::lists::compile::ListSource;

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// `[server]`
    pub server: ServerConfig,
    /// `[upstream]`
    pub upstream: UpstreamConfig,
    /// `[blocking]`
    pub blocking: BlockingConfig,
    /// `[lists]`
    pub lists: ListsConfig,
}

/// Where and how to listen.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// UDP and TCP on each.
    pub listen: Vec<SocketAddr>,
    /// Idle TCP connections close after this.
    pub tcp_idle: Duration,
    /// How long in-flight queries may take to finish on SIGTERM.
    pub shutdown_grace: Duration,
    /// Worker threads (0 = one per core).
    pub threads: usize,
}

/// Upstream resolvers.
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    /// Tried in order.
    pub servers: Vec<SocketAddr>,
    /// Total budget for one client query.
    pub timeout: Duration,
}

/// How blocked names are answered.
#[derive(Clone, Debug)]
pub struct BlockingConfig {
    /// nxdomain, null or ip.
    pub mode: BlockingMode,
    /// TTL of sinkhole answers and of their SOA (negative caching).
    pub ttl: u32,
    /// Block page IPv4 (mode ip).
    pub ipv4: Option<Ipv4Addr>,
    /// Block page IPv6 (mode ip).
    pub ipv6: Option<Ipv6Addr>,
}

/// Lists to compile and where the result lives.
#[derive(Clone, Debug)]
pub struct ListsConfig {
    /// Compiled FST path (absolute or relative to the working directory after resolution).
    pub compiled: PathBuf,
    /// Block lists and allowlists (an allowlist has no category).
    pub sources: Vec<ListSource>,
    /// Watch the compiled file and swap in changes.
    pub watch: bool,
}

/// A configuration problem, with where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {}: {source}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Bad TOML, an unknown key, a wrong type, or a value that fails a check.
    #[error("{}:{line}:{column}: {}{message}", path.display(), key.as_deref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// Dotted key path, e.g. `blocking.mode`.
        key: Option<String>,
        /// What is wrong and what is expected.
        message: String,
    },
}

/// Line and column (1-based) of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

/// Reads and validates the config at `path`.
///
/// # Errors
/// [`ConfigError`] naming file, line and key.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path)
}

/// Parses and validates config `text` that came from `path` (used to resolve relative paths
/// and in messages).
///
/// # Errors
/// [`ConfigError::Invalid`].
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let invalid = |span: Option<Range<usize>>, key: Option<String>, message: String| {
        let (line, column) = span.map_or((0, 0), |s| line_col(text, s.start));
        ConfigError::Invalid {
            path: path.to_owned(),
            line,
            column,
            key,
            message,
        }
    };
    let de = toml::Deserializer::parse(text)
        .map_err(|e| invalid(e.span(), None, e.message().to_owned()))?;
    let raw: raw::RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        invalid(
            inner.span(),
            (key != ".").then_some(key),
            inner.message().to_owned(),
        )
    })?;
    let base = path.parent().unwrap_or(Path::new("")).to_owned();
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_owned()
        } else {
            base.join(p)
        }
    };

    let listen = raw.server.listen.get_ref();
    if listen.is_empty() {
        return Err(invalid(
            Some(raw.server.listen.span()),
            Some("server.listen".into()),
            "needs at least one address, e.g. [\"127.0.0.1:5353\"]".into(),
        ));
    }
    let servers = raw.upstream.servers.get_ref();
    if servers.is_empty() {
        return Err(invalid(
            Some(raw.upstream.servers.span()),
            Some("upstream.servers".into()),
            "needs at least one upstream resolver, e.g. [\"9.9.9.9:53\"]".into(),
        ));
    }
    let timeout_ms = *raw.upstream.timeout_ms.get_ref();
    if !(10..=60_000).contains(&timeout_ms) {
        return Err(invalid(
            Some(raw.upstream.timeout_ms.span()),
            Some("upstream.timeout_ms".into()),
            format!("{timeout_ms} is out of range: use 10 to 60000 milliseconds"),
        ));
    }
    let mode = *raw.blocking.mode.get_ref();
    if mode == BlockingMode::Ip && raw.blocking.ipv4.is_none() && raw.blocking.ipv6.is_none() {
        return Err(invalid(
            Some(raw.blocking.mode.span()),
            Some("blocking.mode".into()),
            "mode \"ip\" needs blocking.ipv4 and/or blocking.ipv6 (the block page address)".into(),
        ));
    }

    let mut sources: Vec<ListSource> = raw
        .lists
        .source
        .iter()
        .map(|s| ListSource {
            category: Some(s.category.clone()),
            path: resolve(&s.path),
            format: s.format,
        })
        .collect();
    sources.extend(raw.lists.allow.iter().map(|a| ListSource {
        category: None,
        path: resolve(&a.path),
        format: a.format,
    }));

    Ok(Config {
        path: path.to_owned(),
        server: ServerConfig {
            listen: listen.clone(),
            tcp_idle: Duration::from_millis(raw.server.tcp_idle_ms),
            shutdown_grace: Duration::from_millis(raw.server.shutdown_grace_ms),
            threads: raw.server.threads,
        },
        upstream: UpstreamConfig {
            servers: servers.clone(),
            timeout: Duration::from_millis(timeout_ms),
        },
        blocking: BlockingConfig {
            mode,
            ttl: raw.blocking.ttl,
            ipv4: raw.blocking.ipv4,
            ipv6: raw.blocking.ipv6,
        },
        lists: ListsConfig {
            compiled: resolve(&raw.lists.compiled),
            sources,
            watch: raw.lists.watch,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
listen = ["127.0.0.1:5353", "[::1]:5353"]
[upstream]
servers = ["9.9.9.9:53"]
timeout_ms = 2000
[blocking]
mode = "nxdomain"
ttl = 300
[lists]
compiled = "var/blocklist.fst"
[[lists.source]]
category = "adult"
path = "blocklists/adult.txt"
[[lists.allow]]
path = "/etc/allow.txt"
"#;

    fn err(text: &str) -> String {
        parse(text, Path::new("conf/k.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn good_config_loads_with_paths_relative_to_the_file() {
        let c = parse(GOOD, Path::new("conf/k.toml")).unwrap();
        assert_eq!(c.server.listen.len(), 2);
        assert_eq!(c.lists.compiled, Path::new("conf/var/blocklist.fst"));
        assert_eq!(
            c.lists.sources[0].path,
            Path::new("conf/blocklists/adult.txt")
        );
        assert_eq!(c.lists.sources[1].category, None);
        assert_eq!(c.lists.sources[1].path, Path::new("/etc/allow.txt"));
        assert_eq!(c.upstream.timeout, Duration::from_secs(2));
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = err(&GOOD.replace("ttl = 300", "tll = 300"));
        assert!(e.starts_with("conf/k.toml:9:"), "{e}");
        assert!(e.contains("tll"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = err(&GOOD.replace("ttl = 300", "ttl = \"long\""));
        assert!(e.starts_with("conf/k.toml:9:"), "{e}");
        assert!(e.contains("key `blocking.ttl`"), "{e}");
    }

    #[test]
    fn bad_values_are_explained() {
        let e = err(&GOOD.replace("mode = \"nxdomain\"", "mode = \"ip\""));
        assert!(
            e.contains("conf/k.toml:8:") && e.contains("blocking.ipv4"),
            "{e}"
        );
        let e = err(&GOOD.replace("mode = \"nxdomain\"", "mode = \"drop\""));
        assert!(
            e.contains("conf/k.toml:8:") && e.contains("blocking.mode"),
            "{e}"
        );
        let e = err(&GOOD.replace("\"9.9.9.9:53\"", "\"9.9.9.9\""));
        assert!(
            e.contains("conf/k.toml:5:") && e.contains("upstream.servers"),
            "{e}"
        );
        let e = err(&GOOD.replace("servers = [\"9.9.9.9:53\"]", "servers = []"));
        assert!(e.contains("conf/k.toml:5:"), "{e}");
        let e = err(&GOOD.replace("timeout_ms = 2000", "timeout_ms = 0"));
        assert!(e.contains("conf/k.toml:6:"), "{e}");
        let e = err(&GOOD.replace("format = ", "x").replace(
            "path = \"/etc/allow.txt\"",
            "path = \"/a\"\nformat = \"csv\"",
        ));
        assert!(
            e.contains("lists.allow[0].format") && e.contains("csv"),
            "{e}"
        );
        let e = err("[server\n");
        assert!(e.starts_with("conf/k.toml:1:"), "{e}");
    }
}
