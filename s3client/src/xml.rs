//! The few S3 XML documents the client reads: ListObjectsV2 and
//! ListBuckets results, and error bodies.

use crate::client::{ListPage, ListedObject};
use quick_xml::Reader;
use quick_xml::events::Event;

/// The text of every element, with the path of element names leading to
/// it, in document order.
fn texts(xml: &[u8]) -> Result<Vec<(Vec<String>, String)>, String> {
    let mut r = Reader::from_reader(xml);
    let mut path: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    loop {
        match r.read_event_into(&mut buf).map_err(|e| e.to_string())? {
            Event::Start(e) => path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned()),
            Event::End(_) => {
                path.pop();
            }
            Event::Empty(e) => {
                let mut p = path.clone();
                p.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                out.push((p, String::new()));
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| e.to_string())?;
                let s = quick_xml::escape::unescape(&s).map_err(|e| e.to_string())?;
                out.push((path.clone(), s.into_owned()));
            }
            Event::GeneralRef(e) => {
                // Character and entity references between text pieces.
                let name = String::from_utf8_lossy(&e).into_owned();
                let s = quick_xml::escape::unescape(&format!("&{name};"))
                    .map_err(|e| e.to_string())?
                    .into_owned();
                out.push((path.clone(), s));
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(out)
}

/// The bucket names of a `ListAllMyBucketsResult`.
/// Text escaped for an XML element's content.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

pub fn bucket_names(xml: &[u8]) -> Result<Vec<String>, String> {
    Ok(texts(xml)?
        .into_iter()
        .filter(|(p, _)| is(p, &["ListAllMyBucketsResult", "Buckets", "Bucket", "Name"]))
        .map(|(_, name)| name)
        .collect())
}

fn is(path: &[String], want: &[&str]) -> bool {
    path.len() == want.len() && path.iter().zip(want).all(|(a, b)| a == b)
}

/// A `ListBucketResult` of ListObjectsV2.
pub fn list_page(xml: &[u8]) -> Result<ListPage, String> {
    let mut page = ListPage::default();
    let mut current: Option<ListedObject> = None;
    let mut prefix: Option<String> = None;
    let mut r = Reader::from_reader(xml);
    let mut path: Vec<String> = Vec::new();
    let mut buf = Vec::new();
    // Element text may arrive in pieces (text, entity references).
    let mut text = String::new();
    loop {
        match r.read_event_into(&mut buf).map_err(|e| e.to_string())? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                path.push(name);
                text.clear();
                if is(&path, &["ListBucketResult", "Contents"]) {
                    current = Some(ListedObject::default());
                }
                if is(&path, &["ListBucketResult", "CommonPrefixes"]) {
                    prefix = Some(String::new());
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| e.to_string())?;
                text.push_str(&quick_xml::escape::unescape(&s).map_err(|e| e.to_string())?);
            }
            Event::GeneralRef(e) => {
                let name = String::from_utf8_lossy(&e).into_owned();
                text.push_str(&quick_xml::escape::unescape(&format!("&{name};")).map_err(|e| e.to_string())?);
            }
            Event::End(_) => {
                let t = std::mem::take(&mut text);
                match path.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                    ["ListBucketResult", "Contents", field] => {
                        if let Some(o) = current.as_mut() {
                            match field {
                                "Key" => o.key = t,
                                "Size" => o.size = t.parse().map_err(|_| "bad Size".to_owned())?,
                                "ETag" => o.etag = t.trim_matches('"').to_owned(),
                                "LastModified" => o.last_modified = t,
                                _ => {}
                            }
                        }
                    }
                    ["ListBucketResult", "Contents"] => page.objects.extend(current.take()),
                    ["ListBucketResult", "CommonPrefixes", "Prefix"] => prefix = Some(t),
                    ["ListBucketResult", "CommonPrefixes"] => page.prefixes.extend(prefix.take()),
                    ["ListBucketResult", "IsTruncated"] => page.truncated = t == "true",
                    ["ListBucketResult", "NextContinuationToken"] => page.next_token = Some(t),
                    _ => {}
                }
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(page)
}

/// The `UploadId` of an `InitiateMultipartUploadResult`.
pub fn upload_id(xml: &[u8]) -> Option<String> {
    let id: String = texts(xml)
        .ok()?
        .into_iter()
        .filter(|(p, _)| is(p, &["InitiateMultipartUploadResult", "UploadId"]))
        .map(|(_, t)| t)
        .collect();
    (!id.is_empty()).then_some(id)
}

/// `(key, upload id)` of each upload in a `ListMultipartUploadsResult`.
pub fn uploads(xml: &[u8]) -> Result<Vec<(String, String)>, String> {
    let t = texts(xml)?;
    let field = |name: &str| -> Vec<String> {
        t.iter()
            .filter(|(p, _)| is(p, &["ListMultipartUploadsResult", "Upload", name]))
            .map(|(_, v)| v.clone())
            .collect()
    };
    let (keys, ids) = (field("Key"), field("UploadId"));
    if keys.len() != ids.len() {
        return Err("uploads without a key or an id".into());
    }
    Ok(keys.into_iter().zip(ids).collect())
}

/// Code and message of an S3 `Error` body (empty when there is none).
pub fn error(xml: &[u8]) -> (String, String) {
    let mut code = String::new();
    let mut message = String::new();
    for (p, t) in texts(xml).unwrap_or_default() {
        if is(&p, &["Error", "Code"]) {
            code.push_str(&t);
        } else if is(&p, &["Error", "Message"]) {
            message.push_str(&t);
        }
    }
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_listing_page() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>d/</Prefix>
<Contents><Key>d/a &amp; b.txt</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"abc"</ETag><Size>12</Size></Contents>
<Contents><Key>d/c</Key><Size>0</Size><ETag>"e"</ETag></Contents>
<CommonPrefixes><Prefix>d/sub/</Prefix></CommonPrefixes>
<IsTruncated>true</IsTruncated><NextContinuationToken>tok</NextContinuationToken></ListBucketResult>"#;
        let p = list_page(xml).unwrap();
        assert_eq!(p.objects.len(), 2);
        assert_eq!(p.objects[0].key, "d/a & b.txt");
        assert_eq!(p.objects[0].size, 12);
        assert_eq!(p.objects[0].etag, "abc");
        assert_eq!(p.prefixes, vec!["d/sub/"]);
        assert!(p.truncated);
        assert_eq!(p.next_token.as_deref(), Some("tok"));
        assert!(
            list_page(b"<ListBucketResult><Contents><Size>x</Size></Contents></ListBucketResult>").is_err()
        );
    }

    #[test]
    fn parses_bucket_names() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult><Owner><ID>x</ID></Owner><Buckets><Bucket><Name>alpha</Name><CreationDate>2026-01-01T00:00:00Z</CreationDate></Bucket><Bucket><Name>beta</Name></Bucket></Buckets></ListAllMyBucketsResult>"#;
        assert_eq!(bucket_names(xml).unwrap(), ["alpha", "beta"]);
    }

    #[test]
    fn parses_uploads() {
        let xml = b"<ListMultipartUploadsResult><Bucket>b</Bucket><Upload><Key>a/x</Key><UploadId>u1</UploadId></Upload><Upload><Key>b</Key><UploadId>u2</UploadId></Upload></ListMultipartUploadsResult>";
        assert_eq!(
            uploads(xml).unwrap(),
            [
                ("a/x".to_owned(), "u1".to_owned()),
                ("b".to_owned(), "u2".to_owned())
            ]
        );
    }

    #[test]
    fn parses_an_upload_id() {
        let x = b"<InitiateMultipartUploadResult><Bucket>b</Bucket><UploadId>abc123</UploadId></InitiateMultipartUploadResult>";
        assert_eq!(upload_id(x).as_deref(), Some("abc123"));
        assert_eq!(upload_id(b"<Other/>"), None);
    }

    #[test]
    fn parses_an_error_body() {
        let (c, m) = error(b"<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>");
        assert_eq!((c.as_str(), m.as_str()), ("NoSuchKey", "gone"));
        assert_eq!(error(b"not xml <"), (String::new(), String::new()));
    }
}
