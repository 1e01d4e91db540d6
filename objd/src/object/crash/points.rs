//! Every crash point of every operation kind: an operation is first run
//! whole, counting the events (commits, shard file writes, removals) it
//! makes on each drive; then it is run again, from the same starting
//! state, once per crash point, with each drive frozen after its share of
//! events. Where the product of the drives' event counts is small every
//! combination is run; otherwise every stage of the sequence with every
//! subset of drives one event further, which covers any order in which
//! the set issues them up to one event apart.

use super::*;
use crate::meta::Versioning;
use crate::object::{CompletePart, CopySource, PutOptions, WriteCondition};
use std::future::Future;
use std::pin::Pin;

type Fut<'a> = Pin<Box<dyn Future<Output = ObjectResult<()>> + Send + 'a>>;
type Step = for<'a> fn(&'a ObjectLayer) -> Fut<'a>;

/// Most crash points a scenario runs as the full product.
const FULL_PRODUCT: u64 = 700;

struct Scenario {
    name: &'static str,
    versioning: Option<Versioning>,
    setup: Step,
    op: Step,
}

const INLINE: usize = 1000;
/// Two blocks of the test layout, in shard files.
const FILES: usize = 100_000;

async fn put(l: &ObjectLayer, key: &str, size: usize, seed: u64) -> ObjectResult<()> {
    let opts = PutOptions {
        size: Some(size as u64),
        ..Default::default()
    };
    l.put_object(BUCKET, key, body(pattern(size, seed)), opts).await?;
    Ok(())
}

/// The id of the `nth` newest version of `key`.
async fn version_id(l: &ObjectLayer, key: &str, nth: usize) -> ObjectResult<String> {
    let page = l
        .list_objects(
            BUCKET,
            ListOptions {
                prefix: key.to_owned(),
                max_keys: 100,
                versions: true,
                ..Default::default()
            },
        )
        .await?;
    Ok(page.objects[nth].version.id.to_api())
}

async fn multipart(l: &ObjectLayer, key: &str, parts: &[(usize, u64)], complete: bool) -> ObjectResult<()> {
    let id = l.create_multipart(BUCKET, key, PutOptions::default()).await?;
    let mut done = Vec::new();
    for (i, (size, seed)) in parts.iter().enumerate() {
        let n = i as u32 + 1;
        let (etag, _) = l
            .upload_part(
                BUCKET,
                key,
                &id,
                n,
                body(pattern(*size, *seed)),
                Some(*size as u64),
                None,
                None,
                &crate::object::NoKeys,
            )
            .await?;
        done.push(CompletePart {
            number: n,
            etag,
            checksum: None,
        });
    }
    if complete {
        l.complete_multipart(BUCKET, key, &id, done, &WriteCondition::default(), None)
            .await?;
    }
    Ok(())
}

async fn upload_id(l: &ObjectLayer, key: &str) -> ObjectResult<String> {
    let u = l.list_uploads(BUCKET, key, None, 10).await?;
    Ok(u[0].upload_id.clone())
}

