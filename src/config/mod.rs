//! Configuration: a TOML file in, a validated, typed [`Config`] out.
//!
//! [`raw`] mirrors the file; [`load`] parses it and checks what serde cannot (non-empty
//! lists, `mode = "ip"` needs an address, ...). Every error names the file, the line and
//! the key. Relative paths in the file are relative to the file's own directory, so a
//! config works the same whatever directory the resolver is started from.
//!
//! Config is a layer on top: each module owns the settings type it is built from, and
//! config builds those types but is imported by none of them (only by the wiring above:
//! `app`, `main`, `admin`, `server`). Where the type behind a TOML key lives:
//!
//! | TOML                                        | [`Config`] field          | type |
//! |---------------------------------------------|---------------------------|------|
//! | `[server]` listeners, threads, TCP, CHAOS   | `server`                  | [`crate::server::ServerConfig`] |
//! | `server.dot_listen`, `doh_listen`, `tls_*`  | `server.tls`              | [`crate::server::TlsListeners`] |
//! | `server.trusted_forwarders`, `ecs_from_trusted`, `client_id_domain` | `server.identity` | [`crate::server::IdentityConfig`] |
//! | `server.allow_clients`, `refuse_action`     | `policy`                  | [`crate::policy::PolicyConfig`], [`crate::policy::RefuseAction`] |
//! | `server.rate_limit_*`                       | `policy.rate_limit`       | [`crate::policy::RateLimitConfig`] |
//! | `[upstream]`                                | `upstream`                | [`UpstreamConfig`] (servers: [`crate::upstream::Endpoint`]) |
//! | `[blocking]`                                | `blocking`                | [`crate::answer::BlockingConfig`], [`crate::answer::BlockingMode`] |
//! | `[lists]`                                   | `lists`                   | [`crate::feed::spec::ListsConfig`] |
//! | `[[lists.source]]`, `[[lists.allow]]`       | `lists.sources`, `lists.feeds` | [`crate::lists::compile::ListSource`], [`crate::feed::spec::SourceSpec`] |
//! | `lists.state_dir`, `*_ratio`, `force`       | `lists.feeds`             | [`crate::feed::spec::FeedConfig`] |
//! | `[[groups]]`                                | `policy.groups`           | [`crate::policy::GroupConfig`] |
//! | `groups.client_ids`, `groups.macs`          | `policy.groups[i].client_ids`, `macs` | [`crate::policy::client::ClientId`], [`crate::policy::client::Mac`] |
//! | `[groups.schedule]`                         | `policy.groups[i].schedule` | [`crate::policy::schedule::Schedule`] |
//! | `[safesearch]`                              | `policy.safesearch_*`     | [`crate::policy::PolicyConfig`] |
//! | `[blockpage]`                               | `blockpage`               | [`BlockpageConfig`] |
//! | `[cache]`                                   | `cache`                   | [`CacheSettings`] ([`crate::upstream::cache::CacheConfig`]) |
//! | `[admin]`                                   | `admin`                   | [`AdminConfig`] |
//! | `[querylog]`                                | `querylog`                | [`crate::querylog::QueryLogConfig`], [`crate::querylog::ClientPrivacy`] |
//! | `[subscribers]`                             | `subscribers`             | [`crate::subscribers::SubscribersConfig`] |
//! | `[store]`                                   | `store`                   | [`crate::profiles::StoreConfig`] |
//! | `[reports]`                                 | `reports`                 | [`ReportsConfig`] ([`crate::forward::ForwardConfig`], [`EdgeToken`]) |
//! | `[console]`                                 | `console`                 | [`ConsoleConfig`] |
//! | `[publish]`                                 | `publish`                 | [`crate::publish::PublishConfig`] |

mod console;
mod feeds;
mod ops;
mod policy;
mod publish;
pub mod raw;
mod reports;
mod subscribers;

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::server::{IdentityConfig, ServerConfig};
pub use console::ConsoleConfig;
pub use ops::AdminConfig;
pub use reports::{EdgeToken, ReportsConfig};

use ipnet::IpNet;

