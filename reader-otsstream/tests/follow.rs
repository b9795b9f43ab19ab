//! Follow mode (issue 16) through the plugin's own steps against the in-process
//! emulator: task bounds (record share, deadline) and the replay bound (exactly the
//! recorded record count per shard, whatever arrived since).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::*;
use protocol::runtime::{Plugin, Reader, RecordSink, StepContext, TaskContext};
use reader_otsstream::follow::FollowReport;
use reader_otsstream::plainbuffer::{Cell, CellValue};
use reader_otsstream::OtsStreamReader;
use serde_json::{json, Value as Json};

fn params(cloud: &Cloud, table: &str, follow: Json) -> Json {
    let mut p = cloud.params(table, &format!("{table}_status"), 0, 1);
    let map = p.as_object_mut().unwrap();
    map.remove("startTimestampMillis");
    map.remove("endTimestampMillis");
    map.insert("follow".into(), follow);
    p
}

fn ctx(parameter: &Json, state: Json) -> StepContext {
    let mut c = StepContext {
        parameter: parameter.clone(),
        state,
        ..StepContext::default()
    };
    c.job.time_zone = "UTC".into();
    c
}

struct Batch {
    state: Json,
    tasks: Vec<Json>,
    rows: u64,
    reports: Vec<Json>,
}

fn read_batch(parameter: &Json, count: usize) -> Batch {
    let r = OtsStreamReader;
    let state = r.prepare(&ctx(parameter, Json::Null)).unwrap();
    let tasks = r.split(&ctx(parameter, state.clone()), count).unwrap();
    let (mut rows, mut reports) = (0, Vec::new());
    for (i, t) in tasks.iter().enumerate() {
        let (mut sink, _buffer) = RecordSink::in_memory();
        let mut task = TaskContext {
            config: t.clone(),
            ..TaskContext::default()
        };
        task.job.time_zone = "UTC".into();
        task.job.task_index = i as u32;
        r.read(&task, &mut sink).unwrap();
        rows += sink.records();
        reports.extend(sink.checkpoints().iter().cloned());
    }
    Batch {
        state,
        tasks,
        rows,
        reports,
    }
}

fn records(reports: &[Json]) -> u64 {
    reports
        .iter()
        .map(|r| {
            serde_json::from_value::<FollowReport>(r.clone())
                .unwrap()
                .end
                .records
        })
        .sum()
}

fn put_rows(cloud: &Cloud, table: &str, from: i64, to: i64) {
    for n in from..to {
        cloud.put(
            table,
            key2("k", n),
            vec![Cell::put("v", CellValue::Integer(n), None)],
        );
    }
}

#[test]
fn a_replay_reads_exactly_the_recorded_records_and_the_next_batch_the_rest() {
    let cloud = Cloud::start();
    cloud.create_table("fr", Some(24));
    put_rows(&cloud, "fr", 0, 10);
    let r = OtsStreamReader;
    let first = params(
        &cloud,
        "fr",
        json!({"commitIntervalSeconds": 60, "commitRecords": 4, "from": "oldest"}),
    );
    let started = Instant::now();
    let a = read_batch(&first, 1);
    // The record share ends the task at once, long before the interval.
    assert!(started.elapsed().as_secs_f64() < 30.0);
    assert_eq!(records(&a.reports), 4);
    r.precommit(&ctx(&first, a.state.clone()), &a.reports)
        .unwrap();
    // Crash before post; more records arrive; the restart runs with other limits.
    put_rows(&cloud, "fr", 10, 15);
    let later = params(&cloud, "fr", json!({"commitIntervalSeconds": 1}));
    let b = read_batch(&later, 3);
    assert_eq!(b.tasks.len(), a.tasks.len());
    assert_eq!(b.tasks[0]["followBatch"], a.tasks[0]["followBatch"]);
    assert_eq!(b.rows, a.rows);
    assert_eq!(records(&b.reports), 4);
    let strip = |v: &[Json]| -> Vec<Json> {
        v.iter()
            .map(|r| {
                let mut r = r.clone();
                r.as_object_mut().unwrap().remove("position_ms");
                r
            })
            .collect()
    };
    assert_eq!(strip(&b.reports), strip(&a.reports));
    // A replay that cannot find the recorded records (they would have been trimmed)
    // fails instead of committing a different batch under the same id.
    let mut wrong = b.tasks[0].clone();
    for end in wrong["replay"].as_object_mut().unwrap().values_mut() {
        if end["records"] == json!(4) {
            end["records"] = json!(400);
        }
    }
    let (mut sink, _buffer) = RecordSink::in_memory();
    let task = TaskContext {
        config: wrong,
        ..TaskContext::default()
    };
    let e = r.read(&task, &mut sink).unwrap_err();
    assert!(
        e.message.contains("holds only 15 of the 400 records"),
        "{}",
        e.message
    );
    r.post(&ctx(&later, b.state.clone()), &b.reports).unwrap();
    // The next batch starts after the replayed one: the remaining 6 + 5 records.
    let c = read_batch(&later, 1);
    assert_ne!(c.tasks[0]["followBatch"], a.tasks[0]["followBatch"]);
    assert_eq!(records(&c.reports), 11);
    r.precommit(&ctx(&later, c.state.clone()), &c.reports)
        .unwrap();
    r.post(&ctx(&later, c.state.clone()), &c.reports).unwrap();
    // Caught up: the task waits for the deadline and reads nothing.
    let started = Instant::now();
    let d = read_batch(&later, 1);
    assert!(started.elapsed().as_secs_f64() >= 0.9);
    assert_eq!((records(&d.reports), d.rows), (0, 0));
}

#[test]
fn precommit_and_post_refuse_reports_of_another_batch_or_missing_shards() {
    let cloud = Cloud::start();
    cloud.create_table("fp", Some(24));
    put_rows(&cloud, "fp", 0, 3);
    cloud.control("/-/ots/split", json!({"table": "fp", "split_point": "k"}));
    let p = params(
        &cloud,
        "fp",
        json!({"commitIntervalSeconds": 1, "from": "oldest"}),
    );
    let a = read_batch(&p, 1);
    assert_eq!(
        a.reports.len(),
        3,
        "parent and two children report once each"
    );
    let r = OtsStreamReader;
    let mut short = a.reports.clone();
    short.pop();
    let e = r.precommit(&ctx(&p, a.state.clone()), &short).unwrap_err();
    assert!(e.message.contains("do not add up"), "{}", e.message);
    assert!(r.post(&ctx(&p, a.state.clone()), &short).is_err());
    let mut window = p.clone();
    window.as_object_mut().unwrap().remove("follow");
    window["startTimestampMillis"] = json!(now_ms() - 60 * MINUTE);
    window["endTimestampMillis"] = json!(now_ms() - 10 * MINUTE);
    let e = r
        .precommit(&ctx(&window, a.state.clone()), &a.reports)
        .unwrap_err();
    assert!(e.message.contains("follow-mode step"), "{}", e.message);
}
