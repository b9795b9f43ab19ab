//! The Delta table support against what pyodps 0.13.2 produced
//! (`testdata/odps/upsert_capture.json`, made by `generate_upsert.py`): the key
//! hashes equal pyodps' hashers, every captured upsert request decodes to the
//! records pyodps was given (meta columns included) and was sent to the bucket the
//! emulator computes, and applying the decoded changes in request order gives the
//! rows pyodps read back.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use localcloud::odps::delta::{self, Change};
use localcloud::odps::types::{OdpsType, Row, Value};
use localcloud::odps::wire::decode_block;
use serde_json::Value as Json;

fn capture() -> Json {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/odps/upsert_capture.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn value(ty: &OdpsType, cell: &Json) -> Option<Value> {
    if cell.is_null() {
        return None;
    }
    Some(match ty {
        OdpsType::Bigint | OdpsType::Int => Value::Int(cell.as_i64().unwrap()),
        OdpsType::Datetime => Value::Int(cell["epoch_ms"].as_i64().unwrap()),
        OdpsType::Date => Value::Int(cell["epoch_days"].as_i64().unwrap()),
        OdpsType::Double => Value::Double(cell.as_f64().unwrap()),
        OdpsType::Float => Value::Float(cell.as_f64().unwrap() as f32),
        OdpsType::Boolean => Value::Bool(cell.as_bool().unwrap()),
        OdpsType::String => Value::Bytes(cell.as_str().unwrap().as_bytes().to_vec().into()),
        OdpsType::Decimal(_) => {
            Value::Bytes(cell["decimal"].as_str().unwrap().as_bytes().to_vec().into())
        }
        OdpsType::Binary => Value::Bytes(
            hex::decode(cell["bytes_hex"].as_str().unwrap())
                .unwrap()
                .into(),
        ),
        other => panic!("no vector form for {other}"),
    })
}

fn types(list: &Json) -> Vec<OdpsType> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| OdpsType::parse(c["type"].as_str().unwrap()).unwrap())
        .collect()
}

fn row(types: &[OdpsType], cells: &Json) -> Row {
    types
        .iter()
        .zip(cells.as_array().unwrap())
        .map(|(t, c)| value(t, c))
        .collect()
}

#[test]
fn value_hashes_equal_pyodps() {
    let v = capture();
    let cases = v["value_hashes"].as_array().unwrap();
    assert!(cases.len() > 30);
    for case in cases {
        let ty = OdpsType::parse(case["type"].as_str().unwrap()).unwrap();
        let val = value(&ty, &case["value"]).unwrap();
        assert_eq!(
            delta::hash_value(&ty, &val),
            Some(case["hash"].as_i64().unwrap() as i32),
            "{case}"
        );
    }
}

#[test]
fn record_hashes_and_buckets_equal_pyodps() {
    let v = capture();
    let key_types = [OdpsType::Bigint, OdpsType::String];
    for case in v["record_hashes"].as_array().unwrap() {
        let values: Vec<Option<Value>> = key_types
            .iter()
            .zip(case["values"].as_array().unwrap())
            .map(|(t, c)| value(t, c))
            .collect();
        let refs: Vec<Option<&Value>> = values.iter().map(Option::as_ref).collect();
        let hash = delta::record_hash(&[&key_types[0], &key_types[1]], &refs).unwrap();
        assert_eq!(i64::from(hash), case["hash"].as_i64().unwrap(), "{case}");
        assert_eq!(
            i64::from(delta::bucket_of(hash, 4)),
            case["bucket_4"].as_i64().unwrap()
        );
        assert_eq!(
            i64::from(delta::bucket_of(hash, 16)),
            case["bucket_16"].as_i64().unwrap()
        );
    }
}

#[test]
fn captured_upsert_requests_decode_route_and_merge_as_pyodps_read_back() {
    let v = capture();
    let data_types = types(&v["table"]["columns"]);
    let mut all_types = data_types.clone();
    all_types.extend(types(&v["meta_columns"]));
    let buckets = v["table"]["buckets"].as_u64().unwrap() as u32;
    let key_types = [&data_types[0], &data_types[1]];

    let requests = v["committed_session_requests"].as_array().unwrap();
    let create = &requests[0];
    assert_eq!(create["method"], "POST");
    for field in ["id", "schema", "hash_key", "hasher", "slots", "status"] {
        assert!(
            create["response_json"].get(field).is_some(),
            "create answer lacks {field} (the Java SDK requires it)"
        );
    }
    let mut decoded: Vec<(String, Row)> = Vec::new();
    let mut changes = Vec::new();
    for r in requests.iter().filter(|r| r["method"] == "PUT") {
        let query: std::collections::HashMap<String, String> =
            serde_json::from_value::<Vec<(String, String)>>(r["query"].clone())
                .unwrap()
                .into_iter()
                .collect();
        let bucket: u32 = query["bucketid"].parse().unwrap();
        assert!(r["headers"]["odps-tunnel-routed-server"].is_string());
        let body = bytes::Bytes::from(hex::decode(r["body_hex"].as_str().unwrap()).unwrap());
        let rows = decode_block(&body, &all_types).unwrap();
        assert_eq!(rows.len().to_string(), query["record_count"]);
        for mut full in rows {
            let meta = full.split_off(data_types.len());
            assert_eq!(meta[0], None, "__version");
            assert_eq!(meta[1], None, "__app_version");
            assert_eq!(meta[3], None, "__key_cols");
            assert_eq!(meta[4], Some(Value::Array(vec![])), "__value_cols");
            let key = [full[0].as_ref(), full[1].as_ref()];
            let hash = delta::record_hash(&key_types, &key).unwrap();
            assert_eq!(delta::bucket_of(hash, buckets), bucket);
            let op = match meta[2] {
                Some(Value::Int(85)) => "U",
                Some(Value::Int(68)) => "D",
                ref other => panic!("__operation {other:?}"),
            };
            decoded.push((op.to_owned(), full.clone()));
            changes.push(if op == "U" {
                Change::Upsert {
                    row: full,
                    columns: None,
                }
            } else {
                Change::Delete { row: full }
            });
        }
    }
    // Every change arrived once, and each key's changes kept the order pyodps was given.
    let given: Vec<(String, Row)> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["op"].as_str().unwrap().to_owned(),
                row(&data_types, &c["values"]),
            )
        })
        .collect();
    assert_eq!(decoded.len(), given.len());
    let of_key = |list: &[(String, Row)], k: &Row| -> Vec<(String, Row)> {
        list.iter()
            .filter(|(_, r)| r[..2] == k[..2])
            .cloned()
            .collect()
    };
    for (_, r) in &given {
        assert_eq!(of_key(&decoded, r), of_key(&given, r));
    }
    let mut rows = Vec::new();
    delta::apply(&mut rows, &[0, 1], changes);
    let key = |r: &Row| format!("{:?}", &r[..2]);
    rows.sort_by_key(key);
    let mut want: Vec<Row> = v["merged_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| row(&data_types, r))
        .collect();
    want.sort_by_key(key);
    assert_eq!(rows, want);
}
