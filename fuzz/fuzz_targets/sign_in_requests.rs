//! What sign-ins and the IAM/STS API parse from callers: form bodies,
//! SigV4 Authorization headers (and the canonical request built from the
//! headers they name), JWT identity tokens checked against a key set, and
//! policy claims. Never a panic; a token never verifies without a key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use objd::api::query::Params;
use objd::api::query::sigv4::{parse_authorization, verify};
use objd::iam::openid::{OpenIdConfig, issuer_of, policy_names, verify_with_jwks};

fuzz_target!(|data: &[u8]| {
    let params = Params::parse(data);
    let _ = params.get("Action");
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(Ok(auth)) = parse_authorization(text) {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", http::HeaderValue::from_static("s3.example.com"));
        headers.insert("x-amz-date", http::HeaderValue::from_static("20260101T000000Z"));
        let uri: http::Uri = "/?a=b%20c&d".parse().unwrap();
        let _ = verify(
            &auth,
            &http::Method::POST,
            &uri,
            &headers,
            data,
            "secret",
            1_767_225_600,
        );
    }
    let _ = issuer_of(text);
    let cfg = OpenIdConfig {
        issuer: "https://idp.example".into(),
        client_ids: vec!["strata".into()],
        claim: "policy".into(),
        roles: Default::default(),
    };
    // No key: nothing verifies, whatever the token claims.
    let empty = br#"{"keys": []}"#;
    assert!(!matches!(verify_with_jwks(&cfg, empty, text, 0), Ok(Some(_))));
    // The input as a key set, with a fixed token.
    let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwiYXVkIjoic3RyYXRhIiwiZXhwIjo5OTk5OTk5OTk5fQ.AAAA";
    let _ = verify_with_jwks(&cfg, data, token, 0);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = policy_names(Some(&v));
    }
});
