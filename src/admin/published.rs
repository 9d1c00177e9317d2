//! The public feed edges follow: `GET /v1/published/{list}.txt` and its
//! `{list}.txt.minisig`, readable without the admin token (they are public data, signed)
//! and limited per address.
//!
//! Bodies and signatures come from [`SignedFeed`], built once per serial. The body's ETag
//! is strong (store id, list, serial); `If-None-Match` with it gives 304. A signing key
//! that is missing or unreadable gives 503 with the reason on both files: never an
//! unsigned list.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::limit::ReportLimiter;
use crate::publish::{FeedError, SignedFeed};

/// The feed's routes' state.
#[derive(Debug)]
pub struct FeedApi {
    /// The lists, signed.
    pub feed: Arc<SignedFeed>,
    /// Requests per address per hour.
    pub limiter: ReportLimiter,
}

/// `/v1/published/{file}`, no token needed.
pub fn router<S: Clone + Send + Sync + 'static>(api: Arc<FeedApi>) -> axum::Router<S> {
    axum::Router::new()
        .route("/v1/published/{file}", get(serve))
        .with_state(api)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn serve(
    State(api): State<Arc<FeedApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (list, signature) = if let Some(list) = file.strip_suffix(".txt.minisig") {
        (list.to_owned(), true)
    } else if let Some(list) = file.strip_suffix(".txt") {
        (list.to_owned(), false)
    } else {
        return error(
            StatusCode::NOT_FOUND,
            "published lists are /v1/published/{list}.txt and {list}.txt.minisig",
        );
    };
    if !api.limiter.allow(peer.ip(), Instant::now()) {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests from this address; try again later",
        );
    }
    let feed = api.feed.clone();
    let built = match tokio::task::spawn_blocking(move || feed.get(&list)).await {
        Ok(built) => built,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let signed = match built {
        Ok(signed) => signed,
        Err(e @ FeedError::UnknownList(_)) => return error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ FeedError::KeyUnavailable) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        }
        Err(e @ FeedError::Store(_)) => {
            tracing::error!(error = %e, "published feed: cannot read the lists");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the published lists cannot be read",
            );
        }
    };
    let (etag, body, kind) = if signature {
        let tag = format!("{}-sig\"", signed.etag.trim_end_matches('"'));
        (tag, signed.signature.clone(), "text/plain; charset=utf-8")
    } else {
        (
            signed.etag.clone(),
            signed.body.clone(),
            "text/plain; charset=utf-8",
        )
    };
    let Ok(etag_value) = HeaderValue::from_str(&etag) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "bad ETag");
    };
    let cache = HeaderValue::from_static("no-cache");
    if matches_etag(&headers, &etag) {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag_value), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [
            (header::ETAG, etag_value),
            (header::CACHE_CONTROL, cache),
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
        ],
        body,
    )
        .into_response()
}

/// Whether `If-None-Match` names `etag` (or is `*`); weak tags compare by their value, as
/// RFC 9110 asks for `If-None-Match`.
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

/// Sets a central's publishing figures on the admin's metrics (at each scrape): each
/// published list's serial (not its size: counting a million-name list at every scrape
/// costs a table scan), and the RPZ primary's counters when it serves.
pub(super) fn record_metrics(admin: &super::Admin) {
    use crate::publish::PublishedLists;
    let m = &admin.metrics;
    if let Some((store, _)) = &admin.published
        && let Ok(lists) = store.lists()
    {
        for (list, serial) in lists {
            let labels = [("list", list.as_str())];
            m.gauge("kidsafe_published_serial", &labels, f64::from(serial));
        }
    }
    if let Some(rpz) = &admin.rpz {
        for (name, label, value, total) in rpz.totals() {
            m.counter_total(name, &[(label, value)], total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_takes_lists_weak_tags_and_star() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"a\", W/\"b\""),
        );
        assert!(matches_etag(&h, "\"b\""));
        assert!(matches_etag(&h, "\"a\""));
        assert!(!matches_etag(&h, "\"c\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(matches_etag(&h, "\"c\""));
        assert!(!matches_etag(&HeaderMap::new(), "\"c\""));
    }
}
