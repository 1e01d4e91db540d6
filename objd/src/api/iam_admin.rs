//! The admin API's IAM part, under `/_strata/admin/v1/iam` (the root
//! credentials, or users whose policies allow the operation's `admin:`
//! action, like all of the admin API):
//!
//! | request | does |
//! |---|---|
//! | `GET iam` | users (with groups, policies and access key ids), groups, policies |
//! | `PUT iam/user?name=U` | creates a user with an access key; answers `{user, access_key, secret_key}` (the secret is never shown again) |
//! | `POST iam/user?name=U&enabled=false` | disables (or enables) a user |
//! | `DELETE iam/user?name=U` | deletes a user and its keys |
//! | `PUT iam/access-key?user=U` | a new access key (at most 2 per user) |
//! | `POST iam/access-key?key=K&enabled=false` | disables (or enables) a key |
//! | `DELETE iam/access-key?key=K` | deletes a key |
//! | `PUT iam/policy?name=P` | creates or replaces a policy; the body is the JSON document |
//! | `DELETE iam/policy?name=P` | deletes a policy attached to no one |
//! | `PUT/DELETE iam/attachment?policy=P&user=U` (or `group=G`) | attaches / detaches |
//! | `PUT/DELETE iam/group?name=G` | creates / deletes a group |
//! | `PUT/DELETE iam/member?group=G&user=U` | adds / removes a member |
//! | `PUT iam/svcacct[?user=U]` | a service account of `U` (without `user`, of the caller); an optional body is its narrowing policy, or with `format=json` `{policy, access_key, secret_key}` for chosen credentials; answers `{user, access_key, secret_key}` |
//! | `POST iam/svcacct?key=K&enabled=false` | disables (or enables) a service account |
//! | `DELETE iam/svcacct?key=K` | deletes a service account |
//! | `PUT iam/idp?name=N` | adds or replaces an identity provider; the body is its JSON (`{"type": "openid", "issuer", "client_ids", "claim", "roles"}`) |
//! | `DELETE iam/idp?name=N` | removes an identity provider |
//! | `GET iam/whoami` | the caller (any signed caller may ask): root, or the user with its policies |
//! | `POST iam/simulate` | body `{"user", "action", "resource", "context": {KEY: VALUE}}`: `{"allowed", "decided_by"}` with the user's and the bucket's policies |
//!
//! Errors answer `{"error": CODE, "message": ...}` with IAM's codes
//! (`NoSuchEntity` 404, `EntityAlreadyExists` 409, `DeleteConflict` 409,
//! `LimitExceeded` 409, `MalformedPolicyDocument` 400, `InvalidInput` 400).

use super::admin::{json_response, query_param};
use crate::iam::{Holder, Iam, IamError};
use crate::object::ObjectLayer;
use crate::policy::{self, MAX_POLICY_SIZE, Principal};
use crate::server::caller::Caller;
use http::{Method, StatusCode, Uri};
use s3s::{Body, S3Request, S3Response, S3Result};

fn error(e: IamError) -> S3Result<S3Response<Body>> {
    match (e.code(), e) {
        (_, IamError::Storage(e)) => Err(super::error::to_s3(e)),
        (Some((status, code)), e) => {
            let body = serde_json::json!({ "error": code, "message": e.to_string() });
            Ok(json_response(status, body.to_string()))
        }
        (None, e) => Err(s3s::S3Error::with_message(
            s3s::S3ErrorCode::InternalError,
            e.to_string(),
        )),
    }
}

fn done(r: Result<serde_json::Value, IamError>) -> S3Result<S3Response<Body>> {
    match r {
        Ok(v) => Ok(json_response(StatusCode::OK, v.to_string())),
        Err(e) => error(e),
    }
}

fn param(uri: &Uri, name: &str) -> Result<String, IamError> {
    query_param(uri, name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| IamError::Invalid(format!("the {name} parameter is missing")))
}

fn enabled(uri: &Uri) -> Result<bool, IamError> {
    match query_param(uri, "enabled").as_deref() {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        _ => Err(IamError::Invalid("enabled must be true or false".into())),
    }
}

fn holder(uri: &Uri) -> Result<Holder, IamError> {
    match (query_param(uri, "user"), query_param(uri, "group")) {
        (Some(u), None) => Ok(Holder::User(u)),
        (None, Some(g)) => Ok(Holder::Group(g)),
        _ => Err(IamError::Invalid("give exactly one of user and group".into())),
    }
}

fn keys(user: &str, (ak, sk): (String, String)) -> serde_json::Value {
    serde_json::json!({ "user": user, "access_key": ak, "secret_key": sk })
}

/// A policy document from a request body.
async fn policy_body(body: &mut Body) -> Result<String, IamError> {
    let bytes = body
        .store_all_limited(MAX_POLICY_SIZE + 1)
        .await
        .map_err(|_| IamError::MalformedPolicyDocument("policies must be at most 20 KiB".into()))?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| IamError::MalformedPolicyDocument("the policy is not UTF-8".into()))
}

