//! The central's review: the report queue in a reviewer's order, decisions that publish,
//! and reverts that unpublish.
//!
//! - `GET /v1/reports?status=open&category=&sort=count|last_seen|first_seen&limit=&offset=`:
//!   with `sort` or `offset`, reports in that order (see [`SortBy`]); without, newest first
//!   with `after_id` paging, as before; `category` keeps one category's reports.
//! - `POST /v1/reports/{id}/decision` `{"decision": "accept"|"reject", "category": "...",
//!   "note": "...", "reviewer": "..."}`: accepting a harmful-site report publishes its name
//!   to `category` (default: the report's); accepting a "blocked by mistake" report (kind
//!   `mistake`), or accepting with `"category": "allow"`, publishes it to the allowlist.
//!   Unknown report 404, already decided 409, unknown category 400 (nothing changes).
//!   The legacy body `{"status": "accepted"|"rejected", "note": ...}` is still read.
//! - `POST /v1/reports/{id}/revert` `{"note": "...", "reviewer": "..."}`: reverts the
//!   active decision (an accepted name leaves its list); none to revert: 409.
//!
//! Answers are the report (as `GET` lists it) with `published` (the decision as the
//! published store recorded it: list, serial, actor, time, note) or, for a revert,
//! `reverted` and `audit` (every decision on the report, reverts included).
//!
//! Who decided is the credential the request came with (the admin token: `admin`),
//! followed by the `reviewer` the request names, e.g. `admin:alice`; with the time and the
//! note, in the published store's decisions (the audit trail).
//! Without `[publish]` decisions are recorded in the report store only.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::reports::{
    Kind, ListQuery, MAX_NOTE_CHARS, NewDecision, ReportError, ReportStore, SortBy, Status,
};
use crate::publish::store::decide::{Audit, DecisionRecord};
use crate::publish::{ALLOW_LIST, PublishedStore, StoreError};

/// What a revert gives back: the report (open again), the reverted decision as the
/// published store recorded it (`None` without `[publish]`), and the report's audit trail.
pub type RevertOutcome = (
    super::reports::Report,
    Option<DecisionRecord>,
    Vec<DecisionRecord>,
);

/// The categories a decision may name (the configured ones, read per request: a config
/// reload changes them).
pub type Categories = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// The review routes' state.
pub struct ReviewApi {
    /// The reports.
    pub reports: Arc<Mutex<ReportStore>>,
    /// Where accepted names are published (`None` without `[publish]`).
    pub published: Option<Arc<PublishedStore>>,
    /// The known categories.
    pub categories: Categories,
}

/// `GET /v1/reports`, `POST /v1/reports/{id}/decision`, `POST /v1/reports/{id}/revert`
/// (behind the admin token; `POST /v1/reports` stays the caller's).
pub fn router<S: Clone + Send + Sync + 'static>(api: Arc<ReviewApi>) -> axum::Router<S> {
    axum::Router::new()
        .route("/v1/reports", get(list))
        .route("/v1/reports/{id}/decision", post(decide))
        .route("/v1/reports/{id}/revert", post(revert))
        .with_state(api)
}

/// The credential behind review requests (one admin token).
const ACTOR: &str = "admin";
/// Longest `reviewer` name.
const MAX_REVIEWER: usize = 64;

#[derive(Deserialize)]
struct ListParams {
    status: Option<Status>,
    category: Option<String>,
    sort: Option<SortBy>,
    limit: Option<usize>,
    offset: Option<usize>,
    after_id: Option<i64>,
}

/// A reviewer's verdict on a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Publish the name (to the category, or to the allowlist for a mistake report).
    Accept,
    /// Publish nothing.
    Reject,
}

