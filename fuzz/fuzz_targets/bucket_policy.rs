//! Policy documents from clients and admins (bucket and identity policies,
//! with conditions and policy variables): parsing never panics, a policy
//! that parses evaluates without panicking for any request context made
//! from the input, and nothing is allowed unless some statement allows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use objd::policy::{Context, Decision, Policy, Principal, resource_arn};

/// A request context whose values come from the input.
fn context(text: &str) -> Context {
    let mut c = Context::default();
    let keys = [
        "aws:SourceIp",
        "aws:SecureTransport",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:UserAgent",
        "aws:username",
        "s3:prefix",
        "s3:max-keys",
        "s3:RequestObjectTagKeys",
        "s3:RequestObjectTag/team",
    ];
    for (k, v) in keys.iter().zip(text.split('\n')) {
        c.add(k, v);
    }
    c
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ctx = context(text);
    let parsed = [Policy::parse(text, "bucket"), Policy::parse_identity(text)];
    for p in parsed.iter().flatten() {
        let key = resource_arn("bucket", Some("a/b.txt"));
        for action in ["s3:GetObject", "s3:PutObject", "s3:ListBucket"] {
            for who in [
                Principal::Anonymous,
                Principal::Arn("arn:aws:iam::000000000000:user/u"),
            ] {
                let d = p.evaluate_in(who, action, &key, &ctx);
                assert!(d != Decision::Allow || text.contains("Allow"));
                let _ = p.evaluate(who, action, &key);
            }
        }
        let _ = p.is_public();
    }
    let _ = ctx.substitute(text);
    // Patterns from the input against text from the input.
    let mid = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(text.len(), |(i, _)| i);
    let (a, b) = text.split_at(mid);
    let _ = objd::policy::wildcard(a, b, true);
    let _ = objd::policy::wildcard(a, b, false);
});
