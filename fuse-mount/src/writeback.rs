//! Write-back of files open for writing: the file's bytes live in an
//! anonymous temporary file (on disk, so memory stays bounded whatever the
//! size) that takes writes at any offset, appends and truncation; flush,
//! fsync and close upload it as one object (one PUT, or a multipart upload
//! in parts of `PART` bytes read from the file, a few in flight at once). The
//! object in the bucket changes only when an upload completes, so a crash
//! of the mount never leaves a torn object: the previous version stays.

use bytes::Bytes;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use strata_s3client::Client;

/// Size of the parts of large uploads, and of the chunks files are
/// downloaded in.
pub const PART: u64 = 8 << 20;

/// Parts of one upload sent at once (memory: this many parts per upload).
const PARTS_IN_FLIGHT: usize = 4;

#[derive(Debug)]
pub struct WriteBack {
    file: File,
    size: u64,
    /// Changed since the last upload.
    pub dirty: bool,
}

impl WriteBack {
    /// An empty file (create, or open with O_TRUNC).
    pub fn empty(dir: &std::path::Path) -> io::Result<Self> {
        Ok(Self {
            file: tempfile::tempfile_in(dir)?,
            size: 0,
            dirty: true,
        })
    }

    /// The current content of an object, fetched in parts.
    pub async fn load(
        dir: &std::path::Path,
        client: &Client,
        bucket: &str,
        key: &str,
        size: u64,
    ) -> io::Result<Self> {
        let file = tempfile::tempfile_in(dir)?;
        let mut at = 0;
        while at < size {
            let end = (at + PART).min(size);
            let data = client
                .get_range(bucket, key, at, end)
                .await
                .map_err(io::Error::other)?;
            if data.is_empty() {
                break;
            }
            file.write_all_at(&data, at)?;
            at += data.len() as u64;
        }
        Ok(Self {
            file,
            size: at,
            dirty: false,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset)?;
        self.size = self.size.max(offset + data.len() as u64);
        self.dirty = true;
        Ok(())
    }

    pub fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let end = (offset + len as u64).min(self.size);
        let mut buf = vec![0u8; end.saturating_sub(offset) as usize];
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    pub fn truncate(&mut self, size: u64) -> io::Result<()> {
        self.file.set_len(size)?;
        self.size = size;
        self.dirty = true;
        Ok(())
    }

    fn chunk(&self, at: u64) -> io::Result<Bytes> {
        let end = (at + PART).min(self.size);
        let mut buf = vec![0u8; (end - at) as usize];
        self.file.read_exact_at(&mut buf, at)?;
        Ok(Bytes::from(buf))
    }

    /// Uploads the file as `key` with `metadata`; clean afterwards.
    pub async fn upload(
        &mut self,
        client: &Client,
        bucket: &str,
        key: &str,
        metadata: &[(String, String)],
    ) -> io::Result<()> {
        if self.size <= PART {
            let body = self.chunk(0)?;
            client
                .put_object(bucket, key, body, metadata)
                .await
                .map_err(io::Error::other)?;
        } else {
            let id = client
                .create_multipart(bucket, key, metadata)
                .await
                .map_err(io::Error::other)?;
            let result: io::Result<()> = async {
                let mut parts: Vec<(u32, String)> = Vec::new();
                let mut running = tokio::task::JoinSet::new();
                let mut at = 0;
                let mut next = 1u32;
                loop {
                    // Keep up to PARTS_IN_FLIGHT parts uploading at once.
                    while running.len() < PARTS_IN_FLIGHT && at < self.size {
                        let body = self.chunk(at)?;
                        at += body.len() as u64;
                        let (c, b, k, u, n) = (
                            client.clone(),
                            bucket.to_owned(),
                            key.to_owned(),
                            id.clone(),
                            next,
                        );
                        running.spawn(async move { (n, c.upload_part(&b, &k, &u, n, body).await) });
                        next += 1;
                    }
                    let Some(done) = running.join_next().await else {
                        break;
                    };
                    let (n, etag) = done.map_err(io::Error::other)?;
                    parts.push((n, etag.map_err(io::Error::other)?));
                }
                parts.sort();
                client
                    .complete_multipart(bucket, key, &id, &parts)
                    .await
                    .map_err(io::Error::other)
            }
            .await;
            if let Err(e) = result {
                let _ = client.abort_multipart(bucket, key, &id).await;
                return Err(e);
            }
        }
        self.dirty = false;
        Ok(())
    }
}
