//! The `objd server` flags of the audit log and the targets they make.

use anyhow::{Context, Result, bail};
use clap::Args;
use objd::audit::target::{Elastic, FileTarget, Secret, Target, Webhook};
use objd::audit::{Auditor, Config, FullPolicy, HeaderLists};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Write an audit entry for every request to this file (JSON lines),
    /// rotated by size. See docs/audit.md.
    #[arg(long, env = "OBJD_AUDIT_FILE")]
    audit_file: Option<PathBuf>,
    /// Size in bytes at which the audit file is rotated.
    #[arg(long, env = "OBJD_AUDIT_FILE_MAX_SIZE", default_value_t = 100 << 20)]
    audit_file_max_size: u64,
    /// Rotated audit files kept (the oldest beyond are deleted).
    #[arg(long, env = "OBJD_AUDIT_FILE_KEEP", default_value_t = 10)]
    audit_file_keep: usize,
    /// POST audit entries in batches (a JSON array each) to this URL.
    #[arg(long, env = "OBJD_AUDIT_WEBHOOK")]
    audit_webhook: Option<String>,
    /// File holding the webhook's `Authorization` header value (for
    /// example `Bearer TOKEN`); the environment may hold it instead as
    /// OBJD_AUDIT_WEBHOOK_AUTHORIZATION.
    #[arg(long, env = "OBJD_AUDIT_WEBHOOK_AUTHORIZATION_FILE")]
    audit_webhook_authorization_file: Option<PathBuf>,
    /// Send audit entries to Elasticsearch or OpenSearch (`_bulk`) at this URL.
    #[arg(long, env = "OBJD_AUDIT_ELASTICSEARCH")]
    audit_elasticsearch: Option<String>,
    /// The index entries go to; `%Y`, `%m`, `%d`, `%H` are replaced from the
    /// entry's time (UTC).
    #[arg(
        long,
        env = "OBJD_AUDIT_ELASTICSEARCH_INDEX",
        default_value = "strata-audit-%Y.%m.%d"
    )]
    audit_elasticsearch_index: String,
    /// File holding an Elasticsearch API key (sent as `ApiKey KEY`); or
    /// OBJD_AUDIT_ELASTICSEARCH_API_KEY.
    #[arg(long, env = "OBJD_AUDIT_ELASTICSEARCH_API_KEY_FILE")]
    audit_elasticsearch_api_key_file: Option<PathBuf>,
    /// User name for basic authentication to Elasticsearch (its password
    /// in a file, or OBJD_AUDIT_ELASTICSEARCH_PASSWORD).
    #[arg(long, env = "OBJD_AUDIT_ELASTICSEARCH_USERNAME")]
    audit_elasticsearch_username: Option<String>,
    /// File holding that user's password.
    #[arg(long, env = "OBJD_AUDIT_ELASTICSEARCH_PASSWORD_FILE")]
    audit_elasticsearch_password_file: Option<PathBuf>,
    /// Directory of the targets' durable queues (default: `audit-queue` in
    /// this node's first drive).
    #[arg(long, env = "OBJD_AUDIT_QUEUE_DIR")]
    audit_queue_dir: Option<PathBuf>,
    /// Bytes of entries each target's queue holds while the target is
    /// down or slow.
    #[arg(long, env = "OBJD_AUDIT_QUEUE_SIZE", default_value_t = 1 << 30)]
    audit_queue_size: u64,
    /// When a queue is full: `drop` new entries for that target (counted
    /// in strata_audit_dropped_total and logged), or `block` new requests
    /// until there is room (refused with 503 SlowDown after
    /// --audit-block-timeout).
    #[arg(long, env = "OBJD_AUDIT_QUEUE_FULL", default_value = "drop")]
    audit_queue_full: FullPolicy,
    /// Seconds a request waits for room in a full queue under `block`.
    #[arg(long, env = "OBJD_AUDIT_BLOCK_TIMEOUT", default_value_t = 10)]
    audit_block_timeout: u64,
    /// Request headers recorded besides the default list (comma-separated;
    /// headers that carry credentials or keys are refused).
    #[arg(long, env = "OBJD_AUDIT_HEADERS", value_delimiter = ',')]
    audit_headers: Vec<String>,
}

