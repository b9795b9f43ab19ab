//! The Tunnel block format: protobuf-style fields per record, a CRC-32C per record,
//! and a trailer with the record count and a checksum of the record checksums.
//!
//! [`decode_block`] (and [`BlockDecoder`], which decodes a block as it arrives)
//! verifies a block exactly as the service does (every record
//! checksum, the count, the final checksum, field numbers and wire types against
//! the schema, value ranges) and returns the records only if the whole block is
//! valid; [`check_block`] verifies it the same way and keeps it as it came, an
//! [`EncodedBlock`] to decode later. [`encode_block`] writes the same format for
//! download sessions.

pub use super::block_decoder::{check_block, decode_block, BlockDecoder, EncodedBlock};
use super::types::{OdpsType, Row, Value};

/// Field number of the end-of-record tag.
pub const TUNNEL_END_RECORD: u64 = 33_553_408;
/// Field number of the record count in the trailer.
pub const TUNNEL_META_COUNT: u64 = 33_554_430;
/// Field number of the final checksum in the trailer.
pub const TUNNEL_META_CHECKSUM: u64 = 33_554_431;

/// Why a block was rejected. Rendered as `MalformedDataStream`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlockError {
    /// The data ended inside a record or the trailer.
    #[error("data stream truncated at byte {0}")]
    Truncated(usize),
    #[error("malformed varint at byte {0}")]
    Varint(usize),
    #[error("record {record}: checksum mismatch (block says {found:#010x}, data gives {computed:#010x})")]
    RecordChecksum {
        record: usize,
        found: u32,
        computed: u32,
    },
    #[error("trailer: record count {found} but the block holds {actual} records")]
    Count { found: i64, actual: usize },
    #[error("trailer: final checksum mismatch (block says {found:#010x}, records give {computed:#010x})")]
    FinalChecksum { found: u32, computed: u32 },
    #[error("record {record}: field number {field} outside the {columns} schema columns")]
    UnknownField {
        record: usize,
        field: u64,
        columns: usize,
    },
    #[error("record {record}: field {field} has wire type {found}, column type {column_type} needs {expected}")]
    WireType {
        record: usize,
        field: u64,
        found: u32,
        expected: u32,
        column_type: String,
    },
    #[error("record {record}: field {field} out of order or repeated")]
    FieldOrder { record: usize, field: u64 },
    #[error("record {record}: field {field}: {reason}")]
    BadValue {
        record: usize,
        field: u64,
        reason: String,
    },
    #[error("tag of field {field} at byte {at} has wire type {wire_type}, expected 0")]
    MarkerWireType {
        field: u64,
        wire_type: u32,
        at: usize,
    },
    #[error("{0} bytes after the trailer")]
    TrailingData(usize),
    #[error("tag {found} at byte {at} where the trailer's checksum tag was expected")]
    TrailerTag { found: u64, at: usize },
}

