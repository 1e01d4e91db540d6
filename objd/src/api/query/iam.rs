//! The IAM actions served (the AWS IAM API for what Strata's identities
//! cover): users, access keys, groups and memberships, managed policies
//! (one version kept: a new version replaces the document), attachments,
//! and users' inline policies. Each action is authorized as IAM
//! authorizes it: the root account may do anything, a user what its
//! policies allow of `iam:ACTION` on the ARN of the user, group or policy
//! acted on (`arn:aws:iam::ACCOUNT:*` for listings). Listings answer
//! everything in one page.

use super::xml::Xml;
use super::{Call, QueryError};
use crate::iam::model::{GroupDoc, PolicyDoc, UserDoc};
use crate::iam::{Holder, Iam, IamError, State};
use crate::server::caller::Caller;
use http::StatusCode;
use strata_s3client::sigv4::uri_encode;

/// ISO 8601 of a time in nanoseconds since the epoch.
fn date(ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .ok()
        .and_then(|t| t.replace_nanosecond(0).ok())
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// A stable unique id for an entity, shaped like AWS's (`AIDA...` users,
/// `AGPA...` groups, `ANPA...` policies).
fn entity_id(prefix: &str, name: &str, created_ns: i64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut h = xxhash_rust::xxh3::xxh3_128(format!("{prefix}/{name}/{created_ns}").as_bytes());
    let mut s = prefix.to_owned();
    for _ in 0..17 {
        s.push(ALPHABET[(h % 32) as usize] as char);
        h /= 32;
    }
    s
}

fn user(x: &mut Xml, iam: &Iam, u: &UserDoc) {
    x.el("Path", "/")
        .el("UserName", &u.name)
        .el("UserId", entity_id("AIDA", &u.name, u.created_ns))
        .el("Arn", iam.user_arn(&u.name))
        .el("CreateDate", date(u.created_ns));
}

fn group(x: &mut Xml, iam: &Iam, g: &GroupDoc) {
    x.el("Path", "/")
        .el("GroupName", &g.name)
        .el("GroupId", entity_id("AGPA", &g.name, g.created_ns))
        .el("Arn", iam.group_arn(&g.name))
        .el("CreateDate", date(g.created_ns));
}

fn policy(x: &mut Xml, iam: &Iam, s: &State, p: &PolicyDoc) {
    let attached = s.users.values().filter(|u| u.policies.contains(&p.name)).count()
        + s.groups.values().filter(|g| g.policies.contains(&p.name)).count();
    x.el("PolicyName", &p.name)
        .el("PolicyId", entity_id("ANPA", &p.name, p.created_ns))
        .el("Arn", iam.policy_arn(&p.name))
        .el("Path", "/")
        .el("DefaultVersionId", format!("v{}", p.version))
        .el("AttachmentCount", attached.to_string())
        .el("PermissionsBoundaryUsageCount", "0")
        .el("IsAttachable", "true")
        .el("CreateDate", date(p.created_ns))
        .el("UpdateDate", date(p.updated_ns.max(p.created_ns)));
}

fn attached(x: &mut Xml, iam: &Iam, names: &[String]) {
    x.list("AttachedPolicies", names, |x, n| {
        x.el("PolicyName", n).el("PolicyArn", iam.policy_arn(n));
    })
    .el("IsTruncated", "false");
}

/// The policy name of a policy ARN (`arn:aws:iam::ACCOUNT:policy/[PATH/]NAME`).
fn policy_name(c: &Call<'_>) -> Result<String, QueryError> {
    let arn = c.params.required("PolicyArn")?;
    arn.strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(":policy/"))
        .map(|(_, path)| path.rsplit('/').next().unwrap_or(path).to_owned())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            QueryError::new(
                StatusCode::BAD_REQUEST,
                "InvalidInput",
                format!("ARN {arn} is not valid."),
            )
        })
}

/// `UserName`, or the caller's own user when the action allows leaving
/// it out.
fn user_name(c: &Call<'_>) -> Result<String, QueryError> {
    if let Some(u) = c.params.get("UserName").filter(|u| !u.is_empty()) {
        return Ok(u.to_owned());
    }
    match c.caller {
        Caller::User(who, _) => Ok(who.user.clone()),
        _ => Err(QueryError::invalid(
            "UserName is required: the root account's keys are not managed through IAM",
        )),
    }
}

fn no_user(name: &str) -> QueryError {
    IamError::NoSuchEntity(format!("The user with name {name} cannot be found.")).into()
}

fn no_group(name: &str) -> QueryError {
    IamError::NoSuchEntity(format!("The group with name {name} cannot be found.")).into()
}

