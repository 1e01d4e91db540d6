//! Model-based crash test: random sequences of operations on a few keys
//! (inline and multi-block sizes, versioning switched on and suspended on
//! the way, copies, tags, multipart uploads, version deletes, heal and the
//! scanner) are applied to the object layer and to a simple reference
//! model of what S3 promises. Now and then a crash strikes during an
//! operation (each drive frozen after a random number of its events); the
//! layer is reopened and must show what the model says: the operation's
//! result if it was acknowledged, else the state before it or after it.
//! A failing case prints its seed, and `STRATA_MODEL_SEED=<seed>` runs it
//! alone.

use super::*;
use crate::meta::Versioning;
use crate::object::{CompletePart, CopySource, NoKeys, PutOptions, WriteCondition};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const KEYS: [&str; 3] = ["a", "b/c", "d"];
const SIZES: [usize; 5] = [0, 100, 1000, 20_000, 100_000];

#[derive(Debug, Clone, PartialEq)]
struct ModelVersion {
    /// The version id as the API gives it (`null`), when known.
    id: Option<String>,
    marker: bool,
    data: Vec<u8>,
    tags: Vec<(String, String)>,
}

/// What S3 promises the bucket holds.
#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    versioning: Versioning,
    /// Versions per key, newest first.
    keys: BTreeMap<String, Vec<ModelVersion>>,
    /// Uploads in progress per key.
    uploads: BTreeMap<String, (Option<String>, Option<Part>)>,
}

/// Part 1 of an upload: its bytes and ETag.
type Part = (Vec<u8>, String);

impl Model {
    fn latest(&self, key: &str) -> Option<&ModelVersion> {
        self.keys.get(key).and_then(|v| v.first())
    }

    /// Adds a version (or marker) as a write or delete without version id
    /// does in the bucket's versioning state.
    fn add(&mut self, key: &str, mut v: ModelVersion) {
        let list = self.keys.entry(key.to_owned()).or_default();
        if self.versioning != Versioning::Enabled {
            list.retain(|x| x.id.as_deref() != Some("null"));
            v.id = Some("null".into());
        }
        list.insert(0, v);
    }

    fn delete(&mut self, key: &str) {
        match self.versioning {
            Versioning::Unversioned => {
                if let Some(list) = self.keys.get_mut(key) {
                    list.retain(|x| x.id.as_deref() != Some("null"));
                }
            }
            _ => {
                let marker = ModelVersion {
                    id: None,
                    marker: true,
                    data: vec![],
                    tags: vec![],
                };
                self.add(key, marker);
            }
        }
        self.keys.retain(|_, l| !l.is_empty());
    }

    fn seen(&self) -> Seen {
        let mut seen = Seen::default();
        for (k, list) in &self.keys {
            let hash = |d: &[u8]| xxhash_rust::xxh3::xxh3_64(d);
            let versions: Vec<SeenVersion> = list
                .iter()
                .map(|v| SeenVersion {
                    marker: v.marker,
                    hash: if v.marker { 0 } else { hash(&v.data) },
                    size: v.data.len() as u64,
                    tags: v.tags.clone(),
                })
                .collect();
            let latest = list.first().filter(|v| !v.marker).map(|v| hash(&v.data));
            seen.keys.insert(k.clone(), (latest, versions));
        }
        for (k, (_, part)) in &self.uploads {
            seen.uploads.insert(
                k.clone(),
                part.iter().map(|(_, etag)| (1u32, etag.clone())).collect(),
            );
        }
        let stored = seen.keys.values().flat_map(|(_, v)| v).filter(|v| !v.marker);
        seen.usage = (stored.clone().map(|v| v.size).sum(), stored.count() as u64);
        seen
    }

    /// The model after a request that returned `id`: the id of the version
    /// or delete marker it added, or of the upload it created.
    fn with_id(mut self, op: &Op, id: Option<String>) -> Self {
        let target = match op {
            Op::Put { key, .. } | Op::Delete { key } | Op::Complete { key } => KEYS[*key],
            Op::Copy { to, .. } => KEYS[*to],
            Op::CreateUpload { key } => {
                if let Some(u) = self.uploads.get_mut(KEYS[*key]) {
                    u.0 = id;
                }
                return self;
            }
            _ => return self,
        };
        if let (Some(id), Some(v)) = (id, self.keys.get_mut(target).and_then(|l| l.first_mut())) {
            v.id = Some(id);
        }
        self
    }

