//! Handlers of the tunnel endpoint (the root of the port): upload sessions and
//! blocks, commit, download sessions and data.

use std::collections::BTreeMap;
use std::io::Read;

use super::error::{OdpsError, OdpsResult};
use super::render;
use super::routes::{Route, Target};
use super::server::{Call, Odps, Reply};
use super::sessions::{
    session_id, Block, DownloadSession, DownloadSource, UploadSession, UploadStatus, MAX_BLOCK_ID,
};
use super::state::{parse_spec, Catalog, Partition, TaskOutcome};
use super::types::OdpsType;
use super::upsert;
use super::wire::{self, BlockError, EncodedBlock};

/// The largest block accepted after inflating a `deflate` body.
const MAX_INFLATED_BYTES: u64 = 1024 * 1024 * 1024;

/// Runs one tunnel operation.
/// `block` is the request's block when it was decoded as it arrived (see
/// [`streamed_block_columns`]).
pub fn handle(
    odps: &Odps,
    call: &Call<'_>,
    block: Option<Result<EncodedBlock, BlockError>>,
) -> OdpsResult<Reply> {
    if let Route::UploadBlock {
        project,
        table,
        upload_id,
        block_id,
    } = &call.route
    {
        return upload_block(odps, call, block, [project, table, upload_id, block_id]);
    }
    if call.route.is_upsert() {
        return upsert::handle(odps, call);
    }
    let mut catalog = odps.catalog();
    let now = call.now_ms;
    match &call.route {
        Route::CreateUploadSession { project, table } => {
            create_upload(&mut catalog, project, table, call)
        }
        Route::GetUploadSession {
            project,
            table,
            upload_id,
        } => {
            let s = catalog.sessions.upload_mut(project, table, upload_id)?;
            check_partition_param(call, s)?;
            if s.refresh(now) == UploadStatus::Expired {
                s.require_open(now)?;
            }
            Ok(Reply::json(200, render::upload_session_json(s)))
        }
        Route::CommitUpload {
            project,
            table,
            upload_id,
        } => commit(&mut catalog, project, table, upload_id, call),
        Route::CreateDownloadSession { project, target } => {
            create_download(&mut catalog, project, target, call)
        }
        Route::GetDownloadSession {
            project,
            target,
            download_id,
        } => {
            let s = catalog
                .sessions
                .download(project, target_name(target), download_id)?;
            s.require_live(now)?;
            Ok(Reply::json(200, render::download_session_json(s)))
        }
        Route::DownloadData {
            project,
            target,
            download_id,
        } => {
            let s = catalog
                .sessions
                .download(project, target_name(target), download_id)?;
            s.require_live(now)?;
            let (start, count) = parse_row_range(call.query.get("rowrange").unwrap_or(""))?;
            let columns: Vec<String> = call
                .query
                .get("columns")
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            let (chosen, rows) = s.read(start, count, &columns)?;
            let types: Vec<_> = chosen.iter().map(|c| c.ty.clone()).collect();
            let mut reply = Reply::empty(200);
            reply.content_type = "application/octet-stream";
            reply.headers = vec![("odps-tunnel-record-count", rows.len().to_string())];
            reply.body = wire::encode_block(&rows, &types);
            Ok(reply)
        }
        other => Err(OdpsError::invalid_argument(format!(
            "{} is a service operation",
            other.operation()
        ))),
    }
}

/// The columns to decode an arriving block against: for a block upload without
/// `Content-Encoding` to an open session. `None` leaves the body to be read whole
/// (and any error to [`handle`]).
pub fn streamed_block_columns(
    odps: &Odps,
    route: &Route,
    headers: &[(String, String)],
) -> Option<Vec<OdpsType>> {
    let Route::UploadBlock {
        project,
        table,
        upload_id,
        ..
    } = route
    else {
        return None;
    };
    let encoding = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-encoding"))
        .map(|(_, v)| v.as_str());
    if !is_identity(encoding) {
        return None;
    }
    let mut catalog = odps.catalog();
    let s = catalog
        .sessions
        .upload_mut(project, table, upload_id)
        .ok()?;
    Some(s.columns.iter().map(|c| c.ty.clone()).collect())
}

