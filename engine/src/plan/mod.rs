//! Distributed mode: a job's lifecycle as four commands over a shared plan location,
//! so that its tasks can run on many machines (a Kubernetes Indexed Job, an Argo
//! fan-out) and one commit follows.
//!
//! * `plan` runs check, prepare and split and writes `tasks/<i>.json` (each task's
//!   reader and writer configs), then `plan.json` (the normalised job, the job states,
//!   the task count): a plan exists once `plan.json` does.
//! * `task --index N` runs task N like `run` does and writes `reports/<N>.json` with
//!   "create if absent": of two attempts of one index (a retry, two pods at once) the
//!   first report wins; the other attempt's output is never committed.
//! * `commit` checks every report is there, applies the job-wide error limit, and runs
//!   the writer's `post` then the reader's `post` with the winning reports; its outcome
//!   is kept in `commit.json`, so a re-run after a kill converges and a re-run after
//!   success does nothing.
//! * `abort` runs the writer's `abort` (with the reports when a commit had started) and
//!   marks the plan aborted.
//!
//! The plan holds the resolved job, credentials included: give the plan location the
//! same protection as the credentials (README "Scale out").

pub mod cli;
pub mod commands;
pub mod finish;
pub mod store;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::error::EngineError;
use crate::job::datasources::DataSources;
pub use store::{Created, OssAccess, PlanStore};

/// The plan's own OSS endpoint, when no data source is named.
pub const ENV_ENDPOINT: &str = "STREAMPORT_PLAN_OSS_ENDPOINT";
pub const ENV_ACCESS_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
pub const ENV_ACCESS_KEY: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
pub const ENV_SECURITY_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";

/// The format tag of `plan.json`.
pub const FORMAT: &str = "streamport-plan/1";
pub const PLAN_FILE: &str = "plan.json";
pub const COMMIT_FILE: &str = "commit.json";

pub fn task_file(index: usize) -> String {
    format!("tasks/{index}.json")
}

pub fn report_file(index: usize) -> String {
    format!("reports/{index}.json")
}

/// One side of the planned job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlannedSide {
    /// The plugin name as the job writes it.
    pub name: String,
    pub parameter: Json,
    /// What its `prepare` answered.
    pub state: Json,
}

/// `plan.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanDoc {
    pub format: String,
    pub job_id: String,
    pub source_name: String,
    pub fingerprint: String,
    pub time_zone: String,
    pub schedule_time: String,
    pub reader: PlannedSide,
    pub writer: PlannedSide,
    pub task_count: usize,
    pub bytes_per_sec: Option<u64>,
    pub records_per_sec: Option<u64>,
    pub error_limit_record: Option<u64>,
    pub error_limit_percentage: Option<f64>,
    pub post_timeout_secs: f64,
}

/// `tasks/<i>.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskDoc {
    pub reader: Json,
    pub writer: Json,
}

/// `reports/<i>.json`: what one attempt of a task hands to the commit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportDoc {
    /// Names the attempt (host, process, time): tells a winning attempt from another.
    pub attempt: String,
    pub index: usize,
    /// The writer's `done.report`.
    pub report: Json,
    /// The reader's checkpoint states, in order.
    pub checkpoints: Vec<Json>,
    pub records: u64,
    pub bytes: u64,
    pub reader_dirty: u64,
    pub writer_dirty: u64,
}

/// Where a plan's commit stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitState {
    /// The writer's `post` has started (or is about to): a re-run runs it again.
    Committing,
    /// The commit completed.
    Committed,
    /// The commit failed; `committed` says what is visible; a re-run tries again.
    Failed,
    /// `abort` ran (or the error limit was exceeded): nothing more is committed.
    Aborted,
}

/// `commit.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommitDoc {
    pub state: CommitState,
    /// "all", "none", "partial" or "unknown".
    pub committed: String,
    pub detail: Option<String>,
    /// When this state was written (RFC 3339).
    pub at: String,
}

/// A description of this attempt: host, process id and time.
pub fn attempt_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown-host".to_owned());
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{host}/{}/{}/{n}",
        std::process::id(),
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ")
    )
}

