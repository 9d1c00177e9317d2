//! `[[lists.source]]` / `[[lists.allow]]` and the feed keys of `[lists]`: each source is
//! exactly one of `path`, `url`, `rpz`; keys that only make sense for another kind are
//! errors, so a misplaced `refresh` is caught instead of ignored.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::config::ConfigError;
use crate::config::raw::{RawAllow, RawLists, RawRpz, RawSource};
use crate::feed::spec::{
    DEFAULT_MAX_BYTES, DEFAULT_REFRESH, DEFAULT_TIMEOUT, FeedConfig, RpzFeed, SourceKind,
    SourceSpec, UrlFeed, parse_duration, sanitize,
};
use crate::feed::xfr::TsigKey;
use crate::lists::parse::Format;

type Invalid<'a> = dyn Fn(Option<Range<usize>>, Option<String>, String) -> ConfigError + 'a;

/// The keys a source may have besides its kind, whatever table it came from.
struct Common<'a> {
    key: String,
    span: Range<usize>,
    name: Option<&'a str>,
    category: Option<&'a str>,
    path: Option<&'a Path>,
    url: Option<&'a str>,
    rpz: Option<&'a RawRpz>,
    refresh: Option<&'a toml::Spanned<String>>,
    timeout: Option<&'a toml::Spanned<String>>,
    minisign_pubkey: Option<&'a str>,
    max_bytes: Option<u64>,
    format: Format,
}

impl<'a> Common<'a> {
    fn block(i: usize, s: &'a toml::Spanned<RawSource>) -> Self {
        let r = s.get_ref();
        Common {
            key: format!("lists.source[{i}]"),
            span: s.span(),
            name: r.name.as_deref(),
            category: Some(&r.category),
            path: r.path.as_deref(),
            url: r.url.as_deref(),
            rpz: r.rpz.as_ref(),
            refresh: r.refresh.as_ref(),
            timeout: r.timeout.as_ref(),
            minisign_pubkey: r.minisign_pubkey.as_deref(),
            max_bytes: r.max_bytes,
            format: r.format,
        }
    }

    fn allow(i: usize, s: &'a toml::Spanned<RawAllow>) -> Self {
        let r = s.get_ref();
        Common {
            key: format!("lists.allow[{i}]"),
            span: s.span(),
            name: r.name.as_deref(),
            category: None,
            path: r.path.as_deref(),
            url: r.url.as_deref(),
            rpz: r.rpz.as_ref(),
            refresh: r.refresh.as_ref(),
            timeout: r.timeout.as_ref(),
            minisign_pubkey: r.minisign_pubkey.as_deref(),
            max_bytes: r.max_bytes,
            format: r.format,
        }
    }
}

/// Validates every source and the feed settings of `[lists]`.
///
/// # Errors
/// [`ConfigError::Invalid`] naming the source's line and key.
pub(crate) fn feed_config(
    lists: &RawLists,
    compiled: &Path,
    resolve: &dyn Fn(&Path) -> PathBuf,
    invalid: &Invalid<'_>,
) -> Result<FeedConfig, ConfigError> {
    for (ratio, key) in [
        (&lists.max_reject_ratio, "lists.max_reject_ratio"),
        (&lists.min_keep_ratio, "lists.min_keep_ratio"),
    ] {
        let v = *ratio.get_ref();
        if !(0.0..=1.0).contains(&v) {
            return Err(invalid(
                Some(ratio.span()),
                Some(key.into()),
                format!("{v} is out of range: use a share between 0.0 and 1.0"),
            ));
        }
    }
    let state_dir = match &lists.state_dir {
        Some(d) => resolve(d),
        None => compiled
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_owned),
    };
    let commons = lists
        .source
        .iter()
        .enumerate()
        .map(|(i, s)| Common::block(i, s))
        .chain(
            lists
                .allow
                .iter()
                .enumerate()
                .map(|(i, a)| Common::allow(i, a)),
        );
    let mut sources: Vec<SourceSpec> = Vec::new();
    for c in commons {
        let spec = source_spec(&c, resolve, invalid)?;
        if sources.iter().any(|s| s.name == spec.name) {
            return Err(invalid(
                Some(c.span.clone()),
                Some(format!("{}.name", c.key)),
                format!(
                    "two sources are named `{}`: give one of them its own `name = \"...\"`",
                    spec.name
                ),
            ));
        }
        sources.push(spec);
    }
    Ok(FeedConfig {
        state_dir,
        max_reject_ratio: *lists.max_reject_ratio.get_ref(),
        min_keep_ratio: *lists.min_keep_ratio.get_ref(),
        force: lists.force,
        sources,
    })
}

