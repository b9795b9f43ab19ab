//! One log for the engine and its plugins: the level flags and `STREAMPORT_LOG` reach
//! the plugins, intended cancellations are INFO, and `--log-file` keeps the job's log.

// Tests (and their helpers) may unwrap.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{run, run_job, Workspace};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(120);

fn small_job(ws: &Workspace) -> std::path::PathBuf {
    ws.job(
        json!({"speed": {"channel": 1}}),
        (
            "streamreader",
            json!({"sliceRecordCount": 10, "column": [{"type": "long", "value": "1"}]}),
        ),
        ("streamwriter", json!({"print": false})),
    )
}

/// The level of a log line (`<time> <LEVEL> …`).
fn level(line: &str) -> &str {
    line.split_whitespace().nth(1).unwrap_or_default()
}

/// The lines before the summary.
fn before_summary(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .take_while(|l| !l.ends_with(" INFO summary"))
        .collect()
}

#[test]
fn quiet_hides_the_info_lines_of_the_engine_and_its_plugins() {
    let ws = Workspace::new();
    let job = small_job(&ws);
    let mut cmd = ws.engine(&["-q", "run", job.to_str().unwrap()]);
    // The flag wins over the environment.
    cmd.env("STREAMPORT_LOG", "debug");
    let out = run(cmd, DEADLINE);
    out.assert_code(0)
        .assert_stderr_has("Outcome       : succeeded");
    let shown: Vec<&str> = before_summary(&out.stderr)
        .into_iter()
        .filter(|l| matches!(level(l), "INFO" | "DEBUG" | "TRACE"))
        .collect();
    assert!(shown.is_empty(), "{shown:#?}");
    // Without -q the same job shows the engine's and the plugins' INFO lines.
    let out = run_job(&ws, &job, &[], DEADLINE);
    out.assert_code(0)
        .assert_stderr_has(" INFO reader-stream check")
        .assert_stderr_has(" INFO [writer-stream post] ");
}

#[test]
fn streamport_log_reaches_the_plugins() {
    let ws = Workspace::new();
    let job = small_job(&ws);
    let mut cmd = ws.engine(&["run", job.to_str().unwrap()]);
    cmd.env("STREAMPORT_LOG", "debug");
    let out = run(cmd, DEADLINE);
    out.assert_code(0)
        .assert_stderr_has(" DEBUG task 0: started reader-stream")
        .assert_stderr_has(" DEBUG [task 0 reader-stream] task 0 of 1 of job ")
        .assert_stderr_has(" DEBUG [task 0 writer-stream] task 0 of 1 of job ");
    // A directive for the engine's modules only: the plugins stay at info.
    let out = run_job(&ws, &job, &["--log-level", "info,engine=debug"], DEADLINE);
    out.assert_code(0)
        .assert_stderr_has(" DEBUG task 0: started reader-stream");
    assert!(!out.stderr.contains("DEBUG ["), "{}", out.stderr);
    // -v is debug for everyone.
    let out = run_job(&ws, &job, &["-v"], DEADLINE);
    out.assert_code(0)
        .assert_stderr_has(" DEBUG [task 0 writer-stream] ");
}

#[test]
fn a_bad_log_filter_is_a_usage_error_naming_it() {
    let ws = Workspace::new();
    let job = small_job(&ws);
    let mut cmd = ws.engine(&["run", job.to_str().unwrap()]);
    cmd.env("STREAMPORT_LOG", "info,=[");
    let out = run(cmd, DEADLINE);
    out.assert_code(2).assert_stderr_has("STREAMPORT_LOG");
}

#[test]
fn tasks_cancelled_because_another_failed_log_at_info() {
    let ws = Workspace::new();
    let marker = ws.dir.path().to_str().unwrap().to_owned();
    // Task 1's writer fails at once; task 0's reader (3 million records) is cancelled.
    let job = ws.job(
        json!({"speed": {"channel": 2}}),
        (
            "streamreader",
            json!({"sliceRecordCount": 3000000, "column": [{"type": "long", "value": "1"}]}),
        ),
        (
            "misbehave",
            json!({"marker_dir": marker, "mode": "error", "only_task": 1}),
        ),
    );
    let out = run_job(&ws, &job, &[], DEADLINE);
    out.assert_code(1);
    let cancelled: Vec<&str> = out
        .stderr
        .lines()
        // Task 0's reader learns of it either from the engine's cancel or from its
        // writer, cancelled first, closing the pipe: both are intended stops.
        .filter(|l| {
            l.contains("[task 0 reader-stream]")
                && (l.contains("cancelled") || l.contains("pipe was closed"))
        })
        .collect();
    assert!(!cancelled.is_empty(), "{}", out.stderr);
    assert!(
        cancelled.iter().all(|l| level(l) == "INFO"),
        "{cancelled:#?}"
    );
    // The one error is the failure itself.
    let errors: Vec<&str> = out.stderr.lines().filter(|l| level(l) == "ERROR").collect();
    assert!(!errors.is_empty(), "{}", out.stderr);
    assert!(
        errors
            .iter()
            .all(|l| l.contains("simulated service failure")),
        "{errors:#?}"
    );
}

