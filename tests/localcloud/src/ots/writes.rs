//! Row writes: PutRow, UpdateRow, DeleteRow, BatchWriteRow (spec §2.4, §3.5), with
//! row-existence conditions, multi-version cells and one stream record per change.

use std::collections::HashSet;

use prost::Message;

use super::error::{OtsError, OtsResult};
use super::pb;
use super::plainbuffer::{
    self, Cell, PkValue, Row, Value, OP_DELETE_ALL_VERSIONS, OP_DELETE_ONE_VERSION, OP_INCREMENT,
};
use super::state::{put_version, valid_name, Instance, Key, StoredRow, Table};
use super::stream::Action;

/// Largest number of rows in one BatchWriteRow.
pub const MAX_BATCH_WRITE_ROWS: usize = 200;
const MAX_VALUE_BYTES: usize = 2 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    Put,
    Update,
    Delete,
}

impl WriteKind {
    fn from_batch_type(t: i32) -> OtsResult<Self> {
        match t {
            1 => Ok(Self::Put),
            2 => Ok(Self::Update),
            3 => Ok(Self::Delete),
            _ => Err(OtsError::invalid(format!("Invalid operation type: {t}."))),
        }
    }
}

/// The server's time for one request.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub ms: i64,
    pub us: i64,
}

fn consumed(read: i32, write: i32) -> pb::ConsumedCapacity {
    pb::ConsumedCapacity {
        capacity_unit: pb::CapacityUnit {
            read: Some(read),
            write: Some(write),
        },
    }
}

/// Capacity units for a number of bytes (4 KB each, at least one).
pub fn units(bytes: usize) -> i32 {
    i32::try_from(bytes.div_ceil(4096).max(1)).unwrap_or(i32::MAX)
}

/// One write of one row, decoded and checked but not yet applied.
struct WriteRequest<'a> {
    kind: WriteKind,
    row_bytes: &'a [u8],
    condition: Option<&'a pb::Condition>,
    return_content: Option<&'a pb::ReturnContent>,
}

struct WriteOutcome {
    return_row: Option<Vec<u8>>,
    write_units: i32,
    read_units: i32,
}

fn check_condition(condition: Option<&pb::Condition>) -> OtsResult<i32> {
    let condition = pb::required(condition, "condition")?;
    if condition.column_condition.is_some() {
        return Err(OtsError::invalid(
            "Column conditions are not supported by this emulator.",
        ));
    }
    let expect = pb::required(condition.row_existence, "condition.row_existence")?;
    if !(0..=2).contains(&expect) {
        return Err(OtsError::invalid(format!(
            "Invalid row existence expectation: {expect}."
        )));
    }
    Ok(expect)
}

/// Most attribute cells one write may carry.
pub const MAX_COLUMNS_PER_WRITE: usize = 1024;

fn check_cells(table: &Table, row: &Row, now_ms: i64) -> OtsResult<()> {
    if row.cells.len() > MAX_COLUMNS_PER_WRITE {
        return Err(OtsError::new(
            400,
            "OTSOutOfColumnCountLimit",
            "The number of columns from the request exceeds the limit.",
        ));
    }
    // Valid versions: [max(now - deviation, now - TTL), now + deviation) (TableOptions
    // reference of the service).
    let deviation_ms = table.options.deviation_cell_version_s.saturating_mul(1000);
    let low = (now_ms - deviation_ms).max(table.ttl_floor_ms(now_ms));
    let high = now_ms.saturating_add(deviation_ms);
    for cell in &row.cells {
        if let (Some(ts), Some(_), None) = (cell.timestamp_ms, &cell.value, cell.op) {
            if ts < low || ts >= high {
                return Err(OtsError::invalid(format!(
                    "The timestamp of column '{}' is out of the allowed range.",
                    cell.name
                )));
            }
        }
        if !valid_name(&cell.name, 255) || table.primary_key.iter().any(|c| c.name == cell.name) {
            return Err(OtsError::invalid(format!(
                "Invalid column name: '{}'.",
                cell.name
            )));
        }
        if cell.timestamp_ms.is_some_and(|t| t < 0) {
            return Err(OtsError::invalid(
                "Timestamp of column must not be negative.",
            ));
        }
        let size = match &cell.value {
            Some(Value::String(s)) => s.len(),
            Some(Value::Binary(b)) => b.len(),
            _ => 0,
        };
        if size > MAX_VALUE_BYTES {
            return Err(OtsError::invalid(
                "The length of attribute column exceeds the limit.",
            ));
        }
    }
    Ok(())
}

