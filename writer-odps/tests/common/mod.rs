//! Test support: an in-process MaxCompute emulator and the writer binary.

#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use localcloud::common::faults::{FaultAction, FaultRule};
use localcloud::{ServiceHandle, ServiceOptions};
use serde_json::{json, Value as Json};
use writer_odps::client::OdpsClient;
use writer_odps::http::{Endpoint, HttpOptions};
use writer_odps::sign::SignatureVersion;

pub const PROJECT: &str = "localcloud";

/// A workspace binary, built if the test run did not build it already.
pub fn binary(name: &str) -> PathBuf {
    test_support::workspace_binary(name)
}

/// The MaxCompute emulator, running on its own runtime.
pub struct Cloud {
    pub rt: tokio::runtime::Runtime,
    pub handle: ServiceHandle,
    pub key_id: String,
    pub key_secret: String,
}

impl Cloud {
    pub fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let options = ServiceOptions::loopback();
        let creds = options.credentials[0].clone();
        let handle = rt.block_on(localcloud::odps::start(options)).unwrap();
        Self {
            rt,
            handle,
            key_id: creds.access_key_id,
            key_secret: creds.access_key_secret,
        }
    }

    pub fn endpoint(&self) -> String {
        self.handle.endpoint()
    }

    pub fn service(&self) -> String {
        format!("{}/api", self.endpoint())
    }

    fn client(&self) -> OdpsClient {
        OdpsClient::new(
            HttpOptions {
                credentials: credentials::Provider::fixed(credentials::Credentials::fixed(
                    &self.key_id.clone(),
                    &self.key_secret.clone(),
                    None,
                )),
                signature: SignatureVersion::V2,
                project: PROJECT.into(),
                max_attempts: 3,
                request_timeout: std::time::Duration::from_secs(30),
            },
            Endpoint::parse(&self.service()).unwrap(),
            None,
        )
        .unwrap()
    }

    /// Runs a SQL statement (table creation, partitions).
    pub fn sql(&self, sql: &str) {
        let client = self.client();
        self.rt.block_on(client.run_sql("test", sql, true)).unwrap();
    }

    /// The emulator's dump of a table (committed rows per partition).
    pub fn dump(&self, table: &str) -> Json {
        let url = format!(
            "{}/-/odps/projects/{PROJECT}/tables/{table}",
            self.endpoint()
        );
        self.rt.block_on(async {
            let text = reqwest::get(url).await.unwrap().text().await.unwrap();
            serde_json::from_str(&text).unwrap()
        })
    }

    /// The committed rows of one partition (`None` if the partition does not exist).
    pub fn rows(&self, table: &str, spec: &str) -> Option<Vec<Json>> {
        self.dump(table)["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["spec"] == spec)
            .map(|p| p["rows"].as_array().unwrap().clone())
    }

    pub fn uploads(&self) -> Json {
        let url = format!("{}/-/odps/uploads", self.endpoint());
        self.rt.block_on(async {
            serde_json::from_str(&reqwest::get(url).await.unwrap().text().await.unwrap()).unwrap()
        })
    }

    /// Makes upload session `id` `age_ms` older (it expires after 24 h) without
    /// moving the clock that request signatures are checked against.
    pub fn age_upload(&self, id: &str, age_ms: i64) {
        let url = format!("{}/-/odps/uploads/{id}/age", self.endpoint());
        self.rt.block_on(async {
            let r = reqwest::Client::new()
                .post(url)
                .body(json!({ "age_ms": age_ms }).to_string())
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        });
    }

    pub fn fault(
        &self,
        operation: Option<&str>,
        rate: Option<f64>,
        times: Option<u32>,
        after_apply: bool,
        action: FaultAction,
    ) {
        self.handle
            .faults
            .add(FaultRule {
                operation: operation.map(str::to_owned),
                times,
                skip: 0,
                rate,
                after_apply,
                action,
            })
            .unwrap();
    }

    /// Adds a fault rule as it is.
    pub fn fault_rule(&self, rule: FaultRule) {
        self.handle.faults.add(rule).unwrap();
    }

    /// A writer parameter for `table` with the emulator's endpoint and key.
    pub fn param(&self, table: &str, extra: Json) -> Json {
        let mut p = json!({
            "odpsServer": self.service(),
            "project": PROJECT,
            "table": table,
            "column": ["*"],
            "truncate": false,
            "accessId": self.key_id,
            "accessKey": self.key_secret,
            "maxRetryTime": 10,
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                p.as_object_mut().unwrap().remove(k);
            } else {
                p[k] = v.clone();
            }
        }
        p
    }
}

/// Runs `writer-odps write` standalone with JSON-lines input.
pub fn write_jsonl(param: &Json, lines: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("w.json");
    std::fs::write(&config, param.to_string()).unwrap();
    let mut child = Command::new(binary("writer-odps"))
        .args([
            "write",
            "--input-format",
            "jsonl",
            "--time-zone",
            "UTC",
            "--config",
        ])
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let text = lines.to_owned();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success and returns stderr.
pub fn ok(out: &Output) -> String {
    let err = stderr(out);
    assert!(out.status.success(), "writer failed: {err}");
    err
}

/// A fresh table name.
pub fn unique(prefix: &str) -> String {
    let n: u32 = rand::random();
    format!("{prefix}_{n:08x}")
}

/// Runs `writer-odps write` standalone on `input` (`jsonl` or `msgpack`), with `extra`
/// arguments.
pub fn write_standalone(param: &Json, format: &str, input: &[u8], extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("w.json");
    std::fs::write(&config, param.to_string()).unwrap();
    let input_path = dir.path().join("input");
    std::fs::write(&input_path, input).unwrap();
    Command::new(binary("writer-odps"))
        .args([
            "write",
            "--input-format",
            format,
            "--time-zone",
            "UTC",
            "--config",
        ])
        .arg(&config)
        .args(extra)
        .stdin(std::fs::File::open(&input_path).unwrap())
        .output()
        .unwrap()
}
