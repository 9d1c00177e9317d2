//! The profile store on a real PostgreSQL shared by two nodes (two `ProfileStore`s): a
//! write on one reaches the other's snapshot and generation; racing writers get one 412;
//! with PostgreSQL stopped, writes fail cleanly (503 class), snapshots come from the
//! last-good copy, a new node boots from it, and all recover when PostgreSQL is back.
//! Skipped loudly when PostgreSQL is not installed (and `CI` is unset).

#[path = "common/postgres.rs"]
mod pg_cluster;

use std::path::Path;
use std::time::{Duration, Instant};

use kidsafe_dns::profiles::{
    IdentityKind, LAST_GOOD_FILE_NAME, NewIdentity, PageCursor, ProfileError, ProfilePage,
    ProfileSpec, ProfileStore,
};
use pg_cluster::PgCluster;
use tokio::sync::watch;

fn node(url: &str, state: &Path) -> ProfileStore {
    let mut s = ProfileStore::open_postgres(url, &state.join(LAST_GOOD_FILE_NAME)).unwrap();
    s.set_categories(vec!["adult".into(), "gambling".into()]);
    s
}

fn spec(name: &str) -> ProfileSpec {
    ProfileSpec {
        name: name.into(),
        categories: Some(vec!["adult".into()]),
        ..ProfileSpec::default()
    }
}

