//! Follow mode (`run --follow`) with real processes: the loop of micro-batches, empty
//! batches, the batch fingerprint, `precommit`, signals, the summary and the metrics
//! file. The misbehaving test plugins follow (see tests/plugin-misbehave/src/follow.rs):
//! every step and task appends a line to `calls.log`.

// Tests (and their helpers) may unwrap.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{finish, run_job, Outcome, Workspace};
use serde_json::{json, Value as Json};

const DEADLINE: Duration = Duration::from_secs(60);

/// A follow job of the misbehaving plugins; `reader` and `writer` add parameters.
fn follow_job(ws: &Workspace, setting: Json, reader: Json, writer: Json) -> PathBuf {
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    let mut r = json!({"marker_dir": marker});
    r.as_object_mut()
        .unwrap()
        .extend(reader.as_object().unwrap().clone());
    let mut w = json!({"marker_dir": marker});
    w.as_object_mut()
        .unwrap()
        .extend(writer.as_object().unwrap().clone());
    ws.job(setting, ("misbehave", r), ("misbehave", w))
}

/// Starts `run JOB --follow --summary-json s.json --metrics-file m.json extra…`.
fn start(ws: &Workspace, job: &Path, extra: &[&str]) -> (Child, Instant) {
    let mut args = vec![
        "run",
        job.to_str().unwrap(),
        "--follow",
        "--summary-json",
        "s.json",
        "--metrics-file",
        "m.json",
    ];
    args.extend_from_slice(extra);
    let child = ws
        .engine(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, Instant::now())
}

