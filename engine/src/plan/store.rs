//! Where a plan lives: a local directory (tests, one machine) or an OSS prefix
//! (`oss://bucket/prefix`, for tasks on many machines). Every file is written whole:
//! locally through a temporary file and a rename (or a hard link for "create if
//! absent"), on OSS by one PutObject (with `x-oss-forbid-overwrite: true` for "create
//! if absent", answered 409 `FileAlreadyExists` when the object exists).

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use writer_oss::client::{ClientOptions, OssClient, SignVersion};
use writer_oss::error::OssError;

use crate::error::EngineError;

/// How to reach an OSS plan location (the plan's own credentials, not the job's): the
/// endpoint and where the keys come from (static keys, or the credentials chain: the
/// environment, the `aliyun` CLI profile, the ECS RAM role).
#[derive(Clone, Debug)]
pub struct OssAccess {
    pub endpoint: String,
    pub credentials: credentials::Source,
}

/// A plan location.
pub enum PlanStore {
    Local(PathBuf),
    Oss {
        client: Box<OssClient>,
        prefix: String,
        uri: String,
    },
}

/// What "create if absent" found.
#[derive(Debug, PartialEq)]
pub enum Created {
    /// This call created the file.
    Created,
    /// The file already existed; its content.
    Exists(Vec<u8>),
}

fn oss_error(uri: &str, name: &str, e: OssError) -> EngineError {
    EngineError::failed(format!("plan {uri}: {name}: OSS {e}"))
}

impl PlanStore {
    /// Opens `uri`: `oss://bucket/prefix` (needs `access`) or a local directory
    /// (created if missing).
    pub fn open(uri: &str, access: Option<OssAccess>) -> Result<Self, EngineError> {
        if let Some(rest) = uri.strip_prefix("oss://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if !writer_oss::client::is_valid_bucket_name(bucket) {
                return Err(EngineError::config(format!(
                    "--plan {uri}: {bucket:?} is not a valid OSS bucket name"
                )));
            }
            let prefix = prefix.trim_matches('/');
            if prefix.is_empty() {
                return Err(EngineError::config(format!(
                    "--plan {uri}: give a prefix under the bucket (oss://{bucket}/plans/<job>)"
                )));
            }
            let Some(access) = access else {
                return Err(EngineError::config(format!(
                    "--plan {uri}: no OSS credentials: give --plan-datasource NAME with --datasources F, or set {} and {} (and {} for the endpoint)",
                    super::ENV_ACCESS_ID, super::ENV_ACCESS_KEY, super::ENV_ENDPOINT
                )));
            };
            let (_, host_port) = writer_oss::client::normalize_endpoint(&access.endpoint)
                .map_err(|e| EngineError::config(format!("--plan {uri}: endpoint: {e}")))?;
            let region = writer_oss::client::region_of_endpoint(&host_port)
                .unwrap_or_else(|| "cn-hangzhou".to_owned());
            let client = OssClient::new(ClientOptions {
                endpoint: access.endpoint,
                credentials: credentials::Provider::new(&access.credentials)
                    .map_err(|e| EngineError::config(format!("--plan {uri}: {e}")))?,
                bucket: bucket.to_owned(),
                sign_version: SignVersion::V1,
                region,
                path_style: None,
                request_timeout: Duration::from_secs(60),
                max_retries: 10,
            })
            .map_err(|e| EngineError::config(format!("--plan {uri}: {e}")))?;
            return Ok(PlanStore::Oss {
                client: Box::new(client),
                prefix: format!("{prefix}/"),
                uri: uri.to_owned(),
            });
        }
        let dir = PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri));
        if dir.as_os_str().is_empty() {
            return Err(EngineError::config("--plan: empty location"));
        }
        std::fs::create_dir_all(&dir).map_err(|e| {
            EngineError::config(format!("--plan {uri}: cannot create the directory: {e}"))
        })?;
        Ok(PlanStore::Local(dir))
    }

    /// The location as given.
    pub fn uri(&self) -> String {
        match self {
            PlanStore::Local(dir) => dir.display().to_string(),
            PlanStore::Oss { uri, .. } => uri.clone(),
        }
    }

    fn local_path(dir: &Path, name: &str) -> Result<PathBuf, EngineError> {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| EngineError::failed(format!("plan {}: {e}", parent.display())))?;
        }
        Ok(path)
    }

    /// A file's content, `None` when it does not exist.
    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, EngineError> {
        match self {
            PlanStore::Local(dir) => match std::fs::read(dir.join(name)) {
                Ok(data) => Ok(Some(data)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(EngineError::failed(format!(
                    "plan {}: {name}: {e}",
                    dir.display()
                ))),
            },
            PlanStore::Oss {
                client,
                prefix,
                uri,
            } => match client.get(&format!("{prefix}{name}")).await {
                Ok(body) => Ok(Some(body.to_vec())),
                Err(e) if e.code() == Some("NoSuchKey") => Ok(None),
                Err(e) => Err(oss_error(uri, name, e)),
            },
        }
    }

    /// Writes a file whole, replacing it.
    pub async fn put(&self, name: &str, data: &[u8]) -> Result<(), EngineError> {
        match self {
            PlanStore::Local(dir) => {
                let path = Self::local_path(dir, name)?;
                let tmp = temporary(&path);
                let written =
                    std::fs::write(&tmp, data).and_then(|()| std::fs::rename(&tmp, &path));
                written.map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    EngineError::failed(format!("plan {}: {e}", path.display()))
                })
            }
            PlanStore::Oss {
                client,
                prefix,
                uri,
            } => put_object(client, &format!("{prefix}{name}"), data, false)
                .await
                .map_err(|e| oss_error(uri, name, e)),
        }
    }

    /// Writes a file whole unless it exists: exactly one of several concurrent
    /// callers creates it; the others get its content.
    pub async fn put_new(&self, name: &str, data: &[u8]) -> Result<Created, EngineError> {
        let outcome = match self {
            PlanStore::Local(dir) => {
                let path = Self::local_path(dir, name)?;
                let tmp = temporary(&path);
                let failed = |e: std::io::Error| {
                    EngineError::failed(format!("plan {}: {e}", path.display()))
                };
                std::fs::write(&tmp, data).map_err(failed)?;
                // A hard link never replaces an existing file: the first one wins.
                let linked = std::fs::hard_link(&tmp, &path);
                let _ = std::fs::remove_file(&tmp);
                match linked {
                    Ok(()) => None,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Some(()),
                    Err(e) => return Err(failed(e)),
                }
            }
            PlanStore::Oss {
                client,
                prefix,
                uri,
            } => match put_object(client, &format!("{prefix}{name}"), data, true).await {
                Ok(()) => None,
                Err(e) if e.code() == Some("FileAlreadyExists") => Some(()),
                Err(e) => return Err(oss_error(uri, name, e)),
            },
        };
        match outcome {
            None => Ok(Created::Created),
            Some(()) => match self.get(name).await? {
                Some(existing) => Ok(Created::Exists(existing)),
                None => Err(EngineError::failed(format!(
                    "plan {}: {name} was said to exist but cannot be read",
                    self.uri()
                ))),
            },
        }
    }
}

