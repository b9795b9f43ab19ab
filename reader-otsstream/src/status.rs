//! The status table in DataX's layout (spec `tablestore.md` §5.4): the job row, shard
//! checkpoints keyed by the window's end time, and shard time checkpoints.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::time::Duration;

use crate::client::OtsClient;
use crate::error::OtsError;
use crate::pb;
use crate::plainbuffer::{Cell, CellValue, Row};

pub const JOB_DESC: &str = "DataxJobDesc";
pub const CHECKPOINT: &str = "CheckpointForDataxReader";
pub const TIME_CHECKPOINT: &str = "ShardTimeCheckpointForDataxReader";
/// Checkpoint value: read the shard from its oldest retained record.
pub const TRIM_HORIZON: &str = "TRIM_HORIZON";
/// Checkpoint value: the shard is closed and fully read.
pub const SHARD_END: &str = "SHARD_END";
const LARGEST_SHARD_ID: &str = "\u{7f}";
const SHARD_IDS_CHUNK_BYTES: usize = 65_536;
/// 30 days, as DataX creates it.
const STATUS_TABLE_TTL_SECS: i32 = 2_592_000;
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// `String.format("%16d", t)`: right-aligned in 16 characters, space padded.
pub fn pad16(t: i64) -> String {
    format!("{t:>16}")
}

fn s(v: &str) -> CellValue {
    CellValue::String(v.to_owned())
}

pub(crate) fn key(stream_id: &str, status_type: &str, status_value: &str) -> Vec<Cell> {
    vec![
        Cell::key("StreamId", s(stream_id)),
        Cell::key("StatusType", s(status_type)),
        Cell::key("StatusValue", s(status_value)),
    ]
}

pub(crate) fn attr<'a>(row: &'a Row, name: &str) -> Option<&'a CellValue> {
    row.cells
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.value.as_ref())
}

fn attr_string(row: &Row, name: &str) -> Option<String> {
    match attr(row, name) {
        Some(CellValue::String(v)) => Some(v.clone()),
        _ => None,
    }
}

fn pk_string(row: &Row, index: usize) -> String {
    match row.primary_key.get(index).and_then(|c| c.value.as_ref()) {
        Some(CellValue::String(v)) => v.clone(),
        _ => String::new(),
    }
}

/// A shard checkpoint stored for some time.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredCheckpoint {
    pub shard_id: String,
    pub version: String,
    pub checkpoint: String,
}

/// What a job row says.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRow {
    pub version: String,
    pub shard_ids: Vec<String>,
}

