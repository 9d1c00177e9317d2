//! The README stays current: every key the shipped configs use is in its config table, and
//! it names no dependency the server no longer runs on.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Dotted keys of a TOML document (`lists.state_dir`); array-of-table entries are keyed by
/// the array (`lists.source.path`).
fn keys(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => keys(&key, t, out),
            toml::Value::Array(items)
                if items.iter().all(|i| i.is_table()) && !items.is_empty() =>
            {
                for item in items {
                    if let toml::Value::Table(t) = item {
                        keys(&key, t, out);
                    }
                }
            }
            _ => out.push(key),
        }
    }
}

/// Whether a row of the README's config table documents `key`: its first cell names
/// `` `a.b` ``, or starts with `` `a. `` and names `` `b` ``, or is the `[a]` / `[[a]]` row
/// and names `` `b` `` anywhere.
fn documented(readme: &str, key: &str) -> bool {
    let (section, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    readme.lines().filter(|l| l.starts_with("| `")).any(|row| {
        let first = row.split('|').nth(1).unwrap_or("");
        let names_leaf = |cell: &str| cell.contains(&format!("`{leaf}`"));
        first.contains(&format!("`{key}`"))
            || (first.contains(&format!("`{section}.")) && names_leaf(first))
            || (first.contains(&format!("[{section}]")) && names_leaf(row))
    })
}

#[test]
fn every_key_of_the_shipped_configs_is_in_the_config_table() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut missing = Vec::new();
    for file in [
        "config/family.toml",
        "config/school.toml",
        "config/isp.toml",
        "deploy/kidsafe-dns.toml",
    ] {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        let mut found = Vec::new();
        keys("", &table, &mut found);
        for key in found {
            // Group and source entries are documented in their own sections.
            let own_section = key.starts_with("groups.") || key.starts_with("lists.source.");
            if !own_section && !documented(&readme, &key) {
                missing.push(format!("{file}: {key}"));
            }
        }
    }
    missing.dedup();
    assert!(
        missing.is_empty(),
        "not in the README's config table: {missing:#?}"
    );
}

#[test]
fn the_readme_names_no_runtime_dependency_we_dropped() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let cargo = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let runtime = cargo.split("[dev-dependencies]").next().unwrap_or_default();
    assert!(
        !runtime.contains("hickory-server"),
        "hickory-server is a runtime dependency again: update this test"
    );
    // hickory-server is the tests' upstream only: the README may say so, but nothing it
    // says about the running server may rest on it.
    for line in readme.lines().filter(|l| l.contains("hickory-server")) {
        assert!(
            line.contains("test") || line.contains("upstream"),
            "the README describes the server through hickory-server: {line}"
        );
    }
}
