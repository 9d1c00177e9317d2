//! Connecting to the fleet's PostgreSQL, and what its errors mean to a caller: shared by
//! the store's connection ([`super::pg`]) and the LISTEN thread ([`super::listen`]).

use std::str::FromStr;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, NoTls};

use super::error::ProfileError;

/// The channel every node LISTENs on; the payload is the writing node's id.
pub(super) const CHANNEL: &str = "kidsafe_profiles";
/// How long a connection attempt may take (a host that drops packets).
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Opens a connection (no TLS: a socket or a trusted network; see the README).
pub(super) fn connect(url: &str, target: &str) -> Result<Client, ProfileError> {
    let mut config = postgres::Config::from_str(url).map_err(|_| ProfileError::Unavailable {
        target: target.to_owned(),
    })?;
    config.connect_timeout(CONNECT_TIMEOUT);
    config.application_name("kidsafe-dns");
    config.connect(NoTls).map_err(|e| pg_error(target, e))
}

/// Unreachable (the connection failed or broke, the server is shutting down):
/// [`ProfileError::Unavailable`]; a duplicate key (two nodes racing on one name or
/// identity): a conflict; anything else: [`ProfileError::Postgres`].
pub(super) fn pg_error(target: &str, e: postgres::Error) -> ProfileError {
    let Some(db) = e.as_db_error() else {
        return ProfileError::Unavailable {
            target: target.to_owned(),
        };
    };
    let code = db.code().code();
    if code.starts_with("08") || code.starts_with("57P") {
        return ProfileError::Unavailable {
            target: target.to_owned(),
        };
    }
    if *db.code() == SqlState::UNIQUE_VIOLATION {
        let field = if db.constraint().is_some_and(|c| c.contains("name")) {
            "name"
        } else {
            "value"
        };
        return ProfileError::conflict(field, "taken by another write that came first; retry");
    }
    ProfileError::Postgres {
        target: target.to_owned(),
        source: e,
    }
}
