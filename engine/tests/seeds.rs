//! The job examples of the two vendor documents this project started from (copied
//! into `testdata/`): verbatim they parse and resolve to the project's plugins; with
//! their reader and writer replaced by reader-stream and writer-stream they run, and
//! the warnings name each normalised key.

// Tests (and their helpers) may unwrap.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{run_job, Workspace};
use engine::job::{load_text, JobFormat, LoadOptions};
use engine::plugins::executable_name;
use protocol::Role;

const SEED_000: &str = include_str!("../testdata/seed-000-otsstream-to-oss.json");
const SEED_001: &str = include_str!("../testdata/seed-001-otsstream-to-odps.json");
const SEED_000_STREAM: &str = include_str!("../testdata/seed-000-stream.json");
const SEED_001_STREAM: &str = include_str!("../testdata/seed-001-stream.json");
const SEED_001_SOURCES: &str = include_str!("../testdata/seed-001-datasources.json");

fn options(params: &[&str], datasources: Option<std::path::PathBuf>) -> LoadOptions {
    LoadOptions {
        params: params.iter().map(|s| s.to_string()).collect(),
        schedule_time: Some("2024-03-01 00:05:00".into()),
        datasources,
    }
}

#[test]
fn seed_000_verbatim_parses_with_hash_comments() {
    let job = load_text(SEED_000, "seed-000.json", &options(&[], None)).unwrap();
    assert_eq!(job.format, JobFormat::Configuration);
    assert_eq!(
        executable_name(Role::Reader, &job.reader.name).unwrap(),
        "reader-otsstream"
    );
    assert_eq!(
        executable_name(Role::Writer, &job.writer.name).unwrap(),
        "writer-oss"
    );
    assert_eq!(job.settings.channel, 1);
    assert_eq!(job.settings.bytes_per_sec, Some(1024 * 1024));
    assert_eq!(job.settings.error_limit.record, Some(0));
    assert_eq!(
        job.reader.parameter["mode"],
        "single_version_and_update_only"
    );
    assert_eq!(
        job.reader.parameter["column"].as_array().unwrap().len(),
        2,
        "trailing comma"
    );
    assert!(
        job.reader.parameter.get("datasource").is_none(),
        "an empty datasource is none"
    );
    assert_eq!(job.writer.parameter["writeMode"], "truncate");
    assert!(job.warnings.is_empty(), "{:?}", job.warnings);
}

#[test]
fn seed_001_verbatim_resolves_variables_and_data_sources() {
    let ws = Workspace::new();
    let sources = ws.write(
        "sources.json",
        r#"{"otsstream": {"endpoint": "https://inst.cn-hangzhou.ots.aliyuncs.com", "instanceName": "inst", "accessId": "id", "accessKey": "k-secret"},
            "odps_first": {"project": "p1", "accessId": "id", "accessKey": "k-secret"}}"#,
    );
    let err = load_text(
        SEED_001,
        "seed-001.json",
        &options(&[], Some(sources.clone())),
    )
    .unwrap_err();
    assert!(err.to_string().contains("${startTime}"), "{err}");
    let job = load_text(
        SEED_001,
        "seed-001.json",
        &options(
            &[
                "startTime=$[yyyymmddhh24miss-10/24/60]",
                "endTime=$[yyyymmddhh24miss-5/24/60]",
            ],
            Some(sources),
        ),
    )
    .unwrap();
    assert_eq!(job.format, JobFormat::Configuration);
    assert_eq!(
        executable_name(Role::Reader, &job.reader.name).unwrap(),
        "reader-otsstream"
    );
    assert_eq!(
        executable_name(Role::Writer, &job.writer.name).unwrap(),
        "writer-odps"
    );
    assert_eq!(job.reader.parameter["startTimeString"], "20240229235500");
    assert_eq!(job.reader.parameter["endTimeString"], "20240301000000");
    assert_eq!(job.reader.parameter["instanceName"], "inst");
    assert_eq!(job.writer.parameter["partition"], "pt=20240229");
    assert_eq!(job.writer.parameter["project"], "p1");
    assert_eq!(job.settings.channel, 7);
    assert_eq!(job.settings.bytes_per_sec, Some(7 * 1024 * 1024));
    for key in ["\"Configuration \"", "\"Setting \"", "\"Speed \""] {
        assert!(
            job.warnings.iter().any(|w| w.contains(key)),
            "{key}: {:?}",
            job.warnings
        );
    }
    assert_eq!(job.warnings.len(), 3, "{:?}", job.warnings);
}

#[test]
fn seed_000_with_stream_plugins_runs() {
    let ws = Workspace::new();
    let job = ws.write("seed-000-stream.json", SEED_000_STREAM);
    let out = run_job(
        &ws,
        &job,
        &[
            "-p",
            "start_time=$[yyyymmddhh24miss-10/24/60]",
            "-p",
            "end_time=$[yyyymmddhh24miss-5/24/60]",
            "-p",
            "date=${bdp.system.bizdate}",
            "--schedule-time",
            "20240301000500",
            "--summary-json",
            "s.json",
        ],
        Duration::from_secs(60),
    );
    out.assert_code(0)
        .assert_stderr_has("Data Integration script (configuration) format");
    let summary = ws.read_json("s.json");
    assert_eq!(summary["records"], 1000);
    assert_eq!(summary["reader"], "reader-stream");
    assert_eq!(summary["writer"], "writer-stream");
    let resolved = load_text(
        SEED_000_STREAM,
        "s",
        &options(
            &[
                "start_time=$[yyyymmddhh24miss-10/24/60]",
                "end_time=$[yyyymmddhh24miss-5/24/60]",
                "date=${bdp.system.bizdate}",
            ],
            None,
        ),
    )
    .unwrap();
    let values: Vec<_> = resolved.reader.parameter["column"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["value"].clone())
        .collect();
    assert_eq!(
        values[..3],
        [
            serde_json::json!("20240229235500"),
            serde_json::json!("20240301000000"),
            serde_json::json!("20240229")
        ]
    );
}

#[test]
fn seed_001_with_stream_plugins_runs_and_warns_about_each_normalised_key() {
    let ws = Workspace::new();
    let job = ws.write("seed-001-stream.json", SEED_001_STREAM);
    let sources = ws.write("sources.json", SEED_001_SOURCES);
    let out = run_job(
        &ws,
        &job,
        &[
            "-p",
            "startTime=20240301000000",
            "-p",
            "endTime=20240301000500",
            "--datasources",
            sources.to_str().unwrap(),
            "--summary-json",
            "s.json",
        ],
        Duration::from_secs(60),
    );
    out.assert_code(0)
        .assert_stderr_has(
            "key \"Configuration \" in the top level normalised to \"configuration\"",
        )
        .assert_stderr_has("key \"Setting \" in configuration normalised to \"setting\"")
        .assert_stderr_has("key \"Speed \" in configuration.setting normalised to \"speed\"")
        .assert_stderr_has("7 channels");
    assert_eq!(
        out.stderr.matches("normalised to").count(),
        3,
        "one warning per key:\n{}",
        out.stderr
    );
    let summary = ws.read_json("s.json");
    assert_eq!(summary["records"], 7 * 500);
    assert_eq!(summary["tasks"], 7);
}
