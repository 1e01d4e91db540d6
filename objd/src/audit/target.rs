//! Where audit entries go: [`Target`] takes a batch of serialized entries
//! and answers once they are stored there. A local file (JSON lines,
//! rotated by size, a bounded number of old files kept), an HTTP webhook
//! (a JSON array per batch, with an `Authorization` header) and
//! Elasticsearch or OpenSearch (`_bulk` with `create` actions keyed by the
//! entry's id, so a batch sent again after a crash adds nothing twice).

use super::AuditError;
use super::entry::Head;
use bytes::Bytes;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use strata_s3client::Fetcher;

#[async_trait::async_trait]
pub trait Target: Send + Sync {
    /// The name of the target in logs, metrics and its queue's directory.
    fn name(&self) -> &str;
    /// Stores `batch` (entries as JSON, oldest first); an error means the
    /// batch is sent again later.
    async fn send(&self, batch: &[Vec<u8>]) -> Result<(), AuditError>;
}

/// A JSON-lines file, fsynced per batch, renamed to `NAME.TIMESTAMP` when
/// it reaches `max_size` (the newest `keep` of those are kept).
pub struct FileTarget(Arc<LogFile>);

struct LogFile {
    path: PathBuf,
    max_size: u64,
    keep: usize,
    file: Mutex<Option<File>>,
}

impl FileTarget {
    pub fn new(path: PathBuf, max_size: u64, keep: usize) -> Result<Self, AuditError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| AuditError::io(&path, e))?;
        }
        Ok(Self(Arc::new(LogFile {
            path,
            max_size: max_size.max(1),
            keep,
            file: Mutex::new(None),
        })))
    }
}

impl LogFile {
    /// Renames the full file aside and drops the oldest rotated ones.
    fn rotate(&self) -> std::io::Result<()> {
        let stamp = time::OffsetDateTime::now_utc();
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rotated = self.path.with_file_name(format!(
            "{name}.{:04}{:02}{:02}T{:02}{:02}{:02}.{:09}Z",
            stamp.year(),
            u8::from(stamp.month()),
            stamp.day(),
            stamp.hour(),
            stamp.minute(),
            stamp.second(),
            stamp.nanosecond()
        ));
        fs::rename(&self.path, &rotated)?;
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let prefix = format!("{name}.");
        let mut old: Vec<PathBuf> = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect();
        // Timestamps sort as text.
        old.sort();
        let excess = old.len().saturating_sub(self.keep);
        for p in &old[..excess] {
            fs::remove_file(p)?;
        }
        File::open(dir)?.sync_all()
    }

    fn append(&self, batch: &[Vec<u8>]) -> std::io::Result<()> {
        let mut guard = self.file.lock().unwrap();
        let mut buf = Vec::with_capacity(batch.iter().map(|l| l.len() + 1).sum());
        for line in batch {
            buf.extend_from_slice(line);
            buf.push(b'\n');
        }
        let size = match guard.as_ref() {
            Some(f) => f.metadata()?.len(),
            None => fs::metadata(&self.path).map_or(0, |m| m.len()),
        };
        if size > 0 && size + buf.len() as u64 > self.max_size {
            *guard = None;
            self.rotate()?;
        }
        if guard.is_none() {
            *guard = Some(OpenOptions::new().create(true).append(true).open(&self.path)?);
        }
        let f = guard.as_mut().expect("opened above");
        f.write_all(&buf)?;
        f.sync_data()
    }
}

#[async_trait::async_trait]
impl Target for FileTarget {
    fn name(&self) -> &str {
        "file"
    }

    async fn send(&self, batch: &[Vec<u8>]) -> Result<(), AuditError> {
        let (file, batch) = (Arc::clone(&self.0), batch.to_vec());
        let path = file.path.clone();
        tokio::task::spawn_blocking(move || file.append(&batch))
            .await
            .map_err(|e| AuditError::Target(e.to_string()))?
            .map_err(|e| AuditError::io(&path, e))
    }
}

