//! The central's review: the report queue in a reviewer's order, decisions that publish,
//! and reverts that unpublish.
//!
//! - `GET /v1/reports?status=open&sort=count|last_seen|first_seen&limit=&offset=`: with
//!   `sort` or `offset`, reports in that order (see [`SortBy`]); without, newest first with
//!   `after_id` paging, as before.
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
use crate::publish::store::decide::Audit;
use crate::publish::{ALLOW_LIST, PublishedStore, StoreError};

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
    sort: Option<SortBy>,
    limit: Option<usize>,
    offset: Option<usize>,
    after_id: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    Accept,
    Reject,
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

/// A failed review step: the response to give.
struct Failed(Box<Response>);

impl Failed {
    fn new(response: Response) -> Self {
        Failed(Box::new(response))
    }
}

impl From<ReportError> for Failed {
    fn from(e: ReportError) -> Self {
        Failed::new(match e {
            ReportError::NotFound { .. } => error(StatusCode::NOT_FOUND, e.to_string()),
            e if e.is_client_error() => error(StatusCode::BAD_REQUEST, e.to_string()),
            e => {
                tracing::error!(error = %e, "review: report store failed");
                error(StatusCode::INTERNAL_SERVER_ERROR, "the report store failed")
            }
        })
    }
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Self {
        Failed::new(if e.is_conflict() {
            error(StatusCode::CONFLICT, e.to_string())
        } else if e.is_client_error() {
            error(StatusCode::BAD_REQUEST, e.to_string())
        } else {
            tracing::error!(error = %e, "review: published store failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the published store failed",
            )
        })
    }
}

async fn on_blocking(
    api: &Arc<ReviewApi>,
    op: impl FnOnce(&ReviewApi, &mut ReportStore) -> Result<serde_json::Value, Failed> + Send + 'static,
) -> Response {
    let api = api.clone();
    let done = tokio::task::spawn_blocking(move || {
        let mut reports = api.reports.lock().map_err(|_| {
            Failed::new(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "report store poisoned",
            ))
        })?;
        op(&api, &mut reports)
    })
    .await;
    match done {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(Failed(response))) => *response,
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
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
            })?,
            (sort, offset) => reports.list_sorted(
                p.status,
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
        Some(_) => Err(Failed::new(error(
            StatusCode::BAD_REQUEST,
            format!("invalid reviewer: at most {MAX_REVIEWER} letters, digits, spaces and . _ - @"),
        ))),
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
        return Err(Failed::new(error(
            StatusCode::BAD_REQUEST,
            format!("invalid note: longer than {MAX_NOTE_CHARS} characters"),
        )));
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
        let actor = actor(body.reviewer.as_deref())?;
        let note = note(body.note.as_deref())?;
        let report = reports.get(id)?.ok_or(ReportError::NotFound { id })?;
        if report.status != Status::Open {
            return Err(Failed::new(error(
                StatusCode::CONFLICT,
                format!(
                    "report {id} was already decided ({}); revert it first \
                     (POST /v1/reports/{id}/revert)",
                    report.status
                ),
            )));
        }
        let audit = Audit {
            actor: &actor,
            note: note.as_deref(),
            at: now(),
        };
        let (status, record) = match verdict {
            Verdict::Accept => {
                let list = target_list(api, reports, id, &report.category, body.category)?;
                let record = match &api.published {
                    Some(store) => Some(store.accept(id, &list, &report.name, audit)?),
                    None => None,
                };
                (Status::Accepted, record)
            }
            Verdict::Reject => {
                if let Some(c) = &body.category {
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
        Ok(with(report, "published", json!(record)))
    })
    .await
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
    Err(Failed::new(error(
        StatusCode::BAD_REQUEST,
        format!(
            "invalid category: `{category}` is not a configured category (known: {}, or \
             \"{ALLOW_LIST}\")",
            known.join(", ")
        ),
    )))
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
        let note = note(body.note.as_deref())?;
        let report = reports.get(id)?.ok_or(ReportError::NotFound { id })?;
        let record = match &api.published {
            Some(store) => {
                let audit = Audit {
                    actor: &actor,
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
        let mut body = with(report, "reverted", json!(record));
        body["audit"] = json!(trail);
        Ok(body)
    })
    .await
}
