//! The lifecycle scanner: in the background, every bucket with a
//! lifecycle configuration is listed (every version, a page at a time)
//! and its rules applied: current versions expire (deleted, or in a
//! versioned bucket hidden behind a delete marker) or move to a remote
//! tier, noncurrent versions move or go, lone delete markers go,
//! abandoned multipart uploads are aborted. A transition that fails (the
//! tier is down, say) leaves the object where it was, to be tried again
//! the next pass.
//! Nodes take turns through a claim kept on the drives: one pass per
//! period runs in the deployment, on the node holding the claim, and
//! another takes over when it stops renewing it. Each change is
//! conditional on the version it was decided for still being what it was
//! (a write in between wins), so a pass racing a client, or two passes
//! when a claim changed hands mid-pass, change nothing twice. Object Lock
//! keeps what it protects. A bucket without rules costs nothing but
//! looking at its settings; one with rules is walked at half speed at
//! most (a pass rests as long as each page took).

use super::{BUCKET_SETTING, Clock, Lifecycle};
use crate::meta::Version;
use crate::object::cold::Moved;
use crate::object::placement::Place;
use crate::object::{ListOptions, ListedObject, ObjectError, ObjectLayer};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What the passes of this process did, for the metrics.
#[derive(Debug, Default)]
pub struct Counts {
    pub passes: AtomicU64,
    pub transitioned: AtomicU64,
    pub transition_failures: AtomicU64,
    pub expired: AtomicU64,
    pub removed: AtomicU64,
    pub aborted: AtomicU64,
}

/// The counts of this process's passes.
pub static COUNTS: Counts = Counts {
    passes: AtomicU64::new(0),
    transitioned: AtomicU64::new(0),
    transition_failures: AtomicU64::new(0),
    expired: AtomicU64::new(0),
    removed: AtomicU64::new(0),
    aborted: AtomicU64::new(0),
};

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Versions whose data moved to a remote tier, and their bytes.
    pub transitioned: u64,
    pub transitioned_bytes: u64,
    /// Transitions that failed (tried again the next pass).
    pub transition_failures: u64,
    /// Current versions expired.
    pub expired: u64,
    /// Noncurrent versions and lone delete markers removed.
    pub removed: u64,
    /// Multipart uploads aborted.
    pub aborted: u64,
}

impl std::ops::AddAssign for Report {
    fn add_assign(&mut self, o: Report) {
        self.transitioned += o.transitioned;
        self.transitioned_bytes += o.transitioned_bytes;
        self.transition_failures += o.transition_failures;
        self.expired += o.expired;
        self.removed += o.removed;
        self.aborted += o.aborted;
    }
}

/// Time between passes: a 24th of a lifecycle day, at least a second and
/// at most an hour.
pub fn period(clock: &Clock) -> Duration {
    Duration::from_secs((clock.day_secs / 24).clamp(1, 3600))
}

/// The configuration topic and document through which nodes take turns.
const TOPIC: &str = "lifecycle";
const CLAIM: &str = "lifecycle/claim";

/// Whether `node` may run the pass of the period starting at `now_ns`:
/// a claim (node, until) kept on the drives names the node that runs the
/// passes; another node takes over once it has not renewed its claim for
/// a whole period (it stopped, or lost the drives). So a cluster runs one
/// pass per period, whichever nodes are up.
pub async fn claim(layer: &ObjectLayer, node: &str, now_ns: i64, period: Duration) -> bool {
    let until = now_ns.saturating_add(period.as_nanos() as i64);
    let taken = layer
        .change_config(TOPIC, "lifecycle/", |docs| {
            let held = docs
                .get(CLAIM)
                .and_then(|d| serde_json::from_slice::<(String, i64)>(d).ok());
            if let Some((holder, valid_until)) = held
                && holder != node
                && valid_until > now_ns
            {
                return Ok((Vec::new(), false));
            }
            let doc = serde_json::to_vec(&(node, until)).unwrap_or_default();
            Ok((vec![(CLAIM.to_owned(), Some(doc))], true))
        })
        .await;
    taken.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "lifecycle: cannot take this period's turn");
        false
    })
}