/// A secret header value, kept out of `Debug` output.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// POSTs each batch to a URL as a JSON array.
pub struct Webhook {
    url: String,
    authorization: Option<Secret>,
    http: Fetcher,
}

impl Webhook {
    pub fn new(url: String, authorization: Option<Secret>, http: Fetcher) -> Self {
        Self {
            url,
            authorization,
            http,
        }
    }
}

/// `headers` plus `authorization` when there is one.
fn with_auth<'a>(mut headers: Vec<(&'a str, &'a str)>, auth: Option<&'a Secret>) -> Vec<(&'a str, &'a str)> {
    if let Some(a) = auth {
        headers.push(("authorization", a.0.as_str()));
    }
    headers
}

#[async_trait::async_trait]
impl Target for Webhook {
    fn name(&self) -> &str {
        "webhook"
    }

    async fn send(&self, batch: &[Vec<u8>]) -> Result<(), AuditError> {
        let mut body = Vec::with_capacity(batch.iter().map(|l| l.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        for (i, line) in batch.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(line);
        }
        body.push(b']');
        let headers = with_auth(
            vec![("content-type", "application/json")],
            self.authorization.as_ref(),
        );
        let (status, _) = self
            .http
            .send(http::Method::POST, &self.url, &headers, Bytes::from(body))
            .await
            .map_err(|e| AuditError::Target(e.to_string()))?;
        if !status.is_success() {
            return Err(AuditError::Target(format!("the webhook answered {status}")));
        }
        Ok(())
    }
}

/// Elasticsearch / OpenSearch `_bulk`.
pub struct Elastic {
    url: String,
    /// The index name, with `%Y`, `%m`, `%d`, `%H` taken from the entry's time.
    index: String,
    authorization: Option<Secret>,
    http: Fetcher,
}

impl Elastic {
    pub fn new(endpoint: &str, index: String, authorization: Option<Secret>, http: Fetcher) -> Self {
        Self {
            url: format!("{}/_bulk", endpoint.trim_end_matches('/')),
            index,
            authorization,
            http,
        }
    }

    /// The index an entry of time `t` (RFC 3339) goes to.
    pub fn index_for(&self, t: &str) -> String {
        let part = |r: std::ops::Range<usize>| t.get(r).unwrap_or("0");
        self.index
            .replace("%Y", part(0..4))
            .replace("%m", part(5..7))
            .replace("%d", part(8..10))
            .replace("%H", part(11..13))
    }

    /// The `_bulk` body of a batch: a `create` action naming the index and
    /// the entry's id, then the entry, each on its line.
    pub fn bulk_body(&self, batch: &[Vec<u8>]) -> Vec<u8> {
        let mut body = Vec::new();
        for line in batch {
            let action = match Head::of(line) {
                Some(h) => serde_json::json!({"create": {"_index": self.index_for(&h.time), "_id": h.id()}}),
                None => serde_json::json!({"create": {"_index": self.index_for("")}}),
            };
            body.extend_from_slice(action.to_string().as_bytes());
            body.push(b'\n');
            body.extend_from_slice(line);
            body.push(b'\n');
        }
        body
    }
}

/// What a `_bulk` answer says of a batch: `Ok(n)` when every entry is
/// stored but `n` that the cluster refuses for good (a mapping conflict:
/// sending them again cannot help); an error when some must be sent again.
pub fn bulk_outcome(answer: &[u8]) -> Result<usize, AuditError> {
    let v: serde_json::Value = serde_json::from_slice(answer)
        .map_err(|e| AuditError::Target(format!("a _bulk answer that is not JSON: {e}")))?;
    if v.get("errors").and_then(|e| e.as_bool()) == Some(false) {
        return Ok(0);
    }
    let items = v
        .get("items")
        .and_then(|i| i.as_array())
        .ok_or_else(|| AuditError::Target("a _bulk answer without items".into()))?;
    let mut refused = 0;
    for item in items {
        let status = item
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|a| a.get("status"))
            .and_then(|s| s.as_u64())
            .unwrap_or(500);
        match status {
            // Stored, or stored by an earlier try of this batch.
            200..=299 | 409 => {}
            429 | 500.. => {
                return Err(AuditError::Target(format!(
                    "the _bulk request left an entry at status {status}"
                )));
            }
            _ => refused += 1,
        }
    }
    Ok(refused)
}

