//! `writer-odps write` against the MaxCompute emulator: every primitive type, nulls,
//! column reordering, `["*"]`, truncation, dirty records, a reader-stream pipe.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};

use common::{ok, stderr, unique, write_jsonl, Cloud};
use serde_json::{json, Value as Json};

const ALL_TYPES: &str = "(c_bigint bigint, c_double double, c_boolean boolean, c_datetime datetime, \
    c_string string, c_decimal decimal, c_dec2 decimal(10,2), c_tinyint tinyint, c_smallint smallint, \
    c_int int, c_float float, c_varchar varchar(10), c_char char(5), c_date date, c_timestamp timestamp, \
    c_binary binary) partitioned by (pt string, region string)";

fn all_types_table(cloud: &Cloud) -> String {
    let t = unique("alltypes");
    cloud.sql(&format!("create table {t} {ALL_TYPES}"));
    t
}

#[test]
fn every_type_nulls_and_text_inputs_with_star() {
    let cloud = Cloud::start();
    let t = all_types_table(&cloud);
    let lines = [
        r#"[1, 1.5, true, {"date": "2024-01-02T03:04:05.678Z"}, "héllo", {"decimal": "123.456"}, {"decimal": "1.235"}, 7, -300, 70000, 2.5, "varchar", "ch", {"date": "2024-01-02T00:00:00.000Z"}, {"date": "2024-01-02T03:04:05.678Z"}, {"bytes": "AAHDqX8="}]"#,
        r#"[null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null]"#,
        r#"["42", "3.25", "false", "2024-01-02 03:04:05", 12, "-0.001", "7", "1", "2", "3", "1.5", "abc", "x", "2024-01-02", "2024-01-02 00:00:00", "bin"]"#,
        r#"[-9223372036854775807, -0.0, false, {"date": "1969-12-31T23:59:59.999Z"}, "", {"decimal": "-1e2"}, -5, -128, 32767, -2147483648, -3.5, "", "", {"date": "1969-12-31T00:00:00.000Z"}, {"date": "1969-12-31T23:59:59.999Z"}, {"bytes": ""}]"#,
    ];
    let param = cloud.param(
        &t,
        json!({"partition": "pt=20240101,region=hz", "truncate": true}),
    );
    let err = ok(&write_jsonl(&param, &(lines.join("\n") + "\n")));
    assert!(!err.contains("dirty record"), "{err}");
    let rows = cloud.rows(&t, "pt=20240101,region=hz").unwrap();
    let expected = vec![
        json!([1, 1.5, true, 1704164645678i64, "héllo", "123.456", "1.24", 7, -300, 70000, 2.5, "varchar", "ch", 19724, {"seconds": 1704164645, "nanos": 678000000}, "0001c3a97f"]),
        json!([
            null, null, null, null, null, null, null, null, null, null, null, null, null, null,
            null, null
        ]),
        json!([42, 3.25, false, 1704164645000i64, "12", "-0.001", "7", 1, 2, 3, 1.5, "abc", "x", 19724, {"seconds": 1704153600, "nanos": 0}, "62696e"]),
        json!([-9223372036854775807i64, -0.0, false, -1, "", "-100", "-5", -128, 32767, -2147483648i64, -3.5, "", "", -1, {"seconds": -1, "nanos": 999000000}, ""]),
    ];
    assert_eq!(rows, expected);
}

#[test]
fn reordered_subset_leaves_other_columns_null() {
    let cloud = Cloud::start();
    let t = all_types_table(&cloud);
    let param = cloud.param(
        &t,
        json!({"partition": "pt = 1 / region = 'x'", "column": ["c_string", "C_BIGINT", "c_date"]}),
    );
    ok(&write_jsonl(
        &param,
        "[\"s1\", 5, {\"date\": \"2024-01-02T00:00:00.000Z\"}]\n[\"s2\", null]\n",
    ));
    let rows = cloud.rows(&t, "pt=1,region=x").unwrap();
    let row = |bigint: Json, string: &str, date: Json| {
        let mut r = vec![Json::Null; 16];
        r[0] = bigint;
        r[4] = json!(string);
        r[13] = date;
        Json::Array(r)
    };
    assert_eq!(
        rows,
        vec![
            row(json!(5), "s1", json!(19724)),
            row(Json::Null, "s2", Json::Null)
        ]
    );
}

#[test]
fn dirty_records_are_reported_with_the_column_and_not_written() {
    let cloud = Cloud::start();
    let t = unique("dirty");
    cloud.sql(&format!(
        "create table {t} (id bigint, s string, small tinyint) partitioned by (pt string)"
    ));
    let param = cloud.param(&t, json!({"partition": "pt=1"}));
    // Two dirty records: allowed with --error-limit 2 (the default, 0, fails).
    let out = common::write_standalone(
        &param,
        "jsonl",
        b"[1, \"a\", 1]\n[\"abc\", \"b\", 2]\n[3, \"c\", 300]\n[4, \"d\", -1]\n",
        &["--error-limit", "2"],
    );
    let err = ok(&out);
    let dirty: Vec<&str> = err.lines().filter(|l| l.contains("dirty")).collect();
    assert!(
        dirty
            .iter()
            .any(|l| l.contains("column id (bigint)") && l.contains("[\"abc\",\"b\",2]")),
        "{err}"
    );
    assert!(
        dirty
            .iter()
            .any(|l| l.contains("column small (tinyint)") && l.contains("300")),
        "{err}"
    );
    assert_eq!(
        cloud.rows(&t, "pt=1").unwrap(),
        vec![json!([1, "a", 1]), json!([4, "d", -1])]
    );
}

