use super::*;
use crate::drive::DriveError;
use crate::meta::{DataLoc, ErasureInfo, Extras, ObjectRecord, VersionKind};

const N: usize = 6;
const K: usize = 4;
const WQ: usize = 4;

fn erasure() -> ErasureInfo {
    ErasureInfo {
        data: 4,
        parity: 2,
        shard_index: 0,
        hash_algo: 1,
        block_size: 1 << 20,
    }
}

fn version(id: u8, t: i64) -> Version {
    Version {
        id: VersionId([id; 16]),
        mod_time_ns: t,
        stamp: t,
        kind: VersionKind::Object,
        size: t as u64,
        etag: format!("e{t}"),
        headers: vec![],
        user_meta: vec![],
        erasure: erasure(),
        parts: vec![],
        data: DataLoc::Inline(vec![id]),
        extras: Extras::default(),
    }
}

fn tomb(id: u8, t: i64) -> Version {
    Version::tombstone(VersionId([id; 16]), t, erasure())
}

/// Records where drive `i` holds the entries `held(i)`; `None` drives fail.
fn records(held: impl Fn(usize) -> Option<Vec<Version>>) -> Records {
    (0..N)
        .map(|i| match held(i) {
            None => Err(DriveError::Offline),
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => {
                let mut r = ObjectRecord::default();
                for e in v {
                    r.add(e);
                }
                Ok(Some(r))
            }
        })
        .collect()
}

fn view(r: &Records) -> KeyView {
    KeyView::new(r, K, WQ)
}

#[test]
fn an_overwrite_short_of_quorum_leaves_the_old_version_readable() {
    let old = version(0, 10);
    let new = version(0, 20);
    for reached in 0..N {
        let r = records(|i| {
            Some(if i < reached {
                vec![old.clone(), new.clone()]
            } else {
                vec![old.clone()]
            })
        });
        let v = view(&r);
        let got = v.resolve(None).unwrap().version;
        if reached >= K {
            assert_eq!(got.stamp, 20, "reached {reached}");
        } else {
            assert_eq!(got.stamp, 10, "reached {reached}");
        }
        // The old entry goes only once the new one is on write quorum; a
        // new one that can never reach quorum goes at once.
        let drops = v.drops();
        let dropped_old = drops.iter().flatten().any(|d| d.stamp == 10);
        let dropped_new = drops.iter().flatten().any(|d| d.stamp == 20);
        assert_eq!(dropped_old, reached >= WQ, "reached {reached}");
        assert_eq!(dropped_new, reached > 0 && reached < K, "reached {reached}");
    }
}

#[test]
fn a_delete_hides_the_version_once_its_tombstone_has_quorum_and_is_dropped_last() {
    let old = version(0, 10);
    let t = tomb(0, 20);
    let r = records(|i| {
        Some(if i < 3 {
            vec![old.clone(), t.clone()]
        } else {
            vec![old.clone()]
        })
    });
    assert_eq!(view(&r).resolve(None).unwrap().version.stamp, 10);
    let r = records(|i| {
        Some(if i < 4 {
            vec![old.clone(), t.clone()]
        } else {
            vec![old.clone()]
        })
    });
    let v = view(&r);
    assert!(matches!(v.resolve(None), Err(ObjectError::NoSuchKey)));
    assert!(matches!(
        v.resolve(Some(VersionId([0; 16]))),
        Err(ObjectError::NoSuchVersion)
    ));
    // First the old entry goes, everywhere; the tombstone stays while the
    // old entry could still reach quorum.
    let drops = v.drops();
    assert!(drops.iter().all(|d| d.iter().all(|e| e.stamp == 10)));
    assert_eq!(drops.iter().flatten().count(), N);
    // Old entry dropped on 3 drives (a crash in between): still deleted, and
    // now the tombstone may go too.
    let r = records(|i| {
        Some(match i {
            0..3 => vec![t.clone()],
            3 => vec![old.clone(), t.clone()],
            _ => vec![old.clone()],
        })
    });
    let v = view(&r);
    assert!(matches!(v.resolve(None), Err(ObjectError::NoSuchKey)));
    assert!(v.drops().iter().flatten().any(|e| e.is_tombstone()));
}

#[test]
fn tombstones_are_kept_while_offline_drives_could_restore_quorum_of_the_old_entry() {
    let old = version(0, 10);
    let t = tomb(0, 20);
    // Old dropped on drives 0-1; drives 4-5 offline may still hold it.
    let r = records(|i| match i {
        0 | 1 => Some(vec![t.clone()]),
        2 | 3 => Some(vec![old.clone(), t.clone()]),
        _ => None,
    });
    let v = view(&r);
    assert!(matches!(v.resolve(None), Err(ObjectError::NoSuchKey)));
    assert!(!v.drops().iter().flatten().any(|e| e.is_tombstone()));
}

