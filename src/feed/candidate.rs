//! What both network feeds share: their context, and handing a new copy to the compile
//! stage, which judges it (readable, few rejects, not much smaller than the stored copy)
//! in the same pass that compiles it.

use std::path::Path;
use std::sync::Arc;

use crate::feed::guard::Refusal;
use crate::feed::pipeline::{Installed, Pipeline};
use crate::feed::spec::{ListsConfig, SourceSpec};
use crate::feed::state::StateStore;

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

/// Offers source `index`'s new copy at `candidate`. It is gone afterwards: stored on
/// success, removed on refusal.
///
/// # Errors
/// The [`Refusal`] of the first guard that failed.
pub async fn offer(ctx: &FeedCtx, index: usize, candidate: &Path) -> Result<Installed, Refusal> {
    ctx.pipeline.submit(index, candidate.to_owned()).await
}
