//! objd's index measured in process, on 4 local drives as 2+2: listing
//! cost against bucket size, and start-up time with a large bucket.

use bytes::Bytes;
use objd::drive::{Drive, local::LocalDrive};
use objd::object::{LayerConfig, ListOptions, ObjectLayer, PutOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::median_time;

async fn open(root: &Path) -> Arc<ObjectLayer> {
    let drives: Vec<Option<Arc<dyn Drive>>> = (0..4)
        .map(|i| {
            Some(Arc::new(LocalDrive::open(&root.join(format!("d{i}"))).expect("drive")) as Arc<dyn Drive>)
        })
        .collect();
    ObjectLayer::open("index-bench", vec![drives], 2, LayerConfig::default())
        .await
        .expect("layer")
}

/// Puts `n` one-byte objects named by `key` into `bucket`, 64 at a time.
async fn fill(layer: &Arc<ObjectLayer>, bucket: &str, n: usize, key: fn(usize) -> String) {
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let (layer, next, bucket) = (Arc::clone(layer), Arc::clone(&next), bucket.to_owned());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= n {
                        break;
                    }
                    let body: objd::object::ByteStream =
                        Box::pin(futures::stream::once(async { Ok(Bytes::from_static(b"x")) }));
                    layer
                        .put_object(&bucket, &key(i), body, PutOptions::default())
                        .await
                        .expect("put");
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("writer");
    }
}

pub async fn listing(dir: PathBuf, sizes: Vec<usize>, json: bool) {
    for &n in &sizes {
        let root = dir.join(format!("listing-{n}"));
        let layer = open(&root).await;
        layer.make_bucket("listing").await.expect("bucket");
        // Keys in 100 "directories" so delimiter listings have prefixes to fold.
        let key: fn(usize) -> String = |i| format!("dir{:03}/obj{:08}", i % 100, i);
        fill(&layer, "listing", n, key).await;
        let mid = key(n / 2);
        let first = median_time(9, || async {
            let p = layer
                .list_objects(
                    "listing",
                    ListOptions {
                        max_keys: 1000,
                        ..Default::default()
                    },
                )
                .await
                .expect("list");
            assert_eq!(p.objects.len(), 1000.min(n));
        })
        .await;
        let middle = median_time(9, || async {
            let o = ListOptions {
                max_keys: 1000,
                start_after: mid.clone(),
                ..Default::default()
            };
            layer.list_objects("listing", o).await.expect("list");
        })
        .await;
        let folded = median_time(9, || async {
            let o = ListOptions {
                max_keys: 1000,
                delimiter: Some("/".into()),
                ..Default::default()
            };
            let p = layer.list_objects("listing", o).await.expect("list");
            assert_eq!(p.prefixes.len(), 100.min(n));
        })
        .await;
        // The alternative: keys as files in one directory. readdir order is
        // not key order, so a page needs the whole directory read and sorted.
        let flat = root.join("flat");
        std::fs::create_dir_all(&flat).expect("mkdir");
        for i in 0..n {
            std::fs::write(flat.join(format!("obj{i:08}")), b"x").expect("write");
        }
        let fs_page = median_time(9, || async {
            let mut names: Vec<_> = std::fs::read_dir(&flat)
                .expect("readdir")
                .map(|e| e.expect("entry").file_name())
                .collect();
            names.sort();
            names.truncate(1000);
            std::hint::black_box(names);
        })
        .await;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        if json {
            println!(
                "{{\"name\":\"listing\",\"keys\":{n},\"first_page_ms\":{:.3},\"middle_page_ms\":{:.3},\"delimiter_page_ms\":{:.3},\"fs_sorted_readdir_ms\":{:.3}}}",
                ms(first),
                ms(middle),
                ms(folded),
                ms(fs_page)
            );
        } else {
            println!(
                "listing {n:>8} keys: first page {:>7.3} ms, middle page {:>7.3} ms, delimiter page (100 prefixes) {:>7.3} ms; sorted readdir of a flat directory {:>8.3} ms",
                ms(first),
                ms(middle),
                ms(folded),
                ms(fs_page)
            );
        }
        drop(layer);
        let _ = std::fs::remove_dir_all(&root);
    }
}

pub async fn startup(dir: PathBuf, objects: usize, json: bool) {
    let root = dir.join(format!("startup-{objects}"));
    let layer = open(&root).await;
    layer.make_bucket("startup").await.expect("bucket");
    let t0 = Instant::now();
    fill(&layer, "startup", objects, |i| {
        format!("dir{:03}/obj{:08}", i % 1000, i)
    })
    .await;
    let filled = t0.elapsed();
    drop(layer);
    // Opening: the drives' usage counters give the bucket's figures.
    let mut opened = Vec::new();
    let mut layer = None;
    for _ in 0..3 {
        drop(layer.take());
        let t = Instant::now();
        let l = open(&root).await;
        opened.push(t.elapsed());
        assert_eq!(l.usage("startup").expect("usage").versions, objects as u64);
        layer = Some(l);
    }
    opened.sort();
    let layer = layer.expect("opened");
    // What opening cost before the counters: every version listed.
    let counted = median_time(3, || async {
        let mut opts = ListOptions {
            max_keys: 1000,
            versions: true,
            ..Default::default()
        };
        let mut n = 0usize;
        loop {
            let p = layer.list_objects("startup", opts.clone()).await.expect("list");
            n += p.objects.len();
            if !p.truncated {
                break;
            }
            opts.start_after = p.next_marker.unwrap_or_default();
            opts.version_marker = p.next_version_marker;
        }
        assert_eq!(n, objects);
    })
    .await;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let open_ms = ms(opened[1]);
    if json {
        println!(
            "{{\"name\":\"startup\",\"objects\":{objects},\"open_ms\":{open_ms:.1},\"count_by_listing_ms\":{:.1},\"fill_s\":{:.1}}}",
            ms(counted),
            filled.as_secs_f64()
        );
    } else {
        println!(
            "startup {objects} objects: open {open_ms:.1} ms; counting by listing every version {:.1} ms ({:.0}x); filled in {:.1} s",
            ms(counted),
            ms(counted) / open_ms.max(0.001),
            filled.as_secs_f64()
        );
    }
    drop(layer);
    let _ = std::fs::remove_dir_all(&root);
}
