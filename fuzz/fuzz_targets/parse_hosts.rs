//! Arbitrary bytes as a hosts file (`src/lists/parse/hosts.rs`).
#![no_main]

use kidsafe_dns::lists::parse::Format;
use kidsafe_dns::lists::rule::{Action, Scope};
use kidsafe_dns_fuzz::{check_all_rules, check_line_by_line, check_list};
use libfuzzer_sys::fuzz_target;

/// hosts.rs `LOCAL_NAMES` (minus `0.0.0.0`, never a rule name): the loopback boilerplate is
/// "skipped, neither accepted nor rejected", because "blocking them would break the host".
const LOCAL_NAMES: [&str; 4] = [
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
];

fuzz_target!(|data: &[u8]| {
    let parsed = check_list(data, Format::Hosts);
    // "Each following token is one name matching only itself."
    check_all_rules(&parsed, Action::Block, Scope::Exact);
    for rule in &parsed.rules {
        let name = rule.name.as_str();
        assert!(!LOCAL_NAMES.contains(&name), "local name emitted: {name:?}");
        assert!(
            name.contains('.') || !name.starts_with("ip6-"),
            "single-label ip6-* name emitted: {name:?}"
        );
    }
    check_line_by_line(data, Format::Hosts, &parsed, &mut |_, _| {});
});