pub(super) fn unzigzag64(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn zigzag64(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

pub(super) fn unzigzag32(n: u64) -> i32 {
    let n = n as u32;
    ((n >> 1) as i32) ^ -((n & 1) as i32)
}

fn zigzag32(n: i32) -> u64 {
    u64::from(((n << 1) ^ (n >> 31)) as u32)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encodes rows (values for `columns`, in order) as one block with the trailer.
pub fn encode_block(rows: &[Row], columns: &[OdpsType]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut record_crcs = Vec::with_capacity(rows.len() * 4);
    for row in rows {
        let mut crc = 0u32;
        for (i, (value, ty)) in row.iter().zip(columns).enumerate() {
            let Some(value) = value else { continue };
            let field = (i + 1) as u64;
            put_varint(&mut out, (field << 3) | u64::from(ty.wire_type()));
            crc = crc32c::crc32c_append(crc, &(field as u32).to_le_bytes());
            write_value(&mut out, value, &mut crc);
        }
        put_varint(&mut out, TUNNEL_END_RECORD << 3);
        put_varint(&mut out, u64::from(crc));
        record_crcs.extend_from_slice(&crc.to_le_bytes());
    }
    put_varint(&mut out, TUNNEL_META_COUNT << 3);
    put_varint(&mut out, zigzag64(rows.len() as i64));
    put_varint(&mut out, TUNNEL_META_CHECKSUM << 3);
    put_varint(&mut out, u64::from(crc32c::crc32c(&record_crcs)));
    out
}

fn write_value(out: &mut Vec<u8>, value: &Value, crc: &mut u32) {
    let mut feed = |bytes: &[u8]| *crc = crc32c::crc32c_append(*crc, bytes);
    match value {
        Value::Int(v) => {
            put_varint(out, zigzag64(*v));
            feed(&v.to_le_bytes());
        }
        Value::Bool(b) => {
            out.push(u8::from(*b));
            feed(&[u8::from(*b)]);
        }
        Value::Double(d) => {
            out.extend_from_slice(&d.to_le_bytes());
            feed(&d.to_le_bytes());
        }
        Value::Float(f) => {
            out.extend_from_slice(&f.to_le_bytes());
            feed(&f.to_le_bytes());
        }
        Value::Bytes(b) => {
            put_varint(out, b.len() as u64);
            out.extend_from_slice(b);
            feed(b);
        }
        Value::Timestamp { seconds, nanos } => {
            put_varint(out, zigzag64(*seconds));
            put_varint(out, zigzag32(*nanos));
            feed(&seconds.to_le_bytes());
            feed(&nanos.to_le_bytes());
        }
        Value::Array(items) => write_elements(out, items, crc),
        Value::Map(map) => {
            write_elements(out, &map.keys, crc);
            write_elements(out, &map.values, crc);
        }
        Value::Struct(fields) => {
            for f in fields {
                write_nullable(out, f.as_ref(), crc);
            }
        }
    }
}

fn write_nullable(out: &mut Vec<u8>, value: Option<&Value>, crc: &mut u32) {
    match value {
        None => out.push(1),
        Some(v) => {
            out.push(0);
            write_value(out, v, crc);
        }
    }
}

fn write_elements(out: &mut Vec<u8>, items: &[Option<Value>], crc: &mut u32) {
    put_varint(out, items.len() as u64);
    for item in items {
        write_nullable(out, item.as_ref(), crc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn basic_columns() -> Vec<OdpsType> {
        [
            "bigint", "string", "double", "boolean", "datetime", "decimal",
        ]
        .iter()
        .map(|t| OdpsType::parse(t).unwrap())
        .collect()
    }

    #[test]
    fn empty_block_is_just_the_trailer() {
        let block = Bytes::from(encode_block(&[], &basic_columns()));
        assert_eq!(hex::encode(&block), "f0ffff7f00f8ffff7f00");
        assert!(decode_block(&block, &basic_columns()).unwrap().is_empty());
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let rows = vec![
            vec![
                Some(Value::Int(-5)),
                Some(Value::Bytes(Bytes::from_static(b"x"))),
                None,
                Some(Value::Bool(false)),
                Some(Value::Int(1_704_164_645_678)),
                Some(Value::Bytes(Bytes::from_static(b"1E+2"))),
            ],
            vec![None; 6],
        ];
        let block = Bytes::from(encode_block(&rows, &basic_columns()));
        assert_eq!(decode_block(&block, &basic_columns()).unwrap(), rows);
    }

    #[test]
    fn truncation_and_trailing_bytes_are_rejected() {
        let block = Bytes::from(encode_block(
            &[vec![Some(Value::Int(1))]],
            &[OdpsType::Bigint],
        ));
        for cut in 0..block.len() {
            assert!(
                decode_block(&block.slice(..cut), &[OdpsType::Bigint]).is_err(),
                "{cut}"
            );
        }
        let mut longer = block.to_vec();
        longer.push(0);
        assert_eq!(
            decode_block(&Bytes::from(longer), &[OdpsType::Bigint]),
            Err(BlockError::TrailingData(1))
        );
    }

    #[test]
    fn mistyped_and_out_of_range_fields_are_rejected() {
        let block = Bytes::from(encode_block(
            &[vec![Some(Value::Int(300))]],
            &[OdpsType::Bigint],
        ));
        assert!(matches!(
            decode_block(&block, &[OdpsType::Tinyint]),
            Err(BlockError::BadValue { .. })
        ));
        assert!(matches!(
            decode_block(&block, &[OdpsType::String]),
            Err(BlockError::WireType { .. })
        ));
        assert!(matches!(
            decode_block(&block, &[]),
            Err(BlockError::UnknownField { .. })
        ));
    }

    #[test]
    fn string_values_share_the_block_buffer() {
        let rows = vec![vec![Some(Value::Bytes(Bytes::from_static(b"shared")))]];
        let block = Bytes::from(encode_block(&rows, &[OdpsType::String]));
        let decoded = decode_block(&block, &[OdpsType::String]).unwrap();
        let Some(Value::Bytes(b)) = &decoded[0][0] else {
            panic!("{decoded:?}")
        };
        assert_eq!(&b[..], b"shared");
        let range = block.as_ptr_range();
        assert!(
            range.contains(&b.as_ptr()),
            "the value is a slice of the block"
        );
    }
}
