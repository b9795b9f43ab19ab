//! The job-wide speed limits hold end to end, across 4 channels, within ±15 % over
//! more than 5 seconds.

// Tests (and their helpers) may unwrap.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{run_job, Workspace};
use serde_json::json;

/// A reader-stream column of `len` characters (DataX size: `len` bytes).
fn text_column(len: usize) -> serde_json::Value {
    json!({"type": "string", "value": "x".repeat(len)})
}

fn run_limited(
    speed: serde_json::Value,
    records_per_task: u64,
    column_len: usize,
) -> serde_json::Value {
    let ws = Workspace::new();
    let job = ws.job(
        json!({"speed": speed}),
        (
            "streamreader",
            json!({"sliceRecordCount": records_per_task, "column": [text_column(column_len)]}),
        ),
        ("streamwriter", json!({"print": false})),
    );
    let out = run_job(
        &ws,
        &job,
        &["--summary-json", "s.json", "--progress-interval", "1"],
        Duration::from_secs(120),
    );
    out.assert_code(0)
        .assert_stderr_has("speed limit for the whole job");
    // A progress line every second (--progress-interval 1) over a run of several seconds.
    let progress_lines = out
        .stderr
        .lines()
        .filter(|l| l.contains(" records/s, ") && l.contains(" running, "))
        .count();
    assert!(
        progress_lines >= 2,
        "{progress_lines} progress lines:\n{}",
        out.stderr
    );
    ws.read_json("s.json")
}

#[test]
fn byte_limit_of_2_mib_per_second_over_4_channels() {
    // 4 × 32,000 records × 100 bytes = 12.2 MiB: about 6.1 s at 2 MiB/s.
    let s = run_limited(json!({"channel": 4, "byte": 2 * 1024 * 1024}), 32_000, 100);
    let secs = s["transfer_secs"].as_f64().unwrap();
    let bytes = s["bytes"].as_f64().unwrap();
    assert_eq!(bytes, 4.0 * 32_000.0 * 100.0);
    assert!(secs >= 5.0, "the run must last at least 5 s: {secs}");
    let rate = bytes / secs / (1024.0 * 1024.0);
    eprintln!("byte limit 2 MiB/s, 4 channels: {rate:.3} MiB/s over {secs:.2} s");
    assert!(
        (rate - 2.0).abs() <= 2.0 * 0.15,
        "{rate:.3} MiB/s over {secs:.2} s"
    );
}

#[test]
fn record_limit_of_50000_per_second_over_4_channels() {
    // 4 × 70,000 records: about 5.6 s at 50,000 records/s.
    let s = run_limited(json!({"channel": "4", "record": "50000"}), 70_000, 10);
    let secs = s["transfer_secs"].as_f64().unwrap();
    let records = s["records"].as_f64().unwrap();
    assert_eq!(records, 280_000.0);
    assert!(secs >= 5.0, "the run must last at least 5 s: {secs}");
    let rate = records / secs;
    eprintln!("record limit 50,000/s, 4 channels: {rate:.0} records/s over {secs:.2} s");
    assert!(
        (rate - 50_000.0).abs() <= 50_000.0 * 0.15,
        "{rate:.0} records/s over {secs:.2} s"
    );
}

#[test]
fn mbps_is_mebibytes_per_second_for_the_whole_job() {
    // Data Integration's `mbps` with `concurrent`: 1 MiB/s across 2 channels, ~2.5 s.
    let s = run_limited(json!({"concurrent": 2, "mbps": "1"}), 13_000, 100);
    let secs = s["transfer_secs"].as_f64().unwrap();
    let rate = s["bytes"].as_f64().unwrap() / secs / (1024.0 * 1024.0);
    eprintln!("mbps 1, 2 channels: {rate:.3} MiB/s over {secs:.2} s");
    assert!(
        (rate - 1.0).abs() <= 0.15,
        "{rate:.3} MiB/s over {secs:.2} s"
    );
}

#[test]
fn waiting_for_the_speed_limit_is_not_a_stall() {
    // 30 records at 10 records/s: the one batch waits 3 s, the stall timeout is 1 s.
    let ws = Workspace::new();
    let job = ws.job(
        json!({"speed": {"record": 10}}),
        ("misbehave", json!({"records": 30})),
        ("misbehave", json!({})),
    );
    let out = run_job(
        &ws,
        &job,
        &["--stall-timeout", "1"],
        Duration::from_secs(60),
    );
    out.assert_code(0);
    assert!(out.elapsed >= Duration::from_secs(3), "{:?}", out.elapsed);
}
