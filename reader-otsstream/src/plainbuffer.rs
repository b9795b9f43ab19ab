//! PlainBuffer, Tablestore's row encoding (spec `tablestore.md` §3): a decoder that
//! verifies every cell and row CRC-8 and reads the stream sequence-info extension, and
//! an encoder for the rows this plugin writes (status table rows, range keys).

use std::fmt;

mod view;
#[cfg(test)]
pub(crate) use view::decoded_quickly;
pub use view::{CellRef, RecordRow, RecordRows, RowRef, Text, ValueRef};

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

/// Cell operation: delete every version of a column.
pub const OP_DELETE_ALL_VERSION: u8 = 0x01;
/// Cell operation: delete one version of a column.
pub const OP_DELETE_ONE_VERSION: u8 = 0x03;

/// One value of a cell or primary-key column.
#[derive(Clone, Debug, PartialEq)]
pub enum CellValue {
    Integer(i64),
    Double(f64),
    Boolean(bool),
    String(String),
    Binary(Vec<u8>),
    InfMin,
    InfMax,
    AutoIncrement,
}

/// One cell: a primary-key column or an attribute column operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub name: String,
    pub value: Option<CellValue>,
    /// `OP_DELETE_*`; absent for a put.
    pub op: Option<u8>,
    /// Milliseconds (the cell version).
    pub timestamp: Option<i64>,
}

impl Cell {
    pub fn put(name: &str, value: CellValue, timestamp: Option<i64>) -> Self {
        Self {
            name: name.to_owned(),
            value: Some(value),
            op: None,
            timestamp,
        }
    }

    pub fn key(name: &str, value: CellValue) -> Self {
        Self::put(name, value, None)
    }
}

/// A stream record's position in its shard (spec §3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequenceInfo {
    pub epoch: u32,
    /// Commit time, microseconds since the epoch.
    pub timestamp_us: i64,
    pub row_index: u32,
}

/// One decoded row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    pub primary_key: Vec<Cell>,
    pub cells: Vec<Cell>,
    pub delete_marker: bool,
    pub sequence_info: Option<SequenceInfo>,
}

/// A PlainBuffer that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlainBuffer at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for DecodeError {}

// ---- CRC-8 ------------------------------------------------------------------------

const CRC8_TABLE: [u8; 256] = crc8_table();

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

/// `CRC8_BLOCK_TABLES[k][x]`: `CRC8_TABLE` applied `k + 1` times, i.e. what byte `x`
/// followed by `k` more bytes adds to their CRC. The CRC is linear (the table maps a
/// xor b to the xor of their entries), so the CRC of 8 bytes is the xor of 8
/// independent look-ups instead of a chain of 8 dependent steps.
const CRC8_BLOCK_TABLES: [[u8; 256]; 8] = crc8_block_tables();

const fn crc8_block_tables() -> [[u8; 256]; 8] {
    let mut tables = [[0u8; 256]; 8];
    tables[0] = CRC8_TABLE;
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            tables[k][i] = CRC8_TABLE[tables[k - 1][i] as usize];
            i += 1;
        }
        k += 1;
    }
    tables
}

/// CRC-8 (polynomial 0x07, init 0, no reflection) over `bytes`, continuing from `crc`:
/// 8 bytes at a time, then byte by byte (as [`crc8_bytewise`]).
#[inline(always)]
pub fn crc8(mut crc: u8, bytes: &[u8]) -> u8 {
    let t = &CRC8_BLOCK_TABLES;
    let mut blocks = bytes.chunks_exact(8);
    for b in &mut blocks {
        crc = t[7][usize::from(crc ^ b[0])]
            ^ t[6][usize::from(b[1])]
            ^ t[5][usize::from(b[2])]
            ^ t[4][usize::from(b[3])]
            ^ t[3][usize::from(b[4])]
            ^ t[2][usize::from(b[5])]
            ^ t[1][usize::from(b[6])]
            ^ t[0][usize::from(b[7])];
    }
    crc8_bytewise(crc, blocks.remainder())
}

/// CRC-8 one byte at a time (the SDK's loop; short inputs).
pub fn crc8_bytewise(mut crc: u8, bytes: &[u8]) -> u8 {
    for b in bytes {
        crc = CRC8_TABLE[usize::from(crc ^ b)];
    }
    crc
}

