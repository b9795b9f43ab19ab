//! The stream record decoder of the hot path: the same checks as
//! [`decode_single_row`](super::decode_single_row) (every cell and row CRC-8, UTF-8
//! names and strings, value lengths, the sequence-info extension) and the same errors,
//! but no allocation per cell: cells are spans of the record's bytes, which the row
//! keeps (a [`Bytes`] slice of the response body, so not copied either). Names and
//! strings are checked as UTF-8 once, here, and handed on as [`Text`].

use bytes::Bytes;

use super::{
    crc8, decode_extension, DecodeError, Input, SequenceInfo, TAG_CELL, TAG_CELL_CHECKSUM,
    TAG_CELL_NAME, TAG_CELL_TIMESTAMP, TAG_CELL_TYPE, TAG_CELL_VALUE, TAG_DELETE_ROW_MARKER,
    TAG_EXTENSION, TAG_ROW_CHECKSUM, TAG_ROW_DATA, TAG_ROW_PK, VT_AUTO_INCREMENT, VT_BLOB,
    VT_BOOLEAN, VT_DOUBLE, VT_INF_MAX, VT_INF_MIN, VT_INTEGER, VT_STRING,
};

/// Text of a record (a cell name or a STRING value): bytes found to be UTF-8 when
/// the record was decoded, so that reading them needs no second check. Only this
/// module makes one from bytes.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Text<'a>(&'a [u8]);

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text(s.as_bytes())
    }
}

impl<'a> Text<'a> {
    /// The UTF-8 bytes.
    pub fn as_bytes(self) -> &'a [u8] {
        self.0
    }

    /// As `str`, checked again (for messages and the general path; the hot path
    /// writes the bytes).
    pub fn as_str(self) -> &'a str {
        std::str::from_utf8(self.0).unwrap_or_default()
    }

    /// The length in UTF-16 code units (`str::encode_utf16().count()`), counted on the
    /// UTF-8 bytes: one unit per byte that starts a character, one more for a
    /// character of four bytes (a surrogate pair).
    pub fn utf16_len(self) -> usize {
        if self.0.is_ascii() {
            return self.0.len();
        }
        self.0
            .iter()
            .map(|&b| usize::from((b as i8) >= -0x40) + usize::from(b >= 0xf0))
            .sum()
    }
}

impl std::fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Text<'_> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

/// A value of a [`CellRef`], borrowed from the record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueRef<'a> {
    Integer(i64),
    Double(f64),
    Boolean(bool),
    String(Text<'a>),
    Binary(&'a [u8]),
    InfMin,
    InfMax,
    AutoIncrement,
}

/// A cell of a [`RecordRow`], borrowed from the record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CellRef<'a> {
    pub name: Text<'a>,
    pub value: Option<ValueRef<'a>>,
    /// `OP_DELETE_*`; absent for a put.
    pub op: Option<u8>,
    /// Milliseconds (the cell version).
    pub timestamp: Option<i64>,
}

#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: usize,
}

#[derive(Clone, Copy, Debug)]
enum ValueSpan {
    Integer(i64),
    Double(f64),
    Boolean(bool),
    String(Span),
    Binary(Span),
    InfMin,
    InfMax,
    AutoIncrement,
}

#[derive(Clone, Copy, Debug)]
struct CellSpan {
    name: Span,
    value: Option<ValueSpan>,
    op: Option<u8>,
    timestamp: Option<i64>,
}

/// Where one row's cells are in its cell list: `start..end`, the primary key's
/// cells (`start..primary_key_end`) first.
#[derive(Clone, Copy, Debug)]
struct RowCells {
    start: usize,
    primary_key_end: usize,
    end: usize,
}

/// One stream record decoded on its own: its bytes and where its cells are in them.
/// (The reader decodes a page of records into one [`RecordRows`].)
#[derive(Clone, Debug)]
pub struct RecordRow {
    bytes: Bytes,
    cells: Vec<CellSpan>,
    primary_key_len: usize,
    delete_marker: bool,
    sequence_info: Option<SequenceInfo>,
}

impl RecordRow {
    /// Decodes a buffer that must hold exactly one row (as `decode_single_row`).
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut cells = Vec::new();
        let (at, delete_marker, sequence_info) = decode_record(&bytes, &mut cells)?;
        Ok(RecordRow {
            bytes,
            cells,
            primary_key_len: at.primary_key_end - at.start,
            delete_marker,
            sequence_info,
        })
    }

    /// The row's cells.
    pub fn row(&self) -> RowRef<'_> {
        RowRef {
            bytes: &self.bytes,
            cells: &self.cells,
            primary_key_len: self.primary_key_len,
            delete_marker: self.delete_marker,
            sequence_info: self.sequence_info,
        }
    }

    /// The row as the general decoder returns it.
    pub fn to_row(&self) -> super::Row {
        self.row().to_row()
    }
}

