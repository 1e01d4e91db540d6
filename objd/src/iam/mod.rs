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

mod change;
mod idp;
pub mod ldap;
pub mod model;
pub mod openid;
pub mod seal;
pub mod sts;
mod svcacct;

use crate::object::{ObjectError, ObjectLayer};
use crate::policy::{Policy, PolicyError};
use model::{
    GROUP_PREFIX, GroupDoc, IDP_PREFIX, IdpDoc, POLICY_PREFIX, PolicyDoc, SVCACCT_PREFIX, SvcAcctDoc,
    USER_PREFIX, UserDoc,
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

impl IamError {
    /// IAM's error code and HTTP status, as both the IAM API and the admin
    /// API answer them (`None`: a storage failure, which each answers in
    /// its own terms).
    pub fn code(&self) -> Option<(http::StatusCode, &'static str)> {
        use http::StatusCode as S;
        Some(match self {
            IamError::NoSuchEntity(_) => (S::NOT_FOUND, "NoSuchEntity"),
            IamError::EntityAlreadyExists(_) => (S::CONFLICT, "EntityAlreadyExists"),
            IamError::DeleteConflict(_) => (S::CONFLICT, "DeleteConflict"),
            IamError::LimitExceeded(_) => (S::CONFLICT, "LimitExceeded"),
            IamError::MalformedPolicyDocument(_) => (S::BAD_REQUEST, "MalformedPolicyDocument"),
            IamError::Invalid(_) => (S::BAD_REQUEST, "InvalidInput"),
            IamError::Storage(_) => return None,
        })
    }
}

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
    /// Policies that narrow the user's rights (a service account's, a
    /// session's): a request must be allowed by each of them as well.
    pub narrowed: Vec<Arc<Policy>>,
    /// For temporary credentials, the session's ARN.
    pub session: Option<String>,
}

impl Identity {
    /// Whether this is the root account acting through one of its service
    /// accounts.
    pub fn is_root(&self) -> bool {
        self.user.is_empty()
    }

    /// The condition keys that describe the user.
    pub fn describe(&self, ctx: &mut crate::policy::Context) {
        if self.is_root() {
            ctx.set("aws:PrincipalArn", self.arn.as_str());
            ctx.set("aws:PrincipalType", "Account");
            return;
        }
        ctx.set("aws:username", self.user.as_str());
        ctx.set("aws:userid", self.user.as_str());
        ctx.set("aws:PrincipalArn", self.arn.as_str());
        let kind = if self.session.is_some() {
            "AssumedRole"
        } else {
            "User"
        };
        ctx.set("aws:PrincipalType", kind);
    }
}

/// A usable access key.
#[derive(Clone)]
struct Key {
    user: String,
    secret: String,
    narrowed: Vec<Arc<Policy>>,
}

/// What a user or group a policy is attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    User(String),
    Group(String),
}

