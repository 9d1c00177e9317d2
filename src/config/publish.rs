//! `[publish]`, checked: the signing key's path (read when publishing, so a central with a
//! broken key still starts and says why), addresses, the TSIG key, `xfr_allow` prefixes, the
//! zone suffix and `journal_keep`; every error names the key.

use std::path::{Path, PathBuf};

use super::raw::RawPublish;
use super::{ConfigError, Invalid};
use crate::feed::xfr::TsigKey;
use crate::publish::PublishConfig;

/// Zones are `<list>.<zone_suffix>` unless set.
const DEFAULT_ZONE_SUFFIX: &str = "rpz.kidsafe.";
/// Journal changes kept per list unless set.
const DEFAULT_JOURNAL_KEEP: usize = 1000;
/// The most changes kept per list (IXFR answers past it are full transfers anyway).
const MAX_JOURNAL_KEEP: i64 = 10_000_000;

/// `[publish]`, `None` when the table is absent.
pub(super) fn publish(
    raw: Option<&toml::Spanned<RawPublish>>,
    resolve: &dyn Fn(&Path) -> PathBuf,
    invalid: &Invalid<'_>,
) -> Result<Option<PublishConfig>, ConfigError> {
    let Some(spanned) = raw else {
        return Ok(None);
    };
    let r = spanned.get_ref();
    let err = |span: std::ops::Range<usize>, key: &str, message: String| {
        invalid(Some(span), Some(format!("publish.{key}")), message)
    };
    let key_file = r.minisign_key_file.get_ref();
    if key_file.as_os_str().is_empty() {
        return Err(err(
            r.minisign_key_file.span(),
            "minisign_key_file",
            "give the minisign secret key file (made with `minisign -G -W`)".into(),
        ));
    }
    let tsig_key = match &r.tsig_key {
        None => None,
        Some(t) => {
            let raw = t.get_ref();
            let key = TsigKey {
                name: raw.name.clone(),
                algorithm: raw.algorithm.clone(),
                secret_base64: raw.secret.clone(),
            };
            if let Err(e) = key.signer() {
                return Err(err(t.span(), "tsig_key", e.to_string()));
            }
            Some(key)
        }
    };
    let xfr_allow = super::nets(&r.xfr_allow, "publish.xfr_allow", invalid)?;
    let zone_suffix = match &r.zone_suffix {
        None => DEFAULT_ZONE_SUFFIX.to_owned(),
        Some(z) => {
            let mut zone = z.get_ref().trim().to_ascii_lowercase();
            if !zone.ends_with('.') {
                zone.push('.');
            }
            if zone == "." || hickory_proto::rr::Name::from_ascii(&zone).is_err() {
                return Err(err(
                    z.span(),
                    "zone_suffix",
                    format!(
                        "`{}` is not a zone name, e.g. \"rpz.kidsafe.\"",
                        z.get_ref()
                    ),
                ));
            }
            zone
        }
    };
    let journal_keep = match &r.journal_keep {
        None => DEFAULT_JOURNAL_KEEP,
        Some(n) => {
            let v = *n.get_ref();
            if !(1..=MAX_JOURNAL_KEEP).contains(&v) {
                return Err(err(
                    n.span(),
                    "journal_keep",
                    format!("{v} is out of range: keep 1 to {MAX_JOURNAL_KEEP} changes per list"),
                ));
            }
            v as usize
        }
    };
    Ok(Some(PublishConfig {
        minisign_key_file: resolve(key_file),
        xfr_listen: r.xfr_listen.clone(),
        notify: r.notify.clone(),
        tsig_key,
        xfr_allow,
        zone_suffix,
        journal_keep,
    }))
}

#[cfg(test)]
mod tests {
    const BASE: &str = "[server]\nlisten = [\"127.0.0.1:5353\"]\n[upstream]\nservers = [\"9.9.9.9:53\"]\n[lists]\ncompiled = \"/tmp/x.fst\"\n";

    fn cfg(extra: &str) -> Result<crate::config::Config, String> {
        crate::config::parse(
            &format!("{BASE}{extra}"),
            std::path::Path::new("/etc/kidsafe/central.toml"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn every_key_is_read_with_its_defaults() {
        let c = cfg("[publish]\nminisign_key_file = \"keys/central.key\"\n").unwrap();
        let p = c.publish.unwrap();
        assert_eq!(
            p.minisign_key_file,
            std::path::Path::new("/etc/kidsafe/keys/central.key")
        );
        assert_eq!(
            (p.zone_suffix.as_str(), p.journal_keep),
            ("rpz.kidsafe.", 1000)
        );
        assert!(p.xfr_listen.is_empty() && p.notify.is_empty() && p.tsig_key.is_none());

        let c = cfg("[publish]\nminisign_key_file = \"/k\"\nxfr_listen = [\"127.0.0.1:5301\"]\nnotify = [\"127.0.0.1:5302\"]\ntsig_key = { name = \"xfr.\", secret = \"c2VjcmV0\" }\nxfr_allow = [\"127.0.0.0/8\"]\nzone_suffix = \"RPZ.Example\"\njournal_keep = 50\n").unwrap();
        let p = c.publish.unwrap();
        assert_eq!(p.xfr_listen, vec!["127.0.0.1:5301".parse().unwrap()]);
        assert_eq!(p.notify, vec!["127.0.0.1:5302".parse().unwrap()]);
        assert_eq!(p.tsig_key.unwrap().algorithm, "hmac-sha256");
        assert_eq!(p.xfr_allow, vec!["127.0.0.0/8".parse().unwrap()]);
        assert_eq!(
            (p.zone_suffix.as_str(), p.journal_keep),
            ("rpz.example.", 50)
        );
        assert!(cfg("").unwrap().publish.is_none());
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = cfg("[publish]\nminisign_key_file = \"/k\"\njournal_keep = 0\n").unwrap_err();
        assert!(
            e.contains("central.toml:9") && e.contains("publish.journal_keep"),
            "{e}"
        );
        let e = cfg("[publish]\nminisign_key_file = \"/k\"\nxfr_allow = [\"nope\"]\n").unwrap_err();
        assert!(e.contains("publish.xfr_allow") && e.contains(":9:"), "{e}");
        let e = cfg("[publish]\nminisign_key_file = \"/k\"\ntsig_key = { name = \"k.\", algorithm = \"md5\", secret = \"c2VjcmV0\" }\n").unwrap_err();
        assert!(e.contains("publish.tsig_key") && e.contains("md5"), "{e}");
        let e = cfg("[publish]\nminisign_key_file = \"/k\"\nzone_suffix = \"bad..zone\"\n")
            .unwrap_err();
        assert!(e.contains("publish.zone_suffix"), "{e}");
        let e = cfg("[publish]\nxfr_listen = [\"127.0.0.1:1\"]\n").unwrap_err();
        assert!(e.contains("minisign_key_file"), "{e}");
        let e = cfg("[publish]\nminisign_key_file = \"/k\"\nnotify = [\"not an address\"]\n")
            .unwrap_err();
        assert!(e.contains("publish.notify") && e.contains(":9:"), "{e}");
        let e = cfg("[publish]\nminisign_key_file = \"/k\"\ntypo = 1\n").unwrap_err();
        assert!(e.contains("typo"), "{e}");
    }
}
