//! `objd admin`: the admin API's commands, each one request signed with
//! the given credentials, the JSON answer printed as it arrives.

use crate::CredentialArgs;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// URL of the server.
    #[arg(
        long,
        env = "OBJD_ENDPOINT",
        default_value = "http://127.0.0.1:9000",
        global = true
    )]
    endpoint: String,
    /// PEM file of CA certificates to trust for an https:// endpoint,
    /// besides the system's.
    #[arg(long, env = "OBJD_CA_FILE", global = true)]
    ca_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    credentials: CredentialArgs,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Heal every object (or one bucket's): rebuild missing or corrupt
    /// shards and restore full redundancy, printing progress.
    Heal {
        /// Only this bucket.
        bucket: Option<String>,
    },
    /// Clone the objects under a prefix of a bucket as they are now, under
    /// another prefix or in another bucket (which must exist), sharing
    /// their data rather than copying it: a snapshot. Later writes to
    /// either side do not change the other.
    Clone {
        /// The bucket to clone from.
        bucket: String,
        /// The bucket to clone into.
        target: String,
        /// Only the objects under this prefix.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Put the prefix given by --prefix in the clones' names instead.
        #[arg(long, default_value = "")]
        target_prefix: String,
    },
    /// Show drives, erasure sets (of every pool) and the heal queue.
    Info,
    /// Show a bucket's stored bytes and versions, and its quota.
    Usage { bucket: String },
    /// Set a bucket's quota (`10GiB`, `500MiB`, bytes), or remove it with
    /// `none`. Writes that would go beyond it fail with QuotaExceeded.
    Quota {
        bucket: String,
        #[arg(value_parser = parse_quota)]
        size: Quota,
    },
    /// IAM users and their access keys (see docs/iam.md).
    #[command(subcommand)]
    User(UserCommand),
    /// IAM groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// IAM policies, and attaching them to users and groups.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Service accounts: keys under a user (or the root account), narrowed
    /// by a policy.
    #[command(subcommand)]
    Svcacct(SvcacctCommand),
    /// Identity providers STS trusts (OpenID Connect, LDAP).
    #[command(subcommand)]
    Idp(IdpCommand),
    /// Users, groups, policies, service accounts and identity providers,
    /// as JSON (no secrets).
    Iam,
    /// Who the credentials are: root, or the user (or service account) and
    /// its policies. Any credentials may ask.
    Whoami,
    /// The KMS that seals the data keys of encrypted objects (see
    /// docs/encryption.md).
    #[command(subcommand)]
    Kms(KmsCommand),
    /// Remote tiers: S3-compatible buckets object data can move to (see
    /// docs/tiers.md).
    #[command(subcommand)]
    Tier(TierCommand),
    /// Prometheus metrics (`/_strata/metrics`).
    #[command(subcommand)]
    Metrics(MetricsCommand),
}

#[derive(Subcommand, Debug)]
enum TierCommand {
    /// Add a tier; refused unless a probe object can be written, read back
    /// and deleted under its prefix.
    Add {
        /// The tier's name (a-z, 0-9, -).
        name: String,
        /// The tier's S3 endpoint (`https://s3.eu-west-1.amazonaws.com`,
        /// `http://seaweed:8333`, ...); `--endpoint` is this server's.
        #[arg(long)]
        tier_endpoint: String,
        /// The bucket there.
        #[arg(long)]
        bucket: String,
        /// A key prefix inside it for what this deployment stores.
        #[arg(long, default_value = "")]
        prefix: String,
        /// The region requests are signed for.
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// A file with the tier's credentials: `access_key=...` and
        /// `secret_key=...` lines, or an AWS credentials file's
        /// `aws_access_key_id` and `aws_secret_access_key`. They are stored
        /// sealed, never printed.
        #[arg(long)]
        credentials_file: PathBuf,
        /// PEM file of CA certificates to trust for the tier's https://
        /// endpoint, besides the system's (stored with the tier).
        #[arg(long)]
        tier_ca_file: Option<PathBuf>,
    },
    /// The tiers (no secrets).
    Ls,
    /// Write, read back and delete a probe object through a tier.
    Verify { name: String },
    /// Remove a tier; refused (TierInUse) while objects live in it, or while it cannot be asked.
    Remove { name: String },
}

#[derive(Subcommand, Debug)]
enum MetricsCommand {
    /// The bearer token Prometheus scrapes with (the same on every node;
    /// it changes with the root secret key).
    Token,
}

