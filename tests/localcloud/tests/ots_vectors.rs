//! The Tablestore emulator's codecs against the vectors produced by the official Python
//! SDK (`testdata/ots/*.json`, copied from the project's spec vectors).

#![allow(clippy::unwrap_used)] // test helpers, like the tests themselves, may unwrap

use localcloud::ots::pb;
use localcloud::ots::plainbuffer::{
    self, crc8, Cell, DecodeError, PkValue, Row, SequenceInfo, Value, OP_DELETE_ALL_VERSIONS,
    OP_DELETE_ONE_VERSION,
};
use localcloud::ots::{
    request_string_to_sign, response_string_to_sign, sign_v2, sign_v4, v4_signing_key, Signer,
};
use prost::Message;
use serde_json::Value as Json;

fn load(name: &str) -> Json {
    let path = format!("{}/testdata/ots/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn vectors(file: &Json) -> &Vec<Json> {
    file["vectors"].as_array().unwrap()
}

fn bytes(v: &Json) -> Vec<u8> {
    hex::decode(v["hex"].as_str().unwrap()).unwrap()
}

#[test]
fn crc8_table_and_check_values() {
    let v = load("crc8.json");
    for (i, want) in v["table_hex"].as_array().unwrap().iter().enumerate() {
        let want = u8::from_str_radix(want.as_str().unwrap(), 16).unwrap();
        assert_eq!(crc8(0, &[i as u8]), want, "table entry {i}");
    }
    let seq = &v["byte_sequence"];
    let mut crc = 0;
    for (b, want) in seq["bytes"]
        .as_array()
        .unwrap()
        .iter()
        .zip(seq["crc_after_each_byte"].as_array().unwrap())
    {
        crc = crc8(crc, &[b.as_u64().unwrap() as u8]);
        assert_eq!(u64::from(crc), want.as_u64().unwrap());
    }
    let i32v = v["int32_le"]["value"].as_i64().unwrap() as i32;
    assert_eq!(
        u64::from(crc8(0, &i32v.to_le_bytes())),
        v["int32_le"]["crc"].as_u64().unwrap()
    );
    for key in ["int64_le", "int64_negative_le"] {
        let x = v[key]["value"].as_i64().unwrap();
        assert_eq!(
            u64::from(crc8(0, &x.to_le_bytes())),
            v[key]["crc"].as_u64().unwrap()
        );
    }
    let s = v["utf8_string"]["value"].as_str().unwrap();
    assert_eq!(
        u64::from(crc8(0, s.as_bytes())),
        v["utf8_string"]["crc"].as_u64().unwrap()
    );
}

fn value_of(v: &Json) -> Value {
    match v["type"].as_str().unwrap() {
        "INTEGER" => Value::Integer(v["value"].as_i64().unwrap()),
        "DOUBLE" => Value::Double(v["value"].as_f64().unwrap()),
        "BOOLEAN" => Value::Boolean(v["value"].as_bool().unwrap()),
        "STRING" => Value::String(v["value"].as_str().unwrap().to_owned()),
        "BINARY" => Value::Binary(hex::decode(v["value_hex"].as_str().unwrap()).unwrap()),
        other => panic!("unknown type {other}"),
    }
}

fn pk_of(v: &Json) -> PkValue {
    match value_of(v) {
        Value::Integer(i) => PkValue::Integer(i),
        Value::String(s) => PkValue::String(s),
        Value::Binary(b) => PkValue::Binary(b),
        other => panic!("not a key value {other:?}"),
    }
}

/// The logical row a vector's `decoded` section describes.
fn expected_row(decoded: &Json) -> Row {
    let primary_key = decoded["primary_key"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), pk_of(&c["value"])))
        .collect();
    let cells = decoded["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Cell {
            name: c["name"].as_str().unwrap().to_owned(),
            value: c.get("value").map(value_of),
            op: c.get("cell_type").map(|t| match t.as_str().unwrap() {
                "DELETE_ONE_VERSION" => OP_DELETE_ONE_VERSION,
                "DELETE_ALL_VERSION" => OP_DELETE_ALL_VERSIONS,
                other => panic!("unknown cell type {other}"),
            }),
            timestamp_ms: c.get("timestamp").map(|t| t.as_i64().unwrap()),
        })
        .collect();
    let sequence_info = decoded.get("sequence_info").map(|s| SequenceInfo {
        epoch: s["epoch"].as_u64().unwrap() as u32,
        timestamp_us: s["timestamp_us"].as_i64().unwrap(),
        row_index: s["row_index"].as_u64().unwrap() as u32,
    });
    Row {
        primary_key,
        cells,
        delete_marker: decoded["delete_marker"].as_bool().unwrap(),
        sequence_info,
    }
}

