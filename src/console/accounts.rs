//! Console accounts and sessions in SQLite (`state_dir/console.sqlite`): users with an
//! Argon2id password hash, a role and the profiles they own; sessions by the SHA-256 of
//! their cookie token (a stolen database file opens no session), each with its CSRF token.

use std::path::Path;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, password_hash::rand_core::OsRng};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

/// How long a session lasts without a new login.
pub const SESSION_SECONDS: u64 = 12 * 3600;
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;
/// Longest account name.
const MAX_NAME: usize = 64;

/// What an account may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything: every profile, users, the reports queue.
    Admin,
    /// The reports queue.
    Reviewer,
    /// Their own profiles only (a parent, a school's teacher).
    Owner,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Reviewer => "reviewer",
            Role::Owner => "owner",
        }
    }

    /// The role named `s`, if any.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "reviewer" => Some(Role::Reviewer),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// An account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Login name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Profile ids it owns (an owner sees only these).
    pub profiles: Vec<String>,
}

impl User {
    /// Whether this account may read and change profile `id`.
    pub fn may_edit(&self, id: &str) -> bool {
        self.role == Role::Admin
            || (self.role == Role::Owner && self.profiles.iter().any(|p| p == id))
    }
}

/// A live session: its user and CSRF token.
#[derive(Clone, Debug)]
pub struct Session {
    /// Who logged in.
    pub user: User,
    /// The token every form of this session carries back.
    pub csrf: String,
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The request was refused; the message is for the person (a translation key).
    #[error("{0}")]
    Invalid(&'static str),
    /// SQLite failed.
    #[error("console accounts database: {0}")]
    Storage(#[from] rusqlite::Error),
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// The accounts database.
pub struct Accounts {
    db: Connection,
}

/// A new random token: 32 bytes, hex.
pub fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn now() -> u64 {
    crate::clock::now_unix()
}

impl Accounts {
    /// Opens (or creates) the database at `path`.
    ///
    /// # Errors
    /// SQLite cannot open or set up the file.
    pub fn open(path: &Path) -> Result<Accounts, AccountError> {
        let db = Connection::open(path)?;
        db.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS users (
                 id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, hash TEXT NOT NULL,
                 role TEXT NOT NULL, created INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS user_profiles (
                 user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                 profile TEXT NOT NULL, PRIMARY KEY (user_id, profile));
             CREATE INDEX IF NOT EXISTS user_profiles_profile ON user_profiles(profile);
             CREATE TABLE IF NOT EXISTS sessions (
                 token TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                 csrf TEXT NOT NULL, expires INTEGER NOT NULL);",
        )?;
        Ok(Accounts { db })
    }

    /// How many accounts exist.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn count(&self) -> Result<u64, AccountError> {
        Ok(self
            .db
            .query_row("SELECT COUNT(*) FROM users", [], |r| r.get::<_, i64>(0))?
            .max(0) as u64)
    }

    /// Creates an account.
    ///
    /// # Errors
    /// [`AccountError::Invalid`] for a bad name or short password, or a name taken.
    pub fn create(&mut self, name: &str, password: &str, role: Role) -> Result<User, AccountError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control)
        {
            return Err(AccountError::Invalid("err_name"));
        }
        if password.chars().count() < MIN_PASSWORD {
            return Err(AccountError::Invalid("err_password_short"));
        }
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| AccountError::Hash(e.to_string()))?
            .to_string();
        let inserted = self.db.execute(
            "INSERT INTO users (name, hash, role, created) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(name) DO NOTHING",
            params![name, hash, role.as_str(), now() as i64],
        )?;
        if inserted == 0 {
            return Err(AccountError::Invalid("err_name_taken"));
        }
        Ok(User {
            id: self.db.last_insert_rowid(),
            name: name.to_owned(),
            role,
            profiles: Vec::new(),
        })
    }

    /// The account `name` if `password` is its password. An unknown name costs the same
    /// hashing work, so timing does not tell which names exist.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn verify(&self, name: &str, password: &str) -> Result<Option<User>, AccountError> {
        let row: Option<(i64, String)> = self
            .db
            .query_row(
                "SELECT id, hash FROM users WHERE name = ?1",
                [name.trim()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let argon = Argon2::default();
        let Some((id, hash)) = row else {
            let salt = SaltString::generate(&mut OsRng);
            let _ = argon.hash_password(password.as_bytes(), &salt);
            return Ok(None);
        };
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return Ok(None);
        };
        if argon.verify_password(password.as_bytes(), &parsed).is_err() {
            return Ok(None);
        }
        self.user(id)
    }

    /// The account with row id `id`.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn user(&self, id: i64) -> Result<Option<User>, AccountError> {
        let row: Option<(String, String)> = self
            .db
            .query_row("SELECT name, role FROM users WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((name, role)) = row else {
            return Ok(None);
        };
        let mut stmt = self.db.prepare_cached(
            "SELECT profile FROM user_profiles WHERE user_id = ?1 ORDER BY profile",
        )?;
        let profiles = stmt
            .query_map([id], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(User {
            id,
            name,
            role: Role::parse(&role).unwrap_or(Role::Owner),
            profiles,
        }))
    }

    /// A page of accounts by name (`limit` from `offset`), with whether there are more.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn users(&self, offset: usize, limit: usize) -> Result<(Vec<User>, bool), AccountError> {
        let mut stmt = self.db.prepare_cached(
            "SELECT u.id, u.name, u.role, (SELECT group_concat(profile, ' ') FROM user_profiles p WHERE p.user_id = u.id)
             FROM users u ORDER BY u.name LIMIT ?1 OFFSET ?2",
        )?;
        let mut users = stmt
            .query_map(params![(limit + 1) as i64, offset as i64], |r| {
                let profiles: Option<String> = r.get(3)?;
                Ok(User {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    role: Role::parse(&r.get::<_, String>(2)?).unwrap_or(Role::Owner),
                    profiles: profiles
                        .unwrap_or_default()
                        .split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let more = users.len() > limit;
        users.truncate(limit);
        Ok((users, more))
    }

    /// Gives profile `profile` to account `user` (no-op when it has it).
    ///
    /// # Errors
    /// [`AccountError::Invalid`] for an unknown account; SQLite failed.
    pub fn assign(&mut self, user: i64, profile: &str) -> Result<(), AccountError> {
        if self.user(user)?.is_none() {
            return Err(AccountError::Invalid("err_no_user"));
        }
        self.db.execute(
            "INSERT OR IGNORE INTO user_profiles (user_id, profile) VALUES (?1, ?2)",
            params![user, profile],
        )?;
        Ok(())
    }

    /// Starts a session for `user`: the cookie token and the session (with its CSRF token).
    ///
    /// # Errors
    /// SQLite failed.
    pub fn start_session(&mut self, user: &User) -> Result<(String, Session), AccountError> {
        let (token, csrf) = (random_token(), random_token());
        let t = now();
        self.db
            .execute("DELETE FROM sessions WHERE expires < ?1", [t as i64])?;
        self.db.execute(
            "INSERT INTO sessions (token, user_id, csrf, expires) VALUES (?1, ?2, ?3, ?4)",
            params![digest(&token), user.id, csrf, (t + SESSION_SECONDS) as i64],
        )?;
        Ok((
            token,
            Session {
                user: user.clone(),
                csrf,
            },
        ))
    }

    /// The live session of cookie token `token`, if any.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn session(&self, token: &str) -> Result<Option<Session>, AccountError> {
        let row: Option<(i64, String)> = self
            .db
            .query_row(
                "SELECT user_id, csrf FROM sessions WHERE token = ?1 AND expires >= ?2",
                params![digest(token), now() as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((id, csrf)) = row else {
            return Ok(None);
        };
        Ok(self.user(id)?.map(|user| Session { user, csrf }))
    }

    /// Ends the session of cookie token `token`.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn end_session(&mut self, token: &str) -> Result<(), AccountError> {
        self.db
            .execute("DELETE FROM sessions WHERE token = ?1", [digest(token)])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_sessions_and_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Accounts::open(&dir.path().join("c.sqlite")).unwrap();
        assert_eq!(a.count().unwrap(), 0);
        let u = a.create("mẹ", "correct horse", Role::Owner).unwrap();
        assert!(matches!(
            a.create("mẹ", "another password", Role::Owner),
            Err(AccountError::Invalid("err_name_taken"))
        ));
        assert!(matches!(
            a.create("bố", "short", Role::Owner),
            Err(AccountError::Invalid("err_password_short"))
        ));
        assert!(a.verify("mẹ", "wrong horse!").unwrap().is_none());
        assert!(a.verify("nobody", "correct horse").unwrap().is_none());
        assert_eq!(a.verify("mẹ", "correct horse").unwrap().unwrap().id, u.id);
        a.assign(u.id, "p1").unwrap();
        let (token, s) = a.start_session(&u).unwrap();
        let back = a.session(&token).unwrap().unwrap();
        assert_eq!(back.csrf, s.csrf);
        assert!(back.user.may_edit("p1") && !back.user.may_edit("p2"));
        a.end_session(&token).unwrap();
        assert!(a.session(&token).unwrap().is_none());
        let (users, more) = a.users(0, 10).unwrap();
        assert_eq!((users.len(), more), (1, false));
        assert_eq!(users[0].profiles, ["p1"]);
    }
}
