//! Temporary exceptions and pauses of a profile (`/v1/profiles/{id}/exceptions`,
//! `/v1/profiles/{id}/pause`) over [`crate::exceptions::ExceptionStore`]. The bearer token
//! check is the admin router's. A profile is known when the serving policy or the profile
//! store has it (a profile just created is known at once; its exceptions apply with it).
//!
//! - `POST .../exceptions` `{"service": "youtube", "minutes": 60}`, `{"name":
//!   "example.org", "minutes": 60}` or `{"pause": true, "minutes": 30}` → 201 with the
//!   exception (`id`, `until` as RFC 3339 UTC);
//! - `POST .../pause` `{"minutes": 30}`: the same as `{"pause": true, ...}`;
//! - `GET .../exceptions`: those in force; `DELETE .../exceptions/{eid}`: revoke (404 when
//!   none by that id).

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::exceptions::{Exception, ExceptionError, ExceptionStore, Target};
use crate::policy::decide::Policy;

/// What the routes read and write.
pub struct ExceptionsApi {
    /// The one writer of exceptions.
    pub store: Arc<ExceptionStore>,
    /// The serving policy: which profiles and services exist.
    pub policy: Arc<ArcSwap<Policy>>,
    /// The profile store: a profile just created is there before the rebuilt policy
    /// serves it.
    pub profiles: Arc<std::sync::Mutex<crate::profiles::ProfileStore>>,
}

/// A `POST` body: exactly one of `service`, `name`, `pause`, and `minutes`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewException {
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    pause: bool,
    minutes: Option<i64>,
}

/// The routes, for the admin router to merge (inside its bearer token check).
pub fn router<S: Clone + Send + Sync + 'static>(api: Arc<ExceptionsApi>) -> axum::Router<S> {
    axum::Router::new()
        .route("/v1/profiles/{id}/exceptions", get(list).post(create))
        .route("/v1/profiles/{id}/exceptions/{eid}", delete(remove))
        .route("/v1/profiles/{id}/pause", post(pause))
        .with_state(api)
}

fn error(status: StatusCode, field: Option<&str>, message: impl Into<String>) -> Response {
    let mut body = json!({ "error": message.into() });
    if let Some(f) = field {
        body["field"] = json!(f);
    }
    (status, Json(body)).into_response()
}

/// The exception as JSON.
fn view(e: &Exception) -> Value {
    let mut v = json!({
        "id": e.id,
        "profile": e.profile,
        "until": e.until.to_string(),
        "until_unix": e.until.as_second(),
    });
    match &e.target {
        Target::Service(s) => v["service"] = json!(s),
        Target::Name(n) => v["name"] = json!(n),
        Target::Pause => v["pause"] = json!(true),
    }
    v
}

/// A 404 unless profile `id` exists: the serving policy has it, or the store does (a
/// profile created a moment ago, before the rebuilt policy serves it; its exception then
/// applies as soon as that policy does).
async fn unknown(api: &ExceptionsApi, id: &str) -> Option<Response> {
    if api.policy.load().index_of(id).is_some() {
        return None;
    }
    let (store, wanted) = (Arc::clone(&api.profiles), id.to_owned());
    let stored =
        tokio::task::spawn_blocking(move || store.lock().is_ok_and(|s| s.get(&wanted).is_ok()))
            .await
            .unwrap_or(false);
    if stored {
        return None;
    }
    Some(error(
        StatusCode::NOT_FOUND,
        None,
        format!("no profile {id:?}"),
    ))
}

fn store_error(e: ExceptionError) -> Response {
    match e {
        ExceptionError::Minutes(_) => {
            error(StatusCode::BAD_REQUEST, Some("minutes"), e.to_string())
        }
        other => {
            tracing::error!(error = %other, "exceptions not saved");
            error(StatusCode::INTERNAL_SERVER_ERROR, None, other.to_string())
        }
    }
}

/// A normalized name for a name exception: lowercase, no trailing dot, a plausible
/// host name.
fn normalize_name(name: &str) -> Option<String> {
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then_some(n)
}

/// Why [`ExceptionsApi::grant`] refused: the status, the field at fault and why.
#[derive(Debug)]
pub struct Refusal {
    /// 400, 404 or 500.
    pub status: StatusCode,
    /// The field at fault, if one is.
    pub field: Option<&'static str>,
    /// What is wrong.
    pub message: String,
}

impl Refusal {
    fn new(status: StatusCode, field: Option<&'static str>, message: impl Into<String>) -> Self {
        Refusal {
            status,
            field,
            message: message.into(),
        }
    }
}

