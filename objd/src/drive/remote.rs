//! A drive of another node, reached over HTTP/2 ([`super::rpc`]).
//!
//! One [`NodeClient`] per peer node holds one multiplexed connection and
//! the node's health: a call that fails at the transport marks the node
//! offline, every later call fails at once with [`DriveError::Offline`]
//! (no request waits on a dead peer), and a prober brings it back as soon
//! as it answers, telling the listeners of [`NodeClient::subscribe`]
//! (which heal what the node missed). HTTP/2 keep-alive pings find a peer
//! that vanished without closing its connection (a cut link) within
//! [`PING_INTERVAL`] + [`PING_TIMEOUT`].
//!
//! The [`Drive`] trait is blocking: these methods run the call on the
//! runtime and wait for it, so they must be called (like every drive
//! method) from a blocking thread.

use super::rpc::{self, Op};
use super::{
    CommitDone, CommitResult, DataDir, Drive, DriveError, DriveResult, DriveSpace, KeyRange, RecordOp,
    ShardFile, ShardWriter, Table, format,
};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};

/// How long connecting to a peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Keep-alive pings on an open connection...
pub const PING_INTERVAL: Duration = Duration::from_secs(1);
/// ...and how long a ping may go unanswered before the connection is dropped.
pub const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// How often an offline node is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// Longest wait for a call other than a shard write (those stream for as
/// long as the body takes; the object layer's drive timeout bounds them).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Shard-write chunks in flight between a writer and its request.
const WRITE_QUEUE: usize = 2;

/// The body of a node call: all at once, or streamed from a channel.
enum RpcBody {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl http_body::Body for RpcBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            RpcBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(http_body::Frame::data(b)))),
            RpcBody::Stream(rx) => rx.poll_recv(cx).map(|c| c.map(|b| Ok(http_body::Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, RpcBody::Full(None))
    }
}

/// A peer node: its connection and health.
#[derive(Debug)]
pub struct NodeClient {
    addr: String,
    key: rpc::NodeKey,
    /// The certificates of TLS between nodes (`None`: plain HTTP/2).
    tls: Option<Arc<crate::tls::Certs>>,
    rt: Handle,
    conn: tokio::sync::Mutex<Option<SendRequest<RpcBody>>>,
    online: AtomicBool,
    probing: AtomicBool,
    /// Counts the node's returns; listeners wait for it to change.
    returns: watch::Sender<u64>,
    /// This client, for the tasks it spawns.
    me: std::sync::Weak<NodeClient>,
}

impl std::fmt::Debug for RpcBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RpcBody")
    }
}

/// A transport failure: the node is unreachable.
#[derive(Debug)]
struct Unreachable(String);