#[async_trait::async_trait]
impl Target for Elastic {
    fn name(&self) -> &str {
        "elasticsearch"
    }

    async fn send(&self, batch: &[Vec<u8>]) -> Result<(), AuditError> {
        let headers = with_auth(
            vec![("content-type", "application/x-ndjson")],
            self.authorization.as_ref(),
        );
        let (status, answer) = self
            .http
            .send(
                http::Method::POST,
                &self.url,
                &headers,
                Bytes::from(self.bulk_body(batch)),
            )
            .await
            .map_err(|e| AuditError::Target(e.to_string()))?;
        if !status.is_success() {
            return Err(AuditError::Target(format!("_bulk answered {status}")));
        }
        let refused = bulk_outcome(&answer)?;
        if refused > 0 {
            tracing::error!(target: "objd::audit", refused, "Elasticsearch refused audit entries for good (a mapping conflict in the index?)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http() -> Fetcher {
        Fetcher::new(&Default::default(), std::time::Duration::from_secs(1), 1 << 10).unwrap()
    }

    #[test]
    fn bulk_bodies_name_the_index_of_the_day_and_the_entry() {
        let es = Elastic::new("http://es:9200/", "audit-%Y.%m.%d".into(), None, http());
        let line =
            br#"{"version":"1","time":"2026-12-04T03:29:24.5Z","requestId":"R1","node":"n:9000","x":1}"#
                .to_vec();
        let body = String::from_utf8(es.bulk_body(std::slice::from_ref(&line))).unwrap();
        let mut lines = body.lines();
        let action: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(action["create"]["_index"], "audit-2026.12.04");
        assert_eq!(action["create"]["_id"], "n:9000/R1");
        assert_eq!(lines.next().unwrap().as_bytes(), &line[..]);
        assert!(lines.next().is_none());
        assert!(body.ends_with('\n'));
        assert_eq!(es.url, "http://es:9200/_bulk");
    }

    #[test]
    fn bulk_answers_decide_what_is_sent_again() {
        assert_eq!(bulk_outcome(br#"{"errors":false,"items":[]}"#).unwrap(), 0);
        let dup = br#"{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":409}}]}"#;
        assert_eq!(bulk_outcome(dup).unwrap(), 0);
        let mapping = br#"{"errors":true,"items":[{"create":{"status":400}},{"create":{"status":201}}]}"#;
        assert_eq!(bulk_outcome(mapping).unwrap(), 1);
        let busy = br#"{"errors":true,"items":[{"create":{"status":429}}]}"#;
        assert!(bulk_outcome(busy).is_err());
        assert!(bulk_outcome(b"<html>").is_err());
    }

    #[test]
    fn files_rotate_by_size_and_keep_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let t = FileTarget::new(dir.path().join("audit.log"), 100, 2).unwrap();
        for i in 0..10 {
            t.0.append(&[format!("{{\"entry\":{i:040}}}").into_bytes()])
                .unwrap();
        }
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 3, "{names:?}");
        assert_eq!(names[0], "audit.log");
        let current = fs::read_to_string(dir.path().join("audit.log")).unwrap();
        assert!(
            current.ends_with(&format!("{{\"entry\":{:040}}}\n", 9)),
            "{current}"
        );
        assert!(current.len() <= 100);
        let newest_rotated = fs::read_to_string(dir.path().join(&names[2])).unwrap();
        assert!(newest_rotated.contains(&format!("{:040}", 8)), "{newest_rotated}");
    }
}
