//! CSRF protection: every session has a random token, every console form carries it back
//! in a hidden `csrf` field, and a POST without the session's token is refused (compared in
//! constant time with the admin API's comparison). SameSite=Strict cookies are the first
//! line; this is the second, for browsers that do not honour SameSite.

use super::accounts::Session;

/// The form field that carries the token.
pub const FIELD: &str = "csrf";

/// Whether `form` carries `session`'s token.
pub fn valid(session: &Session, form: &[(String, String)]) -> bool {
    form.iter()
        .find(|(k, _)| k == FIELD)
        .is_some_and(|(_, v)| crate::admin::same(v.as_bytes(), session.csrf.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::accounts::{Role, User};

    #[test]
    fn only_the_sessions_token_passes() {
        let s = Session {
            user: User {
                id: 1,
                name: "a".into(),
                role: Role::Admin,
            },
            csrf: "abc123".into(),
        };
        assert!(valid(&s, &[(FIELD.into(), "abc123".into())]));
        assert!(!valid(&s, &[(FIELD.into(), "abc124".into())]));
        assert!(!valid(&s, &[(FIELD.into(), "abc12".into())]));
        assert!(!valid(&s, &[("other".into(), "abc123".into())]));
    }
}