    /// Takes version and upload ids from the layer, after a crash left the
    /// model unsure of them (an operation that failed but took effect).
    async fn learn_ids(&mut self, layer: &ObjectLayer) {
        for (key, list) in self.keys.iter_mut() {
            let page = layer
                .list_objects(
                    BUCKET,
                    ListOptions {
                        prefix: key.clone(),
                        max_keys: 1000,
                        versions: true,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            let ids = page
                .objects
                .iter()
                .filter(|o| &o.key == key)
                .map(|o| o.version.id.to_api());
            for (v, id) in list.iter_mut().zip(ids) {
                v.id = Some(id);
            }
        }
        let ups = layer.list_uploads(BUCKET, "", None, 1000).await.unwrap();
        for (key, (id, _)) in self.uploads.iter_mut() {
            *id = ups.iter().find(|u| &u.key == key).map(|u| u.upload_id.clone());
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put { key: usize, size: usize, seed: u64 },
    Delete { key: usize },
    DeleteVersion { key: usize, nth: usize },
    Copy { from: usize, to: usize },
    Tag { key: usize, value: u8 },
    Versioning(Versioning),
    CreateUpload { key: usize },
    UploadPart { key: usize, size: usize, seed: u64 },
    Complete { key: usize },
    Abort { key: usize },
    Heal { key: usize },
    Scan,
}

fn random_op(rng: &mut StdRng) -> Op {
    let key = rng.random_range(0..KEYS.len());
    match rng.random_range(0..100) {
        0..30 => Op::Put {
            key,
            size: SIZES[rng.random_range(0..SIZES.len())],
            seed: rng.random(),
        },
        30..42 => Op::Delete { key },
        42..50 => Op::DeleteVersion {
            key,
            nth: rng.random_range(0..3),
        },
        50..57 => Op::Copy {
            from: key,
            to: rng.random_range(0..KEYS.len()),
        },
        57..63 => Op::Tag {
            key,
            value: rng.random(),
        },
        63..67 => Op::Versioning(if rng.random_bool(0.6) {
            Versioning::Enabled
        } else {
            Versioning::Suspended
        }),
        67..73 => Op::CreateUpload { key },
        73..80 => Op::UploadPart {
            key,
            size: SIZES[rng.random_range(1..SIZES.len())],
            seed: rng.random(),
        },
        80..86 => Op::Complete { key },
        86..89 => Op::Abort { key },
        89..96 => Op::Heal { key },
        _ => Op::Scan,
    }
}

/// Sends `op` to the layer (unless the model says S3 refuses it: `None`)
/// and returns the model after it; `Err` when the layer refused or failed
/// it.
async fn apply(layer: &ObjectLayer, model: &Model, op: &Op) -> Option<Result<Model, ObjectError>> {
    let after = after(model, op)?;
    let key = |k: &usize| KEYS[*k];
    // What the request returns that the model needs: a new version's or
    // upload's id.
    let sent: ObjectResult<Option<String>> = match op {
        Op::Put { key: k, size, seed } => {
            let opts = PutOptions {
                size: Some(*size as u64),
                ..Default::default()
            };
            let data = body(pattern(*size, *seed));
            layer
                .put_object(BUCKET, key(k), data, opts)
                .await
                .map(|v| Some(v.id.to_api()))
        }
        Op::Delete { key: k } => layer
            .delete_object(BUCKET, key(k), None, false)
            .await
            .map(|(id, _)| id),
        Op::DeleteVersion { key: k, nth } => {
            let id = model.keys.get(key(k))?.get(*nth)?.id.clone()?;
            layer
                .delete_object(BUCKET, key(k), Some(&id), false)
                .await
                .map(|_| None)
        }
        Op::Copy { from, to } => {
            let src = CopySource {
                bucket: BUCKET.into(),
                key: key(from).into(),
                ..Default::default()
            };
            layer
                .copy_object(&src, BUCKET, key(to), PutOptions::default(), true, true)
                .await
                .map(|(_, v)| Some(v.id.to_api()))
        }
        Op::Tag { key: k, value } => {
            let tags = vec![("t".to_owned(), value.to_string())];
            layer
                .put_object_tags(BUCKET, key(k), None, tags)
                .await
                .map(|_| None)
        }
        Op::Versioning(v) => layer.set_versioning(BUCKET, *v).await.map(|()| None),
        Op::CreateUpload { key: k } => layer
            .create_multipart(BUCKET, key(k), PutOptions::default())
            .await
            .map(Some),
        Op::UploadPart { key: k, size, seed } => {
            let id = model.uploads.get(key(k))?.0.clone()?;
            let data = body(pattern(*size, *seed));
            layer
                .upload_part(
                    BUCKET,
                    key(k),
                    &id,
                    1,
                    data,
                    Some(*size as u64),
                    None,
                    None,
                    &NoKeys,
                )
                .await
                .map(|_| None)
        }
        Op::Complete { key: k } => {
            let (id, part) = model.uploads.get(key(k))?.clone();
            let parts = vec![CompletePart {
                number: 1,
                etag: part?.1,
                checksum: None,
            }];
            layer
                .complete_multipart(BUCKET, key(k), &id?, parts, &WriteCondition::default(), None)
                .await
                .map(|v| Some(v.id.to_api()))
        }
        Op::Abort { key: k } => {
            let id = model.uploads.get(key(k))?.0.clone()?;
            layer.abort_multipart(BUCKET, key(k), &id).await.map(|()| None)
        }
        Op::Heal { key: k } => {
            let set = Arc::clone(layer.set_for(BUCKET, key(k)));
            set.heal_object(BUCKET, key(k), true).await.map(|_| None)
        }
        Op::Scan => {
            let r = layer.heal_all(None, 0.0, |_| {}).await.map(|_| None);
            layer.sweep_orphans(std::time::SystemTime::now()).await;
            r
        }
    };
    Some(sent.map(|id| after.with_id(op, id)))
}

/// What the cases did, to report.
#[derive(Debug, Default)]
struct Tally {
    ops: usize,
    crashes: usize,
    /// Crashed operations that were acknowledged anyway.
    acked: usize,
    /// Crashed, refused operations that took effect.
    took_effect: usize,
}

/// One case: a random sequence with crashes; panics with the seed on a
/// broken promise.
async fn run_case(seed: u64, ops: usize, tally: &mut Tally) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (n, parity) = if rng.random_bool(0.5) { (4, 2) } else { (6, 2) };
    let rig = Rig::new(n, parity);
    let mut plan = crash_plan(n);
    let faults: Arc<dyn Faults> = plan.clone();
    let (mut layer, mut weak) = rig.open(Some(faults)).await;
    layer.make_bucket(BUCKET).await.unwrap();
    let mut model = Model::default();
    for step in 0..ops {
        let op = random_op(&mut rng);
        let crash = rng.random_bool(0.15);
        let ctx = format!("seed {seed}, {n} drives, step {step}: {op:?}");
        if crash {
            let reach = if rng.random_bool(0.7) { 3 } else { 12 };
            let budgets: Vec<u64> = (0..n).map(|_| rng.random_range(0..reach)).collect();
            plan.limit_from_now(&budgets);
        }
        let Some(result) = apply(&layer, &model, &op).await else {
            plan.limit_from_now(&vec![u64::MAX; n]);
            continue;
        };
        tally.ops += 1;
        tally.crashes += usize::from(crash);
        if !crash {
            // Without a crash every operation the model allows succeeds.
            model = result.unwrap_or_else(|e| panic!("{ctx}: failed without a fault: {e}"));
            layer.compact_queued().await;
            continue;
        }
        layer.compact_queued().await;
        close(layer, weak).await;
        (layer, weak) = rig.open(None).await;
        let seen = observe(&layer)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: after restart: {e}"));
        let before = model.clone();
        model = match result {
            Ok(after) => {
                assert_eq!(
                    seen,
                    after.seen(),
                    "{ctx}: acknowledged, but not what was written"
                );
                tally.acked += 1;
                assert_eq!(
                    layer.bucket(BUCKET).unwrap().versioning,
                    after.versioning,
                    "{ctx}: acknowledged versioning lost"
                );
                after
            }
            Err(_) => {
                // The model after a refused operation: what it would be had
                // it gone through (ids unknown until learnt).
                let after = after(&before, &op).unwrap_or_else(|| before.clone());
                if seen == before.seen() {
                    before
                } else if seen == after.seen() {
                    tally.took_effect += 1;
                    after
                } else {
                    panic!(
                        "{ctx}: neither the state before nor after:\n{seen:?}\nbefore {:?}\nafter {:?}",
                        before.seen(),
                        after.seen()
                    );
                }
            }
        };
        // The bucket's versioning is a bucket record like any other.
        model.versioning = layer.bucket(BUCKET).unwrap().versioning;
        model.learn_ids(&layer).await;
        if rng.random_bool(0.5) {
            check_heal(&layer, &seen, &ctx).await;
        }
        close(layer, weak).await;
        plan = crash_plan(n);
        let faults: Arc<dyn Faults> = plan.clone();
        (layer, weak) = rig.open(Some(faults)).await;
    }
    let seen = observe(&layer)
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: at the end: {e}"));
    assert_eq!(seen, model.seen(), "seed {seed}: at the end");
    close(layer, weak).await;
}

/// The model after `op` went through (new ids unknown: [`Model::with_id`]
/// adds the one a request returned, and after a crash they are learnt);
/// `None` when S3 refuses `op` in this state, so it is not sent.
fn after(model: &Model, op: &Op) -> Option<Model> {
    let mut m = model.clone();
    let latest = |k: &usize| model.latest(KEYS[*k]).filter(|v| !v.marker).cloned();
    match op {
        Op::Put { key, size, seed } => {
            let mv = ModelVersion {
                id: None,
                marker: false,
                data: pattern(*size, *seed),
                tags: vec![],
            };
            m.add(KEYS[*key], mv);
        }
        Op::Delete { key } => m.delete(KEYS[*key]),
        Op::DeleteVersion { key, nth } => {
            let id = model.keys.get(KEYS[*key])?.get(*nth)?.id.clone()?;
            if let Some(l) = m.keys.get_mut(KEYS[*key]) {
                l.retain(|v| v.id.as_deref() != Some(id.as_str()));
            }
            m.keys.retain(|_, l| !l.is_empty());
        }
        Op::Copy { from, to } => {
            let src = latest(from)?;
            let mv = ModelVersion {
                id: None,
                marker: false,
                data: src.data,
                tags: src.tags,
            };
            m.add(KEYS[*to], mv);
        }
        Op::Tag { key, value } => {
            latest(key)?;
            let v = m.keys.get_mut(KEYS[*key])?.first_mut()?;
            v.tags = vec![("t".to_owned(), value.to_string())];
        }
        Op::Versioning(v) => m.versioning = *v,
        Op::CreateUpload { key } => {
            if model.uploads.contains_key(KEYS[*key]) {
                return None;
            }
            m.uploads.insert(KEYS[*key].to_owned(), (None, None));
        }
        Op::UploadPart { key, size, seed } => {
            let data = pattern(*size, *seed);
            let etag = hex::encode(<md5::Md5 as md5::Digest>::digest(&data));
            let id = model.uploads.get(KEYS[*key])?.0.clone();
            id.as_ref()?;
            m.uploads.insert(KEYS[*key].to_owned(), (id, Some((data, etag))));
        }
        Op::Complete { key } => {
            let (id, part) = m.uploads.remove(KEYS[*key])?;
            id?;
            let mv = ModelVersion {
                id: None,
                marker: false,
                data: part?.0,
                tags: vec![],
            };
            m.add(KEYS[*key], mv);
        }
        Op::Abort { key } => {
            m.uploads.remove(KEYS[*key])?.0?;
        }
        Op::Heal { .. } | Op::Scan => {}
    }
    Some(m)
}

/// Cases per test, and the operations in each.
fn cases() -> (u64, usize) {
    let n = std::env::var("STRATA_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(750);
    (n, 24)
}

async fn run_cases(base: u64) {
    let mut tally = Tally::default();
    if let Some(seed) = std::env::var("STRATA_MODEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        run_case(seed, cases().1, &mut tally).await;
        return;
    }
    let (n, ops) = cases();
    let t0 = std::time::Instant::now();
    for i in 0..n {
        run_case(base + i, ops, &mut tally).await;
    }
    eprintln!("{n} model cases in {:?}: {tally:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operations_with_crashes_match_the_model_a() {
    run_cases(1_000_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operations_with_crashes_match_the_model_b() {
    run_cases(2_000_000).await;
}
