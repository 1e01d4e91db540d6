//! Browser form uploads (POST object) at the pipeline: what `s3s` does not
//! do for them. `s3s` parses the form, checks its signature and policy
//! conditions and holds the file in memory before the handler runs; this
//! module
//!
//! - pays for that memory from the buffer budget before the form is read
//!   ([`Budget`](crate::object::budget::Budget)), so concurrent form uploads
//!   wait instead of growing the process;
//! - reads the fields before the file as the body streams by
//!   ([`FileNameBody`]): the file's name, for `${filename}` in the form's
//!   `key` field, which authorization resolves ([`FormUpload::key`]), and
//!   the `acl` and `tagging` fields, which the handler applies;
//! - answers policy failures as S3 does: a failed condition, an expired
//!   policy or a field the policy does not name are `403 AccessDenied`
//!   "Invalid according to Policy: ..." ([`as_s3`]).

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

/// How much of a form's start is kept to read its fields: forms put the
/// file last, and what comes before it (key, policy, signature, a few
/// fields) is a few KiB.
const HEAD_MAX: usize = 64 << 10;

/// What the fields before the file say, for what `s3s` does not read
/// from a form: the file's name, and the `acl` and `tagging` fields (S3's
/// names; `s3s` reads the header names `x-amz-acl` and `x-amz-tagging`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormFields {
    pub file_name: String,
    pub fields: Vec<(String, String)>,
}

impl FormFields {
    /// A field's value (names compare without case, as S3's do).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `tagging` field (a `Tagging` XML document) as the
    /// `x-amz-tagging` header says the same (`k=v&...`, encoded).
    pub fn tagging_header(&self) -> Option<String> {
        let xml = self.get("tagging")?;
        let mut pairs = Vec::new();
        for tag in xml.split("<Tag>").skip(1) {
            let element = |name: &str| {
                let start = tag.find(&format!("<{name}>"))? + name.len() + 2;
                let end = tag[start..].find(&format!("</{name}>"))? + start;
                Some(xml_unescape(&tag[start..end]))
            };
            let key = element("Key")?;
            let value = element("Value").unwrap_or_default();
            pairs.push(format!("{}={}", form_encode(&key), form_encode(&value)));
        }
        Some(pairs.join("&"))
    }
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// A request extension marking a form upload, with its fields once the
/// body has shown them.
#[derive(Debug, Clone, Default)]
pub struct FormUpload {
    fields: Arc<OnceLock<FormFields>>,
}

impl FormUpload {
    /// The object key a form's `key` field names: `${filename}` is the
    /// uploaded file's name (the form has been read when this is asked).
    pub fn key(&self, field: &str) -> String {
        field.replace("${filename}", self.file_name())
    }

    fn file_name(&self) -> &str {
        self.fields.get().map_or("", |f| f.file_name.as_str())
    }

