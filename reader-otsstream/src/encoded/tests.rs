//! The fast path against the general one: the page decoder (its quick decoder, with
//! `decode_single_row` behind it) against `decode_single_row` alone (same rows, same
//! errors, also on damaged input; a page's records decoded into one `RecordRows` as each
//! alone; the quick decoder taking every well-formed record), and the encoded
//! conversion against `convert` (and `row_change`) + the protocol's `encode_record`
//! (same bytes, same DataX sizes, same errors).

use proptest::prelude::*;
use protocol::records::encode_record;
use protocol::value::record_byte_size;

use super::*;
use crate::plainbuffer::{
    decode_single_row, encode_row, Cell, CellValue, RecordRow, RecordRows, Row,
};

const NAMES: &[&str] = &["pk", "a", "b", "名前", "", "col_long_name_0123456789"];

fn value() -> impl Strategy<Value = CellValue> {
    prop_oneof![
        4 => any::<i64>().prop_map(CellValue::Integer),
        2 => prop_oneof![
            any::<f64>(),
            Just(-0.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(1e21),
            Just(1e-7)
        ]
        .prop_map(CellValue::Double),
        1 => any::<bool>().prop_map(CellValue::Boolean),
        4 => ".{0,20}".prop_map(CellValue::String),
        2 => proptest::collection::vec(any::<u8>(), 0..20).prop_map(CellValue::Binary),
        1 => prop_oneof![
            Just(CellValue::InfMin),
            Just(CellValue::InfMax),
            Just(CellValue::AutoIncrement)
        ],
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(NAMES).prop_map(str::to_owned),
        1 => ".{0,8}",
    ]
}

fn cell() -> impl Strategy<Value = Cell> {
    (
        name(),
        proptest::option::weighted(0.9, value()),
        proptest::option::weighted(
            0.3,
            prop_oneof![
                Just(OP_DELETE_ONE_VERSION),
                Just(OP_DELETE_ALL_VERSION),
                any::<u8>()
            ],
        ),
        // Often a few versions only: cells of one column with equal or older versions.
        proptest::option::weighted(0.8, prop_oneof![any::<i64>(), 0..3i64]),
    )
        .prop_map(|(name, value, op, timestamp)| Cell {
            name,
            value,
            op,
            timestamp,
        })
}

fn key_cell() -> impl Strategy<Value = Cell> {
    (name(), proptest::option::weighted(0.95, value())).prop_map(|(name, value)| Cell {
        name,
        value,
        op: None,
        timestamp: None,
    })
}

fn info() -> impl Strategy<Value = SequenceInfo> {
    (any::<u32>(), any::<i64>(), any::<u32>()).prop_map(|(epoch, timestamp_us, row_index)| {
        SequenceInfo {
            epoch,
            timestamp_us,
            row_index,
        }
    })
}

fn row() -> impl Strategy<Value = Row> {
    (
        proptest::collection::vec(key_cell(), 0..4),
        proptest::collection::vec(cell(), 0..6),
        any::<bool>(),
        proptest::option::weighted(0.9, info()),
    )
        .prop_map(|(primary_key, cells, delete_marker, sequence_info)| Row {
            primary_key,
            cells,
            delete_marker,
            sequence_info,
        })
}

/// A row that puts and deletes versions of two columns only, all valid: what decides
/// which version row-change mode shows.
fn versions_row() -> impl Strategy<Value = Row> {
    let version = (
        proptest::sample::select(&["a", "b"][..]),
        0..4i64,
        proptest::option::weighted(
            0.2,
            prop_oneof![Just(OP_DELETE_ONE_VERSION), Just(OP_DELETE_ALL_VERSION)],
        ),
        proptest::option::weighted(0.8, 0..3i64),
    )
        .prop_map(|(name, v, op, timestamp)| Cell {
            name: name.to_owned(),
            value: op.is_none().then_some(CellValue::Integer(v)),
            op,
            timestamp,
        });
    proptest::collection::vec(version, 0..8).prop_map(|cells| Row {
        primary_key: vec![Cell::key("pk", CellValue::Integer(1))],
        cells,
        delete_marker: false,
        sequence_info: None,
    })
}

/// A stream record's bytes: the row with its sequence-info extension.
fn record_bytes(row: &Row) -> Vec<u8> {
    let mut bytes = encode_row(&row.primary_key, &row.cells, row.delete_marker);
    if let Some(info) = row.sequence_info {
        let mut seq = vec![0x0D];
        seq.extend_from_slice(&info.epoch.to_le_bytes());
        seq.push(0x0E);
        seq.extend_from_slice(&info.timestamp_us.to_le_bytes());
        seq.push(0x0F);
        seq.extend_from_slice(&info.row_index.to_le_bytes());
        let mut ext = vec![0x0C];
        ext.extend_from_slice(&(seq.len() as u32).to_le_bytes());
        ext.extend_from_slice(&seq);
        let mut tail = vec![0x0B];
        tail.extend_from_slice(&(ext.len() as u32).to_le_bytes());
        tail.extend_from_slice(&ext);
        let at = bytes.len() - 2;
        bytes.splice(at..at, tail);
    }
    bytes
}

/// Both decoders on `bytes`: the same row (compared as text: NaN is not equal to
/// itself) or the same error.
fn same_decoding(bytes: &[u8]) -> Result<(), TestCaseError> {
    let general = decode_single_row(bytes);
    let fast = RecordRow::decode(bytes::Bytes::copy_from_slice(bytes));
    match (&general, &fast) {
        (Ok(g), Ok(f)) => prop_assert_eq!(format!("{g:?}"), format!("{:?}", f.to_row())),
        (Err(g), Err(f)) => prop_assert_eq!(g, f),
        _ => prop_assert!(false, "general {general:?}, fast {fast:?}"),
    }
    Ok(())
}

type Encoded = Result<Vec<(Vec<u8>, u64)>, String>;

fn general_encoding(rows: Result<Vec<Vec<Value>>, ConvertError>) -> Encoded {
    rows.map(|rows| {
        rows.iter()
            .map(|r| {
                let mut b = Vec::new();
                encode_record(r, &mut b);
                (b, record_byte_size(r))
            })
            .collect()
    })
    .map_err(|e| e.to_string())
}

fn fast_encoding(r: Result<(), ConvertError>, out: &EncodedRows) -> Encoded {
    r.map(|()| out.iter().map(|(b, s)| (b.to_vec(), s)).collect())
        .map_err(|e| e.to_string())
}

/// Extension entries the general decoder reads past (a sequence info longer than its
/// three fields, an entry of another tag) are taken by the quick decoder too.
#[test]
fn quick_decoder_takes_the_extensions_the_general_one_takes() {
    let row = Row {
        primary_key: vec![Cell::key("pk", CellValue::Integer(7))],
        cells: vec![Cell::put("a", CellValue::String("x".into()), Some(5))],
        delete_marker: false,
        sequence_info: None,
    };
    let mut seq = vec![0x0D, 1, 0, 0, 0, 0x0E];
    seq.extend_from_slice(&42i64.to_le_bytes());
    seq.extend_from_slice(&[0x0F, 3, 0, 0, 0, 0xEE, 0xEE]);
    let mut ext = vec![0x42, 3, 0, 0, 0, b'a', b'b', b'c', 0x0C];
    ext.extend_from_slice(&(seq.len() as u32).to_le_bytes());
    ext.extend_from_slice(&seq);
    let mut tail = vec![0x0B];
    tail.extend_from_slice(&(ext.len() as u32).to_le_bytes());
    tail.extend_from_slice(&ext);
    let mut bytes = record_bytes(&row);
    let at = bytes.len() - 2;
    bytes.splice(at..at, tail);
    let general = decode_single_row(&bytes).expect("the general decoder takes it");
    assert_eq!(
        general.sequence_info,
        Some(SequenceInfo {
            epoch: 1,
            timestamp_us: 42,
            row_index: 3
        })
    );
    assert!(crate::plainbuffer::decoded_quickly(&bytes));
}

/// A record of one row whose attribute cell has `name` and the STRING `value` as raw
/// bytes (UTF-8 or not), every checksum right.
fn raw_text_record(name: &[u8], value: &[u8]) -> Vec<u8> {
    use crate::plainbuffer::crc8;
    let cell = |out: &mut Vec<u8>, name: &[u8], value: &[u8]| -> u8 {
        let mut v = vec![0x03];
        v.extend_from_slice(&(value.len() as u32).to_le_bytes());
        v.extend_from_slice(value);
        out.extend_from_slice(&[0x03, 0x04]);
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name);
        out.push(0x05);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(&v);
        let crc = crc8(crc8(0, name), &v);
        out.extend_from_slice(&[0x0A, crc]);
        crc
    };
    let mut out = 0x75u32.to_le_bytes().to_vec();
    out.push(0x01);
    let key = cell(&mut out, b"pk", b"k");
    out.push(0x02);
    let attribute = cell(&mut out, name, value);
    let row = crc8(0, &[key, attribute, 0]);
    out.extend_from_slice(&[0x09, row]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Names and STRING values that are not UTF-8 (under right checksums, which no
    /// damaged byte leaves) fail both decoders alike; UTF-8 ones pass both.
    #[test]
    fn span_decoder_checks_utf8_as_the_general_one(
        name in proptest::collection::vec(any::<u8>(), 0..8),
        value in proptest::collection::vec(any::<u8>(), 0..12),
        text in ".{0,6}",
    ) {
        same_decoding(&raw_text_record(&name, &value))?;
        same_decoding(&raw_text_record(text.as_bytes(), &value))?;
        same_decoding(&raw_text_record(&name, text.as_bytes()))?;
        prop_assert!(crate::plainbuffer::decoded_quickly(
            &raw_text_record(text.as_bytes(), text.as_bytes())
        ));
    }

    #[test]
    fn span_decoder_equals_the_general_one(row in row()) {
        same_decoding(&record_bytes(&row))?;
    }

    /// The quick decoder takes every well-formed record (every kind of value,
    /// operation, delete marker and sequence info) and finds the general decoder's
    /// row; the tests around it see what either gives for damaged ones.
    #[test]
    fn quick_decoder_takes_every_well_formed_record(row in row()) {
        prop_assert!(crate::plainbuffer::decoded_quickly(&record_bytes(&row)), "{row:?}");
    }

    #[test]
    fn span_decoder_fails_as_the_general_one_on_damaged_rows(
        row in row(), at in any::<prop::sample::Index>(), byte in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let mut bytes = record_bytes(&row);
        let i = at.index(bytes.len());
        if cut {
            bytes.truncate(i);
        } else {
            bytes[i] = byte;
        }
        same_decoding(&bytes)?;
        // Two rows in one record.
        let mut twice = record_bytes(&row);
        twice.extend_from_slice(&record_bytes(&row)[4..]);
        same_decoding(&twice)?;
    }

    #[test]
    fn rows_decoded_into_one_list_equal_rows_decoded_alone(
        records in proptest::collection::vec(
            (row(), any::<prop::sample::Index>(), any::<u8>(), any::<bool>(), any::<bool>()),
            0..6,
        ),
    ) {
        let mut together = RecordRows::default();
        let mut kept = Vec::new();
        for (row, at, byte, damage, keep) in records {
            let mut bytes = record_bytes(&row);
            if damage {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            let alone = RecordRow::decode(bytes.clone().into());
            let pushed = together.push(bytes.into()).map(|r| r.to_row());
            match (&alone, &pushed) {
                (Ok(a), Ok(p)) => prop_assert_eq!(format!("{:?}", a.to_row()), format!("{p:?}")),
                (Err(a), Err(p)) => prop_assert_eq!(a, p),
                _ => prop_assert!(false, "alone {alone:?}, in the list {pushed:?}"),
            }
            if let Ok(a) = alone {
                if keep {
                    kept.push(a);
                } else {
                    together.pop();
                }
            }
        }
        prop_assert_eq!(together.len(), kept.len());
        for (r, a) in together.iter().zip(&kept) {
            prop_assert_eq!(format!("{:?}", r.to_row()), format!("{:?}", a.to_row()));
        }
    }

    #[test]
    fn encoded_multi_version_equals_values_encoded(
        row in row(), action in 0..5i32, export in any::<bool>(), info in info(),
        shard in "[a-z0-9-]{0,12}",
    ) {
        let bytes = record_bytes(&row);
        let general_row = decode_single_row(&bytes).expect("own encoding");
        let fast_row = RecordRow::decode(bytes.into()).expect("own encoding");
        let mut rows = Vec::new();
        let general = general_encoding(
            convert::multi_version(action, &general_row, &info, &shard, export, &mut rows)
                .map(|()| rows),
        );
        let mut out = EncodedRows::default();
        // A buffer already used: nothing of the previous record may remain.
        let _ = multi_version(pb::PUT_ROW, fast_row.row(), &info, "x", true, &mut out);
        let fast = fast_encoding(
            multi_version(action, fast_row.row(), &info, &shard, export, &mut out), &out);
        prop_assert_eq!(general, fast);
    }

    #[test]
    fn encoded_single_version_equals_values_encoded(
        row in row(), action in 0..5i32, export in any::<bool>(), info in info(),
        columns in proptest::collection::vec(name(), 0..5),
    ) {
        let bytes = record_bytes(&row);
        let general_row = decode_single_row(&bytes).expect("own encoding");
        let fast_row = RecordRow::decode(bytes.into()).expect("own encoding");
        let general = general_encoding(
            convert::single_version(action, &general_row, &info, "s-1", &columns, export)
                .map(|r| r.into_iter().collect()),
        );
        let mut out = EncodedRows::default();
        let _ = multi_version(pb::PUT_ROW, fast_row.row(), &info, "x", true, &mut out);
        let fast = fast_encoding(
            single_version(action, fast_row.row(), &info, "s-1", &columns, export, &mut out),
            &out,
        );
        prop_assert_eq!(general, fast);
    }

    #[test]
    fn encoded_row_change_equals_values_encoded(
        row in row(), action in 0..5i32, export in any::<bool>(), info in info(),
        columns in proptest::collection::vec(name(), 0..5),
    ) {
        let bytes = record_bytes(&row);
        let general_row = decode_single_row(&bytes).expect("own encoding");
        let fast_row = RecordRow::decode(bytes.into()).expect("own encoding");
        let general = general_encoding(
            crate::row_change::row_change(action, &general_row, &info, "s-1", &columns, export)
                .map(|r| vec![r]),
        );
        let mut out = EncodedRows::default();
        // Buffers already used, with other columns: nothing of that record may remain.
        let _ = row_change(pb::PUT_ROW, fast_row.row(), &info, "x", &vec!["pk".to_owned(); 7], true, &mut out);
        let fast = fast_encoding(
            row_change(action, fast_row.row(), &info, "s-1", &columns, export, &mut out),
            &out,
        );
        prop_assert_eq!(general, fast);
    }

    #[test]
    fn encoded_row_change_shows_the_same_versions(
        row in versions_row(), action in 1..4i32, info in info(),
        columns in proptest::sample::subsequence(vec!["b".to_owned(), "a".to_owned(), "c".to_owned()], 0..=3),
    ) {
        let bytes = record_bytes(&row);
        let general_row = decode_single_row(&bytes).expect("own encoding");
        let fast_row = RecordRow::decode(bytes.into()).expect("own encoding");
        let general = general_encoding(
            crate::row_change::row_change(action, &general_row, &info, "s-1", &columns, false)
                .map(|r| vec![r]),
        );
        let mut out = EncodedRows::default();
        let fast = fast_encoding(
            row_change(action, fast_row.row(), &info, "s-1", &columns, false, &mut out),
            &out,
        );
        prop_assert_eq!(general, fast);
    }

    #[test]
    fn longs_and_array_lengths_encode_as_rmp_does(v in any::<i64>(), shift in 0..64u32, len in 0..70_000usize) {
        // Every length class of a long: small magnitudes as often as large ones.
        let m = (v >> shift).wrapping_abs();
        for v in [v, v >> shift, m, m.wrapping_neg()] {
            let mut fast = Vec::new();
            put_long(&mut fast, v);
            let mut general = Vec::new();
            rmp::encode::write_sint(&mut general, v).expect("into a Vec");
            prop_assert_eq!(fast, general, "{}", v);
        }
        let mut fast = Vec::new();
        put_array_len(&mut fast, len);
        let mut general = Vec::new();
        rmp::encode::write_array_len(&mut general, len as u32).expect("into a Vec");
        prop_assert_eq!(fast, general, "{}", len);
    }

    #[test]
    fn text_utf16_len_counts_as_encode_utf16(s in any::<String>()) {
        prop_assert_eq!(Text::from(s.as_str()).utf16_len(), s.encode_utf16().count());
    }
}

#[test]
fn the_sdk_vectors_decode_and_convert_alike() {
    let d: serde_json::Value =
        serde_json::from_str(include_str!("../../testdata/plainbuffer.json")).unwrap();
    for v in d["vectors"].as_array().unwrap() {
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        same_decoding(&bytes).unwrap();
    }
}

#[test]
fn longs_at_every_length_class_boundary_encode_as_rmp_does() {
    let edges = [
        0i64,
        127,
        255,
        65535,
        4294967295,
        -32,
        -128,
        -32768,
        -2147483648,
    ];
    for v in edges
        .iter()
        .flat_map(|&e| [e - 1, e, e + 1])
        .chain([i64::MIN, i64::MAX])
    {
        let mut fast = Vec::new();
        put_long(&mut fast, v);
        let mut general = Vec::new();
        rmp::encode::write_sint(&mut general, v).unwrap();
        assert_eq!(fast, general, "{v}");
    }
    for len in [0, 15, 16, 65535, 65536] {
        let mut fast = Vec::new();
        put_array_len(&mut fast, len);
        let mut general = Vec::new();
        rmp::encode::write_array_len(&mut general, len as u32).unwrap();
        assert_eq!(fast, general, "{len}");
    }
}

#[test]
fn strings_of_every_length_class_encode_as_the_protocol_does() {
    for len in [0, 1, 31, 32, 255, 256, 65535, 65536, 70000] {
        let s = "é".repeat(len / 2) + &"x".repeat(len % 2);
        let mut fast = Vec::new();
        let size = put_str(&mut fast, s.as_str().into());
        let mut general = Vec::new();
        protocol::records::encode_value(&Value::String(s.clone()), &mut general);
        assert_eq!(fast, general, "length {len}");
        assert_eq!(size, Value::String(s).byte_size(), "length {len}");
    }
}

#[test]
fn operations_encode_as_their_texts_do() {
    for (op, text) in [
        (Op::Put, "U"),
        (Op::DeleteOne, "DO"),
        (Op::DeleteAll, "DA"),
        (Op::DeleteRow, "DR"),
    ] {
        let mut fast = Vec::new();
        let size = op.put(&mut fast);
        let mut general = Vec::new();
        protocol::records::encode_value(&Value::String(text.into()), &mut general);
        assert_eq!(fast, general, "{text}");
        assert_eq!(size, Value::String(text.into()).byte_size(), "{text}");
    }
}
