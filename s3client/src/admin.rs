//! The parts of objd's admin API (JSON under [`ADMIN_PREFIX`], signed like
//! any request) that Strata's tools use: a bucket's usage and quota, the
//! space the server has left, and service accounts of the caller.
//! Against another S3 server these calls fail (it has no such paths), and
//! callers treat that as "not known".

use crate::client::Client;
use crate::error::{Error, Result};
use http::Method;

/// Where objd serves its admin API.
pub const ADMIN_PREFIX: &str = "/_strata/admin/v1/";

/// A bucket's stored bytes and versions, and its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketUsage {
    pub bytes: u64,
    pub versions: u64,
    pub quota: Option<u64>,
}

fn parse_usage(body: &[u8]) -> Result<BucketUsage> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| Error::Protocol(format!("bucket usage: {e}")))?;
    let field = |name: &str| {
        v[name]
            .as_u64()
            .ok_or_else(|| Error::Protocol(format!("bucket usage without {name}")))
    };
    Ok(BucketUsage {
        bytes: field("bytes")?,
        versions: field("versions")?,
        quota: v["quota"].as_u64(),
    })
}

/// Bytes that can still be stored: for each erasure set, the free space
/// of its fullest online drive times its data shards.
fn usable_free(body: &[u8]) -> Result<u64> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| Error::Protocol(format!("server info: {e}")))?;
    let sets = v["sets"]
        .as_array()
        .ok_or_else(|| Error::Protocol("server info without sets".into()))?;
    Ok(sets
        .iter()
        .map(|set| {
            let data = set["data"].as_u64().unwrap_or(0);
            let fullest = set["drives"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["free"].as_u64())
                .min()
                .unwrap_or(0);
            fullest.saturating_mul(data)
        })
        .sum())
}

impl Client {
    /// Bytes the server can still store (data, after erasure coding).
    pub async fn usable_free(&self) -> Result<u64> {
        let r = self
            .call(Method::GET, &format!("{ADMIN_PREFIX}info"), &[])
            .await?;
        usable_free(&r)
    }

    /// A bucket's usage and quota.
    pub async fn bucket_usage(&self, bucket: &str) -> Result<BucketUsage> {
        let path = format!("{ADMIN_PREFIX}bucket-usage");
        let r = self.call(Method::GET, &path, &[("bucket", bucket)]).await?;
        parse_usage(&r)
    }

    /// Clones every object under `prefix` of `bucket` under
    /// `target_prefix` of `target` (objd shares their data instead of
    /// copying it); returns the number of objects and bytes cloned. The
    /// answer streams progress lines, then the outcome.
    pub async fn clone_objects(
        &self,
        (bucket, prefix): (&str, &str),
        (target, target_prefix): (&str, &str),
    ) -> Result<(u64, u64)> {
        use http_body_util::BodyExt;
        let path = format!("{ADMIN_PREFIX}clone");
        let query = [
            ("bucket", bucket),
            ("prefix", prefix),
            ("target-bucket", target),
            ("target-prefix", target_prefix),
        ];
        let (status, body) = self
            .stream(Method::POST, &path, &query, bytes::Bytes::new())
            .await?;
        let body = body
            .collect()
            .await
            .map_err(|e| Error::Transport(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            let (code, message) = crate::xml::error(&body);
            return Err(Error::S3 {
                status: status.as_u16(),
                code,
                message,
            });
        }
        let last = body
            .split(|b| *b == b'\n')
            .rfind(|l| !l.is_empty())
            .unwrap_or_default();
        let v: serde_json::Value =
            serde_json::from_slice(last).map_err(|e| Error::Protocol(format!("clone: {e}")))?;
        if let Some(e) = v["error"].as_str() {
            return Err(Error::S3 {
                status: 500,
                code: "InternalError".into(),
                message: format!("the clone stopped: {e}"),
            });
        }
        let s = &v["summary"];
        match (s["objects"].as_u64(), s["bytes"].as_u64()) {
            (Some(objects), Some(bytes)) => Ok((objects, bytes)),
            _ => Err(Error::Protocol("clone: no summary".into())),
        }
    }

    /// Sets (or with `None` removes) a bucket's quota in bytes.
    pub async fn set_bucket_quota(&self, bucket: &str, quota: Option<u64>) -> Result<BucketUsage> {
        let path = format!("{ADMIN_PREFIX}bucket-quota");
        let bytes = quota.map(|q| q.to_string());
        let r = match &bytes {
            Some(b) => {
                self.call(Method::PUT, &path, &[("bucket", bucket), ("bytes", b)])
                    .await?
            }
            None => self.call(Method::DELETE, &path, &[("bucket", bucket)]).await?,
        };
        parse_usage(&r)
    }

    /// Makes sure the caller (the root account, or the signing user) has a
    /// service account with these credentials, narrowed by `policy`;
    /// asking again for the same account succeeds.
    pub async fn ensure_service_account(
        &self,
        access_key: &str,
        secret_key: &str,
        policy: &str,
    ) -> Result<()> {
        let body = serde_json::json!({
            "access_key": access_key, "secret_key": secret_key, "policy": policy,
        });
        let path = format!("{ADMIN_PREFIX}iam/svcacct");
        self.send(
            Method::PUT,
            &path,
            &[("format", "json")],
            &[],
            bytes::Bytes::from(body.to_string()),
        )
        .await?;
        Ok(())
    }

    /// The narrowing policy of a service account: `None` when it has none
    /// or does not exist.
    pub async fn service_account_policy(&self, access_key: &str) -> Result<Option<String>> {
        let r = self.call(Method::GET, &format!("{ADMIN_PREFIX}iam"), &[]).await?;
        let v: serde_json::Value =
            serde_json::from_slice(&r).map_err(|e| Error::Protocol(format!("identities: {e}")))?;
        Ok(v["service_accounts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["access_key"].as_str() == Some(access_key))
            .and_then(|a| a["policy"].as_str())
            .map(str::to_owned))
    }

    /// Deletes a service account; one that is gone is not an error.
    pub async fn delete_service_account(&self, access_key: &str) -> Result<()> {
        let path = format!("{ADMIN_PREFIX}iam/svcacct");
        match self.call(Method::DELETE, &path, &[("key", access_key)]).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_answers_parse() {
        let u = parse_usage(br#"{"bucket":"b","bytes":5,"versions":2,"quota":null}"#).unwrap();
        assert_eq!(
            u,
            BucketUsage {
                bytes: 5,
                versions: 2,
                quota: None
            }
        );
        let u = parse_usage(br#"{"bucket":"b","bytes":5,"versions":2,"quota":9}"#).unwrap();
        assert_eq!(u.quota, Some(9));
        assert!(parse_usage(b"<Error/>").is_err());
        assert!(parse_usage(br#"{"bytes":1}"#).is_err());
        let info =
            br#"{"sets":[{"data":4,"parity":2,"drives":[{"free":100},{"free":90},{"state":"offline"}]},
            {"data":2,"parity":2,"drives":[{"free":10},{"free":10}]}]}"#;
        assert_eq!(usable_free(info).unwrap(), 4 * 90 + 2 * 10);
    }
}
