//! Stream records → output records already encoded (the hot path): the records of
//! [`convert`](crate::convert) and [`row_change`](crate::row_change), written straight
//! into MessagePack as the protocol's `encode_record` writes them, with their DataX
//! byte sizes, without building a `Value` per column (no string copies, the primary
//! key encoded once per record).
//! Property tests check both paths give the same bytes, sizes and errors.

use std::fmt::Write as _;

use protocol::value::Value;

use crate::convert::{self, sequence_prefix, ConvertError};
use crate::pb;
use crate::plainbuffer::{
    RowRef, SequenceInfo, Text, ValueRef, OP_DELETE_ALL_VERSION, OP_DELETE_ONE_VERSION,
};
use crate::row_change;

/// The output records of one stream record: each one's encoding and DataX size.
#[derive(Debug, Default)]
pub struct EncodedRows {
    buf: Vec<u8>,
    /// End of each record in `buf`, and its DataX byte size.
    ends: Vec<(usize, u64)>,
    /// The encoded primary-key columns of the current record, and their size.
    key: Vec<u8>,
    text: String,
    /// Row-change mode: what the record does to each configured column.
    columns: Vec<ColumnChange>,
}

/// Row-change mode: a configured column's state and, when set, which attribute cell
/// holds its value and that cell's version.
#[derive(Clone, Copy, Debug)]
struct ColumnChange {
    state: char,
    cell: Option<usize>,
    newest: Option<i64>,
}

impl EncodedRows {
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The records encoded one after another, and each one's end in those bytes and
    /// DataX byte size (for [`RecordSink::push_encoded_run`]).
    ///
    /// [`RecordSink::push_encoded_run`]: protocol::runtime::RecordSink::push_encoded_run
    pub fn run(&self) -> (&[u8], &[(usize, u64)]) {
        (&self.buf, &self.ends)
    }

    /// Each record's encoding and DataX byte size, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&(end, size)| {
            let r = (&self.buf[start..end], size);
            start = end;
            r
        })
    }

    fn end_record(&mut self, size: u64) {
        self.ends.push((self.buf.len(), size));
    }
}

