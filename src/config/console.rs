//! `[console]`: where the web console listens, and whether over TLS with the DoT/DoH
//! certificate. Plain HTTP only on loopback: a password must not cross a network in clear.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::raw::RawConsole;
use super::{ConfigError, Invalid};
use crate::server::TlsListeners;

/// `[console]`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// HTTP(S) listen addresses.
    pub listen: Vec<SocketAddr>,
    /// The certificate chain and key (PEM) to serve HTTPS with: `server.tls_cert` and
    /// `server.tls_key`, when `console.tls = true`.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// `[console]`: `tls = true` needs the DoT/DoH certificate; a non-loopback address needs
/// `tls = true`.
pub(super) fn console(
    raw: Option<&toml::Spanned<RawConsole>>,
    server_tls: Option<&TlsListeners>,
    invalid: &Invalid<'_>,
) -> Result<Option<ConsoleConfig>, ConfigError> {
    let Some(spanned) = raw else { return Ok(None) };
    let raw = spanned.get_ref();
    let listen = raw.listen.get_ref();
    if listen.is_empty() {
        return Err(invalid(
            Some(raw.listen.span()),
            Some("console.listen".into()),
            "needs at least one address, e.g. [\"127.0.0.1:8080\"]".into(),
        ));
    }
    let tls = if let Some(on) = raw.tls.as_ref().filter(|t| *t.get_ref()) {
        let Some(t) = server_tls else {
            return Err(invalid(
                Some(on.span()),
                Some("console.tls".into()),
                "console.tls = true serves the DoT/DoH certificate: set server.tls_cert, server.tls_key and dot_listen or doh_listen".into(),
            ));
        };
        Some((t.cert.clone(), t.key.clone()))
    } else {
        None
    };
    if tls.is_none() && listen.iter().any(|a| !a.ip().is_loopback()) {
        return Err(invalid(
            Some(raw.listen.span()),
            Some("console.listen".into()),
            "a non-loopback console address needs console.tls = true (passwords must not cross the network in clear)".into(),
        ));
    }
    Ok(Some(ConsoleConfig {
        listen: listen.clone(),
        tls,
    }))
}

#[cfg(test)]
mod tests {
    fn err(text: &str) -> String {
        let base = "[server]\nlisten = [\"127.0.0.1:10053\"]\n[upstream]\nservers = [\"127.0.0.1:9\"]\n[lists]\ncompiled = \"x.fst\"\n";
        let full = format!("{base}{text}");
        match super::super::parse(&full, std::path::Path::new("/etc/k.toml")) {
            Ok(c) => format!("ok {:?}", c.console),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn console_settings_are_checked_with_file_line_and_key() {
        assert!(
            err("[console]\n").contains("127.0.0.1:8080"),
            "{}",
            err("[console]\n")
        );
        let e = err("[console]\nlisten = [\"0.0.0.0:8080\"]\n");
        assert!(
            e.contains("/etc/k.toml:8:") && e.contains("console.listen") && e.contains("tls"),
            "{e}"
        );
        let e = err("[console]\ntls = true\n");
        assert!(
            e.contains(":8:") && e.contains("console.tls") && e.contains("server.tls_cert"),
            "{e}"
        );
        let e = err("[console]\nlisen = []\n");
        assert!(e.contains("console") && e.contains("lisen"), "{e}");
        let e = err("[console]\nlisten = []\n");
        assert!(
            e.contains("console.listen") && e.contains("at least one"),
            "{e}"
        );
    }
}
