//! Hinted heals: keys healed while some drive of their set was
//! unreachable are remembered, and healed again when a node comes back,
//! so a node that was down for a while gets what it missed without a
//! walk of every object. Past [`MAX_HINTS`] keys only an overflow flag is
//! kept, and the return heals everything instead.

use super::ObjectLayer;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Most keys remembered.
pub const MAX_HINTS: usize = 200_000;

#[derive(Debug, Default)]
pub(crate) struct Hints {
    inner: Mutex<(BTreeSet<(String, String)>, bool)>,
    /// Keys taken and not yet healed.
    healing: AtomicUsize,
}

impl Hints {
    pub fn add(&self, bucket: &str, key: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.0.len() >= MAX_HINTS {
            g.1 = true;
        } else {
            g.0.insert((bucket.to_owned(), key.to_owned()));
        }
    }

    /// The keys remembered and whether some were not, emptying the list;
    /// each key taken counts as pending until [`Hints::done`].
    fn take(&self) -> (BTreeSet<(String, String)>, bool) {
        let taken = std::mem::take(&mut *self.inner.lock().unwrap_or_else(|e| e.into_inner()));
        self.healing.fetch_add(taken.0.len(), Ordering::AcqRel);
        taken
    }

    fn done(&self) {
        self.healing.fetch_sub(1, Ordering::AcqRel);
    }

    /// Keys remembered or being healed.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).0.len() + self.healing.load(Ordering::Acquire)
    }
}

impl ObjectLayer {
    /// Heals what was missed each time `returns` changes (a node came
    /// back), pacing like the scanner does with `pace`.
    pub fn heal_on_return(self: &Arc<Self>, mut returns: watch::Receiver<u64>, pace: f64) {
        let layer = Arc::clone(self);
        tokio::spawn(async move {
            while returns.changed().await.is_ok() {
                let (keys, overflow) = layer.hints.take();
                if overflow {
                    tracing::info!("a node is back after missing many writes; healing every object");
                    match layer.heal_all(None, pace, |_| {}).await {
                        Ok(r) => tracing::info!(repaired = r.repaired, "node healed"),
                        Err(e) => {
                            tracing::warn!(error = %e, "healing a returned node failed; run `objd admin heal`")
                        }
                    }
                    continue;
                }
                let n = keys.len();
                let mut repaired = 0;
                for (bucket, key) in keys {
                    let t0 = std::time::Instant::now();
                    let set = Arc::clone(layer.set_for(&bucket, &key));
                    match set.heal_object(&bucket, &key, true).await {
                        Ok(r) => repaired += r.repaired,
                        Err(e) => tracing::warn!(%bucket, %key, error = %e, "heal failed"),
                    }
                    if !set.all_online() {
                        layer.hints.add(&bucket, &key);
                    }
                    layer.hints.done();
                    tokio::time::sleep(t0.elapsed().mul_f64(pace)).await;
                }
                if n > 0 {
                    tracing::info!(keys = n, repaired, "healed what a returned node missed");
                }
            }
        });
    }
}