#[derive(Subcommand, Debug)]
enum KmsCommand {
    /// Which KMS is configured, its default key, and whether it answers.
    Status,
    /// Named keys.
    #[command(subcommand)]
    Key(KmsKeyCommand),
}

#[derive(Subcommand, Debug)]
enum KmsKeyCommand {
    /// Create a key (`NAME`, or `TENANT/NAME` in a tenant's namespace).
    Create {
        name: String,
    },
    /// List the keys with their newest version and state.
    Ls,
    /// Seal new data keys with a new version of the key; objects sealed
    /// with older versions stay readable.
    Rotate {
        name: String,
    },
    /// Stop the key from sealing and unsealing (objects under it become
    /// unreadable until it is enabled again).
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum IdpCommand {
    /// Trust an OpenID Connect provider for AssumeRoleWithWebIdentity (or
    /// replace the one of that name).
    AddOpenid {
        name: String,
        /// The provider's issuer URL, exactly as its tokens' `iss` says.
        #[arg(long)]
        issuer: String,
        /// A client id tokens must be issued to (their audience); repeat
        /// for several.
        #[arg(long = "client-id", required = true)]
        client_ids: Vec<String>,
        /// The token claim naming the session's policies.
        #[arg(long, default_value = "policy")]
        claim: String,
        /// `ROLE=POLICY[,POLICY...]`: a RoleArn naming ROLE gets these
        /// policies whatever the claim says; repeat for several.
        #[arg(long = "role", value_parser = parse_context)]
        roles: Vec<(String, String)>,
    },
    /// Trust an LDAP directory (OpenLDAP, Active Directory) for
    /// AssumeRoleWithLDAPIdentity (or replace the one of that name). The
    /// lookup account's password comes from a file or the environment,
    /// never the command line.
    AddLdap {
        name: String,
        /// `ldap://HOST[:PORT]` or `ldaps://HOST[:PORT]`.
        #[arg(long)]
        url: String,
        /// Upgrade an ldap:// connection with StartTLS.
        #[arg(long)]
        start_tls: bool,
        /// DN of the account that looks users and groups up.
        #[arg(long)]
        lookup_dn: String,
        /// File holding the lookup account's password (or set
        /// OBJD_LDAP_LOOKUP_PASSWORD). Left out when replacing: the stored
        /// one is kept.
        #[arg(long)]
        lookup_password_file: Option<PathBuf>,
        /// Where users are searched.
        #[arg(long)]
        user_base: String,
        /// Finds a user; `%s` is the username: `(uid=%s)`, or
        /// `(sAMAccountName=%s)` for Active Directory.
        #[arg(long)]
        user_filter: String,
        /// Where groups are searched.
        #[arg(long, default_value = "")]
        group_base: String,
        /// Finds a user's groups; `%d` is the user's DN, `%s` the username:
        /// `(&(objectClass=groupOfNames)(member=%d))`, or
        /// `(&(objectClass=group)(member=%d))` for Active Directory.
        #[arg(long, default_value = "")]
        group_filter: String,
        /// `POLICY[,POLICY...]:GROUP-DN`: members of the group get these
        /// policies; repeat for several groups.
        #[arg(long = "group", value_parser = parse_group)]
        groups: Vec<(String, String)>,
    },
    /// Stop trusting an identity provider.
    Remove { name: String },
}

fn parse_group(s: &str) -> Result<(String, String), String> {
    s.split_once(':')
        .map(|(p, dn)| (dn.to_owned(), p.to_owned()))
        .ok_or_else(|| format!("{s}: expected POLICY[,POLICY...]:GROUP-DN"))
}

#[derive(Subcommand, Debug)]
enum SvcacctCommand {
    /// Create a service account of USER (or of the caller); prints its key
    /// and secret (shown this once). It never has more rights than its
    /// parent.
    Add {
        /// The parent user; without it, the caller's own (the root
        /// account's with the root credentials).
        user: Option<String>,
        /// A policy file that narrows the account's rights further.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Delete a service account.
    Remove { access_key: String },
    /// Refuse its requests (or with `--enable`, take them again).
    Disable {
        access_key: String,
        #[arg(long)]
        enable: bool,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create a user with an access key; prints the key and its secret
    /// (shown this once).
    Add { name: String },
    /// Delete a user and its access keys.
    Remove { name: String },
    /// Refuse every request signed with the user's keys.
    Disable { name: String },
    /// Take the user's requests again.
    Enable { name: String },
    /// Another access key for the user (at most two).
    AddKey { name: String },
    /// Delete an access key.
    RemoveKey { access_key: String },
    /// Refuse requests signed with this key (or with `--enable`, take them again).
    DisableKey {
        access_key: String,
        #[arg(long)]
        enable: bool,
    },
}

#[derive(Subcommand, Debug)]
enum GroupCommand {
    /// Create a group.
    Add { name: String },
    /// Delete a group (its members stay).
    Remove { name: String },
    /// Add a user to a group.
    AddMember { group: String, user: String },
    /// Take a user out of a group.
    RemoveMember { group: String, user: String },
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct PolicyHolder {
    /// The user.
    #[arg(long)]
    user: Option<String>,
    /// The group.
    #[arg(long)]
    group: Option<String>,
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Create or replace a policy from a JSON file (`-` for standard input).
    Add { name: String, file: PathBuf },
    /// Delete a policy attached to no one.
    Remove { name: String },
    /// Attach a policy to a user or a group.
    Attach {
        name: String,
        #[command(flatten)]
        to: PolicyHolder,
    },
    /// Detach a policy from a user or a group.
    Detach {
        name: String,
        #[command(flatten)]
        from: PolicyHolder,
    },
    /// Whether USER may do ACTION (`s3:GetObject`) on RESOURCE
    /// (`arn:aws:s3:::bucket/key`), and the statement that decided.
    Simulate {
        user: String,
        action: String,
        resource: String,
        /// A condition key's value for the request (`aws:SourceIp=10.0.0.1`);
        /// repeat for several.
        #[arg(long = "context", value_parser = parse_context)]
        context: Vec<(String, String)>,
    },
}

fn parse_context(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s}: expected KEY=VALUE"))
}

/// A quota given on the command line.
#[derive(Debug, Clone, Copy)]
enum Quota {
    Bytes(u64),
    None,
}

fn parse_quota(s: &str) -> Result<Quota, String> {
    if s == "none" {
        return Ok(Quota::None);
    }
    parse_size(s)
        .map(Quota::Bytes)
        .map_err(|e| format!("{e}, nor `none`"))
}

/// A size on the command line: bytes, or a number with KiB, MiB, GiB or TiB.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let units = [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("", 1),
    ];
    let (num, unit) = units
        .iter()
        .find_map(|(u, m)| s.strip_suffix(u).map(|n| (n, *m)))
        .unwrap_or((s, 1));
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("{s} is not a size (bytes, or a number with KiB, MiB, GiB or TiB)"))
}

