//! Storage classes and where they put data. A deployment has one
//! namespace pool (the first; every record lives there, and the data of
//! STANDARD objects), optionally more pools of their own drives, and
//! remote tiers. A class names one of those places: STANDARD and the
//! namespace pool's name name the namespace pool, each other pool's name
//! in upper case names it, each remote tier's too, and aliases given at
//! start (`STANDARD_IA=capacity`) name any of them.
//!
//! The data of a version outside the namespace pool is kept as the data
//! of a remote tier is ([`super::cold`]): one framed object per version in
//! the place's store, named by a [`RemoteLoc`]; a pool's store is the
//! pool's own erasure sets (`crate::tier::pool`). So transitions, reads,
//! the journal of what may be left behind and its sweep are the same for
//! pools and remote tiers.

use super::cold::ColdStore;
use super::{ObjectLayer, ObjectResult};
use crate::meta::Version;
use std::sync::Arc;

/// Where a storage class puts data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// The namespace pool: data beside its record.
    Home,
    /// A pool's or a remote tier's store, by name (lower case).
    Store(String),
}

/// The deployment's pools and class names.
pub struct Placement {
    /// The namespace pool's name.
    home: String,
    /// The other pools in the order they were given (colder later), with
    /// their stores.
    pools: Vec<(String, Arc<dyn ColdStore>)>,
    /// Class (upper case) -> place name (lower case), in the order given.
    aliases: Vec<(String, String)>,
    /// The pools' own layers, for their administration (status, heal).
    layers: Vec<(String, Arc<ObjectLayer>)>,
}

impl std::fmt::Debug for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Placement")
            .field("home", &self.home)
            .field("pools", &self.pools.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field("aliases", &self.aliases)
            .finish()
    }
}

impl Default for Placement {
    fn default() -> Self {
        Self {
            home: DEFAULT_POOL.into(),
            pools: vec![],
            aliases: vec![],
            layers: vec![],
        }
    }
}

/// The namespace pool's name when the drives are given without one.
pub const DEFAULT_POOL: &str = "standard";