/// Stream records decoded one after another, the cells of all in one list: a page of
/// records costs two allocations, not one per record.
#[derive(Debug, Default)]
pub struct RecordRows {
    rows: Vec<RowEntry>,
    cells: Vec<CellSpan>,
}

#[derive(Debug)]
struct RowEntry {
    bytes: Bytes,
    cells: RowCells,
    delete_marker: bool,
    sequence_info: Option<SequenceInfo>,
}

impl RecordRows {
    /// Room for `rows` records of a few cells each.
    pub fn with_capacity(rows: usize) -> Self {
        RecordRows {
            rows: Vec::with_capacity(rows),
            cells: Vec::with_capacity(rows * 4),
        }
    }

    /// Decodes a record (as [`RecordRow::decode`]) and appends its row; on error
    /// nothing is appended.
    pub fn push(&mut self, bytes: Bytes) -> Result<RowRef<'_>, DecodeError> {
        let (cells, delete_marker, sequence_info) = decode_record(&bytes, &mut self.cells)?;
        self.rows.push(RowEntry {
            bytes,
            cells,
            delete_marker,
            sequence_info,
        });
        Ok(self.row(self.rows.len() - 1))
    }

    /// Removes every row, keeping the memory for the next page's rows.
    pub fn clear(&mut self) {
        self.rows.clear();
        self.cells.clear();
    }

    /// Room for `rows` more records of a few cells each.
    pub fn reserve(&mut self, rows: usize) {
        self.rows.reserve(rows);
        self.cells.reserve(rows * 4);
    }

    /// Removes the last row.
    pub fn pop(&mut self) {
        if let Some(r) = self.rows.pop() {
            self.cells.truncate(r.cells.start);
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn row(&self, index: usize) -> RowRef<'_> {
        let r = &self.rows[index];
        RowRef {
            bytes: &r.bytes,
            cells: &self.cells[r.cells.start..r.cells.end],
            primary_key_len: r.cells.primary_key_end - r.cells.start,
            delete_marker: r.delete_marker,
            sequence_info: r.sequence_info,
        }
    }

    /// The rows, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = RowRef<'_>> + '_ {
        (0..self.rows.len()).map(|i| self.row(i))
    }
}

/// A decoded row: its cells, borrowed from the record.
#[derive(Clone, Copy, Debug)]
pub struct RowRef<'a> {
    bytes: &'a [u8],
    /// The primary key's cells, then the attribute cells.
    cells: &'a [CellSpan],
    primary_key_len: usize,
    pub delete_marker: bool,
    pub sequence_info: Option<SequenceInfo>,
}

impl<'a> RowRef<'a> {
    fn text(self, s: Span) -> Text<'a> {
        // Checked as UTF-8 when decoded, and the bytes cannot change since.
        Text(&self.bytes[s.start..s.end])
    }

    fn cell(self, c: &CellSpan) -> CellRef<'a> {
        CellRef {
            name: self.text(c.name),
            value: c.value.map(|v| match v {
                ValueSpan::Integer(i) => ValueRef::Integer(i),
                ValueSpan::Double(d) => ValueRef::Double(d),
                ValueSpan::Boolean(b) => ValueRef::Boolean(b),
                ValueSpan::String(s) => ValueRef::String(self.text(s)),
                ValueSpan::Binary(s) => ValueRef::Binary(&self.bytes[s.start..s.end]),
                ValueSpan::InfMin => ValueRef::InfMin,
                ValueSpan::InfMax => ValueRef::InfMax,
                ValueSpan::AutoIncrement => ValueRef::AutoIncrement,
            }),
            op: c.op,
            timestamp: c.timestamp,
        }
    }

    /// The primary-key cells, in order.
    pub fn primary_key(self) -> impl ExactSizeIterator<Item = CellRef<'a>> + Clone + 'a {
        self.cells[..self.primary_key_len]
            .iter()
            .map(move |c| self.cell(c))
    }

    /// The attribute cells (puts and deletes), in order.
    pub fn cells(self) -> impl ExactSizeIterator<Item = CellRef<'a>> + Clone + 'a {
        self.cells[self.primary_key_len..]
            .iter()
            .map(move |c| self.cell(c))
    }

    /// The attribute cell at `index` (in the order of [`cells`](Self::cells)).
    pub fn cell_at(self, index: usize) -> Option<CellRef<'a>> {
        self.cells[self.primary_key_len..]
            .get(index)
            .map(|c| self.cell(c))
    }

    /// The row as the general decoder returns it.
    pub fn to_row(self) -> super::Row {
        let owned = |c: CellRef<'_>| super::Cell {
            name: c.name.as_str().to_owned(),
            value: c.value.map(|v| match v {
                ValueRef::Integer(i) => super::CellValue::Integer(i),
                ValueRef::Double(d) => super::CellValue::Double(d),
                ValueRef::Boolean(b) => super::CellValue::Boolean(b),
                ValueRef::String(s) => super::CellValue::String(s.as_str().to_owned()),
                ValueRef::Binary(b) => super::CellValue::Binary(b.to_vec()),
                ValueRef::InfMin => super::CellValue::InfMin,
                ValueRef::InfMax => super::CellValue::InfMax,
                ValueRef::AutoIncrement => super::CellValue::AutoIncrement,
            }),
            op: c.op,
            timestamp: c.timestamp,
        };
        super::Row {
            primary_key: self.primary_key().map(owned).collect(),
            cells: self.cells().map(owned).collect(),
            delete_marker: self.delete_marker,
            sequence_info: self.sequence_info,
        }
    }
}

