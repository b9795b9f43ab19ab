//! The stream record decoder of the hot path: the same checks as
//! [`decode_single_row`](super::decode_single_row) (every cell and row CRC-8, UTF-8
//! names and strings, value lengths, the sequence-info extension), but no allocation
//! per cell: cells are spans of the record's bytes, which the row keeps (a [`Bytes`]
//! slice of the response body, so not copied either). Names and strings are checked
//! as UTF-8 once, here, and handed on as [`Text`]. A record it does not take is
//! decoded again by `decode_single_row`, whose error it returns.

use bytes::Bytes;

use super::{DecodeError, SequenceInfo};

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
    if let Some((primary_key_len, delete_marker, sequence_info)) = quick::record(bytes, cells) {
        let at = RowCells {
            start,
            primary_key_end: start + primary_key_len,
            end: cells.len(),
        };
        return Ok((at, delete_marker, sequence_info));
    }
    cells.truncate(start);
    // Not a record of one well-formed row: the general decoder, which takes what the
    // quick one takes (property tests), says what is wrong and where.
    match super::decode_single_row(bytes) {
        Err(e) => Err(e),
        Ok(_) => Err(DecodeError {
            offset: 0,
            message: "the record decodes in full but not on the hot path (a bug)".to_owned(),
        }),
    }
}

/// Whether the quick decoder takes `bytes` and finds the general decoder's row (for
/// the tests: the general decoder would otherwise refuse the record as a bug).
#[cfg(test)]
pub(crate) fn decoded_quickly(bytes: &[u8]) -> bool {
    let mut cells = Vec::new();
    let Some((primary_key_len, delete_marker, sequence_info)) = quick::record(bytes, &mut cells)
    else {
        return false;
    };
    let quick = RowRef {
        bytes,
        cells: &cells,
        primary_key_len,
        delete_marker,
        sequence_info,
    };
    let general = super::decode_single_row(bytes).map(|r| format!("{r:?}"));
    general.ok() == Some(format!("{:?}", quick.to_row()))
}

/// The records of the hot path decoded without error messages: [`record`] takes
/// what the general decoder takes (every checksum, UTF-8 name and string, value
/// length and the sequence-info extension checked the same way) and gives up (`None`)
/// at anything else, for [`decode_record`] to ask the general decoder what is wrong.
/// Reads take the bytes off the front of the rest of the record (one length check
/// each); a span's offset is the record's length less what is left after it.
mod quick {
    use super::super::{
        crc8, SequenceInfo, CRC8_TABLE, HEADER, TAG_CELL, TAG_CELL_CHECKSUM, TAG_CELL_NAME,
        TAG_CELL_TIMESTAMP, TAG_CELL_TYPE, TAG_CELL_VALUE, TAG_DELETE_ROW_MARKER, TAG_EXTENSION,
        TAG_ROW_CHECKSUM, TAG_ROW_DATA, TAG_ROW_PK, TAG_SEQ_INFO, TAG_SEQ_INFO_EPOCH,
        TAG_SEQ_INFO_ROW_INDEX, TAG_SEQ_INFO_TS, VT_AUTO_INCREMENT, VT_BLOB, VT_BOOLEAN, VT_DOUBLE,
        VT_INF_MAX, VT_INF_MIN, VT_INTEGER, VT_STRING,
    };
    use super::{CellSpan, Span, ValueSpan};

    /// One row's cells appended to `cells` (the caller truncates them on `None`):
    /// (primary-key cells, delete marker, sequence info).
    pub(super) fn record(
        bytes: &[u8],
        cells: &mut Vec<CellSpan>,
    ) -> Option<(usize, bool, Option<SequenceInfo>)> {
        let total = bytes.len();
        let (&header, rest) = bytes.split_first_chunk::<4>()?;
        if u32::from_le_bytes(header) != HEADER {
            return None;
        }
        let mut rest = tag(rest, TAG_ROW_PK)?;
        let mut crc = 0u8;
        let mut primary_key = 0;
        while let [TAG_CELL, ..] = rest {
            let (cell, checksum, after) = cell(rest, total)?;
            crc = CRC8_TABLE[usize::from(crc ^ checksum)];
            cells.push(cell);
            primary_key += 1;
            rest = after;
        }
        if let [TAG_ROW_DATA, after @ ..] = rest {
            rest = after;
            while let [TAG_CELL, ..] = rest {
                let (cell, checksum, after) = cell(rest, total)?;
                crc = CRC8_TABLE[usize::from(crc ^ checksum)];
                cells.push(cell);
                rest = after;
            }
        }
        let delete_marker = matches!(rest, [TAG_DELETE_ROW_MARKER, ..]);
        if delete_marker {
            rest = &rest[1..];
        }
        crc = CRC8_TABLE[usize::from(crc ^ u8::from(delete_marker))];
        let mut info = None;
        if let [TAG_EXTENSION, after @ ..] = rest {
            let (body, after) = sized(after)?;
            info = extension(body)?;
            rest = after;
        }
        // The row checksum, and nothing after it (a second row is the general
        // decoder's error).
        match rest {
            [TAG_ROW_CHECKSUM, stored] if *stored == crc => {
                Some((primary_key, delete_marker, info))
            }
            _ => None,
        }
    }