const OK: fn() -> serde_json::Value = || serde_json::json!({ "ok": true });

/// What the IAM admin operations work with.
pub struct IamAdmin<'a> {
    pub iam: &'a Iam,
    pub layer: &'a ObjectLayer,
    pub root: &'a str,
}

impl IamAdmin<'_> {
    /// The caller, and what applies to it.
    async fn whoami(&self, access_key: &str, token: Option<&str>) -> Result<serde_json::Value, IamError> {
        let caller = crate::server::caller::resolve(self.iam, self.root, Some(access_key), token)
            .await
            .map_err(|_| IamError::NoSuchEntity("the access key is not in use".into()))?;
        let Caller::User(who, policies) = caller else {
            return Ok(serde_json::json!({ "type": "root", "access_key": access_key }));
        };
        let policies: Vec<&String> = policies.iter().map(|(n, _)| n).collect();
        Ok(serde_json::json!({
            "type": if who.session.is_some() { "session" } else { "user" },
            "user": who.user, "arn": who.arn, "access_key": access_key,
            "session_arn": who.session,
            "service_account": self.iam.is_svcacct(access_key).await,
            "narrowed_by": who.narrowed.len(),
            "policies": policies,
        }))
    }

    /// How a request of `user` would be decided.
    async fn simulate(&self, body: &[u8]) -> Result<serde_json::Value, IamError> {
        #[derive(serde::Deserialize)]
        struct Ask {
            user: String,
            action: String,
            resource: String,
            #[serde(default)]
            context: std::collections::BTreeMap<String, String>,
        }
        let ask: Ask = serde_json::from_slice(body)
            .map_err(|e| IamError::Invalid(format!("the simulation request is not valid: {e}")))?;
        if !self.iam.user_exists(&ask.user).await {
            return Err(IamError::NoSuchEntity(format!("no user {}", ask.user)));
        }
        let arn = self.iam.user_arn(&ask.user);
        let mut ctx = policy::Context::default();
        let who = crate::iam::Identity {
            user: ask.user.clone(),
            arn: arn.clone(),
            narrowed: Vec::new(),
            session: None,
        };
        who.describe(&mut ctx);
        for (k, v) in &ask.context {
            ctx.set(k, v.as_str());
        }
        let identity = self.iam.policies_of(&ask.user).await;
        let bucket = ask
            .resource
            .strip_prefix("arn:aws:s3:::")
            .map(|r| r.split('/').next().unwrap_or(r).to_owned());
        let bucket_policy = bucket.and_then(|b| crate::iam::bucket_policy(self.layer, &b));
        let v = crate::iam::decide_with_bucket(
            &identity,
            bucket_policy.as_ref(),
            Principal::Arn(&arn),
            &ask.action,
            &ask.resource,
            &ctx,
        );
        Ok(serde_json::json!({ "allowed": v.allowed, "decided_by": v.decided_by }))
    }

    /// Serves `op` (the path after `iam`).
    pub async fn call(&self, req: S3Request<Body>, op: &str) -> S3Result<S3Response<Body>> {
        let caller = req
            .credentials
            .as_ref()
            .map(|c| c.access_key.clone())
            .unwrap_or_default();
        if op == "/whoami" {
            let token = crate::server::caller::security_token(&req.headers, &req.uri);
            return done(self.whoami(&caller, token.as_deref()).await);
        }
        if (req.method.clone(), op) == (Method::POST, "/simulate") {
            let mut req = req;
            let body = policy_body(&mut req.input).await;
            return done(match body {
                Ok(b) => self.simulate(b.as_bytes()).await,
                Err(e) => Err(e),
            });
        }
        if (req.method.clone(), op) == (Method::PUT, "/svcacct") {
            let mut req = req;
            let body = policy_body(&mut req.input).await;
            let caller = self.caller(&req).await;
            return done(match body {
                Ok(b) => self.add_svcacct(&req.uri, caller, &b).await,
                Err(e) => Err(e),
            });
        }
        call(self.iam, req, op).await
    }

    async fn caller(&self, req: &S3Request<Body>) -> Option<Caller> {
        let key = req.credentials.as_ref()?.access_key.clone();
        let token = crate::server::caller::security_token(&req.headers, &req.uri);
        crate::server::caller::resolve(self.iam, self.root, Some(&key), token.as_deref())
            .await
            .ok()
    }

    /// `PUT iam/svcacct[?user=U][&format=json]`: a service account of `U`,
    /// or without `user` of the caller itself (the root account, or a user
    /// signing with its own key: narrowed callers, whose new account could
    /// be wider than they are, may not). The body is the narrowing policy,
    /// or with `format=json` `{"policy", "access_key", "secret_key"}` for
    /// chosen credentials.
    async fn add_svcacct(
        &self,
        uri: &Uri,
        caller: Option<Caller>,
        body: &str,
    ) -> Result<serde_json::Value, IamError> {
        #[derive(serde::Deserialize, Default)]
        struct Ask {
            policy: Option<String>,
            access_key: Option<String>,
            secret_key: Option<String>,
        }
        let ask = if query_param(uri, "format").as_deref() == Some("json") {
            serde_json::from_str(body)
                .map_err(|e| IamError::Invalid(format!("the service account request is not valid: {e}")))?
        } else {
            Ask {
                policy: Some(body.to_owned()),
                ..Ask::default()
            }
        };
        let parent = match (query_param(uri, "user").filter(|u| !u.is_empty()), caller) {
            (Some(u), _) => u,
            (None, Some(Caller::Root)) => String::new(),
            (None, Some(Caller::User(who, _))) if who.narrowed.is_empty() && who.session.is_none() => {
                who.user.clone()
            }
            _ => {
                return Err(IamError::Invalid(
                    "service accounts and temporary credentials cannot make service accounts of their own"
                        .into(),
                ));
            }
        };
        let policy = ask.policy.as_deref().filter(|t| !t.trim().is_empty());
        let chosen = match (&ask.access_key, &ask.secret_key) {
            (Some(a), Some(s)) => Some((a.as_str(), s.as_str())),
            (None, None) => None,
            _ => {
                return Err(IamError::Invalid(
                    "give both access_key and secret_key, or neither".into(),
                ));
            }
        };
        let shown = if parent.is_empty() {
            "root"
        } else {
            parent.as_str()
        };
        Ok(keys(shown, self.iam.add_svcacct(&parent, policy, chosen).await?))
    }
}

