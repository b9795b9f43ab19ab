//! Acceptance 3: consecutive windows export every change exactly once, resuming from
//! the checkpoints the previous window persisted; a re-run gives the same output; a
//! window whose writer failed (reader `post` not run) persists nothing.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use protocol::message::JobContext;
use protocol::runtime::{Plugin, Reader, RecordSink, StepContext, TaskContext};
use reader_otsstream::plainbuffer::{Cell, CellValue};
use reader_otsstream::{status, OtsStreamReader};
use serde_json::Value as Json;

fn batch(cloud: &Cloud, table: &str, from: i64, to: i64) {
    for n in from..to {
        cloud.put(
            table,
            key2("row", n % 4),
            vec![Cell::put("v", CellValue::Integer(n), None)],
        );
        if n % 3 == 0 {
            cloud.delete(table, key2("row", (n + 1) % 4));
        }
    }
}

/// A: ~40 minutes old, B: ~20 minutes old, C: now.
fn three_batches(cloud: &Cloud, table: &str) {
    batch(cloud, table, 0, 10);
    cloud.backdate(table, 20 * MINUTE);
    batch(cloud, table, 10, 20);
    cloud.backdate(table, 20 * MINUTE);
    batch(cloud, table, 20, 30);
}

fn values(lines: &[Json]) -> Vec<i64> {
    lines
        .iter()
        .filter(|l| l[5] == "U")
        .map(|l| l[4].as_i64().unwrap())
        .collect()
}

#[test]
fn consecutive_windows_export_each_change_once() {
    let cloud = Cloud::start();
    cloud.create_table("w", Some(24));
    three_batches(&cloud, "w");
    let now = now_ms();
    let (t0, t1, t2) = (now - 60 * MINUTE, now - 30 * MINUTE, now - 10 * MINUTE);

    let w1 = cloud.read_ok(&cloud.params("w", "st", t0, t1));
    assert_eq!(values(&w1), (0..10).collect::<Vec<_>>());
    let out = cloud.read(&cloud.params("w", "st", t1, t2), &[]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("resuming 1 shards"), "{stderr}");
    let w2: Vec<Json> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(values(&w2), (10..20).collect::<Vec<_>>());

    // Nothing lost, nothing twice: the two windows together equal one fresh window.
    let whole = cloud.read_ok(&cloud.params("w", "st_fresh", t0, t2));
    let joined: Vec<Json> = w1.iter().chain(&w2).cloned().collect();
    assert_eq!(joined, whole);

    // Without checkpoints, seeking by time gives the same rows as scanning.
    let mut seek = cloud.params("w", "st_seek", t1, t2);
    seek["enableSeekIterator"] = serde_json::json!(true);
    assert_eq!(cloud.read_ok(&seek), w2);

    // Re-running a window gives identical output; so does the next one after it.
    assert_eq!(cloud.read_ok(&cloud.params("w", "st", t0, t1)), w1);
    assert_eq!(cloud.read_ok(&cloud.params("w", "st", t1, t2)), w2);

    // The status table holds DataX's layout for t1 and t2.
    let stream_id = cloud.dump("w")["stream"]["stream_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for t in [t1, t2] {
        let (job, legacy) = cloud
            .rt
            .block_on(status::read_job(&cloud.client, "st", &stream_id, t))
            .unwrap()
            .unwrap();
        assert!(legacy.is_none());
        assert_eq!(job.shard_ids.len(), 1);
        let cps = cloud
            .rt
            .block_on(status::read_checkpoints(&cloud.client, "st", &stream_id, t))
            .unwrap();
        assert_eq!(cps.len(), 1);
        assert_eq!(cps[0].version, job.version);
        assert_eq!(cps[0].shard_id, job.shard_ids[0]);
    }
}

fn context(params: &Json) -> StepContext {
    StepContext {
        parameter: params.clone(),
        state: Json::Null,
        job: JobContext {
            job_id: "t".into(),
            fingerprint: "0".repeat(32),
            time_zone: "UTC".into(),
            task_index: 0,
            task_count: 1,
        },
    }
}

#[test]
fn a_window_whose_writer_failed_persists_nothing() {
    let cloud = Cloud::start();
    cloud.create_table("f", Some(24));
    three_batches(&cloud, "f");
    let now = now_ms();
    let (t0, t1, t2) = (now - 60 * MINUTE, now - 30 * MINUTE, now - 10 * MINUTE);
    let params = cloud.params("f", "st_failed", t0, t1);
    let reader = OtsStreamReader;
    let mut ctx = context(&params);
    ctx.state = reader.prepare(&ctx).unwrap();
    let tasks = reader.split(&ctx, 4).unwrap();
    let (mut sink, _buffer) = RecordSink::in_memory();
    for config in tasks {
        let task = TaskContext {
            config,
            job: ctx.job.clone(),
        };
        reader.read(&task, &mut sink).unwrap();
    }
    assert!(sink.records() > 0);
    assert_eq!(sink.checkpoints().len(), 1);
    // The writer failed: the engine does not run the reader's post.
    let stream_id = cloud.dump("f")["stream"]["stream_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = cloud
        .rt
        .block_on(status::read_job(&cloud.client, "st_failed", &stream_id, t1))
        .unwrap();
    assert!(job.is_none());
    let cps = cloud
        .rt
        .block_on(status::read_checkpoints(
            &cloud.client,
            "st_failed",
            &stream_id,
            t1,
        ))
        .unwrap();
    assert!(cps.is_empty());
    // The next window finds no checkpoint and still exports exactly its own changes.
    let out = cloud.read(&cloud.params("f", "st_failed", t1, t2), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no complete checkpoint set"), "{stderr}");
    let lines: Vec<Json> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(values(&lines), (10..20).collect::<Vec<_>>());

    // Post with the reported checkpoints persists them.
    let checkpoints = sink.checkpoints().to_vec();
    reader.post(&ctx, &checkpoints).unwrap();
    let cps = cloud
        .rt
        .block_on(status::read_checkpoints(
            &cloud.client,
            "st_failed",
            &stream_id,
            t1,
        ))
        .unwrap();
    assert_eq!(cps.len(), 1);
}