/// Receives one block. The block is decoded and checked without holding the
/// catalogue lock, so uploads to several sessions (or blocks) proceed in parallel.
fn upload_block(
    odps: &Odps,
    call: &Call<'_>,
    streamed: Option<Result<EncodedBlock, BlockError>>,
    [project, table, upload_id, block_id]: [&str; 4],
) -> OdpsResult<Reply> {
    let block_id: u64 = block_id
        .parse()
        .ok()
        .filter(|&b| b < MAX_BLOCK_ID)
        .ok_or_else(|| {
            OdpsError::new(
                400,
                "InvalidBlockID",
                format!("block id {block_id:?} is not in [0, {MAX_BLOCK_ID})"),
            )
        })?;
    let types: Vec<_> = {
        let mut catalog = odps.catalog();
        let s = catalog.sessions.upload_mut(project, table, upload_id)?;
        check_partition_param(call, s)?;
        s.require_open(call.now_ms)?;
        s.columns.iter().map(|c| c.ty.clone()).collect()
    };
    let block = match streamed {
        Some(block) => block,
        None => wire::check_block(&decompress(call)?, &types),
    }
    .map_err(|e| OdpsError::new(400, "MalformedDataStream", format!("block {block_id}: {e}")))?;
    let mut catalog = odps.catalog();
    let s = catalog.sessions.upload_mut(project, table, upload_id)?;
    // A commit may have happened while the block was decoded.
    s.require_open(call.now_ms)?;
    s.blocks.insert(
        block_id,
        Block {
            records: block.records(),
            encoded: Some(block),
            received_ms: call.now_ms,
        },
    );
    Ok(Reply::empty(200))
}

/// The partition values named by the request's `partition` parameter, checked
/// against the table: required for a partitioned table, refused for another.
pub(super) fn requested_partition(
    catalog: &Catalog,
    project: &str,
    table: &str,
    call: &Call<'_>,
) -> OdpsResult<Vec<String>> {
    let t = catalog.table(project, table)?;
    match call.query.get("partition").filter(|s| !s.is_empty()) {
        Some(spec) => t.partition_values(&parse_spec(spec)?, false),
        None if t.is_partitioned() => Err(OdpsError::new(
            400,
            "MissingPartitionSpec",
            format!(
                "table {project}.{} is partitioned: a partition spec is required",
                t.name
            ),
        )),
        None => Ok(Vec::new()),
    }
}

fn check_partition_param(call: &Call<'_>, s: &UploadSession) -> OdpsResult<()> {
    let Some(spec) = call.query.get("partition").filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    let pairs = parse_spec(spec)?;
    let values: Vec<&String> = pairs.iter().map(|(_, v)| v).collect();
    let keys_match = pairs.len() == s.partition_keys.len()
        && pairs
            .iter()
            .zip(&s.partition_keys)
            .all(|((k, _), c)| k.eq_ignore_ascii_case(&c.name));
    if !keys_match || values.into_iter().ne(s.partition.iter()) {
        return Err(OdpsError::invalid_partition_spec(format!(
            "partition {spec} is not the partition of upload session {}",
            s.id
        )));
    }
    Ok(())
}

fn flag(call: &Call<'_>, name: &str) -> bool {
    call.query
        .get(name)
        .is_some_and(|v| v.is_empty() || v.eq_ignore_ascii_case("true"))
}

fn create_upload(
    catalog: &mut Catalog,
    project: &str,
    table: &str,
    call: &Call<'_>,
) -> OdpsResult<Reply> {
    let key = requested_partition(catalog, project, table, call)?;
    let create_partition = flag(call, "create_partition");
    let t = catalog.table_mut(project, table)?;
    if !t.partitions.contains_key(&key) {
        if !create_partition {
            return Err(OdpsError::no_such_partition(&t.spec_string(&key, false)));
        }
        let now_s = call.now_ms / 1000;
        t.partitions.insert(key.clone(), Partition::new(now_s));
    }
    let (name, columns, partition_keys) =
        (t.name.clone(), t.columns.clone(), t.partition_keys.clone());
    let seq = catalog.next_id();
    let session = UploadSession {
        id: session_id(call.now_ms, seq),
        project: project.to_owned(),
        table: name,
        partition: key,
        columns,
        partition_keys,
        overwrite: flag(call, "overwrite"),
        created_ms: call.now_ms,
        status: UploadStatus::Normal,
        blocks: BTreeMap::new(),
    };
    let body = render::upload_session_json(&session);
    catalog.sessions.uploads.insert(session.id.clone(), session);
    Ok(Reply::json(201, body))
}

