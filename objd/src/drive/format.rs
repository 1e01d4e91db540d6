//! The format file every drive carries (`format.json` at its root): which
//! deployment it belongs to, and where it sits in the set layout. It is
//! written once at first start and checked at every start, so that a drive
//! from another deployment, or drives given in the wrong order, are refused
//! before any data is touched.

use serde::{Deserialize, Serialize};

pub const FORMAT_FILE: &str = "format.json";
pub const FORMAT_FILE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveFormat {
    /// Format version of this file.
    pub version: u32,
    /// Same on every drive of a deployment.
    pub deployment_id: String,
    /// Unique per drive.
    pub drive_id: String,
    /// Position of this drive: set number and index within the set.
    pub set_index: usize,
    pub drive_index: usize,
    /// Drive ids of the whole layout, `sets[set][drive]`.
    pub sets: Vec<Vec<String>>,
    /// Parity shards per set.
    pub parity: usize,
    /// In a cluster, the URL of every drive in set order (`sets` flattened):
    /// a node started with other drive arguments is refused. Absent for a
    /// one-node deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<String>>,
}
