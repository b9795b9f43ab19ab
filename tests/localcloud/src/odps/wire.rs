//! The Tunnel block format: protobuf-style fields per record, a CRC-32C per record,
//! and a trailer with the record count and a checksum of the record checksums.
//!
//! [`decode_block`] (and [`BlockDecoder`], which decodes a block as it arrives)
//! verifies a block exactly as the service does (every record
//! checksum, the count, the final checksum, field numbers and wire types against
//! the schema, value ranges) and returns the records only if the whole block is
//! valid. [`encode_block`] writes the same format for download sessions.

use bytes::Bytes;

pub use super::block_decoder::{decode_block, BlockDecoder};
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

pub(super) struct Cursor<'a> {
    data: &'a [u8],
    /// The same bytes, shared by the values decoded from them.
    shared: &'a Bytes,
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `data`; string values share it.
    pub(super) fn new(data: &'a Bytes) -> Self {
        Self {
            data,
            shared: data,
            pos: 0,
        }
    }

    pub(super) fn at(data: &'a Bytes, pos: usize) -> Self {
        Self {
            data,
            shared: data,
            pos,
        }
    }

    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    fn varint(&mut self) -> Result<u64, BlockError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = *self
                .data
                .get(self.pos)
                .ok_or(BlockError::Truncated(self.pos))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(BlockError::Varint(self.pos))
    }

    /// The next `n` bytes as a value sharing the block's buffer.
    fn shared(&mut self, n: usize) -> Result<Bytes, BlockError> {
        let start = self.pos;
        self.bytes(n)?;
        Ok(self.shared.slice(start..self.pos))
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], BlockError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(BlockError::Truncated(self.data.len()))?;
        let slice = &self.data[self.pos..end];
        self.pos = end;
        Ok(slice)
    }
}

