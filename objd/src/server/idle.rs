//! Slow-client protection for request bodies: a body whose client sends
//! nothing for the idle timeout while the server is waiting for it fails,
//! so the request ends (nothing is committed: writes commit only after the
//! whole body arrived), the client gets `RequestTimeout` and the connection
//! is released. Time the server spends elsewhere between reads does not
//! count. The body also counts the bytes it reads, for metrics and audit.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
#[error("the client sent no request body data for {0:?}")]
pub struct IdleTimeout(Duration);

pub struct IdleBody<B> {
    inner: B,
    idle: Duration,
    /// Set when the body timed out, for the pipeline to answer accordingly.
    fired: Arc<AtomicBool>,
    timer: Pin<Box<Sleep>>,
    /// True while the timer measures a wait that is still going on.
    waiting: bool,
    /// Bytes read so far.
    read: Arc<AtomicU64>,
}

impl<B> IdleBody<B> {
    pub fn new(inner: B, idle: Duration, fired: Arc<AtomicBool>, read: Arc<AtomicU64>) -> Self {
        Self {
            inner,
            idle,
            fired,
            timer: Box::pin(tokio::time::sleep(idle)),
            waiting: false,
            read,
        }
    }
}

impl<B> Body for IdleBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => {
                this.waiting = false;
                if let Some(Ok(data)) = r.as_ref().map(|f| f.as_ref().map(Frame::data_ref)) {
                    this.read
                        .fetch_add(data.map_or(0, |d| d.len() as u64), Ordering::Relaxed);
                }
                Poll::Ready(r.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if !this.waiting {
                    this.waiting = true;
                    this.timer.as_mut().reset(Instant::now() + this.idle);
                }
                match this.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.fired.store(true, Ordering::Relaxed);
                        Poll::Ready(Some(Err(Box::new(IdleTimeout(this.idle)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The answer to a request whose body timed out.
pub fn timeout_response(request_id: &str) -> http::Response<s3s::Body> {
    let mut r = super::xml_error(
        http::StatusCode::BAD_REQUEST,
        "RequestTimeout",
        "Your socket connection to the server was not read from or written to within the timeout period.",
        Some(request_id),
    );
    r.headers_mut()
        .insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_after_the_idle_time_only() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let stream = tokio_stream_from(rx);
        let fired = Arc::new(AtomicBool::new(false));
        let mut body = IdleBody::new(
            StreamBody::new(stream),
            Duration::from_secs(10),
            Arc::clone(&fired),
            Arc::default(),
        );
        tx.send(Ok(Frame::data(Bytes::from_static(b"a")))).await.unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        // Time spent by the server between reads does not count.
        tokio::time::advance(Duration::from_secs(30)).await;
        tx.send(Ok(Frame::data(Bytes::from_static(b"b")))).await.unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        // A client that stalls while the server waits is cut off.
        let start = Instant::now();
        let r = body.frame().await.unwrap();
        assert!(r.is_err());
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        assert!(fired.load(Ordering::Relaxed));
        drop(tx);
    }

    fn tokio_stream_from<T: Send + 'static>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures::Stream<Item = T> + Unpin {
        Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }
}
