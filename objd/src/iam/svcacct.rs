//! Service accounts: access keys of their own under a parent user, for
//! applications and volumes that should not hold the user's keys. A
//! service account has at most its parent's rights: a request must be
//! allowed by the parent's policies (or the bucket policy's grants to the
//! parent), and by the account's own policy when it has one. Disabling or
//! deleting the parent disables or deletes its service accounts. The root
//! account has service accounts too (parent `""`): everything, narrowed by
//! their policy. Credentials are made here, or chosen by the caller (a
//! CSI driver derives a volume's from a key of its own, so that creating
//! the same account again is harmless).

use super::model::{SVCACCT_PREFIX, SvcAcctDoc};
use super::{Iam, IamError, IamResult, encode};
use crate::policy::Policy;

impl Iam {
    /// A new service account of `parent` (`""`: the root account),
    /// narrowed by `policy` if given: `(access key, secret)`. With
    /// `chosen` credentials, asking again for the same account (same key,
    /// secret and parent) succeeds: it changes nothing, or only the
    /// account's policy when another is given (so a holder of the secret
    /// can narrow or widen its account without a moment without it).
    pub async fn add_svcacct(
        &self,
        parent: &str,
        policy: Option<&str>,
        chosen: Option<(&str, &str)>,
    ) -> IamResult<(String, String)> {
        if let Some(p) = policy {
            Policy::parse_identity(p)?;
        }
        let (key, sk) = match chosen {
            None => self.new_key(),
            Some((ak, sk)) => {
                let key_ok = (16..=128).contains(&ak.len())
                    && ak.bytes().all(|b| b.is_ascii_alphanumeric())
                    && !Self::is_session_key(ak);
                if !key_ok || !(8..=128).contains(&sk.len()) {
                    return Err(IamError::Invalid(
                        "a chosen access key is 16-128 letters and digits (not a temporary key's shape), its secret 8-128 characters".into(),
                    ));
                }
                let mut key = self.new_key().0;
                key.sealed_secret = self.sealer.seal(ak, sk);
                key.access_key = ak.to_owned();
                (key, sk.to_owned())
            }
        };
        let ak = key.access_key.clone();
        let doc = SvcAcctDoc {
            access_key: key.access_key,
            parent: parent.to_owned(),
            sealed_secret: key.sealed_secret,
            enabled: key.enabled,
            created_ns: key.created_ns,
            policy: policy.map(str::to_owned),
        };
        let created = self
            .change(|d| {
                if !parent.is_empty() {
                    d.user(parent)?;
                }
                if let Some(old) = d.svcaccts.get(&ak) {
                    let same = old.parent == doc.parent
                        && self.sealer.open(&ak, &old.sealed_secret).is_ok_and(|s| s == sk);
                    if !same {
                        return Err(IamError::EntityAlreadyExists(format!(
                            "access key {ak} is in use"
                        )));
                    }
                    if old.policy == doc.policy {
                        return Ok(false);
                    }
                    let mut changed = old.clone();
                    changed.policy = doc.policy.clone();
                    d.writes.push((format!("{SVCACCT_PREFIX}{ak}"), encode(&changed)));
                    return Ok(true);
                }
                if d.users
                    .values()
                    .any(|u| u.keys.iter().any(|k| k.access_key == ak))
                {
                    return Err(IamError::EntityAlreadyExists(format!(
                        "access key {ak} is in use"
                    )));
                }
                d.writes.push((format!("{SVCACCT_PREFIX}{ak}"), encode(&doc)));
                Ok(true)
            })
            .await?;
        tracing::debug!(access_key = %ak, created, "service account");
        Ok((ak, sk))
    }

    /// Deletes (`None`) or enables/disables a service account.
    pub async fn change_svcacct(&self, access_key: &str, enabled: Option<bool>) -> IamResult<()> {
        self.change(|d| {
            let mut a = d
                .svcaccts
                .get(access_key)
                .cloned()
                .ok_or_else(|| IamError::NoSuchEntity(format!("no service account {access_key}")))?;
            let name = format!("{SVCACCT_PREFIX}{access_key}");
            match enabled {
                None => d.writes.push((name, None)),
                Some(on) => {
                    a.enabled = on;
                    d.writes.push((name, encode(&a)));
                }
            }
            Ok(())
        })
        .await
    }
}
