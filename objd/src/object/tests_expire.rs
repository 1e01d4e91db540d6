//! Lifecycle's changes to objects: conditional on the version they were
//! decided for, and a scanner pass over real drives with the clock moved
//! on instead of waited for.

use super::tests::{body, fixture, small_blocks};
use super::*;
use crate::lifecycle::{Clock, Filter, Lifecycle, Rule, When, scan};

const DAY: i64 = 86_400 * 1_000_000_000;

async fn put(layer: &ObjectLayer, key: &str, data: &[u8]) -> Version {
    layer
        .put_object("bkt", key, body(data.to_vec()), PutOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn an_expiry_decided_for_one_version_never_takes_another() {
    let f = fixture(4, 2, small_blocks()).await;
    f.layer.make_bucket("bkt").await.unwrap();
    let old = put(&f.layer, "k", b"one").await;
    put(&f.layer, "k", b"two").await;
    // Overwritten since the decision: the new object stays.
    let r = f.layer.expire("bkt", "k", &old, true).await;
    assert!(matches!(r, Err(ObjectError::PreconditionFailed)), "{r:?}");
    let now = f
        .layer
        .head_object("bkt", "k", None)
        .await
        .unwrap()
        .version()
        .clone();
    assert_eq!(now.size, 3);
    f.layer.expire("bkt", "k", &now, true).await.unwrap();
    assert!(matches!(
        f.layer.head_object("bkt", "k", None).await,
        Err(ObjectError::NoSuchKey)
    ));
    // Gone already: nothing to do, and no error that would hide a bug.
    let r = f.layer.expire("bkt", "k", &now, true).await;
    assert!(matches!(r, Err(ObjectError::PreconditionFailed)), "{r:?}");
}

#[tokio::test]
async fn a_pass_applies_the_rules_as_of_its_clock() {
    let f = fixture(4, 2, small_blocks()).await;
    f.layer.make_bucket("bkt").await.unwrap();
    f.layer
        .set_versioning("bkt", crate::meta::Versioning::Enabled)
        .await
        .unwrap();
    for i in 0..3 {
        put(&f.layer, "logs/a", format!("v{i}").as_bytes()).await;
    }
    put(&f.layer, "data/b", b"kept").await;
    let rule = Rule {
        id: "logs".into(),
        enabled: true,
        filter: Filter {
            prefix: "logs/".into(),
            ..Default::default()
        },
        expiration: Some(When::Days(2)),
        expired_object_delete_marker: false,
        noncurrent_days: Some(1),
        newer_noncurrent: None,
        abort_incomplete_days: None,
        transitions: vec![],
        noncurrent_transitions: vec![],
    };
    let rules = Lifecycle { rules: vec![rule] };
    f.layer
        .set_bucket_setting("bkt", crate::lifecycle::BUCKET_SETTING, Some(rules.encode()))
        .await
        .unwrap();
    let clock = Clock::default();
    let now = now_ns();
    // Today nothing is due.
    assert_eq!(scan::pass(&f.layer, &clock, now).await, scan::Report::default());
    // Past two days (to the midnight after them): the two noncurrent
    // versions go and the current one hides behind a delete marker.
    let r = scan::pass(&f.layer, &clock, now + 3 * DAY).await;
    assert_eq!((r.expired, r.removed), (1, 2));
    let versions = f
        .layer
        .list_objects(
            "bkt",
            ListOptions {
                versions: true,
                max_keys: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let of_logs: Vec<bool> = versions
        .objects
        .iter()
        .filter(|o| o.key == "logs/a")
        .map(|o| o.version.is_delete_marker())
        .collect();
    assert_eq!(of_logs, vec![true, false], "a marker over the last version");
    assert_eq!(
        f.layer
            .head_object("bkt", "data/b", None)
            .await
            .unwrap()
            .version()
            .size,
        4
    );
    // Later, the version behind the marker has been noncurrent a day.
    let r = scan::pass(&f.layer, &clock, now + 5 * DAY).await;
    assert_eq!((r.expired, r.removed), (0, 1));
}

#[tokio::test]
async fn one_node_holds_the_turn_until_it_stops_renewing_it() {
    let f = fixture(4, 2, small_blocks()).await;
    let period = std::time::Duration::from_secs(60);
    let t = now_ns();
    let secs = |n: i64| n * 1_000_000_000;
    assert!(scan::claim(&f.layer, "a", t, period).await);
    assert!(
        !scan::claim(&f.layer, "b", t + secs(30), period).await,
        "a holds it"
    );
    assert!(scan::claim(&f.layer, "a", t + secs(59), period).await, "a renews");
    assert!(
        !scan::claim(&f.layer, "b", t + secs(100), period).await,
        "renewed until 119 s"
    );
    assert!(
        scan::claim(&f.layer, "b", t + secs(120), period).await,
        "lapsed: b takes over"
    );
    assert!(!scan::claim(&f.layer, "a", t + secs(121), period).await);
}