use crate::answer::{BlockingConfig, BlockingMode};
use crate::feed::spec::ListsConfig;
use crate::lists::compile::ListSource;
use crate::policy::PolicyConfig;
use crate::querylog::QueryLogConfig;

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
    /// Who may query, rate limits, client groups.
    pub policy: PolicyConfig,
    /// `[blockpage]`, if enabled.
    pub blockpage: Option<BlockpageConfig>,
    /// `[cache]`; `None` when `max_entries = 0`.
    pub cache: Option<CacheSettings>,
    /// `[admin]`; `None` when the section is absent.
    pub admin: Option<AdminConfig>,
    /// `[querylog]`; `None` unless enabled.
    pub querylog: Option<QueryLogConfig>,
    /// `[subscribers]`; `None` when the section is absent.
    pub subscribers: Option<crate::subscribers::SubscribersConfig>,
    /// `[store]`: SQLite (the default) or the fleet's PostgreSQL.
    pub store: crate::profiles::StoreConfig,
    /// `[reports]`: contacts, forwarding to a central, the edges a central takes
    /// deliveries from.
    pub reports: ReportsConfig,
    /// `[console]`; `None` when the section is absent.
    pub console: Option<ConsoleConfig>,
    /// `[publish]`: present on a central, which publishes its reviewers' decisions.
    pub publish: Option<crate::publish::PublishConfig>,
}

/// The response cache's settings.
#[derive(Clone, Debug)]
pub struct CacheSettings {
    /// Size, TTL clamps, serve-stale.
    pub cache: crate::upstream::cache::CacheConfig,
    /// Refresh popular entries before expiry.
    pub prefetch: bool,
}

/// The built-in block page.
#[derive(Clone, Debug)]
pub struct BlockpageConfig {
    /// HTTP listen addresses.
    pub listen: Vec<SocketAddr>,
    /// Where to ask for a review.
    pub review_url: Option<String>,
}

/// Upstream resolvers.
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    /// Tried in order.
    pub servers: Vec<crate::upstream::Endpoint>,
    /// CA bundle for TLS upstreams (`None`: the system's roots).
    pub tls_ca: Option<PathBuf>,
    /// Total budget for one client query.
    pub timeout: Duration,
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
    // Relative paths are resolved against the file's absolute directory, so the paths a
    // config yields (and compiled manifests record) name the same files whatever the
    // working directory of the command that reads them later; messages name the file as
    // given.
    let base = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_owned))
        .unwrap_or_else(|| path.parent().unwrap_or(Path::new("")).to_owned());
    parse_in(&text, path, base)
}

/// Parses and validates config `text` that came from `path` (used to resolve relative paths
/// and in messages).
///
/// # Errors
/// [`ConfigError::Invalid`].
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    parse_in(
        text,
        path,
        path.parent().unwrap_or(Path::new("")).to_owned(),
    )
}

