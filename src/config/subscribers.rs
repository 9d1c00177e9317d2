//! `[subscribers]`, checked: exactly one of `path` and `url`, `pubkey` only with `url`
//! (and a key minisign can read), durations readable; every error names the key.

use std::path::{Path, PathBuf};

use super::raw::RawSubscribers;
use super::{ConfigError, Invalid};
use crate::feed::spec::parse_duration;
use crate::subscribers::settings::{
    COMPILED_NAME, DEFAULT_MAX_BYTES, DEFAULT_REFRESH, DEFAULT_TIMEOUT,
};
use crate::subscribers::{SubscriberOrigin, SubscribersConfig};

/// `[subscribers]`, `None` when the table is absent.
pub(super) fn subscribers(
    raw: Option<&toml::Spanned<RawSubscribers>>,
    state_dir: &Path,
    resolve: &dyn Fn(&Path) -> PathBuf,
    invalid: &Invalid<'_>,
) -> Result<Option<SubscribersConfig>, ConfigError> {
    let Some(spanned) = raw else {
        return Ok(None);
    };
    let r = spanned.get_ref();
    let err = |span: std::ops::Range<usize>, key: &str, message: String| {
        invalid(Some(span), Some(format!("subscribers.{key}")), message)
    };
    let duration = |v: Option<&toml::Spanned<String>>, key: &str, default| match v {
        None => Ok(default),
        Some(d) => parse_duration(d.get_ref()).map_err(|m| err(d.span(), key, m)),
    };
    let refresh = duration(r.refresh.as_ref(), "refresh", DEFAULT_REFRESH)?;
    let source = match (&r.path, &r.url) {
        (Some(path), None) => {
            for (set, key) in [
                (r.pubkey.as_ref().map(|k| k.span()), "pubkey"),
                (r.timeout.as_ref().map(|t| t.span()), "timeout"),
            ] {
                if let Some(span) = set {
                    return Err(err(span, key, "only applies to a `url` source".into()));
                }
            }
            SubscriberOrigin::Path(resolve(path.get_ref()))
        }
        (None, Some(url)) => {
            let text = url.get_ref().trim();
            if !(text.starts_with("https://") || text.starts_with("http://")) {
                return Err(err(
                    url.span(),
                    "url",
                    format!("`{text}` is not an http(s) URL"),
                ));
            }
            if let Some(key) = &r.pubkey {
                crate::feed::http::parse_public_key(key.get_ref()).map_err(|m| {
                    err(
                        key.span(),
                        "pubkey",
                        format!("not a minisign public key: {m}"),
                    )
                })?;
            }
            SubscriberOrigin::Url {
                url: text.to_owned(),
                pubkey: r.pubkey.as_ref().map(|k| k.get_ref().clone()),
                max_bytes: r.max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
                timeout: duration(r.timeout.as_ref(), "timeout", DEFAULT_TIMEOUT)?,
            }
        }
        (Some(path), Some(_)) => {
            return Err(err(
                path.span(),
                "path",
                "give `path` or `url`, not both".into(),
            ));
        }
        (None, None) => {
            return Err(invalid(
                Some(spanned.span()),
                Some("subscribers".into()),
                "needs `path = \"subscribers.txt\"` or `url = \"https://...\"`".into(),
            ));
        }
    };
    Ok(Some(SubscribersConfig {
        source,
        refresh,
        compiled: state_dir.join(COMPILED_NAME),
    }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{ConfigError, parse};

    const BASE: &str = "[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n[lists]\ncompiled = \"var/list.fst\"\n";

    fn load(extra: &str) -> Result<crate::config::Config, ConfigError> {
        parse(&format!("{BASE}{extra}"), Path::new("/etc/k/kidsafe.toml"))
    }

    fn error(extra: &str) -> String {
        load(extra).unwrap_err().to_string()
    }

    #[test]
    fn path_and_url_sources() {
        let c = load("[subscribers]\npath = \"subs.txt\"\nrefresh = \"5s\"\n").unwrap();
        let s = c.subscribers.unwrap();
        assert_eq!(
            s.source,
            crate::subscribers::SubscriberOrigin::Path("/etc/k/subs.txt".into())
        );
        assert_eq!(s.refresh, std::time::Duration::from_secs(5));
        assert_eq!(s.compiled, Path::new("/etc/k/var/subscribers.map"));
        let c = load("[subscribers]\nurl = \"https://isp.example/subs.txt\"\n").unwrap();
        assert!(matches!(
            c.subscribers.unwrap().source,
            crate::subscribers::SubscriberOrigin::Url { .. }
        ));
        assert!(load("").unwrap().subscribers.is_none());
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = error("[subscribers]\nrefresh = \"5s\"\n");
        assert!(e.starts_with("/etc/k/kidsafe.toml:7:"), "{e}");
        assert!(e.contains("key `subscribers`"), "{e}");
        let e = error("[subscribers]\npath = \"a\"\nurl = \"https://x.example/a\"\n");
        assert!(e.contains(":8:") && e.contains("subscribers.path"), "{e}");
        let e = error("[subscribers]\npath = \"a\"\npubkey = \"RWx\"\n");
        assert!(e.contains(":9:") && e.contains("subscribers.pubkey"), "{e}");
        let e = error("[subscribers]\nurl = \"ftp://x.example/a\"\n");
        assert!(e.contains("subscribers.url"), "{e}");
        let e = error("[subscribers]\nurl = \"https://x.example/a\"\npubkey = \"nope\"\n");
        assert!(e.contains("subscribers.pubkey"), "{e}");
        let e = error("[subscribers]\npath = \"a\"\nrefresh = \"soon\"\n");
        assert!(e.contains("subscribers.refresh"), "{e}");
        let e = error("[subscribers]\npath = \"a\"\nrefersh = \"5s\"\n");
        assert!(e.contains("refersh"), "{e}");
    }
}
