//! objd's listing with user metadata (`GET /_strata/list/v1`, JSON): a
//! page of keys each with what a HEAD would tell of it, so that a client
//! showing attributes kept in metadata (a mount's `ls -l`) reads a
//! directory with one request instead of one per entry. Against another S3
//! server the call fails (it has no such path): callers fall back to
//! ListObjectsV2 and HEAD.

use crate::client::{Client, ListPage, ObjectInfo};
use crate::error::{Error, Result};
use http::Method;
use std::time::{Duration, SystemTime};

/// Where objd serves the listing.
pub const DETAILED_PATH: &str = "/_strata/list/v1";

/// One key of a [`DetailedPage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detailed {
    pub key: String,
    /// Size, ETag, time (whole seconds, as HEAD tells it) and user
    /// metadata; no content type.
    pub info: ObjectInfo,
    /// Whether the server sent the key's metadata: it leaves it out where
    /// the caller may list the key but its policies do not let it read
    /// the object (a HEAD decides then).
    pub has_metadata: bool,
}

/// Where a listing page starts: a continuation token of the page before,
/// or the key it comes after (none: the first key under the prefix).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListFrom<'a> {
    pub token: Option<&'a str>,
    pub after: Option<&'a str>,
}

impl<'a> ListFrom<'a> {
    pub fn token(token: Option<&'a str>) -> Self {
        Self { token, after: None }
    }

    pub fn after(key: &'a str) -> Self {
        Self {
            token: None,
            after: Some(key),
        }
    }
}

/// A page of the listing with metadata.
pub type DetailedPage = ListPage<Detailed>;

fn bad(what: &str) -> Error {
    Error::Protocol(format!("detailed listing: {what}"))
}

fn parse(body: &[u8]) -> Result<DetailedPage> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| bad(&e.to_string()))?;
    let strings = |name: &str| -> Result<Vec<String>> {
        v[name]
            .as_array()
            .ok_or_else(|| bad(&format!("no {name}")))?
            .iter()
            .map(|p| p.as_str().map(str::to_owned).ok_or_else(|| bad(name)))
            .collect()
    };
    let mut objects = Vec::new();
    for o in v["objects"].as_array().ok_or_else(|| bad("no objects"))? {
        let text = |name: &str| o[name].as_str().map(str::to_owned).ok_or_else(|| bad(name));
        let ns = o["last_modified_ns"]
            .as_i64()
            .ok_or_else(|| bad("last_modified_ns"))?;
        let secs = Duration::from_secs(ns.div_euclid(1_000_000_000).unsigned_abs());
        let last_modified = if ns >= 0 {
            SystemTime::UNIX_EPOCH + secs
        } else {
            SystemTime::UNIX_EPOCH - secs
        };
        let meta = o.get("metadata").filter(|m| !m.is_null());
        let metadata = match meta {
            None => Vec::new(),
            Some(m) => m
                .as_object()
                .ok_or_else(|| bad("metadata"))?
                .iter()
                .map(|(k, v)| {
                    v.as_str()
                        .map(|v| (k.clone(), v.to_owned()))
                        .ok_or_else(|| bad(k))
                })
                .collect::<Result<_>>()?,
        };
        objects.push(Detailed {
            key: text("key")?,
            info: ObjectInfo {
                size: o["size"].as_u64().ok_or_else(|| bad("size"))?,
                etag: text("etag")?,
                last_modified,
                content_type: None,
                metadata,
            },
            has_metadata: meta.is_some(),
        });
    }
    Ok(DetailedPage {
        objects,
        prefixes: strings("prefixes")?,
        truncated: v["truncated"].as_bool().ok_or_else(|| bad("truncated"))?,
        next_token: v["next_continuation_token"].as_str().map(str::to_owned),
    })
}

impl Client {
    /// A page of the keys under `prefix` with their metadata, folded at
    /// `delimiter`, as [`Client::list`] pages them: from the start, after
    /// key `from.after`, or where `from.token` says.
    pub async fn list_detailed(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        from: ListFrom<'_>,
        max_keys: usize,
    ) -> Result<DetailedPage> {
        let max = max_keys.to_string();
        let mut q: Vec<(&str, &str)> = vec![("bucket", bucket), ("prefix", prefix), ("max-keys", &max)];
        if let Some(d) = delimiter {
            q.push(("delimiter", d));
        }
        if let Some(t) = from.token {
            q.push(("continuation-token", t));
        }
        if let Some(a) = from.after {
            q.push(("start-after", a));
        }
        parse(&self.call(Method::GET, DETAILED_PATH, &q).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_parse_with_and_without_metadata() {
        let body = br#"{"prefixes":["d/"],"objects":[
            {"key":"a","size":3,"etag":"e1","last_modified_ns":1700000000123456789,
             "storage_class":"STANDARD","metadata":{"mode":"33188","uid":"7"}},
            {"key":"b","size":0,"etag":"e2","last_modified_ns":-1500000000,"storage_class":"STANDARD"},
            {"key":"c","size":1,"etag":"e3","last_modified_ns":5,"storage_class":"STANDARD","metadata":{}}],
            "truncated":true,"next_continuation_token":"tok"}"#;
        let p = parse(body).unwrap();
        assert_eq!(p.prefixes, vec!["d/"]);
        assert!(p.truncated);
        assert_eq!(p.next_token.as_deref(), Some("tok"));
        let a = &p.objects[0];
        assert!(a.has_metadata);
        assert_eq!(a.info.meta("mode"), Some("33188"));
        assert_eq!(a.info.meta("uid"), Some("7"));
        assert_eq!(
            a.info.last_modified,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        let b = &p.objects[1];
        assert!(!b.has_metadata && b.info.metadata.is_empty());
        assert_eq!(
            b.info.last_modified,
            SystemTime::UNIX_EPOCH - Duration::from_secs(2)
        );
        assert!(p.objects[2].has_metadata && p.objects[2].info.metadata.is_empty());
        assert!(parse(b"{}").is_err());
        assert!(parse(br#"{"prefixes":[],"objects":[{"key":"a"}],"truncated":false}"#).is_err());
    }
}