fn value_checksum(mut crc: u8, value: &CellValue) -> u8 {
    match value {
        CellValue::Integer(v) => {
            crc = crc8(crc, &[VT_INTEGER]);
            crc8(crc, &v.to_le_bytes())
        }
        CellValue::Double(v) => {
            crc = crc8(crc, &[VT_DOUBLE]);
            crc8(crc, &v.to_bits().to_le_bytes())
        }
        CellValue::Boolean(v) => crc8(crc8(crc, &[VT_BOOLEAN]), &[u8::from(*v)]),
        CellValue::String(s) => {
            crc = crc8(crc, &[VT_STRING]);
            crc = crc8(crc, &(s.len() as u32).to_le_bytes());
            crc8(crc, s.as_bytes())
        }
        CellValue::Binary(b) => {
            crc = crc8(crc, &[VT_BLOB]);
            crc = crc8(crc, &(b.len() as u32).to_le_bytes());
            crc8(crc, b)
        }
        CellValue::InfMin => crc8(crc, &[VT_INF_MIN]),
        CellValue::InfMax => crc8(crc, &[VT_INF_MAX]),
        CellValue::AutoIncrement => crc8(crc, &[VT_AUTO_INCREMENT]),
    }
}

/// The cell checksum: name, value, timestamp, then op type (spec §3.4).
fn cell_checksum(cell: &Cell) -> u8 {
    let mut crc = crc8(0, cell.name.as_bytes());
    if let Some(v) = &cell.value {
        crc = value_checksum(crc, v);
    }
    if let Some(ts) = cell.timestamp {
        crc = crc8(crc, &ts.to_le_bytes());
    }
    if let Some(op) = cell.op {
        crc = crc8(crc, &[op]);
    }
    crc
}

// ---- decoding ---------------------------------------------------------------------

struct Input<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn fail<T>(&self, message: impl Into<String>) -> Result<T, DecodeError> {
        Err(DecodeError {
            offset: self.pos,
            message: message.into(),
        })
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        match self.bytes.get(self.pos..self.pos.saturating_add(n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => self.ends(n),
        }
    }

    #[cold]
    #[inline(never)]
    fn ends<T>(&self, n: usize) -> Result<T, DecodeError> {
        self.fail(format!("needs {n} more bytes, the buffer ends"))
    }

    /// The next `N` bytes (the hot path's fixed-size reads).
    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        match self
            .bytes
            .get(self.pos..)
            .and_then(<[u8]>::first_chunk::<N>)
        {
            Some(b) => {
                self.pos += N;
                Ok(*b)
            }
            None => self.ends(N),
        }
    }

    #[inline]
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    #[inline]
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    #[inline]
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    #[inline]
    fn expect_tag(&mut self, tag: u8, what: &str) -> Result<(), DecodeError> {
        if self.peek() == Some(tag) {
            self.pos += 1;
            return Ok(());
        }
        self.not_tag(tag, what)
    }

    #[cold]
    #[inline(never)]
    fn not_tag(&self, tag: u8, what: &str) -> Result<(), DecodeError> {
        match self.peek() {
            Some(t) => self.fail(format!(
                "expected {what} (tag {tag:#04x}), found tag {t:#04x}"
            )),
            None => self.fail(format!("expected {what}, the buffer ends")),
        }
    }

    #[inline]
    fn eat(&mut self, tag: u8) -> bool {
        if self.peek() == Some(tag) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
}

/// Decodes a buffer of rows sharing one header (a GetRange page, a stream record).
/// An empty buffer holds no rows.
pub fn decode_rows(bytes: &[u8]) -> Result<Vec<Row>, DecodeError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut input = Input { bytes, pos: 0 };
    let header = input.u32()?;
    if header != HEADER {
        return input.fail(format!("header is {header:#x}, expected 0x75"));
    }
    let mut rows = Vec::new();
    while input.peek().is_some() {
        rows.push(decode_row(&mut input)?);
    }
    Ok(rows)
}

