//! One task in upsert mode: changes read and merged per key, then each key sent once
//! into its bucket of the job's upsert session.

use std::collections::BTreeMap;

use bytes::Bytes;
use protocol::runtime::{PluginError, RecordSource, TaskContext, WriterOutput};
use protocol::value::Value;
use serde_json::Value as Json;

use super::merge::{Change, Layout, Net, Window};
use super::{session, Hasher, UpsertReport, UpsertState};
use crate::block::{BlockEncoder, Cell};
use crate::config::OdpsConfig;
use crate::convert::Conversions;
use crate::http::Endpoint;
use crate::schema::OdpsType;
use crate::writer::client_for;

/// Bytes of one bucket's records sent in one request.
const BUCKET_FLUSH_BYTES: usize = 4 * 1024 * 1024;

/// The `__operation` values.
const OP_UPSERT: i64 = b'U' as i64;
const OP_DELETE: i64 = b'D' as i64;

/// One bucket's records not sent yet.
#[derive(Default)]
struct Pending {
    encoder: BlockEncoder,
    buf: Vec<u8>,
}

struct Encoder<'a> {
    state: &'a UpsertState,
    types: Vec<OdpsType>,
    conversions: &'a Conversions,
    hasher: Hasher,
    table: String,
}

impl Encoder<'_> {
    fn convert<'v>(&self, value: &'v Value, data_at: usize) -> Result<Cell<'v>, String> {
        let pos = self.state.positions[data_at];
        self.conversions
            .convert(value, &self.types[pos])
            .map_err(|e| {
                let c = &self.state.session.schema.columns[pos];
                format!("column {} ({}): {e}", c.name, c.type_name)
            })
    }

    /// The session's `column_id` of data column `data_at`.
    fn column_id(&self, data_at: usize) -> i64 {
        let pos = self.state.positions[data_at];
        self.state
            .session
            .column_ids
            .get(pos)
            .copied()
            .unwrap_or(pos as i64)
    }

    /// Checks that every value of a change converts (else the change is dirty).
    fn check(&self, change: &Change) -> Result<(), String> {
        for (v, &at) in change.key.iter().zip(&self.state.key_at) {
            self.convert(v, at)?;
        }
        for (v, &at) in change.values.iter().zip(&self.state.value_at) {
            if let Some(v) = v {
                self.convert(v, at)?;
            }
        }
        Ok(())
    }

    /// Encodes the net change of one key; returns its bucket and what it was.
    fn encode(
        &self,
        key: &[Value],
        net: &Net,
        pending: &mut BTreeMap<u32, Pending>,
    ) -> Result<(u32, &'static str), PluginError> {
        let internal = |e: String| PluginError::internal(format!("writer-odps: {e}"));
        let n = self.types.len();
        let mut cells: Vec<Cell<'_>> = vec![Cell::Null; n];
        let mut key_cells = Vec::with_capacity(key.len());
        let mut value_cols: Vec<i64> = Vec::new();
        for (v, &at) in key.iter().zip(&self.state.key_at) {
            let cell = self.convert(v, at).map_err(internal)?;
            key_cells.push(cell.clone());
            cells[self.state.positions[at]] = cell;
        }
        let (op, kind) = match net {
            Net::Delete => (OP_DELETE, "delete"),
            Net::Row(values) => {
                for (v, &at) in values.iter().zip(&self.state.value_at) {
                    cells[self.state.positions[at]] = self.convert(v, at).map_err(internal)?;
                }
                (OP_UPSERT, "row")
            }
            Net::Partial(values) => {
                let all = values.iter().all(Option::is_some) && self.state.positions.len() == n;
                if !self.state.session.partial_update && !all {
                    return Err(PluginError::config(format!(
                        "writer-odps (writeMode upsert): table {} does not take upserts of some columns (its upsert session says enable_partial_update false; \
                         set TBLPROPERTIES (\"acid.partial.fields.update.enable\"=\"true\")), and the key {key:?} has only updates of some columns in this window, \
                         so its other columns are unknown here; nothing was committed",
                        self.table
                    )));
                }
                for (v, &at) in values.iter().zip(&self.state.value_at) {
                    if let Some(v) = v {
                        cells[self.state.positions[at]] = self.convert(v, at).map_err(internal)?;
                    }
                }
                if all {
                    (OP_UPSERT, "row")
                } else {
                    let mut ids: Vec<i64> = self
                        .state
                        .key_at
                        .iter()
                        .map(|&at| self.column_id(at))
                        .chain(
                            values
                                .iter()
                                .zip(&self.state.value_at)
                                .filter(|(v, _)| v.is_some())
                                .map(|(_, &at)| self.column_id(at)),
                        )
                        .collect();
                    ids.sort_unstable();
                    value_cols = ids;
                    (OP_UPSERT, "partial")
                }
            }
        };
        let buckets = self.state.session.buckets.len();
        let bucket = self.hasher.bucket(&key_cells, buckets).ok_or_else(|| {
            PluginError::internal("writer-odps: a key value cannot be hashed".to_owned())
        })? as u32;
        let p = pending.entry(bucket).or_default();
        p.encoder.start_record();
        for (i, cell) in cells.iter().enumerate() {
            p.encoder.encode_field(i, cell, &mut p.buf);
        }
        // Hidden columns: __version, __app_version (null), __operation,
        // __key_cols (null), __value_cols (empty: every column).
        p.encoder.encode_field(n + 2, &Cell::Int(op), &mut p.buf);
        p.encoder.encode_long_array(n + 4, &value_cols, &mut p.buf);
        p.encoder.end_record(&mut p.buf);
        Ok((bucket, kind))
    }
}