impl NodeClient {
    /// A client of the node at `addr` (`host:port`), created on the runtime
    /// its calls will run on; over TLS with `tls`.
    pub fn new(addr: &str, key: rpc::NodeKey, tls: Option<Arc<crate::tls::Certs>>) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            addr: addr.to_owned(),
            key,
            tls,
            rt: Handle::current(),
            conn: tokio::sync::Mutex::new(None),
            online: AtomicBool::new(true),
            probing: AtomicBool::new(false),
            returns: watch::channel(0).0,
            me: me.clone(),
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `http://host:port` or `https://host:port`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// Changes each time the node comes back after being offline.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.returns.subscribe()
    }

    async fn sender(&self) -> Result<SendRequest<RpcBody>, Unreachable> {
        let mut guard = self.conn.lock().await;
        if let Some(s) = guard.as_ref()
            && !s.is_closed()
        {
            return Ok(s.clone());
        }
        *guard = None;
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&self.addr))
            .await
            .map_err(|_| Unreachable("connect timed out".into()))?
            .map_err(|e| Unreachable(format!("connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let mut b = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
        b.timer(TokioTimer::new())
            .keep_alive_interval(PING_INTERVAL)
            .keep_alive_timeout(PING_TIMEOUT)
            .keep_alive_while_idle(true)
            .initial_stream_window_size(1 << 20)
            .initial_connection_window_size(16 << 20)
            .max_header_list_size(64 << 10);
        let send = tokio::time::timeout(CONNECT_TIMEOUT, async {
            match self.tls.as_ref().and_then(|t| t.client_config()) {
                None => Self::handshake(&b, tcp).await,
                Some(config) => {
                    let name = crate::tls::server_name(&self.addr).map_err(|e| Unreachable(e.to_string()))?;
                    let stream = tokio_rustls::TlsConnector::from(config)
                        .connect(name, tcp)
                        .await
                        .map_err(|e| Unreachable(format!("TLS: {e}")))?;
                    Self::handshake(&b, stream).await
                }
            }
        })
        .await
        .map_err(|_| Unreachable("handshake timed out".into()))??;
        *guard = Some(send.clone());
        Ok(send)
    }

    /// Starts HTTP/2 on a connected stream.
    async fn handshake<S>(
        b: &hyper::client::conn::http2::Builder<TokioExecutor>,
        stream: S,
    ) -> Result<SendRequest<RpcBody>, Unreachable>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (send, conn) = b
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Unreachable(format!("handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(send)
    }

    /// One call, over the network.
    async fn send(&self, op: Op, args: &str, body: RpcBody) -> Result<DriveResult<Bytes>, Unreachable> {
        let mut s = self.sender().await?;
        let req = http::Request::post(format!("{}{}", rpc::PREFIX, op.name()))
            .header(rpc::ARGS_HEADER, args)
            .header(rpc::AUTH_HEADER, self.key.sign(op.name(), args))
            .body(body)
            .map_err(|e| Unreachable(e.to_string()))?;
        s.ready().await.map_err(|e| Unreachable(e.to_string()))?;
        let resp = s
            .send_request(req)
            .await
            .map_err(|e| Unreachable(e.to_string()))?;
        let status = resp.status();
        let code = resp
            .headers()
            .get(rpc::ERROR_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u8>().ok());
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Unreachable(e.to_string()))?
            .to_bytes();
        Ok(match (status.as_u16(), code) {
            (200, _) => Ok(body),
            (_, Some(code)) => Err(rpc::error_of(code, String::from_utf8_lossy(&body).into_owned())),
            (403, None) => {
                tracing::error!(node = %self.addr, "the node refused this node's credentials: every node needs the same root secret key (and, with TLS, a certificate of the cluster CA)");
                Err(DriveError::Offline)
            }
            (s, None) => Err(DriveError::Io(std::io::Error::other(format!(
                "node {} answered {s}",
                self.addr
            )))),
        })
    }

    /// A call with health bookkeeping: fails at once while the node is
    /// offline, and marks it offline when the transport fails.
    async fn call(
        &self,
        op: Op,
        args: String,
        body: RpcBody,
        timeout: Option<Duration>,
    ) -> DriveResult<Bytes> {
        if !self.is_online() {
            return Err(DriveError::Offline);
        }
        let fut = self.send(op, &args, body);
        let r = match timeout {
            Some(t) => match tokio::time::timeout(t, fut).await {
                Ok(r) => r,
                Err(_) => return Err(DriveError::Timeout),
            },
            None => fut.await,
        };
        match r {
            Ok(r) => r,
            Err(Unreachable(why)) => {
                self.mark_offline(&why);
                Err(DriveError::Offline)
            }
        }
    }

    fn mark_offline(&self, why: &str) {
        if self.online.swap(false, Ordering::AcqRel) {
            tracing::warn!(node = %self.addr, reason = why, "node offline");
        }
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(me) = self.me.upgrade() else {
            return;
        };
        self.rt.spawn(async move {
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                let probe = me.send(Op::Health, "", RpcBody::Full(None));
                if let Ok(Ok(Ok(_))) = tokio::time::timeout(CONNECT_TIMEOUT * 2, probe).await {
                    break;
                }
                if Arc::strong_count(&me) == 1 {
                    return;
                }
            }
            me.probing.store(false, Ordering::Release);
            me.online.store(true, Ordering::Release);
            tracing::info!(node = %me.addr, "node back online");
            me.returns.send_modify(|n| *n += 1);
        });
    }

    /// Runs a call from a blocking thread and waits for it.
    fn blocking(&self, op: Op, args: String, body: RpcBody) -> DriveResult<Bytes> {
        let (tx, rx) = oneshot::channel();
        let Some(me) = self.me.upgrade() else {
            return Err(DriveError::Offline);
        };
        self.rt.spawn(async move {
            let _ = tx.send(me.call(op, args, body, Some(CALL_TIMEOUT)).await);
        });
        rx.blocking_recv().unwrap_or(Err(DriveError::Offline))
    }
}

