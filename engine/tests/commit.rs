//! The commit under signals, the stall watchdog and the post timeout; what the summary
//! says was committed; plugins dying with a killed engine.

// Tests (and their helpers) may unwrap.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{finish, run_job, Outcome, Workspace};
use serde_json::{json, Value as Json};

const DEADLINE: Duration = Duration::from_secs(60);

/// Starts `engine run job.json --summary-json s.json extra…` with piped output.
fn start(ws: &Workspace, job: &Path, extra: &[&str]) -> (Child, Instant) {
    let mut args = vec!["run", job.to_str().unwrap(), "--summary-json", "s.json"];
    args.extend_from_slice(extra);
    let child = ws
        .engine(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, Instant::now())
}

/// Waits until `name` exists in the workspace; its text.
fn wait_for(ws: &Workspace, name: &str) -> String {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(ws.path(name)) {
            if !text.is_empty() {
                return text;
            }
        }
        assert!(started.elapsed() < DEADLINE, "{name} never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Whether the process is gone (a zombie waiting for a reaper counts as gone).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn assert_gone_soon(pid: &str, what: &str) {
    let started = Instant::now();
    while !gone(pid) {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{what} (pid {pid}) outlived the engine"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A job whose writer's `post` takes `post_ms`.
fn slow_post_job(ws: &Workspace, setting: Json, writer: Json) -> std::path::PathBuf {
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    let mut w = json!({"marker_dir": marker, "post_ms": 1500});
    if let (Some(w), Some(extra)) = (w.as_object_mut(), writer.as_object()) {
        w.extend(extra.clone());
    }
    ws.job(
        setting,
        (
            "misbehave",
            json!({"tasks": 2, "records": 10, "marker_dir": marker}),
        ),
        ("misbehave", w),
    )
}

fn summary(ws: &Workspace, out: &Outcome) -> Json {
    let s = ws.read_json("s.json");
    assert_eq!(s["exit_code"], out.code, "{s}");
    s
}

#[test]
fn a_signal_during_post_waits_for_the_commit_and_succeeds() {
    for signal in ["-TERM", "-INT"] {
        let ws = Workspace::new();
        let job = slow_post_job(&ws, json!({}), json!({}));
        let (child, started) = start(&ws, &job, &[]);
        wait_for(&ws, "writer-post.pid");
        kill(child.id(), signal);
        let out = finish(child, started, DEADLINE);
        out.assert_code(0)
            .assert_stderr_has("received during the commit: waiting for it to complete")
            .assert_stderr_has("arrived during the commit; the commit completed");
        let s = summary(&ws, &out);
        assert_eq!(s["outcome"], "succeeded");
        assert_eq!(s["committed"], "all");
        assert!(ws.path("writer-post.json").exists());
        // The reader's post runs after a writer post that completed despite the signal.
        assert!(ws.path("reader-post.json").exists(), "{}", out.stderr);
        assert!(!ws.path("writer-abort.json").exists());
    }
}

#[test]
fn the_stall_watchdog_does_not_cancel_post() {
    let ws = Workspace::new();
    let job = slow_post_job(&ws, json!({}), json!({}));
    let out = run_job(
        &ws,
        &job,
        &["--stall-timeout", "0.5", "--summary-json", "s.json"],
        DEADLINE,
    );
    out.assert_code(0);
    assert_eq!(summary(&ws, &out)["committed"], "all");
    assert!(ws.path("reader-post.json").exists());
}

#[test]
fn a_second_signal_stops_the_commit_and_aborts_with_the_reports() {
    let ws = Workspace::new();
    let job = slow_post_job(
        &ws,
        json!({}),
        json!({"post_ms": 30000, "abort_answer": {"committed": "partial", "detail": "object a__01 is visible; a re-run replaces it"}}),
    );
    let (child, started) = start(&ws, &job, &[]);
    let post_pid = wait_for(&ws, "writer-post.pid");
    let pid = child.id();
    kill(pid, "-INT");
    std::thread::sleep(Duration::from_millis(300));
    kill(pid, "-INT");
    let second = Instant::now();
    let out = finish(child, started, DEADLINE);
    assert!(
        second.elapsed() < Duration::from_secs(3),
        "took {:?} after the second signal",
        second.elapsed()
    );
    out.assert_code(130)
        .assert_stderr_has("received again: stopping the commit")
        .assert_stderr_has("Committed     : partial")
        .assert_stderr_has("object a__01 is visible");
    let s = summary(&ws, &out);
    assert_eq!(s["outcome"], "interrupted");
    assert_eq!(s["committed"], "partial");
    assert_eq!(
        s["commit_detail"],
        "object a__01 is visible; a re-run replaces it"
    );
    let abort = ws.read_json("writer-abort.json");
    assert_eq!(abort["reports"].as_array().unwrap().len(), 2, "{abort}");
    assert!(gone(&post_pid), "the post step was not killed");
    assert!(!ws.path("writer-post.json").exists());
    assert!(!ws.path("reader-post.json").exists());
}

#[test]
fn the_post_timeout_stops_the_commit_and_says_nothing_is_known() {
    // The job's setting, and the command line winning over it.
    for (setting, extra) in [
        (json!({"postTimeoutSeconds": 1}), vec![]),
        (
            json!({"postTimeoutSeconds": 600}),
            vec!["--post-timeout", "1"],
        ),
    ] {
        let ws = Workspace::new();
        let job = slow_post_job(&ws, setting, json!({"post_ms": 30000}));
        let (child, started) = start(&ws, &job, &extra);
        let out = finish(child, started, DEADLINE);
        out.assert_code(1)
            .assert_stderr_has("did not finish within the post timeout of 1 s");
        assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
        let s = summary(&ws, &out);
        assert_eq!(s["outcome"], "failed");
        // The test writer's abort answers null: nothing established what is visible.
        assert_eq!(s["committed"], "unknown");
        assert!(
            s["commit_detail"]
                .as_str()
                .unwrap()
                .contains("did not say what became visible"),
            "{s}"
        );
        let abort = ws.read_json("writer-abort.json");
        assert_eq!(abort["reports"].as_array().unwrap().len(), 2, "{abort}");
        assert!(!ws.path("reader-post.json").exists());
    }
}

#[test]
fn the_abort_answer_is_what_the_summary_reports() {
    let ws = Workspace::new();
    let job = slow_post_job(
        &ws,
        json!({}),
        json!({"post_ms": 0, "fail_step": "post",
               "abort_answer": {"committed": "none", "detail": "no reported upload was completed"}}),
    );
    let out = run_job(&ws, &job, &["--summary-json", "s.json"], DEADLINE);
    out.assert_code(1)
        .assert_stderr_has("no reported upload was completed");
    let s = summary(&ws, &out);
    assert_eq!(s["committed"], "none");
    assert_eq!(s["commit_detail"], "no reported upload was completed");
    let abort = ws.read_json("writer-abort.json");
    assert_eq!(abort["reports"].as_array().unwrap().len(), 2, "{abort}");

    // A job failing before its post: the abort has no reports, nothing was committed.
    let ws = Workspace::new();
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    let job = ws.job(
        json!({}),
        ("misbehave", json!({"mode": "error", "marker_dir": marker})),
        ("misbehave", json!({"marker_dir": marker})),
    );
    let out = run_job(&ws, &job, &["--summary-json", "s.json"], DEADLINE);
    out.assert_code(1);
    let s = summary(&ws, &out);
    assert_eq!(s["committed"], "none");
    assert!(
        s["commit_detail"]
            .as_str()
            .unwrap()
            .contains("post never started"),
        "{s}"
    );
    let abort = ws.read_json("writer-abort.json");
    assert_eq!(abort["reports"], json!([]));
}

#[test]
fn without_streamport_exec_beside_it_the_engine_launches_plugins_itself() {
    // A lone copy of the engine (no streamport-exec beside it) starts its plugins
    // through `engine __exec-plugin`: they still run, and still die with it.
    let ws = Workspace::new();
    let lone = ws.path("lone");
    std::fs::create_dir(&lone).unwrap();
    let engine = lone.join("engine");
    std::fs::copy(common::engine_bin(), &engine).unwrap();
    let plugins = common::engine_bin()
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    let run = |reader: Json| {
        let job = ws.job(
            json!({}),
            ("misbehave", reader),
            ("misbehave", json!({"marker_dir": marker})),
        );
        let mut cmd = std::process::Command::new(&engine);
        cmd.args(["run", job.to_str().unwrap(), "--plugin-dir", &plugins])
            .current_dir(ws.dir.path())
            .env_remove("MISBEHAVE_MODE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let out = run(json!({"records": 10, "marker_dir": marker}))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(ws.path("writer-post.json").exists(), "the job committed");

    let mut child = run(json!({"records": 10, "task_ms": 30000, "marker_dir": marker}))
        .spawn()
        .unwrap();
    let task_pid = wait_for(&ws, "reader-task-0.pid");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_gone_soon(&task_pid, "the reader task");
}

/// Whether process `pid` was started with `--engine-pid` (directly by the engine,
/// not through its launcher).
fn started_directly(pid: &str) -> bool {
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).unwrap_or_default();
    cmdline.split(|b| *b == 0).any(|arg| arg == b"--engine-pid")
}

#[test]
fn steps_and_tasks_die_with_a_killed_engine() {
    // Plugins whose answers offer `--engine-pid` have their later steps started
    // directly, and guard themselves; the others go through the launcher, as tasks
    // always do. Both must die.
    for guard in [true, false] {
        // During a task: the reader task (and its writer) must not outlive the engine.
        let ws = Workspace::new();
        let marker = ws.dir.path().to_str().unwrap().to_owned();
        let job = ws.job(
            json!({}),
            (
                "misbehave",
                json!({"records": 10, "task_ms": 30000, "marker_dir": marker,
                       "parent_death_guard": guard}),
            ),
            ("misbehave", json!({"marker_dir": marker})),
        );
        let (mut child, _) = start(&ws, &job, &[]);
        let task_pid = wait_for(&ws, "reader-task-0.pid");
        // Tasks always start through the launcher.
        assert!(!started_directly(&task_pid), "guard {guard}");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_gone_soon(&task_pid, "the reader task");
        // The step sessions, idle while the task ran (the process that ran `prepare`
        // also runs `post`), die too.
        let steps = std::fs::read_to_string(ws.path("steps.log")).unwrap();
        let sessions: Vec<&str> = steps
            .lines()
            .filter(|l| l.contains(" prepare "))
            .filter_map(|l| l.rsplit(' ').next())
            .collect();
        assert_eq!(sessions.len(), 2, "{steps}");
        for pid in sessions {
            assert_gone_soon(pid, "a step session");
        }

        // During the writer's post: an orphan post would commit behind a re-run's back.
        let ws = Workspace::new();
        let job = slow_post_job(
            &ws,
            json!({}),
            json!({"post_ms": 2000, "parent_death_guard": guard}),
        );
        let (mut child, _) = start(&ws, &job, &[]);
        let post_pid = wait_for(&ws, "writer-post.pid");
        assert_eq!(started_directly(&post_pid), guard, "guard {guard}");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_gone_soon(&post_pid, "the writer's post");
        std::thread::sleep(Duration::from_millis(2500));
        assert!(
            !ws.path("writer-post.json").exists(),
            "the orphaned post committed (guard {guard})"
        );
    }
}

/// A plugin started with `--engine-pid` of a process that is not its parent (the
/// engine died before it started) ends at once instead of running unguarded.
#[test]
fn a_plugin_whose_engine_is_gone_does_not_start() {
    common::plugins_built();
    // reader-stream guards itself through `protocol::runtime`, reader-misbehave by hand.
    for plugin in ["reader-stream", "reader-misbehave"] {
        let path = common::engine_bin().with_file_name(plugin);
        // pid 1 is not this test process, the plugin's parent: "the engine" is gone.
        let out = std::process::Command::new(&path)
            .args(["check", "--engine", "--engine-pid", "1"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{plugin}: {stderr}");
        assert!(
            stderr.contains("the engine ended before the plugin started"),
            "{plugin}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{plugin} answered the step");
    }
}

/// A plugin behind a wrapper that forks it (its parent is the wrapper, not the engine)
/// answers with another process id than the engine started: its steps keep being
/// started through the launcher, and the job runs (a direct start would make it refuse
/// to run, its parent not being the engine).
#[test]
fn a_plugin_behind_a_forking_wrapper_keeps_the_launcher() {
    let ws = Workspace::new();
    let plugins = ws.path("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let real = common::engine_bin().with_file_name("reader-misbehave");
    let wrapper = plugins.join("reader-forked");
    // No `exec`: the shell forks the plugin and waits for it.
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\n\"{}\" \"$@\"\n", real.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    let job = ws.job(
        json!({}),
        (
            "forked",
            json!({"records": 10, "task_ms": 1500, "marker_dir": marker}),
        ),
        ("misbehave", json!({})),
    );
    let (child, started) = start(&ws, &job, &["--plugin-dir", plugins.to_str().unwrap()]);
    let task_pid = wait_for(&ws, "reader-task-0.pid");
    assert!(
        !started_directly(&task_pid),
        "the wrapped reader got --engine-pid"
    );
    let out = finish(child, started, DEADLINE);
    out.assert_code(0);
    assert_eq!(summary(&ws, &out)["outcome"], "succeeded");
}
