//! Identities and their policies: IAM users with access keys, groups,
//! and managed policies attached to users and groups.
//!
//! The state lives in the drives' `config` table (`object::config`): on
//! every drive, changed under a deployment-wide lock with each document's
//! change a compare-and-set on a write quorum of every set, so it survives
//! restarts and lost drives like bucket records do. Secrets are stored
//! sealed ([`seal`]). Every node keeps the whole state in memory, parsed;
//! a change is effective on the next request of the node that made it,
//! and other nodes reload on the change's notice (or, while notices do not
//! arrive, at most a second after their last read of the drives).

pub mod model;
pub mod seal;
mod svcacct;

use crate::object::{ObjectError, ObjectLayer, config::ConfigChange};
use crate::policy::{Policy, PolicyError};
use model::{
    GROUP_PREFIX, GroupDoc, KeyDoc, POLICY_PREFIX, PolicyDoc, SVCACCT_PREFIX, SvcAcctDoc, USER_PREFIX,
    UserDoc,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The configuration topic (and lock) of IAM changes.
const TOPIC: &str = "iam";
/// Longest use of the in-memory state while change notices do not arrive.
const STALE_AFTER: Duration = Duration::from_secs(1);
/// Access keys a user may have, as in AWS.
pub const MAX_KEYS: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error("{0}")]
    NoSuchEntity(String),
    #[error("{0}")]
    EntityAlreadyExists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    DeleteConflict(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error(transparent)]
    Storage(#[from] ObjectError),
}

pub type IamResult<T> = Result<T, IamError>;

impl From<PolicyError> for IamError {
    fn from(e: PolicyError) -> Self {
        IamError::MalformedPolicyDocument(e.to_string())
    }
}

/// An authenticated IAM user (the root account is not one), possibly
/// through one of its service accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub arn: String,
    /// A service account's narrowing policy: a request must be allowed by
    /// it as well as by the user's rights.
    pub narrowed: Option<Arc<Policy>>,
}

impl Identity {
    /// The condition keys that describe the user.
    pub fn describe(&self, ctx: &mut crate::policy::Context) {
        ctx.set("aws:username", self.user.as_str());
        ctx.set("aws:userid", self.user.as_str());
        ctx.set("aws:PrincipalArn", self.arn.as_str());
        ctx.set("aws:PrincipalType", "User");
    }
}

/// A usable access key.
#[derive(Clone)]
struct Key {
    user: String,
    secret: String,
    narrowed: Option<Arc<Policy>>,
}

/// What a user or group a policy is attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    User(String),
    Group(String),
}

/// The state every node holds in memory.
#[derive(Default)]
struct State {
    users: BTreeMap<String, UserDoc>,
    groups: BTreeMap<String, GroupDoc>,
    policies: BTreeMap<String, PolicyDoc>,
    parsed: HashMap<String, Arc<Policy>>,
    svcaccts: BTreeMap<String, SvcAcctDoc>,
    /// Enabled keys and service accounts of enabled users.
    keys: HashMap<String, Key>,
}

// Secrets stay out of debug output.
impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("users", &self.users.len())
            .field("groups", &self.groups.len())
            .field("policies", &self.policies.len())
            .finish_non_exhaustive()
    }
}

/// Decides a request over `identity` policies (by name) and the policy of
/// `bucket` (if it has one that parses), as IAM combines them.
pub fn decide_with_bucket(
    layer: &ObjectLayer,
    identity: &[(String, Arc<Policy>)],
    bucket: Option<&str>,
    who: crate::policy::Principal<'_>,
    action: &str,
    resource: &str,
    ctx: &crate::policy::Context,
) -> crate::policy::Verdict {
    let bucket_policy = bucket.and_then(|b| {
        let text = layer
            .bucket_setting(b, crate::policy::BUCKET_SETTING)
            .ok()
            .flatten()?;
        Policy::parse(&String::from_utf8_lossy(&text), b).ok()
    });
    let all = identity
        .iter()
        .map(|(n, p)| (n.as_str(), p.as_ref()))
        .chain(bucket_policy.as_ref().map(|p| ("bucket policy", p)));
    crate::policy::decide(all, who, action, resource, ctx)
}

/// The deployment's identities.
#[derive(Debug)]
pub struct Iam {
    layer: Arc<ObjectLayer>,
    sealer: seal::Sealer,
    account: String,
    state: RwLock<Arc<State>>,
    loaded: Mutex<Instant>,
}

