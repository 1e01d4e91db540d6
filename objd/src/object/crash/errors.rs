//! Drives that fail or stall in the middle of operations (rather than a
//! crash): a request succeeds when write quorum of drives took it, or fails
//! cleanly and leaves the previous state; nothing is ever torn, and what
//! was acknowledged reads back once the drives are well again.

use super::*;
use crate::drive::DriveError;
use crate::drive::fault::{Action, Event};
use crate::object::PutOptions;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Every change on the chosen drives fails with an I/O error (or stalls)
/// while `on` is set.
#[derive(Debug)]
struct Failing {
    drives: Vec<usize>,
    on: AtomicBool,
    stall: Option<Duration>,
    failed: AtomicU64,
}

impl Faults for Failing {
    fn on(&self, drive: usize, _: u64, _: Event) -> Action {
        if !self.on.load(Ordering::SeqCst) || !self.drives.contains(&drive) {
            return Action::Proceed;
        }
        self.failed.fetch_add(1, Ordering::SeqCst);
        match self.stall {
            Some(d) => Action::Stall(d),
            None => Action::Fail(DriveError::Io(std::io::Error::other("injected"))),
        }
    }
}

async fn put(l: &ObjectLayer, key: &str, size: usize, seed: u64) -> ObjectResult<()> {
    let opts = PutOptions {
        size: Some(size as u64),
        ..Default::default()
    };
    l.put_object(BUCKET, key, body(pattern(size, seed)), opts)
        .await
        .map(|_| ())
}

async fn read(l: &ObjectLayer, key: &str) -> ObjectResult<Vec<u8>> {
    crate::object::tests::read_all(l, BUCKET, key).await
}

/// Runs overwrites, deletes and multipart uploads of keys with `bad`
/// drives failing; checks each answer against what reads back.
async fn run(bad: Vec<usize>, stall: Option<Duration>) -> u64 {
    let rig = Rig::new(6, 2);
    let faults = Arc::new(Failing {
        drives: bad.clone(),
        on: AtomicBool::new(false),
        stall,
        failed: AtomicU64::new(0),
    });
    let plan: Arc<dyn Faults> = faults.clone();
    let config = crate::object::LayerConfig {
        drive_timeout: Some(Duration::from_millis(500)),
        ..super::config()
    };
    let (layer, weak) = rig.open_with(Some(plan), config).await;
    layer.make_bucket(BUCKET).await.unwrap();
    for (i, size) in [1000usize, 100_000].into_iter().enumerate() {
        put(&layer, &format!("k{i}"), size, i as u64).await.unwrap();
    }
    layer.compact_queued().await;
    faults.on.store(true, Ordering::SeqCst);
    // With write quorum left (4 of 6 drives), every change succeeds.
    let quorum = bad.len() <= 2;
    let mut expect: Vec<Option<Vec<u8>>> = vec![Some(pattern(1000, 0)), Some(pattern(100_000, 1))];
    for (i, size) in [20_000usize, 1000].into_iter().enumerate() {
        let r = put(&layer, &format!("k{i}"), size, 10 + i as u64).await;
        assert_eq!(r.is_ok(), quorum, "overwrite with drives {bad:?} failing: {r:?}");
        if r.is_ok() {
            expect[i] = Some(pattern(size, 10 + i as u64));
        } else {
            assert!(matches!(r, Err(ObjectError::WriteQuorum { .. })), "{r:?}");
        }
    }
    let r = layer.delete_object(BUCKET, "k0", None, false).await;
    assert_eq!(r.is_ok(), quorum, "{r:?}");
    if r.is_ok() {
        expect[0] = None;
    }
    let id = layer.create_multipart(BUCKET, "k1", PutOptions::default()).await;
    assert_eq!(id.is_ok(), quorum, "{id:?}");
    // Reads work while the drives fail: none of the failing ones is needed.
    for (i, e) in expect.iter().enumerate() {
        match (read(&layer, &format!("k{i}")).await, e) {
            (Ok(got), Some(want)) => assert_eq!(&got, want, "k{i} with drives {bad:?} failing"),
            (Err(ObjectError::NoSuchKey), None) => {}
            (got, _) => panic!("k{i} with drives {bad:?} failing: {:?}", got.map(|g| g.len())),
        }
    }
    faults.on.store(false, Ordering::SeqCst);
    layer.compact_queued().await;
    close(layer, weak).await;
    // The drives are well again: the same state, and a heal completes it.
    let (layer, weak) = rig.open(None).await;
    check(&layer, &expect, &bad).await;
    heal_and_sweep(&layer).await;
    check(&layer, &expect, &bad).await;
    check_tidy(&layer).await.unwrap();
    close(layer, weak).await;
    faults.failed.load(Ordering::SeqCst)
}

async fn check(layer: &ObjectLayer, expect: &[Option<Vec<u8>>], bad: &[usize]) {
    for (i, e) in expect.iter().enumerate() {
        match (read(layer, &format!("k{i}")).await, e) {
            (Ok(got), Some(want)) => assert_eq!(&got, want, "k{i} after drives {bad:?} failed"),
            (Err(ObjectError::NoSuchKey), None) => {}
            (got, _) => panic!("k{i} after drives {bad:?} failed: {:?}", got.map(|g| g.len())),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_drives_fail_requests_cleanly_or_leave_quorum() {
    for bad in [vec![0], vec![2, 5], vec![0, 1, 2], vec![1, 2, 3, 4]] {
        assert!(run(bad, None).await > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_drive_delays_requests_but_loses_nothing() {
    assert!(run(vec![3], Some(Duration::from_millis(200))).await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_drive_does_not_hang_writes_the_others_can_take() {
    // Each change on the hung drives takes 3 s; the drive timeout is 0.5 s.
    let t0 = std::time::Instant::now();
    assert!(run(vec![1, 4], Some(Duration::from_secs(3))).await > 0);
    eprintln!("hung drives: done in {:?}", t0.elapsed());
}
