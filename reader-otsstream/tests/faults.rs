//! Acceptance 5: with faults injected into about 10 % of requests (OTSServerBusy,
//! 503, dropped connections, latency) the output equals a clean run's.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use localcloud::common::faults::FaultAction;
use localcloud::common::FaultRule;
use reader_otsstream::plainbuffer::{Cell, CellValue};
use serde_json::json;

#[test]
fn faults_do_not_change_the_output() {
    let cloud = Cloud::start();
    cloud.create_table("fl", Some(24));
    let batch = |from: i64, to: i64, pk_int: i64| {
        let rows: Vec<_> = (from..to)
            .map(|n| {
                (
                    key2(&format!("k{:04}", n % 500), pk_int),
                    vec![Cell::put("v", CellValue::Integer(n), None)],
                )
            })
            .collect();
        for chunk in rows.chunks(200) {
            cloud
                .rt
                .block_on(cloud.client.batch_put_rows("fl", chunk))
                .unwrap();
        }
    };
    batch(0, 2000, 0);
    for n in 0..50 {
        cloud.delete("fl", key2(&format!("k{:04}", n * 7), 0));
    }
    cloud.control("/-/ots/split", json!({"table": "fl"}));
    batch(2000, 3000, 1);
    cloud.backdate("fl", 20 * MINUTE);
    let now = now_ms();
    let run = |status: &str| {
        let mut p = cloud.params("fl", status, now - 60 * MINUTE, now - 10 * MINUTE);
        p["isExportSequenceInfo"] = json!(true);
        p["maxRetries"] = json!(12);
        // Shards are read concurrently: compare in sequence-info order.
        let mut lines = cloud.read_ok(&p);
        lines.sort_by_key(|l| l[6].as_str().unwrap().to_owned());
        lines
    };
    let clean = run("st_clean");
    assert!(clean.len() > 6000);
    let rules = [
        FaultAction::Error {
            status: 503,
            code: "OTSServerBusy".into(),
            message: None,
        },
        FaultAction::Error {
            status: 503,
            code: "OTSPartitionUnavailable".into(),
            message: None,
        },
        FaultAction::Drop,
        FaultAction::Latency { ms: 30 },
    ];
    for action in rules {
        cloud
            .handle
            .faults
            .add(FaultRule {
                operation: None,
                times: None,
                skip: 0,
                // Pages of 1,000 records make few requests: a rate that still
                // faults several of them in every run.
                rate: Some(0.06),
                after_apply: false,
                action,
            })
            .unwrap();
    }
    for attempt in 0..3 {
        let faulty = run(&format!("st_faulty{attempt}"));
        assert_eq!(faulty, clean, "run {attempt} under faults");
    }
    let injected = cloud.handle.faults.injected().len();
    assert!(injected >= 5, "only {injected} faults were injected");
    // The checkpoints persisted under faults work for the next window too.
    cloud.handle.faults.clear();
    let mut p = cloud.params("fl", "st_faulty2", now - 10 * MINUTE, now - 5 * MINUTE);
    p["isExportSequenceInfo"] = json!(true);
    assert!(cloud.read_ok(&p).is_empty());
}

#[test]
fn max_retries_bounds_the_retries_of_a_request() {
    let cloud = Cloud::start();
    cloud.create_table("mr", Some(24));
    let now = now_ms();
    let busy = |times: u32| FaultRule {
        operation: Some("DescribeTable".into()),
        times: Some(times),
        skip: 0,
        rate: None,
        after_apply: false,
        action: FaultAction::Error {
            status: 503,
            code: "OTSServerBusy".into(),
            message: None,
        },
    };
    let mut p = cloud.params("mr", "st_mr", now - 60 * MINUTE, now - 10 * MINUTE);
    p["maxRetries"] = json!(2);
    cloud.handle.faults.add(busy(3)).unwrap();
    let out = cloud.read(&p, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("OTSServerBusy"));
    cloud.handle.faults.clear();
    p["maxRetries"] = json!(3);
    cloud.handle.faults.add(busy(3)).unwrap();
    assert!(cloud.read_ok(&p).is_empty());
    // Permanent errors are not retried: one fault, one failure.
    cloud.handle.faults.clear();
    cloud
        .handle
        .faults
        .add(FaultRule {
            operation: Some("DescribeTable".into()),
            times: Some(1),
            skip: 0,
            rate: None,
            after_apply: false,
            action: FaultAction::Error {
                status: 400,
                code: "OTSParameterInvalid".into(),
                message: None,
            },
        })
        .unwrap();
    let out = cloud.read(&p, &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