impl ExceptionsApi {
    /// Grants profile `id` an exception for `minutes`: exactly one of `service` (a catalog
    /// id), `name` (a domain) or `pause`. The API's `POST .../exceptions` and the console
    /// both come here.
    ///
    /// # Errors
    /// [`Refusal`]: an unknown profile (404), a bad target or duration (400), the store
    /// failing (500); nothing changes then.
    pub async fn grant(
        &self,
        id: &str,
        service: Option<String>,
        name: Option<String>,
        pause: bool,
        minutes: Option<i64>,
    ) -> Result<Exception, Refusal> {
        if unknown(self, id).await.is_some() {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                None,
                format!("no profile {id:?}"),
            ));
        }
        let Some(minutes) = minutes else {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                Some("minutes"),
                "minutes is required (1 to 10080)",
            ));
        };
        let target = match (service, name, pause) {
            (Some(s), None, false) => {
                let policy = self.policy.load();
                if !policy.knows_service(&s) {
                    return Err(Refusal::new(
                        StatusCode::BAD_REQUEST,
                        Some("service"),
                        format!(
                            "unknown service `{s}`; known: {}",
                            policy.service_names().join(", ")
                        ),
                    ));
                }
                Target::Service(s)
            }
            (None, Some(n), false) => match normalize_name(&n) {
                Some(n) => Target::Name(n),
                None => {
                    return Err(Refusal::new(
                        StatusCode::BAD_REQUEST,
                        Some("name"),
                        format!("`{n}` is not a domain name"),
                    ));
                }
            },
            (None, None, true) => Target::Pause,
            _ => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    None,
                    "give exactly one of service, name or \"pause\": true",
                ));
            }
        };
        let (store, id) = (Arc::clone(&self.store), id.to_owned());
        match tokio::task::spawn_blocking(move || store.add(&id, target, minutes)).await {
            Ok(Ok(e)) => Ok(e),
            Ok(Err(ExceptionError::Minutes(m))) => Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                Some("minutes"),
                ExceptionError::Minutes(m).to_string(),
            )),
            Ok(Err(other)) => {
                tracing::error!(error = %other, "exceptions not saved");
                Err(Refusal::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                    other.to_string(),
                ))
            }
            Err(e) => Err(Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                e.to_string(),
            )),
        }
    }
}

async fn add(api: Arc<ExceptionsApi>, id: String, body: NewException) -> Response {
    match api
        .grant(&id, body.service, body.name, body.pause, body.minutes)
        .await
    {
        Ok(e) => (StatusCode::CREATED, Json(view(&e))).into_response(),
        Err(r) => error(r.status, r.field, r.message),
    }
}

/// The JSON body, or a 400 saying what is wrong with it.
fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            None,
            format!("bad JSON body: {e}"),
        ))
    })
}

async fn create(
    State(api): State<Arc<ExceptionsApi>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    match parse::<NewException>(&body) {
        Ok(b) => add(api, id, b).await,
        Err(r) => *r,
    }
}

async fn pause(
    State(api): State<Arc<ExceptionsApi>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Pause {
        minutes: Option<i64>,
    }
    match parse::<Pause>(&body) {
        Ok(p) => {
            let body = NewException {
                service: None,
                name: None,
                pause: true,
                minutes: p.minutes,
            };
            add(api, id, body).await
        }
        Err(r) => *r,
    }
}

async fn list(State(api): State<Arc<ExceptionsApi>>, Path(id): Path<String>) -> Response {
    if let Some(r) = unknown(&api, &id).await {
        return r;
    }
    let list: Vec<Value> = api.store.list(&id).iter().map(view).collect();
    Json(json!({ "exceptions": list })).into_response()
}

async fn remove(
    State(api): State<Arc<ExceptionsApi>>,
    Path((id, eid)): Path<(String, String)>,
) -> Response {
    if let Some(r) = unknown(&api, &id).await {
        return r;
    }
    let store = Arc::clone(&api.store);
    let (pid, e) = (id.clone(), eid.clone());
    match tokio::task::spawn_blocking(move || store.remove(&pid, &e)).await {
        Ok(Ok(true)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Ok(false)) => error(
            StatusCode::NOT_FOUND,
            None,
            format!("profile {id:?} has no exception {eid:?} in force"),
        ),
        Ok(Err(e)) => store_error(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_or_refused() {
        assert_eq!(
            normalize_name("Example.ORG.").as_deref(),
            Some("example.org")
        );
        assert!(normalize_name("").is_none());
        assert!(normalize_name("a..b").is_none());
        assert!(normalize_name("exa mple.org").is_none());
    }
}
