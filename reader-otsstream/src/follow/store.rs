//! Follow-mode rows of the status table. DataX's rows use the status types
//! `DataxJobDesc`, `CheckpointForDataxReader` and `ShardTimeCheckpointForDataxReader`
//! and DataX only ever reads rows of those types (by exact key or by ranges inside one
//! type), so rows of the two types below can neither collide with nor be read by DataX:
//!
//! | StreamId | StatusType | StatusValue | attributes |
//! |---|---|---|---|
//! | stream id | `StreamportFollowCheckpoint` | `current` | `Data_0`, `Data_1`, … BINARY: zlib of the JSON [`FollowCheckpoint`], in 65 536-byte chunks; `Version` STRING (the batch id that wrote it); `UpdatedAt` INTEGER (ms) |
//! | stream id | `StreamportFollowPending` | `current` | the same, of the JSON [`PendingBatch`]; `Version` = its batch id |
//!
//! Each is one row written by one PutRow, so it is stored whole or not at all.

use std::io::{Read as _, Write as _};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::client::OtsClient;
use crate::error::OtsError;
use crate::follow::{FollowCheckpoint, PendingBatch};
use crate::pb;
use crate::plainbuffer::{Cell, CellValue};
use crate::status::{self, attr, key};

pub const FOLLOW_CHECKPOINT: &str = "StreamportFollowCheckpoint";
pub const FOLLOW_PENDING: &str = "StreamportFollowPending";
const ROW: &str = "current";
const CHUNK_BYTES: usize = 65_536;
/// How many window job rows (newest first) are looked at for a complete checkpoint set.
const WINDOW_ROWS_SCANNED: usize = 50;

fn bad(action: &str, message: String) -> OtsError {
    OtsError::Response {
        action: action.into(),
        message,
    }
}

async fn put<T: Serialize>(
    client: &OtsClient,
    table: &str,
    stream_id: &str,
    status_type: &str,
    version: &str,
    value: &T,
) -> Result<(), OtsError> {
    let json = serde_json::to_vec(value).map_err(|e| bad("PutRow", e.to_string()))?;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = z
        .write_all(&json)
        .and_then(|()| z.finish())
        .map_err(|e| bad("PutRow", format!("compressing {status_type}: {e}")))?;
    let mut cells: Vec<Cell> = compressed
        .chunks(CHUNK_BYTES)
        .enumerate()
        .map(|(i, c)| Cell::put(&format!("Data_{i}"), CellValue::Binary(c.to_vec()), None))
        .collect();
    cells.push(Cell::put(
        "Version",
        CellValue::String(version.into()),
        None,
    ));
    cells.push(Cell::put(
        "UpdatedAt",
        CellValue::Integer(chrono::Utc::now().timestamp_millis()),
        None,
    ));
    client
        .put_row(table, &key(stream_id, status_type, ROW), &cells)
        .await
}

async fn get<T: DeserializeOwned>(
    client: &OtsClient,
    table: &str,
    stream_id: &str,
    status_type: &str,
) -> Result<Option<T>, OtsError> {
    let Some(row) = client
        .get_row(table, &key(stream_id, status_type, ROW))
        .await?
    else {
        return Ok(None);
    };
    let mut compressed = Vec::new();
    for i in 0.. {
        match attr(&row, &format!("Data_{i}")) {
            Some(CellValue::Binary(b)) => compressed.extend_from_slice(b),
            _ => break,
        }
    }
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed.as_slice())
        .read_to_end(&mut json)
        .map_err(|e| bad("GetRow", format!("{status_type} row does not inflate: {e}")))?;
    serde_json::from_slice(&json)
        .map(Some)
        .map_err(|e| bad("GetRow", format!("{status_type} row is not readable: {e}")))
}

pub async fn read_checkpoint(
    client: &OtsClient,
    table: &str,
    stream_id: &str,
) -> Result<Option<FollowCheckpoint>, OtsError> {
    get(client, table, stream_id, FOLLOW_CHECKPOINT).await
}

pub async fn write_checkpoint(
    client: &OtsClient,
    table: &str,
    checkpoint: &FollowCheckpoint,
) -> Result<(), OtsError> {
    put(
        client,
        table,
        &checkpoint.stream_id,
        FOLLOW_CHECKPOINT,
        &checkpoint.version,
        checkpoint,
    )
    .await
}

pub async fn read_pending(
    client: &OtsClient,
    table: &str,
    stream_id: &str,
) -> Result<Option<PendingBatch>, OtsError> {
    get(client, table, stream_id, FOLLOW_PENDING).await
}

pub async fn write_pending(
    client: &OtsClient,
    table: &str,
    pending: &PendingBatch,
) -> Result<(), OtsError> {
    put(
        client,
        table,
        &pending.plan.stream_id,
        FOLLOW_PENDING,
        &pending.id,
        pending,
    )
    .await
}

pub async fn delete_pending(
    client: &OtsClient,
    table: &str,
    stream_id: &str,
) -> Result<(), OtsError> {
    client
        .delete_row(table, &key(stream_id, FOLLOW_PENDING, ROW))
        .await
}

/// The newest complete checkpoint set a window job stored: `(end time, version,
/// shard → checkpoint)`.
pub async fn newest_window_checkpoints(
    client: &OtsClient,
    table: &str,
    stream_id: &str,
) -> Result<Option<(i64, String, std::collections::BTreeMap<String, String>)>, OtsError> {
    let rows = client
        .get_range(
            table,
            pb::BACKWARD,
            &key(stream_id, status::JOB_DESC, "\u{7f}"),
            &key(stream_id, status::JOB_DESC, ""),
            Some(WINDOW_ROWS_SCANNED),
        )
        .await?;
    for row in rows {
        let Some(CellValue::Integer(end)) = attr(&row, "EndTime") else {
            continue;
        };
        let version = match attr(&row, "Version") {
            Some(CellValue::String(v)) => v.clone(),
            _ => String::new(),
        };
        if let Some(set) = status::complete_checkpoints(client, table, stream_id, *end).await? {
            return Ok(Some((*end, version, set)));
        }
    }
    Ok(None)
}