/// Waits until the generation passes `above`; how long it took.
fn moved(rx: &watch::Receiver<u64>, above: u64, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if *rx.borrow() > above {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    None
}

/// Waits for the LISTEN thread's first connection (it bumps the generation once).
fn listening(rx: &watch::Receiver<u64>) {
    assert!(
        moved(rx, 0, Duration::from_secs(5)).is_some(),
        "LISTEN thread never connected"
    );
}

#[test]
fn a_write_on_one_node_reaches_the_other() {
    let Some(pg) = PgCluster::start() else { return };
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = node(&pg.url(), da.path());
    let b = node(&pg.url(), db.path());
    let rx = b.subscribe();
    listening(&rx);
    let before = *rx.borrow();

    let p = a.create(&spec("teens"), "admin").unwrap();
    a.add_identity(
        &p.id,
        &NewIdentity {
            kind: IdentityKind::ClientId,
            value: "tablet".into(),
        },
        "admin",
    )
    .unwrap();
    let took = moved(&rx, before, Duration::from_secs(2)).expect("B's generation moved");
    eprintln!("A → B: {took:?}");
    // Both writes reach B (the second may come a moment after the first).
    let deadline = Instant::now() + Duration::from_secs(2);
    let snap = loop {
        let snap = b.snapshot().unwrap();
        if !snap.by_client_id.is_empty() || Instant::now() > deadline {
            break snap;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(snap.groups.len(), 1);
    assert_eq!(snap.groups[0].1.name, "teens");
    assert_eq!(snap.by_client_id.get("tablet"), Some(&p.id));
    assert_eq!(b.get(&p.id).unwrap().version, 1);
    // B's snapshot was written as its last-good copy.
    assert!(db.path().join(LAST_GOOD_FILE_NAME).exists());
    // Unique across nodes: B cannot take the same name or identity.
    let mut b = b;
    let e = b.create(&spec("teens"), "admin").unwrap_err();
    assert!(matches!(e, ProfileError::Conflict { .. }), "{e}");
    // The audit log is shared.
    assert_eq!(b.audit(10).unwrap().len(), 2);
}

#[test]
fn racing_writers_on_one_version_one_wins_one_gets_412() {
    let Some(pg) = PgCluster::start() else { return };
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = node(&pg.url(), da.path());
    let p = a.create(&spec("teens"), "admin").unwrap();
    let mut nodes = [Some(a), Some(node(&pg.url(), db.path()))];
    for round in 0..5 {
        let version = nodes[0].as_ref().unwrap().get(&p.id).unwrap().version;
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let threads: Vec<_> = nodes
            .iter_mut()
            .enumerate()
            .map(|(i, n)| {
                let mut s = n.take().unwrap();
                let (id, barrier) = (p.id.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let name = format!("n{i}r{round}");
                    let r = s.replace(&id, &spec(&name), Some(&version.to_string()), "admin");
                    (s, r)
                })
            })
            .collect();
        let mut results = Vec::new();
        for (i, t) in threads.into_iter().enumerate() {
            let (s, r) = t.join().unwrap();
            nodes[i] = Some(s);
            results.push(r);
        }
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        let lost = results.iter().find(|r| r.is_err()).unwrap();
        assert!(
            matches!(lost, Err(ProfileError::Stale { .. })),
            "round {round}: {lost:?}"
        );
    }
    assert_eq!(nodes[1].as_ref().unwrap().get(&p.id).unwrap().version, 6);
}

#[test]
fn with_postgres_down_writes_fail_cleanly_and_the_last_good_copy_serves() {
    let Some(pg) = PgCluster::start() else { return };
    let da = tempfile::tempdir().unwrap();
    let mut a = node(&pg.url(), da.path());
    let rx = a.subscribe();
    listening(&rx);
    let p = a.create(&spec("teens"), "admin").unwrap();
    let snap = a.snapshot().unwrap();
    assert_eq!(snap.groups.len(), 1);

    pg.stop();
    let e = a.create(&spec("other"), "admin").unwrap_err();
    assert!(matches!(e, ProfileError::Unavailable { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("127.0.0.1/kidsafe") && msg.contains("nothing was changed"),
        "{msg}"
    );
    assert!(!e.is_client_error());
    // Reads and the snapshot come from the last-good copy.
    assert_eq!(a.snapshot().unwrap().groups.len(), 1);
    assert_eq!(a.get(&p.id).unwrap().spec.name, "teens");
    assert_eq!(a.list().unwrap().len(), 1);

    // A node starting now boots from that copy (same state dir: a restart).
    let mut c = node(&pg.url(), da.path());
    let crx = c.subscribe();
    let snap = c.snapshot().unwrap();
    assert_eq!(snap.groups.len(), 1);
    assert_eq!(snap.groups[0].1.name, "teens");
    assert!(matches!(
        c.create(&spec("other"), "admin"),
        Err(ProfileError::Unavailable { .. })
    ));
    // Without a copy, a node cannot boot while PostgreSQL is down.
    let empty = tempfile::tempdir().unwrap();
    let e = ProfileStore::open_postgres(&pg.url(), &empty.path().join(LAST_GOOD_FILE_NAME))
        .unwrap_err();
    assert!(matches!(e, ProfileError::Unavailable { .. }), "{e}");

    let (a_gen, c_gen) = (*rx.borrow(), *crx.borrow());
    pg.start_server();
    // Both nodes reload once PostgreSQL is back (LISTEN reconnects with backoff ≤ 5 s).
    assert!(
        moved(&crx, c_gen, Duration::from_secs(10)).is_some(),
        "C never reloaded"
    );
    assert!(
        moved(&rx, a_gen, Duration::from_secs(10)).is_some(),
        "A never reloaded"
    );
    let q = c.create(&spec("other"), "admin").unwrap();
    a.create(&spec("third"), "admin").unwrap();
    let names: Vec<String> = a.list().unwrap().into_iter().map(|p| p.spec.name).collect();
    assert_eq!(names, ["teens", "other", "third"]);
    assert_eq!(a.get(&q.id).unwrap().version, 1);
}

/// Pages on PostgreSQL: keyset on the id, forward and back, the same pages from the
/// last-good copy while PostgreSQL is down.
#[test]
fn pages_of_profiles_on_postgres_and_from_the_last_good_copy() {
    let Some(pg) = PgCluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut a = node(&pg.url(), dir.path());
    for i in 0..25 {
        a.create(&spec(&format!("kid {i:02}")), "admin").unwrap();
    }
    let names = |p: &ProfilePage| -> Vec<String> {
        p.profiles.iter().map(|p| p.spec.name.clone()).collect()
    };
    let want =
        |r: std::ops::Range<usize>| -> Vec<String> { r.map(|i| format!("kid {i:02}")).collect() };
    let walk = |s: &ProfileStore| {
        let one = s.page(PageCursor::First, 10).unwrap();
        assert_eq!(names(&one), want(0..10));
        assert_eq!(one.previous, None);
        let two = s
            .page(PageCursor::After(one.next.as_deref().unwrap()), 10)
            .unwrap();
        assert_eq!(names(&two), want(10..20), "page 2");
        let three = s
            .page(PageCursor::After(two.next.as_deref().unwrap()), 10)
            .unwrap();
        assert_eq!(names(&three), want(20..25));
        assert_eq!(three.next, None);
        let back = s
            .page(PageCursor::Before(two.previous.as_deref().unwrap()), 10)
            .unwrap();
        assert_eq!(names(&back), want(0..10), "back to page 1");
        assert_eq!(back.previous, None);
    };
    walk(&a);
    a.snapshot().unwrap(); // writes the last-good copy
    pg.stop();
    walk(&a);
}

/// A → B propagation of 100 changes: from A's commit to B's generation bump. Run with
/// `cargo test --release --test profiles_postgres -- --ignored --nocapture propagation`.
#[test]
#[ignore = "benchmark: prints percentiles"]
fn propagation() {
    let Some(pg) = PgCluster::start() else { return };
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = node(&pg.url(), da.path());
    let b = node(&pg.url(), db.path());
    let rx = b.subscribe();
    listening(&rx);
    let p = a.create(&spec("bench"), "admin").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let (mut after_commit, mut write_to_seen) = (Vec::new(), Vec::new());
    let mut version = p.version;
    for i in 0..100 {
        let before = *rx.borrow();
        let start = Instant::now();
        let name = format!("bench{i}");
        let q = (a.replace(&p.id, &spec(&name), Some(&version.to_string()), "admin")).unwrap();
        // From A's commit returning to B's bump (0 if B was already there).
        let seen = moved(&rx, before, Duration::from_secs(2)).expect("B moved");
        after_commit.push(seen);
        write_to_seen.push(start.elapsed());
        version = q.version;
    }
    for (what, mut took) in [
        ("A's commit returned → B's bump", after_commit),
        ("A's write called → B's bump", write_to_seen),
    ] {
        took.sort();
        let pct = |p: usize| took[(took.len() * p / 100).min(took.len() - 1)];
        eprintln!(
            "propagation, {what}, {} changes: p50 {:?}, p99 {:?}, max {:?}",
            took.len(),
            pct(50),
            pct(99),
            took[took.len() - 1]
        );
    }
}