#[test]
fn more_source_columns_than_targets_fails_and_commits_nothing() {
    let cloud = Cloud::start();
    let t = unique("wide");
    cloud.sql(&format!(
        "create table {t} (id bigint, s string) partitioned by (pt string)"
    ));
    cloud.sql(&format!("alter table {t} add partition (pt='1')"));
    let param = cloud.param(&t, json!({"partition": "pt=1", "column": ["id"]}));
    let out = write_jsonl(&param, "[1]\n[2, \"extra\"]\n");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("more source columns than target columns"),
        "{}",
        stderr(&out)
    );
    assert_eq!(cloud.rows(&t, "pt=1").unwrap(), Vec::<Json>::new());
}

#[test]
fn truncate_replaces_and_a_failed_run_leaves_no_duplicates() {
    let cloud = Cloud::start();
    let t = unique("trunc");
    cloud.sql(&format!(
        "create table {t} (id bigint, s string) partitioned by (pt string)"
    ));
    let input = "[1, \"a\"]\n[2, \"b\"]\n[3, \"c\"]\n";
    let keep = cloud.param(&t, json!({"partition": "pt=1", "blockSizeInMB": 8}));
    let truncate = cloud.param(&t, json!({"partition": "pt=1", "truncate": true}));
    ok(&write_jsonl(&keep, input));
    ok(&write_jsonl(&keep, input));
    assert_eq!(
        cloud.rows(&t, "pt=1").unwrap().len(),
        6,
        "truncate false appends"
    );
    ok(&write_jsonl(&truncate, input));
    ok(&write_jsonl(&truncate, input));
    let ids = |rows: Vec<Json>| -> Vec<i64> {
        let mut ids: Vec<i64> = rows.iter().map(|r| r[0].as_i64().unwrap()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(cloud.rows(&t, "pt=1").unwrap()), vec![1, 2, 3]);

    // A run that fails after uploading a full block commits nothing ... (12 MB:
    // blocks close at 4 MiB, and closing the second one waits for the first one's
    // answer, so the first block is surely stored before the bad line).
    let filler = "x".repeat(1000);
    let mut big: String = (100..12_100)
        .map(|i| format!("[{i}, \"{filler}\"]\n"))
        .collect();
    big.push_str("not json\n");
    let failed = write_jsonl(&keep, &big);
    assert!(!failed.status.success());
    assert!(
        stderr(&failed).contains("uploaded") || stderr(&failed).contains("line"),
        "{}",
        stderr(&failed)
    );
    assert_eq!(ids(cloud.rows(&t, "pt=1").unwrap()), vec![1, 2, 3]);
    let sessions = cloud.uploads();
    assert!(
        sessions["uploads"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["status"] != "closed"
                && !u["blocks"].as_array().map(Vec::is_empty).unwrap_or(true)),
        "the failed run uploaded a block that stays uncommitted: {sessions}"
    );
    // ... so the successful re-run leaves one copy of each row.
    ok(&write_jsonl(&keep, "[4, \"d\"]\n[5, \"e\"]\n"));
    assert_eq!(ids(cloud.rows(&t, "pt=1").unwrap()), vec![1, 2, 3, 4, 5]);

    // A truncating run that fails leaves the rows as they were: the truncation is
    // the commit's (an overwrite session), and nothing was committed.
    let truncate_small = cloud.param(
        &t,
        json!({"partition": "pt=1", "truncate": true, "blockSizeInMB": 8}),
    );
    let failed = write_jsonl(&truncate_small, &big);
    assert!(!failed.status.success());
    assert_eq!(ids(cloud.rows(&t, "pt=1").unwrap()), vec![1, 2, 3, 4, 5]);
    ok(&write_jsonl(&truncate_small, "[6, \"f\"]\n"));
    assert_eq!(ids(cloud.rows(&t, "pt=1").unwrap()), vec![6]);
}

#[test]
fn non_partitioned_table_truncate() {
    let cloud = Cloud::start();
    let t = unique("flat");
    cloud.sql(&format!("create table {t} (id bigint, s string)"));
    let param = cloud.param(&t, json!({"truncate": true, "isCompress": true}));
    ok(&write_jsonl(&param, "[1, \"a\"]\n"));
    ok(&write_jsonl(&param, "[2, \"b\"]\n"));
    assert_eq!(cloud.rows(&t, "").unwrap(), vec![json!([2, "b"])]);
}

#[test]
fn reader_stream_pipe_into_the_person_table() {
    let cloud = Cloud::start();
    let t = unique("person");
    cloud.sql(&format!(
        "create table {t} (id string, colname string, version bigint, colvalue string, optype string, sequenceinfo string) partitioned by (pt string)"
    ));
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("r.json");
    std::fs::write(
        &r,
        r#"{"sliceRecordCount": 20000, "column": [
            {"type": "string", "sequence": 1}, {"type": "string", "value": "col"},
            {"type": "long", "sequence": 1000}, {"type": "string", "random": "100, 300"},
            {"type": "string", "value": "U"}, {"type": "string", "value": "seq"}]}"#,
    )
    .unwrap();
    let w = dir.path().join("w.json");
    let param = cloud.param(
        &t,
        json!({"partition": "pt=${bizdate}", "truncate": true, "blockSizeInMB": 8}),
    );
    std::fs::write(&w, param.to_string()).unwrap();
    let mut reader = Command::new(common::binary("reader-stream"))
        .args(["read", "--config"])
        .arg(&r)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let writer = Command::new(common::binary("writer-odps"))
        .args(["write", "-p", "bizdate=20240101", "--config"])
        .arg(&w)
        .stdin(reader.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(reader.wait().unwrap().success());
    let err = ok(&writer);
    let rows = cloud.rows(&t, "pt=20240101").unwrap();
    assert_eq!(rows.len(), 20000);
    // About 4 MB of strings with 8 MiB blocks (closed at 4 MiB): one or two blocks.
    assert!(err.contains("records=20000"), "{err}");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], json!((i + 1).to_string()));
        assert_eq!(row[2], json!(1000 + i as i64));
        let len = row[3].as_str().unwrap().len();
        assert!((100..=300).contains(&len), "{len}");
    }
}