/// Whether `name` can name a pool or a remote tier: 1 to 63 characters of
/// `a-z`, `0-9` and `-`.
pub fn valid_place_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Placement {
    /// The namespace pool `home`, further `pools` (colder later), and
    /// class aliases `(CLASS, place)`, whose places must be pools or the
    /// names of remote tiers (checked when used).
    pub fn new(
        home: &str,
        pools: Vec<(String, Arc<dyn ColdStore>)>,
        aliases: Vec<(String, String)>,
    ) -> Result<Self, String> {
        let mut names = vec![home];
        for (n, _) in &pools {
            if names.contains(&n.as_str()) {
                return Err(format!("pool {n} is given twice"));
            }
            names.push(n);
        }
        for n in &names {
            if !valid_place_name(n) || n.eq_ignore_ascii_case("standard") && *n != home {
                return Err(format!(
                    "pool name {n:?}: 1 to 63 characters of a-z, 0-9 and -, and only the first pool may be called standard"
                ));
            }
        }
        let mut seen: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for (class, place) in aliases {
            let class = class.to_ascii_uppercase();
            let place = place.to_ascii_lowercase();
            let ok_class = !class.is_empty()
                && class.len() <= 63
                && class
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok_class {
                return Err(format!(
                    "storage class {class:?}: 1 to 63 characters of A-Z, 0-9, _ and -"
                ));
            }
            if class == "STANDARD" || names.iter().any(|n| n.eq_ignore_ascii_case(&class)) {
                return Err(format!("storage class {class} names a pool already"));
            }
            if seen.contains(&class) {
                return Err(format!("storage class {class} is given twice"));
            }
            if !valid_place_name(&place) {
                return Err(format!(
                    "storage class {class}: {place:?} is no pool or tier name"
                ));
            }
            seen.push(class.clone());
            out.push((class, place));
        }
        Ok(Self {
            home: home.to_owned(),
            pools,
            aliases: out,
            layers: vec![],
        })
    }

    /// The placement with the pools' own layers, by pool name.
    pub fn with_layers(mut self, layers: Vec<(String, Arc<ObjectLayer>)>) -> Self {
        self.layers = layers;
        self
    }

    /// The pools' own layers (besides the namespace pool's), by name.
    pub fn pool_layers(&self) -> &[(String, Arc<ObjectLayer>)] {
        &self.layers
    }

    /// The namespace pool's name.
    pub fn home(&self) -> &str {
        &self.home
    }

    /// The names of the pools besides the namespace pool.
    pub fn pools(&self) -> impl Iterator<Item = &str> {
        self.pools.iter().map(|(n, _)| n.as_str())
    }

    /// The store of pool `name`.
    pub(super) fn pool(&self, name: &str) -> Option<&Arc<dyn ColdStore>> {
        self.pools.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// Whether `name` is a pool's (the namespace pool's too) or a class
    /// alias, so no remote tier may take it.
    pub fn is_taken(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("standard")
            || name == self.home
            || self.pool(name).is_some()
            || self.aliases.iter().any(|(c, _)| c.eq_ignore_ascii_case(name))
    }

    /// Where `class` puts data, as far as the pools and aliases tell;
    /// `None` for a class that may name a remote tier.
    fn known(&self, class: &str) -> Option<Place> {
        let target = self.target(class);
        if class.eq_ignore_ascii_case("STANDARD") || target == self.home {
            Some(Place::Home)
        } else if self.pool(&target).is_some() {
            Some(Place::Store(target))
        } else {
            None
        }
    }

    /// The place `class` names: its alias's, else its own name in lower
    /// case.
    fn target(&self, class: &str) -> String {
        let upper = class.to_ascii_uppercase();
        match self.aliases.iter().find(|(c, _)| *c == upper) {
            Some((_, p)) => p.clone(),
            None => upper.to_ascii_lowercase(),
        }
    }

    /// The class a place is reported as: the first alias naming it, else
    /// its name in upper case (STANDARD for the namespace pool).
    pub fn class_name(&self, place: &str) -> String {
        if let Some((c, _)) = self.aliases.iter().find(|(_, p)| p == place) {
            return c.clone();
        }
        if place == self.home {
            return "STANDARD".into();
        }
        place.to_ascii_uppercase()
    }

    /// How cold a place is: the namespace pool 0, the other pools in the
    /// order given, remote tiers coldest. Lifecycle rules move data only
    /// to colder places.
    pub fn rank(&self, place: Option<&str>) -> usize {
        match place {
            None => 0,
            Some(p) if p == self.home => 0,
            Some(p) => self
                .pools
                .iter()
                .position(|(n, _)| n == p)
                .map_or(usize::MAX, |i| i + 1),
        }
    }
}

impl ObjectLayer {
    /// Sets the pools and class names (once, before serving; later calls
    /// change nothing).
    pub fn set_placement(&self, p: Placement) {
        let _ = self.cold.placement.set(p);
    }

    /// The pools and class names.
    pub fn placement(&self) -> &Placement {
        self.cold.placement()
    }

    /// Where `class` puts data; `None` for a class nothing here offers.
    pub async fn place_of(&self, class: &str) -> ObjectResult<Option<Place>> {
        let p = self.placement();
        if let Some(known) = p.known(class) {
            return Ok(Some(known));
        }
        let tier = p.target(class);
        Ok(self.tier_exists(&tier).await?.then_some(Place::Store(tier)))
    }

    /// The storage class a version's data is in, when not the namespace
    /// pool's (STANDARD, which S3 leaves out of GET and HEAD).
    pub fn class_of(&self, v: &Version) -> Option<String> {
        v.remote().map(|r| self.placement().class_name(&r.tier))
    }
}
