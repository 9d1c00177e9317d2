//! Submitting, listing, deciding, and the output types.

use super::*;

#[test]
fn submit_creates_a_report() {
    let (_dir, mut store) = temp_store();
    let s = store
        .submit(
            &report("Casino.Example.", "gambling", Some("slots")),
            at(100),
        )
        .unwrap();
    assert_eq!(
        s,
        Submitted {
            id: s.id,
            name: "casino.example".into(),
            kind: Kind::Harmful,
            category: "gambling".into(),
            count: 1,
            new: true,
        }
    );
    assert_eq!(
        store.get(s.id).unwrap().unwrap(),
        Report {
            id: s.id,
            name: "casino.example".into(),
            kind: Kind::Harmful,
            category: "gambling".into(),
            notes: vec!["slots".into()],
            count: 1,
            first_seen: 100,
            last_seen: 100,
            status: Status::Open,
            contacts: Vec::new(),
            decisions: Vec::new(),
        }
    );
    assert_eq!(store.get(s.id + 1).unwrap(), None);
}

#[test]
fn spellings_of_one_name_dedup_into_one_report() {
    let (_dir, mut store) = temp_store();
    let a = store
        .submit(&report("bücher.example", "adult", None), at(100))
        .unwrap();
    let b = store
        .submit(&report("  BÜCHER.Example.  ", "adult", None), at(200))
        .unwrap();
    let c = store
        .submit(&report("XN--BCHER-KVA.EXAMPLE.", "adult", None), at(150))
        .unwrap();
    assert_eq!(a.name, "xn--bcher-kva.example");
    assert!(a.new && !b.new && !c.new);
    assert_eq!((a.id, a.count), (b.id, 1));
    assert_eq!((b.count, c.count), (2, 3));
    let reports = all(&store);
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!((r.count, r.first_seen, r.last_seen), (3, 100, 200));
    assert!(r.notes.is_empty());
}

#[test]
fn other_category_is_another_report() {
    let (_dir, mut store) = temp_store();
    let a = store
        .submit(&report("x.example", "adult", None), at(1))
        .unwrap();
    let b = store
        .submit(&report("x.example", "gambling", None), at(2))
        .unwrap();
    let c = store
        .submit(&report("x.example", "Adult", None), at(3))
        .unwrap();
    assert!(a.new && b.new && c.new, "categories are case-sensitive");
    assert_ne!(a.id, b.id);
    assert_eq!(all(&store).len(), 3);
}

#[test]
fn notes_keep_the_first_then_distinct_ones_up_to_the_cap() {
    let (_dir, mut store) = temp_store();
    let mut id = 0;
    store
        .submit(&report("n.example", "adult", None), at(1))
        .unwrap();
    for (i, note) in ["first", "second", "first", "  second\n", "\u{202e}third"]
        .into_iter()
        .enumerate()
    {
        id = store
            .submit(&report("n.example", "adult", Some(note)), at(2 + i as u64))
            .unwrap()
            .id;
    }
    let r = store.get(id).unwrap().unwrap();
    assert_eq!(r.notes, ["first", "second", "third"]);
    assert_eq!(r.count, 6);

    for i in 0..2 * MAX_NOTES {
        store
            .submit(
                &report("n.example", "adult", Some(&format!("note {i}"))),
                at(10),
            )
            .unwrap();
    }
    let r = store.get(id).unwrap().unwrap();
    assert_eq!(r.notes.len(), MAX_NOTES);
    assert_eq!(r.notes[0], "first");
    assert_eq!(r.notes[MAX_NOTES - 1], format!("note {}", MAX_NOTES - 4));
    assert_eq!(r.count, 6 + 2 * MAX_NOTES as u64);
}