/// `rmp::encode::write_str`'s bytes (fixstr, str 8, str 16 or str 32), written
/// directly: the most frequent value of the output. Returns its DataX size, the
/// UTF-16 length (as `Value::byte_size`).
fn put_str(out: &mut Vec<u8>, s: Text<'_>) -> u64 {
    let len = s.as_bytes().len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len < 256 {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len < 65536 {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
    s.utf16_len() as u64
}

fn put_nil(out: &mut Vec<u8>) {
    let _ = rmp::encode::write_nil(out);
}

/// `rmp::encode::write_sint`'s bytes (the shortest MessagePack int), written directly;
/// the DataX size of a long.
#[inline]
fn put_long(out: &mut Vec<u8>, v: i64) -> u64 {
    match v {
        // Positive and negative fixint: the value's own byte.
        -32..=127 => out.push(v as u8),
        -128..=-33 => out.extend_from_slice(&[0xd0, v as u8]),
        -32768..=-129 => {
            out.push(0xd1);
            out.extend_from_slice(&(v as i16).to_be_bytes());
        }
        -2147483648..=-32769 => {
            out.push(0xd2);
            out.extend_from_slice(&(v as i32).to_be_bytes());
        }
        i64::MIN..=-2147483649 => {
            out.push(0xd3);
            out.extend_from_slice(&v.to_be_bytes());
        }
        128..=255 => out.extend_from_slice(&[0xcc, v as u8]),
        256..=65535 => {
            out.push(0xcd);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        65536..=4294967295 => {
            out.push(0xce);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
        _ => {
            out.push(0xcf);
            out.extend_from_slice(&(v as u64).to_be_bytes());
        }
    }
    8
}

/// `rmp::encode::write_array_len`'s bytes, written directly.
#[inline(always)]
fn put_array_len(out: &mut Vec<u8>, len: usize) {
    if len < 16 {
        out.push(0x90 | len as u8);
    } else if len < 65536 {
        out.push(0xdc);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// One column value as `convert`'s `value` makes it, encoded; its size.
fn put_value(out: &mut Vec<u8>, v: ValueRef<'_>, column: Text<'_>) -> Result<u64, ConvertError> {
    Ok(match v {
        ValueRef::Integer(i) => put_long(out, i),
        ValueRef::Double(d) if !d.is_finite() => {
            return Err(convert::not_finite(column.as_str(), d))
        }
        ValueRef::Double(d) => {
            let d = d + 0.0;
            let _ = rmp::encode::write_f64(out, d);
            Value::Double(d).byte_size()
        }
        ValueRef::Boolean(b) => {
            let _ = rmp::encode::write_bool(out, b);
            1
        }
        ValueRef::String(s) => put_str(out, s),
        ValueRef::Binary(b) => {
            let _ = rmp::encode::write_bin(out, b);
            b.len() as u64
        }
        ValueRef::InfMin | ValueRef::InfMax | ValueRef::AutoIncrement => {
            return Err(convert::not_in_a_record(column.as_str(), &v))
        }
    })
}

/// The errors of `convert`'s `value`, without converting.
fn check_value(v: ValueRef<'_>, column: Text<'_>) -> Result<(), ConvertError> {
    match v {
        ValueRef::Double(d) if !d.is_finite() => Err(convert::not_finite(column.as_str(), d)),
        ValueRef::InfMin | ValueRef::InfMax | ValueRef::AutoIncrement => {
            Err(convert::not_in_a_record(column.as_str(), &v))
        }
        _ => Ok(()),
    }
}

/// One output line of multi-version mode: the primary key, then these columns.
struct Line<'a> {
    name: Option<Text<'a>>,
    timestamp: Option<i64>,
    value: Option<ValueRef<'a>>,
    op: Op,
}

/// The operation column of multi-version mode.
#[derive(Clone, Copy)]
enum Op {
    /// `U`: a column put.
    Put,
    /// `DO`: one version of a column deleted.
    DeleteOne,
    /// `DA`: every version of a column deleted.
    DeleteAll,
    /// `DR`: the row deleted.
    DeleteRow,
}

impl Op {
    /// `put_str` of the operation's text, as constant bytes (one store, not a copy); its
    /// DataX size.
    #[inline]
    fn put(self, out: &mut Vec<u8>) -> u64 {
        match self {
            Op::Put => {
                out.extend_from_slice(&[0xa1, b'U']);
                1
            }
            Op::DeleteOne => {
                out.extend_from_slice(&[0xa2, b'D', b'O']);
                2
            }
            Op::DeleteAll => {
                out.extend_from_slice(&[0xa2, b'D', b'A']);
                2
            }
            Op::DeleteRow => {
                out.extend_from_slice(&[0xa2, b'D', b'R']);
                2
            }
        }
    }
}

/// `convert::multi_version`, encoded. On error `out` holds nothing usable.
pub fn multi_version(
    action: i32,
    row: RowRef<'_>,
    info: &SequenceInfo,
    shard_id: &str,
    export_sequence_info: bool,
    out: &mut EncodedRows,
) -> Result<(), ConvertError> {
    out.clear();
    out.key.clear();
    let mut key_size = 0;
    for c in row.primary_key() {
        let v = c
            .value
            .ok_or_else(|| ConvertError(format!("primary key column {:?} has no value", c.name)))?;
        key_size += put_value(&mut out.key, v, c.name)?;
    }
    let columns = row.primary_key().len() + 4 + usize::from(export_sequence_info);
    let prefix = export_sequence_info.then(|| sequence_prefix(info, shard_id));
    let mut index = 0u32;
    let mut line = |out: &mut EncodedRows, l: Line<'_>| -> Result<(), ConvertError> {
        put_array_len(&mut out.buf, columns);
        out.buf.extend_from_slice(&out.key);
        let mut size = key_size;
        match l.name {
            Some(n) => size += put_str(&mut out.buf, n),
            None => put_nil(&mut out.buf),
        }
        match l.timestamp {
            Some(t) => size += put_long(&mut out.buf, t),
            None => put_nil(&mut out.buf),
        }
        match l.value {
            Some(v) => size += put_value(&mut out.buf, v, l.name.unwrap_or_default())?,
            None => put_nil(&mut out.buf),
        }
        size += l.op.put(&mut out.buf);
        if let Some(p) = &prefix {
            out.text.clear();
            let _ = write!(out.text, "{p}:{index:010}");
            size += put_str(&mut out.buf, out.text.as_str().into());
        }
        index += 1;
        out.end_record(size);
        Ok(())
    };
    let row_deleted = Line {
        name: None,
        timestamp: None,
        value: None,
        op: Op::DeleteRow,
    };
    match action {
        pb::DELETE_ROW => line(out, row_deleted)?,
        pb::PUT_ROW | pb::UPDATE_ROW => {
            if action == pb::PUT_ROW {
                line(out, row_deleted)?;
            }
            for c in row.cells() {
                let (name, ts) = (Some(c.name), c.timestamp);
                let l = match c.op {
                    None => {
                        let v = c.value.ok_or_else(|| {
                            ConvertError(format!("put cell {:?} has no value", c.name))
                        })?;
                        check_value(v, c.name)?;
                        Line {
                            name,
                            timestamp: ts,
                            value: Some(v),
                            op: Op::Put,
                        }
                    }
                    Some(OP_DELETE_ONE_VERSION) => Line {
                        name,
                        timestamp: ts,
                        value: None,
                        op: Op::DeleteOne,
                    },
                    Some(OP_DELETE_ALL_VERSION) => Line {
                        name,
                        timestamp: None,
                        value: None,
                        op: Op::DeleteAll,
                    },
                    Some(op) => {
                        return Err(ConvertError(format!(
                            "cell {:?} has the unknown operation type {op:#04x}",
                            c.name
                        )))
                    }
                };
                line(out, l)?;
            }
        }
        other => return Err(ConvertError(format!("unknown stream action type {other}"))),
    }
    Ok(())
}

/// `convert::single_version`, encoded: no record when that gives none.
pub fn single_version(
    action: i32,
    row: RowRef<'_>,
    info: &SequenceInfo,
    shard_id: &str,
    columns: &[String],
    export_sequence_info: bool,
    out: &mut EncodedRows,
) -> Result<(), ConvertError> {
    out.clear();
    if action != pb::PUT_ROW && action != pb::UPDATE_ROW {
        return Ok(());
    }
    let mut slots: Vec<Option<ValueRef<'_>>> = vec![None; columns.len()];
    let mut found = false;
    let puts = row
        .primary_key()
        .chain(row.cells().filter(|c| c.op.is_none()));
    // A later cell with the same name overwrites an earlier one.
    for c in puts {
        for (i, name) in columns.iter().enumerate() {
            if c.name == **name {
                if let Some(v) = c.value {
                    check_value(v, c.name)?;
                    slots[i] = Some(v);
                    found = true;
                }
            }
        }
    }
    if !found {
        return Ok(());
    }
    let count = columns.len() + usize::from(export_sequence_info);
    put_array_len(&mut out.buf, count);
    let mut size = 0;
    for (slot, name) in slots.iter().zip(columns) {
        match slot {
            Some(v) => size += put_value(&mut out.buf, *v, name.as_str().into())?,
            None => put_nil(&mut out.buf),
        }
    }
    end_record(out, size, export_sequence_info.then_some((info, shard_id)));
    Ok(())
}

/// `row_change::row_change`, encoded.
pub fn row_change(
    action: i32,
    row: RowRef<'_>,
    info: &SequenceInfo,
    shard_id: &str,
    columns: &[String],
    export_sequence_info: bool,
    out: &mut EncodedRows,
) -> Result<(), ConvertError> {
    out.clear();
    let (op, initial) = match action {
        pb::PUT_ROW => (row_change::PUT, row_change::DELETED),
        pb::UPDATE_ROW => (row_change::UPDATE, row_change::UNTOUCHED),
        pb::DELETE_ROW => (row_change::DELETE, row_change::UNTOUCHED),
        other => return Err(ConvertError(format!("unknown stream action type {other}"))),
    };
    let untouched = ColumnChange {
        state: initial,
        cell: None,
        newest: None,
    };
    out.columns.clear();
    out.columns.resize(columns.len(), untouched);
    if action != pb::DELETE_ROW {
        for (index, c) in row.cells().enumerate() {
            let Some(i) = columns.iter().position(|name| c.name == **name) else {
                continue;
            };
            let column = &mut out.columns[i];
            match c.op {
                None => {
                    let v = c.value.ok_or_else(|| {
                        ConvertError(format!("put cell {:?} has no value", c.name))
                    })?;
                    // The visible version of a column a put carries several times is
                    // its newest.
                    let older =
                        matches!((column.newest, c.timestamp), (Some(seen), Some(ts)) if ts < seen);
                    if !older {
                        check_value(v, c.name)?;
                        *column = ColumnChange {
                            state: row_change::SET,
                            cell: Some(index),
                            newest: c.timestamp,
                        };
                    }
                }
                Some(OP_DELETE_ALL_VERSION | OP_DELETE_ONE_VERSION) => {
                    *column = ColumnChange {
                        state: row_change::DELETED,
                        cell: None,
                        newest: None,
                    };
                }
                Some(other) => {
                    return Err(ConvertError(format!(
                        "cell {:?} has the unknown operation type {other:#04x}",
                        c.name
                    )))
                }
            }
        }
    }
    let count = 2 + row.primary_key().len() + columns.len() + usize::from(export_sequence_info);
    put_array_len(&mut out.buf, count);
    let mut size = put_str(&mut out.buf, op.into());
    out.text.clear();
    out.text.extend(out.columns.iter().map(|c| c.state));
    size += put_str(&mut out.buf, out.text.as_str().into());
    for c in row.primary_key() {
        let v = c
            .value
            .ok_or_else(|| ConvertError(format!("primary key column {:?} has no value", c.name)))?;
        size += put_value(&mut out.buf, v, c.name)?;
    }
    for column in &out.columns {
        match column.cell.and_then(|i| row.cell_at(i)) {
            Some(c) => match c.value {
                Some(v) => size += put_value(&mut out.buf, v, c.name)?,
                None => put_nil(&mut out.buf),
            },
            None => put_nil(&mut out.buf),
        }
    }
    end_record(out, size, export_sequence_info.then_some((info, shard_id)));
    Ok(())
}

/// Ends a record of `size` DataX bytes so far, after its sequence column when
/// `sequence` is given.
fn end_record(out: &mut EncodedRows, mut size: u64, sequence: Option<(&SequenceInfo, &str)>) {
    if let Some((info, shard_id)) = sequence {
        size += put_str(
            &mut out.buf,
            sequence_prefix(info, shard_id).as_str().into(),
        );
    }
    out.end_record(size);
}

#[cfg(test)]
mod tests;