fn decode<T: serde::de::DeserializeOwned>(
    docs: &BTreeMap<String, Vec<u8>>,
    prefix: &str,
) -> BTreeMap<String, T> {
    docs.iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix(prefix)?;
            match serde_json::from_slice(v) {
                Ok(d) => Some((name.to_owned(), d)),
                Err(e) => {
                    tracing::error!(document = %k, error = %e, "an IAM document does not decode; it is skipped");
                    None
                }
            }
        })
        .collect()
}

fn encode<T: serde::Serialize>(doc: &T) -> Option<Vec<u8>> {
    Some(serde_json::to_vec(doc).expect("IAM documents serialize"))
}

/// IAM's rule for names ([`model::valid_name`]), as an error.
fn check_name(kind: &str, name: &str, max: usize) -> IamResult<()> {
    if model::valid_name(name, max) {
        Ok(())
    } else {
        Err(IamError::Invalid(format!(
            "{name:?} is not a valid {kind} name (1-{max} letters, digits and +=,.@_-)"
        )))
    }
}

fn now_ns() -> i64 {
    crate::object::now_ns()
}

impl Iam {
    /// Loads the state and follows other nodes' changes of it.
    pub async fn open(
        layer: Arc<ObjectLayer>,
        root_secret: &str,
        deployment_id: &str,
    ) -> IamResult<Arc<Self>> {
        let account = format!(
            "{:012}",
            xxhash_rust::xxh3::xxh3_64(deployment_id.as_bytes()) % 1_000_000_000_000
        );
        let iam = Arc::new(Self {
            layer: Arc::clone(&layer),
            sealer: seal::Sealer::derive(root_secret),
            account,
            state: RwLock::new(Arc::new(State::default())),
            loaded: Mutex::new(Instant::now()),
        });
        iam.reload().await?;
        let weak = Arc::downgrade(&iam);
        layer.on_config_change(
            TOPIC,
            Arc::new(move || {
                let weak = weak.clone();
                Box::pin(async move {
                    if let Some(iam) = weak.upgrade()
                        && let Err(e) = iam.reload().await
                    {
                        tracing::warn!(error = %e, "reloading IAM after another node's change failed");
                    }
                })
            }),
        );
        Ok(iam)
    }

    /// Reads the whole state from the drives.
    pub async fn reload(&self) -> IamResult<()> {
        let docs = self.layer.config_documents("iam/").await?;
        let state = self.build(&docs);
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(state);
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        Ok(())
    }

    fn build(&self, docs: &BTreeMap<String, Vec<u8>>) -> State {
        let users: BTreeMap<String, UserDoc> = decode(docs, USER_PREFIX);
        let groups = decode(docs, GROUP_PREFIX);
        let policies: BTreeMap<String, PolicyDoc> = decode(docs, POLICY_PREFIX);
        let parsed = policies
            .iter()
            .filter_map(|(n, p)| Some((n.clone(), Arc::new(Policy::parse_identity(&p.document).ok()?))))
            .collect();
        let mut keys = HashMap::new();
        for u in users.values().filter(|u| u.enabled) {
            for k in u.keys.iter().filter(|k| k.enabled) {
                match self.sealer.open(&k.access_key, &k.sealed_secret) {
                    Ok(secret) => {
                        let key = Key {
                            user: u.name.clone(),
                            secret,
                            narrowed: None,
                        };
                        keys.insert(k.access_key.clone(), key);
                    }
                    Err(e) => {
                        tracing::error!(user = %u.name, access_key = %k.access_key, error = %e, "access key unusable")
                    }
                }
            }
        }
        let svcaccts: BTreeMap<String, SvcAcctDoc> = decode(docs, SVCACCT_PREFIX);
        for a in svcaccts.values().filter(|a| a.enabled) {
            if !users.get(&a.parent).is_some_and(|u| u.enabled) {
                continue;
            }
            let narrowed = match a.policy.as_deref().map(Policy::parse_identity) {
                None => None,
                Some(Ok(p)) => Some(Arc::new(p)),
                Some(Err(e)) => {
                    tracing::error!(access_key = %a.access_key, error = %e, "service account policy unusable");
                    continue;
                }
            };
            match self.sealer.open(&a.access_key, &a.sealed_secret) {
                Ok(secret) => {
                    let key = Key {
                        user: a.parent.clone(),
                        secret,
                        narrowed,
                    };
                    keys.insert(a.access_key.clone(), key);
                }
                Err(e) => tracing::error!(access_key = %a.access_key, error = %e, "service account unusable"),
            }
        }
        State {
            users,
            groups,
            policies,
            parsed,
            svcaccts,
            keys,
        }
    }

