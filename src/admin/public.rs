//! The public lookup ("is this site safe for children?"): `/v1/check` without the token
//! when `[admin] public_check = true`, limited per address, answering in short: `listed`,
//! `not_listed` or `under_review` (an open report names it), with the categories of a
//! listed name. Never who reported, never a note, never a group's policy.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::check;
use super::limit::ReportLimiter;
use super::reports::ReportStore;
use crate::lists::swap::LiveBlocklist;
use crate::policy::decide::Policy;
use crate::publish::{ALLOW_LIST, PublishedStore};

/// What the public check reads.
pub struct PublicCheck {
    /// Checks per address per hour.
    pub limiter: ReportLimiter,
    /// The serving list.
    pub lists: Arc<LiveBlocklist>,
    /// The serving policy (for the shared list's verdict).
    pub policy: Arc<ArcSwap<Policy>>,
    /// Open reports make "under review".
    pub reports: Arc<Mutex<ReportStore>>,
    /// A central's published lists count as listed.
    pub published: Option<Arc<PublishedStore>>,
}

/// The public answer.
#[derive(Debug, Serialize)]
pub struct PublicAnswer {
    /// The host asked about, normalized.
    pub name: String,
    /// `listed`, `not_listed` or `under_review`.
    pub status: &'static str,
    /// The categories a listed name is in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

impl PublicCheck {
    /// Answers `name` (a host or a URL) for `peer`.
    pub async fn answer(self: Arc<Self>, name: Option<String>, peer: IpAddr) -> Response {
        if !self.limiter.allow(peer, Instant::now()) {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "too many checks from this address; try again later",
            );
        }
        let Some(input) = name.filter(|n| !n.trim().is_empty()) else {
            self.limiter.refund(peer);
            return error(StatusCode::BAD_REQUEST, "give ?name=example.com");
        };
        let target = match check::target(&input) {
            Ok(t) => t,
            Err(message) => {
                self.limiter.refund(peer);
                return error(StatusCode::BAD_REQUEST, message);
            }
        };
        let me = self.clone();
        let done = tokio::task::spawn_blocking(move || me.judge(target.name)).await;
        match done {
            Ok(Ok(answer)) => Json(answer).into_response(),
            Ok(Err(message)) => {
                tracing::error!(error = %message, "public check failed");
                error(StatusCode::INTERNAL_SERVER_ERROR, "the check failed")
            }
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }

    fn judge(&self, name: String) -> Result<PublicAnswer, String> {
        let list = self.lists.current();
        let report = check::check(&name, &list, &self.policy.load(), None)?;
        let mut categories = if report.listed {
            report.categories
        } else {
            Vec::new()
        };
        if let Some(store) = &self.published {
            let covering = store.lists_covering(&name).map_err(|e| e.to_string())?;
            // The published allowlist wins over the published categories, as on the edges.
            if !covering.iter().any(|l| l == ALLOW_LIST) {
                categories.extend(covering);
            }
        }
        categories.sort();
        categories.dedup();
        let status = if !categories.is_empty() {
            "listed"
        } else if self
            .reports
            .lock()
            .map_err(|_| "report store poisoned".to_owned())?
            .under_review(&name)
            .map_err(|e| e.to_string())?
        {
            "under_review"
        } else {
            "not_listed"
        };
        Ok(PublicAnswer {
            name,
            status,
            categories,
        })
    }
}