#[test]
fn signature_v4_with_an_sts_token() {
    let cloud = Cloud::start();
    let t = unique("v4");
    cloud.sql(&format!(
        "create table {t} (id bigint) partitioned by (pt string)"
    ));
    let param = cloud.param(
        &t,
        json!({"partition": "pt=1", "signatureVersion": "v4", "region": "cn-hangzhou", "securityToken": "sts-token-value"}),
    );
    ok(&write_jsonl(&param, "[1]\n"));
    assert_eq!(cloud.rows(&t, "pt=1").unwrap(), vec![json!([1])]);
    let url = format!("{}/-/odps/requests", cloud.endpoint());
    let log: Json = cloud.rt.block_on(async {
        serde_json::from_str(&reqwest::get(url).await.unwrap().text().await.unwrap()).unwrap()
    });
    let writer_requests: Vec<&Json> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        // The test's own setup signs v2; everything else is the writer's.
        .filter(|r| r["signature"] != "v2")
        .collect();
    let operations: Vec<&str> = writer_requests
        .iter()
        .map(|r| r["operation"].as_str().unwrap())
        .collect();
    for op in [
        "GetTable",
        "CreateUploadSession",
        "UploadBlock",
        "GetUploadSession",
        "CommitUpload",
    ] {
        assert!(
            operations.contains(&op),
            "{op} not signed v4: {operations:?}"
        );
    }
    assert!(
        writer_requests.iter().all(|r| r["signature"] == "v4+sts"),
        "{writer_requests:?}"
    );
}

/// Spool files are reused: the third block is written over the first block's longer
/// spool. When the third block's upload is dropped, the retry sends that block's
/// bytes only (not the first block's tail beyond them), so every row arrives once.
#[test]
fn a_block_resent_from_a_reused_spool_sends_its_own_bytes_only() {
    use localcloud::common::faults::{FaultAction, FaultRule};
    let cloud = Cloud::start();
    let t = unique("spool");
    cloud.sql(&format!(
        "create table {t} (id bigint, payload string) partitioned by (pt string)"
    ));
    // 10,000 rows of about 1 KB: blocks close after 4 MiB (blockSizeInMB 8), so
    // blocks of ~4 MiB, ~4 MiB and ~1.6 MiB.
    let pad = "p".repeat(1000);
    let lines: String = (0..10_000)
        .map(|i| format!("[{i}, \"{i:06}{pad}\"]\n"))
        .collect();
    cloud.fault_rule(FaultRule {
        operation: Some("UploadBlock".into()),
        times: Some(1),
        skip: 2,
        rate: None,
        after_apply: false,
        action: FaultAction::Drop,
    });
    let param = cloud.param(&t, json!({"partition": "pt=1", "blockSizeInMB": 8}));
    let err = ok(&write_jsonl(&param, &lines));
    let injected = cloud.handle.faults.injected();
    assert_eq!(injected.len(), 1, "{injected:?}");
    assert!(err.contains("again from the spool"), "{err}");
    assert!(err.contains("blocks=3"), "{err}");
    let rows = cloud.rows(&t, "pt=1").unwrap();
    assert_eq!(rows.len(), 10_000);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], json!(i), "row {i}");
        assert_eq!(row[1], json!(format!("{i:06}{pad}")), "row {i}");
    }
}