/// A policy document from a file (`-`: standard input).
fn read_policy(file: &std::path::Path) -> Result<String> {
    if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading the policy")?;
        Ok(s)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    }
}

/// An admin request: method, operation, query and body.
type AdminRequest = (&'static str, &'static str, Vec<(String, String)>, bytes::Bytes);

/// An admin command as a request.
fn admin_request(cmd: &AdminCommand) -> Result<AdminRequest> {
    let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let holder = |h: &PolicyHolder| match (&h.user, &h.group) {
        (Some(u), _) => ("user", u.clone()),
        (_, Some(g)) => ("group", g.clone()),
        _ => unreachable!("clap requires one"),
    };
    let none = bytes::Bytes::new();
    // Enabling or disabling what `param` names.
    let toggle = |op: &'static str, param: &str, value: &str, on: bool| {
        let on = if on { "true" } else { "false" };
        (
            "POST",
            op,
            q(&[(param, value), ("enabled", on)]),
            bytes::Bytes::new(),
        )
    };
    Ok(match cmd {
        AdminCommand::Heal { bucket } => {
            let b: Vec<(&str, &str)> = bucket.iter().map(|b| ("bucket", b.as_str())).collect();
            ("POST", "heal", q(&b), none)
        }
        AdminCommand::Clone {
            bucket,
            target,
            prefix,
            target_prefix,
        } => (
            "POST",
            "clone",
            q(&[
                ("bucket", bucket),
                ("prefix", prefix),
                ("target-bucket", target),
                ("target-prefix", target_prefix),
            ]),
            none,
        ),
        AdminCommand::Info => ("GET", "info", vec![], none),
        AdminCommand::Usage { bucket } => ("GET", "bucket-usage", q(&[("bucket", bucket)]), none),
        AdminCommand::Quota { bucket, size } => match size {
            Quota::Bytes(n) => (
                "PUT",
                "bucket-quota",
                q(&[("bucket", bucket), ("bytes", &n.to_string())]),
                none,
            ),
            Quota::None => ("DELETE", "bucket-quota", q(&[("bucket", bucket)]), none),
        },
        AdminCommand::Iam => ("GET", "iam", vec![], none),
        AdminCommand::Idp(IdpCommand::AddOpenid {
            name,
            issuer,
            client_ids,
            claim,
            roles,
        }) => {
            let roles: std::collections::BTreeMap<&str, Vec<&str>> = roles
                .iter()
                .map(|(r, p)| (r.as_str(), p.split(',').map(str::trim).collect()))
                .collect();
            let body = serde_json::json!({
                "type": "openid", "issuer": issuer, "client_ids": client_ids,
                "claim": claim, "roles": roles,
            });
            (
                "PUT",
                "iam/idp",
                q(&[("name", name)]),
                bytes::Bytes::from(body.to_string()),
            )
        }
        AdminCommand::Idp(IdpCommand::AddLdap {
            name,
            url,
            start_tls,
            lookup_dn,
            lookup_password_file,
            user_base,
            user_filter,
            group_base,
            group_filter,
            groups,
        }) => {
            let password = match lookup_password_file {
                Some(f) => std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
                None => std::env::var("OBJD_LDAP_LOOKUP_PASSWORD").unwrap_or_default(),
            };
            let groups: std::collections::BTreeMap<&str, Vec<&str>> = groups
                .iter()
                .map(|(dn, p)| (dn.as_str(), p.split(',').map(str::trim).collect()))
                .collect();
            let body = serde_json::json!({
                "type": "ldap", "url": url, "start_tls": start_tls, "lookup_dn": lookup_dn,
                "lookup_password": password, "user_base": user_base, "user_filter": user_filter,
                "group_base": group_base, "group_filter": group_filter, "groups": groups,
            });
            (
                "PUT",
                "iam/idp",
                q(&[("name", name)]),
                bytes::Bytes::from(body.to_string()),
            )
        }
        AdminCommand::Idp(IdpCommand::Remove { name }) => ("DELETE", "iam/idp", q(&[("name", name)]), none),
        AdminCommand::Whoami => ("GET", "iam/whoami", vec![], none),
        AdminCommand::Kms(KmsCommand::Status) => ("GET", "kms/status", vec![], none),
        AdminCommand::Metrics(MetricsCommand::Token) => ("GET", "metrics/token", vec![], none),
        AdminCommand::Tier(t) => match t {
            TierCommand::Add {
                name,
                tier_endpoint: endpoint,
                bucket,
                prefix,
                region,
                credentials_file,
                tier_ca_file,
            } => {
                let (access_key, secret_key) =
                    strata_s3client::read_credentials_file(credentials_file).map_err(anyhow::Error::msg)?;
                let ca_pem = tier_ca_file
                    .as_ref()
                    .map(|f| std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display())))
                    .transpose()?;
                let body = serde_json::json!({
                    "name": name, "endpoint": endpoint, "bucket": bucket, "prefix": prefix,
                    "region": region, "access_key": access_key, "secret_key": secret_key, "ca_pem": ca_pem,
                });
                ("PUT", "tier", vec![], bytes::Bytes::from(body.to_string()))
            }
            TierCommand::Ls => ("GET", "tier", vec![], none),
            TierCommand::Verify { name } => {
                ("POST", "tier", q(&[("name", name), ("action", "verify")]), none)
            }
            TierCommand::Remove { name } => ("DELETE", "tier", q(&[("name", name)]), none),
        },
        AdminCommand::Kms(KmsCommand::Key(k)) => {
            let change = |name: &str, action: &str| {
                (
                    "POST",
                    "kms/key",
                    q(&[("name", name), ("action", action)]),
                    none.clone(),
                )
            };
            match k {
                KmsKeyCommand::Create { name } => ("PUT", "kms/key", q(&[("name", name)]), none),
                KmsKeyCommand::Ls => ("GET", "kms/key", vec![], none),
                KmsKeyCommand::Rotate { name } => change(name, "rotate"),
                KmsKeyCommand::Disable { name } => change(name, "disable"),
                KmsKeyCommand::Enable { name } => change(name, "enable"),
            }
        }
        AdminCommand::User(u) => match u {
            UserCommand::Add { name } => ("PUT", "iam/user", q(&[("name", name)]), none),
            UserCommand::Remove { name } => ("DELETE", "iam/user", q(&[("name", name)]), none),
            UserCommand::Disable { name } => toggle("iam/user", "name", name, false),
            UserCommand::Enable { name } => toggle("iam/user", "name", name, true),
            UserCommand::AddKey { name } => ("PUT", "iam/access-key", q(&[("user", name)]), none),
            UserCommand::RemoveKey { access_key } => {
                ("DELETE", "iam/access-key", q(&[("key", access_key)]), none)
            }
            UserCommand::DisableKey { access_key, enable } => {
                toggle("iam/access-key", "key", access_key, *enable)
            }
        },
        AdminCommand::Group(g) => match g {
            GroupCommand::Add { name } => ("PUT", "iam/group", q(&[("name", name)]), none),
            GroupCommand::Remove { name } => ("DELETE", "iam/group", q(&[("name", name)]), none),
            GroupCommand::AddMember { group, user } => {
                ("PUT", "iam/member", q(&[("group", group), ("user", user)]), none)
            }
            GroupCommand::RemoveMember { group, user } => (
                "DELETE",
                "iam/member",
                q(&[("group", group), ("user", user)]),
                none,
            ),
        },
        AdminCommand::Svcacct(a) => match a {
            SvcacctCommand::Add { user, policy } => {
                let text = policy
                    .as_deref()
                    .map(read_policy)
                    .transpose()?
                    .unwrap_or_default();
                let user: Vec<(&str, &str)> = user.iter().map(|u| ("user", u.as_str())).collect();
                ("PUT", "iam/svcacct", q(&user), bytes::Bytes::from(text))
            }
            SvcacctCommand::Remove { access_key } => {
                ("DELETE", "iam/svcacct", q(&[("key", access_key)]), none)
            }
            SvcacctCommand::Disable { access_key, enable } => {
                toggle("iam/svcacct", "key", access_key, *enable)
            }
        },
        AdminCommand::Policy(p) => match p {
            PolicyCommand::Add { name, file } => (
                "PUT",
                "iam/policy",
                q(&[("name", name)]),
                bytes::Bytes::from(read_policy(file)?),
            ),
            PolicyCommand::Remove { name } => ("DELETE", "iam/policy", q(&[("name", name)]), none),
            PolicyCommand::Simulate {
                user,
                action,
                resource,
                context,
            } => {
                let context: std::collections::BTreeMap<&str, &str> =
                    context.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let body = serde_json::json!({
                    "user": user, "action": action, "resource": resource, "context": context,
                });
                (
                    "POST",
                    "iam/simulate",
                    vec![],
                    bytes::Bytes::from(body.to_string()),
                )
            }
            PolicyCommand::Attach { name, to } => {
                let (kind, who) = holder(to);
                (
                    "PUT",
                    "iam/attachment",
                    q(&[("policy", name), (kind, &who)]),
                    none,
                )
            }
            PolicyCommand::Detach { name, from } => {
                let (kind, who) = holder(from);
                (
                    "DELETE",
                    "iam/attachment",
                    q(&[("policy", name), (kind, &who)]),
                    none,
                )
            }
        },
    })
}

