//! Stream operations: ListStream, DescribeStream, GetShardIterator, GetStreamRecord
//! (spec §2.5, §4.2).

use prost::Message;

use super::error::{OtsError, OtsResult};
use super::pb;
use super::state::Instance;
use super::stream::{decode_iterator, StreamState, DEFAULT_LIMIT, MAX_LIMIT};

/// Shards per DescribeStream page when the request sets no `shard_limit`.
pub const DEFAULT_SHARD_LIMIT: usize = 100;

/// Drops expired stream data of every table.
pub fn trim_all(db: &mut Instance, now_us: i64) {
    for table in db.tables.values_mut() {
        if let Some(stream) = table.stream.as_mut() {
            stream.trim(now_us);
        }
    }
}

fn stream_by_id<'a>(db: &'a Instance, stream_id: &str) -> Option<(&'a str, &'a StreamState)> {
    db.tables.values().find_map(|t| {
        t.stream
            .as_ref()
            .filter(|s| s.stream_id == stream_id)
            .map(|s| (t.name.as_str(), s))
    })
}

fn no_stream(stream_id: &str) -> OtsError {
    OtsError::new(
        404,
        "OTSObjectNotExist",
        format!("Stream does not exist: {stream_id}."),
    )
}

/// ListStream: the stream of one table, or of every table.
pub fn list(db: &Instance, body: &[u8]) -> OtsResult<Vec<u8>> {
    let req: pb::ListStreamRequest = pb::decode(body)?;
    let tables: Vec<_> = match req.table_name.as_deref() {
        Some(name) => vec![db.table(name)?],
        None => db.tables.values().collect(),
    };
    let streams = tables
        .into_iter()
        .filter_map(|t| {
            t.stream.as_ref().map(|s| pb::Stream {
                stream_id: s.stream_id.clone(),
                table_name: t.name.clone(),
                creation_time: s.creation_us,
            })
        })
        .collect();
    Ok(pb::ListStreamResponse { streams }.encode_to_vec())
}

/// DescribeStream with paging by shard id.
pub fn describe(db: &Instance, body: &[u8]) -> OtsResult<Vec<u8>> {
    let req: pb::DescribeStreamRequest = pb::decode(body)?;
    let stream_id = pb::required(req.stream_id, "stream_id")?;
    let (table_name, stream) = stream_by_id(db, &stream_id).ok_or_else(|| no_stream(&stream_id))?;
    let limit = match req.shard_limit {
        None => DEFAULT_SHARD_LIMIT,
        Some(l) if l > 0 => usize::try_from(l).unwrap_or(DEFAULT_SHARD_LIMIT),
        Some(l) => return Err(OtsError::invalid(format!("Invalid shard_limit: {l}."))),
    };
    let mut shards: Vec<_> = stream.shards.iter().collect();
    shards.sort_by(|a, b| a.id.cmp(&b.id));
    let start = match req.inclusive_start_shard_id.as_deref() {
        None => 0,
        Some(id) => shards
            .iter()
            .position(|s| s.id.as_str() >= id)
            .unwrap_or(shards.len()),
    };
    let page: Vec<_> = shards.iter().skip(start).take(limit).collect();
    let next_shard_id = shards.get(start + limit).map(|s| s.id.clone());
    Ok(pb::DescribeStreamResponse {
        stream_id: stream.stream_id.clone(),
        expiration_time: stream.expiration_hours,
        table_name: table_name.to_owned(),
        creation_time: stream.creation_us,
        stream_status: pb::STREAM_ACTIVE,
        shards: page
            .into_iter()
            .map(|s| pb::StreamShard {
                shard_id: s.id.clone(),
                parent_id: s.parent_id.clone(),
                parent_sibling_id: s.parent_sibling_id.clone(),
            })
            .collect(),
        next_shard_id,
    }
    .encode_to_vec())
}

/// GetShardIterator (with the optional `timestamp` in µs; never pages, so no
/// `next_token`).
pub fn shard_iterator(db: &Instance, body: &[u8]) -> OtsResult<Vec<u8>> {
    let req: pb::GetShardIteratorRequest = pb::decode(body)?;
    let stream_id = pb::required(req.stream_id, "stream_id")?;
    let shard_id = pb::required(req.shard_id, "shard_id")?;
    let (_, stream) = stream_by_id(db, &stream_id).ok_or_else(|| no_stream(&stream_id))?;
    Ok(pb::GetShardIteratorResponse {
        shard_iterator: stream.iterator(&shard_id, req.timestamp)?,
        next_token: None,
    }
    .encode_to_vec())
}

/// GetStreamRecord.
pub fn records(db: &Instance, body: &[u8]) -> OtsResult<Vec<u8>> {
    let req: pb::GetStreamRecordRequest = pb::decode(body)?;
    let iterator = pb::required(req.shard_iterator, "shard_iterator")?;
    let limit = match req.limit {
        None => DEFAULT_LIMIT,
        Some(l) if l > 0 => usize::try_from(l).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
        Some(l) => return Err(OtsError::invalid(format!("Invalid limit: {l}."))),
    };
    let position = decode_iterator(&iterator)?;
    let (_, stream) = stream_by_id(db, &position.stream_id).ok_or_else(OtsError::trimmed)?;
    let (records, next) = stream.read(&position, limit)?;
    Ok(pb::GetStreamRecordResponse {
        stream_records: records
            .into_iter()
            .map(|r| pb::StreamRecord {
                action_type: r.action as i32,
                record: StreamState::encode_record(r),
            })
            .collect(),
        next_shard_iterator: next,
    }
    .encode_to_vec())
}