#[test]
fn plainbuffer_vectors_encode_byte_for_byte_and_decode() {
    let file = load("plainbuffer.json");
    assert_eq!(vectors(&file).len(), 7);
    for v in vectors(&file) {
        let name = v["name"].as_str().unwrap();
        let want = bytes(v);
        let row = expected_row(&v["decoded"]);
        assert_eq!(plainbuffer::encode_row(&row), want, "encoding {name}");
        assert_eq!(
            plainbuffer::decode_row(&want).unwrap(),
            row,
            "decoding {name}"
        );
    }
}

#[test]
fn a_flipped_byte_in_a_vector_is_rejected() {
    let file = load("plainbuffer.json");
    for v in vectors(&file) {
        let name = v["name"].as_str().unwrap();
        let good = bytes(v);
        // A byte of the first key's value ("user-001"): covered by the cell checksum.
        let at = good.windows(8).position(|w| w == b"user-001").unwrap() + 3;
        let mut bad = good.clone();
        bad[at] ^= 0x20;
        assert_eq!(
            plainbuffer::decode_row(&bad),
            Err(DecodeError::CellChecksum),
            "{name}"
        );
        // The row checksum byte itself.
        let mut bad = good.clone();
        *bad.last_mut().unwrap() ^= 0x01;
        assert_eq!(
            plainbuffer::decode_row(&bad),
            Err(DecodeError::RowChecksum),
            "{name}"
        );
        // Every single-bit flip outside the (unchecksummed) extension is rejected, or
        // decodes to the very same row (a boolean byte of 0x05 still reads as true).
        let original = plainbuffer::decode_row(&good).unwrap();
        let ext = good
            .iter()
            .rposition(|b| *b == 0x0b)
            .filter(|_| v.get("action_type").is_some());
        for i in 0..good.len() {
            if ext.is_some_and(|e| i > e && i < good.len() - 2) {
                continue;
            }
            let mut bad = good.clone();
            bad[i] ^= 0x04;
            if let Ok(row) = plainbuffer::decode_row(&bad) {
                assert_eq!(
                    row, original,
                    "{name}: flip at {i} accepted with a changed row"
                );
            }
        }
    }
}

fn protobuf_vector<'a>(file: &'a Json, name: &str) -> &'a Json {
    vectors(file).iter().find(|v| v["name"] == name).unwrap()
}

fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(file: &Json, name: &str) -> M {
    let want = bytes(protobuf_vector(file, name));
    let msg = M::decode(want.as_slice()).unwrap();
    assert_eq!(msg.encode_to_vec(), want, "re-encoding {name}");
    msg
}

#[test]
fn get_stream_record_response_is_rebuilt_byte_for_byte() {
    let pbv = load("plainbuffer.json");
    let file = load("protobuf.json");
    let records = [
        "stream_record_put",
        "stream_record_update",
        "stream_record_delete",
    ]
    .iter()
    .zip([1, 2, 3])
    .map(|(name, action_type)| {
        let v = vectors(&pbv).iter().find(|v| v["name"] == *name).unwrap();
        pb::StreamRecord {
            action_type,
            record: plainbuffer::encode_row(&expected_row(&v["decoded"])).into(),
        }
    })
    .collect();
    let built = pb::GetStreamRecordResponse {
        stream_records: records,
        next_shard_iterator: Some("it:shard-a:3".into()),
    };
    let want = bytes(protobuf_vector(&file, "get_stream_record_response"));
    assert_eq!(built.encode_to_vec(), want);
    let end = pb::GetStreamRecordResponse::default();
    assert_eq!(
        end.encode_to_vec(),
        bytes(protobuf_vector(
            &file,
            "get_stream_record_response_shard_end"
        ))
    );
}

