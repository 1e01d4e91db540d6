//! IAM users, groups and policies through the real binary: users made
//! with `objd admin`, requests signed with their keys by the AWS SDK,
//! decisions as IAM makes them (explicit deny wins, default deny, identity
//! and bucket policies together), keys and users disabled and removed,
//! and the state kept across a restart with no secret stored in plain.

use std::process::Command;
use strata_tests::client::{err_code, err_status};
use strata_tests::{
    Server, files_below, get_object as get, objd_bin, put_object as put, s3_client, s3_client_with,
};

/// `objd admin ARGS` (root credentials); `(succeeded, stdout)`.
fn admin(s: &Server, args: &[&str]) -> (bool, String) {
    let mut c = Command::new(objd_bin());
    c.arg("admin").arg("--endpoint").arg(&s.endpoint).args(args);
    let out = strata_tests::with_root_credentials(&mut c).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `objd admin ARGS` signed with other credentials.
fn admin_as(s: &Server, access_key: &str, secret_key: &str, args: &[&str]) -> std::process::Output {
    Command::new(objd_bin())
        .args(["admin", "--endpoint", &s.endpoint])
        .args(args)
        .env("OBJD_ACCESS_KEY", access_key)
        .env("OBJD_SECRET_KEY", secret_key)
        .output()
        .unwrap()
}

fn ok(s: &Server, args: &[&str]) -> serde_json::Value {
    let (success, out) = admin(s, args);
    assert!(success, "objd admin {args:?}: {out}");
    serde_json::from_str(out.trim()).unwrap_or(serde_json::Value::Null)
}

/// The IAM error code `objd admin ARGS` failed with.
fn refused(s: &Server, args: &[&str]) -> String {
    let (success, out) = admin(s, args);
    assert!(!success, "objd admin {args:?} succeeded: {out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    v["error"].as_str().unwrap().to_owned()
}

/// A new user and an SDK client signing with its key.
fn user(s: &Server, name: &str) -> (aws_sdk_s3::Client, String, String) {
    let v = ok(s, &["user", "add", name]);
    let (ak, sk) = (
        v["access_key"].as_str().unwrap(),
        v["secret_key"].as_str().unwrap(),
    );
    (s3_client_with(&s.endpoint, ak, sk), ak.to_owned(), sk.to_owned())
}

fn policy(s: &Server, name: &str, doc: serde_json::Value) {
    let f = s.root.path().join(format!("{name}.json"));
    std::fs::write(&f, doc.to_string()).unwrap();
    ok(s, &["policy", "add", name, f.to_str().unwrap()]);
}

fn allow(actions: &[&str], resources: &[&str]) -> serde_json::Value {
    serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": actions, "Resource": resources}]})
}

async fn denied<T: std::fmt::Debug, E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
) -> String {
    let e = r.expect_err("refused");
    assert_eq!(err_status(&e), 403, "{e:?}");
    err_code(&e)
}

/// The S3 error code of a refused GET.
async fn get_refused(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    denied(c.get_object().bucket(bucket).key(key).send().await).await
}

/// The S3 error code of a refused PUT of a small object.
async fn put_refused(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    denied(
        c.put_object()
            .bucket(bucket)
            .key(key)
            .body(b"x".to_vec().into())
            .send()
            .await,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_get_what_their_policies_and_bucket_policies_grant_and_nothing_else() {
    let mut s = Server::start(4, &[]);
    let root = s3_client(&s.endpoint);
    for b in ["alpha", "beta"] {
        root.create_bucket().bucket(b).send().await.unwrap();
        put(&root, b, "doc.txt", format!("{b} doc").into_bytes())
            .await
            .unwrap();
    }
    put(&root, "alpha", "secret/plan.txt", b"plan".to_vec())
        .await
        .unwrap();

    // A user without policies may do nothing.
    let (alice, alice_key, alice_secret) = user(&s, "alice");
    assert_eq!(get_refused(&alice, "alpha", "doc.txt").await, "AccessDenied");
    assert_eq!(denied(alice.list_buckets().send().await).await, "AccessDenied");

    // Read on alpha, through a policy attached to her.
    policy(
        &s,
        "alpha-read",
        allow(
            &["s3:GetObject", "s3:ListBucket"],
            &["arn:aws:s3:::alpha", "arn:aws:s3:::alpha/*"],
        ),
    );
    ok(&s, &["policy", "attach", "alpha-read", "--user", "alice"]);
    assert_eq!(get(&alice, "alpha", "doc.txt").await.unwrap(), b"alpha doc");
    let listed = alice.list_objects_v2().bucket("alpha").send().await.unwrap();
    assert_eq!(listed.contents().len(), 2);
    assert_eq!(get_refused(&alice, "beta", "doc.txt").await, "AccessDenied");
    assert_eq!(put_refused(&alice, "alpha", "new").await, "AccessDenied");
    assert_eq!(
        denied(alice.delete_object().bucket("alpha").key("doc.txt").send().await).await,
        "AccessDenied"
    );
    // A copy needs read on its source as well as write on its target.
    policy(
        &s,
        "beta-write",
        allow(&["s3:PutObject"], &["arn:aws:s3:::beta/*"]),
    );
    ok(&s, &["policy", "attach", "beta-write", "--user", "alice"]);
    alice
        .copy_object()
        .bucket("beta")
        .key("copied")
        .copy_source("alpha/doc.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        denied(
            alice
                .copy_object()
                .bucket("beta")
                .key("c2")
                .copy_source("beta/doc.txt")
                .send()
                .await
        )
        .await,
        "AccessDenied"
    );

    // Write through a group; an explicit deny wins over every allow.
    ok(&s, &["group", "add", "writers"]);
    policy(
        &s,
        "alpha-write",
        allow(&["s3:PutObject", "s3:DeleteObject"], &["arn:aws:s3:::alpha/*"]),
    );
    ok(&s, &["policy", "attach", "alpha-write", "--group", "writers"]);
    ok(&s, &["group", "add-member", "writers", "alice"]);
    put(&alice, "alpha", "by-alice", b"mine".to_vec()).await.unwrap();
    policy(
        &s,
        "no-secrets",
        serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::alpha/secret/*"}]}),
    );
    ok(&s, &["policy", "attach", "no-secrets", "--group", "writers"]);
    assert_eq!(
        denied(
            alice
                .get_object()
                .bucket("alpha")
                .key("secret/plan.txt")
                .send()
                .await
        )
        .await,
        "AccessDenied"
    );
    assert_eq!(
        denied(
            alice
                .delete_objects()
                .bucket("alpha")
                .delete(
                    aws_sdk_s3::types::Delete::builder()
                        .objects(
                            aws_sdk_s3::types::ObjectIdentifier::builder()
                                .key("by-alice")
                                .build()
                                .unwrap()
                        )
                        .objects(
                            aws_sdk_s3::types::ObjectIdentifier::builder()
                                .key("secret/plan.txt")
                                .build()
                                .unwrap()
                        )
                        .build()
                        .unwrap(),
                )
                .send()
                .await
        )
        .await,
        "AccessDenied"
    );
    // The simulator names the statement that decided.
    let sim = |resource: &str| ok(&s, &["policy", "simulate", "alice", "s3:GetObject", resource]);
    let v = sim("arn:aws:s3:::alpha/secret/plan.txt");
    assert_eq!(
        (v["allowed"].as_bool(), v["decided_by"].as_str()),
        (Some(false), Some("no-secrets #1"))
    );
    let v = sim("arn:aws:s3:::alpha/doc.txt");
    assert_eq!(
        (v["allowed"].as_bool(), v["decided_by"].as_str()),
        (Some(true), Some("alpha-read #1"))
    );
    let v = sim("arn:aws:s3:::beta/doc.txt");
    assert_eq!(
        (v["allowed"].as_bool(), v["decided_by"].as_str()),
        (Some(false), None)
    );
    // Any caller may ask who it is.
    let out = admin_as(&s, &alice_key, &alice_secret, &["whoami"]);
    let me: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(me["user"], "alice");
    let mut mine: Vec<&str> = me["policies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    mine.sort();
    assert_eq!(mine, ["alpha-read", "alpha-write", "beta-write", "no-secrets"]);
    assert_eq!(ok(&s, &["whoami"])["type"], "root");
    ok(&s, &["group", "remove-member", "writers", "alice"]);
    assert_eq!(get(&alice, "alpha", "secret/plan.txt").await.unwrap(), b"plan");

    // A bucket policy can grant a user by ARN, and user policies and the
    // bucket policy together decide.
    let (bob, _, _) = user(&s, "bob");
    let iam = ok(&s, &["iam"]);
    let bob_arn = iam["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "bob")
        .unwrap()["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        bob_arn.starts_with("arn:aws:iam::") && bob_arn.ends_with(":user/bob"),
        "{bob_arn}"
    );
    assert_eq!(get_refused(&bob, "beta", "doc.txt").await, "AccessDenied");
    let bucket_policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": bob_arn}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::beta/*"}]});
    root.put_bucket_policy()
        .bucket("beta")
        .policy(bucket_policy.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(get(&bob, "beta", "doc.txt").await.unwrap(), b"beta doc");
    assert_eq!(get_refused(&alice, "beta", "doc.txt").await, "AccessDenied");

    // The admin API is the root's unless a policy grants parts of it.
    let out = admin_as(&s, &alice_key, &alice_secret, &["iam"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stdout).contains("AccessDenied"));

    // A wrong secret for a real key, a disabled key, a disabled user.
    let forged = s3_client_with(&s.endpoint, &alice_key, "not-the-secret-key-at-all");
    let e = forged
        .get_object()
        .bucket("alpha")
        .key("doc.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "SignatureDoesNotMatch");
    ok(&s, &["user", "disable", "alice"]);
    assert_eq!(
        get_refused(&alice, "alpha", "doc.txt").await,
        "InvalidAccessKeyId"
    );
    ok(&s, &["user", "enable", "alice"]);
    assert_eq!(get(&alice, "alpha", "doc.txt").await.unwrap(), b"alpha doc");
    ok(&s, &["user", "disable-key", &alice_key]);
    assert_eq!(
        get_refused(&alice, "alpha", "doc.txt").await,
        "InvalidAccessKeyId"
    );
    ok(&s, &["user", "disable-key", &alice_key, "--enable"]);

    // Refusals in IAM's terms.
    assert_eq!(refused(&s, &["user", "add", "alice"]), "EntityAlreadyExists");
    assert_eq!(refused(&s, &["user", "add", "no/slashes"]), "InvalidInput");
    assert_eq!(refused(&s, &["policy", "remove", "alpha-read"]), "DeleteConflict");
    assert_eq!(
        refused(&s, &["policy", "attach", "nonexistent", "--user", "alice"]),
        "NoSuchEntity"
    );
    assert_eq!(
        refused(&s, &["group", "add-member", "writers", "nobody"]),
        "NoSuchEntity"
    );
    let with_principal = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}]});
    let f = s.root.path().join("bad.json");
    std::fs::write(&f, with_principal.to_string()).unwrap();
    assert_eq!(
        refused(&s, &["policy", "add", "bad", f.to_str().unwrap()]),
        "MalformedPolicyDocument"
    );
    let extra = ok(&s, &["user", "add-key", "alice"]);
    assert!(extra["access_key"].as_str().unwrap() != alice_key);
    assert_eq!(refused(&s, &["user", "add-key", "alice"]), "LimitExceeded");

    // Across a restart: users, groups and attachments stay; no secret is
    // on the drives in plain.
    s.restart();
    let alice = s3_client_with(&s.endpoint, &alice_key, &alice_secret);
    assert_eq!(get(&alice, "alpha", "doc.txt").await.unwrap(), b"alpha doc");
    for f in s.drives.iter().flat_map(|d| files_below(d)) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes
                .windows(alice_secret.len())
                .any(|w| w == alice_secret.as_bytes()),
            "{} holds a secret in plain",
            f.display()
        );
    }
    // Removed: the user's keys stop working at once.
    ok(&s, &["user", "remove", "alice"]);
    assert_eq!(
        get_refused(&alice, "alpha", "doc.txt").await,
        "InvalidAccessKeyId"
    );
    let iam = ok(&s, &["iam"]);
    assert!(!iam.to_string().contains(&alice_secret));
    assert!(iam["groups"][0]["members"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_and_policy_variables_narrow_what_policies_grant() {
    let s = Server::start(4, &[]);
    let root = s3_client(&s.endpoint);
    root.create_bucket().bucket("home").send().await.unwrap();
    for k in ["alice/a.txt", "bob/b.txt"] {
        put(&root, "home", k, k.as_bytes().to_vec()).await.unwrap();
    }
    // Home directories: each user lists and reads below their own name,
    // writes only tagged objects, and only from loopback.
    policy(
        &s,
        "home-dirs",
        serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::home",
             "Condition": {"StringLike": {"s3:prefix": "${aws:username}/*"}}},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::home/${aws:username}/*",
             "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1/128"]}}},
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::home/${aws:username}/*",
             "Condition": {"StringEquals": {"s3:RequestObjectTag/project": "strata"}}},
            {"Effect": "Deny", "Action": "s3:*", "Resource": "*",
             "Condition": {"NumericGreaterThan": {"s3:max-keys": 100}}}
        ]}),
    );
    let (alice, _, _) = user(&s, "alice");
    ok(&s, &["policy", "attach", "home-dirs", "--user", "alice"]);
    let listed = alice
        .list_objects_v2()
        .bucket("home")
        .prefix("alice/")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), 1);
    assert_eq!(
        denied(alice.list_objects_v2().bucket("home").prefix("bob/").send().await).await,
        "AccessDenied"
    );
    assert_eq!(
        denied(alice.list_objects_v2().bucket("home").send().await).await,
        "AccessDenied"
    );
    assert_eq!(
        denied(
            alice
                .list_objects_v2()
                .bucket("home")
                .prefix("alice/")
                .max_keys(1000)
                .send()
                .await
        )
        .await,
        "AccessDenied"
    );
    assert_eq!(get(&alice, "home", "alice/a.txt").await.unwrap(), b"alice/a.txt");
    assert_eq!(get_refused(&alice, "home", "bob/b.txt").await, "AccessDenied");
    assert_eq!(put_refused(&alice, "home", "alice/new").await, "AccessDenied");
    alice
        .put_object()
        .bucket("home")
        .key("alice/new")
        .tagging("project=strata&team=storage")
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();
    assert_eq!(
        denied(
            alice
                .put_object()
                .bucket("home")
                .key("alice/other")
                .tagging("project=elsewhere")
                .body(b"x".to_vec().into())
                .send()
                .await
        )
        .await,
        "AccessDenied"
    );

    // Simulated from elsewhere, the address condition refuses.
    let at = |ip: &str| {
        let v = ok(
            &s,
            &[
                "policy",
                "simulate",
                "alice",
                "s3:GetObject",
                "arn:aws:s3:::home/alice/a.txt",
                "--context",
                &format!("aws:SourceIp={ip}"),
            ],
        );
        v["allowed"].as_bool().unwrap()
    };
    assert!(at("127.0.0.1") && !at("10.9.9.9"));

    // A bucket policy that refuses plain HTTP, and one that lets browsers
    // coming from one site read anonymously.
    let bucket_policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::home/*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}, "StringEquals": {"aws:PrincipalType": "User"}}},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::home/bob/*",
         "Condition": {"StringLike": {"aws:Referer": "https://*.example.com/*"}}}
    ]});
    root.put_bucket_policy()
        .bucket("home")
        .policy(bucket_policy.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(get_refused(&alice, "home", "alice/a.txt").await, "AccessDenied");
    let curl = |referer: Option<&str>| {
        let mut c = Command::new("curl");
        c.args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]);
        if let Some(r) = referer {
            c.args(["-H", &format!("Referer: {r}")]);
        }
        let out = c.arg(format!("{}/home/bob/b.txt", s.endpoint)).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl(Some("https://www.example.com/gallery")), "200");
    assert_eq!(curl(Some("https://evil.example.org/")), "403");
    assert_eq!(curl(None), "403");

    // Keys the server does not know are refused, never ignored.
    let unknown = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::home/*",
         "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}}]});
    let e = root
        .put_bucket_policy()
        .bucket("home")
        .policy(unknown.to_string())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "MalformedPolicy");
    let f = s.root.path().join("unknown.json");
    std::fs::write(&f, unknown.to_string().replace("\"Principal\":\"*\",", "")).unwrap();
    assert_eq!(
        refused(&s, &["policy", "add", "unknown", f.to_str().unwrap()]),
        "MalformedPolicyDocument"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_accounts_never_exceed_their_parent() {
    let s = Server::start(4, &[]);
    let root = s3_client(&s.endpoint);
    for b in ["apps", "other"] {
        root.create_bucket().bucket(b).send().await.unwrap();
    }
    for k in ["web/site.html", "db/dump.sql"] {
        put(&root, "apps", k, k.as_bytes().to_vec()).await.unwrap();
    }
    put(&root, "other", "x", b"x".to_vec()).await.unwrap();
    let (_, carol_key, carol_secret) = user(&s, "carol");
    policy(
        &s,
        "apps-rw",
        allow(&["s3:GetObject", "s3:PutObject"], &["arn:aws:s3:::apps/*"]),
    );
    ok(&s, &["policy", "attach", "apps-rw", "--user", "carol"]);

    // Narrowed to web/: reads there only; its policy cannot widen it to
    // another bucket the parent has no right to.
    let narrow = s.root.path().join("web-only.json");
    std::fs::write(
        &narrow,
        allow(
            &["s3:GetObject"],
            &["arn:aws:s3:::apps/web/*", "arn:aws:s3:::other/*"],
        )
        .to_string(),
    )
    .unwrap();
    let v = ok(
        &s,
        &["svcacct", "add", "carol", "--policy", narrow.to_str().unwrap()],
    );
    let (ak, sk) = (
        v["access_key"].as_str().unwrap(),
        v["secret_key"].as_str().unwrap(),
    );
    let web = s3_client_with(&s.endpoint, ak, sk);
    assert_eq!(
        get(&web, "apps", "web/site.html").await.unwrap(),
        b"web/site.html"
    );
    assert_eq!(get_refused(&web, "apps", "db/dump.sql").await, "AccessDenied");
    assert_eq!(put_refused(&web, "apps", "web/new").await, "AccessDenied");
    assert_eq!(get_refused(&web, "other", "x").await, "AccessDenied");
    // Without a policy: the parent's rights, no more.
    let v = ok(&s, &["svcacct", "add", "carol"]);
    let full = s3_client_with(
        &s.endpoint,
        v["access_key"].as_str().unwrap(),
        v["secret_key"].as_str().unwrap(),
    );
    put(&full, "apps", "db/new.sql", b"n".to_vec()).await.unwrap();
    assert_eq!(get_refused(&full, "other", "x").await, "AccessDenied");
    // Listed without its secret.
    let iam = ok(&s, &["iam"]);
    assert_eq!(iam["service_accounts"].as_array().unwrap().len(), 2);
    assert!(!iam.to_string().contains(sk));
    // Disabled on its own, or with its parent; deleted with its parent.
    ok(&s, &["svcacct", "disable", ak]);
    assert_eq!(
        get_refused(&web, "apps", "web/site.html").await,
        "InvalidAccessKeyId"
    );
    ok(&s, &["svcacct", "disable", ak, "--enable"]);
    ok(&s, &["user", "disable", "carol"]);
    assert_eq!(
        get_refused(&web, "apps", "web/site.html").await,
        "InvalidAccessKeyId"
    );
    ok(&s, &["user", "enable", "carol"]);
    assert_eq!(
        get(&web, "apps", "web/site.html").await.unwrap(),
        b"web/site.html"
    );
    assert_eq!(refused(&s, &["svcacct", "add", "nobody"]), "NoSuchEntity");
    // The root account's own service account: everything, narrowed.
    let v = ok(&s, &["svcacct", "add", "--policy", narrow.to_str().unwrap()]);
    assert_eq!(v["user"], "root");
    let rooted = s3_client_with(
        &s.endpoint,
        v["access_key"].as_str().unwrap(),
        v["secret_key"].as_str().unwrap(),
    );
    assert_eq!(get(&rooted, "other", "x").await.unwrap(), b"x");
    assert_eq!(get_refused(&rooted, "apps", "db/dump.sql").await, "AccessDenied");
    let out = admin_as(
        &s,
        v["access_key"].as_str().unwrap(),
        v["secret_key"].as_str().unwrap(),
        &["svcacct", "add"],
    );
    assert!(
        !out.status.success(),
        "a narrowed account cannot make a wider one: {out:?}"
    );
    ok(&s, &["svcacct", "remove", v["access_key"].as_str().unwrap()]);

    // An admin grant on its own ARN lets a user make its own service
    // accounts, and no one else's; the rest of the admin API stays shut.
    user(&s, "dave");
    policy(
        &s,
        "own-svcaccts",
        allow(
            &["admin:CreateServiceAccount"],
            &["arn:aws:iam::*:user/${aws:username}"],
        ),
    );
    ok(&s, &["policy", "attach", "own-svcaccts", "--user", "carol"]);
    let out = admin_as(&s, &carol_key, &carol_secret, &["svcacct", "add", "carol"]);
    assert!(out.status.success(), "{out:?}");
    let own: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let own = s3_client_with(
        &s.endpoint,
        own["access_key"].as_str().unwrap(),
        own["secret_key"].as_str().unwrap(),
    );
    assert_eq!(
        get(&own, "apps", "web/site.html").await.unwrap(),
        b"web/site.html"
    );
    for args in [&["svcacct", "add", "dave"][..], &["iam"], &["user", "add", "eve"]] {
        let out = admin_as(&s, &carol_key, &carol_secret, args);
        assert!(
            !out.status.success() && String::from_utf8_lossy(&out.stdout).contains("AccessDenied"),
            "{args:?}: {out:?}"
        );
    }
    ok(&s, &["user", "remove", "carol"]);
    assert_eq!(
        get_refused(&full, "apps", "db/new.sql").await,
        "InvalidAccessKeyId"
    );
    assert!(
        ok(&s, &["iam"])["service_accounts"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

fn sts_client(s: &Server, access: &str, secret: &str) -> aws_sdk_sts::Client {
    let creds = aws_sdk_sts::config::Credentials::new(access, secret, None, None, "strata-tests");
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(&s.endpoint)
        .credentials_provider(creds)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_sts::Client::from_conf(conf)
}

/// The Rust AWS SDK's STS client against objd's STS: AssumeRole with a
/// session policy, the credentials used by the S3 client, and STS errors
/// parsed into the SDK's error codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_sdk_assumes_roles_and_reads_sts_errors() {
    let s = Server::start(4, &[]);
    let root = s3_client(&s.endpoint);
    root.create_bucket().bucket("sdk").send().await.unwrap();
    for k in ["in/a", "out/b"] {
        put(&root, "sdk", k, k.as_bytes().to_vec()).await.unwrap();
    }
    let (_, ak, sk) = user(&s, "henry");
    policy(&s, "sdk-read", allow(&["s3:GetObject"], &["arn:aws:s3:::sdk/*"]));
    ok(&s, &["policy", "attach", "sdk-read", "--user", "henry"]);

    let sts = sts_client(&s, &ak, &sk);
    let me = sts.get_caller_identity().send().await.unwrap();
    assert!(me.arn().unwrap().ends_with(":user/henry"), "{me:?}");
    let narrow = allow(&["s3:GetObject"], &["arn:aws:s3:::sdk/in/*"]).to_string();
    let out = sts
        .assume_role()
        .role_arn("arn:aws:iam::000000000000:role/sdk")
        .role_session_name("rust-sdk")
        .duration_seconds(900)
        .policy(narrow)
        .send()
        .await
        .unwrap();
    let c = out.credentials().unwrap();
    assert!(c.access_key_id().starts_with("ASIA"));
    let left = c.expiration().secs()
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
    assert!((880..=901).contains(&left), "{left}");

    let creds = aws_sdk_s3::config::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        None,
        "sts",
    );
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&s.endpoint)
        .credentials_provider(creds)
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    let session = aws_sdk_s3::Client::from_conf(conf);
    assert_eq!(get(&session, "sdk", "in/a").await.unwrap(), b"in/a");
    assert_eq!(get_refused(&session, "sdk", "out/b").await, "AccessDenied");

    // STS errors come back as the SDK's error codes.
    use aws_sdk_sts::error::ProvideErrorMetadata;
    let e = sts
        .assume_role()
        .role_arn("arn:aws:iam::000000000000:role/sdk")
        .role_session_name("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ValidationError"), "{e:?}");
    let e = sts
        .assume_role_with_web_identity()
        .role_arn("arn:aws:iam::000000000000:role/sdk")
        .role_session_name("web")
        .web_identity_token("not.a.token")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidIdentityToken"), "{e:?}");
    let e = sts_client(&s, &ak, "wrong-secret-key-0000")
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("SignatureDoesNotMatch"), "{e:?}");
}
