//! PlainBuffer, Tablestore's row encoding (spec §3): decoder for request rows with every
//! cell and row CRC-8 verified, encoder for response rows and stream records.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

mod decode;
mod encode;

pub use decode::{decode_row, decode_rows};
pub use encode::{encode_row, Encoder};

const HEADER: u32 = 0x75;
const TAG_ROW_PK: u8 = 0x01;
const TAG_ROW_DATA: u8 = 0x02;
const TAG_CELL: u8 = 0x03;
const TAG_CELL_NAME: u8 = 0x04;
const TAG_CELL_VALUE: u8 = 0x05;
const TAG_CELL_TYPE: u8 = 0x06;
const TAG_CELL_TIMESTAMP: u8 = 0x07;
const TAG_DELETE_ROW_MARKER: u8 = 0x08;
const TAG_ROW_CHECKSUM: u8 = 0x09;
const TAG_CELL_CHECKSUM: u8 = 0x0A;
const TAG_EXTENSION: u8 = 0x0B;
const TAG_SEQ_INFO: u8 = 0x0C;
const TAG_SEQ_INFO_EPOCH: u8 = 0x0D;
const TAG_SEQ_INFO_TS: u8 = 0x0E;
const TAG_SEQ_INFO_ROW_INDEX: u8 = 0x0F;

const VT_INTEGER: u8 = 0x00;
const VT_DOUBLE: u8 = 0x01;
const VT_BOOLEAN: u8 = 0x02;
const VT_STRING: u8 = 0x03;
const VT_BLOB: u8 = 0x07;
const VT_INF_MIN: u8 = 0x09;
const VT_INF_MAX: u8 = 0x0A;
const VT_AUTO_INCREMENT: u8 = 0x0B;

/// Cell operation types (`TAG_CELL_TYPE`).
pub const OP_DELETE_ALL_VERSIONS: u8 = 0x01;
pub const OP_DELETE_ONE_VERSION: u8 = 0x03;
pub const OP_INCREMENT: u8 = 0x04;

/// A primary-key value. Ordering: `InfMin` < every value < `InfMax`; integers signed,
/// strings and binaries by unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PkValue {
    InfMin,
    Integer(i64),
    String(String),
    Binary(Vec<u8>),
    AutoIncrement,
    InfMax,
}

impl PkValue {
    fn rank(&self) -> u8 {
        match self {
            PkValue::InfMin => 0,
            PkValue::Integer(_) => 1,
            PkValue::String(_) => 2,
            PkValue::Binary(_) => 3,
            PkValue::AutoIncrement => 4,
            PkValue::InfMax => 5,
        }
    }
}

impl Ord for PkValue {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PkValue::Integer(a), PkValue::Integer(b)) => a.cmp(b),
            (PkValue::String(a), PkValue::String(b)) => a.as_bytes().cmp(b.as_bytes()),
            (PkValue::Binary(a), PkValue::Binary(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PkValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Integer(i64),
    Double(#[serde(with = "f64_bits")] f64),
    Boolean(bool),
    String(String),
    Binary(Vec<u8>),
}

/// One cell of a row: a put (value, optional timestamp), a delete of one version
/// (op 0x03 + timestamp), a delete of all versions (op 0x01) or an increment (op 0x04).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub name: String,
    pub value: Option<Value>,
    pub op: Option<u8>,
    pub timestamp_ms: Option<i64>,
}

/// Stream-record sequence information (the row extension, spec §3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceInfo {
    pub epoch: u32,
    pub timestamp_us: i64,
    pub row_index: u32,
}

/// One PlainBuffer row.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub primary_key: Vec<(String, PkValue)>,
    pub cells: Vec<Cell>,
    pub delete_marker: bool,
    pub sequence_info: Option<SequenceInfo>,
}

/// Doubles are kept as their IEEE bits when persisted, so NaN and infinities survive.
mod f64_bits {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(v.to_bits())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        u64::deserialize(d).map(f64::from_bits)
    }
}

/// Why a PlainBuffer could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("Invalid PlainBuffer: {0}.")]
    Malformed(String),
    #[error("Cell data broken, checksum is mismatch.")]
    CellChecksum,
    #[error("Row data broken, checksum is mismatch.")]
    RowChecksum,
}

fn malformed(what: impl Into<String>) -> DecodeError {
    DecodeError::Malformed(what.into())
}

// ----- CRC-8 -----

