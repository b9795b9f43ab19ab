use super::*;

fn doc(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

fn vector(name: &str) -> (Vec<u8>, serde_json::Value) {
    let d = doc(include_str!("../../testdata/plainbuffer.json"));
    let v = d["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap()
        .clone();
    (hex::decode(v["hex"].as_str().unwrap()).unwrap(), v)
}

#[test]
fn crc8_matches_the_sdk_table_and_steps() {
    let d = doc(include_str!("../../testdata/crc8.json"));
    let table: Vec<u8> = d["table_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| u8::from_str_radix(h.as_str().unwrap(), 16).unwrap())
        .collect();
    assert_eq!(table, CRC8_TABLE.to_vec());
    assert_eq!(
        crc8(0, &16909060i32.to_le_bytes()),
        d["int32_le"]["crc"].as_u64().unwrap() as u8
    );
    assert_eq!(
        crc8(0, &1705307400000i64.to_le_bytes()),
        d["int64_le"]["crc"].as_u64().unwrap() as u8
    );
    assert_eq!(
        crc8(0, &(-2i64).to_le_bytes()),
        d["int64_negative_le"]["crc"].as_u64().unwrap() as u8
    );
    assert_eq!(
        crc8(0, b"user-001"),
        d["utf8_string"]["crc"].as_u64().unwrap() as u8
    );
    let mut crc = 0;
    let mut seen = Vec::new();
    for b in [1u8, 3, 7, 255, 128, 0] {
        crc = crc8(crc, &[b]);
        seen.push(crc);
    }
    assert_eq!(seen, vec![7, 28, 65, 51, 16, 112]);
}

fn expected_value(v: &serde_json::Value) -> CellValue {
    match v["type"].as_str().unwrap() {
        "STRING" => CellValue::String(v["value"].as_str().unwrap().into()),
        "INTEGER" => CellValue::Integer(v["value"].as_i64().unwrap()),
        "DOUBLE" => CellValue::Double(v["value"].as_f64().unwrap()),
        "BOOLEAN" => CellValue::Boolean(v["value"].as_bool().unwrap()),
        "BINARY" => CellValue::Binary(hex::decode(v["value_hex"].as_str().unwrap()).unwrap()),
        other => panic!("type {other}"),
    }
}

#[test]
fn decodes_every_vector_with_its_checksums_and_sequence_info() {
    let d = doc(include_str!("../../testdata/plainbuffer.json"));
    for v in d["vectors"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let row = decode_single_row(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let dec = &v["decoded"];
        let pk = dec["primary_key"].as_array().unwrap();
        assert_eq!(row.primary_key.len(), pk.len(), "{name}");
        for (c, e) in row.primary_key.iter().zip(pk) {
            assert_eq!(c.name, e["name"].as_str().unwrap());
            assert_eq!(c.value.as_ref().unwrap(), &expected_value(&e["value"]));
        }
        let cells = dec["cells"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        assert_eq!(row.cells.len(), cells.len(), "{name}");
        for (c, e) in row.cells.iter().zip(cells) {
            assert_eq!(c.name, e["name"].as_str().unwrap(), "{name}");
            assert_eq!(c.timestamp, e["timestamp"].as_i64(), "{name}");
            if e["value"].is_object() {
                assert_eq!(c.value.as_ref().unwrap(), &expected_value(&e["value"]));
            } else {
                assert!(c.value.is_none());
            }
        }
        assert_eq!(row.delete_marker, dec["delete_marker"].as_bool().unwrap());
        match dec.get("sequence_info") {
            Some(s) => {
                let info = row.sequence_info.unwrap();
                assert_eq!(i64::from(info.epoch), s["epoch"].as_i64().unwrap());
                assert_eq!(info.timestamp_us, s["timestamp_us"].as_i64().unwrap());
                assert_eq!(i64::from(info.row_index), s["row_index"].as_i64().unwrap());
            }
            None => assert!(row.sequence_info.is_none(), "{name}"),
        }
    }
}

#[test]
fn encodes_request_rows_byte_for_byte() {
    let (put, v) = vector("put_row_request");
    let row = decode_single_row(&put).unwrap();
    assert_eq!(
        encode_row(&row.primary_key, &row.cells, false),
        put,
        "{}",
        v["name"]
    );
    let (upd, _) = vector("update_row_request");
    let row = decode_single_row(&upd).unwrap();
    assert!(row
        .cells
        .iter()
        .any(|c| c.op == Some(OP_DELETE_ONE_VERSION)));
    assert!(row
        .cells
        .iter()
        .any(|c| c.op == Some(OP_DELETE_ALL_VERSION)));
    assert_eq!(encode_row(&row.primary_key, &row.cells, false), upd);
    let (del, _) = vector("delete_row_request");
    let row = decode_single_row(&del).unwrap();
    assert_eq!(encode_row(&row.primary_key, &[], true), del);
}

#[test]
fn a_flipped_byte_fails_a_checksum_or_the_grammar() {
    let (bytes, _) = vector("stream_record_update");
    for i in 4..bytes.len() {
        let mut broken = bytes.clone();
        broken[i] ^= 0x10;
        // Bytes of the extension are outside every checksum; all others are covered.
        if let Ok(row) = decode_single_row(&broken) {
            let orig = decode_single_row(&bytes).unwrap();
            assert_eq!(row.primary_key, orig.primary_key, "byte {i}");
            assert_eq!(row.cells, orig.cells, "byte {i}");
        }
    }
}

#[test]
fn truncated_input_is_an_error_not_a_panic() {
    let (bytes, _) = vector("stream_record_put");
    for n in 0..bytes.len() {
        let _ = decode_rows(&bytes[..n]);
    }
    assert!(decode_rows(&bytes[..bytes.len() - 1]).is_err());
}

fn value_strategy() -> impl proptest::strategy::Strategy<Value = CellValue> {
    use proptest::prelude::*;
    prop_oneof![
        any::<i64>().prop_map(CellValue::Integer),
        any::<f64>()
            .prop_filter("NaN has many encodings", |d| !d.is_nan())
            .prop_map(CellValue::Double),
        any::<bool>().prop_map(CellValue::Boolean),
        ".{0,20}".prop_map(CellValue::String),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(CellValue::Binary),
    ]
}

fn cell_strategy() -> impl proptest::strategy::Strategy<Value = Cell> {
    use proptest::prelude::*;
    (
        "[a-z_]{1,8}",
        proptest::option::of(value_strategy()),
        proptest::option::of(prop_oneof![
            Just(OP_DELETE_ALL_VERSION),
            Just(OP_DELETE_ONE_VERSION)
        ]),
        proptest::option::of(any::<i64>()),
    )
        .prop_map(|(name, value, op, timestamp)| Cell {
            name,
            value,
            op,
            timestamp,
        })
}

proptest::proptest! {
    #[test]
    fn encoded_rows_decode_to_themselves(
        pk in proptest::collection::vec(("[a-z]{1,6}", value_strategy()), 1..4),
        cells in proptest::collection::vec(cell_strategy(), 0..6),
        marker in proptest::bool::ANY,
    ) {
        let pk: Vec<Cell> = pk.into_iter().map(|(n, v)| Cell::key(&n, v)).collect();
        let bytes = encode_row(&pk, &cells, marker);
        let row = decode_single_row(&bytes).unwrap();
        proptest::prop_assert_eq!(row.primary_key, pk);
        proptest::prop_assert_eq!(row.cells, cells);
        proptest::prop_assert_eq!(row.delete_marker, marker);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
        let mut with_header = vec![0x75, 0, 0, 0];
        with_header.extend_from_slice(&bytes);
        let _ = decode_rows(&bytes);
        let _ = decode_rows(&with_header);
    }

    #[test]
    fn crc8_by_blocks_equals_the_bytewise_loop(
        start in proptest::num::u8::ANY,
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
    ) {
        proptest::prop_assert_eq!(crc8(start, &bytes), crc8_bytewise(start, &bytes));
    }
}
