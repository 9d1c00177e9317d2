//! Arbitrary bytes as a plain domain list (`src/lists/parse/domains.rs`).
#![no_main]

use kidsafe_dns::lists::parse::Format;
use kidsafe_dns::lists::rule::{Action, Scope};
use kidsafe_dns_fuzz::{
    check_all_rules, check_at_most_one_verdict_per_line, check_line_by_line, check_list,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = check_list(data, Format::Domains);
    // "Every entry blocks the name and its subdomains."
    check_all_rules(&parsed, Action::Block, Scope::Subtree);
    check_at_most_one_verdict_per_line(&parsed);
    check_line_by_line(data, Format::Domains, &parsed, &mut |_, line| {
        // One name per line; a line with more than one token is Malformed.
        let report = &line.report;
        assert!(report.accepted + report.rejected_total() + report.unsupported <= 1);
    });
});
