//! The lifecycle with real processes: step order, what `post` receives, the job
//! context, variables, data sources and secrets, writer output, signals.

// Tests (and their helpers) may unwrap.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{finish, run_job, Workspace};
use serde_json::{json, Value as Json};

const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn post_gets_reports_and_checkpoints_in_task_order() {
    let ws = Workspace::new();
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    let job = ws.job(
        json!({"speed": {"channel": "2"}}),
        ("misbehave", json!({"records": 250, "marker_dir": marker})),
        ("misbehave", json!({"marker_dir": marker})),
    );
    // The misbehaving reader's split returns as many tasks as advised: 2 channels → 2.
    let out = run_job(&ws, &job, &["--summary-json", "s.json"], DEADLINE);
    out.assert_code(0);
    let post = ws.read_json("writer-post.json");
    assert_eq!(
        post["reports"],
        json!([{"task": 0, "records": 250}, {"task": 1, "records": 250}])
    );
    assert_eq!(post["state"], json!({"prepared_by": "writer-misbehave"}));
    let fingerprint = post["fingerprint"].as_str().unwrap();
    assert_eq!(fingerprint.len(), 32);
    assert!(fingerprint.chars().all(|c| c.is_ascii_hexdigit()));
    let reader_post = ws.read_json("reader-post.json");
    let checkpoints = reader_post["reports"].as_array().unwrap();
    // 250 records in batches of 100 → 3 checkpoints per task, task 0's first.
    let expected: Vec<_> = (0..2)
        .flat_map(|t| (0..3).map(move |b| json!({"task": t, "batch": b})))
        .collect();
    assert_eq!(checkpoints, &expected);
    assert!(!ws.path("writer-abort.json").exists());
    let summary = ws.read_json("s.json");
    assert_eq!(summary["records"], 500);
    assert_eq!(summary["tasks"], 2);
    assert_eq!(summary["outcome"], "succeeded");
    // The writer's post runs before the reader's.
    let writer_at = out.stderr.find("writer-misbehave post").unwrap();
    let reader_at = out.stderr.find("reader-misbehave post").unwrap();
    assert!(writer_at < reader_at);
}

/// `(role, step, process id)` of every step a misbehaving plugin ran, in order.
fn steps_log(ws: &Workspace) -> Vec<(String, String, u32)> {
    std::fs::read_to_string(ws.path("steps.log"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[0].to_owned(), f[1].to_owned(), f[2].parse().unwrap())
        })
        .collect()
}

#[test]
fn a_plugin_that_serves_sessions_runs_its_steps_in_one_process() {
    let ws = Workspace::new();
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    // The reader says it serves sessions (misbehave's default), the writer does not.
    let job = ws.job(
        json!({"speed": {"channel": "2"}}),
        ("misbehave", json!({"records": 10, "marker_dir": marker})),
        ("misbehave", json!({"marker_dir": marker, "session": false})),
    );
    run_job(&ws, &job, &[], DEADLINE).assert_code(0);
    let steps = steps_log(&ws);
    let of = |role: &str| -> Vec<(String, u32)> {
        steps
            .iter()
            .filter(|(r, _, _)| r == role)
            .map(|(_, s, pid)| (s.clone(), *pid))
            .collect()
    };
    let reader = of("reader");
    let names: Vec<&str> = reader.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(names, ["check", "prepare", "split", "post"], "{steps:?}");
    // `check` runs alone (its answer is what says the plugin serves sessions); the
    // later steps share one process.
    assert_ne!(reader[0].1, reader[1].1, "{steps:?}");
    assert!(
        reader[1..].iter().all(|(_, pid)| *pid == reader[1].1),
        "{steps:?}"
    );
    let writer = of("writer");
    let names: Vec<&str> = writer.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(names, ["check", "prepare", "split", "post"], "{steps:?}");
    let mut pids: Vec<u32> = writer.iter().map(|(_, pid)| *pid).collect();
    pids.dedup();
    assert_eq!(pids.len(), 4, "a process per step: {steps:?}");
    // DataX's order across the two plugins is kept.
    let order: Vec<String> = steps.iter().map(|(r, s, _)| format!("{r} {s}")).collect();
    let at = |x: &str| order.iter().position(|o| o == x).unwrap();
    assert!(at("reader prepare") < at("writer prepare"));
    assert!(at("writer prepare") < at("reader split"));
    assert!(at("reader split") < at("writer split"));
    assert!(at("writer post") < at("reader post"));
}

