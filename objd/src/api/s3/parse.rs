//! Parsers of request header values that objd reads itself rather than
//! through `s3s`: `x-amz-tagging` and `x-amz-copy-source-range`. They take
//! untrusted text and answer with S3 errors (fuzzed in `fuzz/`).

use super::convert::invalid;
use s3s::{S3Error, S3ErrorCode, S3Result};

/// Tags from an `x-amz-tagging` header (`k1=v1&k2=v2`, URL-encoded).
pub fn tagging_header(h: Option<&str>) -> S3Result<Vec<(String, String)>> {
    let Some(h) = h.filter(|h| !h.is_empty()) else {
        return Ok(vec![]);
    };
    let bad = || {
        invalid(
            S3ErrorCode::InvalidArgument,
            "The x-amz-tagging header is not valid",
        )
    };
    h.split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((
                percent_decode(k).ok_or_else(bad)?,
                percent_decode(v).ok_or_else(bad)?,
            ))
        })
        .collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `bytes=first-last` of `x-amz-copy-source-range`, as `[first, last + 1)`.
pub fn copy_source_range(r: Option<&str>) -> S3Result<Option<(u64, u64)>> {
    let Some(r) = r else { return Ok(None) };
    let bad = || {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last",
        )
    };
    let (a, b) = r
        .strip_prefix("bytes=")
        .and_then(|s| s.split_once('-'))
        .ok_or_else(bad)?;
    let first: u64 = a.parse().map_err(|_| bad())?;
    let last: u64 = b.parse().map_err(|_| bad())?;
    if last < first {
        return Err(bad());
    }
    Ok(Some((first, last.checked_add(1).ok_or_else(bad)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagging_headers() {
        assert_eq!(
            tagging_header(Some("a=1&b%20c=d%2Fe&empty=")).unwrap(),
            vec![
                ("a".into(), "1".into()),
                ("b c".into(), "d/e".into()),
                ("empty".into(), "".into())
            ]
        );
        assert!(tagging_header(Some("a=%zz")).is_err());
        assert!(tagging_header(None).unwrap().is_empty());
    }

    #[test]
    fn copy_source_ranges() {
        assert_eq!(copy_source_range(Some("bytes=0-9")).unwrap(), Some((0, 10)));
        assert_eq!(copy_source_range(None).unwrap(), None);
        assert!(copy_source_range(Some("bytes=9-0")).is_err());
        assert!(copy_source_range(Some("0-9")).is_err());
        assert!(copy_source_range(Some("bytes=-9")).is_err());
        assert!(copy_source_range(Some("bytes=0-18446744073709551615")).is_err());
    }
}