/// [`parse`], resolving relative paths against `base`.
fn parse_in(text: &str, path: &Path, base: PathBuf) -> Result<Config, ConfigError> {
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
        // A `Spanned` table shows up as a private field in the path; people never wrote it.
        let key = e
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        let inner = e.into_inner();
        invalid(
            inner.span(),
            (key != ".").then_some(key),
            inner.message().to_owned(),
        )
    })?;
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
            "needs at least one address, e.g. [\"127.0.0.1:10053\"]".into(),
        ));
    }
    let servers = raw
        .upstream
        .servers
        .get_ref()
        .iter()
        .map(|s| {
            s.get_ref()
                .parse::<crate::upstream::Endpoint>()
                .map_err(|m| invalid(Some(s.span()), Some("upstream.servers".into()), m))
        })
        .collect::<Result<Vec<_>, _>>()?;
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

    let compiled = resolve(&raw.lists.compiled);
    let feeds = feeds::feed_config(&raw.lists, &compiled, &resolve, &invalid)?;
    let sources: Vec<ListSource> = feeds
        .sources
        .iter()
        .map(|s| s.list_source(&feeds.state_dir))
        .collect();

    let policy = policy::validate_policy(&raw, text, path, &resolve, &invalid)?;
    let blockpage = raw.blockpage.as_ref().map(|b| BlockpageConfig {
        listen: b.listen.clone(),
        review_url: b.review_url.clone(),
    });
    for g in &raw.groups {
        let (g, name) = (g.get_ref(), g.get_ref().name.get_ref());
        if let Some(mode) = &g.mode
            && *mode.get_ref() == BlockingMode::Ip
            && raw.blocking.ipv4.is_none()
            && raw.blocking.ipv6.is_none()
        {
            return Err(invalid(
                Some(mode.span()),
                Some(format!("groups.{name}.mode")),
                "mode \"ip\" needs blocking.ipv4 and/or blocking.ipv6 (the block page address)"
                    .into(),
            ));
        }
    }

    let c = &raw.cache;
    if c.min_ttl > c.max_ttl {
        return Err(invalid(
            None,
            Some("cache.min_ttl".into()),
            format!("min_ttl {} is above max_ttl {}", c.min_ttl, c.max_ttl),
        ));
    }
    let cache = (c.max_entries > 0).then(|| CacheSettings {
        cache: crate::upstream::cache::CacheConfig {
            max_entries: c.max_entries,
            min_ttl: c.min_ttl,
            max_ttl: c.max_ttl,
            negative_max_ttl: c.negative_max_ttl,
            serve_stale: c.serve_stale,
            stale_max: Duration::from_secs(c.stale_max_s),
        },
        prefetch: c.prefetch,
    });

    let tls = ops::tls_listeners(&raw.server, &resolve, &invalid)?;
    if raw.server.tcp_max_connections == 0 {
        return Err(invalid(
            None,
            Some("server.tcp_max_connections".into()),
            "must be at least 1".into(),
        ));
    }
    let proxy_protocol_from = nets(
        &raw.server.proxy_protocol_from,
        "server.proxy_protocol_from",
        &invalid,
    )?;
    let identity = identity_config(&raw.server, &invalid)?;
    let ddr_name = match &raw.server.ddr_name {
        Some(d) => {
            let text = d.get_ref().trim_end_matches('.').to_ascii_lowercase();
            if let Some(why) = crate::services::catalog::domain_problem(&text) {
                return Err(invalid(
                    Some(d.span()),
                    Some("server.ddr_name".into()),
                    format!(
                        "`{}` is not a host name ({why}); give the DoT/DoH certificate's name, e.g. \"dns.example.vn\"",
                        d.get_ref()
                    ),
                ));
            }
            Some(text)
        }
        None => identity.client_id_domain.clone(),
    };
    let admin = ops::admin(raw.admin.as_ref(), &resolve, &invalid)?;
    let console = console::console(raw.console.as_ref(), tls.as_ref(), &invalid)?;
    let querylog = ops::querylog(raw.querylog.as_ref(), &feeds.state_dir, &resolve, &invalid)?;
    let subscribers = subscribers::subscribers(
        raw.subscribers.as_ref(),
        &feeds.state_dir,
        &resolve,
        &invalid,
    )?;
    let publish = publish::publish(raw.publish.as_ref(), &resolve, &invalid)?;
    let store = match raw.store.as_ref().and_then(|s| s.url.as_ref()) {
        None => crate::profiles::StoreConfig::default(),
        Some(url) => crate::profiles::StoreConfig::postgres(url.get_ref())
            .map_err(|m| invalid(Some(url.span()), Some("store.url".into()), m))?,
    };

    let reports = reports::reports(raw.reports.as_ref(), &feeds.state_dir, &resolve, &invalid)?;

    Ok(Config {
        path: path.to_owned(),
        reports,
        policy,
        blockpage,
        cache,
        admin,
        querylog,
        subscribers,
        store,
        console,
        publish,
        server: ServerConfig {
            listen: listen.clone(),
            tcp_idle: Duration::from_millis(raw.server.tcp_idle_ms),
            shutdown_grace: Duration::from_millis(raw.server.shutdown_grace_ms),
            threads: raw.server.threads,
            tcp_max_connections: raw.server.tcp_max_connections,
            tls,
            proxy_protocol_from,
            identity,
            chaos_version: raw.server.chaos_version.clone(),
            chaos_identity: raw.server.chaos_identity.clone(),
            ddr_name,
        },
        upstream: UpstreamConfig {
            servers,
            tls_ca: raw.upstream.tls_ca.as_deref().map(&resolve),
            timeout: Duration::from_millis(timeout_ms),
        },
        blocking: BlockingConfig {
            mode,
            ttl: raw.blocking.ttl,
            ipv4: raw.blocking.ipv4,
            ipv6: raw.blocking.ipv6,
        },
        lists: ListsConfig {
            compiled,
            sources,
            watch: raw.lists.watch,
            feeds,
        },
    })
}

