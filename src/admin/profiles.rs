//! The profiles API (`/v1/profiles`, `/v1/identities`, `/v1/subscribers`, `/v1/audit`)
//! over [`crate::profiles::ProfileStore`]: JSON in and out, `ETag` on every profile and
//! `If-Match` required to change one (428 without, 412 when stale), errors as
//! `{"error": ..., "field": ...}`. The bearer token check is the admin router's; this
//! file adds a per-address write limit and body size limits.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use super::limit::ReportLimiter;
use crate::profiles::{
    BulkRow, DEFAULT_AUDIT_LIMIT, NewIdentity, Profile, ProfileError, ProfileSpec, ProfileStore,
};

/// Largest profile or identity body (allow and deny lists included).
const MAX_PROFILE_BODY: usize = 64 * 1024;
/// Largest bulk subscriber upload.
const MAX_BULK_BODY: usize = 8 * 1024 * 1024;
/// Writes accepted per client address per hour.
pub const WRITES_PER_HOUR: u32 = 10_000;
/// Who the audit log names for a write with the admin token (never the token itself).
const ACTOR: &str = "admin";

/// The API's state: the store (shared with whoever applies profiles to queries) and the
/// write limiter.
pub struct ProfilesApi {
    store: Arc<Mutex<ProfileStore>>,
    limiter: ReportLimiter,
}

impl ProfilesApi {
    /// The API over `store`.
    pub fn new(store: Arc<Mutex<ProfileStore>>) -> Self {
        ProfilesApi {
            store,
            limiter: ReportLimiter::new(WRITES_PER_HOUR),
        }
    }

    /// The store.
    pub fn store(&self) -> Arc<Mutex<ProfileStore>> {
        self.store.clone()
    }
}

/// The routes, for the admin router to merge (inside its bearer token check).
pub fn router<S: Clone + Send + Sync + 'static>(api: Arc<ProfilesApi>) -> axum::Router<S> {
    axum::Router::new()
        .route("/v1/profiles", get(list).post(create))
        .route(
            "/v1/profiles/{id}",
            get(read).put(replace).patch(patch).delete(remove),
        )
        .route(
            "/v1/profiles/{id}/identities",
            get(identities).post(add_identity),
        )
        .route("/v1/identities/{id}", delete(remove_identity))
        .route(
            "/v1/subscribers",
            get(subscribers)
                .put(set_subscriber_q)
                .delete(remove_subscriber_q),
        )
        .route(
            "/v1/subscribers/{prefix}",
            put(set_subscriber).delete(remove_subscriber),
        )
        .route("/v1/audit", get(audit))
        .layer(DefaultBodyLimit::max(MAX_PROFILE_BODY))
        .merge(
            axum::Router::new()
                .route("/v1/subscribers/bulk", post(bulk))
                .layer(DefaultBodyLimit::max(MAX_BULK_BODY)),
        )
        .with_state(api)
}

fn failure(status: StatusCode, message: String, field: Option<&str>) -> Response {
    let mut body = json!({ "error": message });
    if let Some(f) = field {
        body["field"] = json!(f);
    }
    (status, Json(body)).into_response()
}

/// The response for a store error: 400, 404, 409, 412, 428, 503 (PostgreSQL unreachable,
/// nothing changed), or 500 (logged, not echoed).
fn store_error(e: ProfileError) -> Response {
    let status = match &e {
        ProfileError::Invalid { .. } => StatusCode::BAD_REQUEST,
        ProfileError::NotFound { .. } => StatusCode::NOT_FOUND,
        ProfileError::Conflict { .. } => StatusCode::CONFLICT,
        ProfileError::PreconditionRequired { .. } => StatusCode::PRECONDITION_REQUIRED,
        ProfileError::Stale { .. } => StatusCode::PRECONDITION_FAILED,
        ProfileError::Unavailable { .. } => {
            tracing::warn!(error = %e, "profile store unreachable");
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => {
            tracing::error!(error = %e, "profile store failed");
            return failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the profile store failed".to_owned(),
                None,
            );
        }
    };
    failure(status, e.to_string(), e.field())
}

/// Runs `op` on the store on a blocking thread (SQLite syncs to disk).
async fn on_store<T: Send + 'static>(
    api: &ProfilesApi,
    op: impl FnOnce(&mut ProfileStore) -> Result<T, ProfileError> + Send + 'static,
) -> Result<T, Response> {
    let store = api.store.clone();
    let done = tokio::task::spawn_blocking(move || {
        let mut store = store.lock().map_err(|_| "profile store poisoned")?;
        Ok::<_, &str>(op(&mut store))
    })
    .await;
    match done {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(e))) => Err(store_error(e)),
        Ok(Err(e)) => Err(failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_owned(),
            None,
        )),
        Err(e) => Err(failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
            None,
        )),
    }
}

