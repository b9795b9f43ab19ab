use super::*;
use crate::job::load_text;

/// A Data Integration job: reader window and writer section filled in by the test.
fn job_text(reader: &str, writer: &str) -> String {
    format!(
        r#"{{"type": "job", "version": "1.0", "configuration": {{
            "setting": {{"timeZone": "Asia/Shanghai"}},
            "reader": {{"plugin": "otsstream", "parameter": {{"dataTable": "person", {reader}}}}},
            "writer": {writer}}}}}"#
    )
}

const FIVE_MINUTES: &str = r#""startTimeString": "${startTime}", "endTimeString": "${endTime}""#;
const SCHEDULED: [&str; 2] = [
    "startTime=$[yyyymmddhh24miss-10/24/60]",
    "endTime=$[yyyymmddhh24miss-5/24/60]",
];

fn odps(partition: &str, truncate: bool) -> String {
    format!(
        r#"{{"plugin": "odps", "parameter": {{"project": "p1", "table": "Person",
            "partition": "{partition}", "truncate": {truncate}, "column": ["id"]}}}}"#
    )
}

fn oss(object: &str, mode: &str) -> String {
    format!(
        r#"{{"plugin": "oss", "parameter": {{"bucket": "b", "object": "{object}",
            "writeMode": "{mode}"}}}}"#
    )
}

fn options(params: &[&str], at: &str) -> LoadOptions {
    LoadOptions {
        params: params.iter().map(|s| s.to_string()).collect(),
        schedule_time: Some(at.to_owned()),
        datasources: None,
    }
}

/// The warning for `text` run with `params` at schedule time `at`.
fn warning(text: &str, params: &[&str], at: &str) -> Option<String> {
    let job = load_text(text, "job.json", &options(params, at)).unwrap();
    check_with(&job, |t| {
        load_text(text, "job.json", &options(params, &t.to_rfc3339())).ok()
    })
}

/// Every five-minute schedule time of a day's last and first half hour.
fn around_midnight() -> Vec<String> {
    (0..12)
        .map(|i| {
            let minutes = 23 * 60 + 30 + i * 5;
            let (day, m) = if minutes >= 24 * 60 {
                (22, minutes - 24 * 60)
            } else {
                (21, minutes)
            };
            format!("202411{day} {:02}:{:02}:00", m / 60, m % 60)
        })
        .collect()
}

fn normalise(at: &str) -> String {
    at.replace("20241121 ", "2024-11-21 ")
        .replace("20241122 ", "2024-11-22 ")
}

#[test]
fn the_vendor_daily_partition_with_truncate_warns_naming_the_target_and_both_windows() {
    let text = job_text(FIVE_MINUTES, &odps("pt=${bdp.system.bizdate}", true));
    let w = warning(&text, &SCHEDULED, "2024-11-21 10:30:00").expect("a warning");
    assert!(
        w.contains("replaces partition pt=20241120 of p1.person"),
        "{w}"
    );
    assert!(
        w.contains(
            "[2024-11-21 10:20:00, 2024-11-21 10:25:00) for schedule time 2024-11-21 10:30:00"
        ),
        "{w}"
    );
    assert!(
        w.contains("[2024-11-21 10:25:00, 2024-11-21 10:30:00) for 2024-11-21 10:35:00"),
        "{w}"
    );
}

#[test]
fn a_coarser_target_warns_at_every_schedule_time_even_at_its_boundaries() {
    for partition in ["pt=${bdp.system.bizdate}", "pt=$[yyyymmddhh24-10/24/60]"] {
        let text = job_text(FIVE_MINUTES, &odps(partition, true));
        for at in around_midnight() {
            let at = normalise(&at);
            assert!(
                warning(&text, &SCHEDULED, &at).is_some(),
                "{partition} at {at}: no warning"
            );
        }
    }
}

#[test]
fn a_partition_per_window_or_no_truncate_does_not_warn() {
    for writer in [
        odps("pt=$[yyyymmddhh24mi-10/24/60]", true),
        odps(
            "pt = $[yyyymmdd-10/24/60] / hm = '$[hh24mi-10/24/60]'",
            true,
        ),
        odps("pt=${bdp.system.bizdate}", false),
    ] {
        let text = job_text(FIVE_MINUTES, &writer);
        for at in around_midnight() {
            let at = normalise(&at);
            assert_eq!(warning(&text, &SCHEDULED, &at), None, "{writer} at {at}");
        }
    }
}

#[test]
fn a_truncated_table_without_partition_warns() {
    let text = job_text(FIVE_MINUTES, &odps("", true));
    let w = warning(&text, &SCHEDULED, "2024-11-21 10:30:00").expect("a warning");
    assert!(w.contains("replaces the whole table p1.person"), "{w}");
}

