//! Object tags (and access control lists): stored with each version (in
//! the record's extension list) and changed in place under the key lock,
//! without touching the data.
//! Also the tag rules S3 enforces, shared by object and bucket tagging.

use super::{ObjectError, ObjectLayer, ObjectResult, check_key, parse_version};
use crate::meta::Version;

/// Most tags on one object.
pub const MAX_OBJECT_TAGS: usize = 10;
/// Most tags on one bucket.
pub const MAX_BUCKET_TAGS: usize = 50;

/// Checks tags against S3's rules: at most `max`, keys of 1-128 and values
/// of 0-256 characters, unique keys, no reserved `aws:` prefix.
pub fn validate_tags(tags: &[(String, String)], max: usize) -> ObjectResult<()> {
    if tags.len() > max {
        return Err(ObjectError::InvalidTag(format!(
            "Object tags cannot be greater than {max}"
        )));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        let klen = k.chars().count();
        if klen == 0 || klen > 128 {
            return Err(ObjectError::InvalidTag(
                "The TagKey you have provided is invalid".into(),
            ));
        }
        if v.chars().count() > 256 {
            return Err(ObjectError::InvalidTag(
                "The TagValue you have provided is invalid".into(),
            ));
        }
        if k.starts_with("aws:") {
            return Err(ObjectError::InvalidTag(
                "System tags cannot be added/updated by requester".into(),
            ));
        }
        if tags[..i].iter().any(|(o, _)| o == k) {
            return Err(ObjectError::InvalidTag(
                "Cannot provide multiple Tags with the same key".into(),
            ));
        }
    }
    Ok(())
}

impl ObjectLayer {
    /// Replaces the tags of a version (an empty list deletes them); returns
    /// the version changed.
    pub async fn put_object_tags(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        tags: Vec<(String, String)>,
    ) -> ObjectResult<Version> {
        validate_tags(&tags, MAX_OBJECT_TAGS)?;
        self.change_extras(bucket, key, version, move |x| x.tags = tags.clone())
            .await
    }

    /// Changes what `apply` changes of a version's extensions, in place.
    async fn change_extras(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        apply: impl Fn(&mut crate::meta::Extras),
    ) -> ObjectResult<Version> {
        self.bucket(bucket)?;
        check_key(key)?;
        let vid = parse_version(version)?;
        self.set_for(bucket, key)
            .update_extras(bucket, key, vid, |_| Ok(()), apply)
            .await
    }
}

impl ObjectLayer {
    /// Replaces the access control list of a version (as stored codes,
    /// [`crate::acl::Acl::to_codes`]); returns the version changed.
    pub async fn put_object_acl(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        acl: Vec<(u8, u8)>,
    ) -> ObjectResult<Version> {
        self.change_extras(bucket, key, version, move |x| x.acl = acl.clone())
            .await
    }
}

impl ObjectLayer {
    /// Replaces a bucket's tags (an empty list deletes them).
    pub async fn put_bucket_tags(&self, bucket: &str, tags: Vec<(String, String)>) -> ObjectResult<()> {
        validate_tags(&tags, MAX_BUCKET_TAGS)?;
        let value = (!tags.is_empty()).then(|| crate::meta::encode_pair_list(&tags));
        self.set_bucket_setting(bucket, BUCKET_TAGS, value).await
    }

    /// A bucket's tags; `None` when it has none.
    pub fn bucket_tags(&self, bucket: &str) -> ObjectResult<Option<Vec<(String, String)>>> {
        self.bucket_setting(bucket, BUCKET_TAGS)?
            .map(|b| {
                crate::meta::decode_pair_list(&b)
                    .map_err(|e| ObjectError::Internal(format!("bucket tags: {e}")))
            })
            .transpose()
    }
}

/// Name of the bucket setting holding the bucket's tags.
const BUCKET_TAGS: &str = "tagging";

#[cfg(test)]
mod tests {
    use super::*;

    fn t(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn tag_rules() {
        assert!(validate_tags(&[t("a", ""), t("b", "x")], 10).is_ok());
        assert!(validate_tags(&[t("", "x")], 10).is_err());
        assert!(validate_tags(&[t("a", "1"), t("a", "2")], 10).is_err());
        assert!(validate_tags(&[t("aws:x", "1")], 10).is_err());
        assert!(validate_tags(&[t(&"k".repeat(129), "1")], 10).is_err());
        assert!(validate_tags(&[t("k", &"v".repeat(257))], 10).is_err());
        let many: Vec<_> = (0..11).map(|i| t(&format!("k{i}"), "v")).collect();
        assert!(validate_tags(&many, 10).is_err());
        assert!(validate_tags(&many, 50).is_ok());
    }
}