fn source_spec(
    c: &Common<'_>,
    resolve: &dyn Fn(&Path) -> PathBuf,
    invalid: &Invalid<'_>,
) -> Result<SourceSpec, ConfigError> {
    let err = |key: &str, message: String| {
        let key = if key.is_empty() {
            c.key.clone()
        } else {
            format!("{}.{key}", c.key)
        };
        invalid(Some(c.span.clone()), Some(key), message)
    };
    let kinds = [c.path.is_some(), c.url.is_some(), c.rpz.is_some()];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err(err("", "give exactly one of `path`, `url` or `rpz`".into()));
    }
    let duration = |v: Option<&toml::Spanned<String>>, key: &str| {
        v.map(|d| {
            parse_duration(d.get_ref())
                .map_err(|m| invalid(Some(d.span()), Some(format!("{}.{key}", c.key)), m))
        })
        .transpose()
    };
    let refresh = duration(c.refresh, "refresh")?;
    let timeout = duration(c.timeout, "timeout")?.unwrap_or(DEFAULT_TIMEOUT);
    let only_url = [
        ("minisign_pubkey", c.minisign_pubkey.is_some()),
        ("max_bytes", c.max_bytes.is_some()),
    ];
    if c.url.is_none()
        && let Some((key, _)) = only_url.iter().find(|(_, set)| *set)
    {
        return Err(err(key, "only a `url` source takes this key".into()));
    }
    if c.path.is_some()
        && let Some(key) = [
            ("refresh", c.refresh.is_some()),
            ("timeout", c.timeout.is_some()),
        ]
        .iter()
        .find_map(|(k, set)| set.then_some(*k))
    {
        return Err(err(
            key,
            "a `path` source is watched for changes: it takes no `refresh` or `timeout`".into(),
        ));
    }
    let (kind, origin) = if let Some(path) = c.path {
        let p = resolve(path);
        let origin = p
            .file_name()
            .map_or_else(|| "list".into(), |f| f.to_string_lossy().into_owned());
        (SourceKind::Path(p), origin)
    } else if let Some(url) = c.url {
        let parsed = reqwest::Url::parse(url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        let Some(parsed) = parsed else {
            return Err(err(
                "url",
                format!("`{url}` is not an absolute http:// or https:// URL"),
            ));
        };
        if let Some(key) = c.minisign_pubkey
            && let Err(reason) = crate::feed::http::parse_public_key(key)
        {
            return Err(err(
                "minisign_pubkey",
                format!(
                    "not a minisign public key ({reason}): give the base64 line starting with \"RW\" that `minisign -G` prints"
                ),
            ));
        }
        let origin = format!(
            "{}{}",
            parsed.host_str().unwrap_or_default(),
            parsed.path().rsplit('/').next().map_or(String::new(), |f| {
                if f.is_empty() {
                    String::new()
                } else {
                    format!("-{f}")
                }
            })
        );
        let max_bytes = c.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
        if max_bytes == 0 {
            return Err(err("max_bytes", "must be above 0".into()));
        }
        let feed = UrlFeed {
            url: url.trim().to_owned(),
            refresh: refresh.unwrap_or(DEFAULT_REFRESH),
            minisign_pubkey: c.minisign_pubkey.map(str::to_owned),
            max_bytes,
            timeout,
        };
        (SourceKind::Url(feed), origin)
    } else if let Some(rpz) = c.rpz {
        if !matches!(c.format, Format::Auto | Format::Rpz) {
            return Err(err(
                "format",
                "an `rpz` source is a zone: leave `format` out or set it to \"rpz\"".into(),
            ));
        }
        let mut zone = rpz.zone.trim().to_owned();
        if !zone.ends_with('.') {
            zone.push('.');
        }
        if hickory_proto::rr::Name::from_ascii(&zone).is_err() || zone == "." {
            return Err(err(
                "rpz.zone",
                format!("`{}` is not a zone name", rpz.zone),
            ));
        }
        let tsig = rpz.tsig_key.as_ref().map(|k| TsigKey {
            name: k.name.clone(),
            algorithm: k.algorithm.clone(),
            secret_base64: k.secret.clone(),
        });
        if let Some(key) = &tsig
            && let Err(e) = key.signer()
        {
            return Err(err("rpz.tsig_key", e.to_string()));
        }
        let feed = RpzFeed {
            primary: rpz.primary,
            zone: zone.clone(),
            tsig,
            refresh,
            notify_listen: rpz.notify_listen,
            timeout,
        };
        (SourceKind::Rpz(feed), zone)
    } else {
        return Err(err("", "give exactly one of `path`, `url` or `rpz`".into()));
    };
    let name = match c.name {
        Some(n) if sanitize(n) == n => n.to_owned(),
        Some(n) => {
            return Err(err(
                "name",
                format!("`{n}` may only use letters, digits, `-`, `_` and `.`"),
            ));
        }
        None => sanitize(&format!("{}-{origin}", c.category.unwrap_or("allow"))),
    };
    Ok(SourceSpec {
        name,
        category: c.category.map(str::to_owned),
        format: c.format,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::parse;
    use crate::feed::spec::SourceKind;

    const HEAD: &str = r#"
[server]
listen = ["127.0.0.1:5353"]
[upstream]
servers = ["9.9.9.9:53"]
[lists]
compiled = "var/blocklist.fst"
"#;

    fn cfg(tail: &str) -> Result<crate::config::Config, String> {
        parse(&format!("{HEAD}{tail}"), Path::new("conf/k.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn each_kind_parses_with_defaults() {
        let c = cfg(r#"
[[lists.source]]
category = "adult"
url = "https://lists.example/adult.txt"
refresh = "1s"
minisign_pubkey = "RWQIo99G4J10CIipp71Z8YGOFmRObx0ZnrutqqgyFdmYKkbGp+V1+Soe"
[[lists.source]]
category = "gambling"
rpz = { primary = "192.0.2.53:53", zone = "kidsafe.rpz", tsig_key = { name = "k.", secret = "c2VjcmV0" }, notify_listen = "127.0.0.1:5300" }
[[lists.source]]
category = "drugs"
path = "drugs.txt"
[[lists.allow]]
url = "http://lists.example/allow.txt"
"#)
        .unwrap();
        let f = &c.lists.feeds;
        assert_eq!(f.state_dir, Path::new("conf/var"));
        assert_eq!(
            (f.max_reject_ratio, f.min_keep_ratio, f.force),
            (0.5, 0.5, false)
        );
        assert_eq!(f.sources.len(), 4);
        assert_eq!(f.sources[0].name, "adult-lists.example-adult.txt");
        let SourceKind::Url(u) = &f.sources[0].kind else {
            panic!()
        };
        assert_eq!(u.refresh, Duration::from_secs(1));
        assert_eq!(u.max_bytes, 64 << 20);
        let SourceKind::Rpz(r) = &f.sources[1].kind else {
            panic!()
        };
        assert_eq!(r.zone, "kidsafe.rpz.");
        assert_eq!(r.tsig.as_ref().unwrap().algorithm, "hmac-sha256");
        assert_eq!(
            c.lists.sources[1].path,
            Path::new("conf/var/sources/gambling-kidsafe.rpz.rpz")
        );
        assert_eq!(c.lists.sources[2].path, Path::new("conf/drugs.txt"));
        assert_eq!(f.sources[3].category, None);
        // Feeds not fetched yet are left out of a compile.
        let available = c.lists.available_sources();
        assert_eq!(available.len(), 1);
        assert_eq!(available[0].path, Path::new("conf/drugs.txt"));
    }

    #[test]
    fn mistakes_name_the_line_and_key() {
        let e = cfg("[[lists.source]]\ncategory = \"a\"\n").unwrap_err();
        assert!(
            e.contains("k.toml:8:") && e.contains("lists.source[0]") && e.contains("exactly one"),
            "{e}"
        );
        let e = cfg("[[lists.source]]\ncategory = \"a\"\npath = \"a\"\nurl = \"http://x/\"\n")
            .unwrap_err();
        assert!(e.contains("exactly one"), "{e}");
        let e = cfg("[[lists.source]]\ncategory = \"a\"\npath = \"a\"\nrefresh = \"1m\"\n")
            .unwrap_err();
        assert!(e.contains("lists.source[0].refresh"), "{e}");
        let e = cfg("[[lists.source]]\ncategory = \"a\"\nurl = \"ftp://x/a\"\n").unwrap_err();
        assert!(e.contains("lists.source[0].url"), "{e}");
        let e =
            cfg("[[lists.source]]\ncategory = \"a\"\nurl = \"http://x/a\"\nrefresh = \"soon\"\n")
                .unwrap_err();
        assert!(e.contains("k.toml:11:") && e.contains("refresh"), "{e}");
        let e = cfg("[[lists.source]]\ncategory = \"a\"\nurl = \"http://x/a\"\nminisign_pubkey = \"RWnope\"\n")
            .unwrap_err();
        assert!(e.contains("minisign_pubkey"), "{e}");
        let e =
            cfg("[[lists.source]]\ncategory = \"a\"\npath = \"a\"\nmax_bytes = 5\n").unwrap_err();
        assert!(e.contains("max_bytes") && e.contains("only a `url`"), "{e}");
        let e = cfg("[[lists.source]]\ncategory = \"a\"\nrpz = { primary = \"1.2.3.4:53\", zone = \"z.\", tsig_key = { name = \"k.\", algorithm = \"md5\", secret = \"c2VjcmV0\" } }\n").unwrap_err();
        assert!(e.contains("rpz.tsig_key") && e.contains("md5"), "{e}");
        let e = cfg("[[lists.source]]\ncategory = \"a\"\nrpz = { primary = \"1.2.3.4:53\", zone = \"z.\", tls = true }\n").unwrap_err();
        assert!(e.contains("tls"), "{e}");
        let e = cfg("[[lists.source]]\ncategory = \"a\"\npath = \"x/a.txt\"\n[[lists.source]]\ncategory = \"a\"\npath = \"y/a.txt\"\n").unwrap_err();
        assert!(
            e.contains("lists.source[1].name") && e.contains("a-a.txt"),
            "{e}"
        );
        // An allowlist may follow a central's RPZ allow zone, but still only one origin.
        cfg("[[lists.allow]]\nrpz = { primary = \"1.2.3.4:53\", zone = \"allow.rpz.kidsafe.\" }\n")
            .unwrap();
        let e = cfg(
            "[[lists.allow]]\npath = \"a\"\nrpz = { primary = \"1.2.3.4:53\", zone = \"z.\" }\n",
        )
        .unwrap_err();
        assert!(
            e.contains("lists.allow[0]") && e.contains("exactly one"),
            "{e}"
        );
        let e = parse(
            &HEAD.replace("compiled = ", "min_keep_ratio = 1.5\ncompiled = "),
            Path::new("k.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("lists.min_keep_ratio") && e.contains("1.5"),
            "{e}"
        );
    }
}