/// Runs passes forever, one per [`period`] across the deployment: each
/// node asks every period, and the one holding the claim runs it.
pub fn start(layer: Arc<ObjectLayer>, clock: Clock) {
    let node = uuid::Uuid::new_v4().to_string();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(period(&clock)).await;
            // A claim outlives the period a little, so the holder's next
            // turn renews it before another node sees it lapse.
            let hold = period(&clock) + period(&clock) / 2;
            let any_rules = layer.list_buckets().iter().any(|b| {
                layer
                    .bucket_setting(&b.name, BUCKET_SETTING)
                    .is_ok_and(|s| s.is_some())
            });
            if !any_rules || !claim(&layer, &node, crate::object::now_ns(), hold).await {
                continue;
            }
            let started = std::time::Instant::now();
            let r = pass(&layer, &clock, crate::object::now_ns()).await;
            COUNTS.passes.fetch_add(1, Ordering::Relaxed);
            COUNTS.transitioned.fetch_add(r.transitioned, Ordering::Relaxed);
            COUNTS
                .transition_failures
                .fetch_add(r.transition_failures, Ordering::Relaxed);
            COUNTS.expired.fetch_add(r.expired, Ordering::Relaxed);
            COUNTS.removed.fetch_add(r.removed, Ordering::Relaxed);
            COUNTS.aborted.fetch_add(r.aborted, Ordering::Relaxed);
            if r != Report::default() {
                tracing::info!(
                    transitioned = r.transitioned,
                    transitioned_bytes = r.transitioned_bytes,
                    transition_failures = r.transition_failures,
                    expired = r.expired,
                    removed = r.removed,
                    aborted = r.aborted,
                    seconds = started.elapsed().as_secs_f64(),
                    "lifecycle pass"
                );
            }
        }
    });
}

/// One pass over every bucket, as of `now_ns`.
pub async fn pass(layer: &ObjectLayer, clock: &Clock, now_ns: i64) -> Report {
    let mut total = Report::default();
    for b in layer.list_buckets() {
        let Ok(Some(raw)) = layer.bucket_setting(&b.name, BUCKET_SETTING) else {
            continue;
        };
        let Some(rules) = Lifecycle::decode(&raw) else {
            tracing::warn!(bucket = %b.name, "unreadable lifecycle configuration");
            continue;
        };
        match bucket_pass(layer, &b.name, &rules, clock, now_ns).await {
            Ok(r) => total += r,
            Err(e) => tracing::warn!(bucket = %b.name, error = %e, "lifecycle pass stopped"),
        }
    }
    total
}

/// The versions of one key seen so far, newest first (a key's versions
/// may span listing pages).
struct KeyVersions {
    key: String,
    versions: Vec<Version>,
}

async fn bucket_pass(
    layer: &ObjectLayer,
    bucket: &str,
    rules: &Lifecycle,
    clock: &Clock,
    now_ns: i64,
) -> Result<Report, ObjectError> {
    let mut report = Report::default();
    let mut opts = ListOptions {
        max_keys: 1000,
        versions: true,
        ..Default::default()
    };
    let mut open: Option<KeyVersions> = None;
    loop {
        let started = std::time::Instant::now();
        let page = layer.list_objects(bucket, opts.clone()).await?;
        for ListedObject { key, version, .. } in page.objects {
            if open.as_ref().is_some_and(|o| o.key != key)
                && let Some(done) = open.take()
            {
                report += apply(layer, bucket, rules, clock, now_ns, done).await;
            }
            open.get_or_insert_with(|| KeyVersions {
                key: key.clone(),
                versions: Vec::new(),
            })
            .versions
            .push(version);
        }
        if !page.truncated {
            break;
        }
        opts.start_after = page.next_marker.unwrap_or_default();
        opts.version_marker = page.next_version_marker;
        // Pace: a pass rests as long as its last page took, so it never
        // takes more than half of what it could from client requests.
        tokio::time::sleep(started.elapsed()).await;
    }
    if let Some(done) = open.take() {
        report += apply(layer, bucket, rules, clock, now_ns, done).await;
    }
    report.aborted += abort_abandoned(layer, bucket, rules, clock, now_ns).await;
    Ok(report)
}

/// The tags of a version, when a rule needs them.
async fn tags_of(
    layer: &ObjectLayer,
    bucket: &str,
    key: &str,
    v: &Version,
    rules: &Lifecycle,
) -> Vec<(String, String)> {
    if !rules.needs_tags() || v.is_delete_marker() {
        return Vec::new();
    }
    match layer.head_object(bucket, key, Some(&v.id.to_api())).await {
        Ok(r) => r.version().extras.tags.clone(),
        Err(_) => Vec::new(),
    }
}

