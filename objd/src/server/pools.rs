//! Start-up of the pools beside the namespace pool: parses `--pool
//! NAME=DRIVES`, `--pool-parity NAME=EC:N` and `--storage-class
//! CLASS=PLACE`, opens each pool's drives as a deployment of its own (its
//! erasure sets, parity and format), and builds the [`Placement`] the
//! object layer places data by.

use super::ellipsis;
use super::startup::{self, StartupError};
use crate::drive::Drive;
use crate::object::cold::ColdStore;
use crate::object::placement::{DEFAULT_POOL, Placement, valid_place_name};
use crate::object::{LayerConfig, ObjectLayer};
use crate::tier::pool::PoolStore;
use std::path::PathBuf;
use std::sync::Arc;

/// A pool as the arguments give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    pub name: String,
    /// Drive directories, expanded.
    pub drives: Vec<String>,
    pub parity: Option<usize>,
}

fn split_pair<'a>(arg: &'a str, what: &str) -> Result<(&'a str, &'a str), String> {
    arg.split_once('=')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .ok_or_else(|| format!("{what} `{arg}`: expected NAME=VALUE"))
}

/// The pools of `--pool NAME=DRIVES` arguments (DRIVES: directories in
/// ellipsis form, separated by commas or spaces), in order, with the
/// parity `--pool-parity NAME=EC:N` gives each. Positional `drives`, when
/// given, are the first pool, called `standard`.
pub fn parse(drives: &[String], pools: &[String], parities: &[String]) -> Result<Vec<PoolSpec>, String> {
    let mut out = Vec::new();
    if !drives.is_empty() {
        out.push(PoolSpec {
            name: DEFAULT_POOL.into(),
            drives: drives.to_vec(),
            parity: None,
        });
    }
    for p in pools {
        let (name, list) = split_pair(p, "--pool")?;
        if !valid_place_name(name) {
            return Err(format!(
                "--pool {name}: a pool name is 1 to 63 characters of a-z, 0-9 and -"
            ));
        }
        if out.iter().any(|s: &PoolSpec| s.name == name) {
            return Err(format!("pool {name} is given twice"));
        }
        let mut drives = Vec::new();
        for pattern in list.split([',', ' ']).filter(|s| !s.is_empty()) {
            drives.extend(ellipsis::expand(pattern).map_err(|e| format!("--pool {name}: {e}"))?);
        }
        out.push(PoolSpec {
            name: name.to_owned(),
            drives,
            parity: None,
        });
    }
    for p in parities {
        let (name, parity) = split_pair(p, "--pool-parity")?;
        let parity = startup::parse_parity(parity)?;
        match out.iter_mut().skip(1).find(|s| s.name == name) {
            Some(s) => s.parity = Some(parity),
            None => {
                return Err(format!(
                    "--pool-parity {name}: no such pool besides the first (whose parity --parity sets)"
                ));
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for s in &out {
        for d in &s.drives {
            if !seen.insert(d.as_str()) {
                return Err(format!("drive {d} is given twice"));
            }
        }
    }
    Ok(out)
}

/// The `(CLASS, place)` pairs of `--storage-class CLASS=PLACE` arguments.
pub fn parse_classes(args: &[String]) -> Result<Vec<(String, String)>, String> {
    args.iter()
        .map(|a| split_pair(a, "--storage-class").map(|(c, p)| (c.to_owned(), p.to_owned())))
        .collect()
}

/// The drives of a layout, each counted in the drive metrics.
pub fn metered(drives: Vec<Vec<Option<Arc<dyn Drive>>>>) -> Vec<Vec<Option<Arc<dyn Drive>>>> {
    drives
        .into_iter()
        .map(|set| {
            set.into_iter()
                .map(|d| d.map(crate::drive::metered::Metered::wrap))
                .collect()
        })
        .collect()
}

/// A pool, opened.
pub struct OpenPool {
    pub name: String,
    pub deployment_id: String,
    pub layer: Arc<ObjectLayer>,
}

/// Refuses the drives of a pool recorded as deployment `expected` when
/// none of them holds a format, or one holds another deployment's: checked
/// before anything is written to them.
fn check_recorded(spec: &PoolSpec, expected: &str) -> anyhow::Result<()> {
    let mut formatted = 0;
    for d in &spec.drives {
        let Ok(text) = std::fs::read(std::path::Path::new(d).join(crate::drive::format::FORMAT_FILE)) else {
            continue;
        };
        let f: crate::drive::format::DriveFormat = serde_json::from_slice(&text)
            .map_err(|e| anyhow::anyhow!("pool {}: drive {d}: unreadable format: {e}", spec.name))?;
        if f.deployment_id != expected {
            anyhow::bail!(
                "the drives given for pool {} belong to another pool or deployment (drive {d}); give the drives it was formatted with",
                spec.name
            );
        }
        formatted += 1;
    }
    if formatted == 0 {
        anyhow::bail!(
            "none of the drives given for pool {} holds its format: give the drives it was formatted with",
            spec.name
        );
    }
    Ok(())
}

/// Opens (formatting on first start) the drives of `spec` as a pool, over
/// a layer configured as `config` with a buffer budget of its own (a
/// request to the namespace pool that waits on the pool must not wait on
/// credits it holds itself). `expected` is the deployment id the
/// namespace pool records for it, if any.
pub async fn open(
    spec: &PoolSpec,
    config: &LayerConfig,
    budget: crate::object::Budget,
    expected: Option<&String>,
) -> anyhow::Result<OpenPool> {
    if let Some(id) = expected {
        check_recorded(spec, id)?;
    }
    let paths: Vec<PathBuf> = spec.drives.iter().map(PathBuf::from).collect();
    let parity = spec.parity;
    let d = tokio::task::spawn_blocking(move || startup::open_deployment(&paths, None, parity))
        .await?
        .map_err(|e: StartupError| anyhow::anyhow!("pool {}: {e}", spec.name))?;
    let drives = metered(d.drives);
    let config = LayerConfig {
        budget,
        ..config.clone()
    };
    let layer = ObjectLayer::open(&d.deployment_id, drives, d.parity, config)
        .await
        .map_err(|e| anyhow::anyhow!("pool {}: {e}", spec.name))?;
    if !d.replaced.is_empty() {
        let l = Arc::clone(&layer);
        let name = spec.name.clone();
        tokio::spawn(async move {
            if let Err(e) = l.heal_all(None, 1.0, |_| {}).await {
                tracing::warn!(pool = %name, error = %e, "repopulating replacement drives failed");
            }
        });
    }
    tracing::info!(pool = %spec.name, drives = spec.drives.len(), parity = d.parity, "pool open");
    Ok(OpenPool {
        name: spec.name.clone(),
        deployment_id: d.deployment_id,
        layer,
    })
}

/// Records and checks the pools in the namespace `layer` (against what it
/// `recorded` at start), and gives it the placement they and `classes`
/// make. Returns the pools' layers, for
/// their background work.
pub async fn place(
    layer: &ObjectLayer,
    home: &str,
    (recorded, pools): (&std::collections::BTreeMap<String, String>, Vec<OpenPool>),
    classes: Vec<(String, String)>,
) -> anyhow::Result<Vec<Arc<ObjectLayer>>> {
    let ids: Vec<(String, String)> = pools
        .iter()
        .map(|p| (p.name.clone(), p.deployment_id.clone()))
        .collect();
    crate::tier::pool::register(layer, recorded, &ids)
        .await
        .map_err(anyhow::Error::msg)?;
    let mut stores: Vec<(String, Arc<dyn ColdStore>)> = Vec::new();
    let mut layers = Vec::new();
    for p in pools {
        let store = PoolStore::open(&p.name, Arc::clone(&p.layer))
            .await
            .map_err(anyhow::Error::msg)?;
        stores.push((p.name.clone(), Arc::new(store)));
        layers.push((p.name, p.layer));
    }
    let placement = Placement::new(home, stores, classes)
        .map_err(anyhow::Error::msg)?
        .with_layers(layers.clone());
    layer.set_placement(placement);
    Ok(layers.into_iter().map(|(_, l)| l).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn pool_arguments() {
        let p = parse(
            &[],
            &s(&["fast=/n/d{1...4}", "capacity=/h/a{1...2},/h/b{1...2}"]),
            &s(&["capacity=EC:1"]),
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "fast");
        assert_eq!(p[0].drives.len(), 4);
        assert_eq!(p[1].drives, s(&["/h/a1", "/h/a2", "/h/b1", "/h/b2"]));
        assert_eq!(p[1].parity, Some(1));
        let p = parse(&s(&["/d1", "/d2"]), &s(&["hdd=/h{1...4}"]), &[]).unwrap();
        assert_eq!(p[0].name, "standard");
        assert!(parse(&[], &s(&["Fast=/d{1...4}"]), &[]).is_err());
        assert!(parse(&[], &s(&["a=/d{1...4}", "a=/e{1...4}"]), &[]).is_err());
        assert!(
            parse(&[], &s(&["a=/d{1...4}", "b=/d{1...4}"]), &[])
                .unwrap_err()
                .contains("twice")
        );
        // The first pool's parity is --parity's.
        assert!(parse(&[], &s(&["a=/d{1...4}"]), &s(&["a=EC:1"])).is_err());
        assert!(parse(&[], &s(&["a"]), &[]).is_err());
        assert_eq!(
            parse_classes(&s(&["STANDARD_IA=capacity"])).unwrap(),
            vec![("STANDARD_IA".to_owned(), "capacity".to_owned())]
        );
    }
}
