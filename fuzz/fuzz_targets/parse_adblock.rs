//! Arbitrary bytes as an adblock-style filter list (`src/lists/parse/adblock.rs`).
#![no_main]

use kidsafe_dns::lists::parse::Format;
use kidsafe_dns::lists::rule::Action;
use kidsafe_dns_fuzz::{check_line_by_line, check_list};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = check_list(data, Format::Adblock);
    check_line_by_line(data, Format::Adblock, &parsed, &mut |line, one| {
        // Only `@@` exception rules allow; everything else (incl. hosts lines) blocks.
        if one.rules.iter().any(|rule| rule.action == Action::Allow) {
            let text = String::from_utf8_lossy(line);
            let text = text.trim_start_matches(['\u{feff}', ' ', '\t']);
            assert!(text.starts_with("@@"), "allow rule from {text:?}");
        }
    });
});
