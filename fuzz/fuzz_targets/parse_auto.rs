//! Arbitrary bytes through format sniffing (`src/lists/parse/sniff.rs`) and the replay of
//! the sniffed sample, then through `read_source` as plain and gzip files
//! (`src/lists/source.rs`).
#![no_main]

use kidsafe_dns::lists::parse::Format;
use kidsafe_dns_fuzz::{
    check_auto_over_sample_limit, check_list, check_read_gzip, check_read_source, parse_reader,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let auto = check_list(data, Format::Auto);
    // "The first meaningful lines are buffered, sniffed, then replayed in front of the rest
    // of the input": the result is that of an explicit parse in the sniffed format.
    let explicit = parse_reader(data, auto.report.format);
    assert_eq!(
        auto, explicit,
        "Auto differs from explicit {}",
        explicit.report.format
    );
    // The next two cost 10-20 times the parse (a 64 KiB padded input; files and gzip), so
    // each runs on a quarter of the inputs, picked by length.
    match data.len() % 4 {
        0 => check_auto_over_sample_limit(data),
        1 => check_read_source(data, &auto),
        _ => {}
    }
    check_read_gzip(data);
});
