//! Bucket settings stored as JSON (CORS rules, Object Lock configuration)
//! read back from drives: decoding and using them never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use objd::cors::CorsConfig;

fuzz_target!(|data: &[u8]| {
    if let Some(c) = CorsConfig::decode(data) {
        let _ = c.validate();
        let _ = c.find("https://a.example.com", "GET", &["content-type"]);
        assert_eq!(CorsConfig::decode(&c.encode()), Some(c));
    }
    if let Ok(c) = serde_json::from_slice::<objd::object::lock::LockConfig>(data)
        && c.validate().is_ok()
    {
        let _ = c.default_retention(i64::MAX - 1);
    }
});
