//! `[store]`: where the profiles live. No table (or no `url`) keeps the single-node SQLite
//! file; a `postgres://` URL makes every node of a fleet share one PostgreSQL database.

use std::fmt;
use std::str::FromStr;

/// `[store]`, validated.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoreConfig {
    /// `postgres://user[:password]@host[:port]/db`; `None` is the SQLite file. It may hold a
    /// password: log [`StoreConfig::target`], never this.
    pub url: Option<String>,
}

// By hand: the derived form would print the URL and its password in a panic or a log.
impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("postgres", &self.target())
            .finish()
    }
}

impl StoreConfig {
    /// Checks a `[store] url`: the reason on failure, without echoing the URL.
    ///
    /// # Errors
    /// Not a `postgres://` (or `postgresql://`) URL, or no database or host in it.
    pub fn postgres(url: &str) -> Result<Self, String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err("expected postgres://user@host/db".into());
        }
        let parsed =
            postgres::Config::from_str(url).map_err(|e| format!("not a PostgreSQL URL ({e})"))?;
        if parsed.get_hosts().is_empty() {
            return Err("no host (postgres://user@host/db)".into());
        }
        if parsed.get_dbname().is_none() {
            return Err("no database name (postgres://user@host/db)".into());
        }
        Ok(StoreConfig {
            url: Some(url.to_owned()),
        })
    }

    /// What to name in logs and errors: `host/db` (never the user or password); `None`
    /// for the SQLite store.
    pub fn target(&self) -> Option<String> {
        let url = self.url.as_deref()?;
        Some(target_of(url))
    }
}

/// `host/db` of a PostgreSQL URL, for logs (`?` where a part is missing).
pub(super) fn target_of(url: &str) -> String {
    let Ok(c) = postgres::Config::from_str(url) else {
        return "?".into();
    };
    let host = match c.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "?".into(),
    };
    format!("{host}/{}", c.get_dbname().unwrap_or("?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        let s = StoreConfig::postgres("postgres://kid:s3cret@db.example/fleet").unwrap();
        assert_eq!(s.target().as_deref(), Some("db.example/fleet"));
        assert!(!format!("{s:?}").contains("s3cret"));
        let e = StoreConfig::postgres("mysql://kid:s3cret@db/x").unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
        assert!(StoreConfig::postgres("postgres://kid@db.example").is_err());
    }
}
