//! Fault tests against the real binary: lost and corrupt shards, healing,
//! `kill -9` in the middle of concurrent writes, and memory under a huge
//! streaming upload.

use aws_sdk_s3::primitives::ByteStream;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strata_tests::{
    Server, TmpfsMounts, files_below, get_object as get, pattern, put_object as put, s3_client,
};

/// Flips bytes in every shard file below `drive` (past the file header).
fn corrupt_shards(drive: &std::path::Path, seed: u64) -> usize {
    let mut n = 0;
    for f in files_below(&drive.join("data")) {
        let mut b = std::fs::read(&f).unwrap();
        if b.len() <= 24 {
            continue;
        }
        let noise = pattern(8, seed + n as u64);
        for (i, x) in noise.iter().enumerate() {
            let at = 16 + (usize::from(*x) * 7919 + i * 104_729) % (b.len() - 16);
            b[at] ^= 0x5a;
        }
        std::fs::write(&f, b).unwrap();
        n += 1;
    }
    n
}

fn wipe(drive: &std::path::Path) {
    std::fs::remove_dir_all(drive).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_survive_lost_and_corrupt_shards_and_heal_restores_redundancy() {
    // 6 drives as 4+2: any two may be lost.
    let mut s = Server::start(6, &["--parity", "EC:2", "--scanner-interval", "0"]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("heal").send().await.unwrap();
    let mut objects: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, size) in [0usize, 10, 4096, 200_000, 1 << 20, 3 * (1 << 20) + 5]
        .into_iter()
        .enumerate()
    {
        objects.push((format!("obj-{size}"), pattern(size, i as u64)));
    }
    for (k, v) in &objects {
        put(&c, "heal", k, v.clone()).await.unwrap();
    }
    // A multipart object too.
    let up = c
        .create_multipart_upload()
        .bucket("heal")
        .key("multi")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_owned();
    let parts = [pattern(5 << 20, 90), pattern(100_000, 91)];
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let r = c
            .upload_part()
            .bucket("heal")
            .key("multi")
            .upload_id(&id)
            .part_number(i as i32 + 1)
            .body(ByteStream::from(p.clone()))
            .send()
            .await
            .unwrap();
        done.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(i as i32 + 1)
                .e_tag(r.e_tag().unwrap())
                .build(),
        );
    }
    c.complete_multipart_upload()
        .bucket("heal")
        .key("multi")
        .upload_id(&id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap();
    objects.push(("multi".into(), parts.concat()));

    // Lose drive 1 entirely (its directory is gone while objd is down) and
    // corrupt every shard file on drive 3.
    s.kill();
    wipe(&s.drives[0]);
    assert!(corrupt_shards(&s.drives[2], 1) >= 3);
    s.restart();
    let c = s3_client(&s.endpoint);
    for (k, v) in &objects {
        assert_eq!(&get(&c, "heal", k).await.unwrap(), v, "{k} after losing 2 shards");
    }
    let out = s.admin(&["heal"]);
    assert!(out.contains("\"summary\""), "{out}");
    assert!(out.contains("\"failed\":0"), "{out}");

    // Full redundancy is back: now lose two other drives.
    s.kill();
    wipe(&s.drives[4]);
    corrupt_shards(&s.drives[5], 2);
    wipe(&s.drives[5]);
    s.restart();
    let c = s3_client(&s.endpoint);
    for (k, v) in &objects {
        assert_eq!(
            &get(&c, "heal", k).await.unwrap(),
            v,
            "{k} after healing and losing 2 other drives"
        );
    }
    // And with three drives gone, reads fail rather than return wrong bytes.
    s.kill();
    wipe(&s.drives[1]);
    wipe(&s.drives[4]);
    wipe(&s.drives[5]);
    s.restart();
    let c = s3_client(&s.endpoint);
    assert!(get(&c, "heal", "obj-1048576").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_concurrent_puts_loses_no_acknowledged_write() {
    let mut s = Server::start(6, &["--parity", "EC:2", "--scanner-interval", "0"]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("crash").send().await.unwrap();
    // Everything attempted, per key; and what was acknowledged.
    let attempted: Arc<Mutex<HashMap<String, Vec<Vec<u8>>>>> = Arc::default();
    let acked: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let c = c.clone();
        let attempted = Arc::clone(&attempted);
        let acked = Arc::clone(&acked);
        tasks.push(tokio::spawn(async move {
            for i in 0u64.. {
                // Unique keys, plus a key every writer overwrites.
                let key = if i % 4 == 3 {
                    "hot".to_owned()
                } else {
                    format!("t{t}/o{i}")
                };
                let size = if i % 3 == 0 {
                    1_500_000
                } else {
                    20_000 + (i as usize % 7) * 1000
                };
                let data = pattern(size, t * 1_000_000 + i);
                attempted
                    .lock()
                    .unwrap()
                    .entry(key.clone())
                    .or_default()
                    .push(data.clone());
                match put(&c, "crash", &key, data.clone()).await {
                    Ok(()) => {
                        acked.lock().unwrap().insert(key, data);
                    }
                    Err(_) => break,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    s.kill();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let attempted = attempted.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "too few writes acknowledged before the kill: {}",
        acked.len()
    );
    s.restart();
    let c = s3_client(&s.endpoint);
    for (k, v) in &acked {
        let got = get(&c, "crash", k)
            .await
            .unwrap_or_else(|e| panic!("acknowledged {k} lost: {e}"));
        if k == "hot" {
            assert!(attempted[k].contains(&got), "hot holds bytes nobody wrote");
        } else {
            assert_eq!(&got, v, "{k} changed");
        }
    }
    // Every listed key reads back whole, as one of the versions written.
    let mut token = None;
    let mut listed = 0;
    loop {
        let r = c
            .list_objects_v2()
            .bucket("crash")
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        for o in r.contents() {
            let k = o.key().unwrap();
            let got = get(&c, "crash", k)
                .await
                .unwrap_or_else(|e| panic!("listed {k} unreadable: {e}"));
            assert!(attempted[k].contains(&got), "{k} is torn");
            assert_eq!(o.size(), Some(got.len() as i64));
            listed += 1;
        }
        if !r.is_truncated().unwrap() {
            break;
        }
        token = r.next_continuation_token().map(str::to_owned);
    }
    assert!(listed >= acked.len());
}

/// One request on a hot key: when it started and ended (`None`: cut off
/// by the kill, or failed), and the value it leaves (`None`: deleted).
#[derive(Clone)]
struct HotOp {
    start: std::time::Instant,
    acked_at: Option<std::time::Instant>,
    value: Option<Vec<u8>>,
}

async fn hot_op(c: &aws_sdk_s3::Client, key: &str, kind: u64, seed: u64) -> (Option<Vec<u8>>, bool) {
    match kind % 4 {
        0 => (
            None,
            c.delete_object().bucket("hot").key(key).send().await.is_ok(),
        ),
        1 => {
            // A multipart completion (one part: it may be small).
            let data = pattern(150_000, seed);
            let ok = async {
                let up = c
                    .create_multipart_upload()
                    .bucket("hot")
                    .key(key)
                    .send()
                    .await
                    .ok()?;
                let id = up.upload_id()?.to_owned();
                let p = c
                    .upload_part()
                    .bucket("hot")
                    .key(key)
                    .upload_id(&id)
                    .part_number(1)
                    .body(ByteStream::from(data.clone()))
                    .send()
                    .await
                    .ok()?;
                let done = aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(1)
                    .e_tag(p.e_tag()?)
                    .build();
                c.complete_multipart_upload()
                    .bucket("hot")
                    .key(key)
                    .upload_id(&id)
                    .multipart_upload(
                        aws_sdk_s3::types::CompletedMultipartUpload::builder()
                            .parts(done)
                            .build(),
                    )
                    .send()
                    .await
                    .ok()
            }
            .await
            .is_some();
            (Some(data), ok)
        }
        // Inline-sized and shard-file-sized overwrites.
        2 => {
            let data = pattern(8 * 1024, seed);
            (Some(data.clone()), put(c, "hot", key, data).await.is_ok())
        }
        _ => {
            let data = pattern(200_000, seed);
            (Some(data.clone()), put(c, "hot", key, data).await.is_ok())
        }
    }
}

/// Rounds of the hot-key kill test (`STRATA_KILL_ROUNDS`, 20 by default).
fn kill_rounds() -> u64 {
    std::env::var("STRATA_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_hot_overwrites_deletes_and_completes_keeps_every_acknowledged_state() {
    const KEYS: usize = 8;
    let mut s = Server::start(6, &["--parity", "EC:2", "--scanner-interval", "0"]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("hot").send().await.unwrap();
    let rounds = kill_rounds();
    let mut checked = 0;
    for round in 0..rounds {
        let c = s3_client(&s.endpoint);
        let history: Arc<Mutex<Vec<Vec<HotOp>>>> = Arc::new(Mutex::new(vec![Vec::new(); KEYS]));
        let mut tasks = Vec::new();
        for t in 0..16u64 {
            let (c, history) = (c.clone(), Arc::clone(&history));
            tasks.push(tokio::spawn(async move {
                for i in 0u64.. {
                    let seed = round * 1_000_000 + t * 10_000 + i;
                    let key = (seed.wrapping_mul(0x9e37_79b9) >> 7) as usize % KEYS;
                    let start = std::time::Instant::now();
                    let slot = {
                        let mut h = history.lock().unwrap();
                        h[key].push(HotOp {
                            start,
                            acked_at: None,
                            value: None,
                        });
                        h[key].len() - 1
                    };
                    let (value, ok) = hot_op(&c, &format!("k{key}"), seed / 3 + t, seed).await;
                    let mut h = history.lock().unwrap();
                    h[key][slot].value = value;
                    if ok {
                        h[key][slot].acked_at = Some(std::time::Instant::now());
                    } else {
                        break;
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(300 + (round * 137) % 500)).await;
        s.kill();
        for t in tasks {
            t.await.unwrap();
        }
        s.restart();
        let c = s3_client(&s.endpoint);
        let history = history.lock().unwrap().clone();
        for (k, ops) in history.iter().enumerate() {
            // The key may hold what any request left that no acknowledged
            // request started after the end of; before this round it held
            // what the last round left, which the first request replaces.
            let allowed: Vec<&HotOp> = ops
                .iter()
                .filter(|o| {
                    let end = o.acked_at;
                    !ops.iter()
                        .any(|p| p.acked_at.is_some() && end.is_some_and(|e| p.start > e))
                })
                .collect();
            let must_change = ops.iter().any(|o| o.acked_at.is_some());
            let got = match c.get_object().bucket("hot").key(format!("k{k}")).send().await {
                Ok(o) => Some(o.body.collect().await.unwrap().into_bytes().to_vec()),
                Err(e) => {
                    let status = e.raw_response().map(|r| r.status().as_u16());
                    assert_eq!(
                        status,
                        Some(404),
                        "round {round}: k{k} unreadable after the crash: {e:?}"
                    );
                    None
                }
            };
            if must_change {
                assert!(
                    allowed.iter().any(|o| o.value == got),
                    "round {round}: k{k} holds {} bytes, which no request that may be last left",
                    got.as_ref().map_or(0, Vec::len)
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, rounds as usize * KEYS);
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gib_streaming_upload_keeps_memory_bounded() {
    const SIZE: u64 = 2 << 30;
    let s = Server::start(6, &["--parity", "EC:2", "--scanner-interval", "0"]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("huge").send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    // A 2 GiB file of repeating non-zero bytes, written in 1 MiB chunks.
    {
        use std::io::Write;
        let chunk = pattern(1 << 20, 5);
        let mut f = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
        for _ in 0..(SIZE >> 20) {
            f.write_all(&chunk).unwrap();
        }
    }
    let before = peak_rss_kib(s.pid());
    let body = ByteStream::from_path(&src).await.unwrap();
    c.put_object()
        .bucket("huge")
        .key("2gib")
        .body(body)
        .send()
        .await
        .unwrap();
    let after_put = peak_rss_kib(s.pid());
    std::fs::remove_file(&src).unwrap();
    // Stream it back and compare chunk by chunk.
    let o = c.get_object().bucket("huge").key("2gib").send().await.unwrap();
    assert_eq!(o.content_length(), Some(SIZE as i64));
    let chunk = pattern(1 << 20, 5);
    let mut body = o.body;
    let mut offset: u64 = 0;
    while let Some(b) = body.try_next().await.unwrap() {
        for (i, x) in b.iter().enumerate() {
            let at = ((offset + i as u64) % (1 << 20)) as usize;
            assert_eq!(*x, chunk[at], "byte {} differs", offset + i as u64);
        }
        offset += b.len() as u64;
    }
    assert_eq!(offset, SIZE);
    let after_get = peak_rss_kib(s.pid());
    println!(
        "objd peak RSS: {before} KiB at start, {after_put} KiB after a 2 GiB PUT, {after_get} KiB after the GET"
    );
    assert!(
        after_get < 256 * 1024,
        "objd peak RSS {after_get} KiB is not bounded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_507_and_stores_nothing() {
    let root = tempfile::tempdir().unwrap();
    let mounts = TmpfsMounts::new(root.path(), 4, "24m");
    let s = Server::start_in(root, 4, &["--scanner-interval", "0"]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("full").send().await.unwrap();
    let old = pattern(1 << 20, 1);
    put(&c, "full", "old", old.clone()).await.unwrap();
    // 2+2: a 60 MiB object needs 30 MiB on each 24 MiB drive.
    let e = c
        .put_object()
        .bucket("full")
        .key("too-big")
        .body(ByteStream::from(pattern(60 << 20, 2)))
        .send()
        .await
        .unwrap_err();
    let raw = e.raw_response().expect("an HTTP answer");
    assert_eq!(raw.status().as_u16(), 507, "{e:?}");
    assert!(
        c.head_object()
            .bucket("full")
            .key("too-big")
            .send()
            .await
            .is_err()
    );
    assert_eq!(get(&c, "full", "old").await.unwrap(), old);
    for d in &s.drives {
        assert_eq!(
            files_below(&d.join("data")).len(),
            1,
            "no partial shard files left on {}",
            d.display()
        );
    }
    // Space came back: the next object that fits is stored.
    put(&c, "full", "after", pattern(4 << 20, 3)).await.unwrap();
    assert_eq!(get(&c, "full", "after").await.unwrap(), pattern(4 << 20, 3));
    let mut s = s;
    s.kill();
    drop(mounts);
    drop(s);
}
