//! A dirty record is logged short (at most `LOG_RECORD_MAX_BYTES` of it) and kept whole
//! in the dirty file.

// Tests (and their helpers) may unwrap.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{run_job, Workspace};
use serde_json::json;

#[test]
fn a_huge_dirty_record_is_logged_short_and_kept_whole_in_the_file() {
    let ws = Workspace::new();
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    let huge = "z".repeat(300_000);
    let job = ws.job(
        json!({"errorLimit": {"record": 1}}),
        (
            "stream",
            json!({"sliceRecordCount": 1, "column": [{"type": "string", "value": huge}]}),
        ),
        ("misbehave", json!({"dirty": 1, "marker_dir": marker})),
    );
    let dirty = ws.path("dirty.jsonl");
    let out = run_job(
        &ws,
        &job,
        &["--dirty-file", dirty.to_str().unwrap()],
        Duration::from_secs(60),
    );
    out.assert_code(0);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("dirty record 1"))
        .unwrap();
    assert!(
        line.len() < protocol::logfmt::LOG_RECORD_MAX_BYTES + 200,
        "a {}-byte log line",
        line.len()
    );
    assert!(line.contains("bytes)"), "{line}");
    let kept: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&dirty).unwrap().trim()).unwrap();
    assert_eq!(kept["record"][0].as_str().unwrap(), huge);
}