/// Checks the cell shapes allowed for `kind`.
fn check_shapes(kind: WriteKind, row: &Row) -> OtsResult<()> {
    let bad = |what: &str| Err(OtsError::invalid(what.to_owned()));
    match kind {
        WriteKind::Put => {
            if row.delete_marker
                || row
                    .cells
                    .iter()
                    .any(|c| c.value.is_none() || c.op.is_some())
            {
                return bad("PutRow accepts only columns with values.");
            }
        }
        WriteKind::Delete => {
            if !row.delete_marker || !row.cells.is_empty() {
                return bad("DeleteRow needs the primary key and the delete marker only.");
            }
        }
        WriteKind::Update => {
            if row.delete_marker {
                return bad("UpdateRow must not carry a delete marker.");
            }
            if row.cells.is_empty() {
                return bad("UpdateRow needs at least one column.");
            }
            for c in &row.cells {
                let ok = matches!(
                    (c.op, &c.value, c.timestamp_ms),
                    (None, Some(_), _)
                        | (Some(OP_DELETE_ONE_VERSION), None, Some(_))
                        | (Some(OP_DELETE_ALL_VERSIONS), None, None)
                        | (Some(OP_INCREMENT), Some(Value::Integer(_)), None)
                );
                if !ok {
                    return bad(&format!("Invalid column operation on '{}'.", c.name));
                }
            }
        }
    }
    Ok(())
}

/// Applies one row write to `table`; logs it to the stream when one is enabled.
fn apply(
    table: &mut Table,
    req: &WriteRequest<'_>,
    now: Now,
    row_index: u32,
) -> OtsResult<WriteOutcome> {
    let expect = check_condition(req.condition)?;
    let row =
        plainbuffer::decode_row(req.row_bytes).map_err(|e| OtsError::invalid(e.to_string()))?;
    if row.sequence_info.is_some() {
        return Err(OtsError::invalid("Unexpected row extension in a request."));
    }
    check_shapes(req.kind, &row)?;
    check_cells(table, &row, now.ms)?;
    let key = table.check_write_key(&row.primary_key, req.kind == WriteKind::Put, now.us)?;
    let exists = table.row_exists(&key, now.ms);
    if (expect == 1 && !exists) || (expect == 2 && exists) {
        return Err(OtsError::condition());
    }
    let max_versions = table.options.max_versions;
    let floor = table.ttl_floor_ms(now.ms);
    let mut logged = Vec::with_capacity(row.cells.len());
    let action = match req.kind {
        WriteKind::Put => {
            let mut stored = StoredRow::default();
            for c in &row.cells {
                let ts = c.timestamp_ms.unwrap_or(now.ms);
                let value = c
                    .value
                    .clone()
                    .ok_or_else(|| OtsError::invalid("missing value"))?;
                put_version(
                    stored.columns.entry(c.name.clone()).or_default(),
                    ts,
                    value.clone(),
                    max_versions,
                );
                logged.push(put_cell(&c.name, value, ts));
            }
            table.rows.insert(key.clone(), stored);
            Action::Put
        }
        WriteKind::Update => {
            let mut stored = table.rows.get(&key).cloned().unwrap_or_default();
            for c in &row.cells {
                logged.push(update_cell(&mut stored, c, now.ms, floor, max_versions)?);
            }
            table.rows.insert(key.clone(), stored);
            Action::Update
        }
        WriteKind::Delete => {
            table.rows.remove(&key);
            Action::Delete
        }
    };
    let named = table.named_key(&key);
    let return_row = return_row(table, req.return_content, &key, &named)?;
    if table.stream.is_some() {
        let commit_us = table.last_commit_us.saturating_add(1).max(now.us);
        table.last_commit_us = commit_us;
        let record = Row {
            primary_key: named,
            cells: logged,
            delete_marker: req.kind == WriteKind::Delete,
            sequence_info: None,
        };
        if let Some(stream) = table.stream.as_mut() {
            stream.append(action, record, commit_us, row_index);
        }
    }
    Ok(WriteOutcome {
        return_row,
        write_units: units(req.row_bytes.len()),
        read_units: i32::from(expect != 0),
    })
}

