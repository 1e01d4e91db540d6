//! A small async S3 client over hyper: path-style requests signed with
//! SigV4, for the object operations Strata's tools need. Bodies it sends
//! are in memory (callers upload large files in parts); bodies it reads
//! are collected, so callers ask for ranges.

use crate::error::{Error, Result};
use crate::sigv4::{Signer, payload_hash, uri_encode};
use crate::tls::Tls;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use std::time::{Duration, SystemTime};

/// What HEAD says of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub etag: String,
    pub last_modified: SystemTime,
    pub content_type: Option<String>,
    /// `x-amz-meta-*` values, names without the prefix.
    pub metadata: Vec<(String, String)>,
}

impl ObjectInfo {
    pub fn meta(&self, name: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub etag: String,
    /// As the server sent it (ISO 8601).
    pub last_modified: String,
}

/// The metadata a copy replaces the source's with.
#[derive(Debug, Clone, Copy)]
pub struct Replace<'a> {
    /// `x-amz-meta-*` values, names without the prefix.
    pub user: &'a [(String, String)],
    /// S3's default (binary/octet-stream) without one.
    pub content_type: Option<&'a str>,
}

/// One page of ListObjectsV2 (of objd's listing with metadata, with
/// [`crate::Detailed`] objects).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage<T = ListedObject> {
    pub objects: Vec<T>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    pub next_token: Option<String>,
}

