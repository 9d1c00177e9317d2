//! DNS over HTTPS (RFC 8484) on HTTP/2: `GET /dns-query?dns=<base64url>` and `POST
//! /dns-query` with an `application/dns-message` body, answered like the other transports
//! ([`wire::answer_into`]: blocks and cache hits on bytes, the rest as messages). The
//! response's `max-age` is the reply's smallest answer or authority TTL, read from its
//! bytes ([`crate::dns::ttl`]). Connections come from [`super::stream`]'s accept loop (after the TLS
//! handshake, ALPN `h2`), so DoH shares the connection limit and the idle timeout with TCP
//! and DoT.
//!
//! Both methods are answered, a bad request gets an HTTP status (never a reset stream), and
//! the `Accept` header is not checked, so curl's default `*/*` works.
//!
//! `/dns-query/{id}` names the device: `{id}` is its ClientID
//! ([`super::identity::path_client_id`]), which picks its profile before the TLS server
//! name's does. An invalid one is a 400 whose body says why.
//!
//! Any other bad request gets a 4xx and no body: 404 for another path, 405 for another method, 415
//! for a POST of another content type, 413 above 65,535 bytes, 400 for a `dns` parameter
//! that is missing, not base64url, or shorter than a DNS header. A DNS message that does not
//! decode past its header gets 200 with FORMERR, as over UDP.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use data_encoding::BASE64URL_NOPAD;
use h2::RecvStream;
use h2::server::SendResponse;
use http::{Method, Request, Response, StatusCode, header};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::DOH_PATH;
use super::handler::{Handler, Reply};
use super::identity;
use super::wire;
use crate::dns::HEADER_LEN;
use crate::metrics::Protocol;
use crate::policy::Client;
use crate::policy::client::ClientId;

const DNS_MESSAGE: &str = "application/dns-message";
/// A DNS message is at most 65,535 bytes (its TCP length prefix).
const MAX_MESSAGE: usize = 65_535;
/// Concurrent requests on one connection.
const MAX_STREAMS: u32 = 100;

/// Serves HTTP/2 on an established TLS stream until the client closes, no request is open
/// for `idle`, or the server stops (then open requests are finished first).
pub(super) async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    client: Client,
    handler: &Arc<Handler>,
    idle: Duration,
    stop: &CancellationToken,
) -> io::Result<()> {
    let handshake = h2::server::Builder::new()
        .max_concurrent_streams(MAX_STREAMS)
        .handshake::<_, Bytes>(io);
    let mut conn = tokio::time::timeout(idle, handshake)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "HTTP/2 preface"))?
        .map_err(io::Error::other)?;
    let mut requests = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(_) = requests.join_next(), if !requests.is_empty() => {}
            next = tokio::time::timeout(idle, conn.accept()) => match next {
                // Idle only when no request is being answered either.
                Err(_) if requests.is_empty() => break,
                Err(_) => {}
                Ok(None) => return Ok(()),
                Ok(Some(Err(e))) => return Err(io::Error::other(e)),
                Ok(Some(Ok((request, respond)))) => {
                    requests.spawn(answer(request, respond, client.clone(), handler.clone(), idle));
                }
            },
        }
    }
    // GOAWAY, then let the open requests finish (the connection must be polled for their
    // answers to be written).
    conn.graceful_shutdown();
    let closed = std::future::poll_fn(|cx| conn.poll_closed(cx));
    let _ = tokio::time::timeout(idle, closed).await;
    Ok(())
}

/// Answers one request (stream) from `client` (its ClientID from the TLS server name, which
/// one in the path replaces).
async fn answer(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    mut client: Client,
    handler: Arc<Handler>,
    idle: Duration,
) {
    let result = match read_query(request, idle).await {
        Ok((packet, id)) => {
            if id.is_some() {
                client.client_id = id;
            }
            resolve(&handler, &packet, &client).await
        }
        Err(status) => Err(status),
    };
    let (response, body) = match result {
        Ok((body, max_age)) => (
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, DNS_MESSAGE)
                .header(header::CONTENT_LENGTH, body.len())
                // RFC 8484 §5.1: no fresher than the smallest TTL.
                .header(header::CACHE_CONTROL, format!("max-age={max_age}")),
            body,
        ),
        Err(Refusal(status, why)) => {
            let body = why
                .map(|why| format!("{why}\n").into_bytes())
                .unwrap_or_default();
            let mut r = Response::builder()
                .status(status)
                .header(header::CONTENT_LENGTH, body.len());
            if !body.is_empty() {
                r = r.header(header::CONTENT_TYPE, "text/plain; charset=utf-8");
            }
            if status == StatusCode::METHOD_NOT_ALLOWED {
                r = r.header(header::ALLOW, "GET, POST");
            }
            (r, body)
        }
    };
    let Ok(response) = response.body(()) else {
        return;
    };
    let sent = respond.send_response(response, body.is_empty());
    if let (Ok(mut stream), false) = (sent, body.is_empty()) {
        let _ = stream.send_data(Bytes::from(body), true);
    }
}

