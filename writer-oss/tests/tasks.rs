//! The plugin's job steps driven as the engine drives them (prepare, split into several
//! tasks, write each task, post), against an in-process localcloud OSS.

#![allow(clippy::unwrap_used)] // tests unwrap freely

mod common;

use common::{cloud, data_rows, records, run_job};
use protocol::value::Value;
use serde_json::json;

#[test]
fn several_tasks_write_one_object_each_with_stable_names() {
    let cloud = cloud();
    let parameter = cloud.parameter(
        "multi/out",
        json!({"suffix": "csv", "header": ["n", "s", "z"]}),
    );
    run_job(&parameter, 3, &[100, 0, 2500]).unwrap();
    let objects = cloud.objects("multi/");
    assert_eq!(objects.len(), 3, "{objects:?}");
    let mut task_seen = Vec::new();
    for (key, text) in &objects {
        let hex = key
            .strip_prefix("multi/out__")
            .unwrap()
            .strip_suffix(".csv")
            .unwrap();
        assert_eq!(hex.len(), 32);
        let task = usize::from_str_radix(&hex[24..], 16).unwrap();
        task_seen.push(task);
        let rows = data_rows(text);
        assert_eq!(rows[0], ["n", "s", "z"]);
        let expected = records(task, [100, 0, 2500][task]);
        assert_eq!(rows.len() - 1, expected.len());
        for (row, record) in rows[1..].iter().zip(&expected) {
            let Value::String(s) = &record[1] else {
                panic!()
            };
            assert_eq!(
                row,
                &[
                    record[0].as_text().unwrap().to_string(),
                    s.clone(),
                    "null".into()
                ]
            );
        }
    }
    task_seen.sort();
    assert_eq!(task_seen, [0, 1, 2]);
    // The same window again: the same names, nothing added.
    let before: Vec<String> = objects.iter().map(|(k, _)| k.clone()).collect();
    run_job(&parameter, 3, &[100, 0, 2500]).unwrap();
    let after: Vec<String> = cloud
        .objects("multi/")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(before, after);
}

#[test]
fn single_object_from_several_tasks_has_the_header_first_and_every_record() {
    let cloud = cloud();
    let parameter = cloud.parameter(
        "single/all.csv",
        json!({"writeSingleObject": true, "header": ["n", "s", "z"], "blockSizeInMB": 1}),
    );
    // Task 1 writes whole parts (1 MiB); tasks 0 and 2 only a few records.
    run_job(&parameter, 3, &[10, 70_000, 7]).unwrap();
    let objects = cloud.objects("single/");
    assert_eq!(objects.len(), 1);
    let rows = data_rows(&objects[0].1);
    assert_eq!(rows[0], ["n", "s", "z"]);
    assert_eq!(rows.iter().filter(|r| r[0] == "n").count(), 1);
    let mut got: Vec<String> = rows[1..].iter().map(|r| r[0].clone()).collect();
    let mut want: Vec<String> = [10, 70_000, 7]
        .iter()
        .enumerate()
        .flat_map(|(t, n)| records(t, *n))
        .map(|r| r[0].as_text().unwrap().to_string())
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn a_failed_task_leaves_nothing_visible() {
    let cloud = cloud();
    let parameter = cloud.parameter("fail/out", json!({"blockSizeInMB": 1}));
    // Every UploadPart fails for good (a non-retryable error): the job fails.
    cloud
        .handle
        .faults
        .add(localcloud::common::faults::FaultRule {
            operation: Some("UploadPart".into()),
            times: None,
            skip: 0,
            rate: None,
            after_apply: false,
            action: localcloud::common::faults::FaultAction::Error {
                status: 403,
                code: "AccessDenied".into(),
                message: None,
            },
        })
        .unwrap();
    let err = run_job(&parameter, 2, &[10, 40_000]).unwrap_err();
    assert!(err.contains("AccessDenied"), "{err}");
    assert!(cloud.objects("fail/").is_empty());
    let uploads = cloud
        .rt
        .block_on(cloud.client().list_uploads("fail/"))
        .unwrap();
    assert!(uploads.is_empty(), "{uploads:?}");
}

#[test]
fn a_complete_that_fails_for_good_rolls_back_every_object() {
    let cloud = cloud();
    let parameter = cloud.parameter("rollback/out", json!({}));
    cloud
        .handle
        .faults
        .add(localcloud::common::faults::FaultRule {
            operation: Some("CompleteMultipartUpload".into()),
            times: Some(1),
            skip: 0,
            rate: None,
            after_apply: false,
            action: localcloud::common::faults::FaultAction::Error {
                status: 400,
                code: "InvalidPart".into(),
                message: None,
            },
        })
        .unwrap();
    let err = run_job(&parameter, 4, &[10, 20, 30, 40]).unwrap_err();
    assert!(err.contains("InvalidPart"), "{err}");
    // All or nothing: the three Completes that succeeded were undone.
    assert!(cloud.objects("rollback/").is_empty());
    let uploads = cloud
        .rt
        .block_on(cloud.client().list_uploads("rollback/"))
        .unwrap();
    assert!(uploads.is_empty(), "{uploads:?}");
    // The window runs again cleanly.
    run_job(&parameter, 4, &[10, 20, 30, 40]).unwrap();
    assert_eq!(cloud.objects("rollback/").len(), 4);
}
