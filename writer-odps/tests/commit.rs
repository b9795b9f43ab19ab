//! Committing a window once (README "Commit and re-runs"): re-runs of a committed
//! append window commit nothing again; a run that died between its intent and its
//! commit is committed once by the re-run; a commit whose marker was lost is found
//! through the Tunnel, and after the session expired is a clear error; `abort` tells
//! what is committed; overwrite re-runs replace.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{unique, Cloud};
use localcloud::common::faults::FaultAction;
use protocol::frame::FrameWriter;
use protocol::message::{Batch, Eos, Hello, JobContext, Message, Role};
use protocol::runtime::{
    Plugin, PluginError, RecordSource, StepContext, TaskContext, Writer, WriterOutput,
};
use protocol::value::{Record, Value};
use serde_json::{json, Value as Json};
use writer_odps::OdpsWriter;

const FINGERPRINT: &str = "0123456789abcdef0123456789abcdef";
const MARKERS: &str = "streamport_commit_markers";

fn ctx(parameter: &Json, state: &Json) -> StepContext {
    StepContext {
        parameter: parameter.clone(),
        state: state.clone(),
        job: JobContext {
            job_id: "job".into(),
            fingerprint: FINGERPRINT.into(),
            time_zone: "UTC".into(),
            task_index: 0,
            task_count: 1,
        },
    }
}

fn frames(records: &[Record]) -> Vec<u8> {
    let mut w = FrameWriter::new(Vec::new()).unwrap();
    w.write_message(&Message::Hello(Hello::new(Role::Reader, "test", "0")))
        .unwrap();
    w.write_message(&Message::Batch(Batch::from_records(records)))
        .unwrap();
    w.write_message(&Message::Eos(Eos {
        records: records.len() as u64,
        bytes: 0,
    }))
    .unwrap();
    w.into_inner()
}

/// One job's steps up to the task reports: (state, reports).
fn load(param: &Json, rows: i64) -> (Json, Vec<Json>) {
    let writer = OdpsWriter;
    let state = writer.prepare(&ctx(param, &Json::Null)).unwrap();
    let task = writer.split(&ctx(param, &state), 1).unwrap().remove(0);
    let records: Vec<Record> = (0..rows)
        .map(|i| vec![Value::Long(i), Value::String(format!("r{i}"))])
        .collect();
    let mut input = RecordSource::from_frame_bytes(frames(&records));
    let mut out = WriterOutput::standalone();
    let report = writer
        .write(
            &TaskContext {
                config: task,
                job: ctx(param, &state).job,
            },
            &mut input,
            &mut out,
        )
        .unwrap();
    (state, vec![report])
}

fn post(param: &Json, state: &Json, reports: &[Json]) -> Result<Json, PluginError> {
    OdpsWriter.post_answer(&ctx(param, state), reports)
}

fn abort(param: &Json, state: &Json, reports: &[Json]) -> Json {
    OdpsWriter
        .abort_answer(&ctx(param, state), reports)
        .unwrap()
}

fn table(cloud: &Cloud) -> String {
    let t = unique("window");
    cloud.sql(&format!(
        "create table {t} (id bigint, s string) partitioned by (pt string)"
    ));
    t
}

fn count(cloud: &Cloud, t: &str) -> usize {
    cloud.rows(t, "pt=1").map(|r| r.len()).unwrap_or(0)
}

