//! `kidsafe-dns status`: what the serving list is and how each source is doing, read from
//! the files the running server keeps up to date (so it works beside a running server and
//! after it stopped). [`sources`] and [`pipeline`] are the same reading as data, for the
//! admin API's `/v1/status` and the console's status page.

use std::fmt::Write as _;

use serde::Serialize;

use crate::clock::now_unix;
use crate::feed::guard::Guard;
use crate::feed::install::canonical;
use crate::feed::spec::{ListsConfig, SourceKind};
use crate::feed::state::{
    ErrorRecord, PipelineState, SourceState, pipeline_path, read_json, status_path,
};
use crate::lists::manifest::{self, Manifest};

/// The status report for the configured `lists`, as text. `now` is the current Unix time
/// (for "ago").
pub fn render(lists: &ListsConfig, now: u64) -> String {
    let mut out = String::new();
    let manifest: Option<Manifest> = std::fs::read(manifest::path_for(&lists.compiled))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    // `write!` to a String cannot fail.
    match &manifest {
        Some(m) => {
            let _ = writeln!(
                out,
                "serving {}: serial {}, {} entries, built {}",
                lists.compiled.display(),
                m.serial,
                m.entries,
                when(Some(m.built_at_unix), now)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "serving {}: no compiled list",
                lists.compiled.display()
            );
        }
    }
    let pipeline = pipeline(lists);
    let _ = writeln!(
        out,
        "compiles from feeds: {} installed, last {}; refused: {}",
        pipeline.installs,
        when(pipeline.last_install_unix, now),
        counters(&pipeline.refused)
    );
    if let Some(e) = &pipeline.last_error {
        let _ = writeln!(out, "  last refused compile: {}", error(e, now));
    }
    for source in sources(lists, manifest.as_ref()) {
        let s = &source.state;
        let _ = writeln!(
            out,
            "\n{} ({} {}) category {}",
            source.name,
            source.kind,
            source.origin,
            source.category.as_deref().unwrap_or("allowlist")
        );
        let _ = writeln!(
            out,
            "  last success: {}; last check: {}",
            when(s.last_success_unix, now),
            when(s.last_check_unix, now)
        );
        let mut version = Vec::new();
        if let Some(serial) = s.serial {
            version.push(format!("serial {serial}"));
        }
        if let Some(etag) = &s.etag {
            version.push(format!("etag {etag}"));
        }
        if let Some(lm) = &s.last_modified {
            version.push(format!("last-modified {lm}"));
        }
        if version.is_empty() {
            version.push("-".into());
        }
        let entries = s.entries.map_or("-".into(), |n| n.to_string());
        let _ = writeln!(
            out,
            "  version: {}; entries: {entries}; updates: {}; unchanged polls: {}",
            version.join(", "),
            s.updates,
            s.unchanged
        );
        let last_error = s
            .last_error
            .as_ref()
            .map_or_else(|| "none".into(), |e| error(e, now));
        let _ = writeln!(out, "  last error: {last_error}");
        let _ = writeln!(out, "  refused: {}", counters(&s.refused));
    }
    out
}

/// One configured source and what its status file (or, for a `path` source, the serving
/// manifest) says about it.
#[derive(Clone, Debug, Serialize)]
pub struct SourceStatus {
    /// `[[lists.source]]`'s name.
    pub name: String,
    /// `path`, `url` or `rpz`.
    pub kind: &'static str,
    /// The file, the URL, or the zone and its primary.
    pub origin: String,
    /// Its category; `None` for an allowlist.
    pub category: Option<String>,
    /// Entries, versions, last success and error, refusals per guard.
    pub state: SourceState,
}

/// Every configured source of `lists`, in config order, from its status file; a `path`
/// source without one is filled in from `serving` (the manifest of the list serving).
pub fn sources(lists: &ListsConfig, serving: Option<&Manifest>) -> Vec<SourceStatus> {
    lists
        .feeds
        .sources
        .iter()
        .map(|spec| {
            let mut state: SourceState =
                read_json(&status_path(&lists.feeds.state_dir, &spec.name));
            if let (SourceKind::Path(path), Some(m)) = (&spec.kind, serving) {
                from_manifest(&mut state, path, m);
            }
            SourceStatus {
                name: spec.name.clone(),
                kind: spec.kind.label(),
                origin: spec.kind.origin(),
                category: spec.category.clone(),
                state,
            }
        })
        .collect()
}

/// The compile stage's status file: installs, the last refused compile, refusals per
/// guard (a `path` source's shrink is judged here, on the compiled list as a whole).
pub fn pipeline(lists: &ListsConfig) -> PipelineState {
    read_json(&pipeline_path(&lists.feeds.state_dir))
}

/// A `path` source has no task that records it: when its status file says nothing (the
/// list was compiled by `kidsafe-dns compile`, or before status files existed), the
/// serving manifest tells when it was compiled in and what it yielded.
fn from_manifest(s: &mut SourceState, path: &std::path::Path, m: &Manifest) {
    let path = canonical(path);
    let Some(rec) = m.sources.iter().find(|r| canonical(&r.path) == path) else {
        return;
    };
    s.last_success_unix = s.last_success_unix.or(Some(m.built_at_unix));
    s.last_check_unix = s.last_check_unix.or(Some(m.built_at_unix));
    s.entries = s.entries.or(Some(rec.accepted));
}

/// Prints [`render`] for the current time.
pub fn print(lists: &ListsConfig) {
    print!("{}", render(lists, now_unix()));
}

fn counters(map: &std::collections::BTreeMap<String, u64>) -> String {
    Guard::ALL
        .iter()
        .map(|g| {
            format!(
                "{} {}",
                g.as_str(),
                map.get(g.as_str()).copied().unwrap_or(0)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn error(e: &ErrorRecord, now: u64) -> String {
    format!("{} [{}] {}", when(Some(e.at_unix), now), e.guard, e.message)
}

/// `2026-05-01T10:00:00Z (12s ago)`, or `never`.
fn when(at: Option<u64>, now: u64) -> String {
    let Some(at) = at else {
        return "never".into();
    };
    let stamp = i64::try_from(at)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(
            || at.to_string(),
            |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
    let ago = now.saturating_sub(at);
    let ago = match ago {
        0..120 => format!("{ago}s"),
        120..7200 => format!("{}m", ago / 60),
        7200..172_800 => format!("{}h", ago / 3600),
        _ => format!("{}d", ago / 86_400),
    };
    format!("{stamp} ({ago} ago)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_well() {
        assert_eq!(when(None, 5), "never");
        assert_eq!(when(Some(0), 30), "1970-01-01T00:00:00Z (30s ago)");
        assert!(when(Some(0), 7200).ends_with("(2h ago)"));
    }
}
