//! Who is asking: the session cookie (`HttpOnly`, `SameSite=Strict`, `Secure` behind TLS),
//! the language cookie or `?lang=`, and the login rate limits (per address and per
//! account, both with the admin API's hourly limiter).

use std::net::{IpAddr, Ipv6Addr};
use std::time::Instant;

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};

use super::accounts::{SESSION_SECONDS, Session};
use super::i18n::Lang;
use crate::admin::limit::ReportLimiter;

/// The session cookie's name.
pub const COOKIE: &str = "ks_session";
/// The language cookie's name.
pub const LANG_COOKIE: &str = "ks_lang";
/// Failed logins allowed per address per hour.
pub const LOGINS_PER_ADDRESS: u32 = 30;
/// Failed logins allowed per account per hour.
pub const LOGINS_PER_ACCOUNT: u32 = 10;

/// The value of cookie `name` in `headers`, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The page language: `?lang=` first, then the cookie, then Vietnamese.
pub fn lang(headers: &HeaderMap, query: Option<&str>) -> Lang {
    query
        .or_else(|| cookie(headers, LANG_COOKIE))
        .map_or(Lang::Vi, Lang::parse)
}

/// The `Set-Cookie` value that starts a session.
pub fn session_cookie(token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{secure}"
    )
}

/// The `Set-Cookie` value that ends a session.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

/// The `Set-Cookie` value that keeps a language.
pub fn lang_cookie(lang: Lang, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{LANG_COOKIE}={}; Path=/; SameSite=Strict; Max-Age=31536000{secure}",
        lang.code()
    )
}

/// The login limits: failed attempts per address and per account name.
pub struct LoginLimits {
    per_address: ReportLimiter,
    per_account: ReportLimiter,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_address: ReportLimiter::new(LOGINS_PER_ADDRESS),
            per_account: ReportLimiter::new(LOGINS_PER_ACCOUNT),
        }
    }
}

/// The limiter's key for an account name: the limiter counts by address, so the name is
/// hashed into an address of the unique-local range, which no real client has here.
fn account_key(name: &str) -> IpAddr {
    let d = Sha256::digest(name.trim().to_lowercase().as_bytes());
    let mut b = [0u8; 16];
    b[0] = 0xfd;
    b[1..].copy_from_slice(&d[..15]);
    IpAddr::V6(Ipv6Addr::from(b))
}

impl LoginLimits {
    /// Counts an attempt; false when the address or the account is over its limit.
    pub fn attempt(&self, peer: IpAddr, name: &str) -> bool {
        let now = Instant::now();
        let address = self.per_address.allow(peer, now);
        let account = self.per_account.allow(account_key(name), now);
        address && account
    }

    /// A successful login does not count against either.
    pub fn succeeded(&self, peer: IpAddr, name: &str) {
        self.per_address.refund(peer);
        self.per_account.refund(account_key(name));
    }
}

/// A request's session and language, for the pages.
pub struct Ctx {
    /// The page language.
    pub lang: Lang,
    /// The logged-in session, if any.
    pub session: Option<Session>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_limits() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; ks_session=tok; ks_lang=en".parse().unwrap(),
        );
        assert_eq!(cookie(&h, COOKIE), Some("tok"));
        assert_eq!(lang(&h, None), Lang::En);
        assert_eq!(lang(&h, Some("vi")), Lang::Vi);
        assert!(session_cookie("t", true).contains("HttpOnly; SameSite=Strict"));
        assert!(session_cookie("t", true).ends_with("; Secure"));
        let l = LoginLimits::default();
        let peer: IpAddr = "127.0.0.9".parse().unwrap();
        for _ in 0..LOGINS_PER_ACCOUNT {
            assert!(l.attempt(peer, "mẹ"));
        }
        assert!(!l.attempt(peer, "mẹ"), "the account is over its limit");
        assert!(l.attempt(peer, "bố"), "another account is not");
    }
}
