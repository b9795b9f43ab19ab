//! The plugin's job steps driven as the engine drives them (prepare, split into several
//! tasks, write each task, post), against an in-process localcloud OSS.

#![allow(clippy::unwrap_used)] // tests unwrap freely

use std::time::Duration;

use localcloud::ServiceOptions;
use protocol::frame::{encode_frame, encode_message, PREAMBLE};
use protocol::message::{Batch, Eos, Hello, JobContext, Message, Role};
use protocol::runtime::{Plugin, RecordSource, StepContext, TaskContext, Writer, WriterOutput};
use protocol::value::Value;
use serde_json::{json, Value as Json};
use writer_oss::client::{ClientOptions, OssClient, SignVersion};
use writer_oss::OssWriter;

struct Cloud {
    rt: tokio::runtime::Runtime,
    handle: localcloud::ServiceHandle,
}

fn cloud() -> Cloud {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let handle = rt
        .block_on(localcloud::oss::start(ServiceOptions::loopback()))
        .unwrap();
    Cloud { rt, handle }
}

impl Cloud {
    fn parameter(&self, object: &str, extra: Json) -> Json {
        let mut p = json!({
            "endpoint": self.handle.endpoint(),
            "accessId": "LTAI5tLocalCloudTestKey",
            "accessKey": "localcloud-test-secret-0123456789",
            "bucket": "localcloud",
            "object": object,
            "writeMode": "truncate",
            "fileFormat": "csv",
            "timeZone": "UTC",
        });
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    }

    fn client(&self) -> OssClient {
        OssClient::new(ClientOptions {
            endpoint: self.handle.endpoint(),
            access_id: "LTAI5tLocalCloudTestKey".into(),
            access_key: "localcloud-test-secret-0123456789".into(),
            security_token: None,
            bucket: "localcloud".into(),
            sign_version: SignVersion::V1,
            region: "cn-hangzhou".into(),
            path_style: None,
            request_timeout: Duration::from_secs(30),
            max_retries: 2,
        })
        .unwrap()
    }

    /// Every object under `prefix`, read back (CRC-64 checked).
    fn objects(&self, prefix: &str) -> Vec<(String, String)> {
        let client = self.client();
        let keys = self.rt.block_on(client.list_keys(prefix, None)).unwrap();
        keys.into_iter()
            .map(|k| {
                let body = self.rt.block_on(client.get(&k)).unwrap();
                (k, String::from_utf8(body.to_vec()).unwrap())
            })
            .collect()
    }
}

/// The stream a standalone reader writes: preamble, hello, one batch, eos.
fn frames(records: &[Vec<Value>]) -> Vec<u8> {
    let mut stream = PREAMBLE.to_vec();
    let hello = Message::Hello(Hello::new(Role::Reader, "test", "0"));
    encode_frame(&encode_message(&hello).unwrap(), &mut stream);
    if !records.is_empty() {
        let batch = Message::Batch(Batch::from_records(records));
        encode_frame(&encode_message(&batch).unwrap(), &mut stream);
    }
    let eos = Message::Eos(Eos {
        records: records.len() as u64,
        bytes: 0,
    });
    encode_frame(&encode_message(&eos).unwrap(), &mut stream);
    stream
}

fn records(task: usize, n: usize) -> Vec<Vec<Value>> {
    (0..n)
        .map(|i| {
            vec![
                Value::Long((task * 1_000_000 + i) as i64),
                Value::String(format!("task {task}, \"row\" {i}\n")),
                Value::Null,
            ]
        })
        .collect()
}

/// Runs a whole job with `tasks` tasks of `per_task` records each.
fn run_job(parameter: &Json, tasks: usize, per_task: &[usize]) -> Result<(), String> {
    let writer = OssWriter;
    let job = JobContext {
        job_id: "job-1".into(),
        fingerprint: "00112233445566778899aabbccddeeff".into(),
        time_zone: "UTC".into(),
        task_index: 0,
        task_count: tasks as u32,
    };
    let ctx = StepContext {
        parameter: parameter.clone(),
        state: Json::Null,
        job: job.clone(),
    };
    writer.check(&ctx).map_err(|e| e.message)?;
    let state = writer.prepare(&ctx).map_err(|e| e.message)?;
    let ctx = StepContext { state, ..ctx };
    let configs = writer.split(&ctx, tasks).map_err(|e| e.message)?;
    assert_eq!(configs.len(), tasks);
    let mut reports = Vec::new();
    for (i, config) in configs.into_iter().enumerate() {
        let task = TaskContext {
            config,
            job: JobContext {
                task_index: i as u32,
                ..job.clone()
            },
        };
        let mut source = RecordSource::from_frame_bytes(frames(&records(i, per_task[i])));
        let mut out = WriterOutput::standalone();
        match writer.write(&task, &mut source, &mut out) {
            Ok(report) => reports.push(report),
            Err(e) => {
                writer.abort(&ctx).unwrap();
                return Err(e.message);
            }
        }
    }
    writer.post(&ctx, &reports).map_err(|e| e.message)
}

fn data_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

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
