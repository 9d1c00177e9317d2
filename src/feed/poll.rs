//! A `url` source's task: poll every `refresh` (± 10 %) with a conditional GET, and offer
//! each new, verified body to the pipeline.

use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::clock::now_unix;
use crate::feed::candidate::{FeedCtx, offer};
use crate::feed::guard::{Guard, Refusal};
use crate::feed::http::{FeedError, Fetched, HttpFeed, Validators};
use crate::feed::spec::{SourceSpec, UrlFeed, jittered};
use crate::feed::state::{candidate_path, write_atomic};
use crate::lists::manifest::SourceRecord;

/// Polls source `index` until `stop`; the first poll is immediate.
pub async fn run(ctx: Arc<FeedCtx>, index: usize, feed: UrlFeed, stop: CancellationToken) {
    let Some(spec) = ctx.spec(index).cloned() else {
        return;
    };
    let Some(http) = client(&ctx, &spec, &feed) else {
        return;
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = poll(&ctx, index, &spec, &http) => {}
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(jittered(feed.refresh)) => {}
        }
    }
}

/// The HTTP client of `feed`; a setup failure is recorded against the source.
pub fn client(ctx: &FeedCtx, spec: &SourceSpec, feed: &UrlFeed) -> Option<HttpFeed> {
    let built = HttpFeed::new(
        &feed.url,
        feed.minisign_pubkey.as_deref(),
        feed.max_bytes,
        feed.timeout,
    );
    built
        .map_err(|e| {
            ctx.store
                .refused(&spec.name, &Refusal::new(Guard::Download, e.to_string()))
        })
        .ok()
}

/// One conditional GET and what follows from it.
pub async fn poll(ctx: &FeedCtx, index: usize, spec: &SourceSpec, http: &HttpFeed) {
    let stored = spec.list_path(&ctx.lists.feeds.state_dir);
    let state = ctx.store.get(&spec.name);
    // Without a stored copy a 304 would leave us with nothing: ask unconditionally.
    let previous = if stored.exists() {
        state.validators()
    } else {
        Validators::default()
    };
    let started = Instant::now();
    let (body, validators) = match http.fetch(&previous).await {
        Ok(Fetched::NotModified) => {
            tracing::debug!(source = %spec.name, "feed not modified");
            ctx.store.update(&spec.name, |s| {
                s.last_check_unix = Some(now_unix());
                s.unchanged += 1;
            });
            return;
        }
        Ok(Fetched::New { body, validators }) => (body, validators),
        Err(e) => {
            let guard = match e {
                FeedError::Signature { .. } | FeedError::SignatureMissing { .. } => {
                    Guard::Signature
                }
                _ => Guard::Download,
            };
            ctx.store
                .refused(&spec.name, &Refusal::new(guard, e.to_string()));
            return;
        }
    };
    let candidate = candidate_path(&stored);
    let file = candidate.clone();
    let written = tokio::task::spawn_blocking(move || {
        let sha = hex::encode(Sha256::digest(&body));
        write_atomic(&file, &body, true).map(|()| sha)
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r);
    let sha = match written {
        Ok(sha) => sha,
        Err(e) => {
            let message = format!("cannot store the download in {}: {e}", candidate.display());
            ctx.store
                .refused(&spec.name, &Refusal::new(Guard::Compile, message));
            return;
        }
    };
    if stored.exists() && state.sha256.as_deref() == Some(sha.as_str()) {
        // Same bytes under new validators (a server without ETag support): nothing to do.
        let _ = std::fs::remove_file(&candidate);
        ctx.store.update(&spec.name, |s| {
            s.last_check_unix = Some(now_unix());
            s.unchanged += 1;
            s.etag = validators.etag;
            s.last_modified = validators.last_modified;
        });
        return;
    }
    match offer(ctx, index, &candidate).await {
        Ok(installed) => {
            let (entries, rejected) = counts(installed.record.as_ref());
            tracing::info!(
                source = %spec.name,
                entries,
                rejected,
                etag = validators.etag.as_deref().unwrap_or(""),
                serial = installed.serial,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "{}",
                if installed.serial == 0 {
                    "feed copy stored for the first compile"
                } else {
                    "feed update serving"
                }
            );
            ctx.store.update(&spec.name, |s| {
                let now = now_unix();
                s.last_success_unix = Some(now);
                s.last_check_unix = Some(now);
                s.etag = validators.etag;
                s.last_modified = validators.last_modified;
                s.sha256 = Some(sha);
                s.entries = Some(entries);
                s.rejected = Some(rejected);
                s.updates += 1;
            });
        }
        Err(refusal) => ctx.store.refused(&spec.name, &refusal),
    }
}

/// Entries and rejected lines of a compiled-in copy.
pub fn counts(record: Option<&SourceRecord>) -> (u64, u64) {
    record.map_or((0, 0), |r| (r.accepted, r.rejected.values().sum()))
}
