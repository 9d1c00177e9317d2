//! `GET /v1/check?name=...`: "is this site safe for children?", answered from the list and
//! the policy that are serving right now, for every client group.

use serde::Serialize;

use crate::lists::normalize::normalize;
use crate::lists::rule::Scope;
use crate::lists::{Blocklist, Decision};
use crate::policy::decide::{Outcome, Policy};

/// The answer to a check.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    /// The name as asked.
    pub name: String,
    /// The name as matched (lowercase, A-labels, no trailing dot).
    pub normalized: String,
    /// Whether the shared list blocks the name in any category: the portal's answer.
    pub listed: bool,
    /// The categories it is listed in.
    pub categories: Vec<String>,
    /// The deciding rule of the shared list, if any.
    pub rule: Option<RuleInfo>,
    /// Serial of the list that judged it.
    pub list_serial: u64,
    /// What each client group gets now (schedules included).
    pub groups: Vec<GroupVerdict>,
}

/// A matched rule.
#[derive(Debug, Serialize)]
pub struct RuleInfo {
    /// The listed name.
    pub name: String,
    /// `block` or `allow`.
    pub action: &'static str,
    /// `exact` or `subdomains`.
    pub scope: &'static str,
}

/// One group's verdict.
#[derive(Debug, Serialize)]
pub struct GroupVerdict {
    /// The group.
    pub group: String,
    /// `blocked`, `filtered` (the group's deny list), `safesearch` or `allowed`.
    pub verdict: &'static str,
    /// Categories behind a block.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// The SafeSearch host the name is rewritten to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safesearch: Option<&'static str>,
}

/// Checks `name` against `list` and every group of `policy`.
///
/// # Errors
/// The name is not a valid host name; the reason says why.
pub fn check(name: &str, list: &Blocklist, policy: &Policy) -> Result<CheckReport, String> {
    let normalized = normalize(name.trim())
        .map_err(|reason| format!("not a valid host name ({reason})"))?
        .into_owned();
    let v = list.lookup(&normalized);
    let manifest = list.manifest();
    let names = |bits: u32| -> Vec<String> {
        manifest
            .category_names(bits)
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    let rule = v.rule.as_ref().map(|r| RuleInfo {
        name: r.name.clone(),
        action: if v.decision == Decision::Allowed {
            "allow"
        } else {
            "block"
        },
        scope: match r.scope {
            Scope::Exact => "exact",
            Scope::Subtree => "subdomains",
        },
    });
    let labels = || normalized.split('.').map(str::as_bytes);
    let groups = policy
        .groups()
        .iter()
        .map(|group| {
            let (verdict, categories, safesearch) = match policy.decide(group, list, labels) {
                Outcome::Blocked(v) => ("blocked", names(v.categories), None),
                Outcome::Filtered(_) => ("filtered", Vec::new(), None),
                Outcome::SafeSearch(target) => ("safesearch", Vec::new(), Some(target)),
                Outcome::Forward => ("allowed", Vec::new(), None),
            };
            GroupVerdict {
                group: group.name.clone(),
                verdict,
                categories,
                safesearch,
            }
        })
        .collect();
    Ok(CheckReport {
        name: name.to_owned(),
        listed: v.decision == Decision::Blocked,
        categories: names(v.categories),
        rule,
        list_serial: manifest.serial,
        normalized,
        groups,
    })
}