fn unzigzag64(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn zigzag64(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag32(n: u64) -> i32 {
    let n = n as u32;
    ((n >> 1) as i32) ^ -((n & 1) as i32)
}

fn zigzag32(n: i32) -> u64 {
    u64::from(((n << 1) ^ (n >> 31)) as u32)
}

/// The CRC-32C of one record, fed piece by piece. Small pieces (field numbers,
/// integers) are gathered and checksummed together: one call per piece costs more
/// than the checksum itself.
struct RecordCrc {
    crc: u32,
    pending: [u8; 32],
    len: usize,
}

impl RecordCrc {
    fn new() -> Self {
        Self {
            crc: 0,
            pending: [0; 32],
            len: 0,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() <= self.pending.len() {
            self.pending[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
            return;
        }
        self.flush();
        if bytes.len() <= self.pending.len() {
            self.pending[..bytes.len()].copy_from_slice(bytes);
            self.len = bytes.len();
        } else {
            self.crc = crc32c::crc32c_append(self.crc, bytes);
        }
    }

    fn flush(&mut self) {
        if self.len > 0 {
            self.crc = crc32c::crc32c_append(self.crc, &self.pending[..self.len]);
            self.len = 0;
        }
    }

    /// The record's checksum; the accumulator starts over.
    fn finish(&mut self) -> u32 {
        self.flush();
        std::mem::take(&mut self.crc)
    }
}

/// What one step of decoding yields: a record, or the trailer.
pub(super) enum Unit {
    /// A record and its checksum.
    Record(Row, u32),
    Trailer {
        count: i64,
        checksum: u32,
    },
}

/// Decodes the record (or trailer) that starts at the cursor, checking its checksum,
/// field numbers, wire types and values against `columns`. `record` is the index
/// of the record, for errors. [`BlockError::Truncated`] means the data ended first.
pub(super) fn decode_unit(
    cur: &mut Cursor<'_>,
    columns: &[OdpsType],
    record: usize,
) -> Result<Unit, BlockError> {
    let mut row: Row = vec![None; columns.len()];
    let mut crc = RecordCrc::new();
    let mut last_field = 0u64;
    loop {
        let at = cur.pos;
        let key = cur.varint()?;
        let (field, wire_type) = (key >> 3, (key & 7) as u32);
        if field > columns.len() as u64 && wire_type != 0 {
            return Err(BlockError::MarkerWireType {
                field,
                wire_type,
                at,
            });
        }
        if field == TUNNEL_END_RECORD {
            let found = cur.varint()? as u32;
            let computed = crc.finish();
            if found != computed {
                return Err(BlockError::RecordChecksum {
                    record,
                    found,
                    computed,
                });
            }
            return Ok(Unit::Record(row, computed));
        } else if field == TUNNEL_META_COUNT {
            let count = unzigzag64(cur.varint()?);
            if last_field != 0 {
                // The trailer inside a record.
                return Err(BlockError::Count {
                    found: count,
                    actual: record,
                });
            }
            let at = cur.pos;
            let key = cur.varint()?;
            if key != TUNNEL_META_CHECKSUM << 3 {
                return Err(BlockError::TrailerTag {
                    found: key >> 3,
                    at,
                });
            }
            let checksum = cur.varint()? as u32;
            return Ok(Unit::Trailer { count, checksum });
        } else if field >= 1 && field <= columns.len() as u64 {
            if field <= last_field {
                return Err(BlockError::FieldOrder { record, field });
            }
            let ty = &columns[(field - 1) as usize];
            if wire_type != ty.wire_type() {
                return Err(BlockError::WireType {
                    record,
                    field,
                    found: wire_type,
                    expected: ty.wire_type(),
                    column_type: ty.to_string(),
                });
            }
            crc.feed(&(field as u32).to_le_bytes());
            let value = read_value(cur, ty, &mut crc).map_err(|e| e.in_field(record, field))?;
            row[(field - 1) as usize] = Some(value);
            last_field = field;
        } else {
            return Err(BlockError::UnknownField {
                record,
                field,
                columns: columns.len(),
            });
        }
    }
}

/// A value-level failure before it is tied to a record and field.
enum ValueError {
    Block(BlockError),
    Bad(String),
}

impl From<BlockError> for ValueError {
    fn from(e: BlockError) -> Self {
        ValueError::Block(e)
    }
}

impl ValueError {
    fn in_field(self, record: usize, field: u64) -> BlockError {
        match self {
            ValueError::Block(e) => e,
            ValueError::Bad(reason) => BlockError::BadValue {
                record,
                field,
                reason,
            },
        }
    }
}

fn read_value(
    cur: &mut Cursor<'_>,
    ty: &OdpsType,
    crc: &mut RecordCrc,
) -> Result<Value, ValueError> {
    let mut feed = |bytes: &[u8]| crc.feed(bytes);
    Ok(match ty {
        OdpsType::Bigint
        | OdpsType::Int
        | OdpsType::Smallint
        | OdpsType::Tinyint
        | OdpsType::Datetime
        | OdpsType::Date
        | OdpsType::IntervalYearMonth => {
            let v = unzigzag64(cur.varint()?);
            if let Some((lo, hi)) = ty.int_range() {
                if !(lo..=hi).contains(&v) {
                    return Err(ValueError::Bad(format!("{v} out of range for {ty}")));
                }
            }
            feed(&v.to_le_bytes());
            Value::Int(v)
        }
        OdpsType::Boolean => {
            let v = cur.varint()?;
            if v > 1 {
                return Err(ValueError::Bad(format!("boolean byte {v}")));
            }
            feed(&[v as u8]);
            Value::Bool(v == 1)
        }
        OdpsType::Double => {
            let b = cur.bytes(8)?;
            feed(b);
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Value::Double(f64::from_le_bytes(a))
        }
        OdpsType::Float => {
            let b = cur.bytes(4)?;
            feed(b);
            let mut a = [0u8; 4];
            a.copy_from_slice(b);
            Value::Float(f32::from_le_bytes(a))
        }
        OdpsType::String
        | OdpsType::Binary
        | OdpsType::Json
        | OdpsType::Decimal(_)
        | OdpsType::Varchar(_)
        | OdpsType::Char(_) => {
            let len = usize::try_from(cur.varint()?).map_err(|_| BlockError::Truncated(cur.pos))?;
            let b = cur.shared(len)?;
            check_text(ty, &b).map_err(ValueError::Bad)?;
            feed(&b);
            Value::Bytes(b)
        }
        OdpsType::Timestamp | OdpsType::TimestampNtz | OdpsType::IntervalDayTime => {
            let seconds = unzigzag64(cur.varint()?);
            let nanos = unzigzag32(cur.varint()?);
            if !(0..1_000_000_000).contains(&nanos) {
                return Err(ValueError::Bad(format!("nanoseconds {nanos} out of range")));
            }
            feed(&seconds.to_le_bytes());
            feed(&nanos.to_le_bytes());
            Value::Timestamp { seconds, nanos }
        }
        OdpsType::Array(elem) => Value::Array(read_elements(cur, elem, crc)?),
        OdpsType::Map(k, v) => {
            let keys = read_elements(cur, k, crc)?;
            let values = read_elements(cur, v, crc)?;
            if keys.len() != values.len() {
                return Err(ValueError::Bad(format!(
                    "map with {} keys and {} values",
                    keys.len(),
                    values.len()
                )));
            }
            Value::Map(keys, values)
        }
        OdpsType::Struct(fields) => {
            let mut out = Vec::with_capacity(fields.len());
            for (_, fty) in fields {
                out.push(read_nullable(cur, fty, crc)?);
            }
            Value::Struct(out)
        }
    })
}

fn read_nullable(
    cur: &mut Cursor<'_>,
    ty: &OdpsType,
    crc: &mut RecordCrc,
) -> Result<Option<Value>, ValueError> {
    match cur.varint()? {
        1 => Ok(None),
        0 => Ok(Some(read_value(cur, ty, crc)?)),
        other => Err(ValueError::Bad(format!("null flag {other}"))),
    }
}

fn read_elements(
    cur: &mut Cursor<'_>,
    ty: &OdpsType,
    crc: &mut RecordCrc,
) -> Result<Vec<Option<Value>>, ValueError> {
    let count = cur.varint()?;
    // Each element takes a byte at least: more than the data holds cannot be whole.
    if count > (cur.data.len() - cur.pos) as u64 {
        return Err(ValueError::Block(BlockError::Truncated(cur.data.len())));
    }
    (0..count).map(|_| read_nullable(cur, ty, crc)).collect()
}

fn check_text(ty: &OdpsType, bytes: &[u8]) -> Result<(), String> {
    match ty {
        OdpsType::Varchar(n) | OdpsType::Char(n) => {
            let s = std::str::from_utf8(bytes).map_err(|_| format!("{ty} value is not UTF-8"))?;
            let chars = s.chars().count();
            if chars > *n as usize {
                return Err(format!("{chars} characters exceed {ty}"));
            }
            Ok(())
        }
        OdpsType::Decimal(_) => {
            let s =
                std::str::from_utf8(bytes).map_err(|_| "decimal text is not ASCII".to_owned())?;
            if is_decimal_text(s) {
                Ok(())
            } else {
                Err(format!("invalid decimal text {s:?}"))
            }
        }
        _ => Ok(()),
    }
}

/// Plain (`-12.50`) or exponent (`1E+2`) decimal text.
fn is_decimal_text(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let m = mantissa.strip_prefix(['-', '+']).unwrap_or(mantissa);
    let (int, frac) = m.split_once('.').unwrap_or((m, ""));
    let digits_ok = (!int.is_empty() || !frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit());
    let exp_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    digits_ok && exp_ok
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
        Value::Map(keys, values) => {
            write_elements(out, keys, crc);
            write_elements(out, values, crc);
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
    fn record_checksum_fed_in_pieces_is_the_checksum_of_the_whole() {
        let data: Vec<u8> = (0..=255u8).cycle().take(700).collect();
        for cuts in [
            vec![4, 8, 9, 13, 21, 621, 625, 700],
            vec![1, 2, 3, 35, 36, 100, 101, 700],
            vec![700],
            vec![32, 64, 96, 700],
        ] {
            let mut crc = RecordCrc::new();
            let mut from = 0;
            for to in cuts {
                crc.feed(&data[from..to]);
                from = to;
            }
            assert_eq!(crc.finish(), crc32c::crc32c(&data));
            assert_eq!(crc.finish(), 0, "finish starts over");
        }
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

    #[test]
    fn decimal_text_forms() {
        for ok in ["1", "-0.001", "123.45", "1E+2", ".5", "5."] {
            assert!(is_decimal_text(ok), "{ok}");
        }
        for bad in ["", "-", "1.2.3", "abc", "1e", "0x10"] {
            assert!(!is_decimal_text(bad), "{bad}");
        }
    }
}