/// Decodes a buffer that must hold exactly one row.
pub fn decode_single_row(bytes: &[u8]) -> Result<Row, DecodeError> {
    let mut rows = decode_rows(bytes)?;
    if rows.len() != 1 {
        return Err(DecodeError {
            offset: 0,
            message: format!("expected one row, found {}", rows.len()),
        });
    }
    Ok(rows.remove(0))
}

fn decode_row(input: &mut Input<'_>) -> Result<Row, DecodeError> {
    input.expect_tag(TAG_ROW_PK, "the primary key of a row")?;
    let mut row = Row::default();
    let mut crc = 0u8;
    while input.peek() == Some(TAG_CELL) {
        let (cell, checksum) = decode_cell(input)?;
        crc = crc8(crc, &[checksum]);
        row.primary_key.push(cell);
    }
    if input.eat(TAG_ROW_DATA) {
        while input.peek() == Some(TAG_CELL) {
            let (cell, checksum) = decode_cell(input)?;
            crc = crc8(crc, &[checksum]);
            row.cells.push(cell);
        }
    }
    row.delete_marker = input.eat(TAG_DELETE_ROW_MARKER);
    crc = crc8(crc, &[u8::from(row.delete_marker)]);
    if input.eat(TAG_EXTENSION) {
        row.sequence_info = decode_extension(input)?;
    }
    input.expect_tag(TAG_ROW_CHECKSUM, "the row checksum")?;
    let stored = input.u8()?;
    if stored != crc {
        return input.fail(format!(
            "row checksum mismatch: stored {stored:#04x}, computed {crc:#04x}"
        ));
    }
    Ok(row)
}

/// A row's extension: the sequence info it holds (the last one, where it holds several),
/// other entries skipped.
fn decode_extension(input: &mut Input<'_>) -> Result<Option<SequenceInfo>, DecodeError> {
    let len = input.u32()? as usize;
    let body = input.take(len)?;
    let base = input.pos - len;
    let mut ext = Input {
        bytes: body,
        pos: 0,
    };
    let mut info = None;
    while let Some(tag) = ext.peek() {
        ext.pos += 1;
        let sub_len = ext.u32()? as usize;
        let sub = ext.take(sub_len)?;
        if tag != TAG_SEQ_INFO {
            continue;
        }
        let mut s = Input { bytes: sub, pos: 0 };
        let at = |s: &Input<'_>, e: DecodeError| DecodeError {
            offset: base + e.offset + s.pos,
            message: e.message,
        };
        let mut read = || -> Result<SequenceInfo, DecodeError> {
            s.expect_tag(TAG_SEQ_INFO_EPOCH, "the sequence epoch")?;
            let epoch = s.u32()?;
            s.expect_tag(TAG_SEQ_INFO_TS, "the sequence timestamp")?;
            let timestamp_us = s.i64()?;
            s.expect_tag(TAG_SEQ_INFO_ROW_INDEX, "the sequence row index")?;
            let row_index = s.u32()?;
            Ok(SequenceInfo {
                epoch,
                timestamp_us,
                row_index,
            })
        };
        info = Some(read().map_err(|e| at(&Input { bytes: sub, pos: 0 }, e))?);
    }
    Ok(info)
}

fn decode_cell(input: &mut Input<'_>) -> Result<(Cell, u8), DecodeError> {
    input.expect_tag(TAG_CELL, "a cell")?;
    input.expect_tag(TAG_CELL_NAME, "a cell name")?;
    let name_len = input.u32()? as usize;
    let name_at = input.pos;
    let name = match std::str::from_utf8(input.take(name_len)?) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            return Err(DecodeError {
                offset: name_at,
                message: "a cell name is not UTF-8".into(),
            })
        }
    };
    let mut cell = Cell {
        name,
        value: None,
        op: None,
        timestamp: None,
    };
    if input.eat(TAG_CELL_VALUE) {
        let len = input.u32()? as usize;
        let start = input.pos;
        cell.value = Some(decode_value(input)?);
        if input.pos - start != len {
            return input.fail(format!(
                "cell {:?}: value length field says {len}, the value has {}",
                cell.name,
                input.pos - start
            ));
        }
    }
    if input.eat(TAG_CELL_TYPE) {
        cell.op = Some(input.u8()?);
    }
    if input.eat(TAG_CELL_TIMESTAMP) {
        cell.timestamp = Some(input.i64()?);
    }
    input.expect_tag(TAG_CELL_CHECKSUM, "a cell checksum")?;
    let stored = input.u8()?;
    let computed = cell_checksum(&cell);
    if stored != computed {
        return input.fail(format!(
            "cell {:?}: checksum mismatch: stored {stored:#04x}, computed {computed:#04x}",
            cell.name
        ));
    }
    Ok((cell, stored))
}