/// 429 when `peer` is over its write quota.
fn limited(api: &ProfilesApi, peer: SocketAddr) -> Option<Response> {
    (!api.limiter.allow(peer.ip(), Instant::now())).then(|| {
        failure(
            StatusCode::TOO_MANY_REQUESTS,
            "too many writes from this address; try again later".to_owned(),
            None,
        )
    })
}

/// A JSON body, or a 400 naming what is wrong with it.
fn json_value(body: &[u8]) -> Result<Value, ProfileError> {
    serde_json::from_slice(body)
        .map_err(|e| ProfileError::invalid("body", format!("not JSON: {e}")))
}

fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A profile with its `ETag`.
fn with_etag(status: StatusCode, profile: &Profile) -> Response {
    let mut r = (status, Json(profile)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", profile.version)) {
        r.headers_mut().insert(header::ETAG, v);
    }
    if status == StatusCode::CREATED
        && let Ok(v) = HeaderValue::from_str(&format!("/v1/profiles/{}", profile.id))
    {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

async fn list(State(api): State<Arc<ProfilesApi>>) -> Response {
    match on_store(&api, |s| s.list()).await {
        Ok(profiles) => Json(json!({ "profiles": profiles })).into_response(),
        Err(r) => r,
    }
}

async fn create(
    State(api): State<Arc<ProfilesApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    if let Some(r) = limited(&api, peer) {
        return r;
    }
    let spec = match json_value(&body).and_then(ProfileSpec::from_json) {
        Ok(s) => s,
        Err(e) => return store_error(e),
    };
    match on_store(&api, move |s| s.create(&spec, ACTOR)).await {
        Ok(p) => with_etag(StatusCode::CREATED, &p),
        Err(r) => r,
    }
}

async fn read(State(api): State<Arc<ProfilesApi>>, Path(id): Path<String>) -> Response {
    match on_store(&api, move |s| s.get(&id)).await {
        Ok(p) => with_etag(StatusCode::OK, &p),
        Err(r) => r,
    }
}

async fn replace(
    State(api): State<Arc<ProfilesApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = limited(&api, peer) {
        return r;
    }
    let value = match json_value(&body) {
        Ok(v) => v,
        Err(e) => return store_error(e),
    };
    let tag = if_match(&headers);
    let op = move |s: &mut ProfileStore| {
        // Read-only, unknown and stale are answered before the body is judged.
        s.get(&id)?;
        let spec = ProfileSpec::from_json(value)?;
        s.replace(&id, &spec, tag.as_deref(), ACTOR)
    };
    match on_store(&api, op).await {
        Ok(p) => with_etag(StatusCode::OK, &p),
        Err(r) => r,
    }
}

async fn patch(
    State(api): State<Arc<ProfilesApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = limited(&api, peer) {
        return r;
    }
    let value = match json_value(&body) {
        Ok(v) => v,
        Err(e) => return store_error(e),
    };
    let tag = if_match(&headers);
    match on_store(&api, move |s| s.patch(&id, &value, tag.as_deref(), ACTOR)).await {
        Ok(p) => with_etag(StatusCode::OK, &p),
        Err(r) => r,
    }
}

async fn remove(
    State(api): State<Arc<ProfilesApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = limited(&api, peer) {
        return r;
    }
    let tag = if_match(&headers);
    match on_store(&api, move |s| s.delete(&id, tag.as_deref(), ACTOR)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

async fn identities(State(api): State<Arc<ProfilesApi>>, Path(id): Path<String>) -> Response {
    match on_store(&api, move |s| s.identities(&id)).await {
        Ok(list) => Json(json!({ "identities": list })).into_response(),
        Err(r) => r,
    }
}

async fn add_identity(
    State(api): State<Arc<ProfilesApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(r) = limited(&api, peer) {
        return r;
    }
    let identity: NewIdentity =
        match serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&body)) {
            Ok(i) => i,
            Err(e) => {
                let path = e.path().to_string();
                let message = e.into_inner().to_string();
                let field = if path == "." {
                    message.split('`').nth(1).unwrap_or("body").to_owned()
                } else {
                    path
                };
                return failure(StatusCode::BAD_REQUEST, message, Some(&field));
            }
        };
    match on_store(&api, move |s| s.add_identity(&id, &identity, ACTOR)).await {
        Ok(i) => (StatusCode::CREATED, Json(i)).into_response(),
        Err(r) => r,
    }
}

async fn remove_identity(
    State(api): State<Arc<ProfilesApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = limited(&api, peer) {
        return r;
    }
    let Ok(id) = id.parse::<i64>() else {
        return failure(
            StatusCode::BAD_REQUEST,
            "an identity id is a number".to_owned(),
            Some("id"),
        );
    };
    match on_store(&api, move |s| s.delete_identity(id, ACTOR)).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

async fn subscribers(State(api): State<Arc<ProfilesApi>>) -> Response {
    match on_store(&api, |s| s.subscribers()).await {
        Ok(list) => Json(json!({ "subscribers": list })).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct PrefixQuery {
    prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriberBody {
    profile: String,
}

async fn set_subscriber(
    State(api): State<Arc<ProfilesApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(prefix): Path<String>,
    body: Bytes,
) -> Response {
    put_subscriber(api, peer, prefix, body).await
}

async fn set_subscriber_q(
    State(api): State<Arc<ProfilesApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<PrefixQuery>,
    body: Bytes,
) -> Response {
    match q.prefix {
        Some(prefix) => put_subscriber(api, peer, prefix, body).await,
        None => failure(
            StatusCode::BAD_REQUEST,
            "give the address or prefix in the path or as ?prefix=".to_owned(),
            Some("prefix"),
        ),
    }
}

async fn put_subscriber(
    api: Arc<ProfilesApi>,
    peer: SocketAddr,
    prefix: String,
    body: Bytes,
) -> Response {
    if let Some(r) = limited(&api, peer) {
        return r;
    }
    let body: SubscriberBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return failure(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"profile\": \"<id>\"}}: {e}"),
                Some("profile"),
            );
        }
    };
    match on_store(&api, move |s| {
        s.set_subscriber(&prefix, &body.profile, ACTOR)
    })
    .await
    {
        Ok((line, true)) => (StatusCode::CREATED, Json(line)).into_response(),
        Ok((line, false)) => Json(line).into_response(),
        Err(r) => r,
    }
}

async fn remove_subscriber(
    State(api): State<Arc<ProfilesApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(prefix): Path<String>,
) -> Response {
    drop_subscriber(api, peer, prefix).await
}

async fn remove_subscriber_q(
    State(api): State<Arc<ProfilesApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<PrefixQuery>,
) -> Response {
    match q.prefix {
        Some(prefix) => drop_subscriber(api, peer, prefix).await,
        None => failure(
            StatusCode::BAD_REQUEST,
            "give the address or prefix in the path or as ?prefix=".to_owned(),
            Some("prefix"),
        ),
    }
}

async fn drop_subscriber(api: Arc<ProfilesApi>, peer: SocketAddr, prefix: String) -> Response {
    if let Some(r) = limited(&api, peer) {
        return r;
    }
    match on_store(&api, move |s| s.delete_subscriber(&prefix, ACTOR)).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// The rows of a bulk upload: NDJSON (`{"prefix": ..., "profile": ...}` per line) when
/// the content type says JSON or the first row starts with `{`, else CSV `prefix,profile`
/// (a first line `prefix,profile` is a header). Empty lines and `#` comments are skipped.
fn bulk_rows(headers: &HeaderMap, body: &[u8]) -> Result<Vec<BulkRow>, ProfileError> {
    let bad = |line: usize, message: String| ProfileError::invalid(format!("line {line}"), message);
    let text = std::str::from_utf8(body)
        .map_err(|e| ProfileError::invalid("body", format!("not UTF-8: {e}")))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let json = content_type.contains("json")
        || (!content_type.contains("csv")
            && lines.first().is_some_and(|(_, l)| l.starts_with('{')));
    let mut rows = Vec::with_capacity(lines.len());
    for (line, l) in lines {
        if json {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Row {
                prefix: String,
                profile: String,
            }
            let row: Row = serde_json::from_str(l).map_err(|e| bad(line, e.to_string()))?;
            rows.push(BulkRow {
                line,
                prefix: row.prefix,
                profile: row.profile,
            });
        } else {
            let fields: Vec<&str> = l.split(',').map(str::trim).collect();
            if line == 1 && fields == ["prefix", "profile"] {
                continue;
            }
            let [prefix, profile] = fields[..] else {
                return Err(bad(
                    line,
                    format!("expected 2 fields (prefix,profile), found {}", fields.len()),
                ));
            };
            rows.push(BulkRow {
                line,
                prefix: prefix.to_owned(),
                profile: profile.to_owned(),
            });
        }
    }
    Ok(rows)
}

async fn bulk(
    State(api): State<Arc<ProfilesApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = limited(&api, peer) {
        return r;
    }
    let rows = match bulk_rows(&headers, &body) {
        Ok(rows) => rows,
        Err(e) => return store_error(e),
    };
    match on_store(&api, move |s| s.bulk_subscribers(&rows, ACTOR)).await {
        Ok(n) => Json(json!({ "set": n })).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<usize>,
    /// An entry id: the page holds older entries (the last id of the page before).
    before: Option<i64>,
}

async fn audit(
    State(api): State<Arc<ProfilesApi>>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (limit, before) = match query {
        Ok(Query(q)) => (q.limit.unwrap_or(DEFAULT_AUDIT_LIMIT), q.before),
        Err(e) => return failure(StatusCode::BAD_REQUEST, e.body_text(), Some("limit")),
    };
    match on_store(&api, move |s| s.audit_before(before, limit)).await {
        Ok(entries) => Json(json!({ "entries": entries })).into_response(),
        Err(r) => r,
    }
}
