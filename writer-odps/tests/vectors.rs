//! Golden vectors produced by pyodps 0.13.2 (`testdata/`, see the spec's vectors
//! README): block bytes and request signatures must match byte for byte.

#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use protocol::timefmt::Zone;
use protocol::value::Value;
use serde_json::Value as Json;
use writer_odps::block::{BlockEncoder, Cell};
use writer_odps::convert::{Conversions, OverLengthRule};
use writer_odps::schema::OdpsType;
use writer_odps::sign::{
    authorization, canonical_string, AccessKey, CanonicalRequest, SignatureVersion,
};

fn testdata(name: &str) -> Json {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn value_of(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) if n.is_i64() => Value::Long(n.as_i64().unwrap()),
        Json::Number(n) => Value::Double(n.as_f64().unwrap()),
        Json::String(s) => Value::String(s.clone()),
        Json::Object(o) if o.contains_key("epoch_ms") => {
            Value::Date(o["epoch_ms"].as_i64().unwrap())
        }
        Json::Object(o) if o.contains_key("decimal") => {
            Value::Decimal(o["decimal"].as_str().unwrap().to_owned())
        }
        other => panic!("no value form for {other}"),
    }
}

fn utc_conversions() -> Conversions {
    let utc = Zone::parse("UTC").unwrap();
    Conversions::new(false, utc, utc, OverLengthRule::KeepOn, 8 << 20, 8 << 20).unwrap()
}

#[test]
fn basic_block_from_record_values() {
    let v = testdata("block_basic.json");
    let types: Vec<OdpsType> = v["table_columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| OdpsType::parse(c["type"].as_str().unwrap()))
        .collect();
    let conv = utc_conversions();
    let mut encoder = BlockEncoder::new();
    let mut out = Vec::new();
    for (i, row) in v["rows"].as_array().unwrap().iter().enumerate() {
        let values: Vec<Value> = row.as_array().unwrap().iter().map(value_of).collect();
        let cells: Vec<Cell> = values
            .iter()
            .zip(&types)
            .map(|(v, t)| conv.convert(v, t).unwrap())
            .collect();
        let start = out.len();
        encoder.encode_record(&cells, &mut out);
        assert_eq!(
            hex::encode(&out[start..]),
            v["records"][i]["record_bytes_hex"].as_str().unwrap(),
            "record {i}"
        );
    }
    encoder.finish(&mut out);
    assert_eq!(hex::encode(&out), v["block_hex"].as_str().unwrap());
    assert_eq!(encoder.records(), 3);
}

#[test]
fn types2_primitive_fields() {
    let v = testdata("block_types2.json");
    let record = &v["records"][0];
    let seconds = 1_704_164_645i64;
    let cells = vec![
        Cell::Int(7),
        Cell::Int(-300),
        Cell::Int(70000),
        Cell::Float(1.5),
        Cell::Bytes(Cow::Borrowed("héllo".as_bytes())),
        Cell::Bytes(Cow::Borrowed(b"ab")),
        Cell::Date(19724),
        Cell::Timestamp {
            seconds,
            nanos: 123_456_789,
        },
        Cell::Bytes(Cow::Owned(hex::decode("0001c3a97f").unwrap())),
    ];
    let fields = record["fields"].as_array().unwrap();
    let expected: String = fields
        .iter()
        .filter(|f| f["field_number"].as_u64().unwrap() <= 9)
        .map(|f| {
            format!(
                "{}{}",
                f["tag_hex"].as_str().unwrap(),
                f["payload_hex"].as_str().unwrap()
            )
        })
        .collect();
    let crc_input: String = fields
        .iter()
        .filter(|f| f["field_number"].as_u64().unwrap() <= 9)
        .map(|f| f["checksum_input_hex"].as_str().unwrap().to_owned())
        .collect();
    let mut out = Vec::new();
    BlockEncoder::new().encode_record(&cells, &mut out);
    let fields_len = expected.len() / 2;
    assert_eq!(hex::encode(&out[..fields_len]), expected);
    // End of record: the key, then the CRC-32C of the fields' checksum inputs.
    assert_eq!(hex::encode(&out[fields_len..fields_len + 4]), "80c0ff7f");
    let mut crc_bytes = Vec::new();
    writer_odps::block::put_varint(
        &mut crc_bytes,
        u64::from(crc32c::crc32c(&hex::decode(crc_input).unwrap())),
    );
    assert_eq!(out[fields_len + 4..], crc_bytes[..]);

    // The all-NULL record: the end tag and checksum 0.
    let mut out = Vec::new();
    BlockEncoder::new().encode_record(&vec![Cell::Null; 12], &mut out);
    assert_eq!(
        hex::encode(out),
        v["records"][1]["record_bytes_hex"].as_str().unwrap()
    );
}

#[test]
fn types2_values_convert_to_the_vector_cells() {
    let conv = utc_conversions();
    let day_ms = 19724 * 86_400_000;
    assert_eq!(
        conv.convert(&Value::Date(day_ms), &OdpsType::Date).unwrap(),
        Cell::Date(19724)
    );
    assert_eq!(
        conv.convert(&Value::Double(1.5), &OdpsType::Float).unwrap(),
        Cell::Float(1.5)
    );
    assert_eq!(
        conv.convert(&Value::Long(-300), &OdpsType::Smallint)
            .unwrap(),
        Cell::Int(-300)
    );
    assert_eq!(
        conv.convert(&Value::Bytes(vec![0, 1]), &OdpsType::Binary)
            .unwrap(),
        Cell::Bytes(Cow::Owned(vec![0, 1]))
    );
}

#[test]
fn signatures_match_pyodps() {
    let v = testdata("signatures.json");
    for case in v["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let endpoint = case["endpoint"].as_str().unwrap();
        let full = case["full_url"].as_str().unwrap();
        let after = &full[endpoint.len()..];
        let (path, query) = after.split_once('?').unwrap_or((after, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .unwrap()
                .into_owned()
        };
        let params: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        let headers: Vec<(String, String)> = case["request_headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let header = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let canonical = canonical_string(&CanonicalRequest {
            method: case["method"].as_str().unwrap(),
            content_md5: header("Content-MD5"),
            content_type: header("Content-Type"),
            date: header("Date"),
            headers: &headers,
            resource_path: &decode(path),
            params: &params,
        });
        assert_eq!(
            canonical,
            case["canonical_string"].as_str().unwrap(),
            "{name}"
        );
        let key = AccessKey {
            id: case["access_id"].as_str().unwrap().into(),
            secret: case["access_key_secret"].as_str().unwrap().into(),
            security_token: case["sts_token"].as_str().map(str::to_owned),
        };
        let version = match case["scheme"].as_str().unwrap() {
            "v4" => SignatureVersion::V4 {
                region: case["region"].as_str().unwrap().into(),
            },
            _ => SignatureVersion::V2,
        };
        let date = case["v4_date"].as_str().unwrap_or("");
        assert_eq!(
            authorization(&key, &version, &canonical, date),
            case["authorization"].as_str().unwrap(),
            "{name}"
        );
    }
}
