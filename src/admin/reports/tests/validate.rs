//! Rejected and cleaned input: names, categories, notes.

use super::*;
use crate::admin::reports::validate::{MAX_NAME_INPUT, MAX_NOTE_INPUT, clean_note};

#[test]
fn notes_are_cleaned() {
    assert_eq!(clean_note("  \t \n").unwrap(), None);
    assert_eq!(
        clean_note("line one\r\nline\ttwo\u{0}\u{7f}\u{85}end")
            .unwrap()
            .unwrap(),
        "line one  line two   end"
    );
    assert_eq!(
        clean_note("a\u{202e}b\u{2066}c\u{200f}").unwrap().unwrap(),
        "abc"
    );
    assert_eq!(
        clean_note("Grüße 😀").unwrap().unwrap(),
        "Grüße 😀",
        "non-ASCII text is kept"
    );
    let max = "é".repeat(MAX_NOTE_CHARS);
    assert_eq!(
        clean_note(&max).unwrap().unwrap(),
        max,
        "counted in characters"
    );
    assert_eq!(
        clean_note(&format!("\n{max}\n")).unwrap().unwrap(),
        max,
        "after trimming"
    );
}

#[test]
fn bad_names_are_rejected() {
    let (_dir, mut store) = temp_store();
    for name in [
        "",
        " ",
        ".",
        "a..example",
        "1.2.3.4",
        "::1",
        "[2001:db8::1]",
        "https://192.0.2.1/page",
        "*.example.com",
        "exa mple.com",
        "xn--zz.example",
        &"a".repeat(64),
        &format!("{}.example", "a.".repeat(130)),
        &"a".repeat(MAX_NAME_INPUT + 1),
    ] {
        let err = store
            .submit(&report(name, "adult", None), at(1))
            .unwrap_err();
        assert!(err.is_client_error());
        let msg = err.to_string();
        assert_eq!(invalid_field(err), "name", "{name:?}: {msg}");
    }
    let err = store
        .submit(&report("10.0.0.1", "adult", None), at(1))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid name: an IP address; reports name a host (e.g. www.example.com), not an address"
    );
    assert!(all(&store).is_empty(), "nothing written");
}

#[test]
fn bad_categories_are_rejected() {
    let (_dir, mut store) = temp_store();
    for category in [
        "",
        " adult",
        "adult ",
        "adu\nlt",
        "adült",
        "\u{0}",
        &"c".repeat(MAX_CATEGORY_LEN + 1),
    ] {
        let err = store
            .submit(&report("ok.example", category, None), at(1))
            .unwrap_err();
        assert_eq!(invalid_field(err), "category", "{category:?}");
    }
    assert!(
        store
            .submit(&report("ok.example", "self harm", None), at(1))
            .unwrap()
            .new
    );
    assert!(
        store
            .submit(
                &report("ok.example", &"c".repeat(MAX_CATEGORY_LEN), None),
                at(1)
            )
            .unwrap()
            .new
    );
}

#[test]
fn configured_categories_restrict_submissions() {
    let (_dir, mut store) = temp_store();
    store.set_categories(Some(vec!["adult".into(), "gambling".into()]));
    let err = store
        .submit(&report("ok.example", "weapons", None), at(1))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid category: unknown category \"weapons\"; expected one of: adult, gambling"
    );
    assert!(
        store
            .submit(&report("ok.example", "gambling", None), at(1))
            .is_ok()
    );
    store.set_categories(None);
    assert!(
        store
            .submit(&report("ok.example", "weapons", None), at(1))
            .is_ok()
    );
}

#[test]
fn bad_notes_are_rejected() {
    let (_dir, mut store) = temp_store();
    for note in [
        "x".repeat(MAX_NOTE_CHARS + 1),
        "é".repeat(MAX_NOTE_CHARS + 1),
        " ".repeat(MAX_NOTE_INPUT + 1),
    ] {
        let err = store
            .submit(&report("ok.example", "adult", Some(&note)), at(1))
            .unwrap_err();
        assert_eq!(invalid_field(err), "note");
    }
    assert!(all(&store).is_empty());
    let s = store
        .submit(&report("ok.example", "adult", Some("\n \t")), at(1))
        .unwrap();
    assert!(store.get(s.id).unwrap().unwrap().notes.is_empty());
}