fn nothing(_: &ObjectLayer) -> Fut<'_> {
    Box::pin(async { Ok(()) })
}
fn put_inline(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(put(l, "k", INLINE, 1))
}
fn put_files(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(put(l, "k", FILES, 2))
}
fn put_inline_2(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(put(l, "k", INLINE + 7, 3))
}
fn put_files_2(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(put(l, "k", FILES + 7, 4))
}
fn put_two_versions(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(async move {
        put(l, "k", FILES, 5).await?;
        put(l, "k", INLINE, 6).await
    })
}
fn delete(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(async move { l.delete_object(BUCKET, "k", None, false).await.map(|_| ()) })
}
fn delete_older_version(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(async move {
        let id = version_id(l, "k", 1).await?;
        l.delete_object(BUCKET, "k", Some(&id), false).await.map(|_| ())
    })
}
fn put_then_marker(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(async move {
        put(l, "k", FILES, 7).await?;
        l.delete_object(BUCKET, "k", None, false).await.map(|_| ())
    })
}
fn delete_latest_marker(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(async move {
        let id = version_id(l, "k", 0).await?;
        l.delete_object(BUCKET, "k", Some(&id), false).await.map(|_| ())
    })
}
fn start_upload(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(multipart(l, "k", &[(FILES, 10)], false))
}
fn put_files_and_start_upload(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(async move {
        put(l, "k", FILES, 12).await?;
        multipart(l, "k", &[(FILES, 13)], false).await
    })
}
fn complete_started(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(async move {
        let id = upload_id(l, "k").await?;
        let (parts, _) = l.list_parts(BUCKET, "k", &id, 0, 100).await?;
        let done = parts
            .into_iter()
            .map(|p| CompletePart {
                number: p.number,
                etag: p.etag,
                checksum: None,
            })
            .collect();
        l.complete_multipart(BUCKET, "k", &id, done, &WriteCondition::default(), None)
            .await
            .map(|_| ())
    })
}
fn abort_started(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(async move {
        let id = upload_id(l, "k").await?;
        l.abort_multipart(BUCKET, "k", &id).await
    })
}
fn create_upload(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(async move {
        l.create_multipart(BUCKET, "k", PutOptions::default())
            .await
            .map(|_| ())
    })
}
fn create_upload_only(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(async move {
        l.create_multipart(BUCKET, "k", PutOptions::default())
            .await
            .map(|_| ())
    })
}
fn upload_one_part(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(async move {
        let id = upload_id(l, "k").await?;
        l.upload_part(
            BUCKET,
            "k",
            &id,
            1,
            body(pattern(FILES, 15)),
            Some(FILES as u64),
            None,
            None,
            &crate::object::NoKeys,
        )
        .await
        .map(|_| ())
    })
}
fn copy_to_other(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(async move {
        let src = CopySource {
            bucket: BUCKET.into(),
            key: "k".into(),
            ..Default::default()
        };
        l.copy_object(&src, BUCKET, "k2", PutOptions::default(), true, true)
            .await
            .map(|_| ())
    })
}
fn copy_onto_itself(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(async move {
        let src = CopySource {
            bucket: BUCKET.into(),
            key: "k".into(),
            ..Default::default()
        };
        let opts = PutOptions {
            user_meta: vec![("new".into(), "meta".into())],
            ..Default::default()
        };
        l.copy_object(&src, BUCKET, "k", opts, false, true)
            .await
            .map(|_| ())
    })
}
fn tag(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(async move {
        l.put_object_tags(BUCKET, "k", None, vec![("team".into(), "storage".into())])
            .await
            .map(|_| ())
    })
}
fn set_quota(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(async move { l.set_quota(BUCKET, Some(1 << 30)).await })
}
fn put_files_missing_on_drive_0(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(async move {
        put(l, "k", FILES, 16).await?;
        let d = l.sets()[0].drives()[0].clone().unwrap();
        // As a drive that missed the write: no record, nothing counted.
        tokio::task::spawn_blocking(move || {
            d.commit(vec![
                crate::drive::RecordOp::Delete {
                    table: Table::Objects,
                    key: crate::drive::object_key(BUCKET, "k"),
                },
                crate::drive::RecordOp::Add {
                    table: Table::Usage,
                    key: BUCKET.as_bytes().to_vec(),
                    delta: [-(FILES as i64), -1],
                },
            ])
        })
        .await
        .unwrap()
        .unwrap();
        Ok(())
    })
}
fn heal(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(async move {
        let set = Arc::clone(&l.sets()[0]);
        set.heal_object(BUCKET, "k", true).await.map(|_| ())
    })
}

fn clone_to_other(l: &ObjectLayer) -> Fut<'_> {
    Box::pin(async move {
        l.clone_prefix(
            (BUCKET, "k"),
            (BUCKET, "c"),
            Arc::new(crate::object::NoKeys),
            |_| {},
        )
        .await
        .map(|_| ())
    })
}

const ENABLED: Option<Versioning> = Some(Versioning::Enabled);
const SUSPENDED: Option<Versioning> = Some(Versioning::Suspended);

fn scenarios() -> Vec<Scenario> {
    let s = |name, versioning, setup, op| Scenario {
        name,
        versioning,
        setup,
        op,
    };
    vec![
        s("put new inline", None, nothing, put_inline),
        s("put new in files", None, nothing, put_files),
        s("overwrite inline with inline", None, put_inline, put_inline_2),
        s("overwrite files with files", None, put_files, put_files_2),
        s("overwrite inline with files", None, put_inline, put_files_2),
        s("overwrite files with inline", None, put_files, put_inline_2),
        s("delete inline", None, put_inline, delete),
        s("delete files", None, put_files, delete),
        s("versioned put over a version", ENABLED, put_files, put_files_2),
        s("delete marker", ENABLED, put_files, delete),
        s(
            "delete a version by id",
            ENABLED,
            put_two_versions,
            delete_older_version,
        ),
        s(
            "delete the latest delete marker",
            ENABLED,
            put_then_marker,
            delete_latest_marker,
        ),
        s("suspended put replacing null", SUSPENDED, put_files, put_inline_2),
        s("suspended delete marker", SUSPENDED, put_files, delete),
        s("create multipart upload", None, nothing, create_upload_only),
        s("upload part", None, create_upload, upload_one_part),
        s(
            "complete multipart over files",
            None,
            put_files_and_start_upload,
            complete_started,
        ),
        s("complete multipart new key", None, start_upload, complete_started),
        s("abort multipart", None, start_upload, abort_started),
        s("copy to another key", None, put_files, copy_to_other),
        s("copy onto itself", None, put_files, copy_onto_itself),
        s("tag a version", ENABLED, put_files, tag),
        s("set quota", None, put_files, set_quota),
        s("heal a missing copy", None, put_files_missing_on_drive_0, heal),
        s("clone files to another key", None, put_files, clone_to_other),
        s("clone inline to another key", None, put_inline, clone_to_other),
    ]
}

