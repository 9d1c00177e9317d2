//! Conditional GET: validators kept, sent back, and a 304 only when asked for.

use super::*;

#[tokio::test]
async fn etag_then_not_modified() {
    let srv = serve().await;
    let f = feed(&srv.url("/etag.txt"), None, 1 << 20);
    let (body, v) = body_of(&f, &Validators::default()).await;
    assert_eq!(body, LIST.as_bytes());
    assert_eq!(v.etag.as_deref(), Some(ETAG_V1));
    assert_eq!(v.last_modified, None);
    assert_eq!(f.fetch(&v).await.unwrap(), Fetched::NotModified);
    // A stale tag gets the body again.
    let stale = Validators {
        etag: Some("\"v0\"".into()),
        last_modified: None,
    };
    let (body, _) = body_of(&f, &stale).await;
    assert_eq!(body, LIST.as_bytes());
    assert_eq!(srv.hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn last_modified_then_not_modified() {
    let srv = serve().await;
    let f = feed(&srv.url("/lm.txt"), None, 1 << 20);
    let (body, v) = body_of(&f, &Validators::default()).await;
    assert_eq!(body, LIST.as_bytes());
    assert_eq!(v.last_modified.as_deref(), Some(LAST_MOD));
    assert_eq!(v.etag, None);
    assert_eq!(f.fetch(&v).await.unwrap(), Fetched::NotModified);
}

#[test]
fn validators_round_trip_through_serde() {
    let v = Validators {
        etag: Some("W/\"abc\"".into()),
        last_modified: Some(LAST_MOD.into()),
    };
    let json = serde_json::to_string(&v).unwrap();
    assert_eq!(serde_json::from_str::<Validators>(&json).unwrap(), v);
    assert!(!v.is_empty());
    assert!(Validators::default().is_empty());
}

#[tokio::test]
async fn unsolicited_304_is_an_error() {
    let srv = serve().await;
    let f = feed(&srv.url("/unsolicited-304.txt"), None, 1 << 20);
    let err = f.fetch(&Validators::default()).await.unwrap_err();
    assert!(
        matches!(err, FeedError::Http { status, .. } if status == StatusCode::NOT_MODIFIED),
        "{err}"
    );
}
