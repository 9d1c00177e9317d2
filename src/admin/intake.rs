//! `POST /v1/reports`: one report from the public (or a portal), or a batch an edge
//! delivers to its central.
//!
//! The two forms share the route so that an edge and a portal both just post reports:
//!
//! - a single report, `{"name": ..., "kind": ..., "category": ..., "note": ...,
//!   "contact": ...}`, at most [`MAX_BODY`](super::MAX_BODY) bytes, rate-limited per source
//!   address (a portal by `admin.portal_clients` or `admin.portal_token` has its own quota);
//! - a batch, `{"node": "edge-1", "reports": [{"key": ..., "serial": ..., "name": ...,
//!   ...}, ...]}`, at most [`MAX_BATCH`] reports and [`MAX_BATCH_BODY`] bytes, only with the
//!   bearer token of an edge in `[reports] edges` (compared in constant time). A wrong or
//!   missing edge token is a 401, counted in `kidsafe_report_intake_refused_total{reason}`;
//!   the node recorded is the token's, whatever the body says.
//!
//! The batch's answer, `{"accepted": n, "duplicates": n, "invalid": [{"key", "error"}]}`,
//! is a 200 even when some reports were refused for their input: the edge must drop those
//! rather than retry them for ever.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::desk::DeskError;
use super::reports::{KeyedReport, MAX_BATCH, NewReport};
use super::{Access, Admin, MAX_BODY, bearer, error, has_portal_token, same, store_error};

/// Largest batch body: [`MAX_BATCH`] reports of up to ~1 KiB each.
pub const MAX_BATCH_BODY: usize = 1024 * 1024;

/// Why an edge's delivery was refused, as the metric's `reason` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// No bearer token.
    MissingToken,
    /// A token no configured edge has.
    WrongToken,
}

impl Refused {
    /// Every reason, for the metrics.
    pub const ALL: [Refused; 2] = [Refused::MissingToken, Refused::WrongToken];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::MissingToken => "missing_token",
            Refused::WrongToken => "wrong_token",
        }
    }
}

/// The intake's counters, totals since start.
#[derive(Debug, Default)]
pub struct IntakeStats {
    refused: [AtomicU64; 2],
    /// Reports counted from edges' batches.
    pub accepted: AtomicU64,
    /// Redelivered keys (counted nothing).
    pub duplicates: AtomicU64,
    /// Reports in batches refused for their input.
    pub invalid: AtomicU64,
}

impl IntakeStats {
    /// Refusals for `why`.
    pub fn refused(&self, why: Refused) -> u64 {
        self.refused[why as usize].load(Ordering::Relaxed)
    }

    fn refuse(&self, why: Refused) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// The batch form's body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    /// What the edge calls itself (logged when it differs from its token's node).
    #[serde(default)]
    node: Option<String>,
    reports: Vec<KeyedReport>,
}

/// `POST /v1/reports`, either form.
pub(super) async fn post_reports(
    State(admin): State<Arc<Admin>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send Content-Type: application/json",
        );
    }
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        // Too big to be a report anyway: say so rather than how it failed to parse.
        Err(_) if body.len() > MAX_BODY => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("not a JSON body: {e}")),
    };
    let access = admin.access.load_full();
    if value.get("reports").is_some() {
        return batch(&admin, &access, &headers, value).await;
    }
    if body.len() > MAX_BODY {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a report is at most {MAX_BODY} bytes"),
        );
    }
    single(&admin, &access, peer, &headers, value).await
}

/// One report from the public or a portal.
async fn single(
    admin: &Admin,
    access: &Access,
    peer: SocketAddr,
    headers: &HeaderMap,
    value: serde_json::Value,
) -> Response {
    let portal_token = has_portal_token(access, headers);
    if let Some(token) = &access.token {
        let admin_ok = bearer(headers).is_some_and(|g| same(g.as_bytes(), token.as_bytes()));
        if !(admin_ok || portal_token) {
            return unauthorized("missing or wrong bearer token");
        }
    }
    let report: NewReport = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("not a report: {e}")),
    };
    // A portal posts for many people: its own, larger quota.
    let portal = access.portal_clients.allows(peer.ip()) || portal_token;
    let (limiter, over) = if portal {
        (
            &access.portal_limiter,
            "too many reports from this portal; try again later",
        )
    } else {
        (
            &access.limiter,
            "too many reports from this address; try again later",
        )
    };
    if !limiter.allow(peer.ip(), Instant::now()) {
        return error(StatusCode::TOO_MANY_REQUESTS, over);
    }
    match admin.desk.submit(report).await {
        Ok(submitted) => {
            let status = if submitted.new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(submitted)).into_response()
        }
        Err(e) => {
            if let DeskError::Report(e) = &e
                && e.is_client_error()
            {
                // Nothing was stored: the attempt does not count against the sender.
                limiter.refund(peer.ip());
            }
            desk_error(e, "store the report")
        }
    }
}

