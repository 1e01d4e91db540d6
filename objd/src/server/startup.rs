//! Start-up: lays the drive arguments out in erasure sets, opens the
//! drives, and formats or verifies them. Every refusal is one line that
//! names the drive and says what is wrong and what to do.

use crate::drive::format::{DriveFormat, FORMAT_FILE_VERSION};
use crate::drive::local::LocalDrive;
use crate::drive::{Drive, DriveError};
use crate::erasure::default_parity;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Layout(String),
    #[error("drive {drive}: {msg}")]
    Drive { drive: String, msg: String },
    /// A cluster node cannot start yet (see [`open_slots`]).
    #[error("{0}")]
    Waiting(String),
}

/// Splits `n` drives into sets: one set up to 16 drives, otherwise equal
/// sets of the largest size from 16 down to 4 that divides `n`.
pub fn set_layout(n: usize, set_size: Option<usize>) -> Result<(usize, usize), StartupError> {
    let size = match set_size {
        Some(s) => s,
        None if n <= 16 => n,
        None => (4..=16).rev().find(|s| n.is_multiple_of(*s)).ok_or_else(|| {
            StartupError::Layout(format!(
                "{n} drives cannot be split into equal erasure sets of 4 to 16 drives"
            ))
        })?,
    };
    if !(2..=16).contains(&size) {
        return Err(StartupError::Layout(format!(
            "an erasure set needs 2 to 16 drives, got {size}; give more drives or another --set-size"
        )));
    }
    if !n.is_multiple_of(size) {
        return Err(StartupError::Layout(format!(
            "{n} drives do not divide into sets of {size}"
        )));
    }
    Ok((n / size, size))
}

/// Parses `EC:n` or `n`.
pub fn parse_parity(s: &str) -> Result<usize, String> {
    let v = s.strip_prefix("EC:").unwrap_or(s);
    v.parse()
        .map_err(|_| format!("invalid parity `{s}`: expected EC:N or N"))
}

/// The opened deployment.
#[derive(Debug)]
pub struct Deployment {
    pub deployment_id: String,
    pub parity: usize,
    pub drives: Vec<Vec<Option<Arc<dyn Drive>>>>,
    /// Drives that were empty and got formatted into an existing deployment:
    /// a heal must repopulate them.
    pub replaced: Vec<String>,
}

fn drive_err(path: impl std::fmt::Display, msg: impl Into<String>) -> StartupError {
    StartupError::Drive {
        drive: path.to_string(),
        msg: msg.into(),
    }
}

/// Whether `p` is the root of a filesystem of its own: its device differs
/// from its parent's (`None` when it cannot be looked at).
fn is_mount_point(p: &std::path::Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata(p).ok()?;
    let parent = std::fs::metadata(p.join("..")).ok()?;
    Some(me.dev() != parent.dev() || me.ino() == parent.ino())
}

/// Refuses a drive whose disk looks missing: a directory without a format
/// that is not a mounted filesystem, while every formatted drive is one.
/// (Its disk failed to mount, and the empty directory below the mount
/// point would take a replacement drive's data on the root filesystem.)
/// Checked before anything is written to any drive.
pub fn check_mounts(paths: &[PathBuf]) -> Result<(), StartupError> {
    let formatted: Vec<bool> = paths
        .iter()
        .map(|p| p.join(crate::drive::format::FORMAT_FILE).is_file())
        .collect();
    let mounted: Vec<Option<bool>> = paths.iter().map(|p| is_mount_point(p)).collect();
    let all_mounted = formatted
        .iter()
        .zip(&mounted)
        .filter(|(f, _)| **f)
        .all(|(_, m)| *m == Some(true));
    if !formatted.contains(&true) || !all_mounted {
        return Ok(());
    }
    for (i, p) in paths.iter().enumerate() {
        if !formatted[i] && mounted[i] == Some(false) {
            return Err(drive_err(
                p.display(),
                "is not a mounted filesystem, while every formatted drive is one: its disk is probably \
                 missing; mount it (a new disk there is formatted and healed), or bind-mount the \
                 directory onto itself to use it as it is",
            ));
        }
    }
    Ok(())
}

/// One drive position of the layout, as opened.
#[derive(Debug)]
pub struct Slot {
    /// Its path (one node) or URL (cluster), for messages.
    pub name: String,
    pub drive: Result<Arc<dyn Drive>, DriveError>,
    /// Served by this process (so formatted, checked and replaced here).
    pub local: bool,
}

impl Slot {
    /// A local directory drive.
    pub fn local(path: &std::path::Path, name: String) -> Self {
        Self {
            name,
            drive: LocalDrive::open(path).map(|d| Arc::new(d) as Arc<dyn Drive>),
            local: true,
        }
    }
}

/// What a cluster node checks at start-up beyond a single node.
#[derive(Debug, Clone)]
pub struct ClusterCheck {
    /// Every drive's URL in set order, as this node's arguments give them.
    pub urls: Vec<String>,
    /// This node formats a new cluster (the first node of the arguments);
    /// the others wait for its formats.
    pub formats_new: bool,
}

