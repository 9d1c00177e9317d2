//! Arbitrary bytes as an RPZ zone file (`src/lists/parse/rpz.rs`, `zone_text.rs`).
#![no_main]

use kidsafe_dns::lists::parse::Format;
use kidsafe_dns_fuzz::{check_at_most_one_verdict_per_line, check_list};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = check_list(data, Format::Rpz);
    // One verdict per record; records span one or more lines.
    check_at_most_one_verdict_per_line(&parsed);
});