/// Sends one bucket's block. A 308 (`SlotReassignment`: the bucket's slot moved to
/// another worker) reloads the session's slots and sends again, as the SDKs do.
async fn send_bucket(
    client: &crate::client::OdpsClient,
    table: &str,
    session: &mut super::UpsertSession,
    bucket: u32,
    records: u64,
    body: Bytes,
) -> Result<(), PluginError> {
    let mut moves = 0;
    loop {
        match session::put_bucket(client, table, "", session, bucket, records, body.clone()).await {
            Ok(()) => return Ok(()),
            Err(e) if e.status() == Some(308) && moves < 3 => {
                moves += 1;
                tracing::info!("{e}; reloading the upsert session's slots");
                let now = session::get(client, table, "", &session.id).await?;
                if now.buckets.len() != session.buckets.len() {
                    return Err(PluginError::service(format!(
                        "upsert session {}: the bucket count changed from {} to {} while writing",
                        session.id,
                        session.buckets.len(),
                        now.buckets.len()
                    )));
                }
                session.buckets = now.buckets;
            }
            Err(e) => return Err(PluginError::from(e).context("sending upserts")),
        }
    }
}

/// Reads the task's changes, merges them per key and sends them into the session.
pub fn write_upsert(
    task: &TaskContext,
    config: &OdpsConfig,
    state: &UpsertState,
    input: &mut RecordSource,
    out: &mut WriterOutput,
) -> Result<Json, PluginError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PluginError::internal(format!("starting the I/O runtime: {e}")))?;
    let tunnel = Endpoint::parse(&state.tunnel_endpoint).map_err(PluginError::internal)?;
    let client = client_for(config, Some(tunnel))?;
    let conversions = Conversions::new(
        config.empty_as_null,
        config.zone,
        config.date_zone,
        config.over_length_rule,
        config.max_odps_field_length,
        config.max_field_length,
    )
    .map_err(PluginError::internal)?;
    let encoder = Encoder {
        state,
        types: state
            .session
            .schema
            .columns
            .iter()
            .map(|c| c.odps_type())
            .collect(),
        conversions: &conversions,
        hasher: Hasher::parse(&state.session.hasher).map_err(PluginError::internal)?,
        table: format!("{}.{}", config.project, config.table),
    };
    let layout = Layout {
        key_at: state.key_at.clone(),
        value_at: state.value_at.clone(),
    };
    let mut window = Window::default();
    let mut received = 0u64;
    while let Some(batch) = input.next_batch_ref()? {
        received += batch.len() as u64;
        for record in batch {
            let change = layout
                .parse(record)
                .map_err(|e| PluginError::data(format!("writer-odps (writeMode upsert): {e}")))?;
            match encoder.check(&change) {
                Ok(()) => window.apply(change),
                Err(reason) => out.dirty(record, &reason)?,
            }
        }
        out.progress(received, 0)?;
    }
    let mut report = UpsertReport {
        upsert_id: state.session.id.clone(),
        changes: window.changes,
        ..UpsertReport::default()
    };
    let mut pending: BTreeMap<u32, Pending> = BTreeMap::new();
    let mut session = state.session.clone();
    let mut send = |bucket: u32, p: &mut Pending, report: &mut UpsertReport| {
        let records = p.encoder.records();
        p.encoder.finish(&mut p.buf);
        let body = Bytes::from(std::mem::take(&mut p.buf));
        report.bytes += body.len() as u64;
        p.encoder = BlockEncoder::new();
        rt.block_on(send_bucket(
            &client,
            &config.table,
            &mut session,
            bucket,
            records,
            body,
        ))
    };
    for (key, net) in window.keys.values() {
        let (bucket, kind) = encoder.encode(key, net, &mut pending)?;
        match kind {
            "delete" => report.deletes += 1,
            "partial" => report.partial += 1,
            _ => report.upserts += 1,
        }
        if let Some(p) = pending.get_mut(&bucket) {
            if p.buf.len() >= BUCKET_FLUSH_BYTES {
                send(bucket, p, &mut report)?;
            }
        }
    }
    for (bucket, p) in pending.iter_mut() {
        if p.encoder.records() > 0 {
            send(*bucket, p, &mut report)?;
        }
    }
    report.dirty = out.dirty_count();
    out.progress(received, report.bytes)?;
    tracing::info!(
        changes = report.changes,
        upserts = report.upserts,
        partial = report.partial,
        deletes = report.deletes,
        dirty = report.dirty,
        "writer-odps: task {} sent its merged changes into upsert session {}",
        task.job.task_index,
        state.session.id
    );
    serde_json::to_value(report).map_err(|e| PluginError::internal(e.to_string()))
}
