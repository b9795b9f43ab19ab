//! Row reads: GetRow, BatchGetRow, GetRange (spec §2.4).

use prost::Message;

use super::error::{OtsError, OtsResult};
use super::pb;
use super::plainbuffer::{self, Cell, Encoder, Row};
use super::state::{Instance, Key, Table, VersionFilter};
use super::writes::units;

/// Largest number of rows in one BatchGetRow.
pub const MAX_BATCH_GET_ROWS: usize = 100;
/// Rows per GetRange page when the request's limit is larger or absent.
pub const MAX_RANGE_ROWS: usize = 5000;
/// Bytes per GetRange page (the page stops after the row that crosses it).
pub const MAX_RANGE_BYTES: usize = 4 * 1024 * 1024;

/// What a read selects, shared by the three read operations.
struct Selection<'a> {
    columns_to_get: &'a [String],
    filter: VersionFilter,
    start_column: Option<&'a str>,
    end_column: Option<&'a str>,
}

impl Selection<'_> {
    fn cells(&self, table: &Table, key: &Key, now_ms: i64) -> Option<Vec<Cell>> {
        let stored = table.rows.get(key)?;
        let mut cells = table.visible_cells(stored, self.columns_to_get, &self.filter, now_ms)?;
        cells.retain(|c| {
            self.start_column.is_none_or(|s| c.name.as_str() >= s)
                && self.end_column.is_none_or(|e| c.name.as_str() < e)
        });
        Some(cells)
    }
}

fn unsupported(filter: &Option<Vec<u8>>, token: bool) -> OtsResult<()> {
    if filter.is_some() {
        return Err(OtsError::invalid(
            "Filters are not supported by this emulator.",
        ));
    }
    if token {
        return Err(OtsError::invalid(
            "Tokens are not supported by this emulator.",
        ));
    }
    Ok(())
}

fn read_consumed(bytes: usize) -> pb::ConsumedCapacity {
    pb::ConsumedCapacity {
        capacity_unit: pb::CapacityUnit {
            read: Some(units(bytes)),
            write: Some(0),
        },
    }
}

fn decode_key(table: &Table, bytes: &[u8], allow_inf: bool) -> OtsResult<Key> {
    let row = plainbuffer::decode_row(bytes).map_err(|e| OtsError::invalid(e.to_string()))?;
    if !row.cells.is_empty() || row.delete_marker || row.sequence_info.is_some() {
        return Err(OtsError::invalid(
            "A primary key must hold primary-key columns only.",
        ));
    }
    table.check_read_key(&row.primary_key, allow_inf)
}

fn encode_one(table: &Table, key: &Key, cells: Vec<Cell>) -> Vec<u8> {
    plainbuffer::encode_row(&Row {
        primary_key: table.named_key(key),
        cells,
        ..Row::default()
    })
}

/// GetRow.
pub fn get_row(db: &Instance, body: &[u8], now_ms: i64) -> OtsResult<Vec<u8>> {
    let req: pb::GetRowRequest = pb::decode(body)?;
    unsupported(
        &req.filter,
        req.token.is_some() || req.transaction_id.is_some(),
    )?;
    let table = db.table(pb::required(req.table_name.as_deref(), "table_name")?)?;
    let key = decode_key(
        table,
        pb::required(req.primary_key.as_deref(), "primary_key")?,
        false,
    )?;
    let sel = Selection {
        columns_to_get: &req.columns_to_get,
        filter: VersionFilter::from_request(req.max_versions, req.time_range.as_ref())?,
        start_column: req.start_column.as_deref(),
        end_column: req.end_column.as_deref(),
    };
    let row = sel
        .cells(table, &key, now_ms)
        .map(|cells| encode_one(table, &key, cells))
        .unwrap_or_default();
    Ok(pb::GetRowResponse {
        consumed: read_consumed(row.len()),
        row,
    }
    .encode_to_vec())
}

