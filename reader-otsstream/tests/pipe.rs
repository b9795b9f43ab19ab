//! Standalone use: protocol frames piped into a writer equal the JSON-lines output;
//! time strings are read in the job's time zone.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};

use common::*;
use reader_otsstream::plainbuffer::{Cell, CellValue};
use serde_json::{json, Value as Json};

fn table_with_changes(cloud: &Cloud) {
    cloud.create_table("p", Some(24));
    for n in 0..50 {
        cloud.put(
            "p",
            key2(&format!("k{n}"), n),
            vec![
                Cell::put("d", CellValue::Double(n as f64 / 4.0), None),
                Cell::put("b", CellValue::Binary(vec![n as u8, 0xff]), None),
            ],
        );
    }
    cloud.backdate("p", 20 * MINUTE);
}

#[test]
fn frames_through_a_writer_equal_the_jsonl_output() {
    let cloud = Cloud::start();
    table_with_changes(&cloud);
    let now = now_ms();
    let mut params = cloud.params("p", "st_p", now - 60 * MINUTE, now - 10 * MINUTE);
    let expected = cloud.read_ok(&params);
    assert_eq!(expected.len(), 150);

    params["statusTable"] = json!("st_p2");
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.json");
    std::fs::write(
        &job,
        json!({"job": {"content": [{"reader": {"name": "otsstreamreader", "parameter": params},
                "writer": {"name": "streamwriter", "parameter": {"print": true, "format": "jsonl"}}}]}})
        .to_string(),
    )
    .unwrap();
    let mut reader = Command::new(binary("reader-otsstream"))
        .args(["read", "--config"])
        .arg(&job)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let writer = Command::new(binary("writer-stream"))
        .args(["write", "--config"])
        .arg(&job)
        .stdin(reader.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = writer.wait_with_output().unwrap();
    assert!(reader.wait().unwrap().success());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<Json> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn time_strings_use_the_job_time_zone() {
    let cloud = Cloud::start();
    table_with_changes(&cloud);
    // Whole seconds, so the strings express the same window as the milliseconds.
    let now = now_ms() / 1000 * 1000;
    let (start, end) = (now - 60 * MINUTE, now - 10 * MINUTE);
    let by_millis = cloud.read_ok(&cloud.params("p", "st_t1", start, end));
    let shanghai = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let text = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .with_timezone(&shanghai)
            .format("%Y%m%d%H%M%S")
            .to_string()
    };
    let mut params = cloud.params("p", "st_t2", 0, 0);
    let map = params.as_object_mut().unwrap();
    map.remove("startTimestampMillis");
    map.remove("endTimestampMillis");
    map.insert("startTimeString".into(), json!(text(start)));
    map.insert("endTimeString".into(), json!(text(end)));
    let job = json!({"job": {"content": [{"reader": {"name": "otsstreamreader", "parameter": params},
        "writer": {"name": "streamwriter", "parameter": {}}}]}});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.json");
    std::fs::write(&path, job.to_string()).unwrap();
    let out = Command::new(binary("reader-otsstream"))
        .args([
            "read",
            "--format",
            "jsonl",
            "--time-zone",
            "Asia/Shanghai",
            "--config",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let by_strings: Vec<Json> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(by_strings, by_millis);
    assert_eq!(by_strings.len(), 150);
    // Read in UTC the same strings name a window 8 hours later, which has not ended
    // 5 minutes ago: refused.
    let out = Command::new(binary("reader-otsstream"))
        .args([
            "read",
            "--format",
            "jsonl",
            "--time-zone",
            "UTC",
            "--config",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("parameter endTimeString"));
}

/// A window given as time strings in Asia/Shanghai, in a job file.
fn shanghai_window_job(
    cloud: &Cloud,
    status: &str,
    setting: Json,
) -> (tempfile::TempDir, std::path::PathBuf, Vec<Json>) {
    let now = now_ms() / 1000 * 1000;
    let (start, end) = (now - 60 * MINUTE, now - 10 * MINUTE);
    let by_millis = cloud.read_ok(&cloud.params("p", &format!("{status}_ms"), start, end));
    let shanghai = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let text = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .with_timezone(&shanghai)
            .format("%Y%m%d%H%M%S")
            .to_string()
    };
    let mut params = cloud.params("p", status, 0, 0);
    let map = params.as_object_mut().unwrap();
    map.remove("startTimestampMillis");
    map.remove("endTimestampMillis");
    map.insert("startTimeString".into(), json!(text(start)));
    map.insert("endTimeString".into(), json!(text(end)));
    let job = json!({"job": {"setting": setting, "content": [{"reader": {"name": "otsstreamreader", "parameter": params},
        "writer": {"name": "streamwriter", "parameter": {}}}]}});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.json");
    std::fs::write(&path, job.to_string()).unwrap();
    (dir, path, by_millis)
}

fn read_jsonl_with_tz(path: &std::path::Path, tz: &str) -> std::process::Output {
    Command::new(binary("reader-otsstream"))
        .args(["read", "--format", "jsonl", "--config"])
        .arg(path)
        .env("TZ", tz)
        .output()
        .unwrap()
}

fn lines(out: &std::process::Output) -> Vec<Json> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_standalone_job_file_uses_its_setting_time_zone_else_tz() {
    let cloud = Cloud::start();
    table_with_changes(&cloud);
    // setting.timeZone wins over the machine's zone (TZ=UTC here).
    let (_dir, path, expected) =
        shanghai_window_job(&cloud, "st_z1", json!({"timeZone": "Asia/Shanghai"}));
    assert_eq!(expected.len(), 150);
    assert_eq!(lines(&read_jsonl_with_tz(&path, "UTC")), expected);
    // Without setting.timeZone, TZ decides, in every form the C library takes.
    let (_dir2, path, expected) = shanghai_window_job(&cloud, "st_z2", json!({}));
    for tz in ["Asia/Shanghai", ":Asia/Shanghai", "CST-8"] {
        assert_eq!(lines(&read_jsonl_with_tz(&path, tz)), expected, "TZ={tz}");
    }
    let out = read_jsonl_with_tz(&path, "CET-1CEST,M3.5.0,M10.5.0/3");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TZ environment variable"));
}

#[test]
fn retries_are_logged_at_warn() {
    use localcloud::common::faults::FaultAction;
    use localcloud::common::FaultRule;
    let cloud = Cloud::start();
    table_with_changes(&cloud);
    cloud
        .handle
        .faults
        .add(FaultRule {
            operation: None,
            times: Some(2),
            skip: 0,
            rate: None,
            after_apply: false,
            action: FaultAction::Error {
                status: 503,
                code: "OTSServerBusy".into(),
                message: None,
            },
        })
        .unwrap();
    let now = now_ms();
    let out = cloud.read(
        &cloud.params("p", "st_r", now - 60 * MINUTE, now - 10 * MINUTE),
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let retries: Vec<&str> = stderr.lines().filter(|l| l.contains("retry ")).collect();
    assert_eq!(retries.len(), 2, "{stderr}");
    for line in retries {
        assert!(
            line.contains("WARN") && line.contains("OTSServerBusy"),
            "{line}"
        );
    }
}
