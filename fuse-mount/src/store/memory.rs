//! A bucket in memory, for the filesystem core's tests: objects with
//! metadata, listings with delimiters and continuation (with metadata, as
//! objd lists, or refused, as other servers do), multipart uploads,
//! a quota, and faults injected per kind of call. It answers as S3 does
//! where the core can tell (404 for a missing key, QuotaExceeded past the
//! quota, a transport error for an injected fault). The mount itself is
//! tested against objd; this store lets the POSIX rules be tested without
//! a kernel or a server, and with failures at chosen calls.

use super::{Meta, Store};
use bytes::{Bytes, BytesMut};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;
use strata_s3client::{
    BucketUsage, Detailed, DetailedPage, Error, ListFrom, ListPage, ListedObject, ObjectInfo, Result,
};

/// The kinds of call a fault can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    Head,
    Get,
    List,
    Put,
    Copy,
    Delete,
    Create,
    Part,
    Complete,
    Abort,
}

#[derive(Debug, Clone)]
pub struct Object {
    pub data: Bytes,
    pub meta: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub etag: String,
}

/// A multipart upload in progress.
#[derive(Clone)]
struct Upload {
    key: String,
    meta: Vec<(String, String)>,
    parts: BTreeMap<u32, Bytes>,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Object>,
    uploads: HashMap<String, Upload>,
    /// Calls of a kind that fail next, and how many.
    faults: HashMap<Call, usize>,
    calls: HashMap<Call, usize>,
    quota: Option<u64>,
    next: u64,
    /// The listing with metadata is refused, as a server without it does.
    plain_only: bool,
    /// Keys listed without their metadata, as for a caller whose policies
    /// do not let it read them.
    withheld: Vec<String>,
}

/// A bucket in memory; clones share it.
#[derive(Clone, Default)]
pub struct Memory {
    state: Arc<Mutex<State>>,
}

fn not_found() -> Error {
    Error::S3 {
        status: 404,
        code: "NoSuchKey".into(),
        message: "The specified key does not exist.".into(),
    }
}

impl Memory {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a call of `kind`, failing it if a fault is due.
    fn call(&self, kind: Call) -> Result<MutexGuard<'_, State>> {
        let mut s = self.state();
        *s.calls.entry(kind).or_default() += 1;
        if let Some(n) = s.faults.get_mut(&kind).filter(|n| **n > 0) {
            *n -= 1;
            return Err(Error::Transport(format!("injected fault in {kind:?}")));
        }
        Ok(s)
    }

    /// The next `n` calls of `kind` fail as if the server were unreachable.
    pub fn fail(&self, kind: Call, n: usize) {
        self.state().faults.insert(kind, n);
    }

    /// Calls of `kind` made so far.
    pub fn calls(&self, kind: Call) -> usize {
        self.state().calls.get(&kind).copied().unwrap_or(0)
    }

    pub fn set_quota(&self, bytes: Option<u64>) {
        self.state().quota = bytes;
    }

    pub fn object(&self, key: &str) -> Option<Object> {
        self.state().objects.get(key).cloned()
    }

    pub fn keys(&self) -> Vec<String> {
        self.state().objects.keys().cloned().collect()
    }

    /// Multipart uploads started and neither completed nor aborted.
    pub fn open_uploads(&self) -> usize {
        self.state().uploads.len()
    }

    pub fn insert(&self, key: &str, data: &[u8], meta: &Meta) {
        let mut s = self.state();
        let etag = s.etag();
        let o = Object {
            data: Bytes::copy_from_slice(data),
            meta: meta.to_vec(),
            content_type: None,
            etag,
        };
        s.objects.insert(key.to_owned(), o);
    }

    /// Refuses the listing with metadata from now on, as a server without
    /// it does.
    pub fn plain_listings_only(&self) {
        self.state().plain_only = true;
    }

    /// Lists `key` without its metadata from now on.
    pub fn withhold_metadata(&self, key: &str) {
        self.state().withheld.push(key.to_owned());
    }

    /// Sets an object's content type, as a client's PUT would have.
    pub fn set_content_type(&self, key: &str, content_type: &str) {
        if let Some(o) = self.state().objects.get_mut(key) {
            o.content_type = Some(content_type.to_owned());
        }
    }
}

