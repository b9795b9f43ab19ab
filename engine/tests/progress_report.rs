//! The progress accounting end to end: written records from the writers' `progress`
//! and `done`, the time the job waited on the reader, on the writer and on the speed
//! limit (DataX's WaitReaderTime / WaitWriterTime), and the summary's new fields.

// Tests (and their helpers) may unwrap.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{run_job, Workspace};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(120);

#[test]
fn a_slow_writer_shows_as_time_waited_on_the_writer() {
    let ws = Workspace::new();
    // 60,000 records of ~200 bytes (12 MiB of frames, well over the 4 MiB queue and
    // the pipes): while the writer sleeps 2 s after its first records, the reader's
    // side waits for it.
    let job = ws.job(
        json!({"speed": {"channel": 1}}),
        (
            "streamreader",
            json!({"sliceRecordCount": 60000, "column": [{"type": "string", "value": "y".repeat(200)}]}),
        ),
        (
            "streamwriter",
            json!({"print": false, "recordNumBeforeSleep": 1, "sleepTime": 2}),
        ),
    );
    let out = run_job(&ws, &job, &["--summary-json", "s.json"], DEADLINE);
    out.assert_code(0);
    let s = ws.read_json("s.json");
    assert_eq!(s["records"], 60000);
    assert_eq!(s["written_records"], 60000, "{s}");
    let waited = s["wait_writer_secs"].as_f64().unwrap();
    assert!(
        (1.0..30.0).contains(&waited),
        "wait_writer_secs {waited}: {s}"
    );
    assert_eq!(s["wait_limit_secs"], 0.0, "no speed limit: {s}");
    out.assert_stderr_has("Records       : 60,000 read, 60,000 written")
        .assert_stderr_has("Waited        : on the reader ");
}

#[test]
fn a_speed_limit_shows_as_time_waited_on_it_and_on_the_reader() {
    let ws = Workspace::new();
    // 2 tasks × 16,384 records at 8,000 records/s: about 4 s, mostly held back.
    let job = ws.job(
        json!({"speed": {"channel": 2, "record": 8000}}),
        (
            "streamreader",
            json!({"sliceRecordCount": 16384, "column": [{"type": "long", "value": "1"}]}),
        ),
        ("streamwriter", json!({"print": false})),
    );
    let out = run_job(
        &ws,
        &job,
        &[
            "--summary-json",
            "s.json",
            "--progress-interval",
            "1",
            "--schedule-time",
            "2024-11-21 10:05:00",
        ],
        DEADLINE,
    );
    out.assert_code(0);
    let s = ws.read_json("s.json");
    assert_eq!(s["written_records"], 32768, "{s}");
    let limit = s["wait_limit_secs"].as_f64().unwrap();
    let reader = s["wait_reader_secs"].as_f64().unwrap();
    let transfer = s["transfer_secs"].as_f64().unwrap();
    // Each task's batches wait their turn: summed over the 2 tasks, more than the
    // transfer took once, less than twice.
    assert!(limit > 1.5 && limit < 2.0 * transfer + 1.0, "{s}");
    // As in DataX, a writer waits for records while its reader is held back.
    assert!(reader > 1.0 && reader < 2.0 * transfer + 1.0, "{s}");
    assert_eq!(s["schedule_time"], "2024-11-21T10:05:00.000Z", "{s}");
    assert!(s["window"].is_null(), "reader-stream has no window: {s}");
    let fingerprint = s["fingerprint"].as_str().unwrap();
    assert!(
        fingerprint.len() == 32 && fingerprint.chars().all(|c| c.is_ascii_hexdigit()),
        "{s}"
    );
    let plugins = s["plugins"].as_array().unwrap();
    let names: Vec<&str> = plugins
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["reader-stream", "writer-stream"], "{s}");
    assert!(plugins
        .iter()
        .all(|p| p["version"] == env!("CARGO_PKG_VERSION")));
    // The periodic progress lines (stderr is no terminal) carry the new fields; the
    // readers' estimate gives an ETA.
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains(" | read ") && l.contains(" written "))
        .collect();
    assert!(lines.len() >= 2, "{}", out.stderr);
    assert!(
        lines
            .iter()
            .all(|l| l.contains("waited on reader ") && l.contains(", speed limit ")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.contains(" | ETA 0:0")), "{lines:?}");
}
