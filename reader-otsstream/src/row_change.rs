//! Row-change mode (`mode: "row_change"`, not a DataX mode): one record per stream
//! record, carrying what a mirror needs to apply the change exactly.
//!
//! Layout (README "Row-change mode"):
//!
//! ```text
//! [op, states, pk_1, …, pk_k, c_1, …, c_n (, sequence info)]
//! ```
//!
//! - `op`: `"put"` (the whole row is replaced), `"update"` (only the touched columns
//!   change) or `"delete"` (the row is gone);
//! - `states`: a string of `n` characters, one per configured column `c_i`:
//!   [`SET`] (`c_i` holds the new value), [`DELETED`] (the column no longer exists:
//!   `c_i` is null) or [`UNTOUCHED`] (the change leaves the column as it was: `c_i` is
//!   null). A put marks every column it does not carry [`DELETED`]; a delete marks
//!   every column [`UNTOUCHED`];
//! - the primary-key columns in the table's order, then the configured columns.
//!
//! A cell delete of one version counts as a column delete: the mode mirrors tables
//! that keep one version (`max_versions` 1).

use protocol::value::Value;

use crate::convert::{sequence_prefix, value, ConvertError};
use crate::pb;
use crate::plainbuffer::{Row, SequenceInfo, OP_DELETE_ALL_VERSION, OP_DELETE_ONE_VERSION};

/// The column holds the record's value.
pub const SET: char = 'U';
/// The column was deleted by the change (its value is null).
pub const DELETED: char = 'D';
/// The change does not touch the column.
pub const UNTOUCHED: char = '-';

/// The `op` values.
pub const PUT: &str = "put";
pub const UPDATE: &str = "update";
pub const DELETE: &str = "delete";

