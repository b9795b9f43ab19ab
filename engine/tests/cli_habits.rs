//! The command-line habits: `--version` with the commit (engine and plugins), shell
//! completions, manual pages, `run -`, `check --offline`, and `check` reporting every
//! failure with a short retry budget.

// Tests (and their helpers) may unwrap.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{engine_bin, finish, run, Workspace};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(60);

/// `<name> <version> (commit <12 hex digits or unknown>)`.
fn assert_version_line(name: &str, stdout: &str) {
    let line = stdout.trim();
    let rest = line
        .strip_prefix(&format!("{name} {} (commit ", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{name} --version printed {line:?}"));
    let commit = rest.strip_suffix(')').unwrap();
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{name}: commit {commit:?}"
    );
}

fn version_of(path: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(path);
    cmd.arg("--version");
    cmd
}

#[test]
fn every_binary_prints_its_version_with_the_commit() {
    let ws = Workspace::new();
    let out = run(ws.engine(&["--version"]), DEADLINE);
    out.assert_code(0);
    assert_version_line("streamport", &out.stdout);
    let dir = engine_bin().parent().unwrap().to_path_buf();
    for plugin in [
        "reader-stream",
        "writer-stream",
        "reader-misbehave",
        "writer-misbehave",
    ] {
        let out = run(version_of(&dir.join(plugin)), DEADLINE);
        out.assert_code(0);
        assert_version_line(plugin, &out.stdout);
    }
    // The same commit everywhere: one build.
    let engine = run(ws.engine(&["--version"]), DEADLINE).stdout;
    let plugin = run(version_of(&dir.join("reader-stream")), DEADLINE).stdout;
    assert_eq!(
        engine.split_once(' ').unwrap().1,
        plugin.split_once(' ').unwrap().1
    );
}

#[test]
fn completions_and_manual_pages() {
    let ws = Workspace::new();
    let out = run(ws.engine(&["completions", "bash"]), DEADLINE);
    out.assert_code(0);
    assert!(out.stdout.contains("_streamport()"), "{}", out.stdout);
    for sub in ["run", "check", "plugins", "--offline", "--plugin-dir"] {
        assert!(out.stdout.contains(sub), "bash completion lacks {sub}");
    }
    let out = run(ws.engine(&["completions", "zsh"]), DEADLINE);
    out.assert_code(0);
    assert!(
        out.stdout.starts_with("#compdef streamport"),
        "{}",
        out.stdout
    );
    run(ws.engine(&["completions", "tcsh"]), DEADLINE).assert_code(2);

    let out = run(ws.engine(&["man"]), DEADLINE);
    out.assert_code(0);
    assert!(out.stdout.contains(".TH streamport 1"), "{}", out.stdout);
    assert!(out.stdout.contains("Exit codes"), "{}", out.stdout);
    let dir = ws.path("man1");
    run(
        ws.engine(&["man", "--dir", dir.to_str().unwrap()]),
        DEADLINE,
    )
    .assert_code(0);
    for page in ["streamport.1", "streamport-run.1", "streamport-check.1"] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}: {text}");
    }
    let run_page = std::fs::read_to_string(dir.join("streamport-run.1")).unwrap();
    assert!(run_page.contains("schedule\\-time"), "{run_page}");
}

