//! `[reports]`: whether contacts are kept, forwarding to a central (`forward_to`,
//! `token_file`, `ca_file`, `node_id`, `retry_max`, `batch_max`), and, on a central, the
//! edges it takes deliveries from (`edges`). Every error names the key.

use std::path::{Path, PathBuf};

use super::raw::RawReports;
use super::{ConfigError, Invalid};
use crate::feed::spec::parse_duration;
use crate::forward::{DEFAULT_BATCH_MAX, DEFAULT_RETRY_MAX, ForwardConfig, SPOOL_FILE};

/// `[reports]`, validated.
#[derive(Clone, Debug, Default)]
pub struct ReportsConfig {
    /// Keep a contact the reporter typed (default false: dropped before the store).
    pub allow_contact: bool,
    /// Forward every report to a central (`forward_to`).
    pub forward: Option<ForwardConfig>,
    /// The edges allowed to deliver batches here, each by its token.
    pub edges: Vec<EdgeToken>,
}

/// An edge a central takes deliveries from (`reports.edges`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeToken {
    /// Its node id, recorded with each report it delivers.
    pub node: String,
    /// The bearer token it sends (at least 16 characters).
    pub token: String,
}

/// Most reports per delivery (the central's limit).
const MAX_BATCH_MAX: usize = 1000;

/// `[reports]`; the defaults when the section is absent.
pub(super) fn reports(
    raw: Option<&toml::Spanned<RawReports>>,
    state_dir: &Path,
    resolve: &dyn Fn(&Path) -> PathBuf,
    invalid: &Invalid<'_>,
) -> Result<ReportsConfig, ConfigError> {
    let Some(spanned) = raw else {
        return Ok(ReportsConfig::default());
    };
    let raw = spanned.get_ref();
    let forward = match &raw.forward_to {
        Some(url) => Some(forward(raw, url, state_dir, resolve, invalid)?),
        None => {
            let stray = [
                ("token_file", raw.token_file.as_ref().map(|t| t.span())),
                ("ca_file", raw.ca_file.as_ref().map(|t| t.span())),
                ("node_id", raw.node_id.as_ref().map(|t| t.span())),
                ("retry_max", raw.retry_max.as_ref().map(|t| t.span())),
                ("batch_max", raw.batch_max.as_ref().map(|t| t.span())),
            ];
            if let Some((key, span)) = stray.into_iter().find(|(_, s)| s.is_some()) {
                return Err(invalid(
                    span,
                    Some(format!("reports.{key}")),
                    "only means something with reports.forward_to (the central's URL)".into(),
                ));
            }
            None
        }
    };
    let mut edges: Vec<EdgeToken> = Vec::with_capacity(raw.edges.len());
    for edge in &raw.edges {
        let (span, e) = (edge.span(), edge.get_ref());
        let node = e.node.get_ref().trim().to_owned();
        if let Err(why) = node_id_problem(&node) {
            return Err(invalid(
                Some(e.node.span()),
                Some("reports.edges.node".into()),
                why,
            ));
        }
        let token = super::ops::read_token(
            &None,
            &Some(e.token_file.clone()),
            "reports.edges.token",
            resolve,
            invalid,
        )?
        .unwrap_or_default();
        if edges.iter().any(|o| o.node == node) {
            return Err(invalid(
                Some(span),
                Some("reports.edges.node".into()),
                format!("edge `{node}` is listed twice"),
            ));
        }
        if edges.iter().any(|o| o.token == token) {
            return Err(invalid(
                Some(span),
                Some("reports.edges.token_file".into()),
                format!("edge `{node}` has the same token as another edge; give each its own"),
            ));
        }
        edges.push(EdgeToken { node, token });
    }
    Ok(ReportsConfig {
        allow_contact: raw.allow_contact,
        forward,
        edges,
    })
}

