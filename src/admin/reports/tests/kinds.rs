//! Report kinds, contacts, and edges' batches with idempotency keys.

use super::*;

fn keyed(key: &str, name: &str, category: &str) -> KeyedReport {
    KeyedReport {
        key: key.into(),
        serial: Some(7),
        report: report(name, category, None),
    }
}

#[test]
fn kinds_dedup_apart_and_a_mistake_needs_no_category() {
    let (_dir, mut store) = temp_store();
    let harmful = store
        .submit(&report("x.example", "adult", None), at(1))
        .unwrap();
    let mistake = NewReport {
        name: "X.Example".into(),
        kind: Kind::Mistake,
        category: "adult".into(),
        ..NewReport::default()
    };
    let m = store.submit(&mistake, at(2)).unwrap();
    assert_ne!(m.id, harmful.id, "a mistake is another report");
    assert_eq!((m.kind, m.count), (Kind::Mistake, 1));
    assert_eq!(store.submit(&mistake, at(3)).unwrap().count, 2);
    let bare = NewReport {
        name: "y.example".into(),
        kind: Kind::Mistake,
        ..NewReport::default()
    };
    let b = store.submit(&bare, at(4)).unwrap();
    assert_eq!((b.category.as_str(), b.count), ("", 1));
    assert_eq!(store.submit(&bare, at(5)).unwrap().count, 2);
    let no_category = NewReport {
        name: "z.example".into(),
        ..NewReport::default()
    };
    let e = store.submit(&no_category, at(6)).unwrap_err();
    assert_eq!(invalid_field(e), "category");
    let r = store.get(m.id).unwrap().unwrap();
    assert_eq!(r.kind, Kind::Mistake);
}

#[test]
fn urls_become_hosts_and_addresses_are_refused() {
    let (_dir, mut store) = temp_store();
    for (input, host) in [
        ("https://Bad.Example/x?y", "bad.example"),
        ("http://user@bad.example:8080/#frag", "bad.example"),
        ("bad.example/path", "bad.example"),
        ("https://Bücher.example/", "xn--bcher-kva.example"),
    ] {
        let s = store.submit(&report(input, "adult", None), at(1)).unwrap();
        assert_eq!(s.name, host, "{input}");
    }
    for ip in [
        "192.0.2.1",
        "2001:db8::1",
        "[2001:db8::1]",
        "http://192.0.2.1/x",
        "https://[::1]/",
    ] {
        let e = store.submit(&report(ip, "adult", None), at(1)).unwrap_err();
        assert!(e.to_string().contains("IP address"), "{ip}: {e}");
    }
    let long = format!("{}.example", vec!["a".repeat(60); 5].join("."));
    let e = store
        .submit(&report(&long, "adult", None), at(1))
        .unwrap_err();
    assert!(e.to_string().contains("253"), "{e}");
    for bad in ["ftp://", "http://exa mple.com/", "not a name/x"] {
        assert_eq!(
            invalid_field(
                store
                    .submit(&report(bad, "adult", None), at(1))
                    .unwrap_err()
            ),
            "name",
            "{bad}"
        );
    }
}

#[test]
fn contacts_are_cleaned_kept_and_listed() {
    let (_dir, mut store) = temp_store();
    let mut r = report("c.example", "adult", None);
    r.contact = Some(" parent@example.org\n".into());
    let id = store.submit(&r, at(1)).unwrap().id;
    r.contact = Some("x".repeat(MAX_CONTACT_CHARS + 1));
    assert_eq!(
        invalid_field(store.submit(&r, at(2)).unwrap_err()),
        "contact"
    );
    assert_eq!(
        store.get(id).unwrap().unwrap().contacts,
        ["parent@example.org"]
    );
}

#[test]
fn a_batch_counts_each_key_once_and_lists_bad_input() {
    let (_dir, mut store) = temp_store();
    store.set_categories(Some(vec!["adult".into()]));
    let batch = vec![
        keyed("k1", "a.example", "adult"),
        keyed("k2", "a.example", "adult"),
        keyed("k3", "192.0.2.1", "adult"),
        keyed("k4", "b.example", "weapons"),
        keyed("bad key!", "c.example", "adult"),
        keyed("k1", "a.example", "adult"),
    ];
    let out = store.submit_batch("edge-1", &batch, at(100)).unwrap();
    assert_eq!((out.accepted, out.duplicates), (2, 1));
    let refused: Vec<&str> = out.invalid.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(refused, ["k3", "k4", "bad key!"]);
    assert_eq!(out.stored.len(), 2);
    // Redelivered whole: nothing counted again.
    let again = store.submit_batch("edge-1", &batch, at(200)).unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 3));
    let a = all(&store);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].count, 2);
    // The node and serial travelled with the keys.
    let (node, serial): (String, i64) = store
        .conn
        .query_row(
            "SELECT node, serial FROM report_keys WHERE key = 'k1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((node.as_str(), serial), ("edge-1", 7));
    // After the retention, a key is forgotten (and would count again).
    let later = at(100 + KEY_RETENTION.as_secs() + 1);
    let out = store
        .submit_batch("edge-1", &[keyed("k1", "a.example", "adult")], later)
        .unwrap();
    assert_eq!(out.accepted, 1);
    let too_many: Vec<KeyedReport> = (0..=MAX_BATCH)
        .map(|i| keyed(&format!("m{i}"), "m.example", "adult"))
        .collect();
    assert_eq!(
        invalid_field(store.submit_batch("e", &too_many, at(1)).unwrap_err()),
        "reports"
    );
}

#[test]
fn keyed_reports_travel_as_flat_json() {
    let k = keyed("k1", "a.example", "adult");
    let json = serde_json::to_value(&k).unwrap();
    assert_eq!(json["key"], "k1");
    assert_eq!(json["name"], "a.example");
    assert_eq!(json["kind"], "harmful");
    let back: KeyedReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, k);
}