/// The state every node holds in memory.
#[derive(Default)]
pub struct State {
    pub users: BTreeMap<String, UserDoc>,
    pub groups: BTreeMap<String, GroupDoc>,
    pub policies: BTreeMap<String, PolicyDoc>,
    parsed: HashMap<String, Arc<Policy>>,
    /// Inline policies of users, parsed: `(user, name)`.
    inline: HashMap<(String, String), Arc<Policy>>,
    pub svcaccts: BTreeMap<String, SvcAcctDoc>,
    pub idps: BTreeMap<String, IdpDoc>,
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

/// The policy of the root account: everything.
pub fn everything() -> Arc<Policy> {
    static ALL: std::sync::LazyLock<Arc<Policy>> = std::sync::LazyLock::new(|| {
        Arc::new(
            Policy::parse_identity(r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}"#)
                .expect("a valid policy"),
        )
    });
    Arc::clone(&ALL)
}

/// The policy of `bucket`, if it has one that parses (one that does not
/// grants nothing).
pub fn bucket_policy(layer: &ObjectLayer, bucket: &str) -> Option<Policy> {
    let text = layer
        .bucket_setting(bucket, crate::policy::BUCKET_SETTING)
        .ok()
        .flatten()?;
    Policy::parse(&String::from_utf8_lossy(&text), bucket).ok()
}

/// Decides a request over `identity` policies (by name) and a bucket's
/// policy ([`bucket_policy`]), as IAM combines them.
pub fn decide_with_bucket(
    identity: &[(String, Arc<Policy>)],
    bucket_policy: Option<&Policy>,
    who: crate::policy::Principal<'_>,
    action: &str,
    resource: &str,
    ctx: &crate::policy::Context,
) -> crate::policy::Verdict {
    let all = identity
        .iter()
        .map(|(n, p)| (n.as_str(), p.as_ref()))
        .chain(bucket_policy.map(|p| ("bucket policy", p)));
    crate::policy::decide(all, who, action, resource, ctx)
}

/// The deployment's identities.
#[derive(Debug)]
pub struct Iam {
    layer: Arc<ObjectLayer>,
    sealer: seal::Sealer,
    sessions: sts::SessionKeys,
    /// Session policies by text, parsed ([`sts`]).
    session_policies: Mutex<HashMap<String, Arc<Policy>>>,
    openid: openid::OpenId,
    /// How LDAP servers are trusted.
    ldap_tls: Arc<rustls::ClientConfig>,
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
    /// Loads the state and follows other nodes' changes of it. `outbound`
    /// is how identity providers are trusted.
    pub async fn open(
        layer: Arc<ObjectLayer>,
        root_secret: &str,
        deployment_id: &str,
        outbound: &strata_s3client::Tls,
    ) -> IamResult<Arc<Self>> {
        let fetcher = strata_s3client::Fetcher::new(outbound, Duration::from_secs(10), 1 << 20)
            .map_err(|e| IamError::Invalid(format!("outbound TLS: {e}")))?;
        let ldap_tls = Arc::new(
            outbound
                .client_config()
                .map_err(|e| IamError::Invalid(format!("outbound TLS: {e}")))?,
        );
        let account = format!(
            "{:012}",
            xxhash_rust::xxh3::xxh3_64(deployment_id.as_bytes()) % 1_000_000_000_000
        );
        let iam = Arc::new(Self {
            layer: Arc::clone(&layer),
            sealer: seal::Sealer::derive(root_secret),
            sessions: sts::SessionKeys::derive(root_secret),
            session_policies: Mutex::new(HashMap::new()),
            openid: openid::OpenId::new(fetcher),
            ldap_tls,
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
        let mut inline = HashMap::new();
        for u in users.values() {
            for (name, doc) in &u.inline {
                match Policy::parse_identity(doc) {
                    Ok(p) => {
                        inline.insert((u.name.clone(), name.clone()), Arc::new(p));
                    }
                    Err(e) => {
                        tracing::error!(user = %u.name, policy = %name, error = %e, "inline policy unusable")
                    }
                }
            }
        }
        let mut keys = HashMap::new();
        for u in users.values().filter(|u| u.enabled) {
            for k in u.keys.iter().filter(|k| k.enabled) {
                match self.sealer.open(&k.access_key, &k.sealed_secret) {
                    Ok(secret) => {
                        let key = Key {
                            user: u.name.clone(),
                            secret,
                            narrowed: Vec::new(),
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
            // The root account's service accounts have the parent "".
            if !a.parent.is_empty() && !users.get(&a.parent).is_some_and(|u| u.enabled) {
                continue;
            }
            let narrowed = match a.policy.as_deref().map(Policy::parse_identity) {
                None => Vec::new(),
                Some(Ok(p)) => vec![Arc::new(p)],
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
            inline,
            svcaccts,
            idps: decode(docs, IDP_PREFIX),
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
        let arn = if key.user.is_empty() {
            self.root_arn()
        } else {
            self.user_arn(&key.user)
        };
        Some((
            Identity {
                user: key.user.clone(),
                arn,
                narrowed: key.narrowed.clone(),
                session: None,
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
    /// its groups, and its inline policies.
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
        let inline = u.inline.keys().filter_map(|n| {
            let p = state.inline.get(&(user.to_owned(), n.clone()))?;
            Some((format!("inline policy {n}"), Arc::clone(p)))
        });
        names
            .into_iter()
            .filter_map(|n| Some((n.clone(), Arc::clone(state.parsed.get(n)?))))
            .chain(inline)
            .collect()
    }

    /// The state as this node holds it (no secrets in it).
    pub async fn snapshot(&self) -> Arc<State> {
        self.current().await
    }

    /// The 12-digit account id of the deployment, in ARNs.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The ARN of the root account.
    pub fn root_arn(&self) -> String {
        format!("arn:aws:iam::{}:root", self.account)
    }

    /// The ARN of a group.
    pub fn group_arn(&self, group: &str) -> String {
        format!("arn:aws:iam::{}:group/{group}", self.account)
    }

    /// The ARN of a managed policy.
    pub fn policy_arn(&self, policy: &str) -> String {
        format!("arn:aws:iam::{}:policy/{policy}", self.account)
    }

    /// Managed policies by name (those that exist).
    pub async fn policies_named(&self, names: &[String]) -> Vec<(String, Arc<Policy>)> {
        let state = self.current().await;
        names
            .iter()
            .filter_map(|n| Some((n.clone(), Arc::clone(state.parsed.get(n)?))))
            .collect()
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
        let idps: Vec<IdpDoc> = s
            .idps
            .values()
            .cloned()
            .map(|mut p| {
                if let model::IdpConfig::Ldap(l) = &mut p.config {
                    l.sealed_lookup_password.clear();
                }
                p
            })
            .collect();
        serde_json::json!({ "users": users, "groups": groups, "policies": policies,
            "service_accounts": svcaccts, "identity_providers": idps })
    }
}
