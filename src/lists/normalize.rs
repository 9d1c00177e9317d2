//! TEMPORARY placeholder, replaced by the parser work.
#![allow(missing_docs)]
use std::borrow::Cow;
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    EmptyName,
    EmptyLabel,
    LabelTooLong,
    NameTooLong,
    BadCharacter,
    IpAddress,
    BadIdn,
    NotUtf8,
    Malformed,
    Unsupported,
}
impl Reject {
    pub fn as_str(self) -> &'static str {
        "x"
    }
}
impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
pub fn normalize(name: &str) -> Result<Cow<'_, str>, Reject> {
    let n = name.strip_suffix('.').unwrap_or(name);
    if n.is_empty() {
        return Err(Reject::EmptyName);
    }
    if n.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.' || b == b'_'
    }) {
        Ok(Cow::Borrowed(n))
    } else {
        Ok(Cow::Owned(n.to_ascii_lowercase()))
    }
}