/// Whether a node's drive arguments are those the cluster was formatted with.
fn check_endpoints(reference: &DriveFormat, urls: &[String]) -> Result<(), StartupError> {
    let Some(formatted) = &reference.endpoints else {
        return Err(StartupError::Layout(
            "the drives were formatted as a one-node deployment; a cluster needs new drives".into(),
        ));
    };
    if formatted.len() != urls.len() {
        return Err(StartupError::Layout(format!(
            "the cluster was formatted with {} drives, this node was given {}; start every node with the same drive arguments",
            formatted.len(),
            urls.len()
        )));
    }
    if let Some(i) = (0..urls.len()).find(|i| !crate::cluster::layout::same_drive(&formatted[*i], &urls[*i]))
    {
        return Err(StartupError::Layout(format!(
            "drive #{} of the cluster is {}, but this node's arguments give {}; start every node with the same drive arguments in the same order",
            i + 1,
            formatted[i],
            urls[i]
        )));
    }
    Ok(())
}

/// Opens, formats on first start, and verifies every drive (one node).
pub fn open_deployment(
    paths: &[PathBuf],
    set_size: Option<usize>,
    parity: Option<usize>,
) -> Result<Deployment, StartupError> {
    set_layout(paths.len(), set_size)?;
    check_mounts(paths)?;
    let slots = paths
        .iter()
        .map(|p| Slot::local(p, p.display().to_string()))
        .collect();
    open_slots(slots, set_size, parity, None)
}

/// Formats on first start and verifies the drive positions `slots` (in
/// set order). In a cluster, [`StartupError::Waiting`] means no format was
/// found yet while some drive did not answer or another node formats: ask
/// again a little later.
pub fn open_slots(
    slots: Vec<Slot>,
    set_size: Option<usize>,
    parity: Option<usize>,
    cluster: Option<&ClusterCheck>,
) -> Result<Deployment, StartupError> {
    let (sets, size) = set_layout(slots.len(), set_size)?;
    let mut formats: Vec<Option<DriveFormat>> = Vec::with_capacity(slots.len());
    let mut unreachable = 0;
    for s in &slots {
        formats.push(match &s.drive {
            Ok(d) => match d.read_format() {
                Ok(f) => f,
                Err(e) if s.local => return Err(drive_err(&s.name, format!("cannot read format.json: {e}"))),
                Err(_) => {
                    unreachable += 1;
                    None
                }
            },
            Err(_) => None,
        });
    }
    let first = formats.iter().flatten().next().cloned();
    let Some(reference) = first else {
        if let Some(c) = cluster
            && (!c.formats_new || unreachable > 0)
        {
            return Err(StartupError::Waiting(if c.formats_new {
                format!(
                    "{unreachable} drive(s) of other nodes do not answer yet; a new cluster is formatted when every drive answers"
                )
            } else {
                "waiting for the first node to format the new cluster".into()
            }));
        }
        // First start: every drive must be there.
        for s in &slots {
            if let Err(e) = &s.drive {
                return Err(drive_err(
                    &s.name,
                    format!("cannot be opened ({e}); all drives must be present at first format"),
                ));
            }
        }
        let parity = parity.unwrap_or_else(|| default_parity(size));
        if parity > size / 2 {
            return Err(StartupError::Layout(format!(
                "parity {parity} is more than half of the set size {size}; use EC:{} or less",
                size / 2
            )));
        }
        let deployment_id = uuid::Uuid::new_v4().to_string();
        let ids: Vec<Vec<String>> = (0..sets)
            .map(|_| (0..size).map(|_| uuid::Uuid::new_v4().to_string()).collect())
            .collect();
        for (i, s) in slots.iter().enumerate() {
            let f = DriveFormat {
                version: FORMAT_FILE_VERSION,
                deployment_id: deployment_id.clone(),
                drive_id: ids[i / size][i % size].clone(),
                set_index: i / size,
                drive_index: i % size,
                sets: ids.clone(),
                parity,
                endpoints: cluster.map(|c| c.urls.clone()),
            };
            let d = s.drive.as_ref().map_err(|e| drive_err(&s.name, e.to_string()))?;
            d.write_format(&f)
                .map_err(|e| drive_err(&s.name, format!("cannot write format.json: {e}")))?;
        }
        tracing::info!(%deployment_id, sets, set_size = size, parity, "formatted new deployment");
        let drives = group(slots.into_iter().map(|s| s.drive.ok()).collect(), size);
        return Ok(Deployment {
            deployment_id,
            parity,
            drives,
            replaced: vec![],
        });
    };

    if reference.sets.len() != sets || reference.sets.iter().any(|s| s.len() != size) {
        return Err(StartupError::Layout(format!(
            "the drives were formatted as {} set(s) of {}, but {} set(s) of {} were given; pass the same drives in the same order",
            reference.sets.len(),
            reference.sets.first().map_or(0, Vec::len),
            sets,
            size
        )));
    }
    match cluster {
        Some(c) => check_endpoints(&reference, &c.urls)?,
        None if reference.endpoints.is_some() => {
            return Err(StartupError::Layout(
                "the drives belong to a cluster; give the cluster's http://host:port/path drive arguments"
                    .into(),
            ));
        }
        None => {}
    }
    if let Some(p) = parity
        && p != reference.parity
    {
        return Err(StartupError::Layout(format!(
            "the deployment was formatted with parity EC:{}; EC:{p} cannot be changed after the first start",
            reference.parity
        )));
    }
    let mut replaced = Vec::new();
    let mut drives: Vec<Option<Arc<dyn Drive>>> = Vec::with_capacity(slots.len());
    for (i, (s, f)) in slots.into_iter().zip(&formats).enumerate() {
        let (set, idx) = (i / size, i % size);
        let name = s.name;
        match (s.drive, f) {
            // Another node checks and formats its own drives.
            (Ok(d), _) if !s.local => drives.push(Some(d)),
            (Ok(d), Some(f)) => {
                if f.deployment_id != reference.deployment_id {
                    return Err(drive_err(
                        &name,
                        format!(
                            "belongs to deployment {}, the other drives to {}; remove it or give the right drive",
                            f.deployment_id, reference.deployment_id
                        ),
                    ));
                }
                if (f.set_index, f.drive_index) != (set, idx) {
                    let expected = set * size + idx + 1;
                    let actual = f.set_index * size + f.drive_index + 1;
                    return Err(drive_err(
                        &name,
                        format!(
                            "is drive #{actual} of the deployment but was given as #{expected}; drives must be given in their original order"
                        ),
                    ));
                }
                drives.push(Some(d));
            }
            (Ok(d), None) => {
                let f = DriveFormat {
                    version: FORMAT_FILE_VERSION,
                    deployment_id: reference.deployment_id.clone(),
                    drive_id: reference.sets[set][idx].clone(),
                    set_index: set,
                    drive_index: idx,
                    sets: reference.sets.clone(),
                    parity: reference.parity,
                    endpoints: reference.endpoints.clone(),
                };
                d.write_format(&f)
                    .map_err(|e| drive_err(&name, format!("cannot write format.json: {e}")))?;
                tracing::warn!(drive = %name, "empty drive formatted as a replacement; healing will repopulate it");
                replaced.push(name);
                drives.push(Some(d));
            }
            (Err(e), _) => {
                tracing::warn!(drive = %name, error = %e, "drive offline");
                drives.push(None);
            }
        }
    }
    Ok(Deployment {
        deployment_id: reference.deployment_id,
        parity: reference.parity,
        drives: group(drives, size),
        replaced,
    })
}