const fn crc8_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u8;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 0x80 != 0 {
                (c << 1) ^ 0x07
            } else {
                c << 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC8: [u8; 256] = crc8_table();

/// CRC-8 (polynomial 0x07, init 0) of `bytes`, continuing from `crc`.
pub fn crc8(crc: u8, bytes: &[u8]) -> u8 {
    bytes.iter().fold(crc, |c, b| CRC8[(c ^ b) as usize])
}

fn crc_value(crc: u8, vtype: u8, payload: &[u8]) -> u8 {
    crc8(crc8(crc, &[vtype]), payload)
}

// ----- values -----

/// Type byte and payload (after the type byte) of a primary-key value.
fn pk_payload(value: &PkValue) -> (u8, Vec<u8>) {
    match value {
        PkValue::InfMin => (VT_INF_MIN, Vec::new()),
        PkValue::InfMax => (VT_INF_MAX, Vec::new()),
        PkValue::AutoIncrement => (VT_AUTO_INCREMENT, Vec::new()),
        PkValue::Integer(i) => (VT_INTEGER, i.to_le_bytes().to_vec()),
        PkValue::String(s) => (VT_STRING, length_prefixed(s.as_bytes())),
        PkValue::Binary(b) => (VT_BLOB, length_prefixed(b)),
    }
}

fn value_payload(value: &Value) -> (u8, Vec<u8>) {
    match value {
        Value::Integer(i) => (VT_INTEGER, i.to_le_bytes().to_vec()),
        Value::Double(d) => (VT_DOUBLE, d.to_bits().to_le_bytes().to_vec()),
        Value::Boolean(b) => (VT_BOOLEAN, vec![u8::from(*b)]),
        Value::String(s) => (VT_STRING, length_prefixed(s.as_bytes())),
        Value::Binary(b) => (VT_BLOB, length_prefixed(b)),
    }
}

fn length_prefixed(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + bytes.len());
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc8_matches_the_sdk_check_values() {
        // Java SDK unit test: feeding 1,3,7,255,128,0 from 0.
        let mut crc = 0u8;
        let mut seen = Vec::new();
        for b in [1u8, 3, 7, 255, 128, 0] {
            crc = crc8(crc, &[b]);
            seen.push(crc);
        }
        assert_eq!(seen, vec![7, 28, 65, 51, 16, 112]);
    }

    fn sample_row() -> Row {
        Row {
            primary_key: vec![
                ("a".into(), PkValue::String("k".into())),
                ("b".into(), PkValue::Integer(-7)),
            ],
            cells: vec![
                Cell {
                    name: "c".into(),
                    value: Some(Value::Double(1.5)),
                    op: None,
                    timestamp_ms: Some(10),
                },
                Cell {
                    name: "d".into(),
                    value: None,
                    op: Some(OP_DELETE_ALL_VERSIONS),
                    timestamp_ms: None,
                },
            ],
            delete_marker: false,
            sequence_info: Some(SequenceInfo {
                epoch: 1,
                timestamp_us: 99,
                row_index: 3,
            }),
        }
    }

    #[test]
    fn encoded_rows_decode_to_themselves() {
        let row = sample_row();
        assert_eq!(decode_row(&encode_row(&row)).unwrap(), row);
    }

    #[test]
    fn every_flipped_byte_is_rejected_or_changes_nothing_silently() {
        let bytes = encode_row(&sample_row());
        for i in 0..bytes.len() {
            let mut broken = bytes.clone();
            broken[i] ^= 0x01;
            match decode_row(&broken) {
                Err(_) => {}
                // Only bytes outside every checksum may flip unnoticed: the extension.
                Ok(row) => {
                    let want = sample_row();
                    assert_eq!(row.primary_key, want.primary_key);
                    assert_eq!(row.cells, want.cells);
                }
            }
        }
    }

    #[test]
    fn pk_ordering_puts_infinities_at_the_ends() {
        let mut v = vec![
            PkValue::InfMax,
            PkValue::Integer(5),
            PkValue::InfMin,
            PkValue::Integer(-5),
        ];
        v.sort();
        assert_eq!(
            v,
            vec![
                PkValue::InfMin,
                PkValue::Integer(-5),
                PkValue::Integer(5),
                PkValue::InfMax
            ]
        );
        assert!(PkValue::String("é".into()) > PkValue::String("z".into()));
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn pk_value() -> impl Strategy<Value = PkValue> {
            prop_oneof![
                any::<i64>().prop_map(PkValue::Integer),
                "[a-z0-9é]{0,12}".prop_map(PkValue::String),
                proptest::collection::vec(any::<u8>(), 0..12).prop_map(PkValue::Binary),
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            prop_oneof![
                any::<i64>().prop_map(Value::Integer),
                any::<u64>().prop_map(|b| Value::Double(f64::from_bits(b & !(0x7ff << 52)))),
                any::<bool>().prop_map(Value::Boolean),
                "[ -~é世]{0,16}".prop_map(Value::String),
                proptest::collection::vec(any::<u8>(), 0..16).prop_map(Value::Binary),
            ]
        }

        fn cell() -> impl Strategy<Value = Cell> {
            ("[a-z_]{1,8}", value(), proptest::option::of(any::<i64>())).prop_map(
                |(name, v, ts)| Cell {
                    name,
                    value: Some(v),
                    op: None,
                    timestamp_ms: ts,
                },
            )
        }

        fn row() -> impl Strategy<Value = Row> {
            (
                proptest::collection::vec(("[a-z]{1,6}", pk_value()), 1..4),
                proptest::collection::vec(cell(), 0..6),
                any::<bool>(),
                proptest::option::of((any::<u32>(), any::<i64>(), any::<u32>())),
            )
                .prop_map(|(primary_key, cells, delete_marker, seq)| Row {
                    primary_key,
                    cells,
                    delete_marker,
                    sequence_info: seq.map(|(epoch, timestamp_us, row_index)| SequenceInfo {
                        epoch,
                        timestamp_us,
                        row_index,
                    }),
                })
        }

        proptest! {
            #[test]
            fn rows_round_trip(r in row()) {
                prop_assert_eq!(decode_row(&encode_row(&r)).unwrap(), r);
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
                let mut with_header = HEADER.to_le_bytes().to_vec();
                with_header.extend_from_slice(&bytes);
                let _ = decode_rows(&bytes);
                let _ = decode_rows(&with_header);
            }
        }
    }
}