/// One drive of a peer node.
#[derive(Debug)]
pub struct RemoteDrive {
    node: Arc<NodeClient>,
    path: String,
    name: String,
}

impl RemoteDrive {
    pub fn new(node: Arc<NodeClient>, path: &str) -> Self {
        Self {
            name: format!("{}{path}", node.url()),
            node,
            path: path.to_owned(),
        }
    }

    /// Arguments: the drive path, then what `f` writes.
    fn args(&self, f: impl FnOnce(&mut crate::meta::codec::Writer)) -> String {
        rpc::args(|w| {
            w.str(&self.path);
            f(w);
        })
    }

    fn call(&self, op: Op, args: String, body: Option<Vec<u8>>) -> DriveResult<Bytes> {
        self.node.blocking(op, args, RpcBody::Full(body.map(Bytes::from)))
    }
}

/// A shard streaming to a peer: each write is a chunk of the request body.
struct RemoteShardWriter {
    tx: Option<mpsc::Sender<Bytes>>,
    done: Option<oneshot::Receiver<DriveResult<Bytes>>>,
}

impl RemoteShardWriter {
    fn outcome(&mut self) -> DriveResult<()> {
        self.tx = None;
        match self.done.take() {
            Some(rx) => rx.blocking_recv().unwrap_or(Err(DriveError::Offline)).map(|_| ()),
            None => Err(DriveError::Offline),
        }
    }
}