impl State {
    fn etag(&mut self) -> String {
        self.next += 1;
        format!("\"{:032x}\"", self.next)
    }

    /// Stores an object, unless the quota refuses it.
    fn store(
        &mut self,
        key: &str,
        data: Bytes,
        meta: Vec<(String, String)>,
        content_type: Option<String>,
    ) -> Result<String> {
        let used: u64 = self
            .objects
            .iter()
            .filter(|(k, _)| *k != key)
            .map(|(_, o)| o.data.len() as u64)
            .sum();
        if self.quota.is_some_and(|q| used + data.len() as u64 > q) {
            return Err(Error::S3 {
                status: 403,
                code: "QuotaExceeded".into(),
                message: "The bucket's quota would be exceeded.".into(),
            });
        }
        let etag = self.etag();
        let o = Object {
            data,
            meta,
            content_type,
            etag: etag.clone(),
        };
        self.objects.insert(key.to_owned(), o);
        Ok(etag)
    }
}

impl Store for Memory {
    async fn head(&self, key: &str) -> Result<ObjectInfo> {
        let s = self.call(Call::Head)?;
        let o = s.objects.get(key).ok_or_else(not_found)?;
        Ok(ObjectInfo {
            size: o.data.len() as u64,
            etag: o.etag.clone(),
            last_modified: SystemTime::UNIX_EPOCH,
            content_type: o.content_type.clone(),
            metadata: o.meta.clone(),
        })
    }

    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Bytes> {
        let s = self.call(Call::Get)?;
        let o = s.objects.get(key).ok_or_else(not_found)?;
        let len = o.data.len() as u64;
        Ok(o.data.slice(start.min(len) as usize..end.min(len) as usize))
    }

    async fn get_range_of(&self, key: &str, start: u64, end: u64, etag: &str) -> Result<Bytes> {
        let s = self.call(Call::Get)?;
        let o = s.objects.get(key).ok_or_else(not_found)?;
        if o.etag != etag {
            return Err(Error::S3 {
                status: 412,
                code: "PreconditionFailed".into(),
                message: "At least one of the pre-conditions you specified did not hold".into(),
            });
        }
        let len = o.data.len() as u64;
        Ok(o.data.slice(start.min(len) as usize..end.min(len) as usize))
    }

