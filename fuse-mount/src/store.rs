//! The object calls the filesystem makes, on the mounted bucket: a trait,
//! so that the filesystem core ([`crate::fs`]) runs over objd in a mount
//! ([`Bucket`], the S3 client) and over an in-memory store with injected
//! faults in its tests ([`memory`]).
//!
//! Errors are the S3 client's: a status and an S3 code for what the
//! server refused, a transport error for what never got an answer. The
//! core maps them to errnos in one place ([`crate::fs::errno`]).

use bytes::Bytes;
use std::future::Future;
use strata_s3client::{BucketUsage, Client, DetailedPage, ListFrom, ListPage, ObjectInfo, Replace, Result};

#[cfg(test)]
pub mod memory;

/// User metadata of an object, names without the `x-amz-meta-` prefix.
pub type Meta = [(String, String)];

/// One bucket's objects, as S3 serves them.
pub trait Store: Clone + Send + Sync + 'static {
    /// An object's size, ETag, time and metadata (404 when absent).
    fn head(&self, key: &str) -> impl Future<Output = Result<ObjectInfo>> + Send;
    /// Bytes `[start, end)` of an object (fewer at its end).
    fn get_range(&self, key: &str, start: u64, end: u64) -> impl Future<Output = Result<Bytes>> + Send;
    /// [`Store::get_range`] of the version with ETag `etag` only (status
    /// 412 when the object is another one now).
    fn get_range_of(
        &self,
        key: &str,
        start: u64,
        end: u64,
        etag: &str,
    ) -> impl Future<Output = Result<Bytes>> + Send;
    /// A page of the keys under `prefix`, grouped at `delimiter`.
    fn list(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<&str>,
        max_keys: usize,
    ) -> impl Future<Output = Result<ListPage>> + Send;
    /// [`Store::list`] with each key's size, ETag, time and user metadata
    /// (objd's listing with metadata; another server fails it).
    fn list_detailed(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        from: ListFrom<'_>,
        max_keys: usize,
    ) -> impl Future<Output = Result<DetailedPage>> + Send;
    /// Writes an object whole; its ETag.
    fn put(&self, key: &str, body: Bytes, meta: &Meta) -> impl Future<Output = Result<String>> + Send;
    /// A server-side copy, metadata and all.
    fn copy(&self, src: &str, dst: &str) -> impl Future<Output = Result<()>> + Send;
    /// A server-side copy with new user metadata and content type (S3's
    /// default without one); onto itself, it rewrites them in place.
    fn copy_as(
        &self,
        src: &str,
        dst: &str,
        meta: &Meta,
        content_type: Option<&str>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn delete(&self, key: &str) -> impl Future<Output = Result<()>> + Send;
    /// Starts a multipart upload; its id.
    fn create_multipart(&self, key: &str, meta: &Meta) -> impl Future<Output = Result<String>> + Send;
    /// Sends part `number`; its ETag.
    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
    ) -> impl Future<Output = Result<String>> + Send;
    fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> impl Future<Output = Result<()>> + Send;
    fn abort_multipart(&self, key: &str, upload_id: &str) -> impl Future<Output = Result<()>> + Send;
    /// The bucket's usage and quota.
    fn usage(&self) -> impl Future<Output = Result<BucketUsage>> + Send;
}

/// A bucket on an S3 server.
#[derive(Clone)]
pub struct Bucket {
    client: Client,
    name: String,
}

impl Bucket {
    pub fn new(client: Client, name: String) -> Self {
        Self { client, name }
    }
}

impl Store for Bucket {
    fn head(&self, key: &str) -> impl Future<Output = Result<ObjectInfo>> + Send {
        self.client.head_object(&self.name, key)
    }

    fn get_range(&self, key: &str, start: u64, end: u64) -> impl Future<Output = Result<Bytes>> + Send {
        self.client.get_range(&self.name, key, start, end)
    }

    fn get_range_of(
        &self,
        key: &str,
        start: u64,
        end: u64,
        etag: &str,
    ) -> impl Future<Output = Result<Bytes>> + Send {
        self.client.get_range_if(&self.name, key, start, end, Some(etag))
    }

    fn list(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<&str>,
        max_keys: usize,
    ) -> impl Future<Output = Result<ListPage>> + Send {
        self.client.list(&self.name, prefix, delimiter, token, max_keys)
    }

    fn list_detailed(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        from: ListFrom<'_>,
        max_keys: usize,
    ) -> impl Future<Output = Result<DetailedPage>> + Send {
        self.client
            .list_detailed(&self.name, prefix, delimiter, from, max_keys)
    }

    fn put(&self, key: &str, body: Bytes, meta: &Meta) -> impl Future<Output = Result<String>> + Send {
        self.client.put_object(&self.name, key, body, meta)
    }

    fn copy(&self, src: &str, dst: &str) -> impl Future<Output = Result<()>> + Send {
        self.client.copy_object(&self.name, src, dst, None)
    }

    async fn copy_as(&self, src: &str, dst: &str, meta: &Meta, content_type: Option<&str>) -> Result<()> {
        let replace = Replace {
            user: meta,
            content_type,
        };
        self.client.copy_object(&self.name, src, dst, Some(replace)).await
    }

    fn delete(&self, key: &str) -> impl Future<Output = Result<()>> + Send {
        self.client.delete_object(&self.name, key)
    }

    fn create_multipart(&self, key: &str, meta: &Meta) -> impl Future<Output = Result<String>> + Send {
        self.client.create_multipart(&self.name, key, meta)
    }

    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
    ) -> impl Future<Output = Result<String>> + Send {
        self.client.upload_part(&self.name, key, upload_id, number, body)
    }

    fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> impl Future<Output = Result<()>> + Send {
        self.client.complete_multipart(&self.name, key, upload_id, parts)
    }

    fn abort_multipart(&self, key: &str, upload_id: &str) -> impl Future<Output = Result<()>> + Send {
        self.client.abort_multipart(&self.name, key, upload_id)
    }

    fn usage(&self) -> impl Future<Output = Result<BucketUsage>> + Send {
        self.client.bucket_usage(&self.name)
    }
}