/// `server.trusted_forwarders`, `ecs_from_trusted` and `client_id_domain`, checked.
fn identity_config(
    raw: &raw::RawServer,
    invalid: &Invalid<'_>,
) -> Result<IdentityConfig, ConfigError> {
    let trusted_forwarders = nets(
        &raw.trusted_forwarders,
        "server.trusted_forwarders",
        invalid,
    )?;
    if raw.ecs_from_trusted && trusted_forwarders.is_empty() {
        return Err(invalid(
            None,
            Some("server.ecs_from_trusted".into()),
            "needs server.trusted_forwarders: the forwarders whose Client Subnet is believed"
                .into(),
        ));
    }
    let client_id_domain = match &raw.client_id_domain {
        None => None,
        Some(d) => {
            let text = d.get_ref().trim_end_matches('.').to_ascii_lowercase();
            let bad = text.is_empty()
                || text.split('.').any(|label| {
                    label.is_empty()
                        || label.len() > 63
                        || label.starts_with('-')
                        || label.ends_with('-')
                        || !label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if bad {
                return Err(invalid(
                    Some(d.span()),
                    Some("server.client_id_domain".into()),
                    format!(
                        "`{}` is not a domain name (e.g. \"dns.example.vn\")",
                        d.get_ref()
                    ),
                ));
            }
            Some(text)
        }
    };
    Ok(IdentityConfig {
        trusted_forwarders,
        ecs_from_trusted: raw.ecs_from_trusted,
        client_id_domain,
    })
}

type Invalid<'a> = dyn Fn(Option<Range<usize>>, Option<String>, String) -> ConfigError + 'a;

fn parse_net(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!("`{text}` is not an IP network (e.g. 10.0.0.0/8, 2001:db8::/32) or address")
        })
}

