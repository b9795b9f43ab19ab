//! A [`Provider`] hands out the current credentials of a [`Source`], fetching
//! temporary ones again ahead of their expiry.
//!
//! Temporary credentials are fetched again once less than [`refresh_margin`] of their
//! lifetime is left: 15 minutes (the official providers' "stale time") or half the
//! lifetime when that is shorter (tokens of a few seconds in tests). A refresh that
//! fails while the cached credentials are still valid keeps them, logs a warning and
//! tries again a second later; once they have expired the error is returned. One
//! refresh runs at a time; every task of the process shares it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::assume_role::AssumeRole;
use crate::imds::Imds;
use crate::{env_first, http_client, profile, rfc3339, Credentials, Error, Source};

/// Test-only: `1` turns refreshing off, so a job keeps its first temporary credentials
/// until the services refuse them (the tests prove refreshing matters with it).
pub const NO_REFRESH_ENV: &str = "STREAMPORT_TEST_CREDENTIALS_NO_REFRESH";

const MAX_MARGIN: Duration = Duration::from_secs(15 * 60);
const ATTEMPTS: u32 = 3;
/// Cached credentials stay in use after a failed refresh while they have more than
/// this left (a request signed now must still reach the service in time).
const STALE_GRACE: Duration = Duration::from_millis(250);

/// How long before expiry credentials that live `lifetime` are fetched again.
pub fn refresh_margin(lifetime: Duration) -> Duration {
    MAX_MARGIN.min(lifetime / 2)
}

enum Fetch {
    Fixed(Credentials),
    Imds(Imds),
    AssumeRole {
        assume: AssumeRole,
        base: Provider,
        client: reqwest::Client,
    },
}

struct Cached {
    credentials: Credentials,
    refresh_at: SystemTime,
}

struct Inner {
    fetch: Fetch,
    describe: String,
    refresh: bool,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

/// The credentials of one source, shared by every request of a process (cheap to
/// clone).
#[derive(Clone)]
pub struct Provider {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("source", &self.inner.describe)
            .finish()
    }
}

fn env_credentials() -> Result<Option<Credentials>, Error> {
    let id = env_first(&[
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABACLOUD_ACCESS_KEY_ID",
        "ALICLOUD_ACCESS_KEY_ID",
    ]);
    let secret = env_first(&[
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABACLOUD_ACCESS_KEY_SECRET",
        "ALICLOUD_ACCESS_KEY_SECRET",
    ]);
    let token = env_first(&[
        "ALIBABA_CLOUD_SECURITY_TOKEN",
        "ALIBABACLOUD_SECURITY_TOKEN",
        "ALICLOUD_SECURITY_TOKEN",
    ]);
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Some(Credentials::fixed(&id, &secret, token.as_deref()))),
        (None, None) => Ok(None),
        _ => Err(Error::Config(
            "set both ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (one of \
             them is set alone)"
                .to_owned(),
        )),
    }
}

fn resolve(source: &Source) -> Result<(Fetch, String), Error> {
    Ok(match source {
        Source::Static(c) => (Fetch::Fixed(c.clone()), "the keys of the job".to_owned()),
        Source::Environment => match env_credentials()? {
            Some(c) => (Fetch::Fixed(c), "the environment".to_owned()),
            None => {
                return Err(Error::Config(
                    "credentials \"env\": ALIBABA_CLOUD_ACCESS_KEY_ID and \
                     ALIBABA_CLOUD_ACCESS_KEY_SECRET are not set"
                        .to_owned(),
                ))
            }
        },
        Source::Profile { name } => match profile::load(name.as_deref())? {
            Some(s) => resolve(&s)?,
            None => {
                return Err(Error::Config(format!(
                    "credentials \"profile\": there is no aliyun CLI profile file ({})",
                    profile::path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "HOME is not set".to_owned())
                )))
            }
        },
        Source::EcsRamRole { role_name } => {
            let imds = Imds::new(role_name.clone())?;
            let describe = imds.describe();
            (Fetch::Imds(imds), describe)
        }
        Source::RamRoleArn { assume, base } => {
            let base = Provider::new(base)?;
            let describe = format!(
                "STS AssumeRole of {} at {} (signed with {})",
                assume.role_arn, assume.endpoint, base.inner.describe
            );
            (
                Fetch::AssumeRole {
                    assume: assume.clone(),
                    base,
                    client: http_client(5000, 10_000)?,
                },
                describe,
            )
        }
        Source::Default => return resolve_default(),
    })
}

/// The default chain: environment, CLI profile file, ECS RAM role named by
/// `ALIBABA_CLOUD_ECS_METADATA`.
fn resolve_default() -> Result<(Fetch, String), Error> {
    if let Some(c) = env_credentials()? {
        return Ok((
            Fetch::Fixed(c),
            "the environment (ALIBABA_CLOUD_ACCESS_KEY_ID)".to_owned(),
        ));
    }
    let profile_note = match profile::load(None) {
        Ok(Some(s)) => {
            let (fetch, describe) = resolve(&s)?;
            return Ok((fetch, format!("the aliyun CLI profile: {describe}")));
        }
        Ok(None) if profile::disabled() => "the aliyun CLI profile file is disabled".to_owned(),
        Ok(None) => format!(
            "there is no aliyun CLI profile file ({})",
            profile::path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "HOME is not set".to_owned())
        ),
        Err(e) => e.to_string(),
    };
    if env_first(&["ALIBABA_CLOUD_ECS_METADATA"]).is_some() {
        let imds = Imds::new(None)?;
        let describe = imds.describe();
        return Ok((Fetch::Imds(imds), describe));
    }
    Err(Error::Config(format!(
        "no credentials: the parameter has no accessId/accessKey, \
         ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET are not set, \
         {profile_note}, and ALIBABA_CLOUD_ECS_METADATA names no ECS RAM role \
         (or give \"credentials\": \"ecs_ram_role\" to use the instance's role)"
    )))
}