pub(crate) struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// An S3 endpoint with credentials.
#[derive(Clone)]
pub struct Client {
    http: crate::fetch::Http,
    /// `http(s)://host:port`, without a trailing slash.
    base: String,
    host: String,
    signer: Signer,
    timeout: Duration,
    /// Sent as `x-amz-storage-class` with every write.
    storage_class: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `endpoint` (`http://host:port` or `https://...`,
    /// trusting the system's CAs).
    pub fn new(endpoint: &str, signer: Signer) -> Result<Self> {
        Self::with_tls(endpoint, signer, &Tls::default())
    }

    /// A client for `endpoint` that trusts servers as `tls` says.
    pub fn with_tls(endpoint: &str, signer: Signer, tls: &Tls) -> Result<Self> {
        let base = endpoint.trim_end_matches('/').to_owned();
        let uri: http::Uri = base
            .parse()
            .map_err(|e| Error::Endpoint(format!("{base}: {e}")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(Error::Endpoint(format!(
                "{base}: the endpoint must start with http:// or https://"
            )));
        }
        let host = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or_else(|| Error::Endpoint(format!("{base}: no host")))?;
        let http = crate::fetch::http_client(tls)?;
        Ok(Self {
            http,
            base,
            host,
            signer,
            timeout: Duration::from_secs(60),
            storage_class: None,
        })
    }

    /// Time allowed for one request, headers and body.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Writes (PUT, copy, multipart upload) ask for this storage class.
    pub fn with_storage_class(mut self, class: Option<String>) -> Self {
        self.storage_class = class;
        self
    }

    /// The headers of a write: user metadata and the storage class.
    fn write_headers(&self, metadata: &[(String, String)]) -> Vec<(String, String)> {
        let mut h = meta_headers(metadata);
        if let Some(c) = &self.storage_class {
            h.push(("x-amz-storage-class".into(), c.clone()));
        }
        h
    }

    /// A request signed with the client's credentials.
    fn signed(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>> {
        let q: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let auth = self.signer.sign(
            method.as_str(),
            &self.host,
            path,
            &q,
            &payload_hash(&body),
            SystemTime::now(),
        );
        let qs = q
            .iter()
            .map(|(k, v)| format!("{}={}", uri_encode(k, false), uri_encode(v, false)))
            .collect::<Vec<_>>()
            .join("&");
        let mut uri = format!("{}{}", self.base, uri_encode(path, true));
        if !qs.is_empty() {
            uri.push('?');
            uri.push_str(&qs);
        }
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in auth.iter().map(|(k, v)| (*k, v.as_str())) {
            req = req.header(k, v);
        }
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        req.body(Full::new(body))
            .map_err(|e| Error::Protocol(e.to_string()))
    }

    /// Sends a signed request and returns the status and the body as it
    /// arrives, for answers that stream (the admin API's progress lines).
    /// The timeout covers the headers only.
    pub async fn stream(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(StatusCode, hyper::body::Incoming)> {
        let req = self.signed(method, path, query, &[], body)?;
        let resp = tokio::time::timeout(self.timeout, self.http.request(req))
            .await
            .map_err(|_| Error::Transport(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| Error::Transport(chain(&e)))?;
        Ok((resp.status(), resp.into_body()))
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Response> {
        let req = self.signed(method, path, query, headers, body)?;
        let call = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| Error::Transport(chain(&e)))?;
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| Error::Transport(e.to_string()))?
                .to_bytes();
            Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        let resp = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| Error::Transport(format!("no answer within {:?}", self.timeout)))??;
        if resp.status.is_success() || resp.status == StatusCode::PARTIAL_CONTENT {
            return Ok(resp);
        }
        let (code, message) = crate::xml::error(&resp.body);
        Err(Error::S3 {
            status: resp.status.as_u16(),
            code: if code.is_empty() {
                resp.status.canonical_reason().unwrap_or("Error").to_owned()
            } else {
                code
            },
            message,
        })
    }

    fn path(bucket: &str, key: &str) -> String {
        format!("/{bucket}/{key}")
    }

    /// Creates a bucket; `false` if this account already owns it. Asked
    /// first: a server answering as S3's us-east-1 (objd does) says `200`
    /// to creating a bucket one owns, which would not tell the two apart.
    pub async fn create_bucket(&self, bucket: &str) -> Result<bool> {
        if self.bucket_exists(bucket).await? {
            return Ok(false);
        }
        match self
            .send(Method::PUT, &format!("/{bucket}"), &[], &[], Bytes::new())
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::S3 { code, .. }) if code == "BucketAlreadyOwnedByYou" => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets a bucket's default encryption: `AES256` (SSE-S3), or
    /// `aws:kms` with an optional KMS key name.
    pub async fn put_bucket_encryption(
        &self,
        bucket: &str,
        algorithm: &str,
        kms_key: Option<&str>,
    ) -> Result<()> {
        let key = kms_key
            .map(|k| format!("<KMSMasterKeyID>{}</KMSMasterKeyID>", crate::xml::escape(k)))
            .unwrap_or_default();
        let body = format!(
            "<ServerSideEncryptionConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule>\
             <ApplyServerSideEncryptionByDefault><SSEAlgorithm>{}</SSEAlgorithm>{key}\
             </ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>",
            crate::xml::escape(algorithm)
        );
        self.send(
            Method::PUT,
            &format!("/{bucket}"),
            &[("encryption", "")],
            &[],
            Bytes::from(body),
        )
        .await?;
        Ok(())
    }

    /// Sets a bucket's lifecycle configuration (S3's XML document), or
    /// removes it with `None`.
    pub async fn put_bucket_lifecycle(&self, bucket: &str, xml: Option<String>) -> Result<()> {
        let path = format!("/{bucket}");
        let q = [("lifecycle", "")];
        match xml {
            Some(x) => self.send(Method::PUT, &path, &q, &[], Bytes::from(x)).await?,
            None => self.send(Method::DELETE, &path, &q, &[], Bytes::new()).await?,
        };
        Ok(())
    }

    /// Whether a bucket exists (and these credentials may see it).
    pub async fn bucket_exists(&self, bucket: &str) -> Result<bool> {
        match self
            .send(Method::HEAD, &format!("/{bucket}"), &[], &[], Bytes::new())
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == 404 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes an empty bucket.
    pub async fn delete_bucket(&self, bucket: &str) -> Result<()> {
        self.send(Method::DELETE, &format!("/{bucket}"), &[], &[], Bytes::new())
            .await?;
        Ok(())
    }

    /// The names of the account's buckets, in order.
    pub async fn list_buckets(&self) -> Result<Vec<String>> {
        let r = self.send(Method::GET, "/", &[], &[], Bytes::new()).await?;
        crate::xml::bucket_names(&r.body).map_err(Error::Protocol)
    }

    /// HEAD of an object.
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectInfo> {
        let r = self
            .send(Method::HEAD, &Self::path(bucket, key), &[], &[], Bytes::new())
            .await?;
        info_from(&r.headers)
    }

    /// Bytes `[start, end)` of an object (fewer at its end).
    pub async fn get_range(&self, bucket: &str, key: &str, start: u64, end: u64) -> Result<Bytes> {
        self.get_range_if(bucket, key, start, end, None).await
    }

    /// [`Client::get_range`] of the version whose ETag is `etag` only
    /// (`If-Match`: another one fails with status 412).
    pub async fn get_range_if(
        &self,
        bucket: &str,
        key: &str,
        start: u64,
        end: u64,
        etag: Option<&str>,
    ) -> Result<Bytes> {
        if end <= start {
            return Ok(Bytes::new());
        }
        let mut headers = vec![("range", format!("bytes={}-{}", start, end - 1))];
        if let Some(e) = etag {
            headers.push(("if-match", format!("\"{}\"", e.trim_matches('"'))));
        }
        match self
            .send(Method::GET, &Self::path(bucket, key), &[], &headers, Bytes::new())
            .await
        {
            Ok(r) => Ok(r.body),
            // A range starting at or past the end: nothing to read.
            Err(Error::S3 { status: 416, .. }) => Ok(Bytes::new()),
            Err(e) => Err(e),
        }
    }

    /// One page of ListObjectsV2.
    pub async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<ListPage> {
        let max = max_keys.to_string();
        let mut q: Vec<(&str, &str)> = vec![("list-type", "2"), ("prefix", prefix), ("max-keys", &max)];
        if let Some(d) = delimiter {
            q.push(("delimiter", d));
        }
        if let Some(t) = token {
            q.push(("continuation-token", t));
        }
        let r = self
            .send(Method::GET, &format!("/{bucket}"), &q, &[], Bytes::new())
            .await?;
        crate::xml::list_page(&r.body).map_err(Error::Protocol)
    }

    /// PUT of a whole object; returns its ETag.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        metadata: &[(String, String)],
    ) -> Result<String> {
        let headers = self.write_headers(metadata);
        let h: Vec<(&str, String)> = headers.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let r = self
            .send(Method::PUT, &Self::path(bucket, key), &[], &h, body)
            .await?;
        Ok(etag_of(&r.headers))
    }

    /// Server-side copy of `src_key` to `dst_key` in one bucket; with
    /// `metadata`, the copy gets that user metadata (and the content type
    /// given, S3's default without) instead of the source's: a copy onto
    /// itself changes metadata in place.
    pub async fn copy_object(
        &self,
        bucket: &str,
        src_key: &str,
        dst_key: &str,
        metadata: Option<Replace<'_>>,
    ) -> Result<()> {
        let mut headers: Vec<(String, String)> = vec![(
            "x-amz-copy-source".into(),
            uri_encode(&format!("/{bucket}/{src_key}"), true),
        )];
        if let Some(c) = &self.storage_class {
            headers.push(("x-amz-storage-class".into(), c.clone()));
        }
        if let Some(r) = metadata {
            headers.push(("x-amz-metadata-directive".into(), "REPLACE".into()));
            headers.extend(meta_headers(r.user));
            if let Some(t) = r.content_type {
                headers.push(("content-type".into(), t.to_owned()));
            }
        }
        let h: Vec<(&str, String)> = headers.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        self.send(Method::PUT, &Self::path(bucket, dst_key), &[], &h, Bytes::new())
            .await?;
        Ok(())
    }

    /// Starts a multipart upload; returns its id.
    pub async fn create_multipart(
        &self,
        bucket: &str,
        key: &str,
        metadata: &[(String, String)],
    ) -> Result<String> {
        let headers = self.write_headers(metadata);
        let h: Vec<(&str, String)> = headers.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let r = self
            .send(
                Method::POST,
                &Self::path(bucket, key),
                &[("uploads", "")],
                &h,
                Bytes::new(),
            )
            .await?;
        crate::xml::upload_id(&r.body).ok_or_else(|| Error::Protocol("no UploadId".into()))
    }

    /// Uploads part `number`; returns its ETag.
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
    ) -> Result<String> {
        let n = number.to_string();
        let r = self
            .send(
                Method::PUT,
                &Self::path(bucket, key),
                &[("partNumber", &n), ("uploadId", upload_id)],
                &[],
                body,
            )
            .await?;
        Ok(etag_of(&r.headers))
    }

    /// Completes an upload from `(part number, ETag)` pairs in order.
    pub async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<()> {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (n, e) in parts {
            xml.push_str(&format!(
                "<Part><PartNumber>{n}</PartNumber><ETag>\"{e}\"</ETag></Part>"
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        self.send(
            Method::POST,
            &Self::path(bucket, key),
            &[("uploadId", upload_id)],
            &[],
            Bytes::from(xml),
        )
        .await?;
        Ok(())
    }

    /// Multipart uploads in progress under `prefix`: `(key, upload id)`,
    /// the first 1000.
    pub async fn list_uploads(&self, bucket: &str, prefix: &str) -> Result<Vec<(String, String)>> {
        let r = self
            .send(
                Method::GET,
                &format!("/{bucket}"),
                &[("uploads", ""), ("prefix", prefix)],
                &[],
                Bytes::new(),
            )
            .await?;
        crate::xml::uploads(&r.body).map_err(Error::Protocol)
    }

    pub async fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        self.send(
            Method::DELETE,
            &Self::path(bucket, key),
            &[("uploadId", upload_id)],
            &[],
            Bytes::new(),
        )
        .await?;
        Ok(())
    }

    /// A signed request without a body to `path`; the answer's body.
    pub(crate) async fn call(&self, method: Method, path: &str, query: &[(&str, &str)]) -> Result<Bytes> {
        Ok(self.send(method, path, query, &[], Bytes::new()).await?.body)
    }

    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        self.send(Method::DELETE, &Self::path(bucket, key), &[], &[], Bytes::new())
            .await?;
        Ok(())
    }
}

/// User metadata as `x-amz-meta-*` headers.
fn meta_headers(metadata: &[(String, String)]) -> Vec<(String, String)> {
    metadata
        .iter()
        .map(|(k, v)| (format!("x-amz-meta-{k}"), v.clone()))
        .collect()
}

/// An error with its causes, `outer: inner: innermost` (hyper's own text
/// says only "client error (Connect)"; the cause says which).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn etag_of(h: &HeaderMap) -> String {
    h.get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_matches('"')
        .to_owned()
}

fn info_from(h: &HeaderMap) -> Result<ObjectInfo> {
    let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    let size = text("content-length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::Protocol("HEAD without Content-Length".into()))?;
    let last_modified = text("last-modified")
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let metadata = h
        .iter()
        .filter_map(|(k, v)| {
            let name = k.as_str().strip_prefix("x-amz-meta-")?;
            Some((name.to_owned(), v.to_str().ok()?.to_owned()))
        })
        .collect();
    Ok(ObjectInfo {
        size,
        etag: etag_of(h),
        last_modified,
        content_type: text("content-type").map(str::to_owned),
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_headers_become_object_info() {
        let mut h = HeaderMap::new();
        h.insert("content-length", "42".parse().unwrap());
        h.insert("etag", "\"abc\"".parse().unwrap());
        h.insert("last-modified", "Thu, 26 Nov 2026 07:00:00 GMT".parse().unwrap());
        h.insert("x-amz-meta-mode", "33188".parse().unwrap());
        let i = info_from(&h).unwrap();
        assert_eq!(i.size, 42);
        assert_eq!(i.etag, "abc");
        assert_eq!(i.meta("mode"), Some("33188"));
        assert!(i.last_modified > SystemTime::UNIX_EPOCH);
        assert!(info_from(&HeaderMap::new()).is_err());
    }

    #[test]
    fn endpoints_are_http_or_https_urls() {
        let s = Signer::new("a", "secret-key", "us-east-1");
        assert!(Client::new("http://127.0.0.1:9000", s.clone()).is_ok());
        assert!(Client::new("https://example.com", s.clone()).is_ok());
        assert!(Client::new("ftp://example.com", s.clone()).is_err());
        assert!(Client::new("not a url", s.clone()).is_err());
        // A CA file that does not exist, or holds no certificate, is an
        // error at once rather than a failed handshake later.
        let tls = |p: &str| Tls {
            ca_file: Some(p.into()),
            ..Default::default()
        };
        let e = Client::with_tls("https://example.com", s.clone(), &tls("/nonexistent/ca.pem")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        let empty = std::env::temp_dir().join(format!("strata-empty-ca-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = Client::with_tls("https://example.com", s, &tls(&empty.to_string_lossy())).unwrap_err();
        std::fs::remove_file(&empty).unwrap();
        assert!(e.to_string().contains("no certificates"), "{e}");
    }
}
