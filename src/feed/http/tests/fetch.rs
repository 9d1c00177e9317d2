//! The download: HTTP status, the size cap, encodings, transport failures and
//! configuration errors.

use super::*;

#[tokio::test]
async fn server_error_is_rejected() {
    let srv = serve().await;
    let f = feed(&srv.url("/error.txt"), None, 1 << 20);
    let err = f.fetch(&Validators::default()).await.unwrap_err();
    match &err {
        FeedError::Http { url, status } => {
            assert_eq!(*status, StatusCode::INTERNAL_SERVER_ERROR);
            assert!(url.ends_with("/error.txt"));
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("500") && msg.contains("/error.txt"), "{msg}");
}

#[tokio::test]
async fn oversized_with_content_length_is_refused_up_front() {
    let srv = serve().await;
    let f = feed(&srv.url("/big-cl.txt"), None, 1000);
    let err = f.fetch(&Validators::default()).await.unwrap_err();
    assert!(
        matches!(
            err,
            FeedError::TooLarge {
                limit: 1000,
                content_length: Some(4096),
                ..
            }
        ),
        "{err:?}"
    );
    // Exactly at the cap is fine.
    let f = feed(&srv.url("/big-cl.txt"), None, 4096);
    let (body, _) = body_of(&f, &Validators::default()).await;
    assert_eq!(body.len(), 4096);
}

#[tokio::test]
async fn oversized_chunked_is_cut_while_streaming() {
    let srv = serve().await;
    let f = feed(&srv.url("/big-chunked.txt"), None, 100_000);
    let err = f.fetch(&Validators::default()).await.unwrap_err();
    assert!(
        matches!(
            err,
            FeedError::TooLarge {
                limit: 100_000,
                content_length: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("100000-byte limit"), "{err}");
    let f = feed(&srv.url("/big-chunked.txt"), None, 300_000);
    let (body, _) = body_of(&f, &Validators::default()).await;
    assert_eq!(body.len(), 300_000);
}

#[tokio::test]
async fn gzip_content_encoding_is_decoded_and_bomb_is_capped() {
    let srv = serve().await;
    let f = feed(&srv.url("/gzip-encoded.txt"), None, 1 << 20);
    let (body, _) = body_of(&f, &Validators::default()).await;
    assert_eq!(body, LIST.as_bytes());

    // 10 MiB of zeros compresses to ~10 KiB; the cap is on decoded bytes.
    let f = feed(&srv.url("/bomb.txt"), None, 1 << 20);
    let err = f.fetch(&Validators::default()).await.unwrap_err();
    assert!(
        matches!(
            err,
            FeedError::TooLarge {
                content_length: None,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn gz_file_is_returned_as_served() {
    let srv = serve().await;
    let f = feed(&srv.url("/list.gz"), None, 1 << 20);
    let (body, _) = body_of(&f, &Validators::default()).await;
    assert_eq!(&body[..2], &[0x1f, 0x8b], "gzip magic kept");
}

#[tokio::test]
async fn stalled_body_times_out() {
    let srv = serve().await;
    let f = HttpFeed::new(
        srv.url("/slow.txt"),
        None,
        1 << 20,
        Duration::from_millis(300),
    )
    .unwrap();
    let err = f.fetch(&Validators::default()).await.unwrap_err();
    assert!(matches!(err, FeedError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn connection_refused_is_transport() {
    // Bind then drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let f = feed(&format!("http://127.0.0.1:{port}/x"), None, 1000);
    let err = f.fetch(&Validators::default()).await.unwrap_err();
    assert!(matches!(err, FeedError::Transport { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn https_to_plain_server_fails_cleanly() {
    // Exercises the rustls + ring setup: the handshake fails, no panic.
    let srv = serve().await;
    let url = format!("https://{}/plain.txt", srv.addr);
    let f = feed(&url, None, 1000);
    let err = f.fetch(&Validators::default()).await.unwrap_err();
    assert!(matches!(err, FeedError::Transport { .. }), "{err:?}");
}

#[test]
fn bad_configuration_is_reported() {
    for url in ["not a url", "ftp://example.com/list", "file:///etc/passwd"] {
        let err = HttpFeed::new(url, None, 1, TIMEOUT).unwrap_err();
        assert!(
            matches!(err, FeedError::InvalidUrl { .. }),
            "{url}: {err:?}"
        );
    }
    let err = HttpFeed::new("https://example.com/l", Some("RWnope"), 1, TIMEOUT).unwrap_err();
    assert!(matches!(err, FeedError::InvalidKey { .. }), "{err:?}");
    assert!(err.to_string().contains("https://example.com/l"));
}