/// `forward_to` and its companions.
fn forward(
    raw: &RawReports,
    url: &toml::Spanned<String>,
    state_dir: &Path,
    resolve: &dyn Fn(&Path) -> PathBuf,
    invalid: &Invalid<'_>,
) -> Result<ForwardConfig, ConfigError> {
    let bad_url = |m: String| invalid(Some(url.span()), Some("reports.forward_to".into()), m);
    let parsed = reqwest::Url::parse(url.get_ref().trim())
        .map_err(|e| bad_url(format!("`{}` is not a URL: {e}", url.get_ref())))?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => return Err(bad_url("the URL has no host".into())),
    };
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(bad_url(
                "reports travel to a central over https (http only to a loopback address, \
                 for tests)"
                    .into(),
            ));
        }
        other => return Err(bad_url(format!("unsupported scheme `{other}`; use https"))),
    }
    let Some(token_file) = &raw.token_file else {
        return Err(invalid(
            Some(url.span()),
            Some("reports.token_file".into()),
            "forward_to needs reports.token_file: the bearer token the central knows this \
             edge by"
                .into(),
        ));
    };
    let token = super::ops::read_token(
        &None,
        &Some(token_file.clone()),
        "reports.token",
        resolve,
        invalid,
    )?
    .unwrap_or_default();
    let ca_file = match &raw.ca_file {
        Some(ca) => {
            let path = resolve(ca.get_ref());
            if let Err(e) = std::fs::metadata(&path) {
                return Err(invalid(
                    Some(ca.span()),
                    Some("reports.ca_file".into()),
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
            Some(path)
        }
        None => None,
    };
    let node_id = match &raw.node_id {
        Some(n) => {
            let node = n.get_ref().trim().to_owned();
            node_id_problem(&node)
                .map_err(|why| invalid(Some(n.span()), Some("reports.node_id".into()), why))?;
            node
        }
        None => default_node_id(),
    };
    let retry_max = match &raw.retry_max {
        Some(d) => parse_duration(d.get_ref())
            .map_err(|m| invalid(Some(d.span()), Some("reports.retry_max".into()), m))?,
        None => DEFAULT_RETRY_MAX,
    };
    let batch_max = match &raw.batch_max {
        Some(b) if !(1..=MAX_BATCH_MAX).contains(b.get_ref()) => {
            return Err(invalid(
                Some(b.span()),
                Some("reports.batch_max".into()),
                format!("{} is out of range: use 1 to {MAX_BATCH_MAX}", b.get_ref()),
            ));
        }
        Some(b) => *b.get_ref(),
        None => DEFAULT_BATCH_MAX,
    };
    Ok(ForwardConfig {
        url: parsed,
        token,
        ca_file,
        node_id,
        retry_max,
        batch_max,
        spool: state_dir.join(SPOOL_FILE),
    })
}

/// Why `node` cannot be a node id (1 to 64 of letters, digits, `.`, `-`, `_`).
fn node_id_problem(node: &str) -> Result<(), String> {
    let ok = !node.is_empty()
        && node.len() <= 64
        && node
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{node}` is not a node id: 1 to 64 letters, digits, '.', '-' or '_'"
        ))
    }
}

/// The host name, when it makes a node id; `edge` otherwise.
fn default_node_id() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| node_id_problem(h).is_ok())
        .unwrap_or_else(|| "edge".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(dir: &Path, reports: &str) -> Result<crate::config::Config, ConfigError> {
        let text = format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nservers = [\"127.0.0.1:53\"]\n\
             [lists]\ncompiled = \"x.fst\"\n[reports]\n{reports}"
        );
        crate::config::parse(&text, &dir.join("k.toml"))
    }

    fn error(dir: &Path, reports: &str) -> String {
        load(dir, reports).unwrap_err().to_string()
    }

    #[test]
    fn forwarding_and_edges_parse() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t"), "0123456789abcdef0\n").unwrap();
        std::fs::write(dir.path().join("e1"), "edge-one-token-0123\n").unwrap();
        std::fs::write(dir.path().join("e2"), "edge-two-token-0123\n").unwrap();
        let c = load(
            dir.path(),
            "forward_to = \"http://127.0.0.1:9/v1/reports\"\ntoken_file = \"t\"\n\
             node_id = \"edge-1\"\nretry_max = \"2s\"\nallow_contact = true\n\
             edges = [{ node = \"a\", token_file = \"e1\" }, { node = \"b\", token_file = \"e2\" }]\n",
        )
        .unwrap();
        let f = c.reports.forward.unwrap();
        assert_eq!(f.token, "0123456789abcdef0");
        assert_eq!(f.node_id, "edge-1");
        assert_eq!(f.retry_max, std::time::Duration::from_secs(2));
        assert_eq!(f.batch_max, DEFAULT_BATCH_MAX);
        assert!(f.spool.ends_with(SPOOL_FILE));
        assert!(c.reports.allow_contact);
        assert_eq!(c.reports.edges.len(), 2);
        assert_eq!(c.reports.edges[1].token, "edge-two-token-0123");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t"), "0123456789abcdef0\n").unwrap();
        std::fs::write(dir.path().join("short"), "abc\n").unwrap();
        for (reports, key) in [
            (
                "forward_to = \"http://central.example/v1/reports\"\ntoken_file = \"t\"\n",
                "reports.forward_to",
            ),
            (
                "forward_to = \"https://central.example/v1/reports\"\n",
                "reports.token_file",
            ),
            ("token_file = \"t\"\n", "reports.token_file"),
            (
                "forward_to = \"https://c.example/\"\ntoken_file = \"t\"\nretry_max = \"soon\"\n",
                "reports.retry_max",
            ),
            (
                "forward_to = \"https://c.example/\"\ntoken_file = \"t\"\nbatch_max = 5000\n",
                "reports.batch_max",
            ),
            (
                "forward_to = \"https://c.example/\"\ntoken_file = \"missing\"\n",
                "reports.token_file",
            ),
            (
                "forward_to = \"https://c.example/\"\ntoken_file = \"t\"\nca_file = \"nope.pem\"\n",
                "reports.ca_file",
            ),
            (
                "edges = [{ node = \"a\", token_file = \"short\" }]\n",
                "reports.edges.token_file",
            ),
            (
                "edges = [{ node = \"a b\", token_file = \"t\" }]\n",
                "reports.edges.node",
            ),
            (
                "edges = [{ node = \"a\", token_file = \"t\" }, { node = \"b\", token_file = \"t\" }]\n",
                "reports.edges.token_file",
            ),
        ] {
            let e = error(dir.path(), reports);
            assert!(e.contains("k.toml:"), "{reports}: {e}");
            assert!(e.contains(&format!("key `{key}`")), "{reports}: {e}");
        }
        let e = error(
            dir.path(),
            "forward_to = \"https://c.example/\"\ntoken_file = \"t\"\nretry_max = \"soon\"\n",
        );
        assert!(e.contains("k.toml:10:"), "the line of retry_max: {e}");
    }
}
