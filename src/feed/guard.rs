//! The checks a new list must pass before it may replace the serving one. Each refusal
//! names its [`Guard`]; the caller logs it, counts it in the status file and keeps the
//! current list.

use std::fmt;
use std::path::Path;

use crate::lists::parse::Format;
use crate::lists::source::{SourceError, SourceReport, read_source};

/// Which check refused an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Guard {
    /// HTTP error, transport failure, timeout, body over `max_bytes`, failed transfer.
    Download,
    /// The minisign signature is missing or does not verify.
    Signature,
    /// The body cannot be read (corrupt or truncated gzip) or has no valid entry.
    Unreadable,
    /// More rejected entries than `max_reject_ratio` allows.
    Rejects,
    /// Fewer entries than `min_keep_ratio` of the current list (and `force` is off).
    Shrink,
    /// Compiling, validating or installing the new list failed.
    Compile,
}

impl Guard {
    /// Every guard, in the order `status` prints them.
    pub const ALL: [Guard; 6] = [
        Guard::Download,
        Guard::Signature,
        Guard::Unreadable,
        Guard::Rejects,
        Guard::Shrink,
        Guard::Compile,
    ];

    /// The name used in logs and status files.
    pub fn as_str(self) -> &'static str {
        match self {
            Guard::Download => "download",
            Guard::Signature => "signature",
            Guard::Unreadable => "unreadable",
            Guard::Rejects => "rejects",
            Guard::Shrink => "shrink",
            Guard::Compile => "compile",
        }
    }
}

/// A refused update: which guard, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The guard that refused.
    pub guard: Guard,
    /// What it found, for people.
    pub message: String,
}

impl Refusal {
    /// A refusal by `guard`.
    pub fn new(guard: Guard, message: impl Into<String>) -> Self {
        Refusal {
            guard,
            message: message.into(),
        }
    }
}

impl std::error::Error for Refusal {}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.guard.as_str(), self.message)
    }
}

/// Reads a candidate list the way the compiler will (gzip, format sniffing), to count
/// its entries and rejects before anything is compiled.
///
/// # Errors
/// [`Guard::Unreadable`]: corrupt or truncated gzip, no valid entry.
pub fn inspect(path: &Path, format: Format) -> Result<SourceReport, Refusal> {
    read_source(path, format, &mut |_| {}).map_err(|e| {
        let message = match &e {
            SourceError::Empty { lines, .. } => {
                format!("the new copy has no valid entry ({lines} lines)")
            }
            other => other.to_string(),
        };
        Refusal::new(Guard::Unreadable, message)
    })
}

/// Refuses a list whose `rejected` entries exceed `max_ratio` of its entries (`accepted`
/// plus `rejected`; comments and rules a DNS filter cannot express do not count).
///
/// # Errors
/// [`Guard::Rejects`].
pub fn check_rejects(rejected: u64, accepted: u64, max_ratio: f64) -> Result<(), Refusal> {
    let total = rejected + accepted;
    if total > 0 && rejected as f64 > max_ratio * total as f64 {
        return Err(Refusal::new(
            Guard::Rejects,
            format!(
                "{rejected} of {total} entries rejected as invalid, over max_reject_ratio {max_ratio}: the wrong format or a damaged list"
            ),
        ));
    }
    Ok(())
}

/// Refuses `new` entries when they are fewer than `min_keep` of the `current` ones,
/// unless `force`. `what` names the list in the message.
///
/// # Errors
/// [`Guard::Shrink`].
pub fn check_shrink(
    what: &str,
    new: u64,
    current: Option<u64>,
    min_keep: f64,
    force: bool,
) -> Result<(), Refusal> {
    match current {
        Some(current) if !force && (new as f64) < min_keep * current as f64 => Err(Refusal::new(
            Guard::Shrink,
            format!(
                "{what} would shrink from {current} to {new} entries, under min_keep_ratio {min_keep}: if that is intended, reload with `POST /v1/reload?force=true` (or set lists.force = true for one update)"
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_guard() {
        assert!(check_shrink("x", 10, Some(100), 0.5, false).is_err());
        assert!(check_shrink("x", 10, Some(100), 0.5, true).is_ok());
        assert!(check_shrink("x", 50, Some(100), 0.5, false).is_ok());
        assert!(check_shrink("x", 1, None, 0.5, false).is_ok());
        let e = check_shrink("list adult", 1, Some(4), 0.5, false).unwrap_err();
        assert_eq!(e.guard, Guard::Shrink);
        assert!(e.message.contains("from 4 to 1"), "{e}");
    }

    #[test]
    fn reject_ratio_guard() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.txt");
        std::fs::write(&p, "# c\na.example\nb.example\na..b\n").unwrap();
        let r = inspect(&p, Format::Domains).unwrap();
        let (rejected, accepted) = (r.parse.rejected_total(), r.parse.accepted);
        assert_eq!((rejected, accepted), (1, 2));
        assert!(check_rejects(rejected, accepted, 0.5).is_ok());
        assert_eq!(
            check_rejects(rejected, accepted, 0.2).unwrap_err().guard,
            Guard::Rejects
        );
        std::fs::write(&p, "# only comments\n").unwrap();
        assert_eq!(
            inspect(&p, Format::Domains).unwrap_err().guard,
            Guard::Unreadable
        );
    }
}
