//! One audit entry: what a completed request was, who made it and how it
//! ended, as a line of JSON. Headers are copied only from allow-lists, and
//! the headers that carry secrets are never copied whatever a list says.

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The version of the entry format, first in every entry.
pub const VERSION: &str = "1";

/// A completed request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub version: String,
    /// When the request arrived, RFC 3339 in UTC with nanoseconds.
    pub time: String,
    /// Its `x-amz-request-id`.
    pub request_id: String,
    /// The node that served it (`host:port`).
    pub node: String,
    pub deployment_id: String,
    /// The S3 operation (`PutObject`), `Admin`, `IAM/STS` or, for a request
    /// refused before its operation was known, `Other`.
    pub api: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub object: Option<String>,
    /// The version asked for or written (`x-amz-version-id`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version_id: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// The S3 (or IAM) error code of a refused request.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error_code: Option<String>,
    /// Request body bytes read.
    pub bytes_received: u64,
    /// Response body bytes sent.
    pub bytes_sent: u64,
    /// From arrival to the response headers.
    pub time_to_first_byte_ns: u64,
    /// From arrival to the last response byte (or the connection's end).
    pub duration_ns: u64,
    pub remote_address: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user_agent: Option<String>,
    /// The access key that signed the request (never its secret).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub access_key: Option<String>,
    /// Who the request acted as: an ARN, or `anonymous`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub principal: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub request_headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub response_headers: BTreeMap<String, String>,
}

/// Request headers copied by default.
pub const REQUEST_HEADERS: &[&str] = &[
    "content-length",
    "content-type",
    "content-md5",
    "host",
    "range",
    "x-amz-content-sha256",
    "x-amz-copy-source",
    "x-amz-date",
    "x-amz-metadata-directive",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-storage-class",
    "x-forwarded-for",
];

/// Response headers copied by default.
pub const RESPONSE_HEADERS: &[&str] = &[
    "content-length",
    "content-type",
    "etag",
    "x-amz-delete-marker",
    "x-amz-server-side-encryption",
    "x-amz-version-id",
];

/// Headers that are never copied: they carry credentials or keys.
fn secret(name: &str) -> bool {
    matches!(
        name,
        "authorization" | "cookie" | "set-cookie" | "proxy-authorization" | "x-amz-security-token"
    ) || name.contains("customer-key")
}

/// Which headers entries carry.
#[derive(Debug, Clone)]
pub struct HeaderLists {
    pub request: Vec<String>,
    pub response: Vec<String>,
}

impl Default for HeaderLists {
    fn default() -> Self {
        let own = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect();
        Self {
            request: own(REQUEST_HEADERS),
            response: own(RESPONSE_HEADERS),
        }
    }
}

impl HeaderLists {
    /// The default lists with `extra` request headers added (lower-cased);
    /// secret-bearing names are refused.
    pub fn with_request_headers(extra: &[String]) -> Result<Self, String> {
        let mut lists = Self::default();
        for h in extra {
            let h = h.trim().to_ascii_lowercase();
            if h.is_empty() {
                continue;
            }
            if secret(&h) {
                return Err(format!("the {h} header carries secrets and is never audited"));
            }
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(format!("{h:?} is not a header name"));
            }
            if !lists.request.contains(&h) {
                lists.request.push(h);
            }
        }
        Ok(lists)
    }
}

/// The allowed headers of `headers`, values as text (several values joined
/// with `, `).
pub fn copy_headers(headers: &HeaderMap, allowed: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in allowed {
        if secret(name) {
            continue;
        }
        let values: Vec<&str> = headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if !values.is_empty() {
            out.insert(name.clone(), values.join(", "));
        }
    }
    out
}

/// RFC 3339 in UTC with nanoseconds.
pub fn timestamp(t: std::time::SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The fields of a serialized entry a target needs to route it, read
/// without decoding the rest.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    pub time: String,
    pub request_id: String,
    pub node: String,
}

impl Head {
    pub fn of(line: &[u8]) -> Option<Head> {
        serde_json::from_slice(line).ok()
    }

    /// An id unique in the deployment, for targets that deduplicate
    /// (a batch sent again after a crash).
    pub fn id(&self) -> String {
        format!("{}/{}", self.node, self.request_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_never_copied_whatever_the_list() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=x, Signature=abc".parse().unwrap(),
        );
        h.insert("x-amz-security-token", "tok".parse().unwrap());
        h.insert(
            "x-amz-server-side-encryption-customer-key",
            "a2V5".parse().unwrap(),
        );
        h.insert("content-type", "text/plain".parse().unwrap());
        let all: Vec<String> = [
            "authorization",
            "x-amz-security-token",
            "x-amz-server-side-encryption-customer-key",
            "content-type",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let copied = copy_headers(&h, &all);
        assert_eq!(copied.len(), 1, "{copied:?}");
        assert_eq!(copied["content-type"], "text/plain");
        assert!(HeaderLists::with_request_headers(&["Authorization".into()]).is_err());
        assert!(
            HeaderLists::with_request_headers(&["x-amz-server-side-encryption-customer-key-md5".into()])
                .is_err()
        );
        let l = HeaderLists::with_request_headers(&["X-Tenant".into(), " ".into()]).unwrap();
        assert!(l.request.contains(&"x-tenant".to_owned()));
    }

    #[test]
    fn heads_are_read_from_lines() {
        let e = Entry {
            version: VERSION.into(),
            time: timestamp(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(1_500)),
            request_id: "00000001000000AB".into(),
            node: "n1:9000".into(),
            deployment_id: "d".into(),
            api: "GetObject".into(),
            bucket: Some("b".into()),
            object: Some("a \"quoted\" key".into()),
            version_id: None,
            status: 200,
            error_code: None,
            bytes_received: 0,
            bytes_sent: 5,
            time_to_first_byte_ns: 1,
            duration_ns: 2,
            remote_address: "127.0.0.1:1".into(),
            user_agent: None,
            access_key: Some("AKIA".into()),
            principal: None,
            request_headers: BTreeMap::new(),
            response_headers: BTreeMap::new(),
        };
        let line = serde_json::to_vec(&e).unwrap();
        let head = Head::of(&line).unwrap();
        assert_eq!(head.time, "1970-01-01T00:00:00.0000015Z");
        assert_eq!(head.id(), "n1:9000/00000001000000AB");
        let back: Entry = serde_json::from_slice(&line).unwrap();
        assert_eq!(back, e);
    }
}
