//! Console accounts and sessions in SQLite (`state_dir/console.sqlite`): users with an
//! Argon2id password hash, a role and the profiles they own; sessions by the SHA-256 of
//! their cookie token (a stolen database file opens no session), each with its CSRF token.
//!
//! A session holds who is logged in (id, name, role), never the profiles they own: a
//! school's account may own thousands. Ownership is asked of the database when needed,
//! each time through an index ([`Accounts::may_edit`], [`Accounts::owned_page`]).

use std::path::Path;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, password_hash::rand_core::OsRng};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::profiles::PageCursor;

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

/// An account: who it is and what it may do (the profiles it owns stay in the database).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Login name.
    pub name: String,
    /// What it may do.
    pub role: Role,
}

/// An account as the accounts page lists it: the first profiles it owns and how many.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The account.
    pub user: User,
    /// Its first [`LISTED_PROFILES`] profile ids, in [`Accounts::owned_page`]'s order.
    pub profiles: Vec<String>,
    /// How many profiles it owns in all.
    pub owned: u64,
}

/// Profile ids shown per account on the accounts page.
pub const LISTED_PROFILES: usize = 10;

/// A page of the profile ids an account owns, with the cursors around it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedPage {
    /// The ids, shortest first, then in text order (`p2` before `p10`).
    pub ids: Vec<String>,
    /// The cursor of the page before (its `before=`: this page's first id), if any.
    pub previous: Option<String>,
    /// The cursor of the page after (its `after=`: this page's last id), if any.
    pub next: Option<String>,
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
             -- An owner's pages in the order people read ids (p2 before p10): a keyset walk.
             CREATE INDEX IF NOT EXISTS user_profiles_order
                 ON user_profiles(user_id, length(profile), profile);
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
        Ok(Some(User {
            id,
            name,
            role: Role::parse(&role).unwrap_or(Role::Owner),
        }))
    }

    /// Whether `user` may read and change profile `profile`: an administrator any, an
    /// owner those it owns (one primary-key lookup, however many it owns), a reviewer none.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn may_edit(&self, user: &User, profile: &str) -> Result<bool, AccountError> {
        match user.role {
            Role::Admin => Ok(true),
            Role::Reviewer => Ok(false),
            Role::Owner => Ok(self
                .db
                .prepare_cached("SELECT 1 FROM user_profiles WHERE user_id = ?1 AND profile = ?2")?
                .exists(params![user.id, profile])?),
        }
    }

    /// A page of at most `limit` profile ids account `user` owns, from `cursor` (an id
    /// of a page's edge; it need not be owned), shortest id first, then in text order: a
    /// keyset walk of `user_profiles_order`, as fast deep in a school's thousands as on
    /// the first page.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn owned_page(
        &self,
        user: i64,
        cursor: PageCursor<'_>,
        limit: usize,
    ) -> Result<OwnedPage, AccountError> {
        let limit = limit.max(1);
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
        let read = |sql: &str, key: Option<&str>| -> Result<Vec<String>, AccountError> {
            let mut st = self.db.prepare_cached(sql)?;
            let rows = match key {
                None => st
                    .query_map(params![user, fetch], |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>(),
                Some(k) => st
                    .query_map(params![user, k, fetch], |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>(),
            };
            Ok(rows?)
        };
        let (mut ids, more_before, more_after) = match cursor {
            PageCursor::First => {
                let ids = read(
                    "SELECT profile FROM user_profiles WHERE user_id = ?1
                     ORDER BY length(profile), profile LIMIT ?2",
                    None,
                )?;
                let more = ids.len() > limit;
                (ids, false, more)
            }
            PageCursor::After(key) => {
                let ids = read(
                    "SELECT profile FROM user_profiles WHERE user_id = ?1
                     AND (length(profile), profile) > (length(?2), ?2)
                     ORDER BY length(profile), profile LIMIT ?3",
                    Some(key),
                )?;
                let more = ids.len() > limit;
                (ids, true, more)
            }
            PageCursor::Before(key) => {
                let mut ids = read(
                    "SELECT profile FROM user_profiles WHERE user_id = ?1
                     AND (length(profile), profile) < (length(?2), ?2)
                     ORDER BY length(profile) DESC, profile DESC LIMIT ?3",
                    Some(key),
                )?;
                let more = ids.len() > limit;
                ids.truncate(limit);
                ids.reverse();
                (ids, more, true)
            }
        };
        ids.truncate(limit);
        if ids.is_empty() {
            // Past either end: no page to link to from here but the first.
            return Ok(OwnedPage::default());
        }
        Ok(OwnedPage {
            previous: more_before.then(|| ids[0].clone()),
            next: more_after.then(|| ids[ids.len() - 1].clone()),
            ids,
        })
    }

    /// How many profiles account `user` owns.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn owned_count(&self, user: i64) -> Result<u64, AccountError> {
        let n: i64 = self
            .db
            .prepare_cached("SELECT count(*) FROM user_profiles WHERE user_id = ?1")?
            .query_row([user], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// A page of accounts by name (`limit` from `offset`), each with its first
    /// [`LISTED_PROFILES`] profile ids and how many it owns, with whether there are more.
    ///
    /// # Errors
    /// SQLite failed.
    pub fn users(&self, offset: usize, limit: usize) -> Result<(Vec<Listed>, bool), AccountError> {
        let mut stmt = self
            .db
            .prepare_cached("SELECT id, name, role FROM users ORDER BY name LIMIT ?1 OFFSET ?2")?;
        let mut users = stmt
            .query_map(params![(limit + 1) as i64, offset as i64], |r| {
                Ok(User {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    role: Role::parse(&r.get::<_, String>(2)?).unwrap_or(Role::Owner),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let more = users.len() > limit;
        users.truncate(limit);
        let mut listed = Vec::with_capacity(users.len());
        for user in users {
            let profiles = self
                .owned_page(user.id, PageCursor::First, LISTED_PROFILES)?
                .ids;
            let owned = self.owned_count(user.id)?;
            listed.push(Listed {
                user,
                profiles,
                owned,
            });
        }
        Ok((listed, more))
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
        assert!(a.may_edit(&back.user, "p1").unwrap() && !a.may_edit(&back.user, "p2").unwrap());
        a.end_session(&token).unwrap();
        assert!(a.session(&token).unwrap().is_none());
        let (users, more) = a.users(0, 10).unwrap();
        assert_eq!((users.len(), more), (1, false));
        assert_eq!(
            (users[0].profiles.as_slice(), users[0].owned),
            (&["p1".to_owned()][..], 1)
        );
    }

    /// The plan SQLite picks for `sql` with `params`, one line per step.
    fn plan(a: &Accounts, sql: &str, params: impl rusqlite::Params) -> String {
        a.db.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(params, |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn a_school_with_5000_profiles_pages_them_and_ownership_is_one_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Accounts::open(&dir.path().join("c.sqlite")).unwrap();
        let school = a.create("trường", "school password", Role::Owner).unwrap();
        let parent = a.create("mẹ", "parent password", Role::Owner).unwrap();
        let admin = a.create("quản trị", "admin password", Role::Admin).unwrap();
        let reviewer = a
            .create("duyệt", "review password", Role::Reviewer)
            .unwrap();
        // Every other stored profile is the school's (p2, p4, ... p10000); the parent owns
        // p3 and p5. One transaction (5,000 synced writes would be the test's whole time).
        a.db.execute_batch("BEGIN").unwrap();
        for i in 1..=5000 {
            a.assign(school.id, &format!("p{}", 2 * i)).unwrap();
        }
        a.db.execute_batch("COMMIT").unwrap();
        for p in ["p3", "p5"] {
            a.assign(parent.id, p).unwrap();
        }

        // The session knows who, not what they own: nothing grows with 5,000 profiles.
        let (token, _) = a.start_session(&school).unwrap();
        let s = a.session(&token).unwrap().unwrap();
        assert_eq!(s.user, school);

        // Ownership: yes for each of the school's, no for the parent's or a stranger's.
        for (id, theirs) in [
            ("p2", true),
            ("p10000", true),
            ("p4998", true),
            ("p3", false),
            ("p10002", false),
            ("p1", false),
            ("", false),
        ] {
            assert_eq!(a.may_edit(&s.user, id).unwrap(), theirs, "{id}");
        }
        assert!(a.may_edit(&parent, "p3").unwrap() && !a.may_edit(&parent, "p2").unwrap());
        assert!(
            a.may_edit(&admin, "p3").unwrap(),
            "an administrator edits any profile"
        );
        assert!(
            !a.may_edit(&reviewer, "p2").unwrap(),
            "a reviewer edits none"
        );
        // ... through the primary key, not a scan of the school's rows.
        let lookup = plan(
            &a,
            "SELECT 1 FROM user_profiles WHERE user_id = ?1 AND profile = ?2",
            params![school.id, "p2"],
        );
        assert!(
            lookup.contains("USING") && lookup.contains("user_id=? AND profile=?"),
            "{lookup}"
        );

        // Pages of 50 forward: every profile once, in numeric order (p2, p4, ..., p10000).
        let want: Vec<String> = (1..=5000).map(|i| format!("p{}", 2 * i)).collect();
        let mut seen = Vec::new();
        let mut page = a.owned_page(school.id, PageCursor::First, 50).unwrap();
        assert_eq!(page.previous, None);
        let mut pages = 1;
        loop {
            assert!(page.ids.len() == 50, "page {pages}: {}", page.ids.len());
            seen.extend(page.ids.iter().cloned());
            let Some(next) = page.next.clone() else { break };
            page = a
                .owned_page(school.id, PageCursor::After(&next), 50)
                .unwrap();
            assert_eq!(page.previous.as_deref(), Some(page.ids[0].as_str()));
            pages += 1;
        }
        assert_eq!((pages, seen.len()), (100, 5000));
        assert_eq!(seen, want);
        // And back from the last page to the first.
        let mut back = Vec::new();
        loop {
            back.splice(0..0, page.ids.iter().cloned());
            let Some(previous) = page.previous.clone() else {
                break;
            };
            page = a
                .owned_page(school.id, PageCursor::Before(&previous), 50)
                .unwrap();
            assert_eq!(page.next.as_deref(), Some(page.ids[49].as_str()));
        }
        assert_eq!(back, want);
        // A cursor that is no owned id still pages (the next ids after it); past the end,
        // nothing; another owner's pages hold only theirs.
        let mid = a
            .owned_page(school.id, PageCursor::After("p5001"), 3)
            .unwrap();
        assert_eq!(mid.ids, ["p5002", "p5004", "p5006"]);
        assert_eq!(
            a.owned_page(school.id, PageCursor::After("p10000"), 50)
                .unwrap(),
            OwnedPage::default()
        );
        assert_eq!(
            a.owned_page(parent.id, PageCursor::First, 50).unwrap().ids,
            ["p3", "p5"]
        );
        // Each page is a walk of `user_profiles_order`, with no sort of the 5,000.
        let walk = plan(
            &a,
            "SELECT profile FROM user_profiles WHERE user_id = ?1
             AND (length(profile), profile) > (length(?2), ?2)
             ORDER BY length(profile), profile LIMIT ?3",
            params![school.id, "p5000", 51],
        );
        assert!(
            walk.contains("user_profiles_order") && !walk.contains("TEMP B-TREE"),
            "{walk}"
        );

        // The accounts page: the first ten of each and the count.
        let (users, _) = a.users(0, 10).unwrap();
        let row = users.iter().find(|u| u.user.id == school.id).unwrap();
        assert_eq!((row.profiles.len(), row.owned), (LISTED_PROFILES, 5000));
        assert_eq!(row.profiles[..3], want[..3]);
    }
}