/// The markers of table `t` as `(upload_id, state)`.
fn markers(cloud: &Cloud, t: &str) -> Vec<(String, String)> {
    let dump = cloud.dump(MARKERS);
    let mut found: Vec<(String, String)> = dump["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["spec"].as_str().unwrap().to_owned())
        .filter(|spec| spec.contains(&format!("target_table={t},")))
        .map(|spec| {
            let value = |key: &str| {
                spec.split(',')
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                    .unwrap()
                    .to_owned()
            };
            (value("upload_id"), value("state"))
        })
        .collect();
    found.sort();
    found
}

/// Puts the markers of `t` as a run leaves them that died between its commit of
/// session `id` and its committed marker: the intent only.
fn died_before_the_committed_marker(cloud: &Cloud, t: &str, id: &str) {
    let spec = |state: &str| {
        format!(
            "fingerprint='{FINGERPRINT}', target_table='{t}', upload_id='{id}', state='{state}'"
        )
    };
    cloud.sql(&format!(
        "alter table {MARKERS} add if not exists partition ({})",
        spec("intent")
    ));
    cloud.sql(&format!(
        "alter table {MARKERS} drop if exists partition ({})",
        spec("committed")
    ));
}

fn upload_id(state: &Json) -> String {
    state["uploadId"].as_str().unwrap().to_owned()
}

#[test]
fn rerun_of_a_committed_append_window_commits_nothing_again() {
    let cloud = Cloud::start();
    let t = table(&cloud);
    let param = cloud.param(&t, json!({"partition": "pt=1"}));
    let (s1, r1) = load(&param, 300);
    assert_eq!(abort(&param, &s1, &[])["committed"], "none");
    let answer = post(&param, &s1, &r1).unwrap();
    assert_eq!(answer["committed"], "all", "{answer}");
    assert_eq!(count(&cloud, &t), 300);
    let first = upload_id(&s1);
    // One marker per window stays: the intent is dropped once committed is there.
    assert_eq!(
        markers(&cloud, &t),
        vec![(first.clone(), "committed".to_owned())]
    );
    // The same window again: its own session is left uncommitted, nothing is added.
    let (s2, r2) = load(&param, 300);
    let answer = post(&param, &s2, &r2).unwrap();
    assert_eq!(answer["committed"], "all");
    let detail = answer["detail"].as_str().unwrap();
    assert!(
        detail.contains("already committed by an earlier run")
            && detail.contains(&first)
            && detail.contains("partition pt=1"),
        "{detail}"
    );
    assert_eq!(count(&cloud, &t), 300);
    // abort after a commit: "all" (asked of the Tunnel); the second session: "none".
    let all = abort(&param, &s1, &r1);
    assert_eq!(all["committed"], "all", "{all}");
    assert!(all["detail"].as_str().unwrap().contains(&first), "{all}");
    assert_eq!(abort(&param, &s2, &r2)["committed"], "none");
    // Another window (another fingerprint) of the same partition appends.
    let other = OdpsWriter.prepare(&ctx(&param, &Json::Null)).unwrap();
    let mut c = ctx(&param, &other);
    c.job.fingerprint = "f".repeat(32);
    let answer = OdpsWriter.post_answer(&c, &[]).unwrap();
    assert!(
        !answer["detail"].as_str().unwrap().contains("already"),
        "{answer}"
    );
    // commitMarker false: an explicit choice to append on every run.
    let plain = cloud.param(&t, json!({"partition": "pt=1", "commitMarker": false}));
    let (s3, r3) = load(&plain, 300);
    post(&plain, &s3, &r3).unwrap();
    assert_eq!(count(&cloud, &t), 600);
}

#[test]
fn a_run_that_died_between_intent_and_commit_is_committed_once() {
    let cloud = Cloud::start();
    let t = table(&cloud);
    let param = cloud.param(&t, json!({"partition": "pt=1", "maxRetryTime": 1}));
    let (s1, r1) = load(&param, 200);
    // The commit fails: the intent is recorded, the session stays uncommitted.
    cloud.fault(
        Some("CommitUpload"),
        None,
        Some(1),
        false,
        FaultAction::Error {
            status: 400,
            code: "InvalidArgument".into(),
            message: None,
        },
    );
    let e = post(&param, &s1, &r1).unwrap_err();
    assert!(e.message.contains("CommitUpload"), "{}", e.message);
    assert_eq!(count(&cloud, &t), 0);
    assert_eq!(markers(&cloud, &t), vec![(upload_id(&s1), "intent".into())]);
    let none = abort(&param, &s1, &r1);
    assert_eq!(none["committed"], "none", "{none}");
    assert!(
        none["detail"].as_str().unwrap().contains("normal"),
        "{none}"
    );
    // The re-run commits its own session once and settles the earlier intent.
    let (s2, r2) = load(&param, 200);
    assert_eq!(post(&param, &s2, &r2).unwrap()["committed"], "all");
    assert_eq!(count(&cloud, &t), 200);
    assert_eq!(
        markers(&cloud, &t),
        vec![(upload_id(&s2), "committed".to_owned())]
    );
    // And a third run commits nothing.
    let (s3, r3) = load(&param, 200);
    post(&param, &s3, &r3).unwrap();
    assert_eq!(count(&cloud, &t), 200);
}

#[test]
fn a_lost_committed_marker_is_found_through_the_tunnel_and_after_expiry_is_an_error() {
    let cloud = Cloud::start();
    let t = table(&cloud);
    let param = cloud.param(&t, json!({"partition": "pt=1"}));
    let (s1, r1) = load(&param, 100);
    post(&param, &s1, &r1).unwrap();
    let first = upload_id(&s1);
    // As if the run had died right after its commit, before the committed marker.
    died_before_the_committed_marker(&cloud, &t, &first);
    // abort asks the Tunnel, says "all" and records the marker again.
    assert_eq!(abort(&param, &s1, &r1)["committed"], "all");
    assert_eq!(
        markers(&cloud, &t),
        vec![(first.clone(), "committed".to_owned())]
    );
    died_before_the_committed_marker(&cloud, &t, &first);
    // A re-run within 24 h learns from the Tunnel that the session committed.
    let (s2, r2) = load(&param, 100);
    let answer = post(&param, &s2, &r2).unwrap();
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("already committed"),
        "{answer}"
    );
    assert_eq!(count(&cloud, &t), 100);
    // Once the session expired, an intent without a committed marker is an error
    // naming the partition, the session and how to settle it: never a guess.
    died_before_the_committed_marker(&cloud, &t, &first);
    cloud.age_upload(&first, 25 * 3600 * 1000);
    let (s3, r3) = load(&param, 100);
    let e = post(&param, &s3, &r3).unwrap_err();
    for needle in [
        first.as_str(),
        "partition pt=1",
        "can no longer tell",
        "state='committed'",
        "DROP IF EXISTS PARTITION",
    ] {
        assert!(e.message.contains(needle), "{needle}: {}", e.message);
    }
    assert_eq!(count(&cloud, &t), 100);
    let unknown = abort(&param, &s1, &r1);
    assert_eq!(unknown["committed"], "unknown", "{unknown}");
}

