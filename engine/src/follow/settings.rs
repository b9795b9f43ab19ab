//! Follow-mode settings: the command line (`--follow`, `--commit-interval`, …) and the
//! job's `setting.follow` (`true`, or an object with the same keys); the command line
//! wins key by key.

use std::path::PathBuf;

use chrono::TimeZone;
use clap::Args;
use serde_json::{json, Map, Value as Json};

use crate::error::EngineError;
use crate::job::Job;

/// The commit interval when neither `--commit-interval` nor the job says.
pub const DEFAULT_COMMIT_INTERVAL_SECS: f64 = 10.0;

/// The follow options of `streamport run`.
#[derive(Args, Debug, Clone, Default)]
pub struct FollowArgs {
    /// Follow the source: read every change from the last checkpoint and commit a
    /// micro-batch every --commit-interval seconds, until SIGINT/SIGTERM (which finishes
    /// and commits the current batch). The job's setting.follow does the same.
    #[arg(long)]
    pub follow: bool,
    /// Follow mode: end a micro-batch after this many seconds (default: setting.follow.commitIntervalSeconds, else 10).
    #[arg(long, value_name = "SECS")]
    pub commit_interval: Option<f64>,
    /// Follow mode: end a micro-batch once this many records were read (whole job).
    #[arg(long, value_name = "N")]
    pub commit_records: Option<u64>,
    /// Follow mode: end a micro-batch once this many bytes were read (whole job).
    #[arg(long, value_name = "N")]
    pub commit_bytes: Option<u64>,
    /// Follow mode: where the first batch starts: checkpoint (the stored checkpoint,
    /// default), oldest (the oldest retained record), or a time (yyyyMMddHHmmss in the
    /// job's zone, ISO-8601 with offset, or epoch milliseconds).
    #[arg(long, value_name = "checkpoint|oldest|TIME")]
    pub from: Option<String>,
    /// Follow mode: a JSON file rewritten (atomically) after every batch: lag, records,
    /// commits, state.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

/// The checked follow settings of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct FollowSettings {
    pub commit_interval_secs: f64,
    pub commit_records: Option<u64>,
    pub commit_bytes: Option<u64>,
    /// `checkpoint`, `oldest` or a time as given (checked).
    pub from: String,
    pub metrics_file: Option<PathBuf>,
}

impl FollowSettings {
    /// The `follow` object injected into the reader's parameter; `from` is the start
    /// position (the given one until a batch committed, then `checkpoint`).
    pub fn reader_object(&self, from: &str) -> Json {
        json!({
            "commitIntervalSeconds": self.commit_interval_secs,
            "commitRecords": self.commit_records,
            "commitBytes": self.commit_bytes,
            "from": from,
        })
    }
}

