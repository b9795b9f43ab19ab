//! The job steps driven as an engine drives them: prepare, split into several tasks
//! sharing one upload session, write, post; faults on every request; a task retried
//! after a failed attempt; abort.

#![allow(clippy::unwrap_used)]

mod common;

use common::{unique, Cloud};
use localcloud::common::faults::FaultAction;
use protocol::frame::FrameWriter;
use protocol::message::{Batch, Eos, Hello, JobContext, Message, Role};
use protocol::runtime::{Plugin, RecordSource, StepContext, TaskContext, Writer, WriterOutput};
use protocol::value::{Record, Value};
use serde_json::{json, Value as Json};
use writer_odps::OdpsWriter;

/// A reader's stream of `records` as frame bytes.
fn frames(records: &[Record]) -> Vec<u8> {
    let mut w = FrameWriter::new(Vec::new()).unwrap();
    w.write_message(&Message::Hello(Hello::new(Role::Reader, "test", "0")))
        .unwrap();
    for chunk in records.chunks(500) {
        w.write_message(&Message::Batch(Batch::from_records(chunk)))
            .unwrap();
    }
    w.write_message(&Message::Eos(Eos {
        records: records.len() as u64,
        bytes: 0,
    }))
    .unwrap();
    w.into_inner()
}

fn rows(from: i64, to: i64, filler: usize) -> Vec<Record> {
    let text = "y".repeat(filler);
    (from..to)
        .map(|i| vec![Value::Long(i), Value::String(format!("{i}-{text}"))])
        .collect()
}

fn ctx(parameter: &Json, state: &Json, index: u32, count: u32) -> StepContext {
    StepContext {
        parameter: parameter.clone(),
        state: state.clone(),
        job: JobContext {
            job_id: "test".into(),
            fingerprint: "0".repeat(32),
            time_zone: "UTC".into(),
            task_index: index,
            task_count: count,
        },
    }
}

fn write_task(task: &Json, index: u32, count: u32, records: &[Record]) -> Result<Json, String> {
    let writer = OdpsWriter;
    let mut input = RecordSource::from_frame_bytes(frames(records));
    let mut out = WriterOutput::standalone();
    let c = ctx(&Json::Null, &Json::Null, index, count);
    writer
        .write(
            &TaskContext {
                config: task.clone(),
                job: c.job,
            },
            &mut input,
            &mut out,
        )
        .map_err(|e| e.message)
}

fn sorted_ids(cloud: &Cloud, t: &str, spec: &str) -> Vec<i64> {
    let mut ids: Vec<i64> = cloud
        .rows(t, spec)
        .unwrap()
        .iter()
        .map(|r| r[0].as_i64().unwrap())
        .collect();
    ids.sort();
    ids
}

/// Runs a 3-task job; task 1 first fails after uploading a block, then succeeds with
/// fewer blocks. Returns the table.
fn three_tasks_with_a_retried_task(cloud: &Cloud, extra: Json) -> String {
    let t = unique("tasks");
    cloud.sql(&format!(
        "create table {t} (id bigint, s string) partitioned by (pt string)"
    ));
    let mut param = cloud.param(&t, json!({"partition": "pt=7", "blockSizeInMB": 8}));
    for (k, v) in extra.as_object().unwrap() {
        param[k] = v.clone();
    }
    let writer = OdpsWriter;
    let state = writer.prepare(&ctx(&param, &Json::Null, 0, 3)).unwrap();
    let tasks = writer.split(&ctx(&param, &state, 0, 3), 3).unwrap();
    assert_eq!(tasks.len(), 3);
    // Task 0: ~9 MB, three blocks (blocks close at 4 MiB).
    let r0 = write_task(&tasks[0], 0, 3, &rows(0, 9000, 1000)).unwrap();
    assert_eq!(r0["blocks"].as_array().unwrap().len(), 3, "{r0}");
    // Task 1, first attempt: three blocks are uploaded, but its report never reaches post.
    let attempt = write_task(&tasks[1], 1, 3, &rows(100_000, 109_000, 1000));
    let blocks_of_failed_attempt = attempt.unwrap()["blocks"].clone();
    assert_eq!(blocks_of_failed_attempt.as_array().unwrap().len(), 3);
    // (Its report is lost: the engine retries the task.) The retry writes less.
    let r1 = write_task(&tasks[1], 1, 3, &rows(200_000, 200_010, 10)).unwrap();
    let r2 = write_task(&tasks[2], 2, 3, &rows(300_000, 300_005, 10)).unwrap();
    let ids: Vec<u64> = [&r0, &r1, &r2]
        .iter()
        .flat_map(|r| {
            r["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_u64().unwrap())
        })
        .collect();
    // Disjoint block ranges.
    let unique_ids: std::collections::BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique_ids.len(), ids.len(), "{ids:?}");
    writer
        .post(&ctx(&param, &state, 0, 3), &[r0, r1, r2])
        .unwrap();
    t
}

fn expected_ids() -> Vec<i64> {
    (0..9000)
        .chain(200_000..200_010)
        .chain(300_000..300_005)
        .collect()
}

