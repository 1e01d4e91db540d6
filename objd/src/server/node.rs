//! The node endpoint: serves this node's drives to the other nodes of a
//! cluster (the server side of [`crate::drive::rpc`]). Every call is
//! authenticated before anything is decoded (with TLS, the connection
//! must also have presented a certificate of the cluster CA); a call for a drive this node
//! does not serve is refused. Shard writes stream: each body chunk is
//! written before the next is read, so HTTP/2 flow control holds a fast
//! sender back to the drive's pace.

use crate::drive::rpc::{self, Op};
use crate::drive::{Drive, DriveError, DriveResult};
use crate::meta::codec::Reader;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::collections::HashMap;
use std::sync::Arc;

/// This node's drives, by path, and the key calls must be signed with.
#[derive(Debug)]
pub struct NodeService {
    drives: HashMap<String, Arc<dyn Drive>>,
    key: rpc::NodeKey,
}

fn answer(status: StatusCode, body: Bytes) -> Response<s3s::Body> {
    let mut r = Response::new(s3s::Body::from(body));
    *r.status_mut() = status;
    r
}

/// A node call over TLS without a client certificate of the cluster CA.
pub fn refuse_uncertified() -> Response<s3s::Body> {
    tracing::warn!("node call without a cluster certificate refused");
    answer(
        StatusCode::FORBIDDEN,
        Bytes::from_static(b"node calls need a client certificate of the cluster CA"),
    )
}

fn drive_error(e: &DriveError) -> Response<s3s::Body> {
    let mut r = answer(StatusCode::CONFLICT, Bytes::from(e.to_string()));
    r.headers_mut().insert(
        rpc::ERROR_HEADER,
        HeaderValue::from_str(&rpc::error_code(e).to_string()).unwrap_or(HeaderValue::from_static("3")),
    );
    r
}

fn decode<T>(r: Result<T, crate::meta::codec::DecodeError>) -> DriveResult<T> {
    r.map_err(rpc::malformed)
}

impl NodeService {
    pub fn new(drives: HashMap<String, Arc<dyn Drive>>, key: rpc::NodeKey) -> Self {
        Self { drives, key }
    }

    /// Whether `path` is a node call.
    pub fn is_node_call(path: &str) -> bool {
        path.starts_with(rpc::PREFIX)
    }

    pub async fn handle(&self, req: Request<Incoming>) -> Response<s3s::Body> {
        let Some(op) = req.uri().path().strip_prefix(rpc::PREFIX).and_then(Op::parse) else {
            return answer(StatusCode::NOT_FOUND, Bytes::new());
        };
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let (args, auth) = (header(rpc::ARGS_HEADER), header(rpc::AUTH_HEADER));
        if req.method() != http::Method::POST || !self.key.verify(&auth, op.name(), &args) {
            tracing::warn!(op = op.name(), "node call with bad credentials refused");
            return answer(StatusCode::FORBIDDEN, Bytes::new());
        }
        if op == Op::Health {
            return answer(StatusCode::OK, Bytes::new());
        }
        match self.serve(op, &args, req.into_body()).await {
            Ok(b) => answer(StatusCode::OK, b),
            Err(e) => drive_error(&e),
        }
    }