/// The crash points for drives that make `events[d]` events each: budgets
/// per drive.
pub(super) fn cuts(events: &[u64]) -> Vec<Vec<u64>> {
    let n = events.len();
    let product = events
        .iter()
        .try_fold(1u64, |acc, e| acc.checked_mul(e + 1))
        .unwrap_or(u64::MAX);
    let mut out: Vec<Vec<u64>> = Vec::new();
    if product <= FULL_PRODUCT {
        let mut cut = vec![0u64; n];
        loop {
            out.push(cut.clone());
            let mut d = 0;
            while d < n {
                if cut[d] < events[d] {
                    cut[d] += 1;
                    break;
                }
                cut[d] = 0;
                d += 1;
            }
            if d == n {
                break;
            }
        }
    } else {
        let max = events.iter().copied().max().unwrap_or(0);
        for stage in 0..=max {
            for mask in 0..(1u32 << n) {
                let cut: Vec<u64> = (0..n)
                    .map(|d| (stage + u64::from(mask >> d & 1)).min(events[d]))
                    .collect();
                out.push(cut);
            }
        }
        out.sort();
        out.dedup();
    }
    out
}

/// Runs the setup on a fresh rig; returns the layer with the plan armed
/// from here on.
async fn prepared(s: &Scenario, rig: &Rig) -> (Arc<ObjectLayer>, Vec<Weak<dyn Drive>>, Arc<Crash>) {
    let plan = crash_plan(rig.n());
    let faults: Arc<dyn Faults> = plan.clone();
    let (layer, weak) = rig.open(Some(faults)).await;
    layer.make_bucket(BUCKET).await.unwrap();
    if let Some(v) = s.versioning {
        layer.set_versioning(BUCKET, v).await.unwrap();
    }
    (s.setup)(&layer).await.unwrap();
    layer.compact_queued().await;
    (layer, weak, plan)
}

/// Runs one scenario at every crash point; returns how many were run.
async fn run(s: &Scenario, n: usize, parity: usize) -> usize {
    let rig = Rig::new(n, parity);
    let (layer, weak, plan) = prepared(s, &rig).await;
    let before = observe(&layer).await.unwrap();
    let start = plan.seen();
    (s.op)(&layer).await.unwrap();
    layer.compact_queued().await;
    let events: Vec<u64> = plan.seen().iter().zip(&start).map(|(a, b)| a - b).collect();
    let after = observe(&layer).await.unwrap();
    close(layer, weak).await;
    let cuts = cuts(&events);
    for cut in &cuts {
        let rig = Rig::new(n, parity);
        let (layer, weak, plan) = prepared(s, &rig).await;
        plan.limit_from_now(cut);
        let acked = (s.op)(&layer).await.is_ok();
        layer.compact_queued().await;
        close(layer, weak).await;
        let ctx = format!(
            "{} on {n} drives, crash after {cut:?} of {events:?} events",
            s.name
        );
        let (layer, weak) = rig.open(None).await;
        check_restarted(&layer, acked, (&before, &after), &ctx).await;
        close(layer, weak).await;
    }
    cuts.len()
}

async fn run_all(n: usize, parity: usize, pick: impl Fn(usize) -> bool) {
    let mut total = 0;
    for (i, s) in scenarios().iter().enumerate().filter(|(i, _)| pick(*i)) {
        let t0 = std::time::Instant::now();
        let points = run(s, n, parity).await;
        eprintln!("{}: {points} crash points in {:?}", s.name, t0.elapsed());
        total += points;
        let _ = i;
    }
    eprintln!("{total} crash points covered on {n} drives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_crash_point_on_four_drives_even_scenarios() {
    run_all(4, 2, |i| i % 2 == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_crash_point_on_four_drives_odd_scenarios() {
    run_all(4, 2, |i| i % 2 == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_crash_point_on_five_drives() {
    run_all(5, 2, |i| matches!(i, 3 | 5 | 7 | 10 | 17)).await;
}

#[test]
fn cuts_cover_small_products_whole_and_stages_otherwise() {
    assert_eq!(cuts(&[1, 1]).len(), 4);
    assert_eq!(cuts(&[2, 0, 1]).len(), 6);
    let big = cuts(&[10, 10, 10, 10]);
    assert!(big.contains(&vec![0, 0, 0, 0]) && big.contains(&vec![10, 10, 10, 10]));
    assert!(big.contains(&vec![4, 5, 4, 5]));
    assert!(big.len() <= 11 * 16);
}