    /// `rest` without its first byte, which must be `t`.
    #[inline(always)]
    fn tag(rest: &[u8], t: u8) -> Option<&[u8]> {
        match rest {
            [first, after @ ..] if *first == t => Some(after),
            _ => None,
        }
    }

    /// A little-endian `u32` length and that many bytes: (the bytes, the rest).
    #[inline(always)]
    fn sized(rest: &[u8]) -> Option<(&[u8], &[u8])> {
        let (&len, rest) = rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(len) as usize;
        (len <= rest.len()).then(|| rest.split_at(len))
    }

    #[inline(always)]
    fn span(total: usize, bytes: &[u8], after: &[u8]) -> Span {
        let end = total - after.len();
        Span {
            start: end - bytes.len(),
            end,
        }
    }

    #[inline(always)]
    fn utf8(bytes: &[u8]) -> bool {
        bytes.is_ascii() || std::str::from_utf8(bytes).is_ok()
    }

    /// A cell (`rest` starts at its tag): the cell, its checksum, the rest after it.
    #[inline(always)]
    fn cell(rest: &[u8], total: usize) -> Option<(CellSpan, u8, &[u8])> {
        let rest = tag(rest, TAG_CELL)?;
        let rest = tag(rest, TAG_CELL_NAME)?;
        let (name, mut rest) = sized(rest)?;
        if !utf8(name) {
            return None;
        }
        let mut crc = crc8(0, name);
        let mut cell = CellSpan {
            name: span(total, name, rest),
            value: None,
            op: None,
            timestamp: None,
        };
        if let [TAG_CELL_VALUE, after @ ..] = rest {
            let (encoded, after) = sized(after)?;
            let value = value(encoded, total, after)?;
            // The checksum covers the value as encoded (type, length, payload),
            // except that a boolean counts as 0 or 1 whatever its byte.
            crc = match value {
                ValueSpan::Boolean(b) => crc8(crc, &[VT_BOOLEAN, u8::from(b)]),
                _ => crc8(crc, encoded),
            };
            cell.value = Some(value);
            rest = after;
        }
        if let [TAG_CELL_TYPE, op, after @ ..] = rest {
            cell.op = Some(*op);
            rest = after;
        }
        if let [TAG_CELL_TIMESTAMP, after @ ..] = rest {
            let (&ts, after) = after.split_first_chunk::<8>()?;
            crc = crc8(crc, &ts);
            cell.timestamp = Some(i64::from_le_bytes(ts));
            rest = after;
        }
        if let Some(op) = cell.op {
            crc = CRC8_TABLE[usize::from(crc ^ op)];
        }
        match rest {
            [TAG_CELL_CHECKSUM, stored, after @ ..] if *stored == crc => Some((cell, crc, after)),
            _ => None,
        }
    }

    /// A value that must fill `encoded` exactly (its length field's bytes), which
    /// `after` follows in the record.
    #[inline(always)]
    fn value(encoded: &[u8], total: usize, after: &[u8]) -> Option<ValueSpan> {
        let (&ty, payload) = encoded.split_first()?;
        let fixed = |payload: &[u8]| -> Option<[u8; 8]> { payload.try_into().ok() };
        Some(match ty {
            VT_INTEGER => ValueSpan::Integer(i64::from_le_bytes(fixed(payload)?)),
            VT_DOUBLE => ValueSpan::Double(f64::from_le_bytes(fixed(payload)?)),
            VT_BOOLEAN => match payload {
                [b] => ValueSpan::Boolean(*b != 0),
                _ => return None,
            },
            VT_STRING | VT_BLOB => {
                let (bytes, rest) = sized(payload)?;
                if !rest.is_empty() || (ty == VT_STRING && !utf8(bytes)) {
                    return None;
                }
                let s = span(total, bytes, after);
                if ty == VT_STRING {
                    ValueSpan::String(s)
                } else {
                    ValueSpan::Binary(s)
                }
            }
            VT_INF_MIN if payload.is_empty() => ValueSpan::InfMin,
            VT_INF_MAX if payload.is_empty() => ValueSpan::InfMax,
            VT_AUTO_INCREMENT if payload.is_empty() => ValueSpan::AutoIncrement,
            _ => return None,
        })
    }

    /// The sequence info of an extension's body (the last one it holds, as the
    /// general decoder reads it).
    fn extension(mut body: &[u8]) -> Option<Option<SequenceInfo>> {
        let mut info = None;
        while let [t, after @ ..] = body {
            let (sub, after) = sized(after)?;
            body = after;
            if *t != TAG_SEQ_INFO {
                continue;
            }
            // Its three fields; bytes after them are not read (as the general decoder
            // does not read them).
            let &[TAG_SEQ_INFO_EPOCH, e0, e1, e2, e3, TAG_SEQ_INFO_TS, t0, t1, t2, t3, t4, t5, t6, t7, TAG_SEQ_INFO_ROW_INDEX, r0, r1, r2, r3] =
                sub.first_chunk::<19>()?
            else {
                return None;
            };
            info = Some(SequenceInfo {
                epoch: u32::from_le_bytes([e0, e1, e2, e3]),
                timestamp_us: i64::from_le_bytes([t0, t1, t2, t3, t4, t5, t6, t7]),
                row_index: u32::from_le_bytes([r0, r1, r2, r3]),
            });
        }
        Some(info)
    }
}