#[test]
fn a_runtime_plugin_serves_a_session_until_its_stdin_ends() {
    use std::io::{BufRead, BufReader, Write};
    common::plugins_built();
    let bin = common::engine_bin().parent().unwrap().join("reader-stream");
    let mut child = std::process::Command::new(bin)
        .args(["session", "--engine"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let comm = || std::fs::read_to_string(format!("/proc/{}/comm", child.id())).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while comm().trim() != "session:reader-" {
        assert!(Instant::now() < deadline, "comm {:?}", comm());
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ask = |line: Json| {
        writeln!(stdin, "{line}").unwrap();
        let mut answer = String::new();
        stdout.read_line(&mut answer).unwrap();
        serde_json::from_str::<Json>(&answer).unwrap()
    };
    let parameter = json!({"sliceRecordCount": 10, "column": [{"type": "long", "value": "1"}]});
    let split = ask(
        json!({"step": "split", "request": {"parameter": parameter, "state": null, "count": 3}}),
    );
    assert_eq!(split["ok"], true, "{split}");
    assert_eq!(split["session"], true, "{split}");
    assert_eq!(split["value"].as_array().unwrap().len(), 3, "{split}");
    // A failed step is answered, and the session goes on.
    let bad = ask(json!({"step": "check", "request": {"parameter": "not an object"}}));
    assert_eq!(bad["ok"], false, "{bad}");
    assert_eq!(bad["error"]["kind"], "config", "{bad}");
    let check = ask(json!({"step": "check", "request": {"parameter": parameter}}));
    assert_eq!(check["ok"], true, "{check}");
    drop(stdin);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_step_that_ends_without_answering_fails_the_job_and_the_writer_aborts() {
    // In a session and in a process of its own alike.
    for (session, said) in [
        (
            true,
            "reader-misbehave split: the plugin ended without answering (exit code 3)",
        ),
        (
            false,
            "reader-misbehave split: did not answer a step response (exit code 3)",
        ),
    ] {
        let ws = Workspace::new();
        let marker = ws.dir.path().to_str().unwrap().to_owned();
        let job = ws.job(
            json!({}),
            (
                "misbehave",
                json!({"records": 10, "vanish_step": "split", "session": session}),
            ),
            ("misbehave", json!({"marker_dir": marker})),
        );
        let out = run_job(&ws, &job, &[], DEADLINE);
        out.assert_code(1);
        assert!(out.stderr.contains(said), "{}", out.stderr);
        assert!(out.stderr.contains("vanishing in split"), "{}", out.stderr);
        assert!(ws.path("writer-abort.json").exists(), "{}", out.stderr);
        assert!(!ws.path("writer-post.json").exists(), "{}", out.stderr);
    }
}

#[test]
fn same_window_gives_the_same_fingerprint() {
    let ws = Workspace::new();
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    let job = ws.job(
        json!({}),
        (
            "misbehave",
            json!({"records": 1, "window": "${start}", "marker_dir": marker}),
        ),
        ("misbehave", json!({"marker_dir": marker})),
    );
    let fingerprint = |start: &str| {
        let param = format!("start={start}");
        run_job(&ws, &job, &["-p", &param], DEADLINE).assert_code(0);
        ws.read_json("writer-post.json")["fingerprint"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let first = fingerprint("20240101");
    assert_eq!(first.len(), 32);
    assert_eq!(
        fingerprint("20240101"),
        first,
        "a re-run of the same window"
    );
    assert_ne!(fingerprint("20240102"), first, "another window");
}

#[test]
fn unset_variable_is_a_usage_error_naming_it() {
    let ws = Workspace::new();
    let job = ws.job(
        json!({}),
        (
            "stream",
            json!({"sliceRecordCount": "${count}", "column": [{"value": "x"}]}),
        ),
        ("stream", json!({"print": false})),
    );
    run_job(&ws, &job, &[], DEADLINE)
        .assert_code(2)
        .assert_stderr_has("variable ${count} is not set");
    let count = Workspace::new();
    let job = count.job(
        json!({}),
        (
            "stream",
            json!({"sliceRecordCount": "${count}", "column": [{"value": "x"}]}),
        ),
        ("stream", json!({"print": false})),
    );
    run_job(
        &count,
        &job,
        &["-p", "-Dcount=7 -Dother=1", "--summary-json", "s.json"],
        DEADLINE,
    )
    .assert_code(0);
    assert_eq!(count.read_json("s.json")["records"], 7);
}

#[test]
fn writer_output_reaches_the_engine_stdout() {
    let ws = Workspace::new();
    let job = ws.job(
        json!({"speed": {"channel": 1}}),
        ("streamreader", json!({"sliceRecordCount": 3, "column": [{"type": "string", "value": "hello"}, {"type": "long", "value": 42}]})),
        ("streamwriter", json!({"print": true})),
    );
    let out = run_job(&ws, &job, &[], DEADLINE);
    out.assert_code(0);
    assert_eq!(out.stdout, "hello\t42\nhello\t42\nhello\t42\n");
}

#[test]
fn data_sources_merge_and_secrets_never_show() {
    let ws = Workspace::new();
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    let sources = ws.write(
        "sources.json",
        r#"{"ots_src": {"endpoint": "http://ots.example", "accessId": "id-1", "accessKey": "${env:ENGINE_TEST_SECRET}", "records": 5}}"#,
    );
    // The plugins print the secrets on stderr (`echo`); the engine must mask them.
    let job = ws.job(
        json!({}),
        ("misbehave", json!({"datasource": "ots_src", "records": 3, "marker_dir": marker, "echo": ["accessKey", "endpoint", "records"]})),
        ("misbehave", json!({"marker_dir": marker, "password": "hunter2-pw", "echo": ["password"]})),
    );
    let mut cmd = ws.engine(&[
        "run",
        job.to_str().unwrap(),
        "--datasources",
        sources.to_str().unwrap(),
        "--summary-json",
        "s.json",
    ]);
    cmd.env("ENGINE_TEST_SECRET", "very-secret-value");
    let out = common::run(cmd, DEADLINE);
    out.assert_code(0)
        .assert_stderr_has("endpoint is \"http://ots.example\"")
        .assert_stderr_has("accessKey is \"******\"")
        .assert_stderr_has("password is \"******\"")
        // The parameter's own key wins over the data source's.
        .assert_stderr_has("records is 3");
    assert!(!out.stderr.contains("very-secret-value"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2-pw"), "{}", out.stderr);
    let summary = std::fs::read_to_string(ws.path("s.json")).unwrap();
    assert!(!summary.contains("very-secret-value"));
    assert_eq!(ws.read_json("writer-post.json")["reports"][0]["records"], 3);
}

#[test]
fn unknown_data_source_is_a_usage_error() {
    let ws = Workspace::new();
    let sources = ws.write("sources.json", r#"{"a": {"endpoint": "x"}}"#);
    let job = ws.job(
        json!({}),
        ("misbehave", json!({"datasource": "b"})),
        ("misbehave", json!({})),
    );
    run_job(
        &ws,
        &job,
        &["--datasources", sources.to_str().unwrap()],
        DEADLINE,
    )
    .assert_code(2)
    .assert_stderr_has("reader.parameter.datasource \"b\" is not in");
}

#[test]
fn sigterm_cancels_aborts_the_writer_and_exits_143() {
    interrupted("-TERM", 143, "interrupted by SIGTERM");
}

#[test]
fn sigint_cancels_aborts_the_writer_and_exits_130() {
    interrupted("-INT", 130, "interrupted by SIGINT");
}

fn interrupted(signal: &str, code: i32, message: &str) {
    let ws = Workspace::new();
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    let job = ws.job(
        json!({"speed": {"channel": 2}}),
        ("misbehave", json!({"mode": "hang", "marker_dir": marker})),
        ("misbehave", json!({"marker_dir": marker})),
    );
    let started = Instant::now();
    let mut cmd = ws.engine(&["run", job.to_str().unwrap()]);
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(1500));
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = finish(child, started, DEADLINE);
    out.assert_code(code).assert_stderr_has(message);
    assert!(ws.path("writer-abort.json").exists(), "{}", out.stderr);
    assert!(!ws.path("writer-post.json").exists());
}

#[test]
fn at_most_channel_tasks_run_at_once() {
    let ws = Workspace::new();
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    // The reader splits into 6 tasks of at least 400 ms each; 2 channels.
    let job = ws.job(
        json!({"speed": {"channel": 2}}),
        (
            "misbehave",
            json!({"tasks": 6, "task_ms": 400, "records": 10, "marker_dir": marker}),
        ),
        ("misbehave", json!({"marker_dir": marker})),
    );
    run_job(&ws, &job, &["--summary-json", "s.json"], DEADLINE).assert_code(0);
    assert_eq!(ws.read_json("s.json")["tasks"], 6);
    let spans: Vec<(u64, u64)> = (0..6)
        .map(|i| {
            let t = ws.read_json(&format!("task-{i}.json"));
            (
                t["start_ms"].as_u64().unwrap(),
                t["end_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    let most_at_once = spans
        .iter()
        .map(|(start, _)| {
            spans
                .iter()
                .filter(|(s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .unwrap();
    assert_eq!(most_at_once, 2, "{spans:?}");
    assert_eq!(
        ws.read_json("writer-post.json")["reports"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
}

#[test]
fn steps_form_job_runs() {
    let ws = Workspace::new();
    let job = ws.write(
        "steps.json",
        r#"{"type": "job", "version": "2.0",
            "steps": [
              {"stepType": "stream", "category": "reader", "name": "Reader",
               "parameter": {"sliceRecordCount": 5, "column": [{"type": "long", "sequence": 1}]}},
              {"stepType": "stream", "category": "writer", "name": "Writer", "parameter": {"print": true}}
            ],
            "setting": {"errorLimit": {"record": "0"}, "speed": {"throttle": false, "concurrent": 1, "mbps": "12"}},
            "order": {"hops": [{"from": "Reader", "to": "Writer"}]}}"#,
    );
    let out = run_job(&ws, &job, &[], DEADLINE);
    out.assert_code(0)
        .assert_stderr_has("Data Integration script (steps) format")
        .assert_stderr_has("no speed limit");
    assert_eq!(out.stdout, "1\n2\n3\n4\n5\n");
}