/// BatchGetRow: a missing table fails its rows, not the request.
pub fn batch_get_row(db: &Instance, body: &[u8], now_ms: i64) -> OtsResult<Vec<u8>> {
    let req: pb::BatchGetRowRequest = pb::decode(body)?;
    let total: usize = req.tables.iter().map(|t| t.primary_key.len()).sum();
    if total == 0 {
        return Err(OtsError::invalid(
            "No row specified in the request of BatchGetRow.",
        ));
    }
    if total > MAX_BATCH_GET_ROWS {
        return Err(OtsError::invalid(format!(
            "Rows count exceeds the upper limit: {MAX_BATCH_GET_ROWS}."
        )));
    }
    let mut response = pb::BatchResponse::default();
    for t in &req.tables {
        unsupported(&t.filter, !t.token.is_empty())?;
        let name = pb::required(t.table_name.clone(), "table_name")?;
        let filter = VersionFilter::from_request(t.max_versions, t.time_range.as_ref())?;
        let sel = Selection {
            columns_to_get: &t.columns_to_get,
            filter,
            start_column: t.start_column.as_deref(),
            end_column: t.end_column.as_deref(),
        };
        let mut rows = Vec::with_capacity(t.primary_key.len());
        for pk in &t.primary_key {
            let result = db.table(&name).and_then(|table| {
                let key = decode_key(table, pk, false)?;
                Ok(sel
                    .cells(table, &key, now_ms)
                    .map(|cells| encode_one(table, &key, cells))
                    .unwrap_or_default())
            });
            rows.push(match result {
                Ok(row) => pb::RowInBatchResponse {
                    is_ok: true,
                    error: None,
                    consumed: Some(read_consumed(row.len())),
                    row: Some(row),
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

/// GetRange: FORWARD reads `start <= pk < end` ascending, BACKWARD `end < pk <= start`
/// descending; `next_start_primary_key` is present only when rows remain.
pub fn get_range(db: &Instance, body: &[u8], now_ms: i64) -> OtsResult<Vec<u8>> {
    let req: pb::GetRangeRequest = pb::decode(body)?;
    unsupported(
        &req.filter,
        req.token.is_some() || req.transaction_id.is_some(),
    )?;
    let table = db.table(pb::required(req.table_name.as_deref(), "table_name")?)?;
    let direction = pb::required(req.direction, "direction")?;
    let start = decode_key(
        table,
        pb::required(
            req.inclusive_start_primary_key.as_deref(),
            "inclusive_start_primary_key",
        )?,
        true,
    )?;
    let end = decode_key(
        table,
        pb::required(
            req.exclusive_end_primary_key.as_deref(),
            "exclusive_end_primary_key",
        )?,
        true,
    )?;
    let limit = match req.limit {
        None => MAX_RANGE_ROWS,
        Some(l) if l > 0 => usize::try_from(l)
            .unwrap_or(MAX_RANGE_ROWS)
            .min(MAX_RANGE_ROWS),
        Some(_) => return Err(OtsError::invalid("The limit must be greater than 0.")),
    };
    let sel = Selection {
        columns_to_get: &req.columns_to_get,
        filter: VersionFilter::from_request(req.max_versions, req.time_range.as_ref())?,
        start_column: req.start_column.as_deref(),
        end_column: req.end_column.as_deref(),
    };
    let keys: Box<dyn Iterator<Item = &Key>> = match direction {
        0 if start < end => Box::new(table.rows.range(start.clone()..end.clone()).map(|(k, _)| k)),
        1 if start > end => Box::new(
            table
                .rows
                .range(end.clone()..=start.clone())
                .rev()
                .filter(move |(k, _)| **k != end)
                .map(|(k, _)| k),
        ),
        0 => {
            return Err(OtsError::invalid(
                "Begin key must be less than end key in FORWARD direction.",
            ))
        }
        1 => {
            return Err(OtsError::invalid(
                "Begin key must be more than end key in BACKWARD direction.",
            ))
        }
        d => return Err(OtsError::invalid(format!("Invalid direction: {d}."))),
    };
    let mut enc = Encoder::new();
    let mut count = 0usize;
    let mut bytes = 0usize;
    let mut next = None;
    for key in keys {
        if count >= limit || bytes >= MAX_RANGE_BYTES {
            next = Some(plainbuffer::encode_row(&Row {
                primary_key: table.named_key(key),
                ..Row::default()
            }));
            break;
        }
        if let Some(cells) = sel.cells(table, key, now_ms) {
            let row = Row {
                primary_key: table.named_key(key),
                cells,
                ..Row::default()
            };
            let before = enc_len(&enc);
            enc.write_row(&row);
            bytes += enc_len(&enc) - before;
            count += 1;
        }
    }
    let rows = if count == 0 { Vec::new() } else { enc.finish() };
    Ok(pb::GetRangeResponse {
        consumed: read_consumed(rows.len()),
        rows,
        next_start_primary_key: next,
    }
    .encode_to_vec())
}

fn enc_len(enc: &Encoder) -> usize {
    enc.len()
}
