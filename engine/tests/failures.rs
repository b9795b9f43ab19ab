//! Every way a plugin can misbehave ends the job with a clear message naming the task,
//! the side and the plugin, exit code 1, the writer's `abort` and no `post`, and no hang.

// Tests (and their helpers) may unwrap.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{run_job, Workspace};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(60);

/// Runs a 2-task job where `side` misbehaves with `mode` in task 1 only.
fn misbehave(side: &str, mode: &str, expect: &[&str]) -> common::Outcome {
    let ws = Workspace::new();
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    let mut reader = json!({"records": 2000, "marker_dir": marker});
    let mut writer = json!({"marker_dir": marker});
    let target = if side == "reader" {
        &mut reader
    } else {
        &mut writer
    };
    target["mode"] = json!(mode);
    target["only_task"] = json!(1);
    let job = ws.job(
        json!({"speed": {"channel": 2}}),
        ("misbehave", reader),
        ("misbehave", writer),
    );
    let out = run_job(&ws, &job, &["--stall-timeout", "2"], DEADLINE);
    out.assert_code(1);
    out.assert_stderr_has(&format!("task 1 {side} ({side}-misbehave)"));
    for text in expect {
        out.assert_stderr_has(text);
    }
    assert!(
        ws.path("writer-abort.json").exists(),
        "the writer's abort did not run:\n{}",
        out.stderr
    );
    assert!(
        !ws.path("writer-post.json").exists(),
        "the writer's post ran:\n{}",
        out.stderr
    );
    assert!(
        !ws.path("reader-post.json").exists(),
        "the reader's post ran:\n{}",
        out.stderr
    );
    out
}

#[test]
fn reader_without_hello() {
    misbehave(
        "reader",
        "no_hello",
        &["its stdout ended before its hello", "exit code 0"],
    );
}

#[test]
fn writer_without_hello() {
    misbehave("writer", "no_hello", &["its stdout ended before its hello"]);
}

#[test]
fn reader_with_wrong_protocol_version() {
    misbehave(
        "reader",
        "wrong_version",
        &["incompatible protocol", "9.0.0"],
    );
}

#[test]
fn writer_with_wrong_protocol_version() {
    misbehave(
        "writer",
        "wrong_version",
        &["incompatible protocol", "9.0.0"],
    );
}

#[test]
fn reader_printing_garbage_on_stdout() {
    misbehave(
        "reader",
        "garbage",
        &[
            "not a streamport protocol stream",
            "DEBUG: connecting to the service",
        ],
    );
}

#[test]
fn writer_printing_garbage_on_stdout() {
    misbehave(
        "writer",
        "garbage",
        &["not a streamport protocol stream", "DEBUG: connecting"],
    );
}

#[test]
fn reader_crashing_mid_stream() {
    misbehave("reader", "crash", &["signal 6 (SIGABRT)"]);
}

#[test]
fn writer_crashing_mid_stream() {
    misbehave(
        "writer",
        "crash",
        &["signal 6 (SIGABRT)", "ended without done"],
    );
}

#[test]
fn reader_exiting_without_an_error_frame() {
    misbehave(
        "reader",
        "exit_silently",
        &[
            "without eos after 1000 records",
            "exit code 3",
            "its last stderr lines",
        ],
    );
}

#[test]
fn writer_exiting_without_an_error_frame() {
    misbehave(
        "writer",
        "exit_silently",
        &["ended without done", "exit code 3"],
    );
}

#[test]
fn reader_sending_an_error() {
    misbehave(
        "reader",
        "error",
        &["simulated service failure reading table t1 (service error, retryable)"],
    );
}

#[test]
fn writer_sending_an_error() {
    misbehave(
        "writer",
        "error",
        &["simulated service failure reading table t1"],
    );
}

#[test]
fn hanging_reader_is_stopped_by_the_watchdog() {
    let ws = Workspace::new();
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    let job = ws.job(
        json!({"speed": {"channel": 2}}),
        (
            "misbehave",
            json!({"mode": "hang", "only_task": 1, "marker_dir": marker}),
        ),
        ("misbehave", json!({"marker_dir": marker})),
    );
    let out = run_job(&ws, &job, &["--stall-timeout", "2"], DEADLINE);
    out.assert_code(1)
        .assert_stderr_has("task 1 (reader-misbehave → writer-misbehave) stalled")
        .assert_stderr_has("waiting for reader-misbehave to send data");
    assert!(ws.path("writer-abort.json").exists());
    assert!(!ws.path("writer-post.json").exists());
    assert!(out.elapsed < Duration::from_secs(20), "{:?}", out.elapsed);
}

#[test]
fn hanging_writer_is_stopped_by_the_watchdog() {
    let ws = Workspace::new();
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    let job = ws.job(
        json!({}),
        (
            "misbehave",
            json!({"records": 200000, "marker_dir": marker}),
        ),
        ("misbehave", json!({"mode": "hang", "marker_dir": marker})),
    );
    let out = run_job(&ws, &job, &["--stall-timeout", "2"], DEADLINE);
    out.assert_code(1)
        .assert_stderr_has("task 0 (reader-misbehave → writer-misbehave) stalled");
    assert!(ws.path("writer-abort.json").exists());
}

#[test]
fn failing_check_is_a_configuration_error_and_nothing_runs() {
    let ws = Workspace::new();
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    let job = ws.job(
        json!({}),
        ("misbehave", json!({"marker_dir": marker})),
        (
            "misbehave",
            json!({"fail_step": "check", "marker_dir": marker}),
        ),
    );
    let out = run_job(&ws, &job, &[], DEADLINE);
    out.assert_code(2).assert_stderr_has(
        "writer-misbehave check failed: writer-misbehave: simulated check failure",
    );
    assert!(
        !ws.path("writer-abort.json").exists(),
        "nothing was prepared, so nothing to abort"
    );
}

#[test]
fn failing_writer_post_aborts() {
    let ws = Workspace::new();
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    let job = ws.job(
        json!({}),
        ("misbehave", json!({"marker_dir": marker})),
        (
            "misbehave",
            json!({"fail_step": "post", "marker_dir": marker}),
        ),
    );
    let out = run_job(&ws, &job, &[], DEADLINE);
    out.assert_code(1)
        .assert_stderr_has("writer-misbehave post failed");
    assert!(ws.path("writer-abort.json").exists());
    assert!(!ws.path("reader-post.json").exists());
}

#[test]
fn missing_plugin_is_a_configuration_error_listing_what_exists() {
    let ws = Workspace::new();
    let job = ws.job(json!({}), ("nosuchthing", json!({})), ("stream", json!({})));
    let out = run_job(&ws, &job, &[], DEADLINE);
    out.assert_code(2)
        .assert_stderr_has("executable reader-nosuchthing not found")
        .assert_stderr_has("reader-stream");
}