fn temporary(path: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}-{n}", std::process::id()));
    path.with_file_name(name)
}

/// PutObject; with `forbid_overwrite`, OSS refuses (409 `FileAlreadyExists`) when the
/// key exists. A retried PutObject whose first attempt took effect also gets 409: the
/// caller compares the content it finds.
async fn put_object(
    client: &OssClient,
    key: &str,
    data: &[u8],
    forbid_overwrite: bool,
) -> Result<(), OssError> {
    let mut req = client.request("PutObject", Method::PUT, key);
    req.headers
        .push(("Content-Type".into(), "application/json".into()));
    if forbid_overwrite {
        req.headers
            .push(("x-oss-forbid-overwrite".into(), "true".into()));
    }
    req.body = Bytes::copy_from_slice(data);
    client.send(&req).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_plan_creates_a_file_once_and_replaces_on_put() {
        let dir = tempfile::tempdir().unwrap();
        let store = PlanStore::open(dir.path().to_str().unwrap(), None).unwrap();
        assert_eq!(store.get("reports/0.json").await.unwrap(), None);
        assert_eq!(
            store.put_new("reports/0.json", b"first").await.unwrap(),
            Created::Created
        );
        assert_eq!(
            store.put_new("reports/0.json", b"second").await.unwrap(),
            Created::Exists(b"first".to_vec())
        );
        store.put("commit.json", b"a").await.unwrap();
        store.put("commit.json", b"b").await.unwrap();
        assert_eq!(store.get("commit.json").await.unwrap(), Some(b"b".to_vec()));
        let names: Vec<_> = std::fs::read_dir(dir.path().join("reports"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["0.json"], "no temporary file is left");
    }

    #[test]
    fn oss_locations_need_a_prefix_and_credentials() {
        let err = |uri: &str, access| match PlanStore::open(uri, access) {
            Err(e) => e,
            Ok(_) => panic!("{uri} opened"),
        };
        assert!(err("oss://bucket", None).to_string().contains("prefix"));
        assert!(err("oss://Bad_Bucket/p", None)
            .to_string()
            .contains("bucket name"));
        let e = err("oss://bucket/plans/a", None);
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--plan-datasource"), "{e}");
    }
}