    async fn serve(&self, op: Op, args: &str, body: Incoming) -> DriveResult<Bytes> {
        let raw = rpc::unhex(args)?;
        let mut r = Reader::new(&raw);
        let path = decode(r.string())?;
        let drive = self.drives.get(&path).cloned().ok_or_else(|| {
            DriveError::Io(std::io::Error::other(format!("this node serves no drive {path}")))
        })?;
        if op == Op::CreateShard {
            let dir = decode(r.array::<16>())?;
            let file = decode(rpc::read_file(&mut r))?;
            return write_shard(drive, dir, file, body).await.map(|()| Bytes::new());
        }
        let payload = body
            .collect()
            .await
            .map_err(|e| DriveError::Io(std::io::Error::other(e.to_string())))?
            .to_bytes();
        let rest = r.rest().to_vec();
        blocking(move || run(op, drive.as_ref(), &rest, &payload)).await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> DriveResult<T> + Send + 'static) -> DriveResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or(Err(DriveError::Offline))
}

/// Writes a streamed shard chunk by chunk, then makes it durable.
async fn write_shard(
    drive: Arc<dyn Drive>,
    dir: [u8; 16],
    file: crate::drive::ShardFile,
    mut body: Incoming,
) -> DriveResult<()> {
    let d = Arc::clone(&drive);
    let mut w = blocking(move || d.create_shard(&dir, file)).await?;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| DriveError::Io(std::io::Error::other(format!("shard stream: {e}"))))?;
        let Ok(data) = frame.into_data() else { continue };
        w = blocking(move || w.write_all(&data).map(|()| w)).await?;
    }
    blocking(move || w.finish()).await
}

/// Runs a call whose arguments after the drive path are `args`.
fn run(op: Op, d: &dyn Drive, args: &[u8], payload: &[u8]) -> DriveResult<Bytes> {
    let mut r = Reader::new(args);
    let none = || Ok(Bytes::new());
    match op {
        Op::Health | Op::CreateShard => none(),
        Op::ReadFormat => match d.read_format()? {
            Some(f) => serde_json::to_vec(&f)
                .map(Bytes::from)
                .map_err(|e| DriveError::Corrupt(e.to_string())),
            None => none(),
        },
        Op::WriteFormat => {
            let f = serde_json::from_slice(payload)
                .map_err(|e| DriveError::Corrupt(format!("format.json: {e}")))?;
            d.write_format(&f)?;
            none()
        }
        Op::Get => {
            let table = decode(rpc::table_of(decode(r.u8())?))?;
            let key = decode(r.bytes())?;
            Ok(rpc::encode_values(&[d.get(table, key)?]).into())
        }
        Op::Scan => {
            let table = decode(rpc::table_of(decode(r.u8())?))?;
            let range = decode(rpc::read_range(&mut r))?;
            Ok(rpc::encode_entries(&d.scan(table, range)?).into())
        }
        Op::ScanSummaries => {
            let range = decode(rpc::read_range(&mut r))?;
            Ok(rpc::encode_packed(&d.scan_summaries(range)?).into())
        }
        Op::Commit => {
            let ops = decode(rpc::decode_ops(payload))?;
            Ok(rpc::encode_values(&d.commit(ops)?).into())
        }
        Op::ReadShard => {
            let dir = decode(r.array::<16>())?;
            let file = decode(rpc::read_file(&mut r))?;
            let offset = decode(r.u64())?;
            let len = usize::try_from(decode(r.u64())?).unwrap_or(usize::MAX);
            Ok(d.read_shard(&dir, file, offset, len)?.into())
        }
        Op::RemovePart => {
            let dir = decode(r.array::<16>())?;
            d.remove_part(&dir, decode(rpc::read_file(&mut r))?)?;
            none()
        }
        Op::RemoveDataDir => {
            d.remove_data_dir(&decode(r.array::<16>())?)?;
            none()
        }
        Op::LinkData => {
            let src = decode(r.array::<16>())?;
            let dst = decode(r.array::<16>())?;
            let n = decode(r.count(12))?;
            let files = (0..n)
                .map(|_| decode(rpc::read_file(&mut r)))
                .collect::<DriveResult<Vec<_>>>()?;
            d.link_data(&src, &dst, &files)?;
            none()
        }
        Op::SyncData => {
            d.sync_data()?;
            none()
        }
        Op::DataDirs => Ok(rpc::encode_dirs(&d.data_dirs(decode(r.u8())?)?).into()),
        Op::RemoveFile => {
            let dir = decode(r.array::<16>())?;
            d.remove_file(&dir, &decode(r.string())?)?;
            none()
        }
        Op::Space => {
            let s = d.space()?;
            let mut w = crate::meta::codec::Writer::default();
            w.u64(s.total);
            w.u64(s.free);
            Ok(w.buf.into())
        }
    }
}