#[test]
fn a_daily_window_into_a_daily_partition_does_not_warn() {
    let reader = r#""date": "$[yyyymmdd-1]""#;
    let text = job_text(reader, &odps("pt=${bdp.system.bizdate}", true));
    assert_eq!(warning(&text, &[], "2024-11-21 00:10:00"), None);
    let text = job_text(reader, &odps("pt=$[yyyymm]", true));
    let w = warning(&text, &[], "2024-11-21 00:10:00").expect("a warning");
    assert!(
        w.contains("[2024-11-20 00:00:00, 2024-11-21 00:00:00)"),
        "{w}"
    );
}

#[test]
fn oss_truncate_under_a_shared_prefix_warns_and_a_per_window_prefix_does_not() {
    let millis = r#""startTimestampMillis": "${start}", "endTimestampMillis": "${end}""#;
    let text = job_text(
        FIVE_MINUTES,
        &oss("tablestore/users/$[yyyymmdd]", "truncate"),
    );
    let w = warning(&text, &SCHEDULED, "2024-11-21 10:30:00").expect("a warning");
    assert!(
        w.contains("deletes every object under oss://b/tablestore/users/20241121"),
        "{w}"
    );
    let text = job_text(
        FIVE_MINUTES,
        &oss("tablestore/users/$[yyyymmddhh24miss-10/24/60]", "truncate"),
    );
    assert_eq!(warning(&text, &SCHEDULED, "2024-11-21 10:30:00"), None);
    let text = job_text(FIVE_MINUTES, &oss("tablestore/users/$[yyyymmdd]", "append"));
    assert_eq!(warning(&text, &SCHEDULED, "2024-11-21 10:30:00"), None);
    // Literal windows do not move with the schedule time: nothing can be said.
    let text = job_text(millis, &oss("tablestore/users", "truncate"));
    let literal = ["start=1732155600000", "end=1732155900000"];
    assert_eq!(warning(&text, &literal, "2024-11-21 10:30:00"), None);
}

#[test]
fn oss_prefixes_overlap_when_one_starts_with_the_other() {
    let t = |key: &str, exact: bool| Target::Oss {
        bucket: "b".into(),
        key: key.into(),
        exact,
    };
    assert!(t("a/1", false).overlaps(&t("a/10", false)));
    assert!(t("a/10", false).overlaps(&t("a/1", false)));
    assert!(!t("a/1", false).overlaps(&t("a/2", false)));
    assert!(t("a/1", true).overlaps(&t("a/1", true)));
    assert!(!t("a/1", true).overlaps(&t("a/10", true)));
    assert!(t("a/", false).overlaps(&t("a/1", true)));
    assert!(!Target::Oss {
        bucket: "c".into(),
        key: "a/1".into(),
        exact: false
    }
    .overlaps(&t("a/1", false)));
}

#[test]
fn readers_without_a_known_window_and_other_writers_are_not_checked() {
    let text = format!(
        r#"{{"job": {{"content": [{{"reader": {{"name": "streamreader", "parameter": {{"sliceRecordCount": 1}}}},
            "writer": {}}}]}}}}"#,
        r#"{"name": "odpswriter", "parameter": {"table": "t", "partition": "pt=1", "truncate": true}}"#
    );
    assert_eq!(warning(&text, &[], "2024-11-21 10:30:00"), None);
    let stream_writer = r#"{"plugin": "stream", "parameter": {"print": true}}"#;
    let text = job_text(FIVE_MINUTES, stream_writer);
    assert_eq!(warning(&text, &SCHEDULED, "2024-11-21 10:30:00"), None);
}

#[test]
fn reader_windows_in_each_form() {
    let zone: Tz = "Asia/Shanghai".parse().unwrap();
    let w = |p: Json| reader_window(&p, zone);
    let day = w(serde_json::json!({"date": "20241120"})).unwrap();
    assert_eq!(day.end_ms - day.start_ms, 86_400_000);
    assert_eq!(day.start_ms, 1_732_032_000_000); // 2024-11-20 00:00 +08:00
    let s = w(
        serde_json::json!({"startTimeString": "20241121102000", "endTimeString": "20241121102500"}),
    )
    .unwrap();
    assert_eq!(s.end_ms - s.start_ms, 300_000);
    let m =
        w(serde_json::json!({"startTimestampMillis": 1000, "endTimestampMillis": "2000"})).unwrap();
    assert_eq!((m.start_ms, m.end_ms), (1000, 2000));
    assert_eq!(
        w(serde_json::json!({"startTimestampMillis": 2000, "endTimestampMillis": 1000})),
        None
    );
    assert_eq!(w(serde_json::json!({"startTimeString": "2024"})), None);
}