#[test]
fn decisions_set_the_status_and_are_kept_with_their_time() {
    let (_dir, mut store) = temp_store();
    let id = store
        .submit(&report("bet.example", "gambling", None), at(10))
        .unwrap()
        .id;
    let decision = |status, note: Option<&str>| NewDecision {
        status,
        note: note.map(str::to_owned),
    };
    let r = store
        .decide(
            id,
            &decision(Status::Rejected, Some("a news site\n")),
            at(20),
        )
        .unwrap();
    assert_eq!(r.status, Status::Rejected);
    let r = store
        .decide(id, &decision(Status::Accepted, None), at(30))
        .unwrap();
    assert_eq!(r.status, Status::Accepted);
    assert_eq!(
        r.decisions,
        [
            Decision {
                status: Status::Rejected,
                note: Some("a news site".into()),
                decided_at: 20,
            },
            Decision {
                status: Status::Accepted,
                note: None,
                decided_at: 30,
            },
        ]
    );
    assert_eq!(all(&store)[0].decisions, r.decisions);

    // Refused decisions change nothing.
    let before = store.get(id).unwrap();
    let e = store
        .decide(id, &decision(Status::Open, Some("x")), at(40))
        .unwrap_err();
    assert_eq!(invalid_field(e), "status");
    let long = "x".repeat(MAX_NOTE_CHARS + 1);
    let e = store
        .decide(id, &decision(Status::Rejected, Some(&long)), at(40))
        .unwrap_err();
    assert_eq!(invalid_field(e), "note");
    let e = store
        .decide(id + 1, &decision(Status::Rejected, None), at(40))
        .unwrap_err();
    assert!(matches!(e, ReportError::NotFound { .. }), "{e}");
    assert_eq!(store.get(id).unwrap(), before);
}

