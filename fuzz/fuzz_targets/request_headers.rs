//! Request header values objd parses itself: `x-amz-tagging`,
//! `x-amz-copy-source-range`, `x-amz-checksum-*` values. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use objd::object::checksum::{ChecksumAlgo, decode_value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = objd::api::s3::parse::tagging_header(Some(text));
    let _ = objd::api::s3::parse::copy_source_range(Some(text));
    for algo in ChecksumAlgo::ALL {
        let _ = decode_value(algo, text);
    }
});