fn no_policy(name: &str) -> QueryError {
    IamError::NoSuchEntity(format!("Policy {name} was not found.")).into()
}

/// The user named, checked to exist, after the caller's right to
/// `action` on it.
async fn user_doc(c: &Call<'_>, action: &str, name: &str) -> Result<UserDoc, QueryError> {
    c.allow(action, &c.iam.user_arn(name))?;
    c.iam
        .snapshot()
        .await
        .users
        .get(name)
        .cloned()
        .ok_or_else(|| no_user(name))
}

/// An access key of `user`, checked to be one.
async fn own_key(c: &Call<'_>, user: &str) -> Result<String, QueryError> {
    let key = c.params.required("AccessKeyId")?.to_owned();
    let u = user_doc(c, &format!("iam:{}", c.action), user).await?;
    if u.keys.iter().any(|k| k.access_key == key) {
        Ok(key)
    } else {
        Err(IamError::NoSuchEntity(format!("The Access Key with id {key} cannot be found")).into())
    }
}

/// Serves one IAM action; `Ok(Some(xml))` is the result element's inside.
pub async fn call(c: &Call<'_>) -> Result<Option<String>, QueryError> {
    let iam = c.iam;
    let p = c.params;
    let action = format!("iam:{}", c.action);
    let listing = format!("arn:aws:iam::{}:*", iam.account());
    let mut x = Xml::new();
    match c.action {
        "CreateUser" => {
            let name = p.required("UserName")?;
            c.allow(&action, &iam.user_arn(name))?;
            iam.create_user(name).await?;
            let u = user_doc(c, &action, name).await?;
            x.wrap("User", |x| user(x, iam, &u));
        }
        "GetUser" => match (c.caller, p.get("UserName")) {
            (Caller::Root, None) => {
                x.wrap("User", |x| {
                    x.el("UserId", iam.account())
                        .el("Arn", format!("arn:aws:iam::{}:root", iam.account()));
                });
            }
            _ => {
                let u = user_doc(c, &action, &user_name(c)?).await?;
                x.wrap("User", |x| user(x, iam, &u));
            }
        },
        "ListUsers" => {
            c.allow(&action, &listing)?;
            let s = iam.snapshot().await;
            x.list("Users", s.users.values(), |x, u| user(x, iam, u))
                .el("IsTruncated", "false");
        }
        "DeleteUser" => {
            let name = p.required("UserName")?;
            user_doc(c, &action, name).await?;
            iam.remove_user(name, true).await?;
            return Ok(None);
        }
        "CreateAccessKey" => {
            let name = user_name(c)?;
            user_doc(c, &action, &name).await?;
            let (ak, sk) = iam.add_key(&name).await?;
            x.wrap("AccessKey", |x| {
                x.el("UserName", &name)
                    .el("AccessKeyId", ak)
                    .el("Status", "Active")
                    .el("SecretAccessKey", sk)
                    .el("CreateDate", date(crate::object::now_ns()));
            });
        }
        "ListAccessKeys" => {
            let name = user_name(c)?;
            let u = user_doc(c, &action, &name).await?;
            x.list("AccessKeyMetadata", &u.keys, |x, k| {
                x.el("UserName", &name)
                    .el("AccessKeyId", &k.access_key)
                    .el("Status", if k.enabled { "Active" } else { "Inactive" })
                    .el("CreateDate", date(k.created_ns));
            })
            .el("IsTruncated", "false");
        }
        "UpdateAccessKey" => {
            let key = own_key(c, &user_name(c)?).await?;
            let on = match p.required("Status")? {
                "Active" => true,
                "Inactive" => false,
                other => {
                    return Err(QueryError::invalid(format!(
                        "1 validation error detected: Value '{other}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
                    )));
                }
            };
            iam.change_key(&key, Some(on)).await?;
            return Ok(None);
        }
        "DeleteAccessKey" => {
            let key = own_key(c, &user_name(c)?).await?;
            iam.change_key(&key, None).await?;
            return Ok(None);
        }
        "PutUserPolicy" | "GetUserPolicy" | "DeleteUserPolicy" | "ListUserPolicies" => {
            return inline(c, &action).await;
        }
        "CreateGroup"
        | "GetGroup"
        | "ListGroups"
        | "DeleteGroup"
        | "AddUserToGroup"
        | "RemoveUserFromGroup"
        | "ListGroupsForUser" => return groups(c, &action, &listing).await,
        "AttachUserPolicy" | "DetachUserPolicy" | "AttachGroupPolicy" | "DetachGroupPolicy" => {
            let name = policy_name(c)?;
            let (holder, arn) = if c.action.contains("User") {
                let u = p.required("UserName")?;
                (Holder::User(u.to_owned()), iam.user_arn(u))
            } else {
                let g = p.required("GroupName")?;
                (Holder::Group(g.to_owned()), iam.group_arn(g))
            };
            c.allow(&action, &arn)?;
            iam.attach(&name, &holder, c.action.starts_with("Attach")).await?;
            return Ok(None);
        }
        "ListAttachedUserPolicies" => {
            let u = user_doc(c, &action, p.required("UserName")?).await?;
            attached(&mut x, iam, &u.policies);
        }
        "ListAttachedGroupPolicies" => {
            let name = p.required("GroupName")?;
            c.allow(&action, &iam.group_arn(name))?;
            let s = iam.snapshot().await;
            let g = s.groups.get(name).ok_or_else(|| no_group(name))?;
            attached(&mut x, iam, &g.policies);
        }
        _ => return policies(c, &action, &listing).await,
    }
    Ok(Some(x.finish()))
}

