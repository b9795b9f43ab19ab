//! A standalone `writer-odps write` commits only a whole input: one that ended with
//! `eos` (no `error` from the reader), with no more dirty records than `--error-limit`
//! allows (default 0). Otherwise it exits non-zero and a truncated partition keeps its
//! rows.

#![allow(clippy::unwrap_used)]

mod common;

use common::{ok, stderr, unique, write_jsonl, write_standalone, Cloud};
use protocol::frame::{encode_frame, encode_message, PREAMBLE};
use protocol::message::{Batch, Eos, ErrorKind, ErrorMessage, Hello, Message};
use protocol::{Role, Value};
use serde_json::json;

/// A table whose partition pt=1 holds 3 rows, and a truncating writer parameter.
fn three_rows(cloud: &Cloud) -> (String, serde_json::Value) {
    let t = unique("safe");
    cloud.sql(&format!(
        "create table {t} (id bigint, small tinyint) partitioned by (pt string)"
    ));
    let append = cloud.param(&t, json!({"partition": "pt=1"}));
    ok(&write_jsonl(&append, "[1, 1]\n[2, 2]\n[3, 3]\n"));
    let truncate = cloud.param(&t, json!({"partition": "pt=1", "truncate": true}));
    (t, truncate)
}

fn frames(messages: &[Message]) -> Vec<u8> {
    let mut bytes = PREAMBLE.to_vec();
    let hello = Message::Hello(Hello::new(Role::Reader, "reader-otsstream", "0"));
    for m in std::iter::once(&hello).chain(messages) {
        encode_frame(&encode_message(m).unwrap(), &mut bytes);
    }
    bytes
}

#[test]
fn a_failed_or_killed_reader_leaves_the_truncated_partition_as_it_was() {
    let cloud = Cloud::start();
    let (t, truncate) = three_rows(&cloud);
    let error = Message::Error(ErrorMessage {
        kind: ErrorKind::Service,
        retryable: false,
        message: "prepare: dataTable missing does not exist".into(),
    });
    let batch = Message::Batch(Batch::from_records(&[vec![Value::Long(9), Value::Long(9)]]));
    let eos = Message::Eos(Eos {
        records: 1,
        bytes: 0,
    });
    for (messages, says) in [
        // The reader failed in prepare: hello, error.
        (vec![error.clone()], "the reader failed: prepare"),
        // The reader was killed after its hello, or after a batch: no eos.
        (vec![], "ended without eos"),
        (vec![batch.clone()], "ended without eos"),
        // The reader's post failed after its eos.
        (vec![batch, eos, error], "the reader failed: prepare"),
    ] {
        let out = write_standalone(&truncate, "msgpack", &frames(&messages), &[]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("nothing was committed"),
            "{}",
            stderr(&out)
        );
        assert_eq!(cloud.rows(&t, "pt=1").unwrap().len(), 3);
    }
    // A whole stream with no records does truncate (the window was empty).
    let eos = Message::Eos(Eos {
        records: 0,
        bytes: 0,
    });
    ok(&write_standalone(
        &truncate,
        "msgpack",
        &frames(&[eos]),
        &[],
    ));
    assert_eq!(cloud.rows(&t, "pt=1").unwrap().len(), 0);
}

#[test]
fn all_dirty_input_fails_and_the_error_limit_allows_exactly_n() {
    let cloud = Cloud::start();
    let (t, truncate) = three_rows(&cloud);
    let dirty3 = b"[1, 300]\n[2, 400]\n[3, 500]\n";
    for limit in [None, Some("2")] {
        let extra: Vec<&str> = limit.iter().flat_map(|l| ["--error-limit", l]).collect();
        let out = write_standalone(&truncate, "jsonl", dirty3, &extra);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let want = format!(
            "error limit exceeded: {} dirty records, the limit (--error-limit) is {}",
            limit.map_or(1, |_| 3),
            limit.unwrap_or("0")
        );
        assert!(stderr(&out).contains(&want), "{}", stderr(&out));
        assert!(stderr(&out).contains("nothing was committed"));
        assert_eq!(cloud.rows(&t, "pt=1").unwrap().len(), 3);
    }
    // --error-limit 3: three dirty records pass (more than N fails, as errorLimit.record).
    ok(&write_standalone(
        &truncate,
        "jsonl",
        dirty3,
        &["--error-limit", "3"],
    ));
    assert_eq!(cloud.rows(&t, "pt=1").unwrap().len(), 0);
}