#[test]
fn run_reads_the_job_from_stdin() {
    let ws = Workspace::new();
    let job = json!({"job": {"setting": {"speed": {"channel": 2}}, "content": [{
        "reader": {"name": "streamreader", "parameter": {"sliceRecordCount": "${n}",
            "column": [{"type": "long", "value": "7"}]}},
        "writer": {"name": "streamwriter", "parameter": {"print": false}},
    }]}});
    let mut child = ws
        .engine(&["run", "-", "-p", "n=21", "--summary-json", "s.json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(job.to_string().as_bytes()).unwrap();
    drop(stdin);
    finish(child, started, DEADLINE).assert_code(0);
    let summary = ws.read_json("s.json");
    assert_eq!(summary["job_file"], "stdin", "{summary}");
    assert_eq!(summary["records"], 42, "{summary}");

    // An empty stdin is a configuration error naming where the job came from.
    let out = run(
        {
            let mut cmd = ws.engine(&["run", "-"]);
            cmd.stdin(Stdio::null());
            cmd
        },
        DEADLINE,
    );
    out.assert_code(2).assert_stderr_has("stdin");
}

#[test]
fn offline_check_prints_the_resolved_job_with_secrets_masked() {
    let ws = Workspace::new();
    let sources = ws.write(
        "sources.json",
        r#"{"src": {"endpoint": "http://ots.example", "accessId": "LTAIid", "accessKey": "TopSecret99"}}"#,
    );
    // The vendor's spelling: a key with a trailing space, a comment, a trailing comma.
    let text = r#"{"job": {
        "Setting ": {"speed": {"channel": ${channels}}},  // two channels
        "content": [{
          "reader": {"name": "misbehave", "parameter": {"datasource": "src", "records": 3, "day": "${bdp.system.bizdate}"}},
          "writer": {"name": "misbehave", "parameter": {"fail_step": "check", "password": 12345,}},
        }]}}"#;
    let job = ws.write("job.json", text);
    let out = run(
        ws.engine(&[
            "check",
            "--offline",
            job.to_str().unwrap(),
            "-p",
            "channels=2",
            "--schedule-time",
            "2024-11-21 10:30:00",
            "--datasources",
            sources.to_str().unwrap(),
        ]),
        DEADLINE,
    );
    // The writer's check would fail: offline, no plugin step runs.
    out.assert_code(0);
    assert!(!out.stdout.contains("TopSecret99"), "{}", out.stdout);
    assert!(!out.stderr.contains("TopSecret99"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("simulated check failure"),
        "{}",
        out.stderr
    );
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let job = &doc["job"];
    assert_eq!(job["setting"]["speed"]["channel"], 2, "{doc}");
    let reader = &job["content"][0]["reader"]["parameter"];
    assert_eq!(reader["endpoint"], "http://ots.example", "{doc}");
    assert_eq!(reader["accessId"], "LTAIid", "{doc}");
    assert_eq!(reader["accessKey"], "******", "{doc}");
    assert_eq!(reader["day"], "20241120", "{doc}");
    assert_eq!(
        job["content"][0]["writer"]["parameter"]["password"],
        "******"
    );
    assert_eq!(doc["resolved"]["channel"], 2);
    assert_eq!(doc["resolved"]["fingerprint"].as_str().unwrap().len(), 32);
    assert!(doc["resolved"]["writer_plugin"]
        .as_str()
        .unwrap()
        .ends_with("writer-misbehave"));

    // Every problem is reported: an unknown reader and an unknown writer.
    let job = ws.job(
        json!({}),
        ("nosuchsource", json!({})),
        ("nosuchsink", json!({})),
    );
    let out = run(
        ws.engine(&["check", "--offline", job.to_str().unwrap()]),
        DEADLINE,
    );
    out.assert_code(2)
        .assert_stderr_has("reader-nosuchsource")
        .assert_stderr_has("writer-nosuchsink")
        .assert_stderr_has("2 problems");
}

#[test]
fn check_reports_both_plugins_and_retries_temporary_failures() {
    let ws = Workspace::new();
    let job = ws.job(
        json!({}),
        ("misbehave", json!({"fail_step": "check"})),
        ("misbehave", json!({"check_error": "service"})),
    );
    let out = run(
        ws.engine(&["check", job.to_str().unwrap(), "--check-retries", "2"]),
        DEADLINE,
    );
    // The reader's configuration error is not retried; the writer's temporary one is,
    // twice (after 1 s and 2 s), with one line per retry; both are reported.
    out.assert_code(2)
        .assert_stderr_has(
            "reader-misbehave check failed: reader-misbehave: simulated check failure",
        )
        .assert_stderr_has("simulated temporary check failure")
        .assert_stderr_has("2 problems");
    let retries: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("retrying in"))
        .collect();
    assert_eq!(retries.len(), 2, "{}", out.stderr);
    assert!(retries[0].contains("writer-misbehave") && retries[0].contains("attempt 1 of 3"));
    assert!(retries[1].contains("attempt 2 of 3") && retries[1].contains("retrying in 2 s"));
    assert!(out.elapsed >= Duration::from_secs(3), "{:?}", out.elapsed);

    // Only temporary failures: exit 1.
    let job = ws.job(
        json!({}),
        ("misbehave", json!({})),
        ("misbehave", json!({"check_error": "service"})),
    );
    let out = run(
        ws.engine(&["check", job.to_str().unwrap(), "--check-retries", "0"]),
        DEADLINE,
    );
    out.assert_code(1).assert_stderr_has("1 problem");
    assert!(!out.stderr.contains("retrying"), "{}", out.stderr);

    // Both pass.
    let job = ws.job(
        json!({}),
        ("misbehave", json!({})),
        ("misbehave", json!({})),
    );
    run(ws.engine(&["check", job.to_str().unwrap()]), DEADLINE)
        .assert_code(0)
        .assert_stderr_has("check passed");
}
