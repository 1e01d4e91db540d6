//! Cross-origin resource sharing: a bucket's CORS rules, their validation,
//! storage encoding, and the matching of a browser request (origin,
//! method, requested headers) against them. The server answers preflight
//! `OPTIONS` requests and adds the `Access-Control-*` headers to matching
//! requests from these rules.

use serde::{Deserialize, Serialize};

/// Name of the bucket setting holding a bucket's CORS rules.
pub const BUCKET_SETTING: &str = "cors";

/// Most rules in one configuration, as S3 allows.
pub const MAX_RULES: usize = 100;

const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CorsRule {
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CorsConfig {
    pub rules: Vec<CorsRule>,
}

/// What a matching rule lets the server tell the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsGrant {
    /// `*` when the rule allows every origin, else the request's origin.
    pub allow_origin: String,
    pub allow_methods: String,
    pub allow_headers: Option<String>,
    pub expose_headers: Option<String>,
    pub max_age: Option<i32>,
}

impl CorsConfig {
    /// Checks the rules as S3 does; the error says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.rules.is_empty() || self.rules.len() > MAX_RULES {
            return Err(format!("a CORS configuration holds 1 to {MAX_RULES} rules"));
        }
        for r in &self.rules {
            if r.allowed_origins.is_empty() || r.allowed_methods.is_empty() {
                return Err("every CORS rule needs AllowedOrigin and AllowedMethod".into());
            }
            if let Some(m) = r.allowed_methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
                return Err(format!(
                    "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
                ));
            }
            for o in &r.allowed_origins {
                if o.matches('*').count() > 1 {
                    return Err(format!(
                        "AllowedOrigin \"{o}\" can not have more than one wildcard."
                    ));
                }
            }
            for h in &r.allowed_headers {
                if h.matches('*').count() > 1 {
                    return Err(format!(
                        "AllowedHeader \"{h}\" can not have more than one wildcard."
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(b: &[u8]) -> Option<Self> {
        serde_json::from_slice(b).ok()
    }

    /// The first rule that allows `origin` to use `method` with
    /// `headers` (the `Access-Control-Request-Headers` of a preflight).
    pub fn find(&self, origin: &str, method: &str, headers: &[&str]) -> Option<CorsGrant> {
        let rule = self.rules.iter().find(|r| {
            r.allowed_origins
                .iter()
                .any(|o| crate::policy::wildcard(o, origin, false))
                && r.allowed_methods.iter().any(|m| m == method)
                && headers.iter().all(|h| {
                    r.allowed_headers
                        .iter()
                        .any(|a| crate::policy::wildcard(a, h, true))
                })
        })?;
        let any_origin = rule.allowed_origins.iter().any(|o| o == "*");
        Some(CorsGrant {
            allow_origin: if any_origin { "*".into() } else { origin.to_owned() },
            allow_methods: rule.allowed_methods.join(", "),
            allow_headers: (!headers.is_empty()).then(|| headers.join(", ")),
            expose_headers: (!rule.expose_headers.is_empty()).then(|| rule.expose_headers.join(", ")),
            max_age: rule.max_age_seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CorsConfig {
        CorsConfig {
            rules: vec![
                CorsRule {
                    allowed_origins: vec!["https://*.example.com".into()],
                    allowed_methods: vec!["GET".into(), "PUT".into()],
                    allowed_headers: vec!["content-type".into(), "x-amz-*".into()],
                    expose_headers: vec!["ETag".into()],
                    max_age_seconds: Some(600),
                    ..Default::default()
                },
                CorsRule {
                    allowed_origins: vec!["*".into()],
                    allowed_methods: vec!["GET".into()],
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn matching_rules() {
        let c = config();
        assert!(c.validate().is_ok());
        let g = c
            .find(
                "https://app.example.com",
                "PUT",
                &["Content-Type", "x-amz-meta-a"],
            )
            .unwrap();
        assert_eq!(g.allow_origin, "https://app.example.com");
        assert_eq!(g.allow_methods, "GET, PUT");
        assert_eq!(g.expose_headers.as_deref(), Some("ETag"));
        assert_eq!(g.max_age, Some(600));
        // Another origin only gets the catch-all GET rule.
        assert!(c.find("https://evil.test", "PUT", &[]).is_none());
        assert_eq!(c.find("https://evil.test", "GET", &[]).unwrap().allow_origin, "*");
        // A header no rule allows.
        assert!(
            c.find("https://app.example.com", "PUT", &["authorization"])
                .is_none()
        );
        assert_eq!(CorsConfig::decode(&c.encode()), Some(c));
    }

    #[test]
    fn validation() {
        let mut c = config();
        c.rules[0].allowed_methods.push("PATCH".into());
        assert!(c.validate().unwrap_err().contains("PATCH"));
        let mut c = config();
        c.rules[0].allowed_origins = vec!["https://*.*.com".into()];
        assert!(c.validate().is_err());
        assert!(CorsConfig::default().validate().is_err());
    }
}
