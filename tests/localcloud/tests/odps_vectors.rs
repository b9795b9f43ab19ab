//! The MaxCompute emulator against the vectors produced by pyodps 0.13.2
//! (`testdata/odps/`): Tunnel blocks decode to the rows their files describe, a
//! corrupted block is refused, signatures verify and tampered ones do not.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::Read;

use localcloud::odps::auth::{self, AuthError, SignedRequest};
use localcloud::odps::types::{MapValue, OdpsType, Row, Value};
use localcloud::odps::wire::{decode_block, encode_block, BlockError};
use serde_json::Value as Json;

fn testdata(name: &str) -> Json {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/odps")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn columns(vector: &Json) -> Vec<OdpsType> {
    vector["table_columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| OdpsType::parse(c["type"].as_str().unwrap()).unwrap())
        .collect()
}

/// The value a row cell of the vector file describes, for a column of type `ty`.
fn expected(cell: &Json, ty: &OdpsType) -> Option<Value> {
    if cell.is_null() {
        return None;
    }
    Some(match ty {
        OdpsType::Bigint | OdpsType::Int | OdpsType::Smallint | OdpsType::Tinyint => {
            Value::Int(cell.as_i64().unwrap())
        }
        OdpsType::Datetime => Value::Int(cell["epoch_ms"].as_i64().unwrap()),
        OdpsType::Date => Value::Int(cell["epoch_days"].as_i64().unwrap()),
        OdpsType::Double => Value::Double(cell.as_f64().unwrap()),
        OdpsType::Float => Value::Float(cell.as_f64().unwrap() as f32),
        OdpsType::Boolean => Value::Bool(cell.as_bool().unwrap()),
        OdpsType::Decimal(_) => {
            Value::Bytes(cell["decimal"].as_str().unwrap().as_bytes().to_vec().into())
        }
        OdpsType::Binary => Value::Bytes(
            hex::decode(cell["bytes_hex"].as_str().unwrap())
                .unwrap()
                .into(),
        ),
        OdpsType::String | OdpsType::Varchar(_) | OdpsType::Char(_) | OdpsType::Json => {
            Value::Bytes(cell.as_str().unwrap().as_bytes().to_vec().into())
        }
        OdpsType::Timestamp | OdpsType::TimestampNtz => {
            let ns = cell["epoch_ns"].as_i64().unwrap();
            Value::Timestamp {
                seconds: ns.div_euclid(1_000_000_000),
                nanos: ns.rem_euclid(1_000_000_000) as i32,
            }
        }
        OdpsType::Array(elem) => Value::Array(
            cell.as_array()
                .unwrap()
                .iter()
                .map(|c| expected(c, elem))
                .collect(),
        ),
        OdpsType::Map(k, v) => {
            let pairs = cell["map"].as_array().unwrap();
            Value::Map(Box::new(MapValue {
                keys: pairs.iter().map(|p| expected(&p[0], k)).collect(),
                values: pairs.iter().map(|p| expected(&p[1], v)).collect(),
            }))
        }
        OdpsType::Struct(fields) => Value::Struct(
            cell["struct"]
                .as_array()
                .unwrap()
                .iter()
                .zip(fields)
                .map(|(c, (_, t))| expected(c, t))
                .collect(),
        ),
        OdpsType::IntervalDayTime | OdpsType::IntervalYearMonth => {
            panic!("no interval in the vectors")
        }
    })
}

fn expected_rows(vector: &Json) -> Vec<Row> {
    let types = columns(vector);
    vector["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .zip(&types)
                .map(|(c, t)| expected(c, t))
                .collect()
        })
        .collect()
}

fn block(vector: &Json, key: &str) -> Vec<u8> {
    hex::decode(vector[key].as_str().unwrap()).unwrap()
}