#[test]
fn an_interrupted_job_logs_no_error() {
    let ws = Workspace::new();
    let job = ws.job(
        json!({"speed": {"channel": 2, "record": 2000}}),
        (
            "streamreader",
            json!({"sliceRecordCount": 100000, "column": [{"type": "long", "value": "1"}]}),
        ),
        ("streamwriter", json!({"print": false})),
    );
    let started = Instant::now();
    let child = ws
        .engine(&["run", job.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = common::finish(child, started, DEADLINE);
    out.assert_code(130)
        .assert_stderr_has(" INFO SIGINT received: cancelling the tasks")
        .assert_stderr_has(" INFO job stopped: interrupted by SIGINT")
        .assert_stderr_has("cancelled by the engine: interrupted by SIGINT");
    // Nothing went wrong: no ERROR, no WARN.
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| matches!(level(l), "ERROR" | "WARN"))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn log_file_keeps_the_jobs_log_in_dataxs_layout() {
    let ws = Workspace::new();
    let job = small_job(&ws);
    // A directory (here given with a trailing slash, not there yet): DataX's log/ layout.
    let out = run_job(&ws, &job, &["--log-file", "log/"], DEADLINE);
    out.assert_code(0);
    let days: Vec<_> = std::fs::read_dir(ws.path("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(days.len(), 1, "{days:?}");
    let day = days[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d").is_ok(),
        "{day}"
    );
    let files: Vec<_> = std::fs::read_dir(&days[0])
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    // The job's path, its last 20 characters with / and . as _, then HH_mm_ss.SSS.
    let path = job.to_str().unwrap();
    let tail: String = path.chars().skip(path.chars().count() - 20).collect();
    let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
    let prefix = format!("{}-", tail.replace(['/', '.'], "_"));
    assert!(
        name.starts_with(&prefix) && name.ends_with(".log"),
        "{name} vs {prefix}"
    );
    let time = &name[prefix.len()..name.len() - ".log".len()];
    assert!(
        chrono::NaiveTime::parse_from_str(time, "%H_%M_%S%.3f").is_ok(),
        "{time}"
    );
    let log = std::fs::read_to_string(&files[0]).unwrap();
    for text in [
        " INFO reader-stream check",
        " INFO [writer-stream post] ",
        " INFO summary",
        "Outcome       : succeeded",
    ] {
        assert!(log.contains(text), "the log file lacks {text:?}:\n{log}");
    }
    assert!(!log.contains('\x1b'), "ANSI codes in the log file");
    // What stderr showed, the file has (stderr may have more: nothing before the file
    // was opened).
    for line in out.stderr.lines().filter(|l| l.contains(" post")) {
        assert!(log.contains(line), "{line:?} is not in the log file");
    }
    // A file path is the file.
    let out = run_job(&ws, &job, &["--log-file", "run.log", "-q"], DEADLINE);
    out.assert_code(0);
    let log = std::fs::read_to_string(ws.path("run.log")).unwrap();
    assert!(log.contains("Outcome       : succeeded"), "{log}");
    assert!(
        !log.contains(" INFO reader-stream check"),
        "-q holds for the file too"
    );
}

#[test]
fn an_unwritable_log_file_is_a_usage_error_with_a_summary() {
    let ws = Workspace::new();
    let job = small_job(&ws);
    ws.write("file", "");
    let out = run_job(
        &ws,
        &job,
        &["--log-file", "file/sub/run.log", "--summary-json", "s.json"],
        DEADLINE,
    );
    out.assert_code(2)
        .assert_stderr_has("--log-file: cannot create");
    let s = ws.read_json("s.json");
    assert_eq!(s["outcome"], "configuration error", "{s}");
}