/// Applies the rules to one key's versions (newest first).
async fn apply(
    layer: &ObjectLayer,
    bucket: &str,
    rules: &Lifecycle,
    clock: &Clock,
    now_ns: i64,
    k: KeyVersions,
) -> Report {
    let mut r = Report::default();
    let key = k.key.as_str();
    let Some(latest) = k.versions.first() else {
        return r;
    };
    // Noncurrent versions: each became noncurrent when the one above it
    // was written.
    let mut newer = 0;
    let mut kept = 1;
    for pair in k.versions.windows(2) {
        let (above, v) = (&pair[0], &pair[1]);
        let tags = tags_of(layer, bucket, key, v, rules).await;
        let facts = (key, v.size, tags.as_slice());
        let due = rules.noncurrent_due(clock, facts, above.mod_time_ns, newer, now_ns);
        if due && layer.expire(bucket, key, v, false).await.is_ok() {
            r.removed += 1;
        } else {
            kept += 1;
            if !v.is_delete_marker()
                && let Some(class) =
                    rules.noncurrent_transition_due(clock, facts, above.mod_time_ns, newer, now_ns)
            {
                r += transition(layer, (bucket, key), v, class).await;
            }
        }
        if !v.is_delete_marker() {
            newer += 1;
        }
    }
    if latest.is_delete_marker() {
        // A delete marker with nothing left behind it.
        if kept == 1
            && rules.removes_lone_marker(key)
            && layer.expire(bucket, key, latest, false).await.is_ok()
        {
            r.removed += 1;
        }
        return r;
    }
    let tags = tags_of(layer, bucket, key, latest, rules).await;
    if let Some(e) = rules.expiry(clock, key, latest.size, &tags, latest.mod_time_ns)
        && now_ns >= e.at_ns
    {
        if layer.expire(bucket, key, latest, true).await.is_ok() {
            r.expired += 1;
        }
        return r;
    }
    let facts = (key, latest.size, tags.as_slice());
    if let Some(class) = rules.transition_due(clock, facts, latest.mod_time_ns, now_ns) {
        r += transition(layer, (bucket, key), latest, class).await;
    }
    r
}

/// Moves a version's data to the pool or remote tier `class` names, if
/// that is colder than where it is (lifecycle rules move data only to
/// colder places: never back, nor from one remote tier to another).
async fn transition(layer: &ObjectLayer, (bucket, key): (&str, &str), v: &Version, class: &str) -> Report {
    let mut r = Report::default();
    let place = match layer.place_of(class).await {
        Ok(Some(Place::Store(p))) => p,
        Ok(_) => return r,
        Err(e) => {
            tracing::warn!(bucket, key, class, error = %e, "lifecycle transition failed; the object stays where it is");
            r.transition_failures += 1;
            return r;
        }
    };
    let placement = layer.placement();
    if placement.rank(Some(&place)) <= placement.rank(v.remote().map(|l| l.tier.as_str())) {
        return r;
    }
    match layer.transition(bucket, key, v, &place).await {
        Ok(Moved::Done { bytes }) => {
            r.transitioned += 1;
            r.transitioned_bytes += bytes;
        }
        Ok(Moved::Skipped) => {}
        Err(e) => {
            tracing::warn!(bucket, key, class, error = %e, "lifecycle transition failed; the object stays where it is");
            r.transition_failures += 1;
        }
    }
    r
}

/// Aborts the bucket's multipart uploads that a rule says are abandoned.
async fn abort_abandoned(
    layer: &ObjectLayer,
    bucket: &str,
    rules: &Lifecycle,
    clock: &Clock,
    now_ns: i64,
) -> u64 {
    if !rules
        .rules
        .iter()
        .any(|r| r.enabled && r.abort_incomplete_days.is_some())
    {
        return 0;
    }
    let mut aborted = 0;
    let mut after: Option<(String, String)> = None;
    loop {
        let marker = after.as_ref().map(|(k, u)| (k.as_str(), Some(u.as_str())));
        let Ok(uploads) = layer.list_uploads(bucket, "", marker, 1000).await else {
            return aborted;
        };
        for u in &uploads {
            if rules.upload_abandoned(clock, &u.key, u.initiated_ns, now_ns)
                && layer.abort_multipart(bucket, &u.key, &u.upload_id).await.is_ok()
            {
                aborted += 1;
            }
        }
        match uploads.last() {
            Some(u) if uploads.len() == 1000 => after = Some((u.key.clone(), u.upload_id.clone())),
            _ => return aborted,
        }
    }
}