fn inflate(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn blocks_decode_to_the_rows_their_files_describe() {
    for name in ["block_basic.json", "block_types2.json"] {
        let v = testdata(name);
        let types = columns(&v);
        let rows = expected_rows(&v);
        assert!(!rows.is_empty(), "{name}");
        for key in ["block_hex", "block_hex_pyodps_cython"] {
            assert_eq!(
                decode_block(&block(&v, key).into(), &types).unwrap(),
                rows,
                "{name} {key}"
            );
        }
        for (deflated, plain) in [
            ("deflate_hex", "block_hex"),
            ("deflate_hex_pyodps_cython", "block_hex_pyodps_cython"),
        ] {
            assert_eq!(
                inflate(&block(&v, deflated)),
                block(&v, plain),
                "{name} {deflated}"
            );
        }
        // The emulator's own encoder (used for downloads) writes the canonical form.
        assert_eq!(
            hex::encode(encode_block(&rows, &types)),
            v["block_hex"].as_str().unwrap(),
            "{name}"
        );
    }
}

#[test]
fn record_checksums_match_the_vector_records() {
    let v = testdata("block_basic.json");
    let types = columns(&v);
    let rows = expected_rows(&v);
    for (i, record) in v["records"].as_array().unwrap().iter().enumerate() {
        let single = encode_block(&rows[i..=i], &types);
        let record_hex = record["record_bytes_hex"].as_str().unwrap();
        assert!(hex::encode(&single).starts_with(record_hex), "record {i}");
    }
}

#[test]
fn one_flipped_byte_in_a_value_is_a_checksum_error() {
    let v = testdata("block_basic.json");
    let types = columns(&v);
    let original = block(&v, "block_hex");
    // Flip a byte of "alice" (record 0, field 2, after tag 0x12 and length 0x05).
    let at = hex::encode(&original).find("616c696365").unwrap() / 2;
    let mut corrupt = original.clone();
    corrupt[at] ^= 0x01;
    assert!(matches!(
        decode_block(&corrupt.clone().into(), &types),
        Err(BlockError::RecordChecksum { record: 0, .. })
    ));
    // The final checksum's first byte.
    let mut corrupt = original.clone();
    let last = corrupt.len() - 5;
    corrupt[last] ^= 0x01;
    assert!(matches!(
        decode_block(&corrupt.clone().into(), &types),
        Err(BlockError::FinalChecksum { .. })
    ));
    // Any flipped byte anywhere is refused, one way or another. (Single bits are
    // not all detectable: bits above 32 in a checksum varint are discarded, as
    // protobuf's readRawVarint32 does, because pyodps' Cython writer sign-extends.)
    for i in 0..original.len() {
        let mut corrupt = original.clone();
        corrupt[i] ^= 0xff;
        assert!(
            decode_block(&corrupt.clone().into(), &types).is_err(),
            "byte {i}"
        );
    }
}

#[test]
fn a_block_for_another_schema_is_refused() {
    let v = testdata("block_basic.json");
    let mut types = columns(&v);
    types[1] = OdpsType::Bigint;
    assert!(matches!(
        decode_block(&block(&v, "block_hex").into(), &types),
        Err(BlockError::WireType { .. })
    ));
}

struct Case {
    method: String,
    headers: Vec<(String, String)>,
    resource: String,
    query: Vec<(String, String)>,
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn case_request(
    method: &str,
    endpoint_path: &str,
    path_and_query: &str,
    headers: Vec<(String, String)>,
) -> Case {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let resource = decode(path.strip_prefix(endpoint_path).unwrap());
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect();
    Case {
        method: method.to_owned(),
        headers,
        resource,
        query,
    }
}

fn signed(case: &Case) -> SignedRequest<'_> {
    SignedRequest {
        method: &case.method,
        headers: &case.headers,
        resource: &case.resource,
        query: &case.query,
    }
}

#[test]
fn signature_vectors_verify_and_tampered_copies_fail() {
    let v = testdata("signatures.json");
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let endpoint = c["endpoint"].as_str().unwrap();
        let endpoint_path = endpoint
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{p}"))
            .unwrap_or_default();
        let full_url = c["full_url"].as_str().unwrap();
        let path_and_query = &full_url[full_url.find("://").unwrap() + 3..];
        let path_and_query = &path_and_query[path_and_query.find('/').unwrap()..];
        let mut headers: Vec<(String, String)> = c["request_headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        headers.push((
            "Authorization".into(),
            c["authorization"].as_str().unwrap().to_owned(),
        ));
        let case = case_request(
            c["method"].as_str().unwrap(),
            &endpoint_path,
            path_and_query,
            headers,
        );
        let secret = c["access_key_secret"].as_str().unwrap().to_owned();
        let id = c["access_id"].as_str().unwrap().to_owned();
        let date = c["v4_date"].as_str().unwrap_or("20240101");
        let keys = |k: &str| (k == id).then(|| secret.clone());
        assert_eq!(
            signed(&case).canonical_string(),
            c["canonical_string"].as_str().unwrap(),
            "{name}"
        );
        assert!(auth::verify(&signed(&case), keys, date).is_ok(), "{name}");

        let wrong_secret = |k: &str| (k == id).then(|| format!("{secret}x"));
        assert_eq!(
            auth::verify(&signed(&case), wrong_secret, date),
            Err(AuthError::SignatureMismatch),
            "{name}"
        );
        let mut tampered = case_request(&case.method, "", &case.resource, case.headers.clone());
        tampered.query = case.query.clone();
        tampered.resource.push('x');
        assert_eq!(
            auth::verify(&signed(&tampered), keys, date),
            Err(AuthError::SignatureMismatch),
            "{name}"
        );
        let mut other_date = case_request(&case.method, "", &case.resource, case.headers.clone());
        other_date.query = case.query.clone();
        for (n, v) in other_date.headers.iter_mut() {
            if n == "Date" {
                *v = "Mon, 01 Jan 2024 00:00:01 GMT".into();
            }
        }
        assert!(
            auth::verify(&signed(&other_date), keys, date).is_err(),
            "{name}"
        );
    }
}