    async fn list(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<ListPage> {
        let s = self.call(Call::List)?;
        let mut page = ListPage::default();
        let after = token.unwrap_or("");
        for (key, o) in s.objects.range(prefix.to_owned()..) {
            if !key.starts_with(prefix) {
                break;
            }
            if !after.is_empty() && (key.as_str() <= after || key.starts_with(after) && after.ends_with('/'))
            {
                continue;
            }
            let rest = &key[prefix.len()..];
            let group =
                delimiter.and_then(|d| rest.find(d).map(|i| format!("{prefix}{}", &rest[..i + d.len()])));
            if page.objects.len() + page.prefixes.len() == max_keys {
                page.truncated = true;
                break;
            }
            match group {
                Some(g) if page.prefixes.last() == Some(&g) => {}
                Some(g) => {
                    page.next_token = Some(g.clone());
                    page.prefixes.push(g);
                }
                None => {
                    page.next_token = Some(key.clone());
                    page.objects.push(ListedObject {
                        key: key.clone(),
                        size: o.data.len() as u64,
                        etag: o.etag.clone(),
                        last_modified: "1970-01-01T00:00:00.000Z".into(),
                    });
                }
            }
        }
        if !page.truncated {
            page.next_token = None;
        }
        Ok(page)
    }

    async fn list_detailed(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        from: ListFrom<'_>,
        max_keys: usize,
    ) -> Result<DetailedPage> {
        // Tokens are the key listed last: a key to start after is one.
        let token = from.token.or(from.after);
        if self.state().plain_only {
            drop(self.call(Call::List)?);
            return Err(Error::S3 {
                status: 404,
                code: "NoSuchBucket".into(),
                message: "The specified bucket does not exist".into(),
            });
        }
        let page = self.list(prefix, delimiter, token, max_keys).await?;
        let s = self.state();
        let objects = page
            .objects
            .into_iter()
            .filter_map(|o| {
                let stored = s.objects.get(&o.key)?;
                let shown = !s.withheld.contains(&o.key);
                Some(Detailed {
                    info: ObjectInfo {
                        size: o.size,
                        etag: o.etag,
                        last_modified: SystemTime::UNIX_EPOCH,
                        content_type: None,
                        metadata: if shown { stored.meta.clone() } else { Vec::new() },
                    },
                    key: o.key,
                    has_metadata: shown,
                })
            })
            .collect();
        Ok(DetailedPage {
            objects,
            prefixes: page.prefixes,
            truncated: page.truncated,
            next_token: page.next_token,
        })
    }

    async fn put(&self, key: &str, body: Bytes, meta: &Meta) -> Result<String> {
        self.call(Call::Put)?.store(key, body, meta.to_vec(), None)
    }

    async fn copy(&self, src: &str, dst: &str) -> Result<()> {
        let mut s = self.call(Call::Copy)?;
        let o = s.objects.get(src).cloned().ok_or_else(not_found)?;
        s.store(dst, o.data, o.meta, o.content_type).map(|_| ())
    }

    async fn copy_as(&self, src: &str, dst: &str, meta: &Meta, content_type: Option<&str>) -> Result<()> {
        let mut s = self.call(Call::Copy)?;
        let o = s.objects.get(src).cloned().ok_or_else(not_found)?;
        let content_type = content_type.map(str::to_owned);
        s.store(dst, o.data, meta.to_vec(), content_type).map(|_| ())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.call(Call::Delete)?.objects.remove(key);
        Ok(())
    }

    async fn create_multipart(&self, key: &str, meta: &Meta) -> Result<String> {
        let mut s = self.call(Call::Create)?;
        let id = s.etag();
        let upload = Upload {
            key: key.to_owned(),
            meta: meta.to_vec(),
            parts: BTreeMap::new(),
        };
        s.uploads.insert(id.clone(), upload);
        Ok(id)
    }

    async fn upload_part(&self, key: &str, upload_id: &str, number: u32, body: Bytes) -> Result<String> {
        let mut s = self.call(Call::Part)?;
        let etag = s.etag();
        let upload = s.uploads.get_mut(upload_id).ok_or_else(not_found)?;
        assert_eq!(upload.key, key, "a part sent to another key's upload");
        upload.parts.insert(number, body);
        Ok(etag)
    }

    async fn complete_multipart(&self, key: &str, upload_id: &str, parts: &[(u32, String)]) -> Result<()> {
        let mut s = self.call(Call::Complete)?;
        let upload = s.uploads.get(upload_id).cloned().ok_or_else(not_found)?;
        assert_eq!(upload.key, key, "another key's upload completed");
        let mut data = BytesMut::new();
        for (n, _) in parts {
            let part = upload.parts.get(n).ok_or_else(|| Error::S3 {
                status: 400,
                code: "InvalidPart".into(),
                message: format!("part {n} was not uploaded"),
            })?;
            data.extend_from_slice(part);
        }
        s.store(key, data.freeze(), upload.meta, None)?;
        s.uploads.remove(upload_id);
        Ok(())
    }

    async fn abort_multipart(&self, _key: &str, upload_id: &str) -> Result<()> {
        self.call(Call::Abort)?.uploads.remove(upload_id);
        Ok(())
    }

    async fn usage(&self) -> Result<BucketUsage> {
        let s = self.state();
        Ok(BucketUsage {
            bytes: s.objects.values().map(|o| o.data.len() as u64).sum(),
            versions: s.objects.len() as u64,
            quota: s.quota,
        })
    }
}
