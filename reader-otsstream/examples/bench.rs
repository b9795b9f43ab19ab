//! Benchmark support (see `BENCHMARKS.md`).
//!
//! ```text
//! bench load <endpoint> <table> <changes>     table with 4 stream shards, <changes> PutRows
//! bench task <task.json>                      run one task from `split` into a discarding sink
//! ```
//! The credentials are localcloud's test pair.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;

use protocol::message::JobContext;
use protocol::runtime::{Reader, RecordSink, TaskContext};
use reader_otsstream::client::{ClientOptions, OtsClient};
use reader_otsstream::pb;
use reader_otsstream::plainbuffer::{Cell, CellValue};
use reader_otsstream::sign::SignatureVersion;
use reader_otsstream::OtsStreamReader;
use serde_json::json;

const ID: &str = "LTAI5tLocalCloudTestKey";
const SECRET: &str = "localcloud-test-secret-0123456789";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("load") => load(&args[2], &args[3], args[4].parse().unwrap()),
        Some("task") => task(&args[2]),
        _ => panic!("usage: bench load <endpoint> <table> <changes> | bench task <task.json>"),
    }
}

fn control(endpoint: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{endpoint}{path}"))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let text = r.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: {text}"))
    })
}

fn key(n: u64) -> String {
    format!("k{n:08}")
}

fn load(endpoint: &str, table: &str, changes: u64) {
    let client = Arc::new(
        OtsClient::new(ClientOptions {
            endpoint: endpoint.into(),
            credentials: credentials::Provider::fixed(credentials::Credentials::fixed(
                ID, SECRET, None,
            )),
            instance_name: "localcloud".to_owned(),
            signature: SignatureVersion::V2,
            max_retries: 5,
            request_timeout_ms: 60_000,
            connect_timeout_ms: 5_000,
        })
        .unwrap(),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(client.create_table(&pb::CreateTableRequest {
        table_meta: pb::TableMeta {
            table_name: table.into(),
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
            max_versions: Some(1),
            deviation_cell_version_in_sec: None,
        }),
        stream_spec: Some(pb::StreamSpecification {
            enable_stream: true,
            expiration_time: Some(24),
        }),
    }))
    .unwrap();
    // Four leaf shards; the empty closed parents leave the listing after the retention.
    let s = control(
        endpoint,
        "/-/ots/split",
        json!({"table": table, "split_point": key(changes / 2)}),
    );
    let children = s["children"].as_array().unwrap().clone();
    control(
        endpoint,
        "/-/ots/split",
        json!({"table": table, "shard_id": children[0], "split_point": key(changes / 4)}),
    );
    control(
        endpoint,
        "/-/ots/split",
        json!({"table": table, "shard_id": children[1], "split_point": key(3 * changes / 4)}),
    );
    control(
        endpoint,
        "/-/ots/backdate",
        json!({"table": table, "ms": 25 * 3_600_000}),
    );
    let started = Instant::now();
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        let batch = 200;
        let mut next = 0u64;
        while next < changes {
            while set.len() >= 4 {
                set.join_next().await.unwrap().unwrap();
            }
            let from = next;
            let to = (next + batch).min(changes);
            next = to;
            let client = client.clone();
            let table = table.to_owned();
            set.spawn(async move {
                // Spread consecutive changes over the key space (and the four shards).
                let rows: Vec<_> = (from..to)
                    .map(|n| {
                        let k = (n * 7919) % changes;
                        (
                            vec![
                                Cell::key("pk_str", CellValue::String(key(k))),
                                Cell::key("pk_int", CellValue::Integer(0)),
                            ],
                            vec![
                                Cell::put("v", CellValue::Integer(n as i64), None),
                                Cell::put("s", CellValue::String(format!("value-{n}")), None),
                            ],
                        )
                    })
                    .collect();
                client.batch_put_rows(&table, &rows).await.unwrap();
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
    });
    let secs = started.elapsed().as_secs_f64();
    // Every record at least 6 minutes old, so a window can end 5 minutes ago.
    control(
        endpoint,
        "/-/ots/backdate",
        json!({"table": table, "ms": 6 * 60_000 + (secs * 1000.0) as i64}),
    );
    eprintln!(
        "loaded {changes} changes in {secs:.1} s ({:.0}/s)",
        changes as f64 / secs
    );
}

fn task(path: &str) {
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (mut sink, buffer) = RecordSink::in_memory();
    // Discard the encoded frames as they come, as a fast consumer would.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drain = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut bytes = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                bytes += buffer.take().len();
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            bytes + buffer.take().len()
        })
    };
    let started = Instant::now();
    OtsStreamReader
        .read(
            &TaskContext {
                config,
                job: JobContext {
                    time_zone: "UTC".into(),
                    ..Default::default()
                },
            },
            &mut sink,
        )
        .unwrap();
    sink.flush_batch().unwrap();
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let bytes = drain.join().unwrap();
    // The benchmark's result line goes to stdout (this example is not a plugin).
    let result = json!({"rows": sink.records(), "checkpoints": sink.checkpoints().len(), "seconds": secs, "frame_bytes": bytes});
    let _ = writeln!(std::io::stdout().lock(), "{result}");
}
