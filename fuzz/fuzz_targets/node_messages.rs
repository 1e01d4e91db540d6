//! Messages between cluster nodes (commit ops, value lists, entries, data
//! directory lists, signatures): decoding never panics or allocates
//! beyond the input, and what decodes encodes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use objd::drive::rpc;

fuzz_target!(|data: &[u8]| {
    if let Ok(ops) = rpc::decode_ops(data) {
        assert_eq!(
            rpc::decode_ops(&rpc::encode_ops(&ops)).map(|o| format!("{o:?}")),
            Ok(format!("{ops:?}"))
        );
    }
    if let Ok(v) = rpc::decode_values(data) {
        assert_eq!(rpc::decode_values(&rpc::encode_values(&v)), Ok(v));
    }
    if let Ok(e) = rpc::decode_entries(data) {
        assert_eq!(rpc::decode_entries(&rpc::encode_entries(&e)), Ok(e));
    }
    let _ = rpc::decode_dirs(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let key = rpc::NodeKey::derive("fuzz-secret");
        assert!(!key.verify(text, "commit", ""));
        let _ = rpc::unhex(text);
    }
});
