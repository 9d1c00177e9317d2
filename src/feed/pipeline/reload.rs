//! What a reload reports: the main list's outcome and the groups' own lists, which a
//! reload recompiles (each through the guards) and swaps in.

use super::{Ctx, Installed};
use crate::feed::guard::{Guard, Refusal};
use crate::feed::install::{build_group, group_needs_compile};
use crate::lists::manifest::Manifest;
use crate::lists::swap::Reloaded;

/// What a reload did, for the log and the `POST /v1/reload` reply.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReloadReport {
    /// Serial of the list serving after the reload.
    pub serial: u64,
    /// Its entries.
    pub entries: u64,
    /// `recompiled` (sources had changed), `reloaded` (a compiled list was dropped in),
    /// `unchanged`, or `refused` (a guard kept the list serving; see `refused`).
    pub list: &'static str,
    /// Why the new list was refused: `guard: message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// The groups' own lists (only those a group has).
    pub groups: Vec<GroupReport>,
}

/// What a reload did to one group's own list.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GroupReport {
    /// The group's name.
    pub group: String,
    /// Serial of its list serving after the reload.
    pub serial: u64,
    /// Its entries.
    pub entries: u64,
    /// `recompiled`, `unchanged` or `refused`.
    pub list: &'static str,
    /// Why the new list was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl ReloadReport {
    /// True when a guard refused the list or a group's list.
    pub fn any_refused(&self) -> bool {
        self.refused.is_some() || self.groups.iter().any(|g| g.refused.is_some())
    }
}

/// The main list's part of a reload: what the compile did, or, when nothing needed
/// compiling (`load_only`), the outcome of loading the compiled file again (a list dropped
/// in by a central `kidsafe-dns compile`).
pub(super) async fn reload_report(
    ctx: &Ctx,
    result: &Result<Option<(Installed, Manifest)>, Refusal>,
    load_only: bool,
) -> ReloadReport {
    let mut report = ReloadReport {
        serial: 0,
        entries: 0,
        list: "unchanged",
        refused: None,
        groups: Vec::new(),
    };
    let Some(live) = &ctx.live else {
        return report;
    };
    match result {
        Ok(Some(_)) => report.list = "recompiled",
        Ok(None) if load_only => {
            if let Ok(Reloaded::Swapped(_)) = live.reload().await {
                report.list = "reloaded";
            }
        }
        Ok(None) => {}
        Err(refusal) => {
            report.list = "refused";
            report.refused = Some(refusal.to_string());
        }
    }
    let list = live.current();
    report.serial = list.manifest().serial;
    report.entries = list.len() as u64;
    if report.list != "refused" {
        tracing::info!(
            list = report.list,
            serial = report.serial,
            entries = report.entries,
            "reload: the main list"
        );
    }
    report
}

/// Recompiles the groups' own lists whose files changed, each through the guards, and
/// swaps each in; logged with the group's name.
pub(super) async fn reload_groups(ctx: &Ctx, force: bool) -> Vec<GroupReport> {
    let groups = ctx.groups.load_full();
    let mut reports = Vec::with_capacity(groups.len());
    for g in groups.iter() {
        let name = g.group.name.clone();
        let target = g.live.path().to_owned();
        let mut list = "unchanged";
        let mut refused = None;
        if group_needs_compile(&g.group, &target) {
            let (lists, group, live) = (ctx.lists.clone(), g.group.clone(), g.live.clone());
            let built = tokio::task::spawn_blocking(move || {
                build_group(&lists, &group, &target, Some(&live.current()), force)
            })
            .await
            .unwrap_or_else(|e| Err(Refusal::new(Guard::Compile, format!("panicked: {e}"))));
            match built {
                Ok(_) => match g.live.reload().await {
                    Ok(_) => list = "recompiled",
                    Err(e) => {
                        refused = Some(Refusal::new(Guard::Compile, e.to_string()).to_string())
                    }
                },
                Err(refusal) => refused = Some(refusal.to_string()),
            }
        }
        let serving = g.live.current();
        match &refused {
            Some(error) => {
                list = "refused";
                tracing::error!(group = %name, %error, "group list refused; its current list keeps serving");
            }
            None if list == "recompiled" => tracing::info!(
                group = %name,
                serial = serving.manifest().serial,
                entries = serving.len(),
                "group list recompiled and swapped in"
            ),
            None => {}
        }
        reports.push(GroupReport {
            group: name,
            serial: serving.manifest().serial,
            entries: serving.len() as u64,
            list,
            refused,
        });
    }
    reports
}