/// One decision on one report, as the review API and the console both give it.
#[derive(Clone, Debug)]
pub struct Decision {
    /// Accept or reject.
    pub verdict: Verdict,
    /// The list an accept publishes to (default: the report's category; `allow`: the
    /// allowlist); a reject may name one, which must be known.
    pub category: Option<String>,
    /// Why (control characters become spaces; at most [`MAX_NOTE_CHARS`]).
    pub note: Option<String>,
    /// Who: `admin:<reviewer>` from the API, `console:<account>` from the console.
    pub actor: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: Option<Verdict>,
    /// The legacy spelling (`accepted`, `rejected`).
    status: Option<Status>,
    category: Option<String>,
    note: Option<String>,
    reviewer: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RevertBody {
    note: Option<String>,
    reviewer: Option<String>,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// A refused or failed review step: the HTTP status the API answers with and why (the
/// console turns the status into its own message).
#[derive(Debug)]
pub struct Failed {
    /// 400 (bad input), 404 (no such report), 409 (already decided / nothing to revert),
    /// 500 (a store failed).
    pub status: StatusCode,
    /// The message.
    pub message: String,
}

impl Failed {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Failed {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for Failed {
    fn into_response(self) -> Response {
        error(self.status, self.message)
    }
}

impl From<ReportError> for Failed {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::NotFound { .. } => Failed::new(StatusCode::NOT_FOUND, e.to_string()),
            e if e.is_client_error() => Failed::new(StatusCode::BAD_REQUEST, e.to_string()),
            e => {
                tracing::error!(error = %e, "review: report store failed");
                Failed::new(StatusCode::INTERNAL_SERVER_ERROR, "the report store failed")
            }
        }
    }
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Self {
        if e.is_conflict() {
            Failed::new(StatusCode::CONFLICT, e.to_string())
        } else if e.is_client_error() {
            Failed::new(StatusCode::BAD_REQUEST, e.to_string())
        } else {
            tracing::error!(error = %e, "review: published store failed");
            Failed::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the published store failed",
            )
        }
    }
}

/// Runs `op` on the report store (locked) on a blocking thread.
///
/// # Errors
/// `op`'s, or 500 when the lock is poisoned or the thread panicked.
pub async fn on_reports<T: Send + 'static>(
    api: &Arc<ReviewApi>,
    op: impl FnOnce(&ReviewApi, &mut ReportStore) -> Result<T, Failed> + Send + 'static,
) -> Result<T, Failed> {
    let api = api.clone();
    tokio::task::spawn_blocking(move || {
        let mut reports = api
            .reports
            .lock()
            .map_err(|_| Failed::new(StatusCode::INTERNAL_SERVER_ERROR, "report store poisoned"))?;
        op(&api, &mut reports)
    })
    .await
    .map_err(|e| Failed::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

async fn on_blocking(
    api: &Arc<ReviewApi>,
    op: impl FnOnce(&ReviewApi, &mut ReportStore) -> Result<serde_json::Value, Failed> + Send + 'static,
) -> Response {
    match on_reports(api, op).await {
        Ok(body) => Json(body).into_response(),
        Err(failed) => failed.into_response(),
    }
}

async fn list(
    State(api): State<Arc<ReviewApi>>,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let Query(p) = match query {
        Ok(q) => q,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    if p.after_id.is_some() && (p.sort.is_some() || p.offset.is_some()) {
        return error(
            StatusCode::BAD_REQUEST,
            "page with after_id (newest first) or with sort and offset, not both",
        );
    }
    on_blocking(&api, move |_, reports| {
        let found = match (p.sort, p.offset) {
            (None, None) => reports.list(&ListQuery {
                status: p.status,
                limit: p.limit,
                after_id: p.after_id,
                category: p.category,
            })?,
            (sort, offset) => reports.list_sorted(
                p.status,
                p.category.as_deref(),
                sort.unwrap_or(SortBy::FirstSeen),
                p.limit,
                offset.unwrap_or(0),
            )?,
        };
        Ok(json!({ "reports": found }))
    })
    .await
}

/// `admin`, or `admin:<reviewer>`; the reviewer's name checked.
fn actor(reviewer: Option<&str>) -> Result<String, Failed> {
    match reviewer.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(ACTOR.to_owned()),
        Some(r)
            if r.len() <= MAX_REVIEWER
                && r.chars()
                    .all(|c| c.is_alphanumeric() || "._-@ ".contains(c)) =>
        {
            Ok(format!("{ACTOR}:{r}"))
        }
        Some(_) => Err(Failed::new(
            StatusCode::BAD_REQUEST,
            format!("invalid reviewer: at most {MAX_REVIEWER} letters, digits, spaces and . _ - @"),
        )),
    }
}

/// The note for the audit: control characters become spaces, trimmed, at most
/// [`MAX_NOTE_CHARS`] (checked before anything is written).
fn note(raw: Option<&str>) -> Result<Option<String>, Failed> {
    let Some(raw) = raw else { return Ok(None) };
    let clean: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.trim();
    if clean.chars().count() > MAX_NOTE_CHARS {
        return Err(Failed::new(
            StatusCode::BAD_REQUEST,
            format!("invalid note: longer than {MAX_NOTE_CHARS} characters"),
        ));
    }
    Ok((!clean.is_empty()).then(|| clean.to_owned()))
}

/// The report as JSON (its fields at the top, as before publishing existed), with `key`
/// added.
fn with(report: super::reports::Report, key: &str, value: serde_json::Value) -> serde_json::Value {
    let mut body = json!(report);
    body[key] = value;
    body
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn decide(
    State(api): State<Arc<ReviewApi>>,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<DecisionBody>, JsonRejection>,
) -> Response {
    let Ok(Path(id)) = id else {
        return error(StatusCode::BAD_REQUEST, "the report id is a number");
    };
    let body = match body {
        Ok(Json(b)) => b,
        Err(rejection) => {
            let status = match rejection.status() {
                s @ (StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE) => s,
                _ => StatusCode::BAD_REQUEST,
            };
            return error(status, rejection.body_text());
        }
    };
    let verdict = match (body.decision, body.status) {
        (Some(v), None) => v,
        (None, Some(Status::Accepted)) => Verdict::Accept,
        (None, Some(Status::Rejected)) => Verdict::Reject,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "give \"decision\": \"accept\" or \"reject\"",
            );
        }
    };
    on_blocking(&api, move |api, reports| {
        let decision = Decision {
            verdict,
            category: body.category,
            note: body.note,
            actor: actor(body.reviewer.as_deref())?,
        };
        let (report, record) = decide_report(api, reports, id, decision)?;
        Ok(with(report, "published", json!(record)))
    })
    .await
}

/// Decides report `id`: the one decision path (the review API and the console). On a
/// central an accept publishes the name (to its category, or to the allowlist for a
/// "blocked by mistake" report) and every decision is audited in the published store;
/// then the report store records it. Returns the report and the published record.
///
/// # Errors
/// 404 unknown report, 409 already decided, 400 bad note or unknown category (nothing
/// changes), 500 a store failed.
pub fn decide_report(
    api: &ReviewApi,
    reports: &mut ReportStore,
    id: i64,
    decision: Decision,
) -> Result<(super::reports::Report, Option<DecisionRecord>), Failed> {
    let Decision {
        verdict,
        category,
        note: raw_note,
        actor,
    } = decision;
    let note = note(raw_note.as_deref())?;
    let report = reports.get(id)?.ok_or(ReportError::NotFound { id })?;
    if report.status != Status::Open {
        return Err(Failed::new(
            StatusCode::CONFLICT,
            format!(
                "report {id} was already decided ({}); revert it first \
                 (POST /v1/reports/{id}/revert)",
                report.status
            ),
        ));
    }
    let audit = Audit {
        actor: &actor,
        note: note.as_deref(),
        at: now(),
    };
    let (status, record) = match verdict {
        Verdict::Accept => {
            let list = target_list(api, reports, id, &report.category, category)?;
            let record = match &api.published {
                Some(store) => Some(store.accept(id, &list, &report.name, audit)?),
                None => None,
            };
            (Status::Accepted, record)
        }
        Verdict::Reject => {
            if let Some(c) = &category {
                check_category(api, c)?;
            }
            let record = match &api.published {
                Some(store) => Some(store.reject(id, &report.name, audit)?),
                None => None,
            };
            (Status::Rejected, record)
        }
    };
    let decided = NewDecision {
        status,
        note: note.clone(),
    };
    let report = reports.decide(id, &decided, SystemTime::now())?;
    tracing::info!(
        id,
        %status,
        name = %report.name,
        list = record.as_ref().and_then(|r| r.list.as_deref()).unwrap_or("-"),
        serial = record.as_ref().and_then(|r| r.serial).unwrap_or(0),
        actor = %actor,
        "report decided"
    );
    Ok((report, record))
}

/// Where an accepted report goes: the allowlist for a "blocked by mistake" report (or a
/// reviewer's `"category": "allow"`), else the category asked for (default: the
/// report's), which must be known.
fn target_list(
    api: &ReviewApi,
    reports: &ReportStore,
    id: i64,
    reported: &str,
    asked: Option<String>,
) -> Result<String, Failed> {
    // The seam with report kinds: a store without a `kind` column reads every report as
    // harmful.
    if reports.kind(id)? == Kind::Mistake || asked.as_deref() == Some(ALLOW_LIST) {
        return Ok(ALLOW_LIST.to_owned());
    }
    let category = asked.unwrap_or_else(|| reported.to_owned());
    check_category(api, &category)?;
    Ok(category)
}

fn check_category(api: &ReviewApi, category: &str) -> Result<(), Failed> {
    let known = (api.categories)();
    if category == ALLOW_LIST || known.iter().any(|c| c == category) {
        return Ok(());
    }
    Err(Failed::new(
        StatusCode::BAD_REQUEST,
        format!(
            "invalid category: `{category}` is not a configured category (known: {}, or \
             \"{ALLOW_LIST}\")",
            known.join(", ")
        ),
    ))
}

async fn revert(
    State(api): State<Arc<ReviewApi>>,
    id: Result<Path<i64>, PathRejection>,
    body: Option<Json<RevertBody>>,
) -> Response {
    let Ok(Path(id)) = id else {
        return error(StatusCode::BAD_REQUEST, "the report id is a number");
    };
    let body = body.map(|Json(b)| b).unwrap_or_default();
    on_blocking(&api, move |api, reports| {
        let actor = actor(body.reviewer.as_deref())?;
        let (report, record, trail) = revert_report(api, reports, id, &actor, body.note)?;
        let mut body = with(report, "reverted", json!(record));
        body["audit"] = json!(trail);
        Ok(body)
    })
    .await
}

/// Reverts report `id`'s active decision (an accepted name leaves its list) and opens
/// the report again: the one revert path. Returns the report, the reverted record and
/// every decision on the report (reverts included).
///
/// # Errors
/// 404 unknown report, 409 nothing to revert, 400 bad note, 500 a store failed.
pub fn revert_report(
    api: &ReviewApi,
    reports: &mut ReportStore,
    id: i64,
    actor: &str,
    raw_note: Option<String>,
) -> Result<RevertOutcome, Failed> {
    let note = note(raw_note.as_deref())?;
    let report = reports.get(id)?.ok_or(ReportError::NotFound { id })?;
    let record = match &api.published {
        Some(store) => {
            let audit = Audit {
                actor,
                note: note.as_deref(),
                at: now(),
            };
            Some(store.revert(id, audit)?)
        }
        None if report.status == Status::Open => {
            return Err(StoreError::NotDecided { report_id: id }.into());
        }
        None => None,
    };
    reports.set_status(id, Status::Open)?;
    let report = reports.get(id)?.ok_or(ReportError::NotFound { id })?;
    tracing::info!(id, name = %report.name, actor = %actor, "report decision reverted");
    let trail = match &api.published {
        Some(store) => store.decisions(id)?,
        None => Vec::new(),
    };
    Ok((report, record, trail))
}
