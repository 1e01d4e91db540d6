//! Service accounts: access keys of their own under a parent user, for
//! applications and volumes that should not hold the user's keys. A
//! service account has at most its parent's rights: a request must be
//! allowed by the parent's policies (or the bucket policy's grants to the
//! parent), and by the account's own policy when it has one. Disabling or
//! deleting the parent disables or deletes its service accounts.

use super::model::{SVCACCT_PREFIX, SvcAcctDoc};
use super::{Iam, IamError, IamResult, encode};
use crate::policy::Policy;

impl Iam {
    /// A new service account of `parent`, narrowed by `policy` if given:
    /// `(access key, secret)`.
    pub async fn add_svcacct(&self, parent: &str, policy: Option<&str>) -> IamResult<(String, String)> {
        if let Some(p) = policy {
            Policy::parse_identity(p)?;
        }
        let (key, sk) = self.new_key();
        let ak = key.access_key.clone();
        let doc = SvcAcctDoc {
            access_key: key.access_key,
            parent: parent.to_owned(),
            sealed_secret: key.sealed_secret,
            enabled: key.enabled,
            created_ns: key.created_ns,
            policy: policy.map(str::to_owned),
        };
        self.change(|d| {
            d.user(parent)?;
            d.writes.push((format!("{SVCACCT_PREFIX}{ak}"), encode(&doc)));
            Ok(())
        })
        .await?;
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