/// The networks in `list` (the value of `key`), each error naming its place in the file.
fn nets(
    list: &[toml::Spanned<String>],
    key: &str,
    invalid: &Invalid<'_>,
) -> Result<Vec<IpNet>, ConfigError> {
    list.iter()
        .map(|s| {
            parse_net(s.get_ref()).map_err(|m| invalid(Some(s.span()), Some(key.to_owned()), m))
        })
        .collect()
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
    fn store_url_is_checked_and_its_password_never_echoed() {
        let c = parse(
            &format!("{GOOD}\n[store]\nurl = \"postgres://kid:pw@db.example/fleet\"\n"),
            Path::new("conf/k.toml"),
        )
        .unwrap();
        assert_eq!(c.store.target().as_deref(), Some("db.example/fleet"));
        let e = err(&format!(
            "{GOOD}\n[store]\nurl = \"postgres://kid:pw@db.example\"\n"
        ));
        assert!(e.starts_with("conf/k.toml:"), "{e}");
        assert!(e.contains("store.url"), "{e}");
        assert!(!e.contains("pw"), "{e}");
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
        let e = err(&GOOD.replace("\"9.9.9.9:53\"", "\"9.9.9.9:53\", \"tls://9.9.9.9:853\""));
        assert!(
            e.contains("conf/k.toml:5:")
                && e.contains("upstream.servers")
                && e.contains("needs the name on the resolver's certificate"),
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
        let e = err(&GOOD.replace(
            "listen = [",
            "proxy_protocol_from = [\"127.0.0.1/32\", \"dnsdist.lan\"]\nlisten = [",
        ));
        assert!(
            e.starts_with("conf/k.toml:3:")
                && e.contains("server.proxy_protocol_from")
                && e.contains("`dnsdist.lan` is not an IP network"),
            "{e}"
        );
    }

    /// Line `n` (1-based) of the error, which must start with the file name.
    fn line_of(e: &str) -> usize {
        let rest = e
            .strip_prefix("conf/k.toml:")
            .unwrap_or_else(|| panic!("{e}"));
        rest.split(':').next().unwrap().parse().unwrap()
    }

    #[test]
    fn semantic_errors_name_the_line_and_the_group() {
        let group = |body: &str| {
            format!("{GOOD}\n[[groups]]\nname = \"pupils\"\nclients = [\"10.0.0.0/8\"]\n{body}")
        };
        let line =
            |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;

        let text = group(
            "[groups.schedule]\ndays = [\"mon\"]\nstart = \"07:00\"\nend = \"17:00\"\ntimezone = \"Mars/Olympus\"\ncategories = []\n",
        );
        let e = err(&text);
        assert!(
            e.contains("groups.pupils.schedule") && !e.contains("[0]"),
            "{e}"
        );
        assert!(line_of(&e) >= line(&text, "[groups.schedule]"), "{e}");
        assert!(line_of(&e) <= line(&text, "timezone"), "{e}");

        let text = format!(
            "{}\n[[groups]]\nname = \"pupils\"\nclients = [\"10.1.0.0/16\"]\n",
            group("")
        );
        let e = err(&text);
        assert!(
            e.contains("groups.pupils.name") && e.contains("used twice"),
            "{e}"
        );
        assert_eq!(
            line_of(&e),
            text.lines()
                .collect::<Vec<_>>()
                .iter()
                .rposition(|l| l.contains("name = \"pupils\""))
                .unwrap()
                + 1,
            "{e}"
        );
        assert!(
            e.contains(&format!(
                "first on line {}",
                line(&text, "name = \"pupils\"")
            )),
            "{e}"
        );

        let text = format!("{GOOD}\n[[groups]]\nname = \"kids\"\nsafesearch = true\n");
        let e = err(&text);
        assert!(e.contains("groups.kids.clients"), "{e}");
        assert_eq!(line_of(&e), line(&text, "[[groups]]"), "{e}");

        let text = format!("{GOOD}\n[admin]\nlisten = [\"127.0.0.1:10054\"]\ntoken = \"short\"\n");
        let e = err(&text);
        assert!(
            e.contains("admin.token") && e.contains("16 characters"),
            "{e}"
        );
        assert_eq!(line_of(&e), line(&text, "token = "), "{e}");
    }

    #[test]
    fn tls_upstreams_and_their_ca_are_read() {
        let text = GOOD.replace(
            "servers = [\"9.9.9.9:53\"]",
            "servers = [\"tls://9.9.9.9#dns.quad9.net\", \"9.9.9.9:53\"]\ntls_ca = \"ca.pem\"",
        );
        let c = parse(&text, Path::new("conf/k.toml")).unwrap();
        let want: Vec<crate::upstream::Endpoint> = vec![
            "tls://9.9.9.9:853#dns.quad9.net".parse().unwrap(),
            "9.9.9.9:53".parse().unwrap(),
        ];
        assert_eq!(c.upstream.servers, want);
        assert_eq!(c.upstream.tls_ca.as_deref(), Some(Path::new("conf/ca.pem")));
    }

    #[test]
    fn proxy_protocol_sources_are_read() {
        let text = GOOD.replace(
            "listen = [",
            "proxy_protocol_from = [\"10.0.0.53\", \"fd00::/64\"]\nlisten = [",
        );
        let c = parse(&text, Path::new("k.toml")).unwrap();
        let want: Vec<IpNet> = vec![
            "10.0.0.53/32".parse().unwrap(),
            "fd00::/64".parse().unwrap(),
        ];
        assert_eq!(c.server.proxy_protocol_from, want);
        let c = parse(GOOD, Path::new("k.toml")).unwrap();
        assert!(c.server.proxy_protocol_from.is_empty());
    }
}
