//! writer-odps run by the engine: reader-stream → engine → writer-odps with several
//! channels into one upload session; the error limit; faults on every request.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{unique, Cloud};
use localcloud::common::faults::FaultAction;
use serde_json::{json, Value as Json};

/// `engine run` of a DataX job with reader-stream and writer-odps.
fn run_engine(dir: &Path, reader: Json, writer: Json, setting: Json) -> Output {
    let job = json!({"job": {"setting": setting, "content": [{
        "reader": {"name": "streamreader", "parameter": reader},
        "writer": {"name": "odpswriter", "parameter": writer}}]}});
    let path = dir.join("job.json");
    std::fs::write(&path, job.to_string()).unwrap();
    let engine = common::binary("engine");
    common::binary("reader-stream");
    common::binary("writer-odps");
    Command::new(&engine)
        .args([
            "run",
            "--schedule-time",
            "2024-01-02T00:00:00",
            "--plugin-dir",
        ])
        .arg(engine.parent().unwrap())
        .arg("--dirty-file")
        .arg(dir.join("dirty.jsonl"))
        .arg(&path)
        .output()
        .unwrap()
}

fn person(cloud: &Cloud) -> String {
    let t = unique("person");
    cloud.sql(&format!(
        "create table {t} (id string, colname string, version bigint, colvalue string, optype string, sequenceinfo string) partitioned by (pt string)"
    ));
    t
}

fn reader(version: Json) -> Json {
    json!({"sliceRecordCount": 2500, "column": [
        {"type": "string", "sequence": 1}, {"type": "string", "value": "col"}, version,
        {"type": "string", "random": "10, 50"}, {"type": "string", "value": "U"},
        {"type": "string", "value": "seq"}]})
}

fn writer(cloud: &Cloud, t: &str) -> Json {
    cloud.param(
        t,
        json!({"partition": "pt=${bdp.system.bizdate}", "truncate": true,
        "column": ["id", "colname", "version", "colvalue", "optype", "sequenceinfo"]}),
    )
}

fn row_count(cloud: &Cloud, t: &str, spec: &str) -> usize {
    cloud.rows(t, spec).map(|r| r.len()).unwrap_or(0)
}

#[test]
fn four_channels_commit_one_session() {
    let cloud = Cloud::start();
    let t = person(&cloud);
    let dir = tempfile::tempdir().unwrap();
    let out = run_engine(
        dir.path(),
        reader(json!({"type": "long", "sequence": 100})),
        writer(&cloud, &t),
        json!({"speed": {"channel": 4}, "errorLimit": {"record": 0}}),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(row_count(&cloud, &t, "pt=20240101"), 10_000);
    let uploads = cloud.uploads();
    let sessions: Vec<&Json> = uploads["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["table"] == json!(t))
        .collect();
    assert_eq!(sessions.len(), 1, "{uploads}");
    assert_eq!(sessions[0]["status"], "closed");
    assert_eq!(sessions[0]["blocks"].as_array().unwrap().len(), 4);
}

#[test]
fn a_dirty_record_with_error_limit_zero_fails_the_job_and_commits_nothing() {
    let cloud = Cloud::start();
    let t = person(&cloud);
    let dir = tempfile::tempdir().unwrap();
    let setting = json!({"speed": {"channel": 2}, "errorLimit": {"record": 0}});
    let ok = run_engine(
        dir.path(),
        reader(json!({"type": "long", "sequence": 100})),
        writer(&cloud, &t),
        setting.clone(),
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(row_count(&cloud, &t, "pt=20240101"), 5000);
    // "abc" for the bigint column `version`, with truncate: the old rows stay.
    let out = run_engine(
        dir.path(),
        reader(json!({"type": "string", "value": "abc"})),
        writer(&cloud, &t),
        setting,
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dirty = std::fs::read_to_string(dir.path().join("dirty.jsonl")).unwrap();
    assert!(
        dirty.contains("column version (bigint): cannot convert string value \\\"abc\\\" to long"),
        "{dirty}"
    );
    assert_eq!(row_count(&cloud, &t, "pt=20240101"), 5000);
}

#[test]
fn ten_percent_faults_through_the_engine() {
    let cloud = Cloud::start();
    let t = person(&cloud);
    let error = |status: u16, code: &str| FaultAction::Error {
        status,
        code: code.into(),
        message: None,
    };
    cloud.fault(
        Some("CommitUpload"),
        None,
        Some(1),
        true,
        error(500, "InternalServerError"),
    );
    cloud.fault(Some("UploadBlock"), None, Some(1), true, FaultAction::Drop);
    cloud.fault(
        None,
        Some(0.06),
        None,
        false,
        error(500, "InternalServerError"),
    );
    cloud.fault(
        None,
        Some(0.02),
        None,
        false,
        error(503, "ServiceUnavailable"),
    );
    cloud.fault(None, Some(0.02), None, false, FaultAction::Drop);
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        let out = run_engine(
            dir.path(),
            reader(json!({"type": "long", "sequence": 100})),
            writer(&cloud, &t),
            json!({"speed": {"channel": 4}}),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let injected = cloud.handle.faults.injected();
    cloud.handle.faults.clear();
    let rows = cloud.rows(&t, "pt=20240101").unwrap();
    let ids: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r[0].as_str().unwrap()).collect();
    assert_eq!(rows.len(), 10_000);
    assert_eq!(ids.len(), 10_000, "no duplicates");
    assert!(
        injected
            .iter()
            .any(|f| f.operation == "CommitUpload" && f.after_apply),
        "{injected:?}"
    );
}
