//! The bad-input suite (issue 14, items 6, 7, 9, 10, 11): inputs that used to be taken
//! wrongly are refused with exit 2 and a message naming what and where, or taken
//! exactly as given; secrets never appear. Plugin parameters (endpoint, securityToken,
//! statusTable) are in each plugin's own bad-input tests.

// Tests (and their helpers) may unwrap.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{run, Outcome, Workspace};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(30);

/// A job whose one record holds `value_text` (pasted as written into the column's
/// `"value"`), with `channel_text` as `setting.speed.channel`.
fn job(ws: &Workspace, channel_text: &str, value_text: &str) -> String {
    let text = format!(
        r#"{{"job": {{"setting": {{"speed": {{"channel": {channel_text}}}}},
  "content": [{{"reader": {{"name": "streamreader", "parameter": {{"sliceRecordCount": 1,
    "column": [{{"value": {value_text}}}]}}}},
  "writer": {{"name": "streamwriter", "parameter": {{"print": true}}}}}}]}}}}"#
    );
    ws.write("job.json", &text).to_str().unwrap().to_owned()
}

fn engine(ws: &Workspace, job: &str, extra: &[&str]) -> Outcome {
    let mut args = vec!["run", job, "--schedule-time", "2024-03-01 00:05:00"];
    args.extend_from_slice(extra);
    run(ws.engine(&args), DEADLINE)
}

/// The one record the job printed.
fn printed(out: &Outcome) -> String {
    out.assert_code(0);
    out.stdout.lines().next().unwrap_or_default().to_owned()
}

