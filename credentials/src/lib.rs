//! Alibaba Cloud credentials for the service plugins (Tablestore, OSS, MaxCompute).
//!
//! A plugin turns its connection parameters into a [`Source`] ([`Source::from_parameter`])
//! and the source into a [`Provider`] ([`Provider::new`]) while it reads its
//! configuration; every request then asks the provider for the current [`Credentials`]
//! ([`Provider::get`]) and signs with them. Where credentials come from:
//!
//! * static keys (`accessId` / `accessKey`, optionally `securityToken`) in the job;
//! * the default chain when the job gives no keys: the environment
//!   (`ALIBABA_CLOUD_ACCESS_KEY_ID` …), the `aliyun` CLI profile file
//!   (`~/.aliyun/config.json`), the ECS RAM role of the instance metadata service when
//!   `ALIBABA_CLOUD_ECS_METADATA` names the role;
//! * an explicit `"credentials"` parameter: `"ecs_ram_role"`, a profile, or STS
//!   AssumeRole (`{"type": "ram_role_arn", "roleArn": …}`).
//!
//! Temporary credentials (ECS RAM role, AssumeRole) are cached and fetched again ahead of
//! their `Expiration` ([`refresh_margin`]), so a long task keeps signing with a valid
//! token. Secrets never appear in `Debug`, in errors or in logs.

mod assume_role;
mod imds;
mod profile;
mod provider;
mod source;

pub use assume_role::{rpc_signature, AssumeRole};
pub use imds::{Imds, ENDPOINT_ENV as ECS_METADATA_ENDPOINT_ENV};
pub use provider::{refresh_margin, Provider, NO_REFRESH_ENV};
pub use source::{KeyNames, Source, CREDENTIALS_KEY, KEY_NAMES};

use std::time::SystemTime;

/// One set of credentials: an access key, and for temporary credentials the STS
/// security token and the expiry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: String,
    pub security_token: Option<String>,
    /// When temporary credentials stop working; `None` for a permanent key.
    pub expiration: Option<SystemTime>,
}

impl Credentials {
    /// A permanent key, or an STS key given as it is (which cannot be refreshed).
    pub fn fixed(id: &str, secret: &str, security_token: Option<&str>) -> Self {
        Self {
            access_key_id: id.to_owned(),
            access_key_secret: secret.to_owned(),
            security_token: security_token
                .filter(|t| !t.trim().is_empty())
                .map(str::to_owned),
            expiration: None,
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<hidden>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<hidden>"),
            )
            .field("expiration", &self.expiration.map(rfc3339))
            .finish()
    }
}

/// Why credentials could not be had. Messages name the source and never a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The job's parameters or the local files/environment are wrong or give nothing:
    /// a configuration error.
    #[error("{0}")]
    Config(String),
    /// A credentials service (instance metadata, STS) could not be reached or failed
    /// in a way that may pass.
    #[error("{0}")]
    Temporary(String),
    /// A credentials service refused (unknown role, access denied, malformed answer).
    #[error("{0}")]
    Refused(String),
}

impl Error {
    /// Whether the same call may succeed later.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Error::Temporary(_))
    }
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Parses the `Expiration` of STS and the metadata service (`2024-11-21T10:20:00Z`).
pub(crate) fn parse_expiration(text: &str) -> Option<SystemTime> {
    let t = chrono::DateTime::parse_from_rfc3339(text.trim()).ok()?;
    Some(SystemTime::from(t.with_timezone(&chrono::Utc)))
}

/// The value of the first of `names` that is set and not blank.
pub(crate) fn env_first(names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|n| std::env::var(n).ok())
        .find(|v| !v.trim().is_empty())
}

/// Builds the HTTP client for a credentials service.
pub(crate) fn http_client(connect_ms: u64, read_ms: u64) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_millis(connect_ms))
        .timeout(std::time::Duration::from_millis(connect_ms + read_ms))
        .user_agent(concat!(
            "streamport-credentials/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(|e| Error::Config(format!("building the HTTP client for credentials: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let c = Credentials::fixed("LTAIid", "SECRET", Some("TOKEN"));
        let text = format!("{c:?}");
        assert!(text.contains("LTAIid"));
        assert!(!text.contains("SECRET") && !text.contains("TOKEN"));
        assert_eq!(Credentials::fixed("a", "b", Some(" ")).security_token, None);
    }

    #[test]
    fn expiration_format() {
        let t = parse_expiration("2024-11-21T10:20:00Z").unwrap();
        assert_eq!(rfc3339(t), "2024-11-21T10:20:00Z");
        assert!(parse_expiration("tomorrow").is_none());
    }
}