/// Decodes a buffer that must hold exactly one row (as `decode_single_row`), its
/// cells appended to `cells`: where they are, the delete marker, the sequence info.
/// On error `cells` is as it was.
fn decode_record(
    bytes: &[u8],
    cells: &mut Vec<CellSpan>,
) -> Result<(RowCells, bool, Option<SequenceInfo>), DecodeError> {
    let start = cells.len();
    let decoded = decode_rows_into(bytes, cells);
    if decoded.is_err() {
        cells.truncate(start);
    }
    let (rows, primary_key_len, delete_marker, sequence_info) = decoded?;
    if rows != 1 {
        cells.truncate(start);
        return Err(DecodeError {
            offset: 0,
            message: format!("expected one row, found {rows}"),
        });
    }
    let at = RowCells {
        start,
        primary_key_end: start + primary_key_len,
        end: cells.len(),
    };
    Ok((at, delete_marker, sequence_info))
}

/// Every row of `bytes`, the first one's cells appended to `cells`: (rows, the first
/// one's primary-key cells, delete marker and sequence info).
fn decode_rows_into(
    bytes: &[u8],
    cells: &mut Vec<CellSpan>,
) -> Result<(usize, usize, bool, Option<SequenceInfo>), DecodeError> {
    if bytes.is_empty() {
        return Ok((0, 0, false, None));
    }
    let mut first = (0, false, None);
    let mut rows = 0usize;
    let mut input = Input { bytes, pos: 0 };
    let header = input.u32()?;
    if header != super::HEADER {
        return input.fail(format!("header is {header:#x}, expected 0x75"));
    }
    while input.peek().is_some() {
        // Rows after the first are decoded (their errors come first, as in
        // `decode_single_row`) and then refused by the caller.
        let start = cells.len();
        let row = decode_row(&mut input, cells)?;
        if rows == 0 {
            first = row;
        } else {
            cells.truncate(start);
        }
        rows += 1;
    }
    Ok((rows, first.0, first.1, first.2))
}

/// One row into `cells`: (primary-key cells, delete marker, sequence info).
fn decode_row(
    input: &mut Input<'_>,
    cells: &mut Vec<CellSpan>,
) -> Result<(usize, bool, Option<SequenceInfo>), DecodeError> {
    input.expect_tag(TAG_ROW_PK, "the primary key of a row")?;
    let mut crc = 0u8;
    let mut pk = 0;
    while input.peek() == Some(TAG_CELL) {
        let (cell, checksum) = decode_cell(input)?;
        crc = super::CRC8_TABLE[usize::from(crc ^ checksum)];
        cells.push(cell);
        pk += 1;
    }
    if input.eat(TAG_ROW_DATA) {
        while input.peek() == Some(TAG_CELL) {
            let (cell, checksum) = decode_cell(input)?;
            crc = super::CRC8_TABLE[usize::from(crc ^ checksum)];
            cells.push(cell);
        }
    }
    let delete_marker = input.eat(TAG_DELETE_ROW_MARKER);
    crc = crc8(crc, &[u8::from(delete_marker)]);
    let mut info = None;
    if input.eat(TAG_EXTENSION) {
        info = decode_extension(input)?;
    }
    input.expect_tag(TAG_ROW_CHECKSUM, "the row checksum")?;
    let stored = input.u8()?;
    if stored != crc {
        return input.fail(format!(
            "row checksum mismatch: stored {stored:#04x}, computed {crc:#04x}"
        ));
    }
    Ok((pk, delete_marker, info))
}

