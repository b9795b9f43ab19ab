//! `errorLimit`: `record` is checked at every dirty record and stops the job at once;
//! `percentage` is checked at the end; a breach exits 3 and the writer's `post` never
//! runs. Every dirty record is in the dirty file with its reason.

// Tests (and their helpers) may unwrap.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{run_job, Outcome, Workspace};
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(60);

/// One task; the reader reports `reader_dirty` dirty records, the writer `writer_dirty`.
fn job_with_dirty(
    ws: &Workspace,
    limit: Value,
    reader_dirty: u64,
    writer_dirty: u64,
    channels: u64,
) -> Outcome {
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    let job = ws.job(
        json!({"speed": {"channel": channels}, "errorLimit": limit}),
        (
            "misbehave",
            json!({"records": 100, "dirty": reader_dirty, "marker_dir": marker}),
        ),
        (
            "misbehave",
            json!({"dirty": writer_dirty, "marker_dir": marker}),
        ),
    );
    let dirty = ws.path("dirty.jsonl");
    let summary = ws.path("summary.json");
    run_job(
        ws,
        &job,
        &[
            "--dirty-file",
            dirty.to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ],
        DEADLINE,
    )
}

fn dirty_lines(ws: &Workspace) -> Vec<Value> {
    std::fs::read_to_string(ws.path("dirty.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn record_zero_fails_at_the_first_dirty_record_and_post_never_runs() {
    let ws = Workspace::new();
    let out = job_with_dirty(&ws, json!({"record": 0}), 1, 0, 1);
    out.assert_code(3).assert_stderr_has(
        "error limit exceeded: 1 dirty records, the limit (errorLimit.record) is 0",
    );
    assert!(!ws.path("writer-post.json").exists(), "{}", out.stderr);
    assert!(!ws.path("reader-post.json").exists());
    assert!(ws.path("writer-abort.json").exists());
    let lines = dirty_lines(&ws);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["side"], "reader");
    assert_eq!(lines[0]["task"], 0);
    assert_eq!(lines[0]["plugin"], "reader-misbehave");
    assert_eq!(
        lines[0]["reason"],
        "column 1: simulated bad value in record 0"
    );
    assert_eq!(lines[0]["record"], json!([0, "row-0"]));
    let summary = ws.read_json("summary.json");
    assert_eq!(summary["outcome"], "error limit exceeded");
    assert_eq!(summary["exit_code"], 3);
}

#[test]
fn record_five_passes_with_five_dirty_records() {
    let ws = Workspace::new();
    let out = job_with_dirty(&ws, json!({"record": "5"}), 3, 2, 1);
    out.assert_code(0);
    assert!(ws.path("writer-post.json").exists());
    let lines = dirty_lines(&ws);
    assert_eq!(lines.len(), 5);
    assert_eq!(lines.iter().filter(|l| l["side"] == "writer").count(), 2);
    assert!(lines.iter().all(|l| l["reason"]
        .as_str()
        .is_some_and(|r| r.starts_with("column "))));
    let summary = ws.read_json("summary.json");
    assert_eq!(summary["dirty_records"], 5);
    assert_eq!(summary["reader_dirty_records"], 3);
    assert_eq!(summary["writer_dirty_records"], 2);
}

#[test]
fn record_five_fails_with_six_dirty_records() {
    let ws = Workspace::new();
    let out = job_with_dirty(&ws, json!({"record": 5}), 3, 3, 1);
    out.assert_code(3)
        .assert_stderr_has("6 dirty records, the limit (errorLimit.record) is 5");
    assert!(!ws.path("writer-post.json").exists());
    assert_eq!(dirty_lines(&ws).len(), 6);
}

#[test]
fn record_limit_stops_a_long_job_at_once() {
    let ws = Workspace::new();
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    // 4 tasks whose readers start with a dirty record; the job would otherwise move
    // 4 × 5,000,000 records.
    let job = ws.job(
        json!({"speed": {"channel": 4}, "errorLimit": {"record": 0}}),
        (
            "misbehave",
            json!({"records": 5_000_000, "dirty": 1, "only_task": 0, "marker_dir": marker}),
        ),
        ("misbehave", json!({"marker_dir": marker})),
    );
    let out = run_job(&ws, &job, &[], DEADLINE);
    out.assert_code(3);
    assert!(out.elapsed < Duration::from_secs(15), "{:?}", out.elapsed);
    assert!(!ws.path("writer-post.json").exists());
}

#[test]
fn percentage_is_checked_at_the_end() {
    let ws = Workspace::new();
    // 2 tasks × (100 records + 12 reader-dirty): 24 / 224 = 0.107 > 0.1.
    let out = job_with_dirty(&ws, json!({"percentage": 0.1}), 12, 0, 2);
    out.assert_code(3)
        .assert_stderr_has("errorLimit.percentage");
    let summary = ws.read_json("summary.json");
    assert_eq!(
        summary["tasks_succeeded"], 2,
        "every task ran before the check"
    );
    assert!(!ws.path("writer-post.json").exists());
    assert_eq!(dirty_lines(&ws).len(), 24);

    let ws = Workspace::new();
    // 2 × 10 / 220 = 0.09 ≤ 0.1.
    job_with_dirty(&ws, json!({"percentage": "0.1"}), 10, 0, 2).assert_code(0);
    assert!(ws.path("writer-post.json").exists());
}

#[test]
fn record_wins_over_percentage() {
    let ws = Workspace::new();
    job_with_dirty(&ws, json!({"record": 20, "percentage": 0.0}), 12, 0, 1).assert_code(0);
}

#[test]
fn no_limit_tolerates_dirty_records() {
    let ws = Workspace::new();
    job_with_dirty(&ws, json!({}), 30, 5, 1).assert_code(0);
    assert_eq!(dirty_lines(&ws).len(), 35);
}

#[test]
fn dirty_records_at_a_set_rate_count_against_the_percentage() {
    // 4 tasks × 1,000 records, every 20th dirty: 200 / 4,000 = 0.05.
    let run = |percentage: f64| {
        let ws = Workspace::new();
        let job = ws.job(
            json!({"speed": {"channel": 4}, "errorLimit": {"percentage": percentage}}),
            ("misbehave", json!({"records": 1000, "dirty_every": 20})),
            ("misbehave", json!({})),
        );
        let out = run_job(
            &ws,
            &job,
            &["--dirty-file", "d.jsonl", "--summary-json", "s.json"],
            DEADLINE,
        );
        let summary = ws.read_json("s.json");
        assert_eq!(summary["reader_dirty_records"], 200);
        assert_eq!(summary["records"], 3800);
        assert_eq!(
            std::fs::read_to_string(ws.path("d.jsonl"))
                .unwrap()
                .lines()
                .count(),
            200
        );
        out.code
    };
    assert_eq!(run(0.05), 0);
    assert_eq!(run(0.04), 3);
}