fn group(drives: Vec<Option<Arc<dyn Drive>>>, size: usize) -> Vec<Vec<Option<Arc<dyn Drive>>>> {
    drives.chunks(size).map(<[_]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &tempfile::TempDir, n: usize) -> Vec<PathBuf> {
        (1..=n).map(|i| dir.path().join(format!("d{i}"))).collect()
    }

    #[test]
    fn layouts() {
        assert_eq!(set_layout(6, None).unwrap(), (1, 6));
        assert_eq!(set_layout(32, None).unwrap(), (2, 16));
        assert_eq!(set_layout(12, Some(4)).unwrap(), (3, 4));
        assert!(set_layout(1, None).is_err());
        assert!(set_layout(17, None).is_err());
        assert_eq!(parse_parity("EC:3").unwrap(), 3);
        assert!(parse_parity("EC:x").is_err());
    }

    #[test]
    fn formats_then_refuses_order_mixups_and_foreign_drives() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(&dir, 4);
        let d = open_deployment(&p, None, None).unwrap();
        assert_eq!(d.parity, 2);
        drop(d);
        // Same order: fine, same deployment.
        let id = open_deployment(&p, None, None).unwrap().deployment_id;
        // Swapped drives are refused with a message naming the drive.
        let mut swapped = p.clone();
        swapped.swap(0, 1);
        let e = open_deployment(&swapped, None, None).unwrap_err().to_string();
        assert!(e.contains("d2") && e.contains("original order"), "{e}");
        // A drive of another deployment is refused.
        let other = tempfile::tempdir().unwrap();
        let q = paths(&other, 4);
        drop(open_deployment(&q, None, None).unwrap());
        let mut mixed = p.clone();
        mixed[3] = q[3].clone();
        let e = open_deployment(&mixed, None, None).unwrap_err().to_string();
        assert!(e.contains("belongs to deployment"), "{e}");
        // Parity cannot change.
        assert!(
            open_deployment(&p, None, Some(1))
                .unwrap_err()
                .to_string()
                .contains("EC:2")
        );
        // An emptied drive is formatted as a replacement.
        std::fs::remove_dir_all(&p[2]).unwrap();
        let d = open_deployment(&p, None, None).unwrap();
        assert_eq!(d.deployment_id, id);
        assert_eq!(d.replaced.len(), 1);
    }

    #[test]
    fn a_drive_missing_at_first_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = paths(&dir, 4);
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        p[1] = dir.path().join("file");
        let e = open_deployment(&p, None, None).unwrap_err().to_string();
        assert!(e.contains("file") && e.contains("first format"), "{e}");
    }
}