/// How the plan's OSS location is reached: a named data source (`--plan-datasource`
/// with `--datasources`), else the environment ([`ENV_ENDPOINT`], [`ENV_ACCESS_ID`],
/// [`ENV_ACCESS_KEY`], [`ENV_SECURITY_TOKEN`]), else `fallback` (`plan`: the job's OSS
/// writer connection). `None` when none is complete (a local plan needs none).
pub fn oss_access(
    datasource: Option<&str>,
    datasources: Option<&std::path::Path>,
    fallback: Option<&Json>,
) -> Result<Option<OssAccess>, EngineError> {
    // The endpoint, and the keys of the parameter or (without keys) the chain.
    let from_parameter = |p: &Json, what: &str| -> Result<Option<OssAccess>, EngineError> {
        let Some(map) = p.as_object() else {
            return Ok(None);
        };
        let Some(endpoint) = map
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case("endpoint"))
            .and_then(|(_, v)| v.as_str())
        else {
            return Ok(None);
        };
        let credentials = credentials::Source::from_parameter(map)
            .map_err(|e| EngineError::config(format!("{what}: {e}")))?;
        Ok(Some(OssAccess {
            endpoint: endpoint.to_owned(),
            credentials,
        }))
    };
    if let Some(name) = datasource {
        let Some(file) = datasources else {
            return Err(EngineError::config(
                "--plan-datasource needs --datasources FILE",
            ));
        };
        let sources = DataSources::load(file)?;
        let mut parameter = serde_json::json!({ "datasource": name });
        sources.resolve(&mut parameter, "--plan-datasource")?;
        let mut secrets = Vec::new();
        crate::secrets::collect_secrets(&parameter, &mut secrets);
        crate::secrets::global().add(secrets);
        let what = format!("--plan-datasource {name}");
        return match from_parameter(&parameter, &what)? {
            Some(access) => Ok(Some(access)),
            None => Err(EngineError::config(format!(
                "{what}: the data source needs an endpoint"
            ))),
        };
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(endpoint) = env(ENV_ENDPOINT) {
        // The keys of the environment, or else the rest of the chain (the `aliyun`
        // CLI profile, the ECS RAM role named by ALIBABA_CLOUD_ECS_METADATA).
        if let Some(secret) = env(ENV_ACCESS_KEY) {
            let mut secrets = vec![secret];
            secrets.extend(env(ENV_SECURITY_TOKEN));
            crate::secrets::global().add(secrets);
        }
        return Ok(Some(OssAccess {
            endpoint,
            credentials: credentials::Source::Default,
        }));
    }
    match fallback {
        Some(p) => from_parameter(p, "the job's writer parameter"),
        None => Ok(None),
    }
}

/// Reads and parses a plan file.
pub async fn read_doc<T: serde::de::DeserializeOwned>(
    store: &PlanStore,
    name: &str,
) -> Result<Option<T>, EngineError> {
    match store.get(name).await? {
        None => Ok(None),
        Some(data) => serde_json::from_slice(&data).map(Some).map_err(|e| {
            EngineError::failed(format!(
                "plan {}: {name} is damaged or not a streamport plan file: {e}",
                store.uri()
            ))
        }),
    }
}

pub fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, EngineError> {
    serde_json::to_vec_pretty(value)
        .map_err(|e| EngineError::failed(format!("cannot encode a plan file: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_location_takes_a_named_data_source() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ds.json");
        std::fs::write(
            &file,
            r#"{"plan": {"endpoint": "http://127.0.0.1:1", "accessId": "id", "accessKey": "k3y-of-the-plan"}, "bad": {"endpoint": "e", "accessId": "id-without-key"}, "keyless": {"endpoint": "e"}}"#,
        )
        .unwrap();
        let access = oss_access(Some("plan"), Some(&file), None)
            .unwrap()
            .unwrap();
        assert_eq!(access.endpoint, "http://127.0.0.1:1");
        assert!(
            matches!(&access.credentials, credentials::Source::Static(c) if c.access_key_id == "id"),
            "{access:?}"
        );
        assert!(!format!("{access:?}").contains("k3y"));
        assert_eq!(
            crate::secrets::global().redact("k3y-of-the-plan"),
            crate::secrets::MASK
        );
        let e = oss_access(Some("bad"), Some(&file), None).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--plan-datasource bad"), "{e}");
        assert!(oss_access(Some("plan"), None, None).is_err());
        // Without keys the credentials chain is used (environment, profile, ECS RAM role).
        let keyless = oss_access(Some("keyless"), Some(&file), None)
            .unwrap()
            .unwrap();
        assert!(
            matches!(keyless.credentials, credentials::Source::Default),
            "{keyless:?}"
        );
    }

    #[test]
    fn attempts_are_told_apart() {
        assert_ne!(attempt_id(), attempt_id());
    }
}