pub async fn admin(args: AdminArgs) -> Result<()> {
    let creds = args.credentials.resolve()?;
    let (method, op, query, body) = admin_request(&args.command)?;
    let path = format!("{}{op}", objd::api::admin::ADMIN_PREFIX);
    let signer =
        strata_s3client::Signer::new(creds.access_key.clone(), creds.secret_key.clone(), "us-east-1");
    let tls = strata_s3client::Tls {
        ca_file: args.ca_file.clone(),
        ..Default::default()
    };
    let client = strata_s3client::Client::with_tls(&args.endpoint, signer, &tls)
        .map_err(anyhow::Error::msg)?
        .with_timeout(std::time::Duration::from_secs(30));
    let method = http::Method::from_bytes(method.as_bytes())?;
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, mut body) = client
        .stream(method, &path, &query, body)
        .await
        .with_context(|| format!("cannot reach {}", args.endpoint))?;
    use http_body_util::BodyExt;
    let mut failed = !status.is_success();
    let mut ends_with_newline = true;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            let text = String::from_utf8_lossy(&data);
            if text.contains("\"error\"") {
                failed = true;
            }
            print!("{text}");
            ends_with_newline = text.ends_with('\n');
        }
    }
    if !ends_with_newline {
        println!();
    }
    if failed {
        bail!("the server answered {status}");
    }
    Ok(())
}