#[test]
fn tasks_share_one_session_and_stale_blocks_are_not_committed() {
    let cloud = Cloud::start();
    let t = three_tasks_with_a_retried_task(&cloud, json!({}));
    assert_eq!(sorted_ids(&cloud, &t, "pt=7"), expected_ids());
    let uploads = cloud.uploads();
    let sessions: Vec<&Json> = uploads["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["table"] == json!(t))
        .collect();
    assert_eq!(sessions.len(), 1, "one session per job: {uploads}");
    assert_eq!(sessions[0]["status"], "closed");
}

#[test]
fn ten_percent_faults_on_every_request_and_a_commit_that_succeeded() {
    let cloud = Cloud::start();
    let error = |status: u16, code: &str| FaultAction::Error {
        status,
        code: code.into(),
        message: None,
    };
    // The commit fails but in fact succeeded, once; a block is stored but its answer lost.
    cloud.fault(
        Some("CommitUpload"),
        None,
        Some(1),
        true,
        error(500, "InternalServerError"),
    );
    cloud.fault(Some("UploadBlock"), None, Some(1), true, FaultAction::Drop);
    // 10 % of every request on the service and the Tunnel.
    cloud.fault(
        None,
        Some(0.05),
        None,
        false,
        error(500, "InternalServerError"),
    );
    cloud.fault(
        None,
        Some(0.03),
        None,
        false,
        error(503, "ServiceUnavailable"),
    );
    cloud.fault(None, Some(0.02), None, false, FaultAction::Drop);
    // Table creation is the test's own request: retry it here.
    let t = loop {
        let t = unique("faulty");
        let created = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cloud.sql(&format!(
                "create table {t} (id bigint, s string) partitioned by (pt string)"
            ))
        }));
        if created.is_ok() {
            break t;
        }
    };
    let run = |param: Json| {
        let writer = OdpsWriter;
        let state = writer.prepare(&ctx(&param, &Json::Null, 0, 2)).unwrap();
        let tasks = writer.split(&ctx(&param, &state, 0, 2), 2).unwrap();
        let r0 = write_task(&tasks[0], 0, 2, &rows(0, 6000, 1000)).unwrap();
        let r1 = write_task(&tasks[1], 1, 2, &rows(10_000, 10_100, 10)).unwrap();
        writer.post(&ctx(&param, &state, 0, 2), &[r0, r1]).unwrap();
    };
    let param = cloud.param(
        &t,
        json!({"partition": "pt=1", "blockSizeInMB": 8, "truncate": true}),
    );
    // Truncating runs: each replaces the partition, so one copy remains.
    for _ in 0..6 {
        run(param.clone());
    }
    let injected = cloud.handle.faults.injected();
    cloud.handle.faults.clear();
    let expected: Vec<i64> = (0..6000).chain(10_000..10_100).collect();
    assert_eq!(sorted_ids(&cloud, &t, "pt=1"), expected);
    let ops: std::collections::BTreeSet<&str> =
        injected.iter().map(|f| f.operation.as_str()).collect();
    assert!(injected
        .iter()
        .any(|f| f.operation == "CommitUpload" && f.after_apply));
    // The two one-off faults and, with ~70 requests at 10 %, some of the random ones
    // (none at all has a probability below 0.1 %).
    assert!(injected.len() >= 3, "faults injected: {injected:?}");
    eprintln!("{} faults injected on {ops:?}", injected.len());
}

#[test]
fn abort_commits_nothing() {
    let cloud = Cloud::start();
    let t = unique("aborted");
    cloud.sql(&format!(
        "create table {t} (id bigint, s string) partitioned by (pt string)"
    ));
    cloud.sql(&format!("alter table {t} add partition (pt='1')"));
    let param = cloud.param(&t, json!({"partition": "pt=1"}));
    let writer = OdpsWriter;
    let state = writer.prepare(&ctx(&param, &Json::Null, 0, 1)).unwrap();
    let tasks = writer.split(&ctx(&param, &state, 0, 1), 1).unwrap();
    write_task(&tasks[0], 0, 1, &rows(0, 10, 5)).unwrap();
    writer.abort(&ctx(&param, &state, 0, 1)).unwrap();
    assert_eq!(cloud.rows(&t, "pt=1").unwrap(), Vec::<Json>::new());
}

#[test]
fn a_block_answer_that_times_out_is_sent_again_from_the_spool() {
    let cloud = Cloud::start();
    let t = unique("slow");
    cloud.sql(&format!(
        "create table {t} (id bigint, s string) partitioned by (pt string)"
    ));
    cloud.fault(
        Some("UploadBlock"),
        None,
        Some(1),
        false,
        FaultAction::Latency { ms: 4000 },
    );
    let param = cloud.param(&t, json!({"partition": "pt=1", "truncate": true, "writeTimeoutInMs": 1000, "isCompress": true}));
    let writer = OdpsWriter;
    let state = writer.prepare(&ctx(&param, &Json::Null, 0, 1)).unwrap();
    let tasks = writer.split(&ctx(&param, &state, 0, 1), 1).unwrap();
    let started = std::time::Instant::now();
    let report = write_task(&tasks[0], 0, 1, &rows(0, 50, 5)).unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_millis(3900),
        "the slow answer was awaited"
    );
    writer.post(&ctx(&param, &state, 0, 1), &[report]).unwrap();
    assert_eq!(
        sorted_ids(&cloud, &t, "pt=1"),
        (0..50).collect::<Vec<i64>>()
    );
    let uploads: Vec<Json> = cloud
        .handle
        .faults
        .injected()
        .iter()
        .map(|f| json!(f.operation))
        .collect();
    assert_eq!(uploads, vec![json!("UploadBlock")]);
}
