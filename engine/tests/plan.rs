//! Distributed mode with real processes over a local plan directory: `plan` writes
//! the plan once, `task` reports each index once however often it runs, `commit`
//! needs every report, applies the job-wide error limit and runs `post` exactly once,
//! `abort` undoes an unfinished plan.

// Tests (and their helpers) may unwrap.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{run, Outcome, Workspace};
use serde_json::{json, Value as Json};

const DEADLINE: Duration = Duration::from_secs(60);

fn cmd(ws: &Workspace, args: &[&str]) -> Outcome {
    let plan = ws.path("plan");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--plan", plan.to_str().unwrap()]);
    run(ws.engine(&all), DEADLINE)
}

fn summary(ws: &Workspace, args: &[&str]) -> (Outcome, Json) {
    let mut all = args.to_vec();
    all.extend(["--summary-json", "s.json"]);
    let out = cmd(ws, &all);
    let s = ws.read_json("s.json");
    (out, s)
}

fn job(ws: &Workspace, setting: Json, reader: Json) -> String {
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    let mut reader = reader;
    reader["marker_dir"] = json!(marker);
    ws.job(
        setting,
        ("misbehave", reader),
        ("misbehave", json!({"marker_dir": marker})),
    )
    .to_str()
    .unwrap()
    .to_owned()
}

#[test]
fn plan_tasks_and_commit_run_post_exactly_once() {
    let ws = Workspace::new();
    let job = job(
        &ws,
        json!({"speed": {"channel": "3"}}),
        json!({"records": 120}),
    );
    let (out, s) = summary(&ws, &["plan", &job]);
    out.assert_code(0);
    assert_eq!(
        (s["tasks"].clone(), s["committed"].clone()),
        (json!(3), json!("none"))
    );
    let plan = ws.read_json("plan/plan.json");
    assert_eq!(plan["task_count"], 3);
    assert_eq!(
        plan["writer"]["state"],
        json!({"prepared_by": "writer-misbehave"})
    );
    // A retried plan step does nothing.
    cmd(&ws, &["plan", &job])
        .assert_code(0)
        .assert_stderr_has("already holds the plan of this job");

    // No report yet: nothing is committed.
    cmd(&ws, &["commit"])
        .assert_code(1)
        .assert_stderr_has("3 of 3 tasks have no report yet (indexes [0, 1, 2])");
    assert!(!ws.path("writer-post.json").exists());

    for i in ["2", "0", "1"] {
        let (out, s) = summary(&ws, &["task", "--index", i]);
        out.assert_code(0);
        assert_eq!(s["records"], 120, "{i}");
    }
    // Run again (a retry, a second pod): the first report stays.
    let before = std::fs::read(ws.path("plan/reports/1.json")).unwrap();
    cmd(&ws, &["task", "--index", "1"])
        .assert_code(0)
        .assert_stderr_has("task 1 was already reported by attempt");
    assert_eq!(
        std::fs::read(ws.path("plan/reports/1.json")).unwrap(),
        before
    );
    // An index past the task count (a Job with more completions) has nothing to do.
    cmd(&ws, &["task", "--index", "7"])
        .assert_code(0)
        .assert_stderr_has("the plan has 3 tasks: index 7 has nothing to do");

    let (out, s) = summary(&ws, &["commit"]);
    out.assert_code(0);
    assert_eq!(s["committed"], "all");
    assert_eq!(s["records"], 360);
    let post = ws.read_json("writer-post.json");
    assert_eq!(
        post["reports"],
        json!([{"task": 0, "records": 120}, {"task": 1, "records": 120}, {"task": 2, "records": 120}])
    );
    assert_eq!(post["fingerprint"], plan["fingerprint"]);
    assert_eq!(
        ws.read_json("reader-post.json")["reports"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert_eq!(ws.read_json("plan/commit.json")["state"], "committed");

    // The commit again: post does not run again.
    std::fs::remove_file(ws.path("writer-post.json")).unwrap();
    let (out, s) = summary(&ws, &["commit"]);
    out.assert_code(0).assert_stderr_has("already committed at");
    assert_eq!(s["committed"], "all");
    assert!(!ws.path("writer-post.json").exists());
    // Nothing to undo, and tasks have nothing to do.
    cmd(&ws, &["abort"])
        .assert_code(1)
        .assert_stderr_has("there is nothing to undo");
    cmd(&ws, &["task", "--index", "0"])
        .assert_code(0)
        .assert_stderr_has("already committed");
    assert!(!ws.path("writer-abort.json").exists());
}

#[test]
fn the_error_limit_is_checked_over_every_task_at_commit() {
    let ws = Workspace::new();
    // 2 tasks of 100 records, 1 in 10 dirty: 10 % each, 10 % overall, over 5 %.
    let job = job(
        &ws,
        json!({"speed": {"channel": "2"}, "errorLimit": {"percentage": 0.05}}),
        json!({"records": 100, "dirty_every": 10}),
    );
    cmd(&ws, &["plan", &job]).assert_code(0);
    for i in ["0", "1"] {
        cmd(&ws, &["task", "--index", i]).assert_code(0);
    }
    let (out, s) = summary(&ws, &["commit"]);
    out.assert_code(3).assert_stderr_has("error limit exceeded");
    assert_eq!(s["committed"], "none");
    assert!(!ws.path("writer-post.json").exists());
    assert_eq!(ws.read_json("writer-abort.json")["reports"], json!([]));
    assert_eq!(ws.read_json("plan/commit.json")["state"], "aborted");
    cmd(&ws, &["commit"])
        .assert_code(1)
        .assert_stderr_has("was aborted");
}

#[test]
fn abort_undoes_an_unfinished_plan() {
    let ws = Workspace::new();
    let job = job(
        &ws,
        json!({"speed": {"channel": "2"}}),
        json!({"records": 10}),
    );
    cmd(&ws, &["plan", &job]).assert_code(0);
    cmd(&ws, &["task", "--index", "0"]).assert_code(0);
    let (out, s) = summary(&ws, &["abort"]);
    out.assert_code(0);
    assert_eq!(s["committed"], "none");
    // post never started: the abort request has no reports.
    assert_eq!(ws.read_json("writer-abort.json")["reports"], json!([]));
    assert!(!ws.path("writer-post.json").exists());
    cmd(&ws, &["task", "--index", "1"])
        .assert_code(1)
        .assert_stderr_has("was aborted");
    cmd(&ws, &["commit"]).assert_code(1);
    assert!(!ws.path("writer-post.json").exists());
}

#[test]
fn bad_plan_locations_and_missing_plans_are_configuration_errors() {
    let ws = Workspace::new();
    cmd(&ws, &["commit"])
        .assert_code(2)
        .assert_stderr_has("no plan at");
    let out = run(
        ws.engine(&["task", "--plan", "oss://bucket", "--index", "0"]),
        DEADLINE,
    );
    out.assert_code(2)
        .assert_stderr_has("give a prefix under the bucket");
    let mut no_index = ws.engine(&["task", "--plan", "oss://bucket/plans/x"]);
    no_index.env_remove("JOB_COMPLETION_INDEX");
    let out = run(no_index, DEADLINE);
    out.assert_code(2).assert_stderr_has("--index");
}
