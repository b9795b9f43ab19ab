//! Test support: an in-process Tablestore emulator, a tiny writer built on the
//! plugin's own client, and a runner for the `reader-otsstream` binary.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use localcloud::{Credentials, ServiceHandle, ServiceOptions};
use reader_otsstream::client::{ClientOptions, OtsClient};
use reader_otsstream::pb;
use reader_otsstream::plainbuffer::{Cell, CellValue};
use reader_otsstream::sign::SignatureVersion;
use serde_json::{json, Value as Json};

/// A workspace binary, built if the test run did not build it already.
pub fn binary(name: &str) -> PathBuf {
    test_support::workspace_binary(name)
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub const MINUTE: i64 = 60_000;

pub struct Cloud {
    pub rt: tokio::runtime::Runtime,
    pub handle: ServiceHandle,
    pub client: OtsClient,
    http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

pub fn s(v: &str) -> CellValue {
    CellValue::String(v.to_owned())
}

pub fn i(v: i64) -> CellValue {
    CellValue::Integer(v)
}

pub fn key2(a: &str, b: i64) -> Vec<Cell> {
    vec![Cell::key("pk_str", s(a)), Cell::key("pk_int", i(b))]
}

impl Cloud {
    pub fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let handle = rt
            .block_on(localcloud::ots::start(ServiceOptions::loopback()))
            .unwrap();
        let creds = Credentials::test_default();
        let client = OtsClient::new(ClientOptions {
            endpoint: handle.endpoint(),
            credentials: credentials::Provider::fixed(credentials::Credentials::fixed(
                &creds.access_key_id,
                &creds.access_key_secret,
                None,
            )),
            instance_name: localcloud::ots::INSTANCE.to_owned(),
            signature: SignatureVersion::V2,
            max_retries: 5,
            request_timeout_ms: 30_000,
            connect_timeout_ms: 5_000,
        })
        .unwrap();
        Self {
            rt,
            handle,
            client,
            http: reqwest::Client::new(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn endpoint(&self) -> String {
        self.handle.endpoint()
    }

    /// A table with primary key `pk_str STRING, pk_int INTEGER` and a stream.
    pub fn create_table(&self, name: &str, stream_hours: Option<i32>) {
        let request = pb::CreateTableRequest {
            table_meta: pb::TableMeta {
                table_name: name.into(),
                primary_key: vec![
                    pb::PrimaryKeySchema {
                        name: "pk_str".into(),
                        r#type: pb::PK_STRING,
                        option: None,
                    },
                    pb::PrimaryKeySchema {
                        name: "pk_int".into(),
                        r#type: pb::PK_INTEGER,
                        option: None,
                    },
                ],
            },
            reserved_throughput: pb::ReservedThroughput {
                capacity_unit: pb::CapacityUnit {
                    read: Some(0),
                    write: Some(0),
                },
            },
            table_options: Some(pb::TableOptions {
                time_to_live: Some(-1),
                max_versions: Some(3),
                // A century: tests write versions such as the vectors' 2024 timestamps.
                deviation_cell_version_in_sec: Some(3_153_600_000),
            }),
            stream_spec: stream_hours.map(|h| pb::StreamSpecification {
                enable_stream: true,
                expiration_time: Some(h),
            }),
        };
        self.rt
            .block_on(self.client.create_table(&request))
            .unwrap();
    }

    pub fn put(&self, table: &str, pk: Vec<Cell>, cells: Vec<Cell>) {
        self.rt
            .block_on(self.client.put_row(table, &pk, &cells))
            .unwrap();
    }

    pub fn update(&self, table: &str, pk: Vec<Cell>, cells: Vec<Cell>) {
        self.rt
            .block_on(self.client.update_row(table, &pk, &cells))
            .unwrap();
    }

    pub fn delete(&self, table: &str, pk: Vec<Cell>) {
        self.rt
            .block_on(self.client.delete_row(table, &pk))
            .unwrap();
    }

    pub fn control(&self, path: &str, body: Json) -> Json {
        let url = format!("{}{path}", self.endpoint());
        self.rt.block_on(async {
            let r = self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            assert!(status.is_success(), "{path}: {status} {text}");
            serde_json::from_str(&text).unwrap()
        })
    }

    pub fn dump(&self, table: &str) -> Json {
        let url = format!("{}/-/ots/tables/{table}", self.endpoint());
        self.rt.block_on(async {
            let text = self
                .http
                .get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            serde_json::from_str(&text).unwrap()
        })
    }

    pub fn backdate(&self, table: &str, ms: i64) {
        self.control("/-/ots/backdate", json!({"table": table, "ms": ms}));
    }

    /// A reader parameter for `table` over `[start, end)`.
    pub fn params(&self, table: &str, status: &str, start: i64, end: i64) -> Json {
        let creds = Credentials::test_default();
        json!({
            "endpoint": self.endpoint(),
            "accessId": creds.access_key_id,
            "accessKey": creds.access_key_secret,
            "instanceName": localcloud::ots::INSTANCE,
            "dataTable": table,
            "statusTable": status,
            "startTimestampMillis": start,
            "endTimestampMillis": end,
            "maxRetries": 8,
        })
    }

    /// Runs `reader-otsstream read --format jsonl` on a DataX job file around `params`.
    pub fn read(&self, params: &Json, extra: &[&str]) -> Output {
        let job = json!({"job": {"content": [{"reader": {"name": "otsstreamreader", "parameter": params},
                                               "writer": {"name": "streamwriter", "parameter": {}}}]}});
        let path = self.dir.path().join(format!("job-{}.json", rand_suffix()));
        std::fs::write(&path, job.to_string()).unwrap();
        Command::new(binary("reader-otsstream"))
            .args(["read", "--format", "jsonl", "--config"])
            .arg(&path)
            .args(extra)
            .output()
            .unwrap()
    }

    /// `read` that must succeed; returns the JSON lines.
    pub fn read_ok(&self, params: &Json) -> Vec<Json> {
        let out = self.read(params, &[]);
        assert!(
            out.status.success(),
            "reader failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The JSON-lines form of one expected DataX column from `datax_rows.json`.
pub fn datax_cell_json(c: &Json) -> Json {
    use base64::Engine as _;
    match c["type"].as_str().unwrap() {
        "BYTES" => json!({"bytes": base64::engine::general_purpose::STANDARD
            .encode(hex::decode(c["value_hex"].as_str().unwrap()).unwrap())}),
        _ => c["value"].clone(),
    }
}

pub fn datax_rows() -> Json {
    serde_json::from_str(include_str!("../../testdata/datax_rows.json")).unwrap()
}

/// The shards of a table's stream, from the emulator's dump.
pub fn shards(cloud: &Cloud, table: &str) -> Vec<Json> {
    cloud.dump(table)["stream"]["shards"]
        .as_array()
        .unwrap()
        .clone()
}
