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
