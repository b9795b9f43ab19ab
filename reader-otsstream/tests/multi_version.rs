//! Acceptance 1: multi-version export of PutRow, UpdateRow (put, delete one version,
//! delete all versions) and DeleteRow equals DataX's rows.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reader_otsstream::plainbuffer::{
    Cell, CellValue, OP_DELETE_ALL_VERSION, OP_DELETE_ONE_VERSION,
};
use serde_json::{json, Value as Json};

const BACKDATE_MS: i64 = 30 * MINUTE;

/// Writes the three records of the vectors (cell versions shifted so that after the
/// backdate they are exactly the vectors' versions).
fn write_vector_records(cloud: &Cloud, table: &str) {
    let ts = 1705307400000 + BACKDATE_MS;
    cloud.put(
        table,
        key2("user-001", 42),
        vec![
            Cell::put("col_int", CellValue::Integer(123456789), Some(ts)),
            Cell::put("col_double", CellValue::Double(3.25), Some(ts)),
            Cell::put("col_bool", CellValue::Boolean(true), Some(ts)),
            Cell::put("col_str", CellValue::String("hello, 世界".into()), Some(ts)),
            Cell::put(
                "col_bin",
                CellValue::Binary(vec![0, 1, 0xfe, 0xff]),
                Some(ts),
            ),
        ],
    );
    cloud.update(
        table,
        key2("user-001", 42),
        vec![
            Cell::put(
                "col_str",
                CellValue::String("updated".into()),
                Some(ts + 60_000),
            ),
            Cell {
                name: "col_int".into(),
                value: None,
                op: Some(OP_DELETE_ONE_VERSION),
                timestamp: Some(ts),
            },
            Cell {
                name: "col_bin".into(),
                value: None,
                op: Some(OP_DELETE_ALL_VERSION),
                timestamp: None,
            },
        ],
    );
    cloud.delete(table, key2("user-001", 42));
}

fn record_times_us(cloud: &Cloud, table: &str) -> (String, Vec<i64>) {
    let shards = shards(cloud, table);
    assert_eq!(shards.len(), 1);
    let times = shards[0]["record_times_us"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    (shards[0]["shard_id"].as_str().unwrap().to_owned(), times)
}

#[test]
fn vector_records_export_as_datax_rows() {
    let cloud = Cloud::start();
    cloud.create_table("orders", Some(24));
    write_vector_records(&cloud, "orders");
    cloud.backdate("orders", BACKDATE_MS);
    let (shard, times) = record_times_us(&cloud, "orders");
    assert_eq!(times.len(), 3);
    let now = now_ms();
    let mut params = cloud.params(
        "orders",
        "status_ap1",
        now - 2 * 60 * MINUTE,
        now - 10 * MINUTE,
    );
    params["isExportSequenceInfo"] = json!(true);
    let lines = cloud.read_ok(&params);

    let expected = datax_rows();
    let expected = expected["multi_version_isExportSequenceInfo_true"]["rows"]
        .as_array()
        .unwrap();
    assert_eq!(lines.len(), expected.len(), "{lines:#?}");
    // Record index of each expected row: PUT (6 rows), UPDATE (3), DELETE (1).
    let record_of = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2];
    for (n, (line, want)) in lines.iter().zip(expected).enumerate() {
        let line = line.as_array().unwrap();
        let want = want.as_array().unwrap();
        assert_eq!(line.len(), want.len());
        for (col, (got, w)) in line.iter().zip(want).enumerate().take(want.len() - 1) {
            assert_eq!(got, &datax_cell_json(w), "row {n} column {col}");
        }
        // sequenceInfo: the emulator's epoch and record time, the vectors' column index.
        let seq = line.last().unwrap().as_str().unwrap();
        let want_seq = want.last().unwrap()["value"].as_str().unwrap();
        let parts: Vec<&str> = seq.splitn(4, '_').collect();
        assert_eq!(parts[0].len(), 10, "{seq}");
        assert_eq!(parts[1], format!("{:020}", times[record_of[n]]), "{seq}");
        assert_eq!(parts[2], "0000000000", "{seq}");
        assert_eq!(parts[3].rsplit_once(':').unwrap().0, shard);
        assert_eq!(
            seq.rsplit_once(':').unwrap().1,
            want_seq.rsplit_once(':').unwrap().1
        );
    }
}

#[test]
fn a_scripted_sequence_over_two_keys_keeps_shard_order_and_types() {
    let cloud = Cloud::start();
    cloud.create_table("t2", Some(24));
    let base = now_ms() + BACKDATE_MS - 60 * MINUTE;
    cloud.put(
        "t2",
        key2("b", 2),
        vec![Cell::put("x", CellValue::Integer(-5), Some(base))],
    );
    cloud.put(
        "t2",
        key2("a", 1),
        vec![Cell::put(
            "y",
            CellValue::String(String::new()),
            Some(base + 1),
        )],
    );
    cloud.update(
        "t2",
        key2("b", 2),
        vec![
            Cell::put("x", CellValue::Integer(6), Some(base + 2)),
            Cell {
                name: "x".into(),
                value: None,
                op: Some(OP_DELETE_ONE_VERSION),
                timestamp: Some(base),
            },
            Cell::put("z", CellValue::Boolean(false), Some(base + 3)),
        ],
    );
    cloud.delete("t2", key2("a", 1));
    cloud.update(
        "t2",
        key2("b", 2),
        vec![Cell {
            name: "z".into(),
            value: None,
            op: Some(OP_DELETE_ALL_VERSION),
            timestamp: None,
        }],
    );
    cloud.backdate("t2", BACKDATE_MS);
    let b = base - BACKDATE_MS;
    let now = now_ms();
    let lines = cloud.read_ok(&cloud.params(
        "t2",
        "status_ap1b",
        now - 3 * 60 * MINUTE,
        now - 10 * MINUTE,
    ));
    let want: Vec<Json> = vec![
        json!(["b", 2, null, null, null, "DR"]),
        json!(["b", 2, "x", b, -5, "U"]),
        json!(["a", 1, null, null, null, "DR"]),
        json!(["a", 1, "y", b + 1, "", "U"]),
        json!(["b", 2, "x", b + 2, 6, "U"]),
        json!(["b", 2, "x", b, null, "DO"]),
        json!(["b", 2, "z", b + 3, false, "U"]),
        json!(["a", 1, null, null, null, "DR"]),
        json!(["b", 2, "z", null, null, "DA"]),
    ];
    assert_eq!(lines, want);
    // The same through V4 request signatures (and V4-keyed response signatures).
    let mut v4 = cloud.params(
        "t2",
        "status_ap1c",
        now - 3 * 60 * MINUTE,
        now - 10 * MINUTE,
    );
    v4["signatureVersion"] = json!("v4");
    v4["region"] = json!("cn-hangzhou");
    assert_eq!(cloud.read_ok(&v4), want);
}