fn refused(out: &Outcome, needles: &[&str]) {
    out.assert_code(2);
    for n in needles {
        out.assert_stderr_has(n);
    }
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn item6_param_values_are_json_escaped_and_cannot_add_keys() {
    let ws = Workspace::new();
    let j = job(&ws, "${n}", "\"${v}\"");
    for (value, expected) in [
        ("a\"b", "a\"b"),
        (r"a\nb", r"a\nb"),
        ("tab\there", "tab\there"),
        // Before: the value closed the string and added a key the reader refused.
        (
            r#"x"}], "sliceRecordCount": 5, "z": [{"value": "y"#,
            r#"x"}], "sliceRecordCount": 5, "z": [{"value": "y"#,
        ),
    ] {
        let v = format!("v={value}");
        let out = engine(&ws, &j, &["-p", "n=1", "-p", &v]);
        assert_eq!(printed(&out), expected, "{}", out.stderr);
    }
}

#[test]
fn item6_an_unquoted_placeholder_takes_one_json_scalar_only() {
    let ws = Workspace::new();
    let j = job(&ws, "${n}", "\"x\"");
    assert_eq!(printed(&engine(&ws, &j, &["-p", "n=2"])), "x");
    for bad in ["n=abc", "n=1, \"record\": 5", "n={}", "n="] {
        refused(
            &engine(&ws, &j, &["-p", bad]),
            &[
                "job.json: line 1, column 43: ${n}: stands outside a JSON string",
                "the value is not shown",
            ],
        );
    }
}

#[test]
fn item7_malformed_expressions_are_errors_naming_them_and_where() {
    let ws = Workspace::new();
    for (expr, reason) in [
        ("$[yyyymmdd-l]", "\"l\" is not a date pattern"),
        ("$[yyyymmdd+abc]", "\"+abc\" is not a date pattern"),
        ("$[yyyymmdd-1x]", "\"-1x\" is not an offset"),
        ("$[hh24mmss]", "mm after an hour is the month"),
    ] {
        let j = job(&ws, "1", &format!("\"pt={expr}\""));
        let out = engine(&ws, &j, &[]);
        refused(
            &out,
            &[&format!("job.json: line 3, column 30: {expr}: {reason}")],
        );
    }
    let j = job(&ws, "1", "\"${d}\"");
    for (value, reason) in [
        (
            "$[yyyymmdd-l]",
            "-p d: $[yyyymmdd-l]: \"l\" is not a date pattern",
        ),
        (
            "$bizmonth",
            "-p d: $bizmonth is a DataWorks built-in the engine does not know",
        ),
        (
            "${yyyymmddhh24}",
            "-p d: ${yyyymmddhh24}: hh24 is a time of day",
        ),
        ("${x}", "-p d: ${x}: \"x\" is not a date pattern"),
    ] {
        refused(&engine(&ws, &j, &["-p", &format!("d={value}")]), &[reason]);
    }
}

#[test]
fn item7_dataworks_shorthands_in_params_are_evaluated() {
    let ws = Workspace::new();
    let j = job(&ws, "1", "\"${d}\"");
    for (value, expected) in [
        ("$bizdate", "20240229"),
        ("$cyctime", "20240301000500"),
        ("$gmtdate", "20240301"),
        ("${yyyymmdd}", "20240229"),
        ("${yyyy-mm-dd-1}", "2024-02-28"),
        ("$[yyyymmddhh24mi-5/24/60]", "202403010000"),
        ("$$bizdate", "$bizdate"),
    ] {
        let out = engine(&ws, &j, &["-p", &format!("d={value}")]);
        assert_eq!(printed(&out), expected, "{value}: {}", out.stderr);
    }
}

#[test]
fn item9_configuration_errors_exit_2_and_the_summary_is_always_written() {
    let ws = Workspace::new();
    // A non-plugin executable named as a plugin.
    let np = ws.job(
        json!({}),
        ("/bin/true", json!({})),
        ("streamwriter", json!({"print": false})),
    );
    refused(
        &engine(&ws, np.to_str().unwrap(), &[]),
        &["true (/bin/true) is not a streamport plugin"],
    );
    // An unwritable summary path fails before anything runs.
    let j = job(&ws, "1", "\"x\"");
    let out = engine(&ws, &j, &["--summary-json", "/nonexistent/dir/s.json"]);
    refused(
        &out,
        &["--summary-json /nonexistent/dir/s.json: cannot write there"],
    );
    assert!(
        !out.stderr.contains("reader-stream"),
        "a plugin ran: {}",
        out.stderr
    );
    // The summary of runs that cannot start.
    let missing = engine(&ws, "missing.json", &["--summary-json", "s1.json"]);
    refused(&missing, &["missing.json"]);
    let unset = job(&ws, "1", "\"${v}\"");
    refused(
        &engine(&ws, &unset, &["--summary-json", "s2.json"]),
        &["variable ${v} is not set"],
    );
    for (file, error) in [("s1.json", "missing.json"), ("s2.json", "${v} is not set")] {
        let s = ws.read_json(file);
        assert_eq!(s["outcome"], "configuration error", "{s}");
        assert_eq!(s["exit_code"], 2);
        assert!(s["error"].as_str().unwrap().contains(error), "{s}");
    }
}

#[test]
fn item10_channel_is_bounded_before_anything_is_allocated() {
    let ws = Workspace::new();
    for (channel, key) in [
        (
            "1e9",
            "setting.speed.channel = 1000000000: at most 128 channels",
        ),
        ("129", "setting.speed.channel = 129: at most 128 channels"),
    ] {
        let out = engine(&ws, &job(&ws, channel, "\"x\""), &[]);
        refused(&out, &[key]);
        assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
    }
    // A plugin asked for an absurd split refuses before allocating per task.
    let config = ws.write(
        "p.json",
        r#"{"sliceRecordCount": 1, "column": [{"value": "x"}]}"#,
    );
    let reader = common::engine_bin().parent().unwrap().join("reader-stream");
    let mut cmd = std::process::Command::new(reader);
    cmd.args(["split", "--count", "1000000000", "--config"])
        .arg(&config);
    let out = run(cmd, DEADLINE);
    refused(&out, &["split --count 1000000000: at most 128 tasks"]);
}

#[test]
fn item11_secrets_are_never_echoed_whatever_their_form() {
    let ws = Workspace::new();
    let j = job(&ws, "1", "\"x\"");
    let out = engine(&ws, &j, &["-p", "sk:SECRETVALUE"]);
    refused(&out, &["-p argument 1 is not NAME=VALUE"]);
    assert!(!out.stderr.contains("SECRETVALUE"), "{}", out.stderr);
    let numeric = ws.job(
        json!({}),
        (
            "streamreader",
            json!({"sliceRecordCount": 1, "column": [{"value": "x"}], "accessKey": 987654321}),
        ),
        ("streamwriter", json!({"print": false})),
    );
    let out = engine(&ws, numeric.to_str().unwrap(), &[]);
    out.assert_stderr_has("\"accessKey\":\"******\"");
    assert!(!out.stderr.contains("987654321"), "{}", out.stderr);
}