async fn inline(c: &Call<'_>, action: &str) -> Result<Option<String>, QueryError> {
    let (iam, p) = (c.iam, c.params);
    let name = p.required("UserName")?;
    let u = user_doc(c, action, name).await?;
    let mut x = Xml::new();
    match c.action {
        "PutUserPolicy" => {
            let policy = p.required("PolicyName")?;
            iam.set_user_policy(name, policy, Some(p.required("PolicyDocument")?))
                .await?;
            return Ok(None);
        }
        "GetUserPolicy" => {
            let policy = p.required("PolicyName")?;
            let doc = u.inline.get(policy).ok_or_else(|| {
                QueryError::from(IamError::NoSuchEntity(format!(
                    "The user policy with name {policy} cannot be found."
                )))
            })?;
            x.el("UserName", name)
                .el("PolicyName", policy)
                .el("PolicyDocument", uri_encode(doc, false));
        }
        "DeleteUserPolicy" => {
            iam.set_user_policy(name, p.required("PolicyName")?, None).await?;
            return Ok(None);
        }
        _ => {
            x.list("PolicyNames", u.inline.keys(), |x, n| {
                x.text(n);
            })
            .el("IsTruncated", "false");
        }
    }
    Ok(Some(x.finish()))
}

async fn groups(c: &Call<'_>, action: &str, listing: &str) -> Result<Option<String>, QueryError> {
    let (iam, p) = (c.iam, c.params);
    let mut x = Xml::new();
    match c.action {
        "CreateGroup" => {
            let name = p.required("GroupName")?;
            c.allow(action, &iam.group_arn(name))?;
            iam.add_group(name).await?;
            let s = iam.snapshot().await;
            let g = s.groups.get(name).ok_or_else(|| no_group(name))?;
            x.wrap("Group", |x| group(x, iam, g));
        }
        "GetGroup" => {
            let name = p.required("GroupName")?;
            c.allow(action, &iam.group_arn(name))?;
            let s = iam.snapshot().await;
            let g = s.groups.get(name).ok_or_else(|| no_group(name))?;
            x.wrap("Group", |x| group(x, iam, g))
                .list(
                    "Users",
                    g.members.iter().filter_map(|m| s.users.get(m)),
                    |x, u| user(x, iam, u),
                )
                .el("IsTruncated", "false");
        }
        "ListGroups" => {
            c.allow(action, listing)?;
            let s = iam.snapshot().await;
            x.list("Groups", s.groups.values(), |x, g| group(x, iam, g))
                .el("IsTruncated", "false");
        }
        "ListGroupsForUser" => {
            let name = p.required("UserName")?;
            user_doc(c, action, name).await?;
            let s = iam.snapshot().await;
            let of_user = s.groups.values().filter(|g| g.members.iter().any(|m| m == name));
            x.list("Groups", of_user, |x, g| group(x, iam, g))
                .el("IsTruncated", "false");
        }
        "DeleteGroup" => {
            let name = p.required("GroupName")?;
            c.allow(action, &iam.group_arn(name))?;
            iam.remove_group(name, true).await?;
            return Ok(None);
        }
        _ => {
            // AddUserToGroup, RemoveUserFromGroup.
            let name = p.required("GroupName")?;
            let member = p.required("UserName")?;
            c.allow(action, &iam.group_arn(name))?;
            let add = c.action == "AddUserToGroup";
            if !add
                && !iam
                    .snapshot()
                    .await
                    .groups
                    .get(name)
                    .is_some_and(|g| g.members.iter().any(|m| m == member))
            {
                return Err(no_user(member));
            }
            iam.set_member(name, member, add).await?;
            return Ok(None);
        }
    }
    Ok(Some(x.finish()))
}

