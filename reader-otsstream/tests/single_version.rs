//! Acceptance 2: `single_version_and_update_only` with a column list mixing primary
//! key, attribute and never-written columns.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reader_otsstream::plainbuffer::{
    Cell, CellValue, OP_DELETE_ALL_VERSION, OP_DELETE_ONE_VERSION,
};
use serde_json::{json, Value as Json};

fn del(name: &str, op: u8, ts: Option<i64>) -> Cell {
    Cell {
        name: name.into(),
        value: None,
        op: Some(op),
        timestamp: ts,
    }
}

#[test]
fn configured_columns_in_order_with_nulls() {
    let cloud = Cloud::start();
    cloud.create_table("sv", Some(24));
    let ts = now_ms() - 60_000;
    let str_ = |v: &str| CellValue::String(v.into());
    cloud.put(
        "sv",
        key2("a", 1),
        vec![
            Cell::put("col_str", str_("s1"), Some(ts)),
            Cell::put("col_bool", CellValue::Boolean(true), Some(ts)),
            Cell::put("col_x", CellValue::Integer(5), Some(ts)),
        ],
    );
    cloud.update(
        "sv",
        key2("a", 1),
        vec![
            Cell::put("col_str", str_("s2"), Some(ts + 1)),
            del("col_bool", OP_DELETE_ONE_VERSION, Some(ts)),
        ],
    );
    cloud.delete("sv", key2("a", 1));
    cloud.update(
        "sv",
        key2("b", 2),
        vec![del("col_str", OP_DELETE_ALL_VERSION, None)],
    );
    cloud.put(
        "sv",
        key2("c", 3),
        vec![Cell::put("col_other", CellValue::Double(0.5), Some(ts))],
    );
    cloud.update(
        "sv",
        key2("c", 3),
        vec![
            Cell::put("col_str", str_("v1"), Some(ts + 2)),
            Cell::put("col_bin", CellValue::Binary(vec![1, 2]), Some(ts + 2)),
            Cell::put("col_str", str_("v2"), Some(ts + 3)),
        ],
    );
    cloud.backdate("sv", 20 * MINUTE);
    let now = now_ms();
    let mut params = cloud.params("sv", "st_sv", now - 60 * MINUTE, now - 10 * MINUTE);
    params["mode"] = json!("single_version_and_update_only");
    params["column"] = json!([{"name": "pk_int"}, {"name": "col_str"}, {"name": "col_never"},
                              {"name": "pk_str"}, {"name": "col_bool"}, {"name": "col_bin"}]);
    let lines = cloud.read_ok(&params);
    let want: Vec<Json> = vec![
        json!([1, "s1", null, "a", true, null]),
        json!([1, "s2", null, "a", null, null]),
        json!([2, null, null, "b", null, null]),
        json!([3, null, null, "c", null, null]),
        json!([3, "v2", null, "c", null, {"bytes": "AQI="}]),
    ];
    assert_eq!(lines, want);

    // With sequence info: one more column without the ":index" suffix.
    params["isExportSequenceInfo"] = json!(true);
    params["statusTable"] = json!("st_sv2");
    let lines = cloud.read_ok(&params);
    assert_eq!(lines.len(), want.len());
    let shard = shards(&cloud, "sv")[0]["shard_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (line, w) in lines.iter().zip(&want) {
        let line = line.as_array().unwrap();
        assert_eq!(&Json::Array(line[..6].to_vec()), w);
        let seq = line[6].as_str().unwrap();
        assert!(seq.ends_with(&format!("_{shard}")), "{seq}");
        assert!(!seq.contains(':'));
    }

    // Only never-written columns: every row is dropped.
    params["column"] = json!([{"name": "col_never"}]);
    params["statusTable"] = json!("st_sv3");
    assert!(cloud.read_ok(&params).is_empty());
}
