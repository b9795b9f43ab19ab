//! `streamport test-plugin`: the well-behaved test plugins pass every check, and each
//! way `plugin-misbehave` breaks the contract fails the check it breaks, with a message
//! that says what was wrong.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{engine_bin, plugins_built};

struct Run {
    code: i32,
    stdout: String,
}

fn test_plugin(plugin: &str, mode: Option<&str>, extra: &[&str]) -> Run {
    // A misbehaving plugin hangs on purpose: a short timeout; a well-behaved one gets
    // time enough on a loaded machine.
    let timeout = if mode.is_some() { "4" } else { "30" };
    plugins_built();
    let dir = engine_bin().parent().unwrap().to_path_buf();
    let mut cmd = Command::new(engine_bin());
    cmd.arg("test-plugin")
        .arg(dir.join(plugin))
        .args(["--timeout", timeout])
        .args(extra)
        .env_remove("MISBEHAVE_MODE");
    if let Some(mode) = mode {
        cmd.env("MISBEHAVE_MODE", mode);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

fn assert_all_pass(run: &Run, what: &str) {
    assert_eq!(run.code, 0, "{what} did not pass:\n{}", run.stdout);
    assert!(!run.stdout.contains("FAIL"), "{what}:\n{}", run.stdout);
    assert!(run.stdout.contains("0 failed, 0 skipped"), "{}", run.stdout);
}

#[test]
fn well_behaved_plugins_pass() {
    let stream_reader = r#"{"sliceRecordCount": 3000, "column": [{"type": "long", "random": "0,100"}, {"type": "string", "value": "zoë 😀"}, {"type": "double", "value": "2.5"}, {"type": "date", "value": "2024-01-15 08:30:00"}]}"#;
    let runs = [
        ("reader-stream", vec!["--config", stream_reader]),
        ("writer-stream", vec!["--records", "2500"]),
        ("reader-misbehave", vec![]),
        ("writer-misbehave", vec![]),
    ];
    std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .map(|(p, args)| s.spawn(move || (p, test_plugin(p, None, args))))
            .collect();
        for h in handles {
            let (p, run) = h.join().unwrap();
            assert_all_pass(&run, p);
            if p.starts_with("reader") {
                assert!(run.stdout.contains("PASS  read: batches"), "{}", run.stdout);
                assert!(run.stdout.contains("PASS  read: eos"), "{}", run.stdout);
            } else {
                assert!(run.stdout.contains("PASS  write: done"), "{}", run.stdout);
            }
            for check in ["--version", "check (bad config)", "abort", "post"] {
                assert!(
                    run.stdout.contains(&format!("PASS  {check}: ")),
                    "{p} {check}:\n{}",
                    run.stdout
                );
            }
        }
    });
}

