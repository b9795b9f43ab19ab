//! The job's zone when `setting.timeZone` is absent: the `TZ` environment variable, as
//! the C library reads it; and the offset every log line carries.

// Tests (and their helpers) may unwrap.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{run, Workspace};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(30);

fn check_with_tz(ws: &Workspace, tz: &str) -> common::Outcome {
    let job = ws.job(
        json!({}),
        (
            "stream",
            json!({"sliceRecordCount": 1, "column": [{"type": "long", "value": "1"}]}),
        ),
        ("stream", json!({"print": false})),
    );
    let mut cmd = ws.engine(&["check", job.to_str().unwrap()]);
    cmd.env("TZ", tz);
    run(cmd, DEADLINE)
}

#[test]
fn tz_decides_the_zone_when_the_job_names_none() {
    let ws = Workspace::new();
    for (tz, zone) in [
        ("Asia/Shanghai", "Asia/Shanghai"),
        (":Asia/Shanghai", "Asia/Shanghai"),
        ("/usr/share/zoneinfo/Asia/Shanghai", "Asia/Shanghai"),
        ("CST-8", "Etc/GMT-8"),
        ("UTC", "UTC"),
    ] {
        let out = check_with_tz(&ws, tz);
        out.assert_code(0)
            .assert_stderr_has(&format!("time zone {zone}\n"));
        if zone != "UTC" {
            // Log lines: RFC 3339 with milliseconds and the zone's offset.
            let first = out.stderr.lines().next().unwrap_or_default();
            let stamp = first.split_whitespace().next().unwrap_or_default();
            assert!(stamp.ends_with("+08:00"), "TZ={tz}: {first}");
            chrono::DateTime::parse_from_rfc3339(stamp).unwrap();
        }
    }
}

#[test]
fn tz_rules_the_program_cannot_evaluate_are_refused() {
    let ws = Workspace::new();
    for tz in ["CET-1CEST,M3.5.0,M10.5.0/3", "Mars/Olympus"] {
        check_with_tz(&ws, tz)
            .assert_code(2)
            .assert_stderr_has("TZ environment variable")
            .assert_stderr_has(tz);
    }
}
