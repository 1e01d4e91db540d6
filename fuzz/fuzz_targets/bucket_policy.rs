//! Bucket policy documents from clients: parsing never panics, and a
//! policy that parses evaluates without panicking for any request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use objd::policy::{Policy, Principal, resource_arn};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = Policy::parse(text, "bucket") {
        let key = resource_arn("bucket", Some("a/b.txt"));
        for action in ["s3:GetObject", "s3:PutObject", "s3:ListBucket"] {
            let _ = p.evaluate(Principal::Anonymous, action, &key);
            let _ = p.evaluate(Principal::Arn("arn:aws:iam::000000000000:user/u"), action, &key);
        }
        let _ = p.is_public();
    }
    // Patterns from the input against text from the input.
    let mid = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(text.len(), |(i, _)| i);
    let (a, b) = text.split_at(mid);
    let _ = objd::policy::wildcard(a, b, true);
    let _ = objd::policy::wildcard(a, b, false);
});