/// (plugin, mode, the FAIL lines expected, as prefixes of "FAIL  <check>: <message>").
const CASES: &[(&str, &str, &[&str])] = &[
    ("reader-misbehave", "no_version", &["FAIL  --version: `", "--version` exited 2; expected exit 0"]),
    ("writer-misbehave", "session_unserved", &["FAIL  session: offered session, but `session --engine` answered 0 lines to 2 requests"]),
    ("reader-misbehave", "step_stdout_log", &["FAIL  check: `check --engine` exited 0: stdout is not JSON", "it starts with \"INFO reader-misbehave: starting check"]),
    ("reader-misbehave", "no_hello", &["FAIL  read: frames: it wrote nothing on stdout (expected the preamble", "FAIL  read: hello: no hello: the plugin exited 0 before its first frame"]),
    ("reader-misbehave", "wrong_version", &["FAIL  read: hello: hello: incompatible protocol: peer reader-misbehave speaks streamport 9.0.0"]),
    ("reader-misbehave", "garbage", &["FAIL  read: frames: stdout is not a frame stream: not a streamport protocol stream: it starts with \"DEBUG: connecting"]),
    ("reader-misbehave", "crash", &["FAIL  read: eos: the stream ended without eos after 500 records: the plugin was killed by signal 6 (SIGABRT)"]),
    ("reader-misbehave", "exit_silently", &["FAIL  read: eos: the stream ended without eos after 500 records: the plugin exited 3"]),
    ("reader-misbehave", "error", &["FAIL  read: eos: the plugin sent error (kind service, retryable): simulated service failure reading table t1 instead of eos"]),
    ("reader-misbehave", "hang", &["FAIL  read: eos: no eos: nothing on stdout for 4 s after 1 frames (the plugin hangs)", "FAIL  read (cancel during the task): still running 3 s after cancel"]),
    ("reader-misbehave", "records_array", &["FAIL  read: batches: frame 2: batch field records is an array; it must be a MessagePack bin holding the encoded array of records"]),
    ("reader-misbehave", "wrong_bytes", &["FAIL  read: batches: frame 2: batch says bytes 1391 but its 100 records have a DataX byte size of 1390"]),
    ("reader-misbehave", "wrong_count", &["FAIL  read: batches: frame 2: batch records: bad record encoding at byte 0: batch says 101 records but holds 100"]),
    ("reader-misbehave", "bad_crc", &["FAIL  read: frames: frame checksum mismatch: trailer says"]),
    ("reader-misbehave", "eos_mismatch", &["FAIL  read: eos: eos says 1001 records and 14890 bytes but the batches held 1000 records and 14890 bytes"]),
    ("reader-misbehave", "after_eos", &["FAIL  read: exit: progress after eos: eos must be the last thing on stdout"]),
    ("reader-misbehave", "cancel_exit_0", &["FAIL  read (cancel before configure): the plugin exited 0 after cancel (documented: exit 1)"]),
    ("writer-misbehave", "cancel_exit_0", &["FAIL  write (cancel during the task): the plugin exited 0 after cancel (documented: exit 1)"]),
    ("writer-misbehave", "accept_truncated", &["FAIL  write (input without eos): an input that ended without eos was accepted: the plugin sent done"]),
    ("writer-misbehave", "send_batch", &["FAIL  write: frames: frame 2: a writer may not send batch"]),
    ("writer-misbehave", "done_mismatch", &["FAIL  write: done: done says 1001 records received but 1000 were sent"]),
    ("writer-misbehave", "hang", &["FAIL  write: done: no done: nothing on stdout for 4 s after 1 frames (the plugin hangs)", "FAIL  write (cancel during the task): still running 3 s after cancel", "FAIL  write (undecodable batch): after a batch whose records do not decode the plugin neither failed nor finished within 4 s"]),
    ("writer-misbehave", "error", &["FAIL  write: done: the plugin sent error (kind service, retryable): simulated service failure reading table t1 instead of done"]),
];

#[test]
fn each_misbehaviour_fails_its_check() {
    std::thread::scope(|s| {
        let handles: Vec<_> = CASES
            .iter()
            .map(|(plugin, mode, expected)| {
                s.spawn(move || (plugin, mode, expected, test_plugin(plugin, Some(mode), &[])))
            })
            .collect();
        for h in handles {
            let (plugin, mode, expected, run) = h.join().unwrap();
            assert_eq!(
                run.code, 1,
                "{plugin} in mode {mode} passed:\n{}",
                run.stdout
            );
            for line in *expected {
                let found = run
                    .stdout
                    .lines()
                    .any(|l| l.starts_with(line) || (l.starts_with("FAIL") && l.contains(line)));
                assert!(
                    found,
                    "{plugin} in mode {mode}: no line {line:?} in:\n{}",
                    run.stdout
                );
            }
        }
    });
}

#[test]
fn usage_errors_exit_2() {
    plugins_built();
    let out = Command::new(engine_bin())
        .args(["test-plugin", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("give --role reader or --role writer"),
        "{stderr}"
    );
    let out = Command::new(engine_bin())
        .args(["test-plugin", "reader-x", "--config", "{\"a\": "])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--config"), "{stderr}");
}

#[test]
fn a_failing_step_is_named_with_its_error() {
    for (step, line) in [
        ("check", "FAIL  check: check failed: writer-misbehave: simulated check failure (config)"),
        ("split", "FAIL  split (job 1): split failed: writer-misbehave: simulated split failure (service)"),
        ("post", "FAIL  post: post failed: writer-misbehave: simulated post failure (service)"),
    ] {
        let config = format!("{{\"fail_step\": \"{step}\"}}");
        let run = test_plugin("writer-misbehave", None, &["--config", &config]);
        assert_eq!(run.code, 1, "{}", run.stdout);
        assert!(run.stdout.lines().any(|l| l == line), "no {line:?} in:\n{}", run.stdout);
    }
}
