//! `writeMode: "upsert"` against the emulator's Delta tables: changes merged per key and
//! committed once per window; a re-run of a committed window commits nothing again;
//! `abort` tells what is committed; a slot moved to another worker is followed; a
//! table without partial-column updates refuses a window that needs them.

#![allow(clippy::unwrap_used)]

mod common;

use common::{unique, Cloud};
use protocol::frame::FrameWriter;
use protocol::message::{Batch, Eos, Hello, JobContext, Message, Role};
use protocol::runtime::{
    Plugin, PluginError, RecordSource, StepContext, TaskContext, Writer, WriterOutput,
};
use protocol::value::{Record, Value};
use serde_json::{json, Value as Json};
use writer_odps::OdpsWriter;

const FINGERPRINT: &str = "fedcba9876543210fedcba9876543210";

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

/// A Delta table `(id string, n bigint, a bigint, b string)` keyed by `(id, n)`.
fn delta_table(cloud: &Cloud, partial: bool) -> String {
    let t = unique("mirror");
    let partial = if partial {
        ", \"acid.partial.fields.update.enable\"=\"true\""
    } else {
        ""
    };
    cloud.sql(&format!(
        "CREATE TABLE {t} (id STRING NOT NULL, n BIGINT NOT NULL, a BIGINT, b STRING, PRIMARY KEY (id, n)) \
         TBLPROPERTIES (\"transactional\"=\"true\", \"write.bucket.num\"=\"4\"{partial})"
    ));
    t
}

fn param(cloud: &Cloud, t: &str) -> Json {
    cloud.param(
        t,
        json!({"writeMode": "upsert", "truncate": null, "column": ["id", "n", "a", "b"]}),
    )
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

/// A row-change record: `[op, states, id, n, a, b]`.
fn change(op: &str, states: &str, id: &str, n: i64, a: Value, b: Value) -> Record {
    vec![s(op), s(states), s(id), Value::Long(n), a, b]
}

fn prepare(param: &Json) -> Json {
    OdpsWriter.prepare(&ctx(param, &Json::Null)).unwrap()
}

fn write(param: &Json, state: &Json, records: &[Record]) -> Result<Json, PluginError> {
    let task = OdpsWriter.split(&ctx(param, state), 1)?.remove(0);
    let mut input = RecordSource::from_frame_bytes(frames(records));
    let mut out = WriterOutput::standalone();
    OdpsWriter.write(
        &TaskContext {
            config: task,
            job: ctx(param, state).job,
        },
        &mut input,
        &mut out,
    )
}

fn window(cloud: &Cloud, t: &str) -> Vec<Json> {
    let mut rows = cloud.rows(t, "").unwrap_or_default();
    rows.sort_by_key(|r| r.to_string());
    rows
}

fn workload() -> Vec<Record> {
    let n = Value::Null;
    vec![
        change("put", "UU", "k1", 1, Value::Long(10), s("x")),
        change("update", "-D", "k1", 1, n.clone(), n.clone()),
        change("update", "U-", "k1", 1, Value::Long(11), n.clone()),
        change("put", "UD", "k2", 1, Value::Long(20), n.clone()),
        change("delete", "--", "k2", 1, n.clone(), n.clone()),
        change("delete", "--", "k3", 2, n.clone(), n.clone()),
        change("update", "-U", "k3", 2, n.clone(), s("new")),
    ]
}

#[test]
fn changes_are_merged_per_key_and_committed_once_per_window() {
    let cloud = Cloud::start();
    let t = delta_table(&cloud, true);
    let p = param(&cloud, &t);
    // An earlier window left k4 (partly updated below) and k2.
    let earlier = [
        change("put", "UU", "k4", 4, Value::Long(40), s("keep")),
        change("put", "UU", "k2", 1, Value::Long(1), s("gone")),
    ];
    let mut other = ctx(&p, &Json::Null);
    other.job.fingerprint = "00".repeat(16);
    let state = OdpsWriter.prepare(&other).unwrap();
    let report = write(&p, &state, &earlier).unwrap();
    let mut other_state = other.clone();
    other_state.state = state;
    OdpsWriter.post_answer(&other_state, &[report]).unwrap();

    let mut records = workload();
    records.push(change(
        "update",
        "U-",
        "k4",
        4,
        Value::Long(41),
        Value::Null,
    ));
    let state = prepare(&p);
    let report = write(&p, &state, &records).unwrap();
    assert_eq!(report["changes"], 8);
    assert_eq!(
        (&report["upserts"], &report["partial"], &report["deletes"]),
        (&json!(2), &json!(1), &json!(1))
    );
    let answer = OdpsWriter
        .post_answer(&ctx(&p, &state), std::slice::from_ref(&report))
        .unwrap();
    assert_eq!(answer["committed"], "all", "{answer}");
    let want = vec![
        json!(["k1", 1, 11, null]),
        json!(["k3", 2, null, "new"]),
        json!(["k4", 4, 41, "keep"]),
    ];
    assert_eq!(window(&cloud, &t), want);
    // abort after post: the Tunnel says committed.
    let aborted = OdpsWriter
        .abort_answer(&ctx(&p, &state), &[report])
        .unwrap();
    assert_eq!(aborted["committed"], "all", "{aborted}");

    // The same window again, with other data that must not be applied.
    let state = prepare(&p);
    let again = [change("put", "UU", "k1", 1, Value::Long(99), s("no"))];
    let report = write(&p, &state, &again).unwrap();
    let answer = OdpsWriter.post_answer(&ctx(&p, &state), &[report]).unwrap();
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("already committed"),
        "{answer}"
    );
    assert_eq!(window(&cloud, &t), want);
}