fn put_cell(name: &str, value: Value, ts: i64) -> Cell {
    Cell {
        name: name.to_owned(),
        value: Some(value),
        op: None,
        timestamp_ms: Some(ts),
    }
}

/// Applies one UpdateRow cell; returns the cell as the stream logs it.
fn update_cell(
    stored: &mut StoredRow,
    c: &Cell,
    now_ms: i64,
    floor: i64,
    max_versions: i32,
) -> OtsResult<Cell> {
    match (c.op, &c.value) {
        (None, Some(value)) => {
            let ts = c.timestamp_ms.unwrap_or(now_ms);
            put_version(
                stored.columns.entry(c.name.clone()).or_default(),
                ts,
                value.clone(),
                max_versions,
            );
            Ok(put_cell(&c.name, value.clone(), ts))
        }
        (Some(OP_INCREMENT), Some(Value::Integer(delta))) => {
            let versions = stored.columns.entry(c.name.clone()).or_default();
            let current = match versions.iter().find(|(ts, _)| *ts >= floor) {
                None => 0,
                Some((_, Value::Integer(i))) => *i,
                Some(_) => {
                    return Err(OtsError::invalid(format!(
                        "Column '{}' is not an integer and cannot be incremented.",
                        c.name
                    )))
                }
            };
            let value = Value::Integer(current.wrapping_add(*delta));
            put_version(versions, now_ms, value.clone(), max_versions);
            Ok(put_cell(&c.name, value, now_ms))
        }
        (Some(OP_DELETE_ONE_VERSION), None) => {
            if let Some(versions) = stored.columns.get_mut(&c.name) {
                versions.retain(|(ts, _)| Some(*ts) != c.timestamp_ms);
                if versions.is_empty() {
                    stored.columns.remove(&c.name);
                }
            }
            Ok(c.clone())
        }
        _ => {
            stored.columns.remove(&c.name);
            Ok(c.clone())
        }
    }
}

fn return_row(
    table: &Table,
    content: Option<&pb::ReturnContent>,
    key: &Key,
    named: &[(String, PkValue)],
) -> OtsResult<Option<Vec<u8>>> {
    let kind = content.and_then(|c| c.return_type).unwrap_or(0);
    let mut row = Row {
        primary_key: named.to_vec(),
        ..Row::default()
    };
    match kind {
        0 => return Ok(None),
        1 => {}
        2 => {
            let names = content
                .map(|c| c.return_column_names.clone())
                .unwrap_or_default();
            if let Some(stored) = table.rows.get(key) {
                for name in names {
                    if let Some((ts, v)) = stored.columns.get(&name).and_then(|v| v.first()) {
                        row.cells.push(put_cell(&name, v.clone(), *ts));
                    }
                }
            }
        }
        other => return Err(OtsError::invalid(format!("Invalid return type: {other}."))),
    }
    Ok(Some(plainbuffer::encode_row(&row)))
}

