//! PlainBuffer decoder: every cell and row checksum is verified.

use super::*;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| malformed(format!("truncated at offset {}", self.pos)))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }

    fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn expect(&mut self, tag: u8, what: &str) -> Result<(), DecodeError> {
        let got = self.u8()?;
        if got != tag {
            return Err(malformed(format!(
                "expected {what} (0x{tag:02x}) at offset {}, found 0x{got:02x}",
                self.pos - 1
            )));
        }
        Ok(())
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn string(&mut self, len: usize, what: &str) -> Result<String, DecodeError> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| malformed(format!("{what} is not UTF-8")))
    }
}

/// Decodes a blob of one or more rows, verifying every checksum.
pub fn decode_rows(bytes: &[u8]) -> Result<Vec<Row>, DecodeError> {
    let mut r = Reader { bytes, pos: 0 };
    if r.u32()? != HEADER {
        return Err(malformed("bad header"));
    }
    let mut rows = Vec::new();
    while !r.at_end() {
        rows.push(read_row(&mut r)?);
    }
    if rows.is_empty() {
        return Err(malformed("no row"));
    }
    Ok(rows)
}

/// Decodes a blob that must hold exactly one row.
pub fn decode_row(bytes: &[u8]) -> Result<Row, DecodeError> {
    let mut rows = decode_rows(bytes)?;
    if rows.len() != 1 {
        return Err(malformed(format!("expected one row, found {}", rows.len())));
    }
    Ok(rows.remove(0))
}

fn read_row(r: &mut Reader<'_>) -> Result<Row, DecodeError> {
    r.expect(TAG_ROW_PK, "TAG_ROW_PK")?;
    let mut row = Row::default();
    let mut row_crc = 0u8;
    while r.peek() == Some(TAG_CELL) {
        r.pos += 1;
        let (cell, crc) = read_cell(r)?;
        let value = match (cell.value, cell.op, cell.timestamp_ms) {
            (Some(v), None, None) => pk_from_value(v)?,
            _ => return Err(malformed("primary-key cell with a type or timestamp")),
        };
        row.primary_key.push((cell.name, value));
        row_crc = crc8(row_crc, &[crc]);
    }
    if r.peek() == Some(TAG_ROW_DATA) {
        r.pos += 1;
        if r.peek() != Some(TAG_CELL) {
            return Err(malformed("TAG_ROW_DATA without cells"));
        }
        while r.peek() == Some(TAG_CELL) {
            r.pos += 1;
            let (cell, crc) = read_cell(r)?;
            row.cells.push(cell.into_cell()?);
            row_crc = crc8(row_crc, &[crc]);
        }
    }
    if r.peek() == Some(TAG_DELETE_ROW_MARKER) {
        r.pos += 1;
        row.delete_marker = true;
    }
    row_crc = crc8(row_crc, &[u8::from(row.delete_marker)]);
    if r.peek() == Some(TAG_EXTENSION) {
        r.pos += 1;
        row.sequence_info = Some(read_extension(r)?);
    }
    r.expect(TAG_ROW_CHECKSUM, "TAG_ROW_CHECKSUM")?;
    if r.u8()? != row_crc {
        return Err(DecodeError::RowChecksum);
    }
    Ok(row)
}

fn read_extension(r: &mut Reader<'_>) -> Result<SequenceInfo, DecodeError> {
    let _ext_len = r.u32()?;
    r.expect(TAG_SEQ_INFO, "TAG_SEQ_INFO")?;
    let _seq_len = r.u32()?;
    r.expect(TAG_SEQ_INFO_EPOCH, "TAG_SEQ_INFO_EPOCH")?;
    let epoch = r.u32()?;
    r.expect(TAG_SEQ_INFO_TS, "TAG_SEQ_INFO_TS")?;
    let timestamp_us = r.i64()?;
    r.expect(TAG_SEQ_INFO_ROW_INDEX, "TAG_SEQ_INFO_ROW_INDEX")?;
    let row_index = r.u32()?;
    Ok(SequenceInfo {
        epoch,
        timestamp_us,
        row_index,
    })
}

/// A value as read from the wire, before it is known to be a key or an attribute.
#[derive(Debug)]
enum RawValue {
    Attr(Value),
    PkOnly(PkValue),
}

struct RawCell {
    name: String,
    value: Option<RawValue>,
    op: Option<u8>,
    timestamp_ms: Option<i64>,
}