#[test]
fn a_huge_dirty_record_is_logged_short_and_kept_whole_in_the_dirty_file() {
    let cloud = Cloud::start();
    let t = unique("hugedirty");
    cloud.sql(&format!(
        "create table {t} (id bigint, small tinyint) partitioned by (pt string)"
    ));
    let param = cloud.param(&t, json!({"partition": "pt=1"}));
    let huge = "7".repeat(200_000);
    let input = format!("[1, \"{huge}\"]\n");
    let dir = tempfile::tempdir().unwrap();
    let dirty_file = dir.path().join("dirty.jsonl");
    let out = write_standalone(
        &param,
        "jsonl",
        input.as_bytes(),
        &[
            "--error-limit",
            "1",
            "--dirty-file",
            dirty_file.to_str().unwrap(),
        ],
    );
    let err = ok(&out);
    let line = err.lines().find(|l| l.contains("dirty record")).unwrap();
    assert!(
        line.len() < 2 * protocol::logfmt::LOG_RECORD_MAX_BYTES + 200,
        "{} bytes",
        line.len()
    );
    assert!(line.contains("bytes)"), "{line}");
    let kept: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&dirty_file).unwrap().trim()).unwrap();
    assert_eq!(kept["record"][1].as_str().unwrap(), huge);
    assert!(kept["reason"].as_str().unwrap().contains("small"));
}

/// Writer-odps checks each text as UTF-8 after copying it into the block, not when it
/// decodes the batch. So a text that is not UTF-8 must fail the task with the
/// decoder's error wherever it sits: in a STRING column, in a column that converts it,
/// in a DECIMAL, or after a value that already made the record dirty. Nothing is
/// committed.
#[test]
fn a_text_that_is_not_utf8_fails_the_task_wherever_it_sits() {
    let cloud = Cloud::start();
    let t = unique("utf8");
    cloud.sql(&format!(
        "create table {t} (id bigint, small tinyint, s string, d decimal) partitioned by (pt string)"
    ));
    let append = cloud.param(&t, json!({"partition": "pt=1"}));
    ok(&write_jsonl(
        &append,
        "[1, 1, \"a\", \"1.5\"]\n[2, 2, \"b\", \"2.5\"]\n",
    ));
    let truncate = cloud.param(&t, json!({"partition": "pt=1", "truncate": true}));
    let text = |s: &str| Value::String(s.into());
    let good = vec![
        Value::Long(7),
        Value::Long(7),
        text("fine"),
        Value::Decimal("7.5".into()),
    ];
    // "MARK" is made invalid in the encoded batch (its first byte becomes 0xff).
    let cases = [
        (
            "a STRING column",
            vec![
                Value::Long(8),
                Value::Long(8),
                text("xMARKx"),
                Value::Decimal("8.5".into()),
            ],
        ),
        (
            "a long text into STRING",
            vec![
                Value::Long(8),
                Value::Long(8),
                text(&format!("{}MARK{}", "y".repeat(200), "y".repeat(96))),
                Value::Null,
            ],
        ),
        (
            "a BIGINT column",
            vec![text("MARK"), Value::Long(8), text("s"), Value::Null],
        ),
        (
            "a DECIMAL column",
            vec![
                Value::Long(8),
                Value::Long(8),
                text("s"),
                Value::Decimal("1.MARK".into()),
            ],
        ),
        (
            "after a dirty value",
            vec![Value::Long(8), Value::Long(300), text("MARK"), Value::Null],
        ),
    ];
    for (place, bad) in cases {
        let mut batch = Batch::from_records(&[good.clone(), bad, good.clone()]);
        let at = batch.records.windows(4).position(|w| w == b"MARK").unwrap();
        batch.records[at] = 0xff;
        let eos = Message::Eos(Eos {
            records: 3,
            bytes: batch.bytes,
        });
        let out = write_standalone(
            &truncate,
            "msgpack",
            &frames(&[Message::Batch(batch), eos]),
            &["--error-limit", "5"],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{place}: {err}");
        assert!(err.contains("string is not UTF-8"), "{place}: {err}");
        assert!(err.contains("nothing was committed"), "{place}: {err}");
        assert_eq!(cloud.rows(&t, "pt=1").unwrap().len(), 2, "{place}");
    }
    // The same batches with the byte left as it was load (the dirty one aside).
    let fine = Batch::from_records(&[
        good.clone(),
        vec![Value::Long(8), Value::Long(8), text("xMARKx"), Value::Null],
        good,
    ]);
    let eos = Message::Eos(Eos {
        records: 3,
        bytes: fine.bytes,
    });
    ok(&write_standalone(
        &truncate,
        "msgpack",
        &frames(&[Message::Batch(fine), eos]),
        &[],
    ));
    assert_eq!(cloud.rows(&t, "pt=1").unwrap().len(), 3);
}
