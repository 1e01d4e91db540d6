//! SigV4 verification of IAM and STS requests (header-signed, the payload
//! hashed: what the AWS SDKs and CLI send). S3 requests are verified by
//! `s3s`, which knows only the `s3` and `sts` services.

use http::{HeaderMap, Method, Uri};
use sha2::{Digest, Sha256};
use strata_s3client::sigv4::{signature, uri_encode};

/// Largest difference allowed between a request's time and the server's.
const MAX_SKEW_SECS: i64 = 15 * 60;

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("the Authorization header is not a well-formed AWS4-HMAC-SHA256 signature")]
    Malformed,
    #[error("the request has no valid X-Amz-Date")]
    MissingDate,
    #[error("the request time is more than 15 minutes from the server's")]
    Skewed,
    #[error("the signature does not match")]
    Mismatch,
}

/// Parses the header; `None` when it is not SigV4 at all.
pub fn parse_authorization(value: &str) -> Option<Result<Authorization, SigError>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256")?;
    Some(parse_fields(rest).ok_or(SigError::Malformed))
}

fn parse_fields(rest: &str) -> Option<Authorization> {
    let (mut credential, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => sig = Some(v),
            _ => return None,
        }
    }
    let mut scope = credential?.split('/');
    let (ak, date, region, service, term) = (
        scope.next()?,
        scope.next()?,
        scope.next()?,
        scope.next()?,
        scope.next()?,
    );
    if term != "aws4_request" || scope.next().is_some() || ak.is_empty() || date.len() != 8 {
        return None;
    }
    let signed_headers: Vec<String> = signed?.split(';').map(str::to_ascii_lowercase).collect();
    let signature = sig?;
    if !signed_headers.iter().any(|h| h == "host") || signature.len() != 64 {
        return None;
    }
    Some(Authorization {
        access_key: ak.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
    })
}

/// The canonical request of a header-signed request.
pub fn canonical_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    signed_headers: &[String],
    payload_hash: &str,
) -> String {
    let path = crate::api::admin::percent_decode(uri.path());
    let mut query: Vec<(String, String)> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&crate::api::admin::percent_decode(k), false),
                uri_encode(&crate::api::admin::percent_decode(v), false),
            )
        })
        .collect();
    query.sort();
    let query: Vec<String> = query.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut out = format!("{method}\n{}\n{}\n", uri_encode(&path, true), query.join("&"));
    for name in signed_headers {
        let values: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        out.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    out.push_str(&format!("\n{}\n{payload_hash}", signed_headers.join(";")));
    out
}

/// Seconds since the epoch of `YYYYMMDD'T'HHMMSS'Z'`.
fn amz_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u16>().ok();
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::from(num(0..4)?), month, u8::try_from(num(6..8)?).ok()?).ok()?;
    let t = time::Time::from_hms(
        u8::try_from(num(9..11)?).ok()?,
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(13..15)?).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// Checks a request's signature against `secret` at `now` (seconds since
/// the epoch).
pub fn verify(
    auth: &Authorization,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    secret: &str,
    now: i64,
) -> Result<(), SigError> {
    let date_time = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or(SigError::MissingDate)?;
    let at = amz_time(date_time).ok_or(SigError::MissingDate)?;
    if (at - now).abs() > MAX_SKEW_SECS {
        return Err(SigError::Skewed);
    }
    if !date_time.starts_with(&auth.date) {
        return Err(SigError::Mismatch);
    }
    let payload = headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| hex::encode(Sha256::digest(body)), str::to_owned);
    if payload != hex::encode(Sha256::digest(body)) {
        return Err(SigError::Mismatch);
    }
    let canonical = canonical_request(method, uri, headers, &auth.signed_headers, &payload);
    let expected = signature(secret, date_time, &auth.region, &auth.service, &canonical);
    // Constant time: a timing difference must not reveal a prefix.
    let same = expected.len() == auth.signature.len()
        && expected
            .bytes()
            .zip(auth.signature.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same { Ok(()) } else { Err(SigError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IAM `ListUsers` example of AWS's Signature Version 4
    /// documentation: its canonical request, string to sign and signature.
    #[test]
    fn verifies_the_documented_iam_example() {
        let header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
                      SignedHeaders=content-type;host;x-amz-date, \
                      Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
        let auth = parse_authorization(header).unwrap().unwrap();
        assert_eq!(auth.access_key, "AKIDEXAMPLE");
        assert_eq!(auth.service, "iam");
        let uri: Uri = "/?Version=2010-05-08&Action=ListUsers".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("host", "iam.amazonaws.com".parse().unwrap());
        h.insert(
            "content-type",
            "application/x-www-form-urlencoded;  charset=utf-8"
                .parse()
                .unwrap(),
        );
        h.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let at = 1_440_938_160;
        assert_eq!(verify(&auth, &Method::GET, &uri, &h, b"", secret, at), Ok(()));
        assert_eq!(
            verify(&auth, &Method::GET, &uri, &h, b"", "another secret", at),
            Err(SigError::Mismatch)
        );
        assert_eq!(
            verify(&auth, &Method::GET, &uri, &h, b"x", secret, at),
            Err(SigError::Mismatch),
            "the body is signed"
        );
        assert_eq!(
            verify(&auth, &Method::POST, &uri, &h, b"", secret, at),
            Err(SigError::Mismatch)
        );
        assert_eq!(
            verify(&auth, &Method::GET, &uri, &h, b"", secret, at + 16 * 60),
            Err(SigError::Skewed)
        );
        h.remove("x-amz-date");
        assert_eq!(
            verify(&auth, &Method::GET, &uri, &h, b"", secret, at),
            Err(SigError::MissingDate)
        );
    }

    #[test]
    fn malformed_headers_are_told_apart_from_other_schemes() {
        assert!(parse_authorization("AWS AKID:sig").is_none());
        for bad in [
            "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/iam, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/iam/aws4_request, SignedHeaders=x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000",
            "AWS4-HMAC-SHA256 garbage",
            "AWS4-HMAC-SHA256",
        ] {
            assert_eq!(parse_authorization(bad), Some(Err(SigError::Malformed)), "{bad}");
        }
    }
}
