//! `reader-stream read | writer-oss write` against an in-process localcloud OSS.

#![allow(clippy::unwrap_used)] // tests unwrap freely

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use localcloud::ServiceOptions;
use writer_oss::client::{ClientOptions, OssClient, SignVersion};

/// A workspace binary, built if the test run did not build it already.
fn binary(name: &str) -> PathBuf {
    test_support::workspace_binary(name)
}

#[test]
fn reader_stream_into_writer_oss_writes_datax_named_csv() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let handle = rt
        .block_on(localcloud::oss::start(ServiceOptions::loopback()))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reader = dir.path().join("r.json");
    std::fs::write(
        &reader,
        r#"{"sliceRecordCount": 1000, "column": [{"type": "long", "sequence": 1},
            {"type": "string", "value": "a,\"b\"\r\nc"}, {"type": "date", "value": "2024-01-02 03:04:05"},
            {"type": "double", "value": "12345678.9"}, {"type": "bool", "value": "false"}]}"#,
    )
    .unwrap();
    let writer = dir.path().join("w.json");
    std::fs::write(
        &writer,
        serde_json::json!({"job": {"content": [{"writer": {"name": "osswriter", "parameter": {
            "endpoint": handle.endpoint(), "accessId": "LTAI5tLocalCloudTestKey",
            "accessKey": "localcloud-test-secret-0123456789", "bucket": "localcloud",
            "object": "pipe/out", "writeMode": "truncate", "fileFormat": "csv", "suffix": "csv",
            "dateFormat": "yyyy/MM/dd HH:mm"}}}]}})
        .to_string(),
    )
    .unwrap();
    let mut read = Command::new(binary("reader-stream"))
        .args(["read", "--time-zone", "Asia/Shanghai", "--config"])
        .arg(&reader)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Command::new(binary("writer-oss"))
        .args(["write", "--time-zone", "Asia/Shanghai", "--config"])
        .arg(&writer)
        .stdin(read.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(read.wait().unwrap().success());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let client = OssClient::new(ClientOptions {
        endpoint: handle.endpoint(),
        credentials: credentials::Provider::fixed(credentials::Credentials::fixed(
            "LTAI5tLocalCloudTestKey",
            "localcloud-test-secret-0123456789",
            None,
        )),
        bucket: "localcloud".into(),
        sign_version: SignVersion::V4,
        region: "cn-hangzhou".into(),
        path_style: None,
        request_timeout: Duration::from_secs(30),
        max_retries: 0,
    })
    .unwrap();
    let keys = rt.block_on(client.list_keys("pipe/", None)).unwrap();
    assert_eq!(keys.len(), 1);
    let hex = keys[0]
        .strip_prefix("pipe/out__")
        .unwrap()
        .strip_suffix(".csv")
        .unwrap();
    assert!(hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    let body = rt.block_on(client.get(&keys[0])).unwrap();
    let mut rows = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&body[..]);
    let mut n = 0;
    for (i, row) in rows.records().enumerate() {
        let row = row.unwrap();
        assert_eq!(
            row.iter().collect::<Vec<_>>(),
            [
                &(i + 1).to_string(),
                "a,\"b\"\r\nc",
                "2024/01/02 03:04",
                "12345678.9",
                "false"
            ]
        );
        n += 1;
    }
    assert_eq!(n, 1000);
}

#[test]
fn an_engine_job_writes_one_object_per_channel_under_stable_names() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let handle = rt
        .block_on(localcloud::oss::start(ServiceOptions::loopback()))
        .unwrap();
    let engine = binary("engine");
    let plugins = engine.parent().unwrap().to_path_buf();
    binary("reader-stream");
    binary("writer-oss");
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.json");
    std::fs::write(
        &job,
        serde_json::json!({"job": {"setting": {"speed": {"channel": 3}}, "content": [{
            "reader": {"name": "streamreader", "parameter": {"sliceRecordCount": 500,
                "column": [{"type": "long", "sequence": 0}, {"type": "string", "value": "x\ny"}]}},
            "writer": {"name": "osswriter", "parameter": {
                "endpoint": handle.endpoint(), "accessId": "LTAI5tLocalCloudTestKey",
                "accessKey": "localcloud-test-secret-0123456789", "bucket": "localcloud",
                "object": "engine/out", "writeMode": "append", "fileFormat": "csv"}}}]}})
        .to_string(),
    )
    .unwrap();
    let client = OssClient::new(ClientOptions {
        endpoint: handle.endpoint(),
        credentials: credentials::Provider::fixed(credentials::Credentials::fixed(
            "LTAI5tLocalCloudTestKey",
            "localcloud-test-secret-0123456789",
            None,
        )),
        bucket: "localcloud".into(),
        sign_version: SignVersion::V1,
        region: String::new(),
        path_style: None,
        request_timeout: Duration::from_secs(30),
        max_retries: 0,
    })
    .unwrap();
    let mut names = Vec::new();
    for _ in 0..2 {
        let out = Command::new(&engine)
            .args(["run", "-q", "--plugin-dir"])
            .arg(&plugins)
            .arg(&job)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let keys = rt.block_on(client.list_keys("engine/", None)).unwrap();
        let mut ids = Vec::new();
        for key in &keys {
            let body = rt.block_on(client.get(key)).unwrap();
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(&body[..]);
            for row in reader.records() {
                let row = row.unwrap();
                assert_eq!(&row[1], "x\ny");
                ids.push(row[0].parse::<u64>().unwrap());
            }
        }
        ids.sort_unstable();
        assert_eq!(ids, (0..1500).collect::<Vec<_>>());
        names.push(keys);
    }
    // Three channels, three objects; the re-run of the window wrote the same three names.
    assert_eq!(names[0].len(), 3);
    assert_eq!(names[0], names[1]);
}