#[test]
fn overwrite_reruns_replace_and_keep_no_markers() {
    let cloud = Cloud::start();
    let t = table(&cloud);
    let param = cloud.param(&t, json!({"partition": "pt=1", "truncate": true}));
    for _ in 0..2 {
        let (state, reports) = load(&param, 150);
        assert_eq!(post(&param, &state, &reports).unwrap()["committed"], "all");
        assert_eq!(count(&cloud, &t), 150);
        assert_eq!(abort(&param, &state, &reports)["committed"], "all");
    }
    let tables = cloud.dump(MARKERS);
    assert!(tables["partitions"].as_array().is_none_or(|p| p.is_empty()));
}

/// `engine run` of reader-stream → writer-odps, one window.
fn run_engine(dir: &Path, writer: &Json) -> Output {
    let reader = json!({"sliceRecordCount": 500, "column": [
        {"type": "long", "sequence": 1}, {"type": "string", "value": "v"}]});
    let job = json!({"job": {"setting": {"speed": {"channel": 2}}, "content": [{
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
        .arg(&path)
        .output()
        .unwrap()
}

#[test]
fn engine_rerun_of_an_append_window_keeps_the_row_count() {
    let cloud = Cloud::start();
    let t = table(&cloud);
    let writer = cloud.param(
        &t,
        json!({"partition": "pt=${bdp.system.bizdate}", "column": ["id", "s"]}),
    );
    let dir = tempfile::tempdir().unwrap();
    for run in 0..2 {
        let out = run_engine(dir.path(), &writer);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "run {run}: {err}");
        assert_eq!(
            cloud.rows(&t, "pt=20240101").map(|r| r.len()),
            Some(1000),
            "run {run}: {err}"
        );
        if run == 1 {
            assert!(err.contains("already committed by an earlier run"), "{err}");
        }
    }
}

/// `writer-odps <step> --engine` with a step request on stdin: the step response.
fn step(name: &str, param: &Json, state: &Json, reports: Vec<Json>) -> Json {
    use std::io::Write;
    let request = protocol::runtime::StepRequest {
        context: ctx(param, state),
        count: None,
        reports,
    };
    let mut child = Command::new(common::binary("writer-odps"))
        .args([name, "--engine"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let body = serde_json::to_vec(&request).unwrap();
    child.stdin.take().unwrap().write_all(&body).unwrap();
    let out = child.wait_with_output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    })
}

#[test]
fn post_and_abort_steps_answer_what_is_committed_over_stdio() {
    let cloud = Cloud::start();
    let t = table(&cloud);
    let param = cloud.param(&t, json!({"partition": "pt=1"}));
    let (state, reports) = load(&param, 50);
    let id = upload_id(&state);
    let before = step("abort", &param, &state, vec![]);
    assert_eq!(before["ok"], true, "{before}");
    assert_eq!(before["value"]["committed"], "none", "{before}");
    let posted = step("post", &param, &state, reports.clone());
    assert_eq!(posted["value"]["committed"], "all", "{posted}");
    assert!(posted["value"]["detail"].as_str().unwrap().contains(&id));
    let after = step("abort", &param, &state, reports);
    assert_eq!(after["value"]["committed"], "all", "{after}");
    // A table of the marker table's name that is not one fails check and prepare.
    let other = cloud.param(&t, json!({"partition": "pt=1", "commitMarkerTable": t}));
    for name in ["check", "prepare"] {
        let e = step(name, &other, &Json::Null, vec![]);
        let message = e["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("not a commit-marker table"), "{e}");
    }
    let none = step("abort", &param, &Json::Null, vec![]);
    assert_eq!(none["value"]["committed"], "none", "{none}");
    assert_eq!(count(&cloud, &t), 50);
}