/// A delivery from an edge.
async fn batch(
    admin: &Admin,
    access: &Access,
    headers: &HeaderMap,
    value: serde_json::Value,
) -> Response {
    let Some(given) = bearer(headers) else {
        admin.intake.refuse(Refused::MissingToken);
        return unauthorized("a delivery needs an edge's bearer token");
    };
    // Every edge's token is compared (in constant time), so the time taken does not say
    // which one nearly matched.
    let mut node = None;
    for edge in &access.edges {
        if same(given.as_bytes(), edge.token.as_bytes()) {
            node = Some(edge.node.clone());
        }
    }
    let Some(node) = node else {
        admin.intake.refuse(Refused::WrongToken);
        tracing::warn!("report intake: a delivery with a token no edge has; refused");
        return unauthorized("wrong edge token");
    };
    let batch: Batch = match serde_json::from_value(value) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("not a report batch: {e}")),
    };
    if batch.reports.len() > MAX_BATCH {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("at most {MAX_BATCH} reports per delivery"),
        );
    }
    if let Some(said) = batch.node.as_deref().filter(|n| *n != node) {
        tracing::info!(node, said, "report intake: the edge calls itself otherwise");
    }
    let n = batch.reports.len();
    match admin.desk.submit_batch(node.clone(), batch.reports).await {
        Ok(outcome) => {
            let stats = &admin.intake;
            stats
                .accepted
                .fetch_add(outcome.accepted, Ordering::Relaxed);
            stats
                .duplicates
                .fetch_add(outcome.duplicates, Ordering::Relaxed);
            stats
                .invalid
                .fetch_add(outcome.invalid.len() as u64, Ordering::Relaxed);
            tracing::debug!(
                node,
                reports = n,
                accepted = outcome.accepted,
                duplicates = outcome.duplicates,
                invalid = outcome.invalid.len(),
                "report intake: delivery taken"
            );
            Json(outcome).into_response()
        }
        Err(e) => desk_error(e, "take the delivery"),
    }
}

fn unauthorized(message: &str) -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, message);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

/// The response to a desk failure while trying to `what`.
fn desk_error(e: DeskError, what: &str) -> Response {
    match e {
        DeskError::Report(e) => store_error(e, what),
        e => {
            tracing::error!(error = %e, "reports: could not {what}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("could not {what}"),
            )
        }
    }
}

/// Sets the report counters on the admin's metrics (at each scrape): the intake's, and
/// the forwarding's when this resolver forwards.
pub(super) fn record_metrics(admin: &Admin) {
    let m = &admin.metrics;
    let stats = &admin.intake;
    for why in Refused::ALL {
        m.counter_total(
            "kidsafe_report_intake_refused_total",
            &[("reason", why.as_str())],
            stats.refused(why),
        );
    }
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    m.counter_total(
        "kidsafe_report_intake_accepted_total",
        &[],
        load(&stats.accepted),
    );
    m.counter_total(
        "kidsafe_report_intake_duplicates_total",
        &[],
        load(&stats.duplicates),
    );
    m.counter_total(
        "kidsafe_report_intake_invalid_total",
        &[],
        load(&stats.invalid),
    );
    if let Some(f) = admin.desk.forward_stats() {
        m.counter_total("kidsafe_report_spooled_total", &[], load(&f.spooled));
        m.counter_total("kidsafe_report_delivered_total", &[], load(&f.delivered));
        m.counter_total(
            "kidsafe_report_delivery_rejected_total",
            &[],
            load(&f.rejected),
        );
        m.counter_total(
            "kidsafe_report_delivery_failures_total",
            &[],
            load(&f.failures),
        );
        m.gauge("kidsafe_report_spool_pending", &[], load(&f.pending) as f64);
    }
}