fn positive_seconds(value: &Json, name: &str) -> Result<f64, EngineError> {
    let v = match value {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match v {
        Some(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(EngineError::config(format!(
            "{name} = {value} must be a positive number of seconds"
        ))),
    }
}

fn positive_count(value: &Json, name: &str) -> Result<Option<u64>, EngineError> {
    let v = match value {
        Json::Null => return Ok(None),
        Json::Number(n) => n.as_u64(),
        Json::String(s) if s.trim().is_empty() => return Ok(None),
        Json::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match v {
        Some(v) if v > 0 => Ok(Some(v)),
        _ => Err(EngineError::config(format!(
            "{name} = {value} must be a whole number of at least 1"
        ))),
    }
}

/// Checks a start position: `checkpoint`, `oldest`, `yyyyMMddHHmmss` in `zone`,
/// ISO-8601 with an offset, or epoch milliseconds; a time must not be in the future.
pub fn check_from(text: &str, name: &str, zone: chrono_tz::Tz) -> Result<String, EngineError> {
    let t = text.trim();
    if t == "checkpoint" || t == "oldest" {
        return Ok(t.to_owned());
    }
    let bad = |why: &str| {
        EngineError::config(format!(
            "{name} = {text:?}: {why} (use checkpoint, oldest, yyyyMMddHHmmss in the job's time zone, ISO-8601 with an offset, or epoch milliseconds)"
        ))
    };
    let ms = if t.len() == 14 && t.bytes().all(|b| b.is_ascii_digit()) {
        let naive = chrono::NaiveDateTime::parse_from_str(t, "%Y%m%d%H%M%S")
            .map_err(|_| bad("not a valid yyyyMMddHHmmss time"))?;
        zone.from_local_datetime(&naive)
            .earliest()
            .ok_or_else(|| bad("that local time does not exist in the job's time zone"))?
            .timestamp_millis()
    } else if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse::<i64>()
            .map_err(|_| bad("not a valid epoch millisecond time"))?
    } else {
        chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|_| bad("not a start position"))?
            .timestamp_millis()
    };
    if ms > chrono::Utc::now().timestamp_millis() {
        return Err(bad("the time is in the future"));
    }
    Ok(t.to_owned())
}

/// The follow settings of a run, or `None` when the run does not follow. `--follow`
/// or `setting.follow` (true or an object) turns follow mode on; the other options
/// without it are an error.
pub fn resolve(args: &FollowArgs, job: &Job) -> Result<Option<FollowSettings>, EngineError> {
    let source = &job.source_name;
    let empty = Map::new();
    let (from_job, keys) = match job.setting.get("follow") {
        None | Some(Json::Null) | Some(Json::Bool(false)) => (false, &empty),
        Some(Json::Bool(true)) => (true, &empty),
        Some(Json::Object(m)) => (true, m),
        Some(other) => {
            return Err(EngineError::config(format!(
                "{source}: setting.follow = {other} must be true, false or an object (commitIntervalSeconds, commitRecords, commitBytes, from)"
            )))
        }
    };
    for key in keys.keys() {
        if !matches!(
            key.as_str(),
            "commitIntervalSeconds" | "commitRecords" | "commitBytes" | "from"
        ) {
            return Err(EngineError::config(format!(
                "{source}: setting.follow.{key} is not a follow setting (commitIntervalSeconds, commitRecords, commitBytes, from)"
            )));
        }
    }
    if !(args.follow || from_job) {
        let given = [
            ("--commit-interval", args.commit_interval.is_some()),
            ("--commit-records", args.commit_records.is_some()),
            ("--commit-bytes", args.commit_bytes.is_some()),
            ("--from", args.from.is_some()),
            ("--metrics-file", args.metrics_file.is_some()),
        ];
        if let Some((name, _)) = given.iter().find(|(_, g)| *g) {
            return Err(EngineError::config(format!(
                "{name} applies to follow mode only: add --follow (or setting.follow to the job)"
            )));
        }
        return Ok(None);
    }
    let setting = |key: &str| format!("{source}: setting.follow.{key}");
    let commit_interval_secs = match (args.commit_interval, keys.get("commitIntervalSeconds")) {
        (Some(v), _) => positive_seconds(&json!(v), "--commit-interval")?,
        (None, None | Some(Json::Null)) => DEFAULT_COMMIT_INTERVAL_SECS,
        (None, Some(v)) => positive_seconds(v, &setting("commitIntervalSeconds"))?,
    };
    let count = |cli: Option<u64>, cli_name: &str, key: &str| match (cli, keys.get(key)) {
        (Some(v), _) => positive_count(&json!(v), cli_name),
        (None, None) => Ok(None),
        (None, Some(v)) => positive_count(v, &setting(key)),
    };
    let commit_records = count(args.commit_records, "--commit-records", "commitRecords")?;
    let commit_bytes = count(args.commit_bytes, "--commit-bytes", "commitBytes")?;
    let from = match (&args.from, keys.get("from")) {
        (Some(f), _) => check_from(f, "--from", job.time_zone)?,
        (None, None | Some(Json::Null)) => "checkpoint".to_owned(),
        (None, Some(Json::String(f))) => check_from(f, &setting("from"), job.time_zone)?,
        (None, Some(other)) => {
            return Err(EngineError::config(format!(
                "{} = {other} must be a string: checkpoint, oldest or a time",
                setting("from")
            )))
        }
    };
    Ok(Some(FollowSettings {
        commit_interval_secs,
        commit_records,
        commit_bytes,
        from,
        metrics_file: args.metrics_file.clone(),
    }))
}

/// The reader's window keys: a follow job has no window, so these are ignored by the
/// reader and left out of the follow fingerprint.
pub const WINDOW_KEYS: [&str; 5] = [
    "startTimestampMillis",
    "endTimestampMillis",
    "startTimeString",
    "endTimeString",
    "date",
];

/// The fingerprint batch fingerprints derive from: the job's, computed without the
/// reader's window keys (a restart with another schedule time names its batches the same).
pub fn follow_fingerprint(job: &Job) -> (String, Vec<&'static str>) {
    let mut reader = job.reader.clone();
    let mut removed = Vec::new();
    if let Some(map) = reader.parameter.as_object_mut() {
        for key in WINDOW_KEYS {
            if map.remove(key).is_some() {
                removed.push(key);
            }
        }
    }
    (crate::job::fingerprint(&reader, &job.writer), removed)
}

/// The batch fingerprint: hex MD5 of `<follow fingerprint>:<followBatch>`.
pub fn batch_fingerprint(job_fingerprint: &str, follow_batch: &str) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(
        format!("{job_fingerprint}:{follow_batch}").as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(setting: &str) -> Job {
        let text = format!(
            r#"{{"job": {{"setting": {setting}, "content": [{{
            "reader": {{"name": "streamreader", "parameter": {{"sliceRecordCount": 1}}}},
            "writer": {{"name": "streamwriter", "parameter": {{}}}}}}]}}}}"#
        );
        crate::job::load_text(&text, "j.json", &crate::job::LoadOptions::default()).unwrap()
    }

    #[test]
    fn the_command_line_wins_over_the_job() {
        let j = job(r#"{"follow": {"commitIntervalSeconds": 5, "commitRecords": "100"}}"#);
        let s = resolve(&FollowArgs::default(), &j).unwrap().unwrap();
        assert_eq!(s.commit_interval_secs, 5.0);
        assert_eq!(s.commit_records, Some(100));
        assert_eq!(s.from, "checkpoint");
        let args = FollowArgs {
            commit_interval: Some(2.5),
            from: Some("oldest".into()),
            ..FollowArgs::default()
        };
        let s = resolve(&args, &j).unwrap().unwrap();
        assert_eq!((s.commit_interval_secs, s.from.as_str()), (2.5, "oldest"));
        assert_eq!(resolve(&FollowArgs::default(), &job("{}")).unwrap(), None);
        let on = job(r#"{"follow": true}"#);
        let s = resolve(&FollowArgs::default(), &on).unwrap().unwrap();
        assert_eq!(s.commit_interval_secs, DEFAULT_COMMIT_INTERVAL_SECS);
    }

    #[test]
    fn bad_settings_name_the_key() {
        let cases = [
            (
                r#"{"follow": {"commitIntervalSeconds": 0}}"#,
                "setting.follow.commitIntervalSeconds",
            ),
            (
                r#"{"follow": {"commitRecords": -1}}"#,
                "setting.follow.commitRecords",
            ),
            (
                r#"{"follow": {"commitBytes": "x"}}"#,
                "setting.follow.commitBytes",
            ),
            (
                r#"{"follow": {"from": "yesterday"}}"#,
                "setting.follow.from",
            ),
            (r#"{"follow": {"interval": 3}}"#, "setting.follow.interval"),
            (r#"{"follow": 3}"#, "setting.follow"),
        ];
        for (setting, key) in cases {
            let e = resolve(&FollowArgs::default(), &job(setting)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{setting}");
            assert!(e.to_string().contains(key), "{setting}: {e}");
        }
        let args = FollowArgs {
            commit_interval: Some(3.0),
            ..FollowArgs::default()
        };
        let e = resolve(&args, &job("{}")).unwrap_err();
        assert!(
            e.to_string()
                .contains("--commit-interval applies to follow mode only"),
            "{e}"
        );
    }

    #[test]
    fn start_positions() {
        let tz = chrono_tz::Asia::Shanghai;
        for ok in [
            "checkpoint",
            "oldest",
            "20240101000000",
            "1704067200000",
            "2024-01-01T00:00:00+08:00",
        ] {
            assert_eq!(check_from(ok, "--from", tz).unwrap(), ok);
        }
        for bad in [
            "",
            "soon",
            "20241301000000",
            "2999-01-01T00:00:00Z",
            "99999999999999",
        ] {
            let e = check_from(bad, "--from", tz).unwrap_err();
            assert!(e.to_string().starts_with("--from"), "{e}");
        }
    }

    #[test]
    fn batch_fingerprints_are_stable_and_distinct() {
        let a = batch_fingerprint("f00d", "0001");
        assert_eq!(a, batch_fingerprint("f00d", "0001"));
        assert_ne!(a, batch_fingerprint("f00d", "0002"));
        assert_ne!(a, batch_fingerprint("beef", "0001"));
        assert_eq!(a.len(), 32);
    }
}