fn calls(ws: &Workspace) -> Vec<String> {
    std::fs::read_to_string(ws.path("calls.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until `calls.log` has `n` lines starting with `prefix`.
fn wait_for_calls(ws: &Workspace, prefix: &str, n: usize) {
    let started = Instant::now();
    while calls(ws).iter().filter(|l| l.starts_with(prefix)).count() < n {
        assert!(
            started.elapsed() < DEADLINE,
            "never {n} × {prefix:?}: {:?}",
            calls(ws)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn kill(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn summary(ws: &Workspace, out: &Outcome) -> Json {
    let s = ws.read_json("s.json");
    assert_eq!(s["exit_code"], out.code, "{s}\n{}", out.stderr);
    s
}

/// The calls of each batch: from one `reader prepare` to the next (the checks before).
fn batches(calls: &[String]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    for line in calls {
        if line.starts_with("reader prepare") {
            out.push(Vec::new());
        }
        if let Some(b) = out.last_mut() {
            b.push(line.clone());
        }
    }
    out
}

/// A batch's steps (tasks left out), without their fields.
fn steps(batch: &[String]) -> Vec<String> {
    batch
        .iter()
        .filter(|l| !l.contains(" task"))
        .map(|l| l.split(" fp=").next().unwrap().to_owned())
        .collect()
}

fn fp(line: &str) -> &str {
    line.split(" fp=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
}

#[test]
fn batches_run_in_order_and_empty_ones_commit_nothing() {
    let ws = Workspace::new();
    let job = follow_job(
        &ws,
        json!({"speed": {"channel": 2}}),
        json!({"follow_records": [3, 0, 2], "follow_lag_ms": 1500, "echo": ["follow"]}),
        json!({"echo": ["follow"]}),
    );
    let (child, started) = start(&ws, &job, &["--commit-interval", "0.3", "--from", "oldest"]);
    // The metrics file is whole JSON whenever it is read.
    let metrics = ws.path("m.json");
    let pid = child.id();
    let mut reads = 0;
    while calls(&ws)
        .iter()
        .filter(|l| l.starts_with("reader post"))
        .count()
        < 2
    {
        if let Ok(text) = std::fs::read_to_string(&metrics) {
            let m: Json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
            assert!(m["batches_committed"].as_u64().unwrap() <= 2);
            reads += 1;
        }
        assert!(started.elapsed() < DEADLINE, "{:?}", calls(&ws));
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(reads > 0, "the metrics file was never there");
    kill(pid, "-TERM");
    let out = finish(child, started, DEADLINE);
    // The signal lands in a batch's tasks or in its commit (both are waited out).
    out.assert_code(0).assert_stderr_has("SIGTERM received");
    out.assert_stderr_has(r#""from":"oldest""#)
        .assert_stderr_has(r#""from":"checkpoint""#)
        .assert_stderr_has("follow is true");
    let calls = calls(&ws);
    // The two checks run at once, in either order.
    let mut checks = steps(&calls[..2]);
    checks.sort();
    assert_eq!(checks, ["reader check", "writer check"]);
    let batches = batches(&calls);
    assert!(batches.len() >= 3, "{calls:?}");
    let committed = [
        "reader prepare",
        "reader split",
        "writer prepare",
        "writer split",
        "reader precommit",
        "writer post",
        "reader post",
    ];
    let empty = [
        "reader prepare",
        "reader split",
        "writer prepare",
        "writer split",
        "writer abort",
    ];
    assert_eq!(steps(&batches[0]), committed, "{calls:?}");
    assert_eq!(steps(&batches[1]), empty, "{calls:?}");
    assert_eq!(steps(&batches[2]), committed, "{calls:?}");
    // Two tasks per batch, between the writer's split and the precommit/abort.
    for b in &batches[..3] {
        assert_eq!(b.iter().filter(|l| l.contains(" task")).count(), 4, "{b:?}");
        let split = b
            .iter()
            .position(|l| l.starts_with("writer split"))
            .unwrap();
        let last_task = b.iter().rposition(|l| l.contains(" task")).unwrap();
        assert!(split < last_task && last_task == 3 + split + 1, "{b:?}");
    }
    // precommit and post get every task's checkpoints.
    assert!(
        batches[0][batches[0].len() - 3].ends_with("reports=2"),
        "{calls:?}"
    );
    // The batch fingerprint: the reader's prepare and split see the job's; everything
    // after the split the batch's. The empty batch and the next one have the same
    // followBatch (nothing committed in between), so the same fingerprint.
    let job_fp = fp(&batches[0][0]);
    assert_eq!(job_fp, fp(&batches[0][1]));
    let (b1, b2, b3) = (fp(&batches[0][2]), fp(&batches[1][2]), fp(&batches[2][2]));
    assert_ne!(b1, job_fp);
    assert_ne!(b1, b2);
    assert_eq!(b2, b3);
    assert!(batches[0][1].ends_with("batch=00000000") && batches[2][1].ends_with("batch=00000001"));
    for line in &batches[0][2..] {
        assert_eq!(fp(line), b1, "{line}");
    }
    let s = summary(&ws, &out);
    assert_eq!(s["outcome"], "succeeded");
    assert_eq!(s["committed"], "all");
    let f = &s["follow"];
    assert_eq!(f["batches_committed"], 2, "{s}");
    assert!(f["empty_batches"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(f["records"], 10, "{s}");
    assert_eq!(f["state"], "stopped");
    assert!(
        f["stop_reason"]
            .as_str()
            .unwrap()
            .starts_with("stopped by SIGTERM after"),
        "{s}"
    );
    let lag = f["lag_ms"].as_i64().unwrap();
    assert!((1500..10_000).contains(&lag), "lag {lag}");
    assert_eq!(f["lag_ms_per_shard"].as_object().unwrap().len(), 2, "{s}");
    let m = ws.read_json("m.json");
    assert_eq!(m["state"], "stopped");
    assert_eq!(m["batches_committed"], 2);
    out.assert_stderr_has("Follow        : 2 batches committed (10 records");
}

#[test]
fn a_first_signal_lets_the_batch_finish_and_commit() {
    let ws = Workspace::new();
    let job = follow_job(
        &ws,
        json!({"follow": {"commitIntervalSeconds": 1}}),
        json!({"follow_records": [4], "follow_task_ms": 1500}),
        json!({}),
    );
    let (child, started) = start(&ws, &job, &[]);
    wait_for_calls(&ws, "reader task", 1);
    let signalled = Instant::now();
    kill(child.id(), "-INT");
    let out = finish(child, started, DEADLINE);
    out.assert_code(0);
    assert!(!out.stderr.contains("unknown key"), "{}", out.stderr);
    assert!(
        signalled.elapsed() > Duration::from_millis(800),
        "the batch was cut short"
    );
    let s = summary(&ws, &out);
    assert_eq!(s["committed"], "all");
    assert_eq!(s["follow"]["batches_committed"], 1);
    assert_eq!(
        s["follow"]["stop_reason"],
        "stopped by SIGINT after committing batch 1"
    );
    assert_eq!(
        steps(&batches(&calls(&ws))[0]).last().unwrap(),
        "reader post"
    );
    assert_eq!(batches(&calls(&ws)).len(), 1, "no batch after the signal");
}

#[test]
fn a_second_signal_cancels_the_batch_and_says_what_was_committed() {
    let ws = Workspace::new();
    let job = follow_job(
        &ws,
        json!({}),
        json!({"follow_records": [2, 3], "follow_task_ms": 1000}),
        json!({}),
    );
    let (child, started) = start(&ws, &job, &["--commit-interval", "1"]);
    wait_for_calls(&ws, "reader post", 1);
    wait_for_calls(&ws, "reader task", 2);
    let pid = child.id();
    kill(pid, "-TERM");
    std::thread::sleep(Duration::from_millis(100));
    kill(pid, "-TERM");
    let out = finish(child, started, DEADLINE);
    out.assert_code(143)
        .assert_stderr_has("received again: cancelling the current batch");
    let s = summary(&ws, &out);
    assert_eq!(s["outcome"], "interrupted");
    // Batch 1 is visible, batch 2 is not: part of the run's output.
    assert_eq!(s["committed"], "partial", "{s}");
    let detail = s["commit_detail"].as_str().unwrap();
    assert!(detail.contains("1 batches committed before"), "{detail}");
    let calls = calls(&ws);
    let second = &batches(&calls)[1];
    assert_eq!(steps(second).last().unwrap(), "writer abort", "{calls:?}");
    assert!(!steps(second)
        .iter()
        .any(|s| s.contains("post") || s.contains("precommit")));
}

#[test]
fn a_second_signal_during_the_commit_follows_the_commit_rules() {
    let ws = Workspace::new();
    let job = follow_job(
        &ws,
        json!({}),
        json!({"follow_records": [3]}),
        json!({"post_ms": 30000, "abort_answer": {"committed": "unknown", "detail": "batch objects may be visible"}}),
    );
    let (child, started) = start(&ws, &job, &["--commit-interval", "0.2"]);
    let pid_file = ws.path("writer-post.pid");
    while !pid_file.exists() {
        assert!(started.elapsed() < DEADLINE);
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.id();
    kill(pid, "-INT");
    std::thread::sleep(Duration::from_millis(200));
    kill(pid, "-INT");
    let second = Instant::now();
    let out = finish(child, started, DEADLINE);
    assert!(second.elapsed() < Duration::from_secs(3));
    out.assert_code(130)
        .assert_stderr_has("received during the commit: waiting for it to complete")
        .assert_stderr_has("received again: stopping the commit");
    let s = summary(&ws, &out);
    assert_eq!(s["committed"], "unknown");
    assert_eq!(s["commit_detail"], "batch objects may be visible");
    let abort = ws.read_json("writer-abort.json");
    assert_eq!(abort["reports"].as_array().unwrap().len(), 1, "{abort}");
    assert!(!calls(&ws).iter().any(|l| l.starts_with("reader post")));
}

#[test]
fn a_failed_precommit_aborts_the_writer_and_commits_nothing() {
    let ws = Workspace::new();
    let job = follow_job(
        &ws,
        json!({"follow": true}),
        json!({"follow_records": [3], "fail_step": "precommit"}),
        json!({}),
    );
    let out = run_job(
        &ws,
        &job,
        &["--summary-json", "s.json", "--commit-interval", "0.2"],
        DEADLINE,
    );
    out.assert_code(1)
        .assert_stderr_has("precommit failed, so the batch is not committed");
    let s = summary(&ws, &out);
    assert_eq!(s["committed"], "none");
    let steps = steps(&batches(&calls(&ws))[0]);
    assert_eq!(steps.last().unwrap(), "writer abort", "{steps:?}");
    assert!(!steps.iter().any(|s| s.ends_with(" post")));
}

#[test]
fn a_reader_that_cannot_follow_is_refused() {
    let ws = Workspace::new();
    let job = follow_job(
        &ws,
        json!({}),
        json!({"follow_records": [3], "follow_no_batch": true}),
        json!({}),
    );
    let out = run_job(&ws, &job, &["--follow"], DEADLINE);
    out.assert_code(1).assert_stderr_has(
        "split returned a task without \"followBatch\": this reader cannot follow",
    );
    assert!(!calls(&ws).iter().any(|l| l.starts_with("writer prepare")));
}

#[test]
fn follow_options_are_checked_and_name_what_is_wrong() {
    let ws = Workspace::new();
    let plain = follow_job(&ws, json!({}), json!({}), json!({}));
    let job = plain.to_str().unwrap();
    let cases: [(&[&str], &str); 7] = [
        (
            &["run", job, "--commit-interval", "3"],
            "--commit-interval applies to follow mode only",
        ),
        (
            &["run", job, "--follow", "--commit-interval", "0"],
            "--commit-interval = 0",
        ),
        (
            &["run", job, "--follow", "--commit-records", "0"],
            "--commit-records = 0",
        ),
        (
            &["run", job, "--follow", "--from", "tomorrow"],
            "--from = \"tomorrow\"",
        ),
        (
            &["plan", job, "--plan", "plan-dir", "--follow"],
            "follow mode runs only with `streamport run",
        ),
        (
            &["task", "--plan", "plan-dir", "--index", "0", "--follow"],
            "`streamport task` runs one window",
        ),
        (
            &["commit", "--plan", "plan-dir", "--follow"],
            "`streamport commit` runs one window",
        ),
    ];
    for (args, message) in cases {
        let out = common::run(ws.engine(args), DEADLINE);
        out.assert_code(2).assert_stderr_has(message);
    }
    let bad = follow_job(
        &ws,
        json!({"follow": {"commitBytes": -5}}),
        json!({}),
        json!({}),
    );
    let out = run_job(&ws, &bad, &[], DEADLINE);
    out.assert_code(2)
        .assert_stderr_has("setting.follow.commitBytes");
    let out = common::run(
        ws.engine(&["plan", bad.to_str().unwrap(), "--plan", "plan-dir"]),
        DEADLINE,
    );
    out.assert_code(2);
    let ok = follow_job(
        &ws,
        json!({"follow": {"commitBytes": 5}}),
        json!({}),
        json!({}),
    );
    let out = common::run(
        ws.engine(&["plan", ok.to_str().unwrap(), "--plan", "plan-dir"]),
        DEADLINE,
    );
    out.assert_code(2)
        .assert_stderr_has("setting.follow: follow mode runs only with `streamport run`");
}

#[test]
fn a_batch_whose_reader_post_failed_is_replayed_under_the_same_fingerprint() {
    let ws = Workspace::new();
    let job = follow_job(&ws, json!({}), json!({"follow_records": [3, 3]}), json!({}));
    let args = [
        "run",
        job.to_str().unwrap(),
        "--follow",
        "--commit-interval",
        "0.2",
        "--summary-json",
        "s.json",
    ];
    let mut cmd = ws.engine(&args);
    cmd.env("MISBEHAVE_FAIL_READER_STEP", "post");
    let out = common::run(cmd, DEADLINE);
    // The writer committed; the reader's checkpoint did not move.
    out.assert_code(1);
    let s = summary(&ws, &out);
    assert_eq!(s["committed"], "all", "{s}");
    let first = calls(&ws);
    let posted = first.iter().find(|l| l.starts_with("writer post")).unwrap();
    // The restart replays the batch: same followBatch, same fingerprint, so the
    // writer's idempotent post finds it done instead of adding it again.
    std::fs::remove_file(ws.path("calls.log")).unwrap();
    let (child, started) = start(&ws, &job, &["--commit-interval", "0.2"]);
    wait_for_calls(&ws, "reader post", 1);
    kill(child.id(), "-TERM");
    finish(child, started, DEADLINE).assert_code(0);
    let second = calls(&ws);
    let replayed = second
        .iter()
        .find(|l| l.starts_with("writer post"))
        .unwrap();
    assert_eq!(fp(posted), fp(replayed));
    let split = second
        .iter()
        .find(|l| l.starts_with("reader split"))
        .unwrap();
    assert!(split.ends_with("batch=00000000"), "{split}");
}
