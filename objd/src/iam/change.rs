//! Changes of the IAM state: users, access keys, policies, attachments,
//! groups and memberships. Each runs under the IAM lock on the documents
//! as the drives hold them ([`Iam::change`]) and is read back before it
//! answers, so it is effective on the node's next request.

use super::model::{
    self, GROUP_PREFIX, GroupDoc, IDP_PREFIX, IdpDoc, KeyDoc, POLICY_PREFIX, PolicyDoc, SVCACCT_PREFIX,
    SvcAcctDoc, USER_PREFIX, UserDoc,
};
use super::{Holder, Iam, IamError, IamResult, MAX_KEYS, TOPIC, check_name, decode, encode, now_ns};
use crate::object::config::ConfigChange;
use crate::policy::Policy;
use std::collections::BTreeMap;

impl Iam {
    /// A new enabled access key (sealed) and its secret.
    pub(super) fn new_key(&self) -> (KeyDoc, String) {
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
    pub(super) async fn change<T: Send>(
        &self,
        f: impl FnOnce(&mut Docs) -> IamResult<T> + Send,
    ) -> IamResult<T> {
        let mut err = None;
        let out = self
            .layer
            .change_config(TOPIC, "iam/", |raw| {
                let mut docs = Docs {
                    users: decode(raw, USER_PREFIX),
                    groups: decode(raw, GROUP_PREFIX),
                    policies: decode(raw, POLICY_PREFIX),
                    svcaccts: decode(raw, SVCACCT_PREFIX),
                    idps: decode(raw, IDP_PREFIX),
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

    /// A new user with an access key: `(access key, secret)`.
    pub async fn add_user(&self, name: &str) -> IamResult<(String, String)> {
        let (key, sk) = self.new_key();
        let ak = key.access_key.clone();
        self.insert_user(name, Some(key)).await?;
        Ok((ak, sk))
    }

    /// A new user without access keys (IAM's `CreateUser`).
    pub async fn create_user(&self, name: &str) -> IamResult<()> {
        self.insert_user(name, None).await
    }

    async fn insert_user(&self, name: &str, key: Option<KeyDoc>) -> IamResult<()> {
        check_name("user", name, 64)?;
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
                keys: key.into_iter().collect(),
                policies: Vec::new(),
                inline: BTreeMap::new(),
            });
            Ok(())
        })
        .await
    }

    /// Deletes a user. `strict` refuses, as IAM's `DeleteUser` does, while
    /// the user has access keys, service accounts, policies or groups;
    /// otherwise those go with it.
    pub async fn remove_user(&self, name: &str, strict: bool) -> IamResult<()> {
        self.change(|d| {
            let u = d.user(name)?;
            if strict {
                let mut held = Vec::new();
                if !u.keys.is_empty() {
                    held.push("access keys");
                }
                if d.svcaccts.values().any(|a| a.parent == name) {
                    held.push("service accounts");
                }
                if !u.policies.is_empty() {
                    held.push("attached policies");
                }
                if !u.inline.is_empty() {
                    held.push("inline policies");
                }
                if d.groups.values().any(|g| g.members.iter().any(|m| m == name)) {
                    held.push("group memberships");
                }
                if !held.is_empty() {
                    return Err(IamError::DeleteConflict(format!(
                        "Cannot delete entity, must remove {} first.",
                        held.join(", ")
                    )));
                }
            }
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

    /// Creates or replaces a managed policy.
    pub async fn put_policy(&self, name: &str, document: &str) -> IamResult<()> {
        self.write_policy(name, document, None).await.map(|_| ())
    }

    /// Creates a managed policy (`exists: Some(false)`: refused if it
    /// exists) or replaces its document with a new version (`Some(true)`:
    /// refused if it does not). Answers the document's version.
    pub async fn write_policy(&self, name: &str, document: &str, exists: Option<bool>) -> IamResult<u32> {
        check_name("policy", name, 128)?;
        Policy::parse_identity(document)?;
        self.change(|d| {
            let old = d.policies.get(name);
            match (exists, old) {
                (Some(false), Some(_)) => {
                    return Err(IamError::EntityAlreadyExists(format!(
                        "A policy called {name} already exists."
                    )));
                }
                (Some(true), None) => return Err(IamError::NoSuchEntity(format!("no policy {name}"))),
                _ => {}
            }
            let doc = PolicyDoc {
                name: name.to_owned(),
                created_ns: old.map_or_else(now_ns, |p| p.created_ns),
                document: document.to_owned(),
                version: old.map_or(1, |p| p.version + 1),
                updated_ns: now_ns(),
            };
            let version = doc.version;
            d.writes.push((format!("{POLICY_PREFIX}{name}"), encode(&doc)));
            Ok(version)
        })
        .await
    }

    /// Sets (`Some`) or deletes (`None`) an inline policy of a user.
    pub async fn set_user_policy(&self, user: &str, name: &str, document: Option<&str>) -> IamResult<()> {
        check_name("policy", name, 128)?;
        if let Some(doc) = document {
            Policy::parse_identity(doc)?;
        }
        self.change(|d| {
            let mut u = d.user(user)?.clone();
            match document {
                Some(doc) => {
                    u.inline.insert(name.to_owned(), doc.to_owned());
                }
                None => {
                    if u.inline.remove(name).is_none() {
                        return Err(IamError::NoSuchEntity(format!(
                            "The user policy with name {name} cannot be found."
                        )));
                    }
                }
            }
            d.put_user(u);
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
                let had = list.iter().any(|p| p == policy);
                if !attach && !had {
                    return Err(IamError::NoSuchEntity(format!(
                        "Policy {policy} was not found attached."
                    )));
                }
                list.retain(|p| p != policy);
                if attach {
                    list.push(policy.to_owned());
                }
                Ok(())
            };
            match to {
                Holder::User(u) => {
                    let mut doc = d.user(u)?.clone();
                    edit(&mut doc.policies)?;
                    d.put_user(doc);
                }
                Holder::Group(g) => {
                    let mut doc = d.group(g)?.clone();
                    edit(&mut doc.policies)?;
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

    /// Deletes a group. `strict` refuses, as IAM's `DeleteGroup` does,
    /// while it has members or policies.
    pub async fn remove_group(&self, name: &str, strict: bool) -> IamResult<()> {
        self.change(|d| {
            let g = d.group(name)?;
            if strict && (!g.members.is_empty() || !g.policies.is_empty()) {
                return Err(IamError::DeleteConflict(
                    "Cannot delete entity, must remove users and detach policies from the group first."
                        .into(),
                ));
            }
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
}

/// The documents a change sees, and what it writes.
pub(super) struct Docs {
    pub(super) users: BTreeMap<String, UserDoc>,
    pub(super) groups: BTreeMap<String, GroupDoc>,
    pub(super) policies: BTreeMap<String, PolicyDoc>,
    pub(super) svcaccts: BTreeMap<String, SvcAcctDoc>,
    pub(super) idps: BTreeMap<String, IdpDoc>,
    pub(super) writes: ConfigChange,
}

impl Docs {
    pub(super) fn user(&self, name: &str) -> IamResult<&UserDoc> {
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
