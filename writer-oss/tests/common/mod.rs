//! Helpers of writer-oss's integration tests: an in-process localcloud OSS, record
//! streams, and the job steps driven as the engine drives them.

#![allow(dead_code, clippy::unwrap_used)] // tests unwrap freely

use std::time::Duration;

use localcloud::ServiceOptions;
use protocol::frame::{encode_frame, encode_message, PREAMBLE};
use protocol::message::{Batch, Eos, Hello, JobContext, Message, Role};
use protocol::runtime::{Plugin, RecordSource, StepContext, TaskContext, Writer, WriterOutput};
use protocol::value::Value;
use serde_json::{json, Value as Json};
use writer_oss::client::{ClientOptions, OssClient, SignVersion};
use writer_oss::OssWriter;

pub struct Cloud {
    pub rt: tokio::runtime::Runtime,
    pub handle: localcloud::ServiceHandle,
}

pub fn cloud() -> Cloud {
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
    pub fn parameter(&self, object: &str, extra: Json) -> Json {
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

    pub fn client(&self) -> OssClient {
        OssClient::new(ClientOptions {
            endpoint: self.handle.endpoint(),
            credentials: credentials::Provider::fixed(credentials::Credentials::fixed(
                "LTAI5tLocalCloudTestKey",
                "localcloud-test-secret-0123456789",
                None,
            )),
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
    pub fn objects(&self, prefix: &str) -> Vec<(String, String)> {
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
pub fn frames(records: &[Vec<Value>]) -> Vec<u8> {
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

pub fn records(task: usize, n: usize) -> Vec<Vec<Value>> {
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

/// The job context of a window (its fingerprint).
pub fn job_context(fingerprint: &str, tasks: usize) -> JobContext {
    JobContext {
        job_id: "job-1".into(),
        fingerprint: fingerprint.into(),
        time_zone: "UTC".into(),
        task_index: 0,
        task_count: tasks as u32,
    }
}

/// The default window of [`run_job`].
pub const WINDOW: &str = "00112233445566778899aabbccddeeff";

/// check, prepare, split and every task of a job, up to its `post`: the step context
/// (with the job state) and the task reports. A failed task is aborted.
pub fn write_tasks(
    parameter: &Json,
    fingerprint: &str,
    per_task: &[usize],
) -> Result<(StepContext, Vec<Json>), String> {
    let writer = OssWriter;
    let tasks = per_task.len();
    let job = job_context(fingerprint, tasks);
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
    Ok((ctx, reports))
}

/// Runs a whole job of window `fingerprint` with `per_task[i]` records in task `i`.
pub fn run_window(parameter: &Json, fingerprint: &str, per_task: &[usize]) -> Result<(), String> {
    let (ctx, reports) = write_tasks(parameter, fingerprint, per_task)?;
    OssWriter.post(&ctx, &reports).map_err(|e| e.message)
}

/// Runs a whole job with `tasks` tasks of `per_task` records each.
pub fn run_job(parameter: &Json, tasks: usize, per_task: &[usize]) -> Result<(), String> {
    assert_eq!(tasks, per_task.len());
    run_window(parameter, WINDOW, per_task)
}

pub fn data_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}