async fn policies(c: &Call<'_>, action: &str, listing: &str) -> Result<Option<String>, QueryError> {
    let (iam, p) = (c.iam, c.params);
    let mut x = Xml::new();
    match c.action {
        "CreatePolicy" => {
            let name = p.required("PolicyName")?;
            c.allow(action, &iam.policy_arn(name))?;
            iam.write_policy(name, p.required("PolicyDocument")?, Some(false))
                .await?;
            let s = iam.snapshot().await;
            let doc = s.policies.get(name).ok_or_else(|| no_policy(name))?;
            x.wrap("Policy", |x| policy(x, iam, &s, doc));
        }
        "GetPolicy" => {
            let name = policy_name(c)?;
            c.allow(action, &iam.policy_arn(&name))?;
            let s = iam.snapshot().await;
            let doc = s.policies.get(&name).ok_or_else(|| no_policy(&name))?;
            x.wrap("Policy", |x| policy(x, iam, &s, doc));
        }
        "ListPolicies" => {
            c.allow(action, listing)?;
            let s = iam.snapshot().await;
            // Strata has no AWS-managed policies.
            let aws_only = p.get("Scope") == Some("AWS");
            let only_attached = p.get("OnlyAttached") == Some("true");
            let shown = s.policies.values().filter(|d| {
                !aws_only
                    && (!only_attached
                        || s.users.values().any(|u| u.policies.contains(&d.name))
                        || s.groups.values().any(|g| g.policies.contains(&d.name)))
            });
            x.list("Policies", shown, |x, d| policy(x, iam, &s, d))
                .el("IsTruncated", "false");
        }
        "DeletePolicy" => {
            let name = policy_name(c)?;
            c.allow(action, &iam.policy_arn(&name))?;
            iam.remove_policy(&name).await?;
            return Ok(None);
        }
        "CreatePolicyVersion" => {
            let name = policy_name(c)?;
            c.allow(action, &iam.policy_arn(&name))?;
            if p.get("SetAsDefault") != Some("true") {
                return Err(QueryError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidInput",
                    "only the default version of a policy is kept: set SetAsDefault",
                ));
            }
            let v = iam
                .write_policy(&name, p.required("PolicyDocument")?, Some(true))
                .await?;
            x.wrap("PolicyVersion", |x| {
                x.el("VersionId", format!("v{v}"))
                    .el("IsDefaultVersion", "true")
                    .el("CreateDate", date(crate::object::now_ns()));
            });
        }
        "GetPolicyVersion" | "ListPolicyVersions" | "DeletePolicyVersion" => {
            let name = policy_name(c)?;
            c.allow(action, &iam.policy_arn(&name))?;
            let s = iam.snapshot().await;
            let doc = s.policies.get(&name).ok_or_else(|| no_policy(&name))?;
            let current = format!("v{}", doc.version);
            let version = |x: &mut Xml, with_document: bool| {
                if with_document {
                    x.el("Document", uri_encode(&doc.document, false));
                }
                x.el("VersionId", &current)
                    .el("IsDefaultVersion", "true")
                    .el("CreateDate", date(doc.updated_ns.max(doc.created_ns)));
            };
            match c.action {
                "ListPolicyVersions" => {
                    x.list("Versions", [()], |x, ()| version(x, false))
                        .el("IsTruncated", "false");
                }
                "GetPolicyVersion" if p.required("VersionId")? == current => {
                    x.wrap("PolicyVersion", |x| version(x, true));
                }
                "DeletePolicyVersion" if p.required("VersionId")? == current => {
                    return Err(IamError::DeleteConflict(
                        "Cannot delete the default version of a policy.".into(),
                    )
                    .into());
                }
                _ => {
                    return Err(IamError::NoSuchEntity(format!(
                        "Policy {name} version {} does not exist or is not attachable.",
                        p.get("VersionId").unwrap_or_default()
                    ))
                    .into());
                }
            }
        }
        other => {
            return Err(QueryError::new(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                format!("Could not find operation {other} for version 2010-05-08"),
            ));
        }
    }
    Ok(Some(x.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_shaped_like_aws_ones() {
        let a = entity_id("AIDA", "alice", 5);
        assert_eq!(a.len(), 21);
        assert!(a.starts_with("AIDA"));
        assert_eq!(a, entity_id("AIDA", "alice", 5));
        assert_ne!(
            a,
            entity_id("AIDA", "alice", 6),
            "a recreated user is another entity"
        );
        assert_eq!(date(1_440_938_160_123_000_000), "2015-08-30T12:36:00Z");
    }
}
