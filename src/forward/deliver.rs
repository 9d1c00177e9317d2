//! The delivery task: spooled reports to the central, in batches, with retry and capped
//! exponential backoff; rows leave the spool only after the central's 2xx.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::{ForwardConfig, ForwardError, ForwardStats, Outbox, SpoolError};

/// The first wait after a failed delivery; it doubles per failure up to `retry_max`.
const FIRST_RETRY: Duration = Duration::from_millis(200);
/// Bound on one delivery (connect, send, answer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Sent as `User-Agent`, so the central's operators can tell who delivers.
const USER_AGENT: &str = concat!(
    "kidsafe-dns/",
    env!("CARGO_PKG_VERSION"),
    " (report forwarding)"
);

/// The HTTP client for `config`: its extra CA added to the system's roots.
///
/// # Errors
/// [`ForwardError::Ca`] for an unreadable CA file or one without a certificate,
/// [`ForwardError::Client`] if reqwest cannot build the client.
pub fn client(config: &ForwardConfig) -> Result<reqwest::Client, ForwardError> {
    crate::feed::http::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(REQUEST_TIMEOUT);
    if let Some(path) = &config.ca_file {
        let ca_error = |reason: String| ForwardError::Ca {
            path: path.clone(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| ca_error(format!("not a PEM certificate bundle: {e}")))?;
        if certs.is_empty() {
            return Err(ca_error("no certificate in the file".into()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(ForwardError::Client)
}

/// What a central answers to a delivery (the fields the edge reads).
#[derive(Debug, Default, Deserialize)]
struct Acknowledged {
    #[serde(default)]
    invalid: Vec<serde_json::Value>,
}

/// Why one delivery failed: logged, counted, retried.
#[derive(Debug, thiserror::Error)]
enum Failed {
    #[error("{0}")]
    Spool(#[from] SpoolError),
    #[error("cannot reach the central: {0}")]
    Http(#[source] reqwest::Error),
    #[error("the central answered {status}: {body}")]
    Status {
        status: reqwest::StatusCode,
        body: String,
    },
    #[error("spool task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The running delivery: an HTTP client and the outbox it empties.
pub(super) struct Delivery {
    pub(super) client: reqwest::Client,
    pub(super) outbox: Outbox,
}

impl Delivery {
    /// Delivers until `stop`: a batch whenever the spool has reports, waiting for a wake
    /// (a new report) when it is empty, backing off after a failure.
    pub(super) async fn run(self, stop: CancellationToken) {
        let mut backoff = FIRST_RETRY;
        let retry_max = self.outbox.config.retry_max;
        loop {
            match self.once().await {
                Ok(0) => {
                    backoff = FIRST_RETRY;
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = self.outbox.wake.notified() => {}
                    }
                }
                Ok(_) => backoff = FIRST_RETRY,
                Err(error) => {
                    ForwardStats::add(&self.outbox.stats.failures, 1);
                    tracing::warn!(
                        %error,
                        retry_in_ms = backoff.as_millis() as u64,
                        url = %self.outbox.config.url,
                        "report forwarding: delivery failed; reports stay spooled"
                    );
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(crate::feed::spec::jittered(backoff)) => {}
                    }
                    backoff = (backoff * 2).min(retry_max);
                }
            }
        }
    }

    /// Sends one batch of the oldest spooled reports; returns how many were delivered (0:
    /// the spool is empty).
    async fn once(&self) -> Result<usize, Failed> {
        let spool = self.outbox.spool.clone();
        let max = self.outbox.config.batch_max;
        let rows = tokio::task::spawn_blocking(move || {
            spool.lock().map_err(|_| SpoolError::Poisoned)?.oldest(max)
        })
        .await??;
        if rows.is_empty() {
            return Ok(0);
        }
        let config = &self.outbox.config;
        let mut body = format!(
            "{{\"node\":{},\"reports\":[",
            serde_json::Value::from(config.node_id.as_str())
        );
        for (i, (_, row)) in rows.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&row.json);
        }
        body.push_str("]}");
        let answer = self
            .client
            .post(config.url.clone())
            .header(AUTHORIZATION, format!("Bearer {}", config.token))
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(Failed::Http)?;
        let status = answer.status();
        let text = answer.text().await.map_err(Failed::Http)?;
        if !status.is_success() {
            return Err(Failed::Status {
                status,
                body: text.chars().take(200).collect(),
            });
        }
        let ack: Acknowledged = serde_json::from_str(&text).unwrap_or_default();
        let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
        let n = ids.len();
        let spool = self.outbox.spool.clone();
        let left = tokio::task::spawn_blocking(move || {
            let mut spool = spool.lock().map_err(|_| SpoolError::Poisoned)?;
            spool.remove(&ids)?;
            spool.len()
        })
        .await??;
        let stats = &self.outbox.stats;
        ForwardStats::add(&stats.delivered, n as u64);
        stats.pending.store(left, Ordering::Relaxed);
        if !ack.invalid.is_empty() {
            ForwardStats::add(&stats.rejected, ack.invalid.len() as u64);
            tracing::warn!(
                refused = ack.invalid.len(),
                first = %ack.invalid[0],
                "report forwarding: the central refused reports for their input; dropped"
            );
        }
        tracing::debug!(delivered = n, left, "report forwarding: batch delivered");
        Ok(n)
    }
}
