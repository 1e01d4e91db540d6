//! A bounded queue of keys waiting for background work (healing,
//! compaction), each key queued at most once at a time. Senders never
//! wait: when the queue is full a key is dropped, and the scanner finds it
//! on its next walk.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Most keys waiting; beyond that new ones are dropped.
const CAPACITY: usize = 10_000;

type Key = (String, String);
type Pending = Arc<Mutex<HashSet<Key>>>;

/// Handle to queue keys.
#[derive(Debug, Clone)]
pub struct KeySender {
    tx: mpsc::Sender<Key>,
    pending: Pending,
}

impl KeySender {
    pub fn queue(&self, bucket: &str, key: &str) {
        let item = (bucket.to_owned(), key.to_owned());
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.contains(&item) {
            return;
        }
        if self.tx.try_send(item.clone()).is_ok() {
            p.insert(item);
        }
    }
}

#[derive(Debug)]
pub struct KeyQueue {
    sender: KeySender,
    rx: tokio::sync::Mutex<mpsc::Receiver<Key>>,
}

impl KeyQueue {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel(CAPACITY);
        Self {
            sender: KeySender {
                tx,
                pending: Arc::default(),
            },
            rx: tokio::sync::Mutex::new(rx),
        }
    }

    pub fn sender(&self) -> KeySender {
        self.sender.clone()
    }

    /// Keys waiting.
    pub fn pending(&self) -> usize {
        self.sender
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Waits for at least one key (unless `wait` is false), then takes up
    /// to `max` of those waiting. Empty when the queue is closed, or when
    /// nothing waits and `wait` is false. A key taken may be queued again
    /// at once (a change made while it is worked on is not missed).
    pub async fn take(&self, max: usize, wait: bool) -> Vec<Key> {
        let mut rx = self.rx.lock().await;
        let mut out = Vec::new();
        if wait {
            match rx.recv().await {
                Some(k) => out.push(k),
                None => return out,
            }
        }
        while out.len() < max {
            match rx.try_recv() {
                Ok(k) => out.push(k),
                Err(_) => break,
            }
        }
        drop(rx);
        let mut p = self.sender.pending.lock().unwrap_or_else(|e| e.into_inner());
        for k in &out {
            p.remove(k);
        }
        out
    }
}

impl Default for KeyQueue {
    fn default() -> Self {
        Self::new()
    }
}