    /// The fields before the file (none if the form had not shown them).
    pub fn fields(&self) -> Option<&FormFields> {
        self.fields.get()
    }
}

/// The boundary of a POST's multipart form: set for form uploads only.
pub fn boundary<B>(req: &Request<B>) -> Option<String> {
    if req.method() != http::Method::POST {
        return None;
    }
    let ct = req.headers().get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    let (kind, params) = ct.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The budget a form upload pays before its form is read: its declared
/// length, at most the largest form accepted.
pub fn cost<B>(req: &Request<B>, largest: u64) -> u64 {
    match super::scrape::content_length(req.headers()) {
        0 => largest,
        n => n.min(largest),
    }
}

/// A request body that reports the fields before the form's file to a
/// [`FormUpload`] as it passes.
pub struct FileNameBody<B> {
    inner: B,
    found: Arc<OnceLock<FormFields>>,
    delimiter: Vec<u8>,
    /// The start of the body, until the file part's headers are in it.
    head: Vec<u8>,
}

impl<B> FileNameBody<B> {
    /// Wraps the body of a form upload whose parts `boundary` separates.
    pub fn new(inner: B, boundary: &str, upload: &FormUpload) -> Self {
        Self {
            inner,
            found: Arc::clone(&upload.fields),
            delimiter: format!("--{boundary}").into_bytes(),
            head: Vec::new(),
        }
    }

    fn search(&mut self, data: &[u8]) {
        if self.found.get().is_some() {
            return;
        }
        let room = HEAD_MAX - self.head.len();
        self.head.extend_from_slice(&data[..data.len().min(room)]);
        if let Some(fields) = parse_head(&self.head, &self.delimiter) {
            let _ = self.found.set(fields);
        } else if self.head.len() == HEAD_MAX {
            // Not within the first 64 KiB: the fields stay unknown.
            let _ = self.found.set(FormFields::default());
        } else {
            return;
        }
        self.head = Vec::new();
    }
}

/// The fields of a form's start, once it holds the file part's headers.
fn parse_head(head: &[u8], delimiter: &[u8]) -> Option<FormFields> {
    let mut out = FormFields::default();
    let mut rest = head;
    loop {
        let at = find(rest, delimiter)?;
        rest = &rest[at + delimiter.len()..];
        let headers_end = find(rest, b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&rest[..headers_end]).into_owned();
        rest = &rest[headers_end + 4..];
        let disposition = headers
            .split("\r\n")
            .find(|h| h.to_ascii_lowercase().starts_with("content-disposition:"))
            .unwrap_or_default();
        let param = |name: &str| {
            let key = format!("{name}=\"");
            let start = disposition.find(&key)? + key.len();
            let end = disposition[start..].find('"')? + start;
            Some(disposition[start..end].to_owned())
        };
        // `name=` also ends `filename=`: look for it after a separator.
        let name = disposition
            .split(';')
            .find_map(|p| p.trim().strip_prefix("name=\"").and_then(|v| v.strip_suffix('"')))
            .unwrap_or_default()
            .to_owned();
        if name.eq_ignore_ascii_case("file") {
            out.file_name = param("filename").unwrap_or_default();
            return Some(out);
        }
        let end = find(rest, delimiter)?;
        let value = rest[..end].strip_suffix(b"\r\n").unwrap_or(&rest[..end]);
        out.fields
            .push((name, String::from_utf8_lossy(value).into_owned()));
        rest = &rest[end..];
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

impl<B> Body for FileNameBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &r
            && let Some(data) = frame.data_ref()
        {
            this.search(data);
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Largest error document rewritten.
const ERROR_MAX: usize = 64 << 10;

/// A form upload's answer as S3 gives it: `s3s` reports a failed policy
/// condition as `400 InvalidPolicyDocument` and an expired policy or an
/// extra field with its own wording; S3 answers each `403 AccessDenied`
/// "Invalid according to Policy: ...". Other answers pass unchanged.
/// Successful answers name the key the object was stored under (`s3s`
/// renders the form's field, `${filename}` and all) and a quoted ETag.
pub async fn as_s3(resp: Response<s3s::Body>, upload: &FormUpload) -> Response<s3s::Body> {
    let name = upload.file_name();
    if resp.status().is_redirection() {
        let mut resp = resp;
        let location = resp
            .headers()
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok());
        if let Some(v) = location
            .and_then(|l| HeaderValue::from_str(&l.replace(FILENAME_IN_QUERY, &form_encode(name))).ok())
        {
            resp.headers_mut().insert(http::header::LOCATION, v);
        }
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if parts.status.is_success() {
        if bytes.is_empty() {
            return Response::from_parts(parts, s3s::Body::from(bytes));
        }
        let text = String::from_utf8_lossy(&bytes)
            .replace("${filename}", &xml_escape(name))
            .replace("<ETag>", "<ETag>\"")
            .replace("</ETag>", "\"</ETag>");
        parts.headers.remove(http::header::CONTENT_LENGTH);
        return Response::from_parts(parts, s3s::Body::from(text));
    }
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(ERROR_MAX)]).into_owned();
    let element = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].to_owned())
    };
    let code = element("Code").unwrap_or_default();
    let message = xml_unescape(&element("Message").unwrap_or_default());
    let reason = match code.as_str() {
        "InvalidPolicyDocument" if message.starts_with("Policy condition") => {
            Some(format!("Policy Condition failed: {message}"))
        }
        "AccessDenied" if message == "Request has expired" => Some("Policy expired.".to_owned()),
        "AccessDenied" if message.starts_with("Each form field") => {
            let field = message.split('"').nth(1).unwrap_or_default();
            Some(format!("Extra input fields: {field}"))
        }
        _ => None,
    };
    let Some(reason) = reason else {
        return Response::from_parts(parts, s3s::Body::from(bytes));
    };
    let id = element("RequestId");
    let mut r = super::xml_error(
        StatusCode::FORBIDDEN,
        "AccessDenied",
        &xml_escape(&format!("Invalid according to Policy: {reason}")),
        id.as_deref(),
    );
    for (name, value) in &parts.headers {
        if name != http::header::CONTENT_LENGTH && name != http::header::CONTENT_TYPE {
            r.headers_mut().insert(name, value.clone());
        }
    }
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

/// `${filename}` as a form-encoded query value.
const FILENAME_IN_QUERY: &str = "%24%7Bfilename%7D";

/// `s` as an `application/x-www-form-urlencoded` value.
fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_of(frames: &[&[u8]]) -> Option<FormFields> {
        let upload = FormUpload::default();
        let req = Request::post("/b")
            .header("content-type", "multipart/form-data; boundary=\"b\"")
            .body(())
            .unwrap();
        let b = boundary(&req).unwrap();
        let mut body = FileNameBody::new(http_body_util::Empty::<Bytes>::new(), &b, &upload);
        for f in frames {
            body.search(f);
        }
        upload.fields.get().cloned()
    }