#[test]
fn list_pages_newest_first_and_filters_by_status() {
    let (_dir, mut store) = temp_store();
    let ids: Vec<i64> = (0..25)
        .map(|i| {
            store
                .submit(&report(&format!("s{i}.example"), "adult", None), at(i))
                .unwrap()
                .id
        })
        .collect();
    // A repeat of the oldest does not move it up.
    store
        .submit(&report("s0.example", "adult", None), at(100))
        .unwrap();

    let mut seen = Vec::new();
    let mut after_id = None;
    loop {
        let page = store
            .list(&ListQuery {
                limit: Some(10),
                after_id,
                ..ListQuery::default()
            })
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10);
        after_id = page.last().map(|r| r.id);
        seen.extend(page.into_iter().map(|r| r.id));
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    assert_eq!(store.list(&ListQuery::default()).unwrap().len(), 25);
    let zero = ListQuery {
        limit: Some(0),
        ..ListQuery::default()
    };
    assert!(store.list(&zero).unwrap().is_empty());

    store.set_status(ids[3], Status::Accepted).unwrap();
    store.set_status(ids[7], Status::Accepted).unwrap();
    store.set_status(ids[9], Status::Rejected).unwrap();
    let by_status = |status| {
        store
            .list(&ListQuery {
                status: Some(status),
                ..ListQuery::default()
            })
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(by_status(Status::Accepted), [ids[7], ids[3]]);
    assert_eq!(by_status(Status::Rejected), [ids[9]]);
    assert_eq!(by_status(Status::Open).len(), 22);

    let err = store.set_status(9999, Status::Accepted).unwrap_err();
    assert!(matches!(err, ReportError::NotFound { id: 9999 }));
    assert!(err.is_client_error());
}

#[test]
fn list_limit_is_capped() {
    let (_dir, mut store) = temp_store();
    // Many commits: skip the fsyncs, durability is not what this test is about.
    store
        .conn
        .pragma_update(None, "synchronous", "OFF")
        .unwrap();
    for i in 0..MAX_LIST_LIMIT + 5 {
        store
            .submit(&report(&format!("c{i}.example"), "adult", None), at(1))
            .unwrap();
    }
    let q = |limit| ListQuery {
        limit,
        ..ListQuery::default()
    };
    assert_eq!(store.list(&q(None)).unwrap().len(), DEFAULT_LIST_LIMIT);
    assert_eq!(
        store.list(&q(Some(usize::MAX))).unwrap().len(),
        MAX_LIST_LIMIT
    );
}

#[test]
fn repeat_keeps_status() {
    let (_dir, mut store) = temp_store();
    let s = store
        .submit(&report("k.example", "adult", None), at(1))
        .unwrap();
    store.set_status(s.id, Status::Rejected).unwrap();
    store
        .submit(&report("k.example", "adult", None), at(2))
        .unwrap();
    let r = store.get(s.id).unwrap().unwrap();
    assert_eq!((r.status, r.count), (Status::Rejected, 2));
}

#[test]
fn output_types_serialize_for_the_http_layer() {
    let r = Report {
        id: 7,
        name: "x.example".into(),
        kind: Kind::Harmful,
        category: "adult".into(),
        notes: vec!["n".into()],
        count: 2,
        first_seen: 1,
        last_seen: 3,
        status: Status::Accepted,
        contacts: Vec::new(),
        decisions: Vec::new(),
    };
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        r#"{"id":7,"name":"x.example","kind":"harmful","category":"adult","notes":["n"],"count":2,"first_seen":1,"last_seen":3,"status":"accepted"}"#
    );
    let q: ListQuery =
        serde_json::from_str(r#"{"status":"open","limit":5,"after_id":9,"category":"adult"}"#)
            .unwrap();
    assert_eq!(
        q,
        ListQuery {
            status: Some(Status::Open),
            limit: Some(5),
            after_id: Some(9),
            category: Some("adult".into()),
        }
    );
    let n: NewReport = serde_json::from_str(r#"{"name":"x.example","category":"adult"}"#).unwrap();
    assert_eq!(n.note, None);
    assert_eq!("rejected".parse::<Status>().unwrap(), Status::Rejected);
    assert_eq!(
        invalid_field("Open".parse::<Status>().unwrap_err()),
        "status"
    );
}

#[test]
fn sorted_lists_page_by_count_and_last_seen_within_a_status_through_their_indexes() {
    let (_dir, mut store) = temp_store();
    // a: 1 report at t=10; b: 3 up to t=12; c: 2 up to t=30; d: 2, decided.
    store
        .submit(&report("a.example", "gambling", None), at(10))
        .unwrap();
    for t in [5, 11, 12] {
        store
            .submit(&report("b.example", "gambling", None), at(t))
            .unwrap();
    }
    for t in [6, 30] {
        store
            .submit(&report("c.example", "gambling", None), at(t))
            .unwrap();
    }
    for t in [7, 40] {
        store
            .submit(&report("d.example", "gambling", None), at(t))
            .unwrap();
    }
    let d = store.list(&ListQuery::default()).unwrap()[0].id;
    store.set_status(d, Status::Rejected).unwrap();
    let names = |v: Vec<Report>| -> Vec<String> { v.into_iter().map(|r| r.name).collect() };
    let open = Some(Status::Open);
    assert_eq!(
        names(
            store
                .list_sorted(open, None, SortBy::Count, None, 0)
                .unwrap()
        ),
        ["b.example", "c.example", "a.example"]
    );
    assert_eq!(
        names(
            store
                .list_sorted(open, None, SortBy::Count, Some(1), 1)
                .unwrap()
        ),
        ["c.example"],
        "page 2 of 1-report pages"
    );
    assert_eq!(
        names(
            store
                .list_sorted(open, None, SortBy::LastSeen, None, 0)
                .unwrap()
        ),
        ["c.example", "b.example", "a.example"]
    );
    assert_eq!(
        names(
            store
                .list_sorted(None, None, SortBy::LastSeen, Some(2), 0)
                .unwrap()
        ),
        ["d.example", "c.example"],
        "every status"
    );
    // Within a status, the order is an index walk, not a sort of every report.
    for (order, index) in [
        ("count DESC, id DESC", "reports_status_count"),
        ("last_seen DESC, id DESC", "reports_status_last_seen"),
    ] {
        let plan: Vec<String> = store
            .conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN SELECT id FROM reports WHERE status = ?1 \
                 ORDER BY {order} LIMIT 50 OFFSET 0"
            ))
            .unwrap()
            .query_map(["open"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join(" | ");
        assert!(
            plan.contains(index) && !plan.contains("TEMP B-TREE"),
            "{order}: {plan}"
        );
    }
}

#[test]
fn a_category_keeps_its_reports_in_every_order_and_status_through_its_indexes() {
    let (_dir, mut store) = temp_store();
    // Twelve gambling reports (g0 reported once ... g11 twelve times, the later the more
    // recent), five adult ones, one violence; g3 rejected.
    for i in 0..12u64 {
        for t in 0..=i {
            store
                .submit(
                    &report(&format!("g{i}.example"), "gambling", None),
                    at(100 + i * 10 + t),
                )
                .unwrap();
        }
    }
    for i in 0..5u64 {
        store
            .submit(
                &report(&format!("a{i}.example"), "adult", None),
                at(500 + i),
            )
            .unwrap();
    }
    store
        .submit(&report("v0.example", "violence", None), at(600))
        .unwrap();
    let g3 = store
        .list(&ListQuery::default())
        .unwrap()
        .into_iter()
        .find(|r| r.name == "g3.example")
        .unwrap()
        .id;
    store.set_status(g3, Status::Rejected).unwrap();
    let names = |v: Vec<Report>| -> Vec<String> { v.into_iter().map(|r| r.name).collect() };
    let gambling = |status, limit, after_id| ListQuery {
        status,
        limit: Some(limit),
        after_id,
        category: Some("gambling".into()),
    };
    let open = Some(Status::Open);

    // Newest first, paged by id: only open gambling reports, g3 left out.
    let first = store.list(&gambling(open, 5, None)).unwrap();
    assert_eq!(
        names(first.clone()),
        [
            "g11.example",
            "g10.example",
            "g9.example",
            "g8.example",
            "g7.example"
        ]
    );
    let rest = store.list(&gambling(open, 50, Some(first[4].id))).unwrap();
    assert_eq!(
        names(rest),
        [
            "g6.example",
            "g5.example",
            "g4.example",
            "g2.example",
            "g1.example",
            "g0.example"
        ]
    );
    let every = store.list(&gambling(None, 50, None)).unwrap();
    assert_eq!(every.len(), 12, "every status: g3 too");
    assert!(every.iter().all(|r| r.category == "gambling"));
    let rejected = store
        .list(&gambling(Some(Status::Rejected), 50, None))
        .unwrap();
    assert_eq!(names(rejected), ["g3.example"]);
    let unknown = ListQuery {
        category: Some("nope".into()),
        ..ListQuery::default()
    };
    assert!(store.list(&unknown).unwrap().is_empty());

    // The sorted orders, within the category.
    let sorted = |status, sort, limit, offset| {
        names(
            store
                .list_sorted(status, Some("gambling"), sort, Some(limit), offset)
                .unwrap(),
        )
    };
    assert_eq!(
        sorted(open, SortBy::Count, 3, 0),
        ["g11.example", "g10.example", "g9.example"]
    );
    assert_eq!(
        sorted(open, SortBy::Count, 3, 9),
        ["g1.example", "g0.example"],
        "the last page: g3 is not open"
    );
    assert_eq!(
        sorted(open, SortBy::LastSeen, 2, 0),
        ["g11.example", "g10.example"]
    );
    assert_eq!(sorted(None, SortBy::Count, 12, 0).len(), 12);
    assert_eq!(
        names(
            store
                .list_sorted(open, Some("violence"), SortBy::Count, None, 0)
                .unwrap()
        ),
        ["v0.example"]
    );

    // Each query is a walk of the index made for it: no sort, no scan of other categories.
    let plan = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> String {
        store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(params, |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
            .join(" | ")
    };
    for (sql, index) in [
        (
            "SELECT id FROM reports WHERE status = ? AND category = ? AND id < 99 ORDER BY id DESC LIMIT 50",
            "reports_status_category ",
        ),
        (
            "SELECT id FROM reports WHERE status = ? AND category = ? ORDER BY count DESC, id DESC LIMIT 50",
            "reports_status_category_count",
        ),
        (
            "SELECT id FROM reports WHERE status = ? AND category = ? ORDER BY last_seen DESC, id DESC LIMIT 50",
            "reports_status_category_last_seen",
        ),
    ] {
        let p = plan(sql, &[&"open", &"gambling"]);
        assert!(
            p.contains(index) && !p.contains("TEMP B-TREE"),
            "{sql}: {p}"
        );
    }
    let p = plan(
        "SELECT id FROM reports WHERE category = ? AND id < 99 ORDER BY id DESC LIMIT 50",
        &[&"gambling"],
    );
    assert!(
        p.contains("reports_category ") && !p.contains("TEMP B-TREE"),
        "{p}"
    );
    // Without a category, the queue keeps its schema 4 indexes.
    let p = plan(
        "SELECT id FROM reports WHERE status = ? AND id < 99 ORDER BY id DESC LIMIT 50",
        &[&"open"],
    );
    assert!(
        p.contains("reports_status ") && !p.contains("TEMP B-TREE"),
        "{p}"
    );
}
