//! TSIG keys as configured, and the hickory signer built from them.

use std::fmt;

use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, TSigner};
use serde::Deserialize;

use super::XfrError;

/// TSIG fudge (allowed clock skew), seconds; RFC 8945 recommends 300.
pub(super) const TSIG_FUDGE: u16 = 300;

/// A TSIG key as configured (BIND/Knot style). `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct TsigKey {
    /// Key name, e.g. `transfer-key.` (must match the primary's).
    pub name: String,
    /// Algorithm: `hmac-sha256` (recommended), `hmac-sha384` or `hmac-sha512`.
    pub algorithm: String,
    /// The shared secret, base64 as in `tsig-keygen` / `keymgr -t` output.
    pub secret_base64: String,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret_base64", &"<redacted>")
            .finish()
    }
}

impl TsigKey {
    /// Builds hickory's signer; fails on an unknown algorithm, a bad name or
    /// a secret that is not base64.
    pub fn signer(&self) -> Result<TSigner, XfrError> {
        let bad = |reason: String| XfrError::InvalidKey {
            key: self.name.clone(),
            reason,
        };
        let algorithm = match self
            .algorithm
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase()
            .as_str()
        {
            "hmac-sha256" => TsigAlgorithm::HmacSha256,
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            other => {
                return Err(bad(format!(
                    "unsupported algorithm {other:?} (use hmac-sha256, hmac-sha384 or hmac-sha512)"
                )));
            }
        };
        let name = Name::from_ascii(self.name.trim())
            .map_err(|e| bad(format!("invalid key name: {e}")))?;
        let secret: String = self
            .secret_base64
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let key = data_encoding::BASE64
            .decode(secret.as_bytes())
            .map_err(|e| bad(format!("secret is not valid base64: {e}")))?;
        if key.is_empty() {
            return Err(bad("empty secret".to_owned()));
        }
        TSigner::new(key, algorithm, name, TSIG_FUDGE).map_err(|e| bad(e.to_string()))
    }
}
