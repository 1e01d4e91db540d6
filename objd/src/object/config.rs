//! Deployment configuration documents (the IAM state): small documents
//! under names such as `iam/user/alice`, kept on every drive of every set
//! like bucket records, read back as what most drives hold, changed one
//! topic at a time under a deployment-wide lock with each document's
//! change a compare-and-set on a write quorum of every set, and announced
//! to the other nodes of a cluster, which run the topic's reload hook.
//!
//! Topics travel through the coordinator's bucket notices under names
//! starting with `.` (which no bucket name can).

use super::{ObjectLayer, ObjectResult, majority};
use crate::drive::{KeyRange, Table};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What a topic's owner runs when another node changed the topic.
pub type ReloadHook = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// Reload hooks by topic.
#[derive(Default)]
pub struct Hooks(Mutex<BTreeMap<String, ReloadHook>>);

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hooks")
    }
}

impl Hooks {
    fn get(&self, topic: &str) -> Option<ReloadHook> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
            .cloned()
    }

    fn all(&self) -> Vec<ReloadHook> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// The notice name of a topic.
fn notice(topic: &str) -> String {
    format!(".{topic}")
}

/// A change of a topic's documents: name -> new document, or `None` to
/// delete it.
pub type ConfigChange = Vec<(String, Option<Vec<u8>>)>;

impl ObjectLayer {
    /// Every document whose name starts with `prefix`, as most answering
    /// drives hold it.
    pub async fn config_documents(&self, prefix: &str) -> ObjectResult<BTreeMap<String, Vec<u8>>> {
        let start = prefix.as_bytes().to_vec();
        let mut end = start.clone();
        end.push(0xff);
        let lists = self
            .each_drive(move |d| d.scan(Table::Config, KeyRange::new(&start, &end, usize::MAX)))
            .await;
        Ok(majority(lists, |_| true)
            .into_iter()
            .filter_map(|(k, v)| Some((String::from_utf8(k).ok()?, v)))
            .collect())
    }

    /// Changes documents of `topic` (whose names start with `prefix`):
    /// under the topic's deployment-wide lock, `change` sees the
    /// documents as the drives hold them now and says what to write; each
    /// write is committed on a write quorum of every set, then the other
    /// nodes are told.
    pub async fn change_config<T>(
        &self,
        topic: &str,
        prefix: &str,
        change: impl FnOnce(&BTreeMap<String, Vec<u8>>) -> ObjectResult<(ConfigChange, T)>,
    ) -> ObjectResult<T> {
        let coord = Arc::clone(self.coordinator());
        let _lock = coord.lock(topic).await?;
        let now = self.config_documents(prefix).await?;
        let (writes, out) = change(&now)?;
        let changed = !writes.is_empty();
        let mut result = Ok(());
        for (name, value) in writes {
            if let Err(e) = self
                .commit_everywhere(Table::Config, name.as_bytes(), value, vec![])
                .await
            {
                result = Err(e);
                break;
            }
        }
        if changed && self.shared {
            coord.bucket_changed(&notice(topic)).await;
        }
        result.map(|()| out)
    }

    /// Runs `hook` whenever another node announces a change of `topic`
    /// (and when the notices resume after a gap).
    pub fn on_config_change(&self, topic: &str, hook: ReloadHook) {
        self.hooks
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(notice(topic), hook);
    }

    /// Runs the hook of a notice name if it is a topic's; whether it was.
    pub(super) async fn reload_topic(&self, name: &str) -> bool {
        if !name.starts_with('.') {
            return false;
        }
        if let Some(h) = self.hooks.get(name) {
            h().await;
        }
        true
    }

    /// Runs every topic's hook (the notices may have been missed).
    pub async fn reload_topics(&self) {
        for h in self.hooks.all() {
            h().await;
        }
    }

    /// Whether cached deployment state is kept fresh by change notices.
    pub fn coherent(&self) -> bool {
        self.coordinator().coherent()
    }
}