/// Serves the changes and listings of `op` (the path after `iam`).
async fn call(iam: &Iam, mut req: S3Request<Body>, op: &str) -> S3Result<S3Response<Body>> {
    let uri = req.uri.clone();
    let m = req.method.clone();
    let r: Result<serde_json::Value, IamError> = async {
        Ok(match (m, op) {
            (Method::GET, "") => iam.summary().await,
            (Method::PUT, "/user") => {
                let name = param(&uri, "name")?;
                keys(&name, iam.add_user(&name).await?)
            }
            (Method::POST, "/user") => {
                iam.set_user_enabled(&param(&uri, "name")?, enabled(&uri)?)
                    .await?;
                OK()
            }
            (Method::DELETE, "/user") => {
                iam.remove_user(&param(&uri, "name")?, false).await?;
                OK()
            }
            (Method::PUT, "/access-key") => {
                let user = param(&uri, "user")?;
                keys(&user, iam.add_key(&user).await?)
            }
            (Method::POST, "/access-key") => {
                iam.change_key(&param(&uri, "key")?, Some(enabled(&uri)?)).await?;
                OK()
            }
            (Method::DELETE, "/access-key") => {
                iam.change_key(&param(&uri, "key")?, None).await?;
                OK()
            }
            (Method::PUT, "/policy") => {
                let name = param(&uri, "name")?;
                let text = policy_body(&mut req.input).await?;
                iam.put_policy(&name, &text).await?;
                OK()
            }
            (Method::POST, "/svcacct") => {
                iam.change_svcacct(&param(&uri, "key")?, Some(enabled(&uri)?))
                    .await?;
                OK()
            }
            (Method::DELETE, "/svcacct") => {
                iam.change_svcacct(&param(&uri, "key")?, None).await?;
                OK()
            }
            (Method::DELETE, "/policy") => {
                iam.remove_policy(&param(&uri, "name")?).await?;
                OK()
            }
            (Method::PUT | Method::DELETE, "/attachment") => {
                let attach = req.method == Method::PUT;
                iam.attach(&param(&uri, "policy")?, &holder(&uri)?, attach)
                    .await?;
                OK()
            }
            (Method::PUT, "/group") => {
                iam.add_group(&param(&uri, "name")?).await?;
                OK()
            }
            (Method::DELETE, "/group") => {
                iam.remove_group(&param(&uri, "name")?, false).await?;
                OK()
            }
            (Method::PUT | Method::DELETE, "/member") => {
                let add = req.method == Method::PUT;
                iam.set_member(&param(&uri, "group")?, &param(&uri, "user")?, add)
                    .await?;
                OK()
            }
            (Method::PUT, "/idp") => {
                let name = param(&uri, "name")?;
                let text = policy_body(&mut req.input).await?;
                let config = serde_json::from_str(&text)
                    .map_err(|e| IamError::Invalid(format!("the identity provider is not valid: {e}")))?;
                iam.put_idp(&name, config).await?;
                OK()
            }
            (Method::DELETE, "/idp") => {
                iam.remove_idp(&param(&uri, "name")?).await?;
                OK()
            }
            _ => return Err(IamError::Invalid(format!("unknown IAM admin operation {op}"))),
        })
    }
    .await;
    done(r)
}