    /// The state, read again from the drives first when change notices
    /// are not arriving and the last read is over [`STALE_AFTER`] old.
    async fn current(&self) -> Arc<State> {
        let stale = self.loaded.lock().unwrap_or_else(|e| e.into_inner()).elapsed() > STALE_AFTER;
        if stale
            && !self.layer.coherent()
            && let Err(e) = self.reload().await
        {
            tracing::debug!(error = %e, "IAM reread failed; using what is in memory");
        }
        Arc::clone(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The ARN of a user.
    pub fn user_arn(&self, user: &str) -> String {
        format!("arn:aws:iam::{}:user/{user}", self.account)
    }

    /// The user and secret of an enabled access key of an enabled user.
    pub async fn secret_of(&self, access_key: &str) -> Option<(Identity, String)> {
        let state = self.current().await;
        let key = state.keys.get(access_key)?;
        Some((
            Identity {
                user: key.user.clone(),
                arn: self.user_arn(&key.user),
                narrowed: key.narrowed.clone(),
            },
            key.secret.clone(),
        ))
    }

    pub async fn user_exists(&self, name: &str) -> bool {
        self.current().await.users.contains_key(name)
    }

    pub async fn is_svcacct(&self, access_key: &str) -> bool {
        self.current().await.svcaccts.contains_key(access_key)
    }

    /// The user an access key belongs to, if it is usable.
    pub async fn identity(&self, access_key: &str) -> Option<Identity> {
        self.secret_of(access_key).await.map(|(i, _)| i)
    }

    /// The policies that apply to `user`, by name: attached to it and to
    /// its groups.
    pub async fn policies_of(&self, user: &str) -> Vec<(String, Arc<Policy>)> {
        let state = self.current().await;
        let Some(u) = state.users.get(user) else {
            return Vec::new();
        };
        let mut names: Vec<&String> = u.policies.iter().collect();
        for g in state
            .groups
            .values()
            .filter(|g| g.members.iter().any(|m| m == user))
        {
            names.extend(&g.policies);
        }
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter_map(|n| Some((n.clone(), Arc::clone(state.parsed.get(n)?))))
            .collect()
    }

    /// A new enabled access key (sealed) and its secret.
    fn new_key(&self) -> (KeyDoc, String) {
        let (ak, sk) = (model::new_access_key(), model::new_secret());
        let key = KeyDoc {
            sealed_secret: self.sealer.seal(&ak, &sk),
            access_key: ak,
            enabled: true,
            created_ns: now_ns(),
        };
        (key, sk)
    }

    /// Runs a change on the documents as the drives hold them.
    async fn change<T: Send>(&self, f: impl FnOnce(&mut Docs) -> IamResult<T> + Send) -> IamResult<T> {
        let mut err = None;
        let out = self
            .layer
            .change_config(TOPIC, "iam/", |raw| {
                let mut docs = Docs {
                    users: decode(raw, USER_PREFIX),
                    groups: decode(raw, GROUP_PREFIX),
                    policies: decode(raw, POLICY_PREFIX),
                    svcaccts: decode(raw, SVCACCT_PREFIX),
                    writes: Vec::new(),
                };
                match f(&mut docs) {
                    Ok(v) => Ok((docs.writes, Some(v))),
                    Err(e) => {
                        err = Some(e);
                        Ok((Vec::new(), None))
                    }
                }
            })
            .await;
        // A refused change wrote nothing; anything else (even a commit that
        // failed part-way) is read back.
        if let Some(e) = err {
            return Err(e);
        }
        let reloaded = self.reload().await;
        let v = out?;
        reloaded?;
        Ok(v.expect("a change without an error has a result"))
    }

    pub async fn add_user(&self, name: &str) -> IamResult<(String, String)> {
        check_name("user", name, 64)?;
        let (key, sk) = self.new_key();
        let ak = key.access_key.clone();
        self.change(|d| {
            if d.users.contains_key(name) {
                return Err(IamError::EntityAlreadyExists(format!(
                    "user {name} already exists"
                )));
            }
            d.put_user(UserDoc {
                name: name.to_owned(),
                enabled: true,
                created_ns: now_ns(),
                keys: vec![key],
                policies: Vec::new(),
            });
            Ok(())
        })
        .await?;
        Ok((ak, sk))
    }

    pub async fn remove_user(&self, name: &str) -> IamResult<()> {
        self.change(|d| {
            d.user(name)?;
            d.users.remove(name);
            d.writes.push((format!("{USER_PREFIX}{name}"), None));
            for a in d.svcaccts.values().filter(|a| a.parent == name) {
                d.writes.push((format!("{SVCACCT_PREFIX}{}", a.access_key), None));
            }
            let groups: Vec<GroupDoc> = d
                .groups
                .values()
                .filter(|g| g.members.iter().any(|m| m == name))
                .cloned()
                .collect();
            for mut g in groups {
                g.members.retain(|m| m != name);
                d.put_group(g);
            }
            Ok(())
        })
        .await
    }

    pub async fn set_user_enabled(&self, name: &str, enabled: bool) -> IamResult<()> {
        self.change(|d| {
            let mut u = d.user(name)?.clone();
            u.enabled = enabled;
            d.put_user(u);
            Ok(())
        })
        .await
    }

    /// A new access key of `user`: `(access key, secret)`.
    pub async fn add_key(&self, user: &str) -> IamResult<(String, String)> {
        let (key, sk) = self.new_key();
        let ak = key.access_key.clone();
        self.change(|d| {
            let mut u = d.user(user)?.clone();
            if u.keys.len() >= MAX_KEYS {
                return Err(IamError::LimitExceeded(format!(
                    "user {user} already has {MAX_KEYS} access keys"
                )));
            }
            u.keys.push(key);
            d.put_user(u);
            Ok(())
        })
        .await?;
        Ok((ak, sk))
    }

    /// Removes (`None`) or enables/disables an access key.
    pub async fn change_key(&self, access_key: &str, enabled: Option<bool>) -> IamResult<()> {
        self.change(|d| {
            let mut u = d
                .users
                .values()
                .find(|u| u.keys.iter().any(|k| k.access_key == access_key))
                .cloned()
                .ok_or_else(|| IamError::NoSuchEntity(format!("no access key {access_key}")))?;
            match enabled {
                None => u.keys.retain(|k| k.access_key != access_key),
                Some(on) => u
                    .keys
                    .iter_mut()
                    .filter(|k| k.access_key == access_key)
                    .for_each(|k| k.enabled = on),
            }
            d.put_user(u);
            Ok(())
        })
        .await
    }

    pub async fn put_policy(&self, name: &str, document: &str) -> IamResult<()> {
        check_name("policy", name, 128)?;
        Policy::parse_identity(document)?;
        self.change(|d| {
            let created_ns = d.policies.get(name).map_or_else(now_ns, |p| p.created_ns);
            d.writes.push((
                format!("{POLICY_PREFIX}{name}"),
                encode(&PolicyDoc {
                    name: name.to_owned(),
                    created_ns,
                    document: document.to_owned(),
                }),
            ));
            Ok(())
        })
        .await
    }

    pub async fn remove_policy(&self, name: &str) -> IamResult<()> {
        self.change(|d| {
            if !d.policies.contains_key(name) {
                return Err(IamError::NoSuchEntity(format!("no policy {name}")));
            }
            let holders: Vec<String> = d
                .users
                .values()
                .filter(|u| u.policies.iter().any(|p| p == name))
                .map(|u| format!("user {}", u.name))
                .chain(
                    d.groups
                        .values()
                        .filter(|g| g.policies.iter().any(|p| p == name))
                        .map(|g| format!("group {}", g.name)),
                )
                .collect();
            if !holders.is_empty() {
                return Err(IamError::DeleteConflict(format!(
                    "policy {name} is attached to {}; detach it first",
                    holders.join(", ")
                )));
            }
            d.writes.push((format!("{POLICY_PREFIX}{name}"), None));
            Ok(())
        })
        .await
    }

    /// Attaches (or with `attach` false detaches) a policy.
    pub async fn attach(&self, policy: &str, to: &Holder, attach: bool) -> IamResult<()> {
        self.change(|d| {
            if !d.policies.contains_key(policy) {
                return Err(IamError::NoSuchEntity(format!("no policy {policy}")));
            }
            let edit = |list: &mut Vec<String>| {
                list.retain(|p| p != policy);
                if attach {
                    list.push(policy.to_owned());
                }
            };
            match to {
                Holder::User(u) => {
                    let mut doc = d.user(u)?.clone();
                    edit(&mut doc.policies);
                    d.put_user(doc);
                }
                Holder::Group(g) => {
                    let mut doc = d.group(g)?.clone();
                    edit(&mut doc.policies);
                    d.put_group(doc);
                }
            }
            Ok(())
        })
        .await
    }

    pub async fn add_group(&self, name: &str) -> IamResult<()> {
        check_name("group", name, 128)?;
        self.change(|d| {
            if d.groups.contains_key(name) {
                return Err(IamError::EntityAlreadyExists(format!(
                    "group {name} already exists"
                )));
            }
            d.put_group(GroupDoc {
                name: name.to_owned(),
                created_ns: now_ns(),
                members: Vec::new(),
                policies: Vec::new(),
            });
            Ok(())
        })
        .await
    }

    pub async fn remove_group(&self, name: &str) -> IamResult<()> {
        self.change(|d| {
            d.group(name)?;
            d.writes.push((format!("{GROUP_PREFIX}{name}"), None));
            Ok(())
        })
        .await
    }

    /// Adds `user` to `group` (or with `add` false removes it).
    pub async fn set_member(&self, group: &str, user: &str, add: bool) -> IamResult<()> {
        self.change(|d| {
            d.user(user)?;
            let mut g = d.group(group)?.clone();
            g.members.retain(|m| m != user);
            if add {
                g.members.push(user.to_owned());
            }
            d.put_group(g);
            Ok(())
        })
        .await
    }

    /// Users, groups and policies for listing: no secrets.
    pub async fn summary(&self) -> serde_json::Value {
        let s = self.current().await;
        let users: Vec<_> = s
            .users
            .values()
            .map(|u| {
                let groups: Vec<&String> = s
                    .groups
                    .values()
                    .filter(|g| g.members.contains(&u.name))
                    .map(|g| &g.name)
                    .collect();
                serde_json::json!({
                    "name": u.name, "arn": self.user_arn(&u.name), "enabled": u.enabled,
                    "policies": u.policies, "groups": groups,
                    "access_keys": u.keys.iter().map(|k| serde_json::json!({
                        "access_key": k.access_key, "enabled": k.enabled })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let groups: Vec<_> = s
            .groups
            .values()
            .map(|g| serde_json::json!({ "name": g.name, "members": g.members, "policies": g.policies }))
            .collect();
        let policies: Vec<_> = s
            .policies
            .values()
            .map(|p| serde_json::json!({ "name": p.name, "document": p.document }))
            .collect();
        let svcaccts: Vec<_> = s
            .svcaccts
            .values()
            .map(|a| {
                serde_json::json!({ "access_key": a.access_key, "parent": a.parent,
                    "enabled": a.enabled, "policy": a.policy })
            })
            .collect();
        serde_json::json!({ "users": users, "groups": groups, "policies": policies, "service_accounts": svcaccts })
    }
}

/// The documents a change sees, and what it writes.
struct Docs {
    users: BTreeMap<String, UserDoc>,
    groups: BTreeMap<String, GroupDoc>,
    policies: BTreeMap<String, PolicyDoc>,
    svcaccts: BTreeMap<String, SvcAcctDoc>,
    writes: ConfigChange,
}

impl Docs {
    fn user(&self, name: &str) -> IamResult<&UserDoc> {
        self.users
            .get(name)
            .ok_or_else(|| IamError::NoSuchEntity(format!("no user {name}")))
    }

    fn group(&self, name: &str) -> IamResult<&GroupDoc> {
        self.groups
            .get(name)
            .ok_or_else(|| IamError::NoSuchEntity(format!("no group {name}")))
    }

    fn put_user(&mut self, u: UserDoc) {
        self.writes.push((format!("{USER_PREFIX}{}", u.name), encode(&u)));
        self.users.insert(u.name.clone(), u);
    }

    fn put_group(&mut self, g: GroupDoc) {
        self.writes
            .push((format!("{GROUP_PREFIX}{}", g.name), encode(&g)));
        self.groups.insert(g.name.clone(), g);
    }
}
