//! `../shared/data`: real public lists beside the repository, read by a few tests.
//!
//! When the folder is absent those tests are marked ignored by `build.rs` (so `cargo test`
//! lists them as ignored, with the reason). When it is there they must be able to read it:
//! with `KIDSAFE_REQUIRE_SHARED_DATA=1` (which `.ci/run` sets when the folder exists) a
//! folder that cannot be read fails the test instead of skipping it. Also included by the
//! library's own unit tests (`#[path]`), so there is one rule for both.

use std::path::{Path, PathBuf};

/// The variable that makes the data required.
pub const REQUIRE_ENV: &str = "KIDSAFE_REQUIRE_SHARED_DATA";

/// `../shared/data`, if the tests can use it (see [`usable`]).
///
/// # Panics
/// It is required (`KIDSAFE_REQUIRE_SHARED_DATA=1`) but absent or unreadable.
pub fn shared_data() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let required = std::env::var_os(REQUIRE_ENV).is_some_and(|v| v == "1");
    usable(&dir, required)
}

/// `dir` when its `MANIFEST.tsv` can be read; otherwise `None` with a notice on stderr, or,
/// when `required`, a panic saying what is wrong.
///
/// # Panics
/// `required` and the manifest cannot be read.
pub fn usable(dir: &Path, required: bool) -> Option<PathBuf> {
    let manifest = dir.join("MANIFEST.tsv");
    match std::fs::read_to_string(&manifest) {
        Ok(_) => Some(dir.to_owned()),
        Err(e) if required => panic!(
            "{REQUIRE_ENV}=1 but {} cannot be read ({e}): the real-list tests need the \
             folder readable (check its permissions, or that the copy is complete), or \
             unset {REQUIRE_ENV} to let them skip",
            manifest.display()
        ),
        Err(e) => {
            eprintln!(
                "NOTICE: {} cannot be read ({e}); skipping the real-list test",
                manifest.display()
            );
            None
        }
    }
}
