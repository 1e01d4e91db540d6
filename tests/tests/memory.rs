//! Memory under load through the real binary: 128 concurrent 64 MiB
//! uploads, then as many concurrent downloads of them, against an objd
//! whose buffer budget is 64 MiB. Every object must come back exactly as
//! sent, and the server's peak resident memory (the kernel's VmHWM, read
//! from /proc) must stay within the budget plus 64 MiB above idle, where
//! the same load without a budget peaks past 500 MiB. (The budget bounds
//! the buffers themselves; the 64 MiB are for the data buffers kept for
//! reuse, the 128 connections' read buffers, their tasks and the threads:
//! docs/operations.md#memory. Measured: 90-100 MiB above idle.) The
//! budget's gauges must show that requests waited and that every credit
//! came back.

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;
use std::time::Duration;
use strata_s3client::fetch::Fetcher;
use strata_tests::client::s3_client_patient;
use strata_tests::{Server, metric_sample, pattern, proc_status_bytes};

const OBJECTS: usize = 128;
const SIZE: usize = 64 << 20;
const HEADER: usize = 16;
const BUDGET: u64 = 64 << 20;

/// Object `i`: a header naming it, then the shared body. Each object
/// differs from the others, and none is held whole in the test's memory.
fn header(i: usize) -> Bytes {
    let mut h = [0u8; HEADER];
    h[..8].copy_from_slice(&(i as u64).to_le_bytes());
    h[8..].copy_from_slice(&(0x5354_5241_5441_u64 ^ i as u64).to_le_bytes());
    Bytes::copy_from_slice(&h)
}

fn body(i: usize, shared: &Bytes) -> ByteStream {
    let (h, rest) = (header(i), shared.clone());
    ByteStream::from(SdkBody::retryable(move || {
        let frames = vec![
            Ok::<_, std::convert::Infallible>(Frame::data(h.clone())),
            Ok(Frame::data(rest.clone())),
        ];
        SdkBody::from_body_1_x(StreamBody::new(futures::stream::iter(frames)))
    }))
}

async fn metrics(f: &Fetcher, endpoint: &str) -> String {
    let (_, body) = f
        .send(
            http::Method::GET,
            &format!("{endpoint}/_strata/metrics"),
            &[],
            Bytes::new(),
        )
        .await
        .unwrap();
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_large_uploads_and_downloads_stay_within_the_buffer_budget() {
    let s = Server::start(
        6,
        // Requests wait for memory as long as it takes (no 503 SlowDown),
        // so every one of them must pass through the budget.
        &[
            "--parity",
            "EC:2",
            "--buffer-budget",
            "64MiB",
            "--buffer-wait",
            "3600",
            "--metrics-public",
        ],
    );
    let pid = s.pid();
    // Queued uploads do not move for many seconds: the client must wait.
    let c = s3_client_patient(&s.endpoint);
    c.create_bucket().bucket("heavy").send().await.unwrap();
    let idle = proc_status_bytes(pid, "VmRSS");
    let shared = Bytes::from(pattern(SIZE - HEADER, 42));

    let puts = (0..OBJECTS).map(|i| {
        let (c, b) = (c.clone(), body(i, &shared));
        async move {
            c.put_object()
                .bucket("heavy")
                .key(format!("obj-{i:03}"))
                .content_length(SIZE as i64)
                .body(b)
                .send()
                .await
                .map_err(|e| format!("PUT {i}: {e:?}"))
        }
    });
    let results = futures::future::join_all(puts).await;
    for r in results {
        r.unwrap();
    }
    let after_puts = proc_status_bytes(pid, "VmHWM");

    let gets = (0..OBJECTS).map(|i| {
        let (c, shared) = (c.clone(), shared.clone());
        async move {
            let o = c
                .get_object()
                .bucket("heavy")
                .key(format!("obj-{i:03}"))
                .send()
                .await
                .map_err(|e| format!("GET {i}: {e:?}"))?;
            let expected_header = header(i);
            let mut at = 0usize;
            let mut body = o.body;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| format!("GET {i} body: {e}"))?;
                if at + chunk.len() > SIZE {
                    return Err(format!("object {i} is longer than {SIZE}"));
                }
                // The expected bytes at [at, at + len): header, then body.
                let mut off = 0;
                while off < chunk.len() {
                    let p = at + off;
                    let want: &[u8] = if p < HEADER {
                        &expected_header[p..HEADER.min(p + chunk.len() - off)]
                    } else {
                        &shared[p - HEADER..p - HEADER + chunk.len() - off]
                    };
                    if chunk[off..off + want.len()] != *want {
                        return Err(format!("object {i} differs near byte {p}"));
                    }
                    off += want.len();
                }
                at += chunk.len();
            }
            if at != SIZE {
                return Err(format!("object {i} has {at} bytes, not {SIZE}"));
            }
            Ok(())
        }
    });
    let results = futures::future::join_all(gets).await;
    for r in results {
        r.unwrap();
    }
    let peak = proc_status_bytes(pid, "VmHWM");

    let bound = idle + BUDGET + (64 << 20);
    eprintln!(
        "objd RSS: idle {} MiB, peak after uploads {} MiB, peak after downloads {} MiB (bound {} MiB)",
        idle >> 20,
        after_puts >> 20,
        peak >> 20,
        bound >> 20
    );
    let f = Fetcher::new(&Default::default(), Duration::from_secs(10), 1 << 22).unwrap();
    let text = metrics(&f, &s.endpoint).await;
    let gauge = |series: &str| metric_sample(&text, series).unwrap_or_else(|| panic!("no {series}"));
    assert_eq!(gauge("strata_buffer_budget_bytes"), BUDGET as f64);
    assert_eq!(gauge("strata_buffer_in_use_bytes"), 0.0, "every credit came back");
    assert_eq!(gauge("strata_buffer_waiting_requests"), 0.0);
    assert!(
        gauge("strata_buffer_waits_total") > 0.0,
        "128 large requests must have waited for a 64 MiB budget"
    );
    assert!(
        peak <= bound,
        "peak RSS {} MiB passed the budget bound {} MiB",
        peak >> 20,
        bound >> 20
    );
}
