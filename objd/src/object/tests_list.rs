//! Listing when drives disagree: a few drives decide a batch only while
//! they agree on every key; anything else is resolved from every drive, so
//! the answer is the same whichever drives a listing starts from.

use super::tests::{body, fixture, small_blocks};
use super::*;
use crate::drive::{RecordOp, Table, object_key};

async fn latest(layer: &ObjectLayer, prefix: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut opts = ListOptions {
        prefix: prefix.into(),
        max_keys: max,
        ..Default::default()
    };
    loop {
        let page = layer.list_objects("bkt", opts.clone()).await.unwrap();
        out.extend(
            page.objects
                .iter()
                .map(|o| format!("{}={}", o.key, o.version.size)),
        );
        if !page.truncated {
            return out;
        }
        opts.start_after = page.next_marker.unwrap();
    }
}

#[tokio::test]
async fn listings_answer_from_every_drive_where_a_few_disagree() {
    // 4+2: read and write quorum 4, listings read 4 drives when they agree.
    let f = fixture(6, 2, small_blocks()).await;
    f.layer.make_bucket("bkt").await.unwrap();
    let keys: Vec<String> = (0..60).map(|i| format!("k{i:03}")).collect();
    for (i, k) in keys.iter().enumerate() {
        let len = if i % 7 == 0 { 100_000 } else { i };
        f.layer
            .put_object("bkt", k, body(vec![7; len]), PutOptions::default())
            .await
            .unwrap();
    }
    let want = latest(&f.layer, "", 1000).await;
    assert_eq!(want.len(), 60);
    let drives = f.layer.sets()[0].drives().to_vec();
    let record = |pos: usize, key: &str| {
        drives[pos]
            .as_ref()
            .unwrap()
            .get(Table::Objects, &object_key("bkt", key))
            .unwrap()
    };
    let set = |pos: usize, key: &str, value: Option<Vec<u8>>| {
        let key = object_key("bkt", key);
        let op = match value {
            Some(value) => RecordOp::Put {
                table: Table::Objects,
                key,
                value,
            },
            None => RecordOp::Delete {
                table: Table::Objects,
                key,
            },
        };
        drives[pos].as_ref().unwrap().commit(vec![op]).unwrap();
    };
    // Two drives missed a write of each of these keys (each still on
    // quorum), each pair elsewhere, so every choice of four drives meets
    // some of them.
    for (key, pair) in [
        ("k005", [0, 1]),
        ("k021", [2, 3]),
        ("k040", [4, 5]),
        ("k041", [1, 4]),
    ] {
        for pos in pair {
            set(pos, key, None);
        }
    }
    // A newer overwrite that reached two drives only (it never committed):
    // the old version stays the answer.
    let mut mixed = crate::meta::ObjectRecord::decode(&record(2, "k030").unwrap()).unwrap();
    let mut over = mixed.versions[0].clone();
    over.stamp += 1_000_000_000;
    over.mod_time_ns = over.stamp;
    over.size = 5;
    over.etag = "newer".into();
    mixed.add(over);
    set(2, "k030", Some(mixed.encode()));
    set(3, "k030", Some(mixed.encode()));
    // A write that reached three drives only: no quorum, not listed.
    for pos in [0, 2, 4] {
        set(pos, "k017-partial", record(1, "k017"));
    }
    for max in [1000, 7, 1] {
        assert_eq!(latest(&f.layer, "", max).await, want, "pages of {max}");
        assert_eq!(
            latest(&f.layer, "k04", max).await,
            want[40..50].to_vec(),
            "pages of {max}"
        );
    }
    // The same keys and versions in a versioned listing.
    let page = f
        .layer
        .list_objects(
            "bkt",
            ListOptions {
                max_keys: 1000,
                versions: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let listed: Vec<String> = page
        .objects
        .iter()
        .map(|o| format!("{}={}", o.key, o.version.size))
        .collect();
    assert_eq!(listed, want);
}

#[tokio::test]
async fn listings_go_on_with_drives_offline_or_damaged() {
    let f = fixture(6, 2, small_blocks()).await;
    f.layer.make_bucket("bkt").await.unwrap();
    for i in 0..30 {
        let k = format!("k{i:02}");
        f.layer
            .put_object("bkt", &k, body(vec![1; i]), PutOptions::default())
            .await
            .unwrap();
    }
    let want = latest(&f.layer, "", 1000).await;
    let drives = f.layer.sets()[0].drives().to_vec();
    // A record that does not decode on one drive: that drive's copy of the
    // key is damaged, the other five decide.
    let op = RecordOp::Put {
        table: Table::Objects,
        key: object_key("bkt", "k07"),
        value: b"STOM\x03\x00damaged".to_vec(),
    };
    drives[3].as_ref().unwrap().commit(vec![op]).unwrap();
    assert_eq!(latest(&f.layer, "", 1000).await, want);
    assert_eq!(latest(&f.layer, "", 4).await, want);
    // Two drives gone: four left, still read quorum.
    let mut two_gone = drives.clone();
    two_gone[1] = None;
    two_gone[4] = None;
    let layer = ObjectLayer::open("test-deployment", vec![two_gone], 2, small_blocks())
        .await
        .unwrap();
    // Drive 3's damaged copy leaves k07 three good copies: below quorum.
    let without_k07: Vec<String> = want.iter().filter(|k| !k.starts_with("k07=")).cloned().collect();
    assert_eq!(latest(&layer, "", 1000).await, without_k07);
    assert_eq!(latest(&layer, "", 3).await, without_k07);
}