/// PutRow, UpdateRow or DeleteRow.
pub fn single(db: &mut Instance, kind: WriteKind, body: &[u8], now: Now) -> OtsResult<Vec<u8>> {
    let req: pb::WriteRowRequest = pb::decode(body)?;
    if req.transaction_id.is_some() {
        return Err(OtsError::invalid(
            "Transactions are not supported by this emulator.",
        ));
    }
    let table_name = pb::required(req.table_name.as_deref(), "table_name")?;
    let row_bytes = pb::required(req.row.as_deref(), "row")?;
    let table = db.table_mut(table_name)?;
    let outcome = apply(
        table,
        &WriteRequest {
            kind,
            row_bytes,
            condition: req.condition.as_ref(),
            return_content: req.return_content.as_ref(),
        },
        now,
        0,
    )?;
    Ok(pb::WriteRowResponse {
        consumed: consumed(outcome.read_units, outcome.write_units),
        row: outcome.return_row,
    }
    .encode_to_vec())
}

/// BatchWriteRow: every row is applied on its own; failures are reported per row.
pub fn batch(db: &mut Instance, body: &[u8], now: Now) -> OtsResult<Vec<u8>> {
    let req: pb::BatchWriteRowRequest = pb::decode(body)?;
    if req.transaction_id.is_some() || req.is_atomic == Some(true) {
        return Err(OtsError::invalid(
            "Transactions are not supported by this emulator.",
        ));
    }
    let total: usize = req.tables.iter().map(|t| t.rows.len()).sum();
    if total == 0 {
        return Err(OtsError::invalid(
            "No row specified in the request of BatchWriteRow.",
        ));
    }
    if total > MAX_BATCH_WRITE_ROWS {
        return Err(OtsError::invalid(format!(
            "Rows count exceeds the upper limit: {MAX_BATCH_WRITE_ROWS}."
        )));
    }
    let mut seen_tables = HashSet::new();
    for t in &req.tables {
        let name = pb::required(t.table_name.as_deref(), "table_name")?;
        if !seen_tables.insert(name) {
            return Err(OtsError::invalid(format!(
                "Duplicated table name: '{name}'."
            )));
        }
        let mut seen_rows = HashSet::new();
        for r in &t.rows {
            let bytes = pb::required(r.row_change.as_deref(), "row_change")?;
            let row =
                plainbuffer::decode_row(bytes).map_err(|e| OtsError::invalid(e.to_string()))?;
            if !seen_rows.insert(format!("{:?}", row.primary_key)) {
                return Err(OtsError::invalid("The input parameter is invalid."));
            }
        }
    }
    let mut response = pb::BatchResponse::default();
    let mut row_index = 0u32;
    for t in &req.tables {
        let name = t.table_name.clone().unwrap_or_default();
        let mut rows = Vec::with_capacity(t.rows.len());
        for r in &t.rows {
            let result = (|| {
                let kind = WriteKind::from_batch_type(pb::required(r.r#type, "type")?)?;
                let table = db.table_mut(&name)?;
                apply(
                    table,
                    &WriteRequest {
                        kind,
                        row_bytes: r.row_change.as_deref().unwrap_or_default(),
                        condition: r.condition.as_ref(),
                        return_content: r.return_content.as_ref(),
                    },
                    now,
                    row_index,
                )
            })();
            row_index += 1;
            rows.push(match result {
                Ok(o) => pb::RowInBatchResponse {
                    is_ok: true,
                    error: None,
                    consumed: Some(consumed(o.read_units, o.write_units)),
                    row: o.return_row,
                },
                Err(e) => pb::RowInBatchResponse {
                    is_ok: false,
                    error: Some(e.to_proto()),
                    consumed: None,
                    row: None,
                },
            });
        }
        response.tables.push(pb::TableInBatchResponse {
            table_name: name,
            rows,
        });
    }
    Ok(response.encode_to_vec())
}
