//! Tokens that prove a report form was served by this block page, to this host, recently.
//!
//! Why this scheme: the block page answers for whatever blocked name the browser asked
//! for, with no session and no account, and it must not set cookies on a blocked site's
//! domain. So the usual session-bound or double-submit-cookie tokens do not fit. A
//! stateless token does: `<expiry>.<HMAC-SHA256(secret, expiry, host)>`, with a secret
//! drawn at start (a restart invalidates open forms, which only costs a reload), a short
//! lifetime ([`TOKEN_TTL`]), and bound to the Host the form was served on, so a token from
//! one name cannot post for another. Another site cannot read the token (the page is not
//! readable cross-origin), and the handler also checks `Origin`/`Referer`: a cross-site
//! POST fails both.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a served form can be posted.
pub const TOKEN_TTL: Duration = Duration::from_secs(30 * 60);

type HmacSha256 = Hmac<Sha256>;

/// The per-process secret and the two operations on it.
pub struct Csrf {
    secret: [u8; 32],
}

impl std::fmt::Debug for Csrf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Csrf { .. }")
    }
}

impl Default for Csrf {
    fn default() -> Self {
        Self::new()
    }
}

impl Csrf {
    /// A fresh random secret.
    pub fn new() -> Self {
        Csrf {
            secret: rand::random(),
        }
    }

    fn mac(&self, expiry: u64, host: &str) -> HmacSha256 {
        // Any key length is valid for HMAC: this cannot fail.
        let mut mac = match HmacSha256::new_from_slice(&self.secret) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(&expiry.to_be_bytes());
        mac.update(host.as_bytes());
        mac
    }

    /// A token for a form served to `host` at `now` (Unix seconds).
    pub fn issue(&self, host: &str, now: u64) -> String {
        let expiry = now + TOKEN_TTL.as_secs();
        let tag = self.mac(expiry, host).finalize().into_bytes();
        format!("{expiry}.{}", hex::encode(tag))
    }

    /// Whether `token` was issued by this process for `host` and has not expired at `now`
    /// (the tag compared in constant time).
    pub fn verify(&self, token: &str, host: &str, now: u64) -> bool {
        let Some((expiry, tag)) = token.split_once('.') else {
            return false;
        };
        let (Ok(expiry), Ok(tag)) = (expiry.parse::<u64>(), hex::decode(tag)) else {
            return false;
        };
        if now > expiry || expiry > now + TOKEN_TTL.as_secs() {
            return false;
        }
        self.mac(expiry, host).verify_slice(&tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_host_secret_and_time() {
        let (a, b) = (Csrf::new(), Csrf::new());
        let t = a.issue("bad.example", 1000);
        assert!(a.verify(&t, "bad.example", 1000));
        assert!(a.verify(&t, "bad.example", 1000 + TOKEN_TTL.as_secs()));
        assert!(
            !a.verify(&t, "bad.example", 1001 + TOKEN_TTL.as_secs()),
            "expired"
        );
        assert!(!a.verify(&t, "other.example", 1000), "another host");
        assert!(!b.verify(&t, "bad.example", 1000), "another process");
        let forged = format!("{}.{}", 1000 + 60, t.split_once('.').unwrap().1);
        assert!(!a.verify(&forged, "bad.example", 1000), "expiry is signed");
        for junk in ["", ".", "x.y", "1.zz", "99999999999999999999.00"] {
            assert!(!a.verify(junk, "bad.example", 1000), "{junk}");
        }
    }
}
