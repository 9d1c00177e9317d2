//! Tests that read the real lists in `../shared/data` (beside the repository, not part of
//! it) are marked ignored when the folder is absent, so `cargo test` itself says they did
//! not run, and why: `test real_lists_compile_and_answer_as_expected ... ignored,
//! ../shared/data absent`. It does so by setting `cfg(shared_data_absent)`, which those
//! tests carry as `#[cfg_attr(shared_data_absent, ignore = "../shared/data absent")]`.
//!
//! With `KIDSAFE_REQUIRE_SHARED_DATA=1` (set by `.ci/run` when the folder exists) the cfg
//! is never set: the tests run, and fail with a clear message if they cannot read the data.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(shared_data_absent)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=KIDSAFE_REQUIRE_SHARED_DATA");
    let root = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default();
    let shared = Path::new(&root).join("../shared");
    let data = shared.join("data");
    // Look again when the folder comes or goes. Only paths that exist are watched: cargo
    // reruns a build script on every build while a watched path is missing.
    if data.is_dir() {
        println!("cargo::rerun-if-changed={}", data.display());
    } else if shared.is_dir() {
        println!("cargo::rerun-if-changed={}", shared.display());
    }
    let required = std::env::var_os("KIDSAFE_REQUIRE_SHARED_DATA").is_some_and(|v| v == "1");
    if !data.is_dir() && !required {
        println!("cargo::rustc-cfg=shared_data_absent");
    }
}