#[test]
fn stream_messages_round_trip_byte_for_byte() {
    let file = load("protobuf.json");
    let split: pb::DescribeStreamResponse =
        round_trip(&file, "describe_stream_response_split_child");
    assert_eq!(split.shards[0].parent_id, None);
    assert_eq!(split.shards[1].parent_id.as_deref(), Some("shard-parent"));
    let merged: pb::DescribeStreamResponse =
        round_trip(&file, "describe_stream_response_merge_paged");
    assert_eq!(
        merged.shards[2].parent_sibling_id.as_deref(),
        Some("shard-p2")
    );
    assert_eq!(merged.next_shard_id.as_deref(), Some("shard-z"));
    let req: pb::ListStreamRequest = round_trip(&file, "list_stream_request");
    assert_eq!(req.table_name.as_deref(), Some("orders"));
    let resp: pb::ListStreamResponse = round_trip(&file, "list_stream_response");
    assert_eq!(resp.streams[0].creation_time, 1_705_300_000_000_000);
    let _: pb::DescribeStreamRequest = round_trip(&file, "describe_stream_request");
    let it: pb::GetShardIteratorRequest = round_trip(&file, "get_shard_iterator_request");
    assert_eq!(it.shard_id.as_deref(), Some("shard-child"));
    let _: pb::GetShardIteratorResponse = round_trip(&file, "get_shard_iterator_response");
    let rec: pb::GetStreamRecordRequest = round_trip(&file, "get_stream_record_request");
    assert_eq!(rec.limit, Some(2));
    let err: pb::Error = round_trip(&file, "error_trimmed");
    assert_eq!(err.code, "OTSTrimmedDataAccess");
    let create: pb::CreateTableRequest = round_trip(&file, "create_status_table_request");
    assert_eq!(create.table_meta.unwrap().primary_key.len(), 3);
}

#[test]
fn describe_table_response_matches_and_table_status_is_read() {
    let file = load("protobuf.json");
    let plain: pb::DescribeTableResponse = round_trip(&file, "describe_table_response");
    assert_eq!(plain.table_status, None);
    assert_eq!(
        plain.stream_details.as_ref().unwrap().expiration_time,
        Some(24)
    );
    let with = pb::DescribeTableResponse::decode(
        bytes(protobuf_vector(
            &file,
            "describe_table_response_with_table_status",
        ))
        .as_slice(),
    )
    .unwrap();
    assert_eq!(with.table_status, Some(1));
    assert_eq!(
        pb::DescribeTableResponse {
            table_status: None,
            ..with
        },
        plain
    );
}

#[test]
fn signature_vectors_verify_and_tampered_copies_fail() {
    let file = load("signature.json");
    for v in vectors(&file) {
        let name = v["name"].as_str().unwrap();
        let headers: Vec<(String, String)> = v["headers_signed"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, x)| (k.clone(), x.as_str().unwrap().to_owned()))
            .collect();
        let path = v["path"].as_str().unwrap();
        let action = path.trim_start_matches('/');
        let secret = v["access_key_secret"].as_str().unwrap();
        let body = hex::decode(v["body_hex"].as_str().unwrap()).unwrap();
        assert_eq!(
            localcloud::ots::content_md5(&body),
            headers
                .iter()
                .find(|(k, _)| k == "x-ots-contentmd5")
                .unwrap()
                .1,
            "{name}: md5"
        );
        let mut tampered = headers.clone();
        tampered[0].1.push('x');
        if v["kind"] == "response" {
            let signer = Signer::v2(v["access_key_id"].as_str().unwrap(), secret);
            assert_eq!(
                response_string_to_sign(action, &headers),
                v["string_to_sign"].as_str().unwrap()
            );
            let want = v["expected_authorization"].as_str().unwrap();
            assert_eq!(signer.authorization(action, &headers), want, "{name}");
            assert_ne!(
                signer.authorization(action, &tampered),
                want,
                "{name}: tampered"
            );
            continue;
        }
        let want = v["expected_signature"].as_str().unwrap();
        let string = request_string_to_sign(action, &headers);
        let sign = |s: &str| match v.get("v4_region") {
            Some(region) => {
                let key = v4_signing_key(
                    secret,
                    v["v4_sign_date"].as_str().unwrap(),
                    region.as_str().unwrap(),
                );
                assert_eq!(key, v["v4_signing_key_base64"].as_str().unwrap());
                sign_v4(&key, s)
            }
            None => sign_v2(secret, s),
        };
        let expected_string = v["string_to_sign"].as_str().unwrap();
        assert_eq!(
            if v.get("v4_region").is_some() {
                format!("{string}ots")
            } else {
                string.clone()
            },
            expected_string,
            "{name}: string to sign"
        );
        assert_eq!(sign(&string), want, "{name}");
        assert_ne!(
            sign(&request_string_to_sign(action, &tampered)),
            want,
            "{name}: tampered"
        );
        assert_ne!(
            sign(&request_string_to_sign("GetRow", &headers)),
            want,
            "{name}: other action"
        );
    }
}