impl Provider {
    /// Prepares `source`: reads the environment and the profile file now (their
    /// mistakes are configuration errors); contacts no service.
    pub fn new(source: &Source) -> Result<Self, Error> {
        let (fetch, describe) = resolve(source)?;
        let refresh = env_first(&[NO_REFRESH_ENV]).is_none_or(|v| v != "1");
        Ok(Self::from_fetch(fetch, describe, refresh))
    }

    fn from_fetch(fetch: Fetch, describe: String, refresh: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                fetch,
                describe,
                refresh,
                cache: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// Fixed keys.
    pub fn fixed(credentials: Credentials) -> Self {
        Self::from_fetch(
            Fetch::Fixed(credentials),
            "the keys of the job".to_owned(),
            true,
        )
    }

    /// The ECS RAM role of `imds`; `refresh` false keeps the first credentials (tests).
    pub fn from_imds(imds: Imds, refresh: bool) -> Self {
        let describe = imds.describe();
        Self::from_fetch(Fetch::Imds(imds), describe, refresh)
    }

    /// STS AssumeRole signed with the credentials of `base`.
    pub fn from_assume_role(assume: AssumeRole, base: Provider) -> Result<Self, Error> {
        let describe = format!(
            "STS AssumeRole of {} at {} (signed with {})",
            assume.role_arn, assume.endpoint, base.inner.describe
        );
        let client = http_client(5000, 10_000)?;
        Ok(Self::from_fetch(
            Fetch::AssumeRole {
                assume,
                base,
                client,
            },
            describe,
            true,
        ))
    }

    /// Where the credentials come from, for logs (never a secret).
    pub fn describe(&self) -> &str {
        &self.inner.describe
    }

    /// Fixed keys, known without any call.
    pub fn fixed_credentials(&self) -> Option<&Credentials> {
        match &self.inner.fetch {
            Fetch::Fixed(c) => Some(c),
            _ => None,
        }
    }

    /// The credentials to sign the next request with.
    pub async fn get(&self) -> Result<Credentials, Error> {
        if let Some(c) = self.fixed_credentials() {
            return Ok(c.clone());
        }
        let mut cache = self.inner.cache.lock().await;
        let now = SystemTime::now();
        if let Some(c) = cache.as_ref() {
            if now < c.refresh_at {
                return Ok(c.credentials.clone());
            }
        }
        // With valid credentials in hand a failed refresh is not retried at once: they
        // stay in use and the refresh is tried again a second later.
        let attempts = if cache.is_some() { 1 } else { ATTEMPTS };
        match self.fetch_with_retries(attempts).await {
            Ok(credentials) => {
                let refresh_at = match credentials.expiration {
                    Some(exp) if self.inner.refresh => {
                        let lifetime = exp.duration_since(now).unwrap_or_default();
                        exp - refresh_margin(lifetime)
                    }
                    _ => now + Duration::from_secs(100 * 365 * 86_400),
                };
                let until = credentials
                    .expiration
                    .map(rfc3339)
                    .unwrap_or_else(|| "-".to_owned());
                if cache.is_none() {
                    tracing::info!("credentials from {} (valid until {until})", self.describe());
                } else {
                    tracing::debug!(
                        "credentials from {} refreshed (valid until {until})",
                        self.describe()
                    );
                }
                *cache = Some(Cached {
                    credentials: credentials.clone(),
                    refresh_at,
                });
                Ok(credentials)
            }
            Err(e) => {
                if let Some(c) = cache.as_mut() {
                    let valid = c
                        .credentials
                        .expiration
                        .is_none_or(|exp| now + STALE_GRACE < exp);
                    if valid {
                        tracing::warn!(
                            "refreshing the credentials from {} failed ({e}); the current ones \
                             stay in use until {}",
                            self.describe(),
                            c.credentials.expiration.map(rfc3339).unwrap_or_default()
                        );
                        c.refresh_at = now + Duration::from_secs(1);
                        return Ok(c.credentials.clone());
                    }
                }
                Err(e)
            }
        }
    }

    async fn fetch_with_retries(&self, attempts: u32) -> Result<Credentials, Error> {
        let mut attempt = 1;
        loop {
            let result = match &self.inner.fetch {
                Fetch::Fixed(c) => Ok(c.clone()),
                Fetch::Imds(imds) => imds.fetch().await,
                Fetch::AssumeRole {
                    assume,
                    base,
                    client,
                } => {
                    let base = Box::pin(base.get()).await?;
                    assume.fetch(client, &base).await
                }
            };
            match result {
                Err(e) if e.is_temporary() && attempt < attempts => {
                    tracing::warn!("{e}; retry {attempt} of {}", attempts - 1);
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin() {
        assert_eq!(refresh_margin(Duration::from_secs(3600)), MAX_MARGIN);
        assert_eq!(refresh_margin(Duration::from_secs(6 * 3600)), MAX_MARGIN);
        assert_eq!(
            refresh_margin(Duration::from_secs(4)),
            Duration::from_secs(2)
        );
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test]
    async fn fixed_keys_need_no_call() {
        let p = Provider::fixed(Credentials::fixed("id", "SECRET", None));
        assert_eq!(p.get().await.unwrap().access_key_id, "id");
        assert!(!format!("{p:?}").contains("SECRET"));
    }
}
