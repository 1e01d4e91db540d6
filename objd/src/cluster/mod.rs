//! A deployment over several nodes: which drives are this node's
//! ([`layout`]), the clients of the other nodes' drives
//! ([`crate::drive::remote`]), the node endpoint serving this node's drives
//! to them (`server::node`), and start-up: the first node of the
//! arguments formats a new cluster once every drive answers, the others
//! wait for its formats; every node then checks that its arguments are
//! those the cluster was formatted with.
//!
//! Every record change is a compare-and-set on each drive
//! ([`crate::drive::RecordOp::Check`]) that needs a write quorum, and any
//! two quorums share a drive: so two nodes racing on one key cannot both
//! commit, a node cut off from the quorum cannot commit at all, and no
//! coordinator sits on the path of a request. `docs/cluster.md` has the
//! reasoning and the failure analysis.

pub mod coord;
pub mod etcd;
pub mod layout;

use crate::drive::remote::{NodeClient, RemoteDrive};
use crate::drive::rpc::NodeKey;
use crate::drive::{Drive, DriveError};
use crate::server::node::NodeService;
use crate::server::startup::{self, ClusterCheck, Deployment, Slot, StartupError};
use layout::Layout;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    Layout(String),
    #[error(transparent)]
    Startup(#[from] StartupError),
}

/// How often a waiting node looks again for the cluster's formats.
const WAIT_STEP: Duration = Duration::from_secs(1);

/// A drive position: its URL, the drive (or why it did not open), and
/// whether this node serves it.
#[derive(Debug)]
struct Place {
    url: String,
    drive: Result<Arc<dyn Drive>, String>,
    local: bool,
}

/// A node's drives before start-up decides the deployment: its own opened,
/// the others' as clients.
#[derive(Debug)]
pub struct Node {
    layout: Layout,
    local: HashMap<String, Arc<dyn Drive>>,
    places: Vec<Place>,
    key: NodeKey,
    peers: Vec<Arc<NodeClient>>,
}

impl Node {
    /// Opens this node's drives and makes clients for the others' (over
    /// TLS with `tls`). Must run on the runtime the clients will use.
    pub fn open(
        layout: Layout,
        key: NodeKey,
        tls: Option<Arc<crate::tls::Certs>>,
    ) -> Result<Self, ClusterError> {
        let local_paths: Vec<PathBuf> = layout
            .drives
            .iter()
            .filter(|d| d.local)
            .map(|d| PathBuf::from(&d.path))
            .collect();
        startup::check_mounts(&local_paths)?;
        let mut peers: HashMap<String, Arc<NodeClient>> = HashMap::new();
        let mut local = HashMap::new();
        let mut places = Vec::with_capacity(layout.drives.len());
        for d in &layout.drives {
            let url = d.url();
            let node = d.node.clone().unwrap_or_default();
            if d.local {
                let s = Slot::local(std::path::Path::new(&d.path), url.clone());
                if let Ok(drive) = &s.drive {
                    local.insert(d.path.clone(), Arc::clone(drive));
                }
                places.push(Place {
                    url,
                    drive: s.drive.map_err(|e| e.to_string()),
                    local: true,
                });
            } else {
                let client = peers
                    .entry(node.clone())
                    .or_insert_with(|| NodeClient::new(&node, key.clone(), tls.clone()));
                let drive: Arc<dyn Drive> = Arc::new(RemoteDrive::new(Arc::clone(client), &d.path));
                places.push(Place {
                    url,
                    drive: Ok(drive),
                    local: false,
                });
            }
        }
        let mut peers: Vec<Arc<NodeClient>> = peers.into_values().collect();
        peers.sort_by(|a, b| a.addr().cmp(b.addr()));
        Ok(Self {
            layout,
            local,
            places,
            peers,
            key,
        })
    }

    /// The endpoint serving this node's drives to the others.
    pub fn service(&self) -> NodeService {
        NodeService::new(self.local.clone(), self.key.clone())
    }

    /// The other nodes.
    pub fn peers(&self) -> &[Arc<NodeClient>] {
        &self.peers
    }

    /// Waits until the deployment can be decided (formatting a new cluster
    /// if this is its first node), then opens it.
    pub async fn deployment(
        &self,
        set_size: Option<usize>,
        parity: Option<usize>,
    ) -> Result<Deployment, ClusterError> {
        let (_, size) = startup::set_layout(self.layout.drives.len(), set_size)?;
        let check = ClusterCheck {
            urls: self.layout.urls(),
            formats_new: self.layout.this_node.as_ref() == self.layout.nodes.first(),
        };
        let spread = self.layout.worst_spread(size);
        let mut waited = 0u32;
        loop {
            let slots: Vec<Slot> = self
                .places
                .iter()
                .map(|p| Slot {
                    name: p.url.clone(),
                    drive: p
                        .drive
                        .clone()
                        .map_err(|e| DriveError::Io(std::io::Error::other(e))),
                    local: p.local,
                })
                .collect();
            let c = check.clone();
            let r =
                tokio::task::spawn_blocking(move || startup::open_slots(slots, set_size, parity, Some(&c)))
                    .await
                    .map_err(|e| ClusterError::Layout(format!("start-up: {e}")))?;
            match r {
                Err(StartupError::Waiting(why)) => {
                    if waited.is_multiple_of(10) {
                        tracing::info!(reason = %why, "waiting for the other nodes");
                    }
                    waited += 1;
                    tokio::time::sleep(WAIT_STEP).await;
                }
                Err(e) => return Err(e.into()),
                Ok(d) => {
                    if let Some((worst, node)) = spread.filter(|(w, _)| *w > d.parity) {
                        tracing::warn!(
                            %node, drives_in_one_set = worst, parity = d.parity,
                            "a set holds more drives of one node than its parity: losing that node stops the set; use more nodes or a smaller --set-size"
                        );
                    }
                    return Ok(d);
                }
            }
        }
    }
}