/// A secret from a file (trailing newline dropped) or else the environment.
pub fn secret(file: Option<&PathBuf>, env: &str) -> Result<Option<String>> {
    match file {
        Some(f) => Ok(Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading {}", f.display()))?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        )),
        None => Ok(std::env::var(env).ok().filter(|v| !v.is_empty())),
    }
}

fn base64(text: &str) -> String {
    base64_simd::STANDARD.encode_to_string(text.as_bytes())
}

impl AuditArgs {
    fn targets(&self, outbound: &strata_s3client::Tls) -> Result<Vec<Arc<dyn Target>>> {
        let mut targets: Vec<Arc<dyn Target>> = Vec::new();
        if let Some(path) = &self.audit_file {
            targets.push(Arc::new(FileTarget::new(
                path.clone(),
                self.audit_file_max_size,
                self.audit_file_keep,
            )?));
        }
        let http = || strata_s3client::Fetcher::new(outbound, Duration::from_secs(30), 1 << 20);
        if let Some(url) = &self.audit_webhook {
            let auth = secret(
                self.audit_webhook_authorization_file.as_ref(),
                "OBJD_AUDIT_WEBHOOK_AUTHORIZATION",
            )?;
            targets.push(Arc::new(Webhook::new(url.clone(), auth.map(Secret), http()?)));
        }
        if let Some(url) = &self.audit_elasticsearch {
            let key = secret(
                self.audit_elasticsearch_api_key_file.as_ref(),
                "OBJD_AUDIT_ELASTICSEARCH_API_KEY",
            )?;
            let auth = match (key, &self.audit_elasticsearch_username) {
                (Some(_), Some(_)) => bail!("give Elasticsearch an API key or a user name, not both"),
                (Some(k), None) => Some(format!("ApiKey {k}")),
                (None, Some(user)) => {
                    let password = secret(
                        self.audit_elasticsearch_password_file.as_ref(),
                        "OBJD_AUDIT_ELASTICSEARCH_PASSWORD",
                    )?
                    .context("the Elasticsearch user needs its password (a file or OBJD_AUDIT_ELASTICSEARCH_PASSWORD)")?;
                    Some(format!("Basic {}", base64(&format!("{user}:{password}"))))
                }
                (None, None) => None,
            };
            let index = &self.audit_elasticsearch_index;
            let sample = ["%Y", "%m", "%d", "%H"]
                .iter()
                .fold(index.clone(), |s, p| s.replace(p, "0"));
            if sample.is_empty() || sample != sample.to_lowercase() {
                bail!("the Elasticsearch index name must be lower case");
            }
            targets.push(Arc::new(Elastic::new(
                url,
                index.clone(),
                auth.map(Secret),
                http()?,
            )));
        }
        Ok(targets)
    }

    /// The audit log the flags configure, started; `None` without targets.
    pub fn open(
        &self,
        node: String,
        deployment_id: &str,
        first_drive: Option<&Path>,
        outbound: &strata_s3client::Tls,
    ) -> Result<Option<Arc<Auditor>>> {
        let targets = self.targets(outbound)?;
        if targets.is_empty() {
            return Ok(None);
        }
        let queue_dir = match (&self.audit_queue_dir, first_drive) {
            (Some(d), _) => d.clone(),
            (None, Some(d)) => d.join("audit-queue"),
            (None, None) => bail!("give the audit queues a directory: --audit-queue-dir"),
        };
        let headers = HeaderLists::with_request_headers(&self.audit_headers).map_err(anyhow::Error::msg)?;
        let config = Config {
            node,
            deployment_id: deployment_id.to_owned(),
            queue_dir,
            queue_size: self.audit_queue_size.max(1 << 16),
            full: self.audit_queue_full,
            admit_wait: Duration::from_secs(self.audit_block_timeout),
            headers,
        };
        Ok(Some(
            Auditor::start(config, targets).context("starting the audit log")?,
        ))
    }
}