/// The record of one stream record in row-change mode.
pub fn row_change(
    action: i32,
    row: &Row,
    info: &SequenceInfo,
    shard_id: &str,
    columns: &[String],
    export_sequence_info: bool,
) -> Result<Vec<Value>, ConvertError> {
    let n = columns.len();
    let (op, initial) = match action {
        pb::PUT_ROW => (PUT, DELETED),
        pb::UPDATE_ROW => (UPDATE, UNTOUCHED),
        pb::DELETE_ROW => (DELETE, UNTOUCHED),
        other => return Err(ConvertError(format!("unknown stream action type {other}"))),
    };
    let mut states = vec![initial; n];
    let mut values = vec![Value::Null; n];
    // The visible version of a column a put carries several times is its newest.
    let mut newest: Vec<Option<i64>> = vec![None; n];
    if action != pb::DELETE_ROW {
        for c in &row.cells {
            let Some(i) = columns.iter().position(|name| *name == c.name) else {
                continue;
            };
            match c.op {
                None => {
                    let v = c.value.as_ref().ok_or_else(|| {
                        ConvertError(format!("put cell {:?} has no value", c.name))
                    })?;
                    let older =
                        matches!((newest[i], c.timestamp), (Some(seen), Some(ts)) if ts < seen);
                    if !older {
                        values[i] = value(v, &c.name)?;
                        states[i] = SET;
                        newest[i] = c.timestamp;
                    }
                }
                Some(OP_DELETE_ALL_VERSION | OP_DELETE_ONE_VERSION) => {
                    values[i] = Value::Null;
                    states[i] = DELETED;
                    newest[i] = None;
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
    let mut out = Vec::with_capacity(2 + row.primary_key.len() + n + 1);
    out.push(Value::String(op.to_owned()));
    out.push(Value::String(states.into_iter().collect()));
    for c in &row.primary_key {
        let v = c
            .value
            .as_ref()
            .ok_or_else(|| ConvertError(format!("primary key column {:?} has no value", c.name)))?;
        out.push(value(v, &c.name)?);
    }
    out.extend(values);
    if export_sequence_info {
        out.push(Value::String(sequence_prefix(info, shard_id)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plainbuffer::{Cell, CellValue};

    fn cell(name: &str, v: Option<CellValue>, op: Option<u8>, ts: Option<i64>) -> Cell {
        Cell {
            name: name.into(),
            value: v,
            op,
            timestamp: ts,
        }
    }

    fn row(cells: Vec<Cell>) -> Row {
        Row {
            primary_key: vec![
                cell("id", Some(CellValue::String("k1".into())), None, None),
                cell("n", Some(CellValue::Integer(7)), None, None),
            ],
            cells,
            delete_marker: false,
            sequence_info: None,
        }
    }

    fn info() -> SequenceInfo {
        SequenceInfo {
            epoch: 1,
            timestamp_us: 5,
            row_index: 2,
        }
    }

    fn cols() -> Vec<String> {
        ["a", "b", "c"].iter().map(|s| s.to_string()).collect()
    }

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn a_put_sets_its_columns_and_deletes_the_others() {
        let r = row(vec![
            cell("a", Some(CellValue::Integer(1)), None, Some(10)),
            cell("zz", Some(CellValue::Integer(9)), None, Some(10)),
            cell("c", Some(CellValue::Boolean(true)), None, Some(10)),
        ]);
        let out = row_change(pb::PUT_ROW, &r, &info(), "s", &cols(), false).unwrap();
        assert_eq!(
            out,
            vec![
                s("put"),
                s("UDU"),
                s("k1"),
                Value::Long(7),
                Value::Long(1),
                Value::Null,
                Value::Bool(true)
            ]
        );
    }

    #[test]
    fn an_update_tells_deleted_from_untouched() {
        let r = row(vec![
            cell("b", None, Some(OP_DELETE_ALL_VERSION), None),
            cell("c", Some(CellValue::String("x".into())), None, Some(3)),
        ]);
        let out = row_change(pb::UPDATE_ROW, &r, &info(), "s", &cols(), true).unwrap();
        assert_eq!(
            out,
            vec![
                s("update"),
                s("-DU"),
                s("k1"),
                Value::Long(7),
                Value::Null,
                Value::Null,
                s("x"),
                s(&sequence_prefix(&info(), "s")),
            ]
        );
        // A delete then a put of the same column within one record: the put is last.
        let r = row(vec![
            cell("a", None, Some(OP_DELETE_ONE_VERSION), Some(3)),
            cell("a", Some(CellValue::Double(-0.0)), None, Some(4)),
        ]);
        let out = row_change(pb::UPDATE_ROW, &r, &info(), "s", &cols(), false).unwrap();
        assert_eq!(out[1], s("U--"));
        assert!(matches!(out[4], Value::Double(d) if d == 0.0 && d.is_sign_positive()));
    }

    #[test]
    fn the_newest_version_of_a_put_column_wins() {
        let r = row(vec![
            cell("a", Some(CellValue::Integer(2)), None, Some(20)),
            cell("a", Some(CellValue::Integer(1)), None, Some(10)),
        ]);
        let out = row_change(pb::PUT_ROW, &r, &info(), "s", &cols(), false).unwrap();
        assert_eq!(out[4], Value::Long(2));
    }

    #[test]
    fn a_delete_carries_only_the_key() {
        let mut r = row(vec![]);
        r.delete_marker = true;
        let out = row_change(pb::DELETE_ROW, &r, &info(), "s", &cols(), false).unwrap();
        assert_eq!(out[..4], [s("delete"), s("---"), s("k1"), Value::Long(7)]);
        assert!(out[4..].iter().all(|v| *v == Value::Null));
    }

    #[test]
    fn bad_records_are_errors() {
        let r = row(vec![cell(
            "a",
            Some(CellValue::Double(f64::NAN)),
            None,
            None,
        )]);
        assert!(row_change(pb::PUT_ROW, &r, &info(), "s", &cols(), false).is_err());
        let r = row(vec![cell("a", None, Some(0x7f), None)]);
        let e = row_change(pb::UPDATE_ROW, &r, &info(), "s", &cols(), false).unwrap_err();
        assert!(e.0.contains("\"a\""), "{e}");
        assert!(row_change(9, &row(vec![]), &info(), "s", &cols(), false).is_err());
    }
}