/// Fails unless `bytes` (which start at `offset` of the buffer) are UTF-8.
fn utf8(bytes: &[u8], offset: usize, what: &str) -> Result<(), DecodeError> {
    // ASCII (names, most values) is checked in words, without `from_utf8`'s set-up.
    if bytes.is_ascii() || std::str::from_utf8(bytes).is_ok() {
        return Ok(());
    }
    Err(DecodeError {
        offset,
        message: format!("{what} is not UTF-8"),
    })
}

/// The next `n` bytes: where they are, and the bytes themselves (so that they need not
/// be sliced out of the buffer again).
fn take_span<'a>(input: &mut Input<'a>, n: usize) -> Result<(Span, &'a [u8]), DecodeError> {
    let start = input.pos;
    let bytes = input.take(n)?;
    let span = Span {
        start,
        end: input.pos,
    };
    Ok((span, bytes))
}

/// Inlined into `decode_row` (its only caller, twice): a call per cell returned its
/// span through memory and paid a call's entry and exit, 2.8 % of the reader's
/// instructions (BENCHMARKS.md, issue 19's tenth round).
#[inline(always)]
fn decode_cell(input: &mut Input<'_>) -> Result<(CellSpan, u8), DecodeError> {
    input.expect_tag(TAG_CELL, "a cell")?;
    input.expect_tag(TAG_CELL_NAME, "a cell name")?;
    let name_len = input.u32()? as usize;
    let (name, name_bytes) = take_span(input, name_len)?;
    utf8(name_bytes, name.start, "a cell name")?;
    let mut crc = crc8(0, name_bytes);
    let mut cell = CellSpan {
        name,
        value: None,
        op: None,
        timestamp: None,
    };
    if input.eat(TAG_CELL_VALUE) {
        let len = input.u32()? as usize;
        let start = input.pos;
        let value = decode_value(input)?;
        if input.pos - start != len {
            return input.fail(format!(
                "cell {:?}: value length field says {len}, the value has {}",
                String::from_utf8_lossy(name_bytes),
                input.pos - start
            ));
        }
        // The checksum covers the value as encoded (type, length, payload), except
        // that a boolean counts as 0 or 1 whatever its byte.
        crc = match value {
            ValueSpan::Boolean(b) => crc8(crc, &[VT_BOOLEAN, u8::from(b)]),
            _ => crc8(crc, &input.bytes[start..input.pos]),
        };
        cell.value = Some(value);
    }
    if input.eat(TAG_CELL_TYPE) {
        cell.op = Some(input.u8()?);
    }
    if input.eat(TAG_CELL_TIMESTAMP) {
        let ts = input.i64()?;
        crc = crc8(crc, &ts.to_le_bytes());
        cell.timestamp = Some(ts);
    }
    if let Some(op) = cell.op {
        crc = crc8(crc, &[op]);
    }
    input.expect_tag(TAG_CELL_CHECKSUM, "a cell checksum")?;
    let stored = input.u8()?;
    if stored != crc {
        return input.fail(format!(
            "cell {:?}: checksum mismatch: stored {stored:#04x}, computed {crc:#04x}",
            String::from_utf8_lossy(name_bytes)
        ));
    }
    Ok((cell, stored))
}

fn decode_value(input: &mut Input<'_>) -> Result<ValueSpan, DecodeError> {
    let ty = input.u8()?;
    Ok(match ty {
        VT_INTEGER => ValueSpan::Integer(input.i64()?),
        VT_DOUBLE => ValueSpan::Double(f64::from_bits(input.i64()? as u64)),
        VT_BOOLEAN => ValueSpan::Boolean(input.u8()? != 0),
        VT_STRING => {
            let len = input.u32()? as usize;
            let (s, bytes) = take_span(input, len)?;
            utf8(bytes, s.start, "a STRING value")?;
            ValueSpan::String(s)
        }
        VT_BLOB => {
            let len = input.u32()? as usize;
            ValueSpan::Binary(take_span(input, len)?.0)
        }
        VT_INF_MIN => ValueSpan::InfMin,
        VT_INF_MAX => ValueSpan::InfMax,
        VT_AUTO_INCREMENT => ValueSpan::AutoIncrement,
        other => return input.fail(format!("unknown value type {other:#04x}")),
    })
}