#[test]
fn captured_pyodps_requests_verify_and_their_blocks_decode() {
    let v = testdata("http_capture.json");
    let secret = v["access_key_secret"].as_str().unwrap().to_owned();
    let id = v["access_id"].as_str().unwrap().to_owned();
    let keys = |k: &str| (k == id).then(|| secret.clone());
    let types = columns(&testdata("block_basic.json"));
    let rows = expected_rows(&testdata("block_basic.json"));
    let mut checked = 0;
    let mut blocks = 0;
    for step in v["steps"].as_array().unwrap() {
        for r in step["requests"].as_array().unwrap() {
            let headers: Vec<(String, String)> = r["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            let path = r["path"].as_str().unwrap();
            let endpoint_path = if path.starts_with("/api/") {
                "/api"
            } else {
                ""
            };
            let path_and_query = format!("{path}?{}", r["raw_query"].as_str().unwrap());
            let case = case_request(
                r["method"].as_str().unwrap(),
                endpoint_path,
                &path_and_query,
                headers,
            );
            assert_eq!(
                signed(&case).canonical_string(),
                r["canonical_string_recomputed"].as_str().unwrap()
            );
            let date = case
                .headers
                .iter()
                .find(|(n, _)| n == "Date")
                .unwrap()
                .1
                .clone();
            let day = chrono::DateTime::parse_from_rfc2822(&date)
                .unwrap()
                .format("%Y%m%d")
                .to_string();
            assert!(
                auth::verify(&signed(&case), keys, &day).is_ok(),
                "{path_and_query}"
            );
            checked += 1;
            if r["method"] == "PUT" {
                let body = match r.get("body_inflated_hex") {
                    Some(h) => hex::decode(h.as_str().unwrap()).unwrap(),
                    None => hex::decode(r["body_hex"].as_str().unwrap()).unwrap(),
                };
                assert_eq!(decode_block(&body.into(), &types).unwrap(), rows);
                blocks += 1;
            }
        }
    }
    assert!(checked >= 10, "{checked}");
    assert_eq!(blocks, 2);
}