fn decode_value(input: &mut Input<'_>) -> Result<CellValue, DecodeError> {
    let ty = input.u8()?;
    Ok(match ty {
        VT_INTEGER => CellValue::Integer(input.i64()?),
        VT_DOUBLE => CellValue::Double(f64::from_bits(input.i64()? as u64)),
        VT_BOOLEAN => CellValue::Boolean(input.u8()? != 0),
        VT_STRING => {
            let len = input.u32()? as usize;
            let at = input.pos;
            match std::str::from_utf8(input.take(len)?) {
                Ok(s) => CellValue::String(s.to_owned()),
                Err(_) => {
                    return Err(DecodeError {
                        offset: at,
                        message: "a STRING value is not UTF-8".into(),
                    })
                }
            }
        }
        VT_BLOB => {
            let len = input.u32()? as usize;
            CellValue::Binary(input.take(len)?.to_vec())
        }
        VT_INF_MIN => CellValue::InfMin,
        VT_INF_MAX => CellValue::InfMax,
        VT_AUTO_INCREMENT => CellValue::AutoIncrement,
        other => return input.fail(format!("unknown value type {other:#04x}")),
    })
}

// ---- encoding ---------------------------------------------------------------------

/// Encodes one row (header included): `delete_marker` for DeleteRow keys.
pub fn encode_row(primary_key: &[Cell], cells: &[Cell], delete_marker: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&HEADER.to_le_bytes());
    out.push(TAG_ROW_PK);
    let mut crc = 0u8;
    for cell in primary_key {
        crc = crc8(crc, &[encode_cell(cell, &mut out)]);
    }
    if !cells.is_empty() {
        out.push(TAG_ROW_DATA);
        for cell in cells {
            crc = crc8(crc, &[encode_cell(cell, &mut out)]);
        }
    }
    if delete_marker {
        out.push(TAG_DELETE_ROW_MARKER);
    }
    crc = crc8(crc, &[u8::from(delete_marker)]);
    out.push(TAG_ROW_CHECKSUM);
    out.push(crc);
    out
}

fn encode_cell(cell: &Cell, out: &mut Vec<u8>) -> u8 {
    out.push(TAG_CELL);
    out.push(TAG_CELL_NAME);
    out.extend_from_slice(&(cell.name.len() as u32).to_le_bytes());
    out.extend_from_slice(cell.name.as_bytes());
    if let Some(v) = &cell.value {
        out.push(TAG_CELL_VALUE);
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let start = out.len();
        encode_value(v, out);
        let len = (out.len() - start) as u32;
        out[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
    }
    if let Some(op) = cell.op {
        out.push(TAG_CELL_TYPE);
        out.push(op);
    }
    if let Some(ts) = cell.timestamp {
        out.push(TAG_CELL_TIMESTAMP);
        out.extend_from_slice(&ts.to_le_bytes());
    }
    let crc = cell_checksum(cell);
    out.push(TAG_CELL_CHECKSUM);
    out.push(crc);
    crc
}

fn encode_value(v: &CellValue, out: &mut Vec<u8>) {
    match v {
        CellValue::Integer(i) => {
            out.push(VT_INTEGER);
            out.extend_from_slice(&i.to_le_bytes());
        }
        CellValue::Double(d) => {
            out.push(VT_DOUBLE);
            out.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        CellValue::Boolean(b) => {
            out.push(VT_BOOLEAN);
            out.push(u8::from(*b));
        }
        CellValue::String(s) => {
            out.push(VT_STRING);
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        CellValue::Binary(b) => {
            out.push(VT_BLOB);
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
        CellValue::InfMin => out.push(VT_INF_MIN),
        CellValue::InfMax => out.push(VT_INF_MAX),
        CellValue::AutoIncrement => out.push(VT_AUTO_INCREMENT),
    }
}

#[cfg(test)]
mod tests;