/// An HTTP error status, and for some a reason (the body).
struct Refusal(StatusCode, Option<String>);

impl From<StatusCode> for Refusal {
    fn from(status: StatusCode) -> Self {
        Refusal(status, None)
    }
}

/// The DNS message of a request and the ClientID of its path (`/dns-query/{id}`), or the
/// 4xx to answer it with (an invalid ClientID: 400 saying why).
async fn read_query(
    request: Request<RecvStream>,
    idle: Duration,
) -> Result<(Vec<u8>, Option<ClientId>), Refusal> {
    let path = request.uri().path();
    let rest = match path.strip_prefix(DOH_PATH) {
        Some("") => "",
        Some(rest) => rest.strip_prefix('/').ok_or(StatusCode::NOT_FOUND)?,
        None => return Err(StatusCode::NOT_FOUND.into()),
    };
    let id = identity::path_client_id(rest).map_err(|e| {
        Refusal(
            StatusCode::BAD_REQUEST,
            Some(format!("invalid ClientID in the path {path:?}: {e}")),
        )
    })?;
    let packet = match *request.method() {
        Method::GET => {
            let dns = request
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|p| p.strip_prefix("dns="))
                .ok_or(StatusCode::BAD_REQUEST)?;
            // RFC 8484 §4.1 says without padding; accept it anyway.
            BASE64URL_NOPAD
                .decode(dns.trim_end_matches('=').as_bytes())
                .map_err(|_| StatusCode::BAD_REQUEST)?
        }
        Method::POST => {
            let ctype = request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .unwrap_or("");
            if !ctype.trim().eq_ignore_ascii_case(DNS_MESSAGE) {
                return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE.into());
            }
            let mut body = request.into_body();
            let read = async {
                let mut packet = Vec::new();
                while let Some(chunk) = body.data().await {
                    let chunk = chunk.map_err(|_| StatusCode::BAD_REQUEST)?;
                    let _ = body.flow_control().release_capacity(chunk.len());
                    if packet.len() + chunk.len() > MAX_MESSAGE {
                        return Err(StatusCode::PAYLOAD_TOO_LARGE);
                    }
                    packet.extend_from_slice(&chunk);
                }
                Ok(packet)
            };
            tokio::time::timeout(idle, read)
                .await
                .map_err(|_| StatusCode::REQUEST_TIMEOUT)??
        }
        _ => return Err(StatusCode::METHOD_NOT_ALLOWED.into()),
    };
    if packet.len() < HEADER_LEN {
        return Err(StatusCode::BAD_REQUEST.into());
    }
    Ok((packet, id))
}

/// The reply on the wire and its freshness lifetime in seconds.
async fn resolve(
    handler: &Handler,
    packet: &[u8],
    client: &Client,
) -> Result<(Vec<u8>, u32), Refusal> {
    let Some(_inflight) = handler.drain.enter() else {
        return Err(StatusCode::SERVICE_UNAVAILABLE.into()); // shutting down
    };
    let mut body = Vec::with_capacity(512);
    if let Some(reply) = wire::answer_into(handler, packet, client, Protocol::Doh, &mut body) {
        let reply = match reply {
            // A response (QR=1), or a client refused with `refuse_action = "drop"`.
            Reply::Silent => return Err(StatusCode::BAD_REQUEST.into()),
            Reply::Now(reply) => reply,
            // Boxed: waiting on upstream is the largest state of this future, and every
            // request's task (most of them blocks and cache hits) would be moved in at its
            // size.
            Reply::Upstream(pending) => Box::pin(handler.finish(pending)).await,
        };
        crate::dns::encode::encode(&mut body, &reply, u16::MAX);
    }
    // Read from the bytes whichever path wrote them; 0 (no caching) if they ever did not walk.
    let max_age = crate::dns::ttl::min_ttl(&body).unwrap_or(0);
    Ok((body, max_age))
}
