//! Import arrows point one way (issue 13, "Seams"): no two source files import each other,
//! and the top-level modules form no cycle at all. `config` is a layer on top: it builds
//! the settings types that `answer`, `policy`, `feed` and the others own, and none of them
//! imports it back (the cycle answer/config/feed/lists/policy this used to allow is gone).
//!
//! The check reads `src/` as text: every `crate::…` and `super::…` path outside comments
//! and outside a trailing `#[cfg(test)] mod tests` is an arrow from its file to the file
//! that defines the longest prefix of the path. It is deliberately simple (no macro
//! expansion, no `use` aliases), which is enough for this codebase's plain `use` lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `server/udp.rs` → `[server, udp]`, `dns/mod.rs` → `[dns]`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code of a file without comments and without its trailing unit-test module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b` / `super::a` path in `code`, as segments after the prefix; a group
/// (`super::{fastpath, wire::encode}`) gives one path per member.
fn paths(code: &str) -> Vec<(bool, Vec<String>)> {
    let mut found = Vec::new();
    for (prefix, is_crate) in [("crate::", true), ("super::", false)] {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().last();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            for segs in expand(rest) {
                found.push((is_crate, segs));
            }
        }
    }
    found
}

/// The paths spelled at the start of `text`: `a::b`, or `a::{b, c::d}` (nested groups too).
fn expand(text: &str) -> Vec<Vec<String>> {
    let text = text.trim_start();
    if let Some(group) = text.strip_prefix('{') {
        // Split the group's members at top-level commas, up to the matching brace.
        let mut depth = 0;
        let mut members = Vec::new();
        let mut start = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    members.push(&group[start..i]);
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    members.push(&group[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return members
            .into_iter()
            .flat_map(expand)
            .filter(|p| !p.is_empty())
            .collect();
    }
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    if end == 0 {
        return vec![Vec::new()];
    }
    let head = text[..end].to_owned();
    if head == "self" {
        return vec![Vec::new()];
    }
    match text[end..].strip_prefix("::") {
        Some(next) => expand(next)
            .into_iter()
            .map(|mut tail| {
                tail.insert(0, head.clone());
                tail
            })
            .collect(),
        None => vec![vec![head]],
    }
}

/// File → files it imports.
fn arrows() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(&src).unwrap();
            (module_of(rel), rel.display().to_string())
        })
        .collect();
    let mut arrows: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let me = module_of(rel);
        let name = rel.display().to_string();
        let text = std::fs::read_to_string(file).unwrap();
        for (is_crate, mut segs) in paths(&code(&text)) {
            let mut path = if is_crate {
                Vec::new()
            } else {
                // `super` of module a::b is a; each further `super` goes up one more.
                me[..me.len().saturating_sub(1)].to_vec()
            };
            while segs.first().is_some_and(|s| s == "super") {
                segs.remove(0);
                path.pop();
            }
            path.extend(segs);
            let target = (0..=path.len()).rev().find_map(|k| modules.get(&path[..k]));
            if let Some(target) = target
                && *target != name
            {
                arrows
                    .entry(name.clone())
                    .or_default()
                    .insert(target.clone());
            }
        }
    }
    arrows
}

fn top(file: &str) -> String {
    match module_of(Path::new(file)).first() {
        Some(m) => m.clone(),
        None => "lib".to_owned(),
    }
}

#[test]
fn no_two_files_import_each_other() {
    let arrows = arrows();
    let mut pairs = Vec::new();
    for (a, targets) in &arrows {
        for b in targets {
            if a < b && arrows.get(b).is_some_and(|t| t.contains(a)) {
                pairs.push(format!("{a} <-> {b}"));
            }
        }
    }
    assert!(pairs.is_empty(), "files importing each other: {pairs:#?}");
}

#[test]
fn top_level_modules_form_no_cycle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, targets) in arrows() {
        for b in targets {
            let (ta, tb) = (top(&a), top(&b));
            if ta != tb {
                graph.entry(ta).or_default().insert(tb);
            }
        }
    }
    // A module is in a cycle when it can reach itself.
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(m) = todo.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let cyclic: BTreeSet<String> = graph
        .keys()
        .filter(|m| reach(m).contains(*m))
        .cloned()
        .collect();
    assert!(
        cyclic.is_empty(),
        "top-level modules in an import cycle (a lower module imports one above it; move \
         the type it needs down, as the settings types moved out of config): {cyclic:#?}"
    );
}

#[test]
fn the_reader_finds_real_arrows() {
    // Guards the checker itself: arrows it must see, or it could pass by seeing none.
    let arrows = arrows();
    let has = |a: &str, b: &str| arrows.get(a).is_some_and(|t| t.contains(b));
    assert!(has("server/wire.rs", "server/fastpath.rs"));
    assert!(has("server/hitpath.rs", "dns/request.rs"));
    assert!(has("server/fastpath.rs", "dns/mod.rs"));
    // config on top: it reaches down to the settings types the modules own.
    assert!(has("config/mod.rs", "feed/spec.rs"));
    assert!(has("config/mod.rs", "policy/mod.rs"));
    assert!(has("config/raw.rs", "answer.rs"));
}
