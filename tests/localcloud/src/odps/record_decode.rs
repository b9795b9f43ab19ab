//! Reading one record (or the trailer) of a Tunnel block: field numbers, wire
//! types and values checked against the schema, and the record checksum.

use bytes::Bytes;

use super::types::{MapValue, OdpsType, Row, Value};
use super::wire::{
    unzigzag32, unzigzag64, BlockError, TUNNEL_END_RECORD, TUNNEL_META_CHECKSUM, TUNNEL_META_COUNT,
};

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

/// The CRC-32C of one record, fed piece by piece. The pieces are gathered and
/// checksummed in one call at the record's end (`crc-fast`'s folding, which costs a
/// fraction of a chain of calls over field numbers and values); a piece of 64 KiB or
/// more goes into the checksum directly instead of being copied. Kept by the block
/// decoder, so its buffer serves record after record.
#[derive(Debug, Default)]
pub(super) struct RecordCrc {
    /// The checksum of the pieces before `pending`, once a long piece went in directly.
    crc: Option<u32>,
    pending: Vec<u8>,
}

/// Pieces at least this long go into the checksum directly.
const DIRECT_CRC_BYTES: usize = 64 * 1024;

impl RecordCrc {
    pub(super) fn new() -> Self {
        Self::default()
    }

    fn feed(&mut self, bytes: &[u8]) {
        if bytes.len() < DIRECT_CRC_BYTES {
            self.pending.extend_from_slice(bytes);
            return;
        }
        let crc = crc32c::crc32c_append(self.crc.unwrap_or(0), &self.pending);
        self.pending.clear();
        self.crc = Some(crc32c::crc32c_append(crc, bytes));
    }

    /// The record's checksum; the accumulator starts over.
    fn finish(&mut self) -> u32 {
        let crc = match self.crc.take() {
            None => crc_fast::crc32_iscsi(&self.pending),
            Some(crc) => crc32c::crc32c_append(crc, &self.pending),
        };
        self.pending.clear();
        crc
    }

    /// Forgets the pieces of a record that failed to decode.
    fn reset(&mut self) {
        self.crc = None;
        self.pending.clear();
    }
}

/// What one step of decoding yields: a record, or the trailer.
pub(super) enum Unit {
    /// A record (decoded into the caller's row) and its checksum.
    Record(u32),
    Trailer {
        count: i64,
        checksum: u32,
    },
}

/// Decodes the record (or trailer) that starts at the cursor, checking its checksum,
/// field numbers, wire types and values against `columns`. `record` is the index
/// of the record, for errors; a record's values go into `row`, which holds one cell per
/// column (NULL where the record has no field). [`BlockError::Truncated`] means the
/// data ended first.
pub(super) fn decode_unit(
    cur: &mut Cursor<'_>,
    columns: &[OdpsType],
    record: usize,
    crc: &mut RecordCrc,
    row: &mut Row,
) -> Result<Unit, BlockError> {
    crc.reset();
    row.clear();
    row.resize(columns.len(), None);
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
            return Ok(Unit::Record(computed));
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
            let value = read_value(cur, ty, crc).map_err(|e| e.in_field(record, field))?;
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
            Value::Map(Box::new(MapValue { keys, values }))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_checksum_fed_in_pieces_is_the_checksum_of_the_whole() {
        let data: Vec<u8> = (0..=255u8).cycle().take(DIRECT_CRC_BYTES + 700).collect();
        let n = data.len();
        for cuts in [
            vec![4, 8, 9, 13, 21, 621, 625, 700, n],
            vec![3, 3 + DIRECT_CRC_BYTES, 4 + DIRECT_CRC_BYTES, n],
            vec![DIRECT_CRC_BYTES, n],
            vec![n - DIRECT_CRC_BYTES, n],
            vec![1, 2, 3, 35, 36, 100, 101, 700, n],
            vec![n],
            vec![32, 64, 96, 700, n],
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
    fn decimal_text_forms() {
        for ok in ["1", "-0.001", "123.45", "1E+2", ".5", "5."] {
            assert!(is_decimal_text(ok), "{ok}");
        }
        for bad in ["", "-", "1.2.3", "abc", "1e", "0x10"] {
            assert!(!is_decimal_text(bad), "{bad}");
        }
    }
}
