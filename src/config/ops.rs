//! The operations sections: encrypted listeners (`server.dot_listen`, `doh_listen`,
//! `tls_*`), `[admin]` and `[querylog]`, checked like the rest: every error names the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use super::raw::{RawAdmin, RawQueryLog, RawServer};
use super::{ConfigError, Invalid};
use crate::querylog::QueryLogConfig;
use crate::server::TlsListeners;

/// `[admin]`, validated.
#[derive(Clone, Debug)]
pub struct AdminConfig {
    /// HTTP listen addresses.
    pub listen: Vec<SocketAddr>,
    /// Bearer token; required when any address is not loopback.
    pub token: Option<String>,
    /// Reports accepted per hour from one source address.
    pub reports_per_hour: u32,
    /// Report portals by address (`admin.portal_clients`).
    pub portal_clients: Vec<IpNet>,
    /// The portal's bearer token (`admin.portal_token` or `portal_token_file`): marks a
    /// report as the portal's, and is accepted on `POST /v1/reports` (only).
    pub portal_token: Option<String>,
    /// Reports accepted per hour from one portal.
    pub portal_reports_per_hour: u32,
    /// `admin.public_check`: `/v1/check` answers without the token, in short (listed, not
    /// listed, under review), limited per address.
    pub public_check: bool,
    /// `admin.public_check_per_hour`: public checks per address per hour (default 600).
    pub public_check_per_hour: u32,
    /// `admin.feed_requests_per_hour`: requests to the public feed (`/v1/published/...`)
    /// per address per hour (default 3600).
    pub feed_requests_per_hour: u32,
}

/// The DoT/DoH part of `[server]`: both listen lists need the certificate and key.
pub(super) fn tls_listeners(
    raw: &RawServer,
    resolve: &dyn Fn(&Path) -> PathBuf,
    invalid: &Invalid<'_>,
) -> Result<Option<TlsListeners>, ConfigError> {
    let (dot, doh) = (raw.dot_listen.get_ref(), raw.doh_listen.get_ref());
    if dot.is_empty() && doh.is_empty() {
        return Ok(None);
    }
    let span = if dot.is_empty() {
        raw.doh_listen.span()
    } else {
        raw.dot_listen.span()
    };
    let (Some(cert), Some(key)) = (&raw.tls_cert, &raw.tls_key) else {
        let key = if raw.tls_cert.is_none() {
            "server.tls_cert"
        } else {
            "server.tls_key"
        };
        return Err(invalid(
            Some(span),
            Some(key.into()),
            "dot_listen/doh_listen need server.tls_cert and server.tls_key (PEM files)".into(),
        ));
    };
    Ok(Some(TlsListeners {
        dot_listen: dot.clone(),
        doh_listen: doh.clone(),
        cert: resolve(cert),
        key: resolve(key),
    }))
}

/// `[admin]`: a token is required unless every address is loopback.
pub(super) fn admin(
    raw: Option<&toml::Spanned<RawAdmin>>,
    resolve: &dyn Fn(&Path) -> PathBuf,
    invalid: &Invalid<'_>,
) -> Result<Option<AdminConfig>, ConfigError> {
    let Some(spanned) = raw else { return Ok(None) };
    let raw = spanned.get_ref();
    let token = read_token(&raw.token, &raw.token_file, "admin.token", resolve, invalid)?;
    let portal_token = read_token(
        &raw.portal_token,
        &raw.portal_token_file,
        "admin.portal_token",
        resolve,
        invalid,
    )?;
    if portal_token.is_some() && portal_token == token {
        return Err(invalid(
            raw.portal_token
                .as_ref()
                .map(|t| t.span())
                .or(raw.portal_token_file.as_ref().map(|f| f.span())),
            Some("admin.portal_token".into()),
            "the portal token must differ from admin.token (it may only post reports)".into(),
        ));
    }
    let portal_clients = super::nets(&raw.portal_clients, "admin.portal_clients", invalid)?;
    let listen = raw.listen.get_ref();
    if token.is_none() && listen.iter().any(|a| !a.ip().is_loopback()) {
        return Err(invalid(
            Some(raw.listen.span()),
            Some("admin.listen".into()),
            "a non-loopback admin address needs admin.token or admin.token_file".into(),
        ));
    }
    Ok(Some(AdminConfig {
        listen: listen.clone(),
        token,
        reports_per_hour: raw.reports_per_hour,
        portal_clients,
        portal_token,
        portal_reports_per_hour: raw.portal_reports_per_hour,
        public_check: raw.public_check,
        public_check_per_hour: raw.public_check_per_hour,
        feed_requests_per_hour: raw.feed_requests_per_hour,
    }))
}

/// A bearer token given inline (`{key}`) or in a file (`{key}_file`, its first line), at
/// least 16 characters; an error points at the line that gave it.
pub(super) fn read_token(
    inline: &Option<toml::Spanned<String>>,
    file: &Option<toml::Spanned<PathBuf>>,
    key: &str,
    resolve: &dyn Fn(&Path) -> PathBuf,
    invalid: &Invalid<'_>,
) -> Result<Option<String>, ConfigError> {
    // The token's key, its place in the file, and the token.
    let token = match (inline, file) {
        (Some(_), Some(file)) => {
            return Err(invalid(
                Some(file.span()),
                Some(format!("{key}_file")),
                format!("give {key} or {key}_file, not both"),
            ));
        }
        (Some(t), None) => Some((key.to_owned(), t.span(), t.get_ref().trim().to_owned())),
        (None, Some(file)) => {
            let path = resolve(file.get_ref());
            let text = std::fs::read_to_string(&path).map_err(|e| {
                invalid(
                    Some(file.span()),
                    Some(format!("{key}_file")),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            let first = text.lines().next().unwrap_or("").trim().to_owned();
            Some((format!("{key}_file"), file.span(), first))
        }
        (None, None) => None,
    };
    if let Some((key, span, t)) = &token
        && t.len() < 16
    {
        return Err(invalid(
            Some(span.clone()),
            Some(key.clone()),
            format!(
                "the token must be at least 16 characters (it has {}); e.g. `openssl rand -hex 16`",
                t.len()
            ),
        ));
    }
    Ok(token.map(|(_, _, t)| t))
}

/// `[querylog]`, `None` unless `enabled = true`.
pub(super) fn querylog(
    raw: Option<&RawQueryLog>,
    state_dir: &Path,
    resolve: &dyn Fn(&Path) -> PathBuf,
    invalid: &Invalid<'_>,
) -> Result<Option<QueryLogConfig>, ConfigError> {
    let Some(raw) = raw.filter(|r| r.enabled) else {
        return Ok(None);
    };
    if raw.max_bytes < 4096 {
        return Err(invalid(
            None,
            Some("querylog.max_bytes".into()),
            "use at least 4096 bytes".into(),
        ));
    }
    Ok(Some(QueryLogConfig {
        path: raw
            .path
            .as_deref()
            .map_or_else(|| state_dir.join("querylog.jsonl"), resolve),
        max_bytes: raw.max_bytes,
        keep: raw.keep,
        client: raw.client,
    }))
}
