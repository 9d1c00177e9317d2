//! A config reload's new client groups: their own lists, compiled here so the pipeline
//! stays the one writer of the compiled lists, and the set the pipeline recompiles on
//! later reloads replaced by theirs.

use std::sync::Arc;

use crate::feed::guard::{Guard, Refusal};
use crate::feed::install::{build_group, group_list_path};
use crate::lists::load::Blocklist;
use crate::lists::swap::LiveBlocklist;
use crate::policy::GroupConfig;

use super::Ctx;

/// What a regroup gives back: per group of the new config (in its order), its own list
/// (`None` for a group without one); or the group whose list could not be built.
pub type Regrouped = Result<Vec<Option<Arc<LiveBlocklist>>>, (String, Refusal)>;

/// Own lists for `groups`: an unchanged group keeps its serving list (the same `Arc`; a
/// change to its list files is the pipeline's reload's to compile and report); a changed
/// or new one gets a new list compiled through the guards against the file there,
/// in a new `Arc`, so the policy serving until the swap keeps its own. A refused list with
/// one compiled before keeps that one (as at start). The pipeline's groups change only
/// when the caller hands them over ([`super::Pipeline::set_groups`]).
pub(super) async fn regroup(ctx: &Ctx, groups: Vec<GroupConfig>) -> Regrouped {
    let old = ctx.groups.load_full();
    // By id: a reload with many stored profiles must not search the list for each.
    let old: std::collections::HashMap<&str, &super::GroupList> =
        old.iter().map(|g| (g.group.id.as_str(), g)).collect();
    let mut lives = Vec::with_capacity(groups.len());
    for group in groups {
        if !group.has_own_lists() {
            lives.push(None);
            continue;
        }
        let before = old.get(group.id.as_str()).copied();
        let path = group_list_path(&ctx.lists.compiled, group.list_key());
        let same = before.is_some_and(|b| format!("{:?}", b.group) == format!("{group:?}"));
        let live = match before {
            // Its files may have changed: the reload after this one recompiles and reports
            // that, in this same list.
            Some(b) if same => b.live.clone(),
            _ => {
                let (lists, g, p) = (ctx.lists.clone(), group.clone(), path.clone());
                let serving = before.map(|b| b.live.current());
                let built = tokio::task::spawn_blocking(move || {
                    let old = serving.map(Ok).unwrap_or_else(|| Blocklist::open(&p).map(Arc::new));
                    let old = old.ok();
                    let built = build_group(&lists, &g, &p, old.as_deref(), false);
                    if let Err(refusal) = &built {
                        if old.is_none() {
                            return Err(refusal.clone());
                        }
                        tracing::error!(group = %g.name, error = %refusal, "group list refused; serving the one compiled before");
                    }
                    let list = Blocklist::open(&p)
                        .map_err(|e| Refusal::new(Guard::Compile, e.to_string()))?;
                    Ok(Arc::new(LiveBlocklist::new(list, p)))
                })
                .await
                .unwrap_or_else(|e| Err(Refusal::new(Guard::Compile, format!("panicked: {e}"))));
                built.map_err(|refusal| (group.name.clone(), refusal))?
            }
        };
        lives.push(Some(live));
    }
    Ok(lives)
}