#[test]
fn the_latest_version_is_the_newest_existing_one() {
    let a = version(1, 10);
    let b = version(2, 20);
    let c = version(3, 30);
    // c reached 2 drives only; b's tombstone reached quorum.
    let r = records(|i| {
        let mut v = vec![a.clone(), b.clone(), tomb(2, 40)];
        if i < 2 {
            v.push(c.clone());
        }
        Some(v)
    });
    let v = view(&r);
    assert_eq!(v.resolve(None).unwrap().version.id, a.id);
    assert_eq!(v.live().len(), 1);
    assert!(matches!(v.resolve(Some(c.id)), Err(ObjectError::NoSuchVersion)));
}

#[test]
fn a_metadata_change_replaces_the_entry_it_was_made_from() {
    let v1 = version(1, 10);
    let mut tagged = v1.clone();
    tagged.stamp = 15;
    tagged.extras.tags = vec![("a".into(), "b".into())];
    let r = records(|i| {
        Some(if i < 4 {
            vec![v1.clone(), tagged.clone()]
        } else {
            vec![v1.clone()]
        })
    });
    let v = view(&r);
    let got = v.resolve(None).unwrap();
    assert_eq!(got.version.extras.tags.len(), 1);
    assert_eq!(got.copies.iter().flatten().count(), 4);
    let r = records(|i| {
        Some(if i < 3 {
            vec![v1.clone(), tagged.clone()]
        } else {
            vec![v1.clone()]
        })
    });
    assert!(view(&r).resolve(None).unwrap().version.extras.tags.is_empty());
}

#[test]
fn unanswered_drives_make_an_answer_unknown_rather_than_wrong() {
    let old = version(0, 10);
    // Two drives answer with nothing, four fail: the key may exist there.
    let r = records(|i| if i < 2 { Some(vec![]) } else { None });
    assert!(matches!(view(&r).resolve(None), Err(ObjectError::ReadQuorum)));
    // Three fail: a version needs four drives, one of which answered.
    let r = records(|i| if i < 3 { Some(vec![]) } else { None });
    assert!(matches!(view(&r).resolve(None), Err(ObjectError::NoSuchKey)));
    // Three hold the old entry and two fail: it may be on quorum.
    let r = records(|i| match i {
        0..3 => Some(vec![old.clone()]),
        3 => Some(vec![]),
        _ => None,
    });
    let v = view(&r);
    assert!(matches!(v.resolve(None), Err(ObjectError::ReadQuorum)));
    assert!(v.drops().iter().all(Vec::is_empty));
}

#[test]
fn a_key_every_drive_holds_alike_resolves_the_same_from_one_copy() {
    let cases: Vec<Vec<Version>> = vec![
        vec![version(1, 10)],
        vec![version(1, 10), version(2, 20)],
        // A metadata change with the entry it replaced still there.
        vec![
            version(1, 10),
            Version {
                stamp: 15,
                ..version(1, 10)
            },
        ],
        // A deleted version whose tombstone is everywhere, and one whose
        // older entry is gone already.
        vec![version(1, 10), tomb(1, 30), version(2, 20)],
        vec![tomb(3, 40), version(2, 20)],
        vec![tomb(3, 40)],
        vec![Version::without_data(
            VersionKind::DeleteMarker,
            VersionId([5; 16]),
            50,
            erasure(),
        )],
        vec![
            Version::without_data(VersionKind::DeleteMarker, VersionId([5; 16]), 50, erasure()),
            version(1, 10),
        ],
    ];
    for held in cases {
        let all = records(|_| Some(held.clone()));
        let full = view(&all);
        let mut one = ObjectRecord::default();
        for e in held.clone() {
            one.add(e);
        }
        if let Ok(sole) = KeyView::sole_version(one.clone()) {
            let w = full.resolve(Some(sole.id)).unwrap().version;
            assert_eq!((w.id, w.stamp), (sole.id, sole.stamp));
            assert_eq!(full.live().len(), 1);
            assert!(!full.has_garbage());
        } else {
            assert!(held.len() > 1 || held[0].is_tombstone(), "{held:?}");
        }
        let fast = KeyView::unanimous(one);
        let ids = |v: Vec<&Entry>| {
            v.into_iter()
                .map(|e| (e.version.id, e.version.stamp))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(fast.live()), ids(full.live()), "{held:?}");
        assert_eq!(ids(fast.winners()), ids(full.winners()), "{held:?}");
        assert_eq!(fast.has_garbage(), full.has_garbage(), "{held:?}");
        let answer = |v: &KeyView| v.resolve(None).map(|r| r.version.id).map_err(|e| e.to_string());
        assert_eq!(answer(&fast), answer(&full), "{held:?}");
        for id in [1u8, 2, 3, 5] {
            let named = |v: &KeyView| {
                v.resolve(Some(VersionId([id; 16])))
                    .map(|r| r.version.stamp)
                    .map_err(|e| e.to_string())
            };
            assert_eq!(named(&fast), named(&full), "{held:?} {id}");
        }
    }
}
