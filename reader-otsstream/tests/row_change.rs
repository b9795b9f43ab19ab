//! `mode: "row_change"` through the reader binary: one record per stream record, in
//! stream order, each exactly once (`[op, states, key…, columns…]`).

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reader_otsstream::plainbuffer::{Cell, CellValue, OP_DELETE_ALL_VERSION};
use serde_json::{json, Value as Json};

#[test]
fn one_record_per_change_in_stream_order() {
    let cloud = Cloud::start();
    cloud.create_table("rc", Some(24));
    let ts = now_ms() - 60_000;
    let str_ = |v: &str| CellValue::String(v.into());
    cloud.put(
        "rc",
        key2("a", 1),
        vec![
            Cell::put("col_str", str_("s1"), Some(ts)),
            Cell::put("col_x", CellValue::Integer(5), Some(ts)),
        ],
    );
    cloud.update(
        "rc",
        key2("a", 1),
        vec![
            Cell::put("col_str", str_("s2"), Some(ts + 1)),
            Cell {
                name: "col_x".into(),
                value: None,
                op: Some(OP_DELETE_ALL_VERSION),
                timestamp: None,
            },
        ],
    );
    cloud.update(
        "rc",
        key2("b", 2),
        vec![Cell::put("col_x", CellValue::Integer(7), Some(ts))],
    );
    cloud.delete("rc", key2("a", 1));
    cloud.backdate("rc", 20 * MINUTE);
    let now = now_ms();
    let mut params = cloud.params("rc", "st_rc", now - 60 * MINUTE, now - 10 * MINUTE);
    params["mode"] = json!("row_change");
    params["column"] = json!([{"name": "col_str"}, {"name": "col_x"}]);
    let lines = cloud.read_ok(&params);
    let want: Vec<Json> = vec![
        json!(["put", "UU", "a", 1, "s1", 5]),
        json!(["update", "UD", "a", 1, "s2", null]),
        json!(["update", "-U", "b", 2, null, 7]),
        json!(["delete", "--", "a", 1, null, null]),
    ];
    assert_eq!(lines, want);
}