/// Creates the status table if missing (and waits until it answers), or checks that
/// an existing one has DataX's primary key.
pub async fn ensure_table(client: &OtsClient, table: &str) -> Result<(), OtsError> {
    match client.describe_table(table).await {
        Ok(d) => {
            let pk: Vec<(String, i32, Option<i32>)> = d
                .table_meta
                .primary_key
                .iter()
                .map(|k| (k.name.clone(), k.r#type, k.option))
                .collect();
            let expected: Vec<(String, i32, Option<i32>)> =
                ["StreamId", "StatusType", "StatusValue"]
                    .iter()
                    .map(|n| ((*n).to_owned(), pb::PK_STRING, None))
                    .collect();
            if pk != expected {
                return Err(OtsError::Response {
                    action: "DescribeTable".into(),
                    message: format!(
                        "status table {table:?} exists but its primary key is not \
                         [StreamId STRING, StatusType STRING, StatusValue STRING]"
                    ),
                });
            }
            Ok(())
        }
        Err(e) if e.code() == Some("OTSObjectNotExist") => {
            let request = pb::CreateTableRequest {
                table_meta: pb::TableMeta {
                    table_name: table.to_owned(),
                    primary_key: ["StreamId", "StatusType", "StatusValue"]
                        .iter()
                        .map(|n| pb::PrimaryKeySchema {
                            name: (*n).to_owned(),
                            r#type: pb::PK_STRING,
                            option: None,
                        })
                        .collect(),
                },
                reserved_throughput: pb::ReservedThroughput {
                    capacity_unit: pb::CapacityUnit {
                        read: Some(0),
                        write: Some(0),
                    },
                },
                table_options: Some(pb::TableOptions {
                    time_to_live: Some(STATUS_TABLE_TTL_SECS),
                    max_versions: Some(1),
                    deviation_cell_version_in_sec: None,
                }),
                stream_spec: None,
            };
            match client.create_table(&request).await {
                Ok(()) => {}
                // Another job created it meanwhile.
                Err(e) if e.code() == Some("OTSObjectAlreadyExist") => {}
                Err(e) => return Err(e),
            }
            wait_ready(client, table).await
        }
        Err(e) => Err(e),
    }
}

async fn wait_ready(client: &OtsClient, table: &str) -> Result<(), OtsError> {
    let deadline = std::time::Instant::now() + READY_TIMEOUT;
    let all = |v: CellValue| {
        vec![
            Cell::key("StreamId", v.clone()),
            Cell::key("StatusType", v.clone()),
            Cell::key("StatusValue", v),
        ]
    };
    loop {
        match client
            .get_range(
                table,
                pb::FORWARD,
                &all(CellValue::InfMin),
                &all(CellValue::InfMax),
                Some(1),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(e)
                if matches!(
                    e.code(),
                    Some("OTSPartitionUnavailable") | Some("OTSTableNotReady")
                ) && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Every checkpoint row stored for time `t`.
pub async fn read_checkpoints(
    client: &OtsClient,
    table: &str,
    stream_id: &str,
    t: i64,
) -> Result<Vec<StoredCheckpoint>, OtsError> {
    let prefix = format!("{}\t", pad16(t));
    let rows = client
        .get_range(
            table,
            pb::FORWARD,
            &key(stream_id, CHECKPOINT, &prefix),
            &key(
                stream_id,
                CHECKPOINT,
                &format!("{prefix}{LARGEST_SHARD_ID}"),
            ),
            None,
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| StoredCheckpoint {
            shard_id: pk_string(r, 2)[prefix.len()..].to_owned(),
            version: attr_string(r, "Version").unwrap_or_default(),
            checkpoint: attr_string(r, "Checkpoint").unwrap_or_default(),
        })
        .collect())
}

/// Deletes every checkpoint row stored for time `t` (a re-run of a window starts clean).
pub async fn delete_checkpoints(
    client: &OtsClient,
    table: &str,
    stream_id: &str,
    t: i64,
) -> Result<usize, OtsError> {
    let rows = read_checkpoints(client, table, stream_id, t).await?;
    for r in &rows {
        let value = format!("{}\t{}", pad16(t), r.shard_id);
        client
            .delete_row(table, &key(stream_id, CHECKPOINT, &value))
            .await?;
    }
    Ok(rows.len())
}

/// The job row stored for time `t`: `Ok(None)` when there is none. A legacy row
/// (`ShardCount` only) gives a version of `""` and no shard ids, with the count in
/// the second element.
pub async fn read_job(
    client: &OtsClient,
    table: &str,
    stream_id: &str,
    t: i64,
) -> Result<Option<(JobRow, Option<usize>)>, OtsError> {
    if let Some(row) = client
        .get_row(table, &key(stream_id, JOB_DESC, &pad16(t)))
        .await?
    {
        let mut compressed = Vec::new();
        for i in 0.. {
            match attr(&row, &format!("ShardIds_{i}")) {
                Some(CellValue::Binary(b)) => compressed.extend_from_slice(b),
                _ => break,
            }
        }
        let bad = |m: String| OtsError::Response {
            action: "GetRow".into(),
            message: format!("status table job row for {t}: {m}"),
        };
        let mut json = Vec::new();
        flate2::read::ZlibDecoder::new(compressed.as_slice())
            .read_to_end(&mut json)
            .map_err(|e| bad(format!("ShardIds do not inflate: {e}")))?;
        let shard_ids: Vec<String> = serde_json::from_slice(&json)
            .map_err(|e| bad(format!("ShardIds are not a JSON list: {e}")))?;
        return Ok(Some((
            JobRow {
                version: attr_string(&row, "Version").unwrap_or_default(),
                shard_ids,
            },
            None,
        )));
    }
    let legacy = client
        .get_row(table, &key(stream_id, CHECKPOINT, &pad16(t)))
        .await?;
    Ok(legacy.and_then(|row| match attr(&row, "ShardCount") {
        Some(CellValue::Integer(n)) => Some((
            JobRow {
                version: String::new(),
                shard_ids: Vec::new(),
            },
            Some(*n as usize),
        )),
        _ => None,
    }))
}

/// The complete checkpoint set stored for time `t` by a previous job, as shard →
/// checkpoint, or `None` when there is no complete set (spec §5.4 step 1).
pub async fn complete_checkpoints(
    client: &OtsClient,
    table: &str,
    stream_id: &str,
    t: i64,
) -> Result<Option<BTreeMap<String, String>>, OtsError> {
    let Some((job, legacy_count)) = read_job(client, table, stream_id, t).await? else {
        return Ok(None);
    };
    let checkpoints = read_checkpoints(client, table, stream_id, t).await?;
    let complete = match legacy_count {
        Some(n) => checkpoints.len() == n,
        None => {
            checkpoints.len() == job.shard_ids.len()
                && job.shard_ids.iter().all(|s| {
                    checkpoints
                        .iter()
                        .any(|c| &c.shard_id == s && c.version == job.version)
                })
        }
    };
    Ok(complete.then(|| {
        checkpoints
            .into_iter()
            .map(|c| (c.shard_id, c.checkpoint))
            .collect()
    }))
}

/// The newest shard time checkpoint with time in `(low, high]`.
pub async fn latest_time_checkpoint(
    client: &OtsClient,
    table: &str,
    stream_id: &str,
    shard_id: &str,
    low: i64,
    high: i64,
) -> Result<Option<String>, OtsError> {
    if high <= low {
        return Ok(None);
    }
    let rows = client
        .get_range(
            table,
            pb::BACKWARD,
            &key(
                stream_id,
                TIME_CHECKPOINT,
                &format!("{shard_id}\t{}", pad16(high)),
            ),
            &key(
                stream_id,
                TIME_CHECKPOINT,
                &format!("{shard_id}\t{}", pad16(low)),
            ),
            Some(1),
        )
        .await?;
    Ok(rows.first().and_then(|r| attr_string(r, "Checkpoint")))
}

/// One shard's outcome, as persisted.
#[derive(Clone, Debug)]
pub struct ShardOutcome {
    pub shard_id: String,
    pub checkpoint: String,
    pub send_record_count: i64,
    /// The iterator at which records of time ≥ the window's end start (caught-up shards).
    pub time_checkpoint: Option<String>,
}

/// Writes the checkpoint rows, time checkpoints, and then the job row for `end` (the
/// job row last: without it the set is not complete).
#[allow(clippy::too_many_arguments)]
pub async fn persist(
    client: &OtsClient,
    table: &str,
    stream_id: &str,
    data_table: &str,
    version: &str,
    start: i64,
    end: i64,
    shard_ids: &[String],
    outcomes: &[ShardOutcome],
) -> Result<(), OtsError> {
    for o in outcomes {
        let mut cells = vec![
            Cell::put("Version", s(version), None),
            Cell::put("Checkpoint", s(&o.checkpoint), None),
            Cell::put("SkipCount", CellValue::Integer(0), None),
        ];
        if o.send_record_count > 0 {
            cells.push(Cell::put(
                "SendRecordCount",
                CellValue::Integer(o.send_record_count),
                None,
            ));
        }
        let value = format!("{}\t{}", pad16(end), o.shard_id);
        client
            .put_row(table, &key(stream_id, CHECKPOINT, &value), &cells)
            .await?;
        if let Some(it) = &o.time_checkpoint {
            let value = format!("{}\t{}", o.shard_id, pad16(end));
            client
                .put_row(
                    table,
                    &key(stream_id, TIME_CHECKPOINT, &value),
                    &[Cell::put("Checkpoint", s(it), None)],
                )
                .await?;
        }
    }
    let json = serde_json::to_vec(shard_ids).unwrap_or_default();
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed =
        z.write_all(&json)
            .and_then(|()| z.finish())
            .map_err(|e| OtsError::Response {
                action: "PutRow".into(),
                message: format!("compressing the shard list: {e}"),
            })?;
    let mut cells: Vec<Cell> = compressed
        .chunks(SHARD_IDS_CHUNK_BYTES)
        .enumerate()
        .map(|(i, c)| {
            Cell::put(
                &format!("ShardIds_{i}"),
                CellValue::Binary(c.to_vec()),
                None,
            )
        })
        .collect();
    if cells.is_empty() {
        cells.push(Cell::put("ShardIds_0", CellValue::Binary(Vec::new()), None));
    }
    cells.extend([
        Cell::put("Version", s(version), None),
        Cell::put("TableName", s(data_table), None),
        Cell::put("JobStreamId", s(stream_id), None),
        Cell::put("StartTime", CellValue::Integer(start), None),
        Cell::put("EndTime", CellValue::Integer(end), None),
    ]);
    client
        .put_row(table, &key(stream_id, JOB_DESC, &pad16(end)), &cells)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad16_is_space_padded() {
        assert_eq!(pad16(1705307400000), "   1705307400000");
        assert_eq!(pad16(1705307400000).len(), 16);
    }
}