fn commit(
    catalog: &mut Catalog,
    project: &str,
    table: &str,
    upload_id: &str,
    call: &Call<'_>,
) -> OdpsResult<Reply> {
    let s = catalog.sessions.upload_mut(project, table, upload_id)?;
    check_partition_param(call, s)?;
    s.require_open(call.now_ms)?;
    let (session_table, columns, partition_keys, partition, overwrite) = (
        s.table.clone(),
        s.columns.clone(),
        s.partition_keys.clone(),
        s.partition.clone(),
        s.overwrite,
    );
    // Every check comes before anything changes: the commit applies whole or not at all.
    let t = catalog.table_mut(project, &session_table)?;
    if t.columns != columns || t.partition_keys != partition_keys {
        return Err(OdpsError::status_conflict(format!(
            "table {project}.{} changed since upload session {upload_id} was created",
            t.name
        )));
    }
    if !t.partitions.contains_key(&partition) {
        return Err(OdpsError::no_such_partition(
            &t.spec_string(&partition, false),
        ));
    }
    // The session is closed from here on: its rows move into the table (the block
    // ids stay listed), with no copy.
    let session = catalog.sessions.upload_mut(project, table, upload_id)?;
    session.status = UploadStatus::Closed;
    let blocks: Vec<EncodedBlock> = session
        .blocks
        .values_mut()
        .filter_map(|block| block.encoded.take())
        .collect();
    let t = catalog.table_mut(project, &session_table)?;
    let now_s = call.now_ms / 1000;
    t.modified_s = now_s;
    if let Some(part) = t.partitions.get_mut(&partition) {
        if overwrite {
            part.clear();
        }
        part.append_blocks(blocks);
        part.modified_s = now_s;
    }
    let session = catalog.sessions.upload_mut(project, table, upload_id)?;
    Ok(Reply::json(200, render::upload_session_json(session)))
}

fn target_name(target: &Target) -> &str {
    match target {
        Target::Table(name) | Target::Instance(name) => name,
    }
}

fn create_download(
    catalog: &mut Catalog,
    project: &str,
    target: &Target,
    call: &Call<'_>,
) -> OdpsResult<Reply> {
    let (source, columns, partition_keys, rows) = match target {
        Target::Table(table) => {
            let key = requested_partition(catalog, project, table, call)?;
            let t = catalog.table_mut(project, table)?;
            let spec = t.spec_string(&key, false);
            let part = t
                .partitions
                .get_mut(&key)
                .ok_or_else(|| OdpsError::no_such_partition(&spec))?;
            let rows = part.rows_mut()?.clone();
            let source = DownloadSource::Table {
                table: t.name.clone(),
                partition: key,
            };
            (source, t.columns.clone(), t.partition_keys.clone(), rows)
        }
        Target::Instance(instance) => {
            let i = catalog
                .project(project)?
                .instances
                .get(instance)
                .ok_or_else(|| OdpsError::no_such_object(&format!("instance {instance}")))?;
            let TaskOutcome::ResultSet { columns, rows } = &i.outcome else {
                return Err(OdpsError::invalid_argument(format!(
                    "instance {instance} has no result set to download"
                )));
            };
            let source = DownloadSource::Instance {
                instance: instance.clone(),
            };
            (source, columns.clone(), Vec::new(), rows.clone())
        }
    };
    let seq = catalog.next_id();
    let session = DownloadSession {
        id: session_id(call.now_ms, seq),
        project: project.to_owned(),
        source,
        columns,
        partition_keys,
        rows,
        created_ms: call.now_ms,
    };
    let body = render::download_session_json(&session);
    catalog
        .sessions
        .downloads
        .insert(session.id.clone(), session);
    Ok(Reply::json(201, body))
}

/// Whether a `Content-Encoding` header leaves the body as it is.
fn is_identity(encoding: Option<&str>) -> bool {
    matches!(encoding.map(str::trim), None | Some("" | "identity"))
}

/// The block as sent, inflated when it is `deflate`-encoded.
fn decompress(call: &Call<'_>) -> OdpsResult<bytes::Bytes> {
    match call.header("content-encoding").map(str::trim) {
        encoding if is_identity(encoding) => Ok(call.body.clone()),
        Some(enc) if enc.eq_ignore_ascii_case("deflate") => {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(&call.body[..])
                .take(MAX_INFLATED_BYTES + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    OdpsError::new(
                        400,
                        "MalformedDataStream",
                        format!("deflate (zlib) body: {e}"),
                    )
                })?;
            if out.len() as u64 > MAX_INFLATED_BYTES {
                return Err(OdpsError::invalid_argument(format!(
                    "the inflated block exceeds {MAX_INFLATED_BYTES} bytes"
                )));
            }
            Ok(bytes::Bytes::from(out))
        }
        enc => Err(OdpsError::invalid_argument(format!(
            "Content-Encoding {} is not supported",
            enc.unwrap_or_default()
        ))),
    }
}

/// `(start,count)` as pyodps and the other SDKs send it.
fn parse_row_range(text: &str) -> OdpsResult<(u64, u64)> {
    let bad = || OdpsError::new(400, "InvalidRowRange", format!("invalid rowrange {text:?}"));
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(bad)?;
    let (a, b) = inner.split_once(',').ok_or_else(bad)?;
    Ok((
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_ranges() {
        assert_eq!(parse_row_range("(0,10)").unwrap(), (0, 10));
        assert_eq!(parse_row_range("( 5 , 1 )").unwrap(), (5, 1));
        for bad in ["", "0,1", "(0)", "(-1,2)", "(a,b)"] {
            assert_eq!(parse_row_range(bad).unwrap_err().code, "InvalidRowRange");
        }
    }
}
