//! What both network feeds do with a new copy: judge it on its own (readable, few
//! rejects, not much smaller than the stored copy), then hand it to the compile stage.

use std::path::Path;
use std::sync::Arc;

use crate::config::ListsConfig;
use crate::feed::guard::{Guard, Refusal, check_rejects, check_shrink, inspect};
use crate::feed::pipeline::{Installed, Pipeline};
use crate::feed::spec::SourceSpec;
use crate::feed::state::StateStore;
use crate::lists::source::SourceReport;

/// What the source tasks share.
#[derive(Debug)]
pub struct FeedCtx {
    /// `[lists]`, sources and feed settings.
    pub lists: ListsConfig,
    /// Status files.
    pub store: Arc<StateStore>,
    /// The compile stage.
    pub pipeline: Pipeline,
}

impl FeedCtx {
    /// Source `index`'s spec.
    pub fn spec(&self, index: usize) -> Option<&SourceSpec> {
        self.lists.feeds.sources.get(index)
    }
}

/// Judges source `index`'s new copy at `candidate` and, if it passes, compiles it in.
/// The candidate is gone afterwards: stored on success, removed on refusal.
///
/// # Errors
/// The [`Refusal`] of the first guard that failed.
pub async fn offer(
    ctx: &FeedCtx,
    index: usize,
    candidate: &Path,
) -> Result<(SourceReport, Installed), Refusal> {
    let result = judge(ctx, index, candidate).await;
    let report = match result {
        Ok(report) => report,
        Err(refusal) => {
            let _ = std::fs::remove_file(candidate);
            return Err(refusal);
        }
    };
    let installed = ctx.pipeline.submit(index, candidate.to_owned()).await?;
    Ok((report, installed))
}

async fn judge(ctx: &FeedCtx, index: usize, candidate: &Path) -> Result<SourceReport, Refusal> {
    let spec = ctx
        .spec(index)
        .ok_or_else(|| Refusal::new(Guard::Compile, format!("no source #{index}")))?;
    let (path, format) = (candidate.to_owned(), spec.list_format());
    let report = tokio::task::spawn_blocking(move || inspect(&path, format))
        .await
        .unwrap_or_else(|e| Err(Refusal::new(Guard::Unreadable, e.to_string())))?;
    let feeds = &ctx.lists.feeds;
    check_rejects(&report, feeds.max_reject_ratio)?;
    let stored = spec.list_path(&feeds.state_dir);
    let previous = stored
        .exists()
        .then(|| ctx.store.get(&spec.name).entries)
        .flatten();
    check_shrink(
        &format!("source {}", spec.name),
        report.parse.accepted,
        previous,
        feeds.min_keep_ratio,
        feeds.force,
    )?;
    Ok(report)
}