impl RawCell {
    fn into_cell(self) -> Result<Cell, DecodeError> {
        let value = match self.value {
            None => None,
            Some(RawValue::Attr(v)) => Some(v),
            Some(RawValue::PkOnly(_)) => {
                return Err(malformed(format!(
                    "column '{}' has a primary-key-only value type",
                    self.name
                )))
            }
        };
        Ok(Cell {
            name: self.name,
            value,
            op: self.op,
            timestamp_ms: self.timestamp_ms,
        })
    }
}

fn pk_from_value(v: RawValue) -> Result<PkValue, DecodeError> {
    match v {
        RawValue::PkOnly(pk) => Ok(pk),
        RawValue::Attr(Value::Integer(i)) => Ok(PkValue::Integer(i)),
        RawValue::Attr(Value::String(s)) => Ok(PkValue::String(s)),
        RawValue::Attr(Value::Binary(b)) => Ok(PkValue::Binary(b)),
        RawValue::Attr(other) => Err(malformed(format!(
            "primary-key value of unsupported type {other:?}"
        ))),
    }
}

fn read_cell(r: &mut Reader<'_>) -> Result<(RawCell, u8), DecodeError> {
    r.expect(TAG_CELL_NAME, "TAG_CELL_NAME")?;
    let name_len = r.u32()? as usize;
    let name = r.string(name_len, "cell name")?;
    let mut crc = crc8(0, name.as_bytes());
    let mut cell = RawCell {
        name,
        value: None,
        op: None,
        timestamp_ms: None,
    };
    if r.peek() == Some(TAG_CELL_VALUE) {
        r.pos += 1;
        let (value, new_crc) = read_value(r, crc)?;
        crc = new_crc;
        cell.value = Some(value);
    }
    if r.peek() == Some(TAG_CELL_TYPE) {
        r.pos += 1;
        let op = r.u8()?;
        if ![OP_DELETE_ALL_VERSIONS, OP_DELETE_ONE_VERSION, OP_INCREMENT].contains(&op) {
            return Err(malformed(format!("unknown cell type 0x{op:02x}")));
        }
        cell.op = Some(op);
    }
    if r.peek() == Some(TAG_CELL_TIMESTAMP) {
        r.pos += 1;
        let ts = r.i64()?;
        crc = crc8(crc, &ts.to_le_bytes());
        cell.timestamp_ms = Some(ts);
    }
    if let Some(op) = cell.op {
        crc = crc8(crc, &[op]);
    }
    r.expect(TAG_CELL_CHECKSUM, "TAG_CELL_CHECKSUM")?;
    if r.u8()? != crc {
        return Err(DecodeError::CellChecksum);
    }
    Ok((cell, crc))
}

fn read_value(r: &mut Reader<'_>, crc: u8) -> Result<(RawValue, u8), DecodeError> {
    let len = r.u32()? as usize;
    let start = r.pos;
    let vtype = r.u8()?;
    let value = match vtype {
        VT_INTEGER => RawValue::Attr(Value::Integer(r.i64()?)),
        VT_DOUBLE => RawValue::Attr(Value::Double(f64::from_bits(r.i64()? as u64))),
        VT_BOOLEAN => RawValue::Attr(Value::Boolean(r.u8()? != 0)),
        VT_STRING => {
            let n = r.u32()? as usize;
            RawValue::Attr(Value::String(r.string(n, "string value")?))
        }
        VT_BLOB => {
            let n = r.u32()? as usize;
            RawValue::Attr(Value::Binary(r.take(n)?.to_vec()))
        }
        VT_INF_MIN => RawValue::PkOnly(PkValue::InfMin),
        VT_INF_MAX => RawValue::PkOnly(PkValue::InfMax),
        VT_AUTO_INCREMENT => RawValue::PkOnly(PkValue::AutoIncrement),
        other => return Err(malformed(format!("unknown value type 0x{other:02x}"))),
    };
    if r.pos - start != len {
        return Err(malformed(format!(
            "value length {len} does not match its content ({})",
            r.pos - start
        )));
    }
    let (t, payload) = match &value {
        RawValue::Attr(v) => value_payload(v),
        RawValue::PkOnly(pk) => pk_payload(pk),
    };
    Ok((value, crc_value(crc, t, &payload)))
}
