//! The command line: `--version`, `--help`, `plugins`, `check`, usage errors.

// Tests (and their helpers) may unwrap.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{run, Workspace};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn version_and_help() {
    let ws = Workspace::new();
    let out = run(ws.engine(&["--version"]), DEADLINE);
    out.assert_code(0);
    assert!(out.stdout.starts_with("streamport "), "{}", out.stdout);
    let out = run(ws.engine(&["run", "--help"]), DEADLINE);
    out.assert_code(0);
    for option in [
        "--schedule-time",
        "--plugin-dir",
        "--dirty-file",
        "--summary-json",
        "--datasources",
        "--stall-timeout",
        "-p, --param",
    ] {
        assert!(
            out.stdout.contains(option),
            "{option} missing from:\n{}",
            out.stdout
        );
    }
    let out = run(ws.engine(&["--help"]), DEADLINE);
    assert!(
        out.stdout.contains("3 error limit exceeded"),
        "{}",
        out.stdout
    );
}

#[test]
fn usage_errors_exit_2() {
    let ws = Workspace::new();
    run(ws.engine(&["run"]), DEADLINE).assert_code(2);
    run(ws.engine(&["frobnicate"]), DEADLINE).assert_code(2);
    run(ws.engine(&["run", "missing.json"]), DEADLINE)
        .assert_code(2)
        .assert_stderr_has("missing.json");
    let bad = ws.write("bad.json", "{\"job\": {\n  \"content\": [nope]\n}}");
    run(ws.engine(&["run", bad.to_str().unwrap()]), DEADLINE)
        .assert_code(2)
        .assert_stderr_has("line 2");
    let job = ws.job(
        json!({"speed": {"channel": 0}}),
        ("stream", json!({})),
        ("stream", json!({})),
    );
    run(ws.engine(&["run", job.to_str().unwrap()]), DEADLINE)
        .assert_code(2)
        .assert_stderr_has("setting.speed.channel");
}

#[test]
fn plugins_lists_what_is_found_with_versions() {
    let ws = Workspace::new();
    let out = run(ws.engine(&["plugins"]), DEADLINE);
    out.assert_code(0);
    for name in [
        "reader-stream",
        "writer-stream",
        "reader-misbehave",
        "writer-misbehave",
    ] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}:\n{}", out.stdout));
        assert!(line.contains(env!("CARGO_PKG_VERSION")), "{line}");
        assert!(line.contains(&format!("/{name}")), "{line}");
    }
}

#[test]
fn check_runs_each_plugins_check() {
    let ws = Workspace::new();
    let job = ws.job(
        json!({}),
        (
            "streamreader",
            json!({"sliceRecordCount": 1, "column": [{"value": "x"}]}),
        ),
        ("streamwriter", json!({"print": false})),
    );
    run(ws.engine(&["check", job.to_str().unwrap()]), DEADLINE)
        .assert_code(0)
        .assert_stderr_has("reader-stream check passed")
        .assert_stderr_has("writer-stream check passed");
    let job = ws.job(
        json!({}),
        (
            "streamreader",
            json!({"sliceRecordCount": 1, "column": [{"value": "x"}]}),
        ),
        ("streamwriter", json!({"bogus": 1})),
    );
    run(ws.engine(&["check", job.to_str().unwrap()]), DEADLINE)
        .assert_code(2)
        .assert_stderr_has("writer-stream check failed")
        .assert_stderr_has("bogus");
}
