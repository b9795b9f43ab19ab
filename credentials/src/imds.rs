//! The ECS RAM role through the instance metadata service, as the official providers
//! call it (aliyun/credentials-python `provider/ecs_ram_role.py`):
//!
//! * `PUT /latest/api/token` with `X-aliyun-ecs-metadata-token-ttl-seconds: 21600`
//!   gets a session token (IMDSv2), sent afterwards as `X-aliyun-ecs-metadata-token`;
//!   when that fails the calls go without it (IMDSv1), unless
//!   `ALIBABA_CLOUD_IMDSV1_DISABLED=true`;
//! * `GET /latest/meta-data/ram/security-credentials/` answers the role name when none
//!   is configured (`ALIBABA_CLOUD_ECS_METADATA` or the `roleName` parameter);
//! * `GET /latest/meta-data/ram/security-credentials/<role>` answers
//!   `{"Code": "Success", "AccessKeyId", "AccessKeySecret", "SecurityToken",
//!   "Expiration", "LastUpdated"}`;
//! * 1 s connect and 1 s read timeouts.
//!
//! The service is `http://100.100.100.200`; `STREAMPORT_ECS_METADATA_ENDPOINT` points
//! elsewhere (tests use it with localcloud's emulator; the official SDKs have no such
//! variable).

use crate::assume_role::{parse_credentials, without_url};
use crate::{env_first, http_client, Credentials, Error};

const DEFAULT_ENDPOINT: &str = "http://100.100.100.200";
const CREDENTIALS_PATH: &str = "/latest/meta-data/ram/security-credentials/";
const TOKEN_PATH: &str = "/latest/api/token";
const TOKEN_HEADER: &str = "X-aliyun-ecs-metadata-token";
const TOKEN_TTL_HEADER: &str = "X-aliyun-ecs-metadata-token-ttl-seconds";
/// The environment variable that moves the metadata service (tests).
pub const ENDPOINT_ENV: &str = "STREAMPORT_ECS_METADATA_ENDPOINT";

/// A client of the metadata service for one role (or the instance's role).
#[derive(Clone, Debug)]
pub struct Imds {
    endpoint: String,
    role_name: Option<String>,
    v1_disabled: bool,
    client: reqwest::Client,
}

impl Imds {
    /// `role_name` `None`: `ALIBABA_CLOUD_ECS_METADATA`, else asked from the service.
    pub fn new(role_name: Option<String>) -> Result<Self, Error> {
        if env_first(&["ALIBABA_CLOUD_ECS_METADATA_DISABLED"])
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(Error::Config(
                "the ECS RAM role is disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED=true"
                    .to_owned(),
            ));
        }
        let endpoint = env_first(&[ENDPOINT_ENV])
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned())
            .trim()
            .trim_end_matches('/')
            .to_owned();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(Error::Config(format!(
                "{ENDPOINT_ENV} {endpoint:?} must start with http:// or https://"
            )));
        }
        Ok(Self {
            endpoint,
            role_name: role_name.or_else(|| env_first(&["ALIBABA_CLOUD_ECS_METADATA"])),
            v1_disabled: env_first(&["ALIBABA_CLOUD_IMDSV1_DISABLED"])
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            client: http_client(1000, 1000)?,
        })
    }

    /// A client of the service at `endpoint` (tests; [`new`](Self::new) reads the
    /// environment).
    pub fn at(endpoint: &str, role_name: Option<String>, v1_disabled: bool) -> Result<Self, Error> {
        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            role_name,
            v1_disabled,
            client: http_client(1000, 1000)?,
        })
    }

    /// What this provider is, for logs.
    pub fn describe(&self) -> String {
        match &self.role_name {
            Some(r) => format!(
                "the ECS RAM role {r:?} (instance metadata at {})",
                self.endpoint
            ),
            None => format!(
                "the ECS RAM role of the instance (metadata at {})",
                self.endpoint
            ),
        }
    }

    async fn session_token(&self) -> Result<Option<String>, Error> {
        let result = self
            .client
            .put(format!("{}{TOKEN_PATH}", self.endpoint))
            .header(TOKEN_TTL_HEADER, "21600")
            .send()
            .await;
        let failure = match result {
            Ok(r) if r.status().is_success() => match r.text().await {
                Ok(t) => return Ok(Some(t.trim().to_owned())),
                Err(e) => without_url(&e),
            },
            Ok(r) => format!("HTTP {}", r.status().as_u16()),
            Err(e) => without_url(&e),
        };
        if self.v1_disabled {
            return Err(Error::Temporary(format!(
                "getting a session token from the ECS metadata service at {}: {failure} \
                 (IMDSv1 is disabled by ALIBABA_CLOUD_IMDSV1_DISABLED)",
                self.endpoint
            )));
        }
        Ok(None)
    }

    async fn get(&self, path: &str, token: &Option<String>) -> Result<String, Error> {
        let mut request = self.client.get(format!("{}{path}", self.endpoint));
        if let Some(t) = token {
            request = request.header(TOKEN_HEADER, t);
        }
        let what = format!("ECS metadata service at {}: GET {path}", self.endpoint);
        let response = request
            .send()
            .await
            .map_err(|e| Error::Temporary(format!("{what}: {}", without_url(&e))))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| Error::Temporary(format!("{what}: {}", without_url(&e))))?;
        match status {
            200 => Ok(text),
            404 => Err(Error::Refused(format!(
                "{what}: HTTP 404 (no such role attached to this instance?)"
            ))),
            s if s >= 500 || s == 429 => Err(Error::Temporary(format!("{what}: HTTP {s}"))),
            s => Err(Error::Refused(format!("{what}: HTTP {s}"))),
        }
    }

    /// Fetches the role's current credentials.
    pub async fn fetch(&self) -> Result<Credentials, Error> {
        let token = self.session_token().await?;
        let role = match &self.role_name {
            Some(r) => r.clone(),
            None => {
                let listed = self.get(CREDENTIALS_PATH, &token).await?;
                let role = listed.lines().next().unwrap_or("").trim().to_owned();
                if role.is_empty() {
                    return Err(Error::Refused(format!(
                        "the ECS metadata service at {} lists no RAM role: attach one to the \
                         instance",
                        self.endpoint
                    )));
                }
                role
            }
        };
        let body = self
            .get(&format!("{CREDENTIALS_PATH}{role}"), &token)
            .await?;
        let bad = || {
            Error::Refused(format!(
                "the ECS metadata service at {} answered no valid credentials for role {role:?}",
                self.endpoint
            ))
        };
        let json: serde_json::Value = serde_json::from_str(&body).map_err(|_| bad())?;
        if json["Code"].as_str() != Some("Success") {
            return Err(bad());
        }
        parse_credentials(&json).ok_or_else(bad)
    }
}
