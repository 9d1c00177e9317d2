//! Tests for the HTTP feed against a local axum server that serves every case:
//! conditional GET in `validators`, status, size cap, encodings, transport and
//! configuration failures in `fetch`, minisign in `signature`. Shared fixtures
//! live here.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap as AxHeaders, HeaderValue, StatusCode as AxStatus, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use reqwest::StatusCode;

use super::*;

mod fetch;
mod signature;
mod validators;

// Test vectors made once with minisign 0.11:
//   minisign -G -W -p a.pub -s a.sec; minisign -G -W -p b.pub -s b.sec
//   minisign -S -s a.sec -m list.txt -t 'kidsafe test vector'      (prehashed, "ED")
//   minisign -S -l -s a.sec -m list.txt -t 'kidsafe legacy vector' (legacy, "Ed")
const LIST: &str = "# kidsafe test list\nbad.example\nworse.example\n";
const PUBKEY_A: &str = "RWQIo99G4J10CIipp71Z8YGOFmRObx0ZnrutqqgyFdmYKkbGp+V1+Soe";
const PUBFILE_A: &str = "untrusted comment: minisign public key 8749DE046DFA308\nRWQIo99G4J10CIipp71Z8YGOFmRObx0ZnrutqqgyFdmYKkbGp+V1+Soe\n";
const PUBKEY_B: &str = "RWQ+SoH/RI+qKIGFnvBf2RXhiafXPAGifSSs96feO+p80Omw2eYzj+TK";
const SIG_PREHASHED: &str = "untrusted comment: signature from minisign secret key
RUQIo99G4J10CN2fddecExuK/At08NjydK1myrTaIeaVisBFttUUy2VquzsPLJHY5OYOPKQxiboWwh0aYq9TiaivhD+qQtrOjAE=
trusted comment: kidsafe test vector
nORcLLhJbbzOmkIIzB3NSYAxrk+jYg/gUrGhyULM3RnYiAJI8oEYiW7PPHOkLbI77tUr0gpm6hBZw8PT4EfTBg==
";
const SIG_LEGACY: &str = "untrusted comment: signature from minisign secret key
RWQIo99G4J10CArAYBtaJaewhhpRzkMLYpYQOrnKm4296feFFyOhUy8TY4l9eZP47YIrS6f5I4POtab7kJFYTnBz+GEgplVjEQk=
trusted comment: kidsafe legacy vector
U3BfLDBjp67GhAbSNl8sKjKF35d1T+I5zI1CQbZXptOsB9286WLrwOV+vsOUHQ22CzuqcGsveYHE1HjUj446BQ==
";

const ETAG_V1: &str = "\"v1\"";
const LAST_MOD: &str = "Wed, 21 Oct 2026 07:28:00 GMT";
const TIMEOUT: Duration = Duration::from_secs(5);

struct Server {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Streams `total` bytes in 64 KiB chunks with no Content-Length.
fn chunked(total: usize) -> Body {
    let chunks = (0..total.div_ceil(65536)).map(move |i| {
        let n = (total - i * 65536).min(65536);
        Ok::<_, std::io::Error>(Bytes::from(vec![b'a'; n]))
    });
    Body::from_stream(futures_util::stream::iter(chunks))
}

async fn list_handler(req_headers: AxHeaders) -> Response {
    // ETag path: 304 when the client presents the current tag.
    if req_headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v == ETAG_V1)
    {
        return (AxStatus::NOT_MODIFIED, [(header::ETAG, ETAG_V1)]).into_response();
    }
    (AxStatus::OK, [(header::ETAG, ETAG_V1)], LIST).into_response()
}

async fn lm_handler(req_headers: AxHeaders) -> Response {
    if req_headers
        .get(header::IF_MODIFIED_SINCE)
        .is_some_and(|v| v == LAST_MOD)
    {
        return AxStatus::NOT_MODIFIED.into_response();
    }
    (AxStatus::OK, [(header::LAST_MODIFIED, LAST_MOD)], LIST).into_response()
}

async fn serve() -> Server {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new()
        .route("/etag.txt", get(list_handler))
        .route("/lm.txt", get(lm_handler))
        .route("/plain.txt", get(|| async { LIST }))
        .route("/big-cl.txt", get(|| async { vec![b'a'; 4096] }))
        .route("/big-chunked.txt", get(|| async { chunked(300_000) }))
        .route(
            "/error.txt",
            get(|| async { (AxStatus::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route(
            "/unsolicited-304.txt",
            get(|| async { AxStatus::NOT_MODIFIED }),
        )
        .route(
            "/gzip-encoded.txt",
            get(|| async {
                (
                    [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))],
                    gzip(LIST.as_bytes()),
                )
            }),
        )
        .route(
            "/bomb.txt",
            get(|| async {
                (
                    [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))],
                    gzip(&vec![0u8; 10 << 20]),
                )
            }),
        )
        .route("/list.gz", get(|| async { gzip(LIST.as_bytes()) }))
        .route(
            "/slow.txt",
            get(|| async { stalled_body(Duration::from_secs(30)) }),
        )
        // Signed lists.
        .route("/signed.txt", get(|| async { LIST }))
        .route("/signed.txt.minisig", get(|| async { SIG_PREHASHED }))
        .route("/legacy.txt", get(|| async { LIST }))
        .route("/legacy.txt.minisig", get(|| async { SIG_LEGACY }))
        .route(
            "/tampered.txt",
            get(|| async { LIST.replace("bad.example", "good.example") }),
        )
        .route("/tampered.txt.minisig", get(|| async { SIG_PREHASHED }))
        .route("/unsigned.txt", get(|| async { LIST }))
        .route("/garbage-sig.txt", get(|| async { LIST }))
        .route(
            "/garbage-sig.txt.minisig",
            get(|| async { "untrusted comment: x\nnot base64 at all\n" }),
        )
        .route(
            "/gzip-signed.txt",
            get(|| async {
                (
                    [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))],
                    gzip(LIST.as_bytes()),
                )
            }),
        )
        .route("/gzip-signed.txt.minisig", get(|| async { SIG_PREHASHED }))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                counter.fetch_add(1, Ordering::SeqCst);
                next.run(req)
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server { addr, hits, task }
}

/// A body that sends one byte and then stalls for `stall`.
fn stalled_body(stall: Duration) -> Body {
    let stream = futures_util::stream::unfold(0u8, move |state| async move {
        match state {
            0 => Some((Ok::<_, std::io::Error>(Bytes::from_static(b"a")), 1)),
            _ => {
                tokio::time::sleep(stall).await;
                None
            }
        }
    });
    Body::from_stream(stream)
}

fn feed(url: &str, key: Option<&str>, max: u64) -> HttpFeed {
    HttpFeed::new(url, key, max, TIMEOUT).unwrap()
}

async fn body_of(f: &HttpFeed, prev: &Validators) -> (Bytes, Validators) {
    match f.fetch(prev).await.unwrap() {
        Fetched::New { body, validators } => (body, validators),
        Fetched::NotModified => panic!("expected a new body"),
    }
}
