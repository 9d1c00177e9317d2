//! Minisign: signature URL, key formats, good and bad signatures, and a round
//! trip with the real `minisign` tool when it is installed.

use super::*;

#[test]
fn signature_url_appends_to_path() {
    let f = HttpFeed::new("https://example.com/lists/a.txt?v=2#frag", None, 1, TIMEOUT).unwrap();
    assert_eq!(
        f.signature_url().as_str(),
        "https://example.com/lists/a.txt.minisig?v=2"
    );
    // Full .pub file content is accepted as the key.
    HttpFeed::new("https://example.com/a", Some(PUBFILE_A), 1, TIMEOUT).unwrap();
}

#[tokio::test]
async fn good_signature_is_accepted() {
    let srv = serve().await;
    for path in ["/signed.txt", "/legacy.txt", "/gzip-signed.txt"] {
        let f = feed(&srv.url(path), Some(PUBKEY_A), 1 << 20);
        let (body, _) = body_of(&f, &Validators::default()).await;
        assert_eq!(body, LIST.as_bytes(), "{path}");
    }
}

#[tokio::test]
async fn tampered_body_is_rejected() {
    let srv = serve().await;
    let f = feed(&srv.url("/tampered.txt"), Some(PUBKEY_A), 1 << 20);
    let err = f.fetch(&Validators::default()).await.unwrap_err();
    assert!(matches!(err, FeedError::Signature { .. }), "{err:?}");
    assert!(err.to_string().contains("/tampered.txt"), "{err}");
}

#[tokio::test]
async fn missing_signature_is_rejected() {
    let srv = serve().await;
    let f = feed(&srv.url("/unsigned.txt"), Some(PUBKEY_A), 1 << 20);
    let err = f.fetch(&Validators::default()).await.unwrap_err();
    match &err {
        FeedError::SignatureMissing { url, reason } => {
            assert!(url.ends_with("/unsigned.txt.minisig"), "{url}");
            assert!(reason.contains("404"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn wrong_key_is_rejected() {
    let srv = serve().await;
    let f = feed(&srv.url("/signed.txt"), Some(PUBKEY_B), 1 << 20);
    let err = f.fetch(&Validators::default()).await.unwrap_err();
    assert!(matches!(err, FeedError::Signature { .. }), "{err:?}");
}

#[tokio::test]
async fn malformed_signature_is_rejected() {
    let srv = serve().await;
    let f = feed(&srv.url("/garbage-sig.txt"), Some(PUBKEY_A), 1 << 20);
    let err = f.fetch(&Validators::default()).await.unwrap_err();
    assert!(matches!(err, FeedError::Signature { .. }), "{err:?}");
}

#[tokio::test]
async fn not_modified_skips_the_signature() {
    let srv = serve().await;
    // /etag.txt has no .minisig: a 304 must not try to fetch one.
    let f = feed(&srv.url("/etag.txt"), Some(PUBKEY_A), 1 << 20);
    let v = Validators {
        etag: Some(ETAG_V1.into()),
        last_modified: None,
    };
    assert_eq!(f.fetch(&v).await.unwrap(), Fetched::NotModified);
    assert_eq!(srv.hits.load(Ordering::SeqCst), 1);
}

/// Signs a fresh random list with the real `minisign` tool, when present.
#[tokio::test]
async fn minisign_tool_round_trip() {
    let Some(dir) = minisign_sign_fresh() else {
        eprintln!("minisign_tool_round_trip: `minisign` not installed, skipped");
        return;
    };
    let list = std::fs::read(dir.path().join("fresh.txt")).unwrap();
    let sig = std::fs::read_to_string(dir.path().join("fresh.txt.minisig")).unwrap();
    let pubkey = std::fs::read_to_string(dir.path().join("k.pub")).unwrap();
    let list2 = list.clone();
    let app = Router::new()
        .route("/fresh.txt", get(move || async move { list2 }))
        .route("/fresh.txt.minisig", get(move || async move { sig }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let f = feed(&format!("http://{addr}/fresh.txt"), Some(&pubkey), 1 << 20);
    let (body, _) = body_of(&f, &Validators::default()).await;
    assert_eq!(body, list);
    let f = feed(&format!("http://{addr}/fresh.txt"), Some(PUBKEY_A), 1 << 20);
    assert!(matches!(
        f.fetch(&Validators::default()).await,
        Err(FeedError::Signature { .. })
    ));
    task.abort();
}

fn minisign_sign_fresh() -> Option<tempfile::TempDir> {
    use std::process::{Command, Stdio};
    let ok = Command::new("minisign")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let body: String = (0..1000).map(|i| format!("host{i}.example\n")).collect();
    std::fs::write(p("fresh.txt"), body).unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        let st = Command::new("minisign")
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "minisign {args:?}");
    };
    run(&[
        "-G".as_ref(),
        "-W".as_ref(),
        "-p".as_ref(),
        p("k.pub").as_os_str(),
        "-s".as_ref(),
        p("k.sec").as_os_str(),
    ]);
    run(&[
        "-S".as_ref(),
        "-s".as_ref(),
        p("k.sec").as_os_str(),
        "-m".as_ref(),
        p("fresh.txt").as_os_str(),
    ]);
    Some(dir)
}
