//! Acceptance 6: each bad input gets a clear error naming the parameter, with the
//! documented exit code (2: configuration, 1: other failures).

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reader_otsstream::plainbuffer::{Cell, CellValue};
use serde_json::{json, Value as Json};

fn fails(cloud: &Cloud, params: &Json, code: i32, needles: &[&str]) {
    let out = cloud.read(params, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(out.stdout.is_empty(), "no record may be printed");
    for n in needles {
        assert!(stderr.contains(n), "expected {n:?} in: {stderr}");
    }
    assert!(
        !stderr.contains("localcloud-test-secret"),
        "the secret leaked: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn every_bad_input_names_its_parameter() {
    let cloud = Cloud::start();
    cloud.create_table("good", Some(24));
    cloud.create_table("nostream", None);
    let now = now_ms();
    let ok = cloud.params("good", "status_bad", now - 60 * MINUTE, now - 10 * MINUTE);
    let with = |changes: Json| {
        let mut p = ok.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                p.as_object_mut().unwrap().remove(k);
            } else {
                p[k] = v.clone();
            }
        }
        p
    };
    // The good configuration works (and finds nothing).
    assert!(cloud.read_ok(&ok).is_empty());

    fails(
        &cloud,
        &with(json!({"dataTable": "nope"})),
        2,
        &["parameter dataTable", "\"nope\" does not exist"],
    );
    fails(
        &cloud,
        &with(json!({"dataTable": "nostream"})),
        2,
        &["parameter dataTable", "not enabled"],
    );
    fails(
        &cloud,
        &with(json!({"endTimestampMillis": now - MINUTE})),
        2,
        &["parameter endTimestampMillis", "at least 5 minutes ago"],
    );
    fails(
        &cloud,
        &with(
            json!({"startTimestampMillis": now - 5 * MINUTE, "endTimestampMillis": now - 10 * MINUTE}),
        ),
        2,
        &[
            "parameter endTimestampMillis",
            "must be later than its start",
        ],
    );
    fails(
        &cloud,
        &with(json!({"date": "20240115"})),
        2,
        &["parameter date", "together with startTimestampMillis"],
    );
    let strings = json!({"startTimestampMillis": null, "endTimestampMillis": null,
                         "startTimeString": "2024-01-15 08:30", "endTimeString": "20240115093000"});
    fails(
        &cloud,
        &with(strings),
        2,
        &["parameter startTimeString", "yyyyMMddHHmmss"],
    );
    let strings = json!({"startTimestampMillis": null, "endTimestampMillis": null,
                         "startTimeString": "20240115083000", "endTimeString": "20240132093000"});
    fails(&cloud, &with(strings), 2, &["parameter endTimeString"]);
    fails(
        &cloud,
        &with(json!({"startTimestampMillis": "20240115083000"})),
        2,
        &["startTimeString"],
    );
    fails(
        &cloud,
        &with(json!({"accessKey": "wrong-secret"})),
        2,
        &["parameter accessId/accessKey", "OTSAuthFailed"],
    );
    fails(
        &cloud,
        &with(json!({"endpoint": "http://127.0.0.1:9", "maxRetries": 1})),
        1,
        &["parameter endpoint", "http://127.0.0.1:9"],
    );
    fails(
        &cloud,
        &with(json!({"mode": "latest"})),
        2,
        &["parameter mode"],
    );
    fails(
        &cloud,
        &with(json!({"endpoint": null, "datasource": "my_ots"})),
        2,
        &["parameter datasource", "my_ots"],
    );
    let ts = json!({"mode": "single_version_and_update_only", "column": [{"name": "a"}], "isTimeseriesTable": true});
    fails(
        &cloud,
        &with(ts),
        2,
        &["parameter isTimeseriesTable", "not supported yet"],
    );
}

/// Issue 14 item 9: permanent local mistakes fail at once (no retry), exit 2, naming
/// the parameter — with the default 30 retries, `http://[::1` took 31 s before.
#[test]
fn permanent_local_mistakes_fail_at_once() {
    let cloud = Cloud::start();
    cloud.create_table("good", Some(24));
    let now = now_ms();
    let ok = cloud.params("good", "status_ok", now - 60 * MINUTE, now - 10 * MINUTE);
    for (key, value, needle) in [
        (
            "endpoint",
            "http://[::1",
            "parameter endpoint: the IPv6 address",
        ),
        (
            "endpoint",
            "http://127.0.0.1:99999",
            "parameter endpoint: the port",
        ),
        (
            "securityToken",
            "STS.a\nb",
            "parameter securityToken: it contains a newline",
        ),
        ("accessId", "id\tx", "parameter accessId: it contains a tab"),
        (
            "statusTable",
            "bad name!",
            "parameter statusTable: \"bad name!\" is not a Tablestore table name",
        ),
    ] {
        let mut p = ok.clone();
        p[key] = json!(value);
        let started = std::time::Instant::now();
        fails(&cloud, &p, 2, &[needle]);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{key}: {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_window_before_the_retention_fails() {
    let cloud = Cloud::start();
    cloud.create_table("short", Some(1));
    let now = now_ms();
    let p = cloud.params(
        "short",
        "status_ret",
        now - 2 * 60 * MINUTE,
        now - 10 * MINUTE,
    );
    fails(
        &cloud,
        &p,
        2,
        &["parameter startTimestampMillis", "retention 1 h"],
    );
}

#[test]
fn a_checkpoint_into_trimmed_data_fails_instead_of_skipping() {
    let cloud = Cloud::start();
    cloud.create_table("trim", Some(1));
    for n in 0..3 {
        cloud.put(
            "trim",
            key2("k", n),
            vec![Cell::put("v", CellValue::Integer(n), None)],
        );
    }
    cloud.backdate("trim", 20 * MINUTE);
    for n in 3..6 {
        cloud.put(
            "trim",
            key2("k", n),
            vec![Cell::put("v", CellValue::Integer(n), None)],
        );
    }
    cloud.backdate("trim", 10 * MINUTE);
    // Window 1 ends between the two batches: its checkpoint points at record 3.
    let now = now_ms();
    let t1 = now - 20 * MINUTE;
    let first = cloud.read_ok(&cloud.params("trim", "status_trim", now - 45 * MINUTE, t1));
    assert_eq!(first.len(), 3 * 2);
    // An hour later every record has expired, record 3 included.
    cloud.backdate("trim", 60 * MINUTE);
    let p = cloud.params("trim", "status_trim", t1, now - 10 * MINUTE);
    fails(
        &cloud,
        &p,
        1,
        &["OTSTrimmedDataAccess", "older than the stream's retention"],
    );
}