    #[test]
    fn the_fields_before_the_file_are_read_across_frames() {
        let part = b"--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nup/${filename}\r\n--b\r\nContent-Disposition: form-data; name=\"acl\"\r\n\r\npublic-read\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"photo 1.jpg\"\r\nContent-Type: image/jpeg\r\n\r\nDATA";
        let want = FormFields {
            file_name: "photo 1.jpg".into(),
            fields: vec![
                ("key".into(), "up/${filename}".into()),
                ("acl".into(), "public-read".into()),
            ],
        };
        assert_eq!(fields_of(&[part]).as_ref(), Some(&want));
        for cut in 1..part.len() {
            let (a, b) = part.split_at(cut);
            assert_eq!(fields_of(&[a, b]).as_ref(), Some(&want), "cut at {cut}");
        }
        assert_eq!(want.get("ACL"), Some("public-read"));
        let tagged = FormFields {
            fields: vec![(
                "tagging".into(),
                "<Tagging><TagSet><Tag><Key>a b</Key><Value>x&amp;y</Value></Tag><Tag><Key>c</Key><Value></Value></Tag></TagSet></Tagging>".into(),
            )],
            ..Default::default()
        };
        assert_eq!(tagged.tagging_header().as_deref(), Some("a+b=x%26y&c="));
        assert_eq!(
            fields_of(&[b"--b\r\nContent-Disposition: form-data; name=\"key\"\r\n"]),
            None
        );
        let upload = FormUpload::default();
        assert_eq!(upload.key("up/${filename}"), "up/");
        let _ = upload.fields.set(want);
        assert_eq!(upload.key("up/${filename}"), "up/photo 1.jpg");
        assert_eq!(upload.key("fixed"), "fixed");
        assert_eq!(
            boundary(
                &Request::post("/b")
                    .header("content-type", "text/plain")
                    .body(())
                    .unwrap()
            ),
            None
        );
    }

    #[tokio::test]
    async fn policy_failures_become_access_denied_and_success_names_the_key() {
        let upload = FormUpload::default();
        let _ = upload.fields.set(FormFields {
            file_name: "a & b.txt".into(),
            fields: vec![],
        });
        let error = |code: &str, message: &str| {
            super::super::xml_error(StatusCode::BAD_REQUEST, code, message, Some("R1"))
        };
        let read = |r: Response<s3s::Body>| async move {
            let status = r.status();
            let body = r.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8(body.to_vec()).unwrap())
        };
        let (status, body) = read(
            as_s3(
                error(
                    "InvalidPolicyDocument",
                    "Policy condition 'eq' for field 'key' failed: expected 'a', got 'b'",
                ),
                &upload,
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
        assert!(
            body.contains("Invalid according to Policy: Policy Condition failed"),
            "{body}"
        );
        assert!(body.contains("<RequestId>R1</RequestId>"), "{body}");
        let (_, body) = read(as_s3(error("AccessDenied", "Request has expired"), &upload).await).await;
        assert!(
            body.contains("Invalid according to Policy: Policy expired."),
            "{body}"
        );
        // Other errors pass unchanged.
        let (status, body) = read(as_s3(error("EntityTooLarge", "too big"), &upload).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("<Code>EntityTooLarge</Code>"), "{body}");
        // Success names the stored key and quotes the ETag.
        let created = "<PostResponse><Location>/b/up/${filename}</Location><Key>up/${filename}</Key><ETag>abc</ETag></PostResponse>";
        let mut ok = Response::new(s3s::Body::from(created.to_owned()));
        *ok.status_mut() = StatusCode::CREATED;
        let (_, body) = read(as_s3(ok, &upload).await).await;
        assert!(body.contains("<Key>up/a &amp; b.txt</Key>"), "{body}");
        assert!(body.contains("<ETag>\"abc\"</ETag>"), "{body}");
        let mut moved = Response::new(s3s::Body::empty());
        *moved.status_mut() = StatusCode::SEE_OTHER;
        moved.headers_mut().insert(
            http::header::LOCATION,
            HeaderValue::from_static("http://h/done?bucket=b&key=up%2F%24%7Bfilename%7D&etag=abc"),
        );
        let moved = as_s3(moved, &upload).await;
        assert_eq!(
            moved.headers()[http::header::LOCATION],
            "http://h/done?bucket=b&key=up%2Fa+%26+b.txt&etag=abc"
        );
    }
}