impl ShardWriter for RemoteShardWriter {
    fn write_all(&mut self, buf: &[u8]) -> DriveResult<()> {
        let Some(tx) = &self.tx else {
            return Err(DriveError::Offline);
        };
        if tx.blocking_send(Bytes::copy_from_slice(buf)).is_err() {
            // The call ended early: its answer says why.
            return match self.outcome() {
                Ok(()) => Err(DriveError::Io(std::io::Error::other("shard write ended early"))),
                Err(e) => Err(e),
            };
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> DriveResult<()> {
        self.outcome()
    }
}

fn decode<T>(r: Result<T, crate::meta::codec::DecodeError>) -> DriveResult<T> {
    r.map_err(rpc::malformed)
}

impl Drive for RemoteDrive {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_online(&self) -> bool {
        self.node.is_online()
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn read_format(&self) -> DriveResult<Option<format::DriveFormat>> {
        let b = self.call(Op::ReadFormat, self.args(|_| {}), None)?;
        if b.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| DriveError::Corrupt(format!("format.json: {e}")))
    }

    fn write_format(&self, f: &format::DriveFormat) -> DriveResult<()> {
        let body = serde_json::to_vec(f).map_err(|e| DriveError::Corrupt(e.to_string()))?;
        self.call(Op::WriteFormat, self.args(|_| {}), Some(body))
            .map(|_| ())
    }

    fn get(&self, table: Table, key: &[u8]) -> DriveResult<Option<Vec<u8>>> {
        let args = self.args(|w| {
            rpc::put_table(w, table);
            w.bytes(key);
        });
        let b = self.call(Op::Get, args, None)?;
        let mut v = decode(rpc::decode_values(&b))?;
        Ok(v.pop().flatten())
    }

    fn scan(&self, table: Table, range: KeyRange) -> DriveResult<super::Entries> {
        let args = self.args(|w| {
            rpc::put_table(w, table);
            rpc::put_range(w, range);
        });
        let b = self.call(Op::Scan, args, None)?;
        decode(rpc::decode_entries(&b))
    }

    fn scan_summaries(&self, range: KeyRange) -> DriveResult<super::Packed> {
        let args = self.args(|w| rpc::put_range(w, range));
        let b = self.call(Op::ScanSummaries, args, None)?;
        decode(rpc::decode_packed(&b))
    }

    fn commit(&self, ops: Vec<RecordOp>) -> CommitResult {
        let b = self.call(Op::Commit, self.args(|_| {}), Some(rpc::encode_ops(&ops)))?;
        decode(rpc::decode_values(&b))
    }

    fn commit_async(&self, ops: Vec<RecordOp>, done: CommitDone) {
        let node = Arc::clone(&self.node);
        let args = self.args(|_| {});
        let body = RpcBody::Full(Some(Bytes::from(rpc::encode_ops(&ops))));
        self.node.rt.spawn(async move {
            let r = node
                .call(Op::Commit, args, body, Some(CALL_TIMEOUT))
                .await
                .and_then(|b| decode(rpc::decode_values(&b)));
            done(r);
        });
    }

    fn create_shard(&self, dir: &[u8; 16], file: ShardFile) -> DriveResult<Box<dyn ShardWriter>> {
        if !self.node.is_online() {
            return Err(DriveError::Offline);
        }
        let args = self.args(|w| {
            w.raw(dir);
            rpc::put_file(w, file);
        });
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let (done_tx, done_rx) = oneshot::channel();
        let node = Arc::clone(&self.node);
        self.node.rt.spawn(async move {
            let _ = done_tx.send(node.call(Op::CreateShard, args, RpcBody::Stream(rx), None).await);
        });
        Ok(Box::new(RemoteShardWriter {
            tx: Some(tx),
            done: Some(done_rx),
        }))
    }

    fn read_shard(&self, dir: &[u8; 16], file: ShardFile, offset: u64, len: usize) -> DriveResult<Vec<u8>> {
        let args = self.args(|w| {
            w.raw(dir);
            rpc::put_file(w, file);
            w.u64(offset);
            w.u64(len as u64);
        });
        Ok(self.call(Op::ReadShard, args, None)?.to_vec())
    }

    fn remove_part(&self, dir: &[u8; 16], file: ShardFile) -> DriveResult<()> {
        let args = self.args(|w| {
            w.raw(dir);
            rpc::put_file(w, file);
        });
        self.call(Op::RemovePart, args, None).map(|_| ())
    }

    fn remove_data_dir(&self, dir: &[u8; 16]) -> DriveResult<()> {
        self.call(Op::RemoveDataDir, self.args(|w| w.raw(dir)), None)
            .map(|_| ())
    }

    fn link_data(&self, src: &[u8; 16], dst: &[u8; 16], files: &[ShardFile]) -> DriveResult<()> {
        let args = self.args(|w| {
            w.raw(src);
            w.raw(dst);
            w.u32(files.len() as u32);
            for f in files {
                rpc::put_file(w, *f);
            }
        });
        self.call(Op::LinkData, args, None).map(|_| ())
    }

    fn sync_data(&self) -> DriveResult<()> {
        self.call(Op::SyncData, self.args(|_| {}), None).map(|_| ())
    }

    fn data_dirs(&self, prefix: u8) -> DriveResult<Vec<DataDir>> {
        let b = self.call(Op::DataDirs, self.args(|w| w.u8(prefix)), None)?;
        decode(rpc::decode_dirs(&b))
    }

    fn remove_file(&self, dir: &[u8; 16], name: &str) -> DriveResult<()> {
        let args = self.args(|w| {
            w.raw(dir);
            w.str(name);
        });
        self.call(Op::RemoveFile, args, None).map(|_| ())
    }

    fn space(&self) -> DriveResult<DriveSpace> {
        let b = self.call(Op::Space, self.args(|_| {}), None)?;
        let mut r = crate::meta::codec::Reader::new(&b);
        Ok(DriveSpace {
            total: decode(r.u64())?,
            free: decode(r.u64())?,
        })
    }
}