#[test]
fn abort_before_post_aborts_the_session() {
    let cloud = Cloud::start();
    let t = delta_table(&cloud, true);
    let p = param(&cloud, &t);
    let state = prepare(&p);
    write(&p, &state, &workload()).unwrap();
    let answer = OdpsWriter.abort_answer(&ctx(&p, &state), &[]).unwrap();
    assert_eq!(answer["committed"], "none", "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("ABORTED"),
        "{answer}"
    );
    assert!(window(&cloud, &t).is_empty());
    // The aborted session cannot be committed any more.
    assert!(OdpsWriter.post_answer(&ctx(&p, &state), &[]).is_err());
    assert!(window(&cloud, &t).is_empty());
}

#[test]
fn a_slot_moved_to_another_worker_is_followed() {
    let cloud = Cloud::start();
    let t = delta_table(&cloud, true);
    let p = param(&cloud, &t);
    let state = prepare(&p);
    let id = state["session"]["id"].as_str().unwrap().to_owned();
    let slots: Vec<String> = state["session"]["buckets"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v[0].as_str().unwrap().to_owned())
        .collect();
    for slot in slots {
        let url = format!("{}/-/odps/upserts/{id}/reassign", cloud.endpoint());
        cloud.rt.block_on(async {
            let r = reqwest::Client::new()
                .post(url)
                .body(json!({"slot_id": slot, "worker_addr": "127.0.0.1:7"}).to_string())
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        });
    }
    let report = write(&p, &state, &workload()).unwrap();
    // Data was sent to the old worker first (answered 308), then to the new one.
    let url = format!("{}/-/odps/requests", cloud.endpoint());
    let log: Json = cloud.rt.block_on(async {
        serde_json::from_str(&reqwest::get(url).await.unwrap().text().await.unwrap()).unwrap()
    });
    let routed: Vec<String> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["operation"] == "UpsertData")
        .map(|r| {
            r["headers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h[0] == "odps-tunnel-routed-server")
                .map(|h| h[1].as_str().unwrap().to_owned())
                .unwrap_or_default()
        })
        .collect();
    assert!(routed.len() >= 2, "{routed:?}");
    assert_ne!(routed[0], "127.0.0.1:7", "{routed:?}");
    assert_eq!(routed.last().unwrap(), "127.0.0.1:7", "{routed:?}");
    let answer = OdpsWriter.post_answer(&ctx(&p, &state), &[report]).unwrap();
    assert_eq!(answer["committed"], "all", "{answer}");
    assert_eq!(window(&cloud, &t).len(), 2);
}

#[test]
fn partial_updates_need_the_table_property() {
    let cloud = Cloud::start();
    let t = delta_table(&cloud, false);
    let p = param(&cloud, &t);
    let state = prepare(&p);
    let mut records = workload();
    records.push(change("update", "U-", "k5", 5, Value::Long(5), Value::Null));
    let e = write(&p, &state, &records).unwrap_err().message;
    assert!(
        e.contains("acid.partial.fields.update.enable") && e.contains(&t) && e.contains("k5"),
        "{e}"
    );
    // Without keys that have only updates, the same table takes the window.
    let state = prepare(&p);
    let report = write(&p, &state, &workload()).unwrap();
    OdpsWriter.post_answer(&ctx(&p, &state), &[report]).unwrap();
    assert_eq!(
        window(&cloud, &t),
        vec![json!(["k1", 1, 11, null]), json!(["k3", 2, null, "new"])]
    );
}

#[test]
fn a_table_without_a_primary_key_is_refused() {
    let cloud = Cloud::start();
    let t = unique("plain");
    cloud.sql(&format!(
        "CREATE TABLE {t} (id STRING, n BIGINT, a BIGINT, b STRING)"
    ));
    let p = param(&cloud, &t);
    let e = OdpsWriter
        .prepare(&ctx(&p, &Json::Null))
        .unwrap_err()
        .message;
    assert!(
        e.contains("Delta table") || e.contains("primary key"),
        "{e}"
    );
}
