//! One task: reads its shards (parents before children) from their start positions up
//! to the window's end, emits rows, and reports one checkpoint per shard (spec
//! `tablestore.md` §5.6–§5.8).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use protocol::runtime::{PluginError, RecordSink};
use serde::{Deserialize, Serialize};

use crate::client::{self, OtsClient};
use crate::config::{Config, Mode};
use crate::encoded::{self, EncodedRows};
use crate::plainbuffer;
use crate::status::{self, ShardOutcome, SHARD_END, TRIM_HORIZON};

/// A shard as listed by DescribeStream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub shard_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_sibling_id: Option<String>,
}

/// What `prepare` found; every later step receives it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobState {
    pub stream_id: String,
    /// `<millis>-<random hex>`, written with every checkpoint of this job.
    pub version: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Stream retention, hours.
    pub expiration_hours: i32,
    pub shards: Vec<ShardInfo>,
    /// The complete checkpoint set a previous job stored at `start_ms`, if any.
    pub start_checkpoints: Option<BTreeMap<String, String>>,
}

/// One task's configuration (an element of `split`'s output).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskConfig {
    pub parameter: serde_json::Value,
    pub job: JobState,
    /// The shards this task owns: whole parent/child families.
    pub shards: Vec<String>,
}

/// The checkpoint state a task reports per shard (and `post` persists).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardCheckpoint {
    pub shard_id: String,
    /// An iterator, `SHARD_END` or `TRIM_HORIZON`.
    pub checkpoint: String,
    pub send_record_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_checkpoint: Option<String>,
}

impl From<ShardCheckpoint> for ShardOutcome {
    fn from(c: ShardCheckpoint) -> Self {
        ShardOutcome {
            shard_id: c.shard_id,
            checkpoint: c.checkpoint,
            send_record_count: c.send_record_count,
            time_checkpoint: c.time_checkpoint,
        }
    }
}

/// Where a shard starts and whether records before the window's start are skipped.
struct StartPosition {
    checkpoint: String,
    skip_before_start: bool,
    seek: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ShardStatus {
    Ready,
    Skip,
    Block,
    DoneReachEnd,
    DoneNotEnd,
}

pub struct TaskReader<'a> {
    pub config: &'a Config,
    pub client: &'a OtsClient,
    pub rt: &'a tokio::runtime::Runtime,
    pub task: &'a TaskConfig,
}

/// The state of `shard` in this window (spec §5.8), given the shards already finished.
fn status_of(
    shard: &str,
    listed: &BTreeMap<&str, &ShardInfo>,
    done: &BTreeMap<String, ShardCheckpoint>,
    memo: &mut BTreeMap<String, ShardStatus>,
) -> ShardStatus {
    if let Some(s) = memo.get(shard) {
        return *s;
    }
    let Some(info) = listed.get(shard) else {
        return ShardStatus::DoneReachEnd;
    };
    if let Some(c) = done.get(shard) {
        return if c.checkpoint == SHARD_END {
            ShardStatus::DoneReachEnd
        } else {
            ShardStatus::DoneNotEnd
        };
    }
    let parents: Vec<String> = [&info.parent_id, &info.parent_sibling_id]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let states: Vec<ShardStatus> = parents
        .iter()
        .map(|p| status_of(p, listed, done, memo))
        .collect();
    let s = if states
        .iter()
        .any(|s| matches!(s, ShardStatus::Skip | ShardStatus::DoneNotEnd))
    {
        ShardStatus::Skip
    } else if states
        .iter()
        .any(|s| matches!(s, ShardStatus::Block | ShardStatus::Ready))
    {
        ShardStatus::Block
    } else {
        ShardStatus::Ready
    };
    memo.insert(shard.to_owned(), s);
    s
}

impl TaskReader<'_> {
    fn ots<T>(
        &self,
        r: Result<T, crate::error::OtsError>,
        what: impl std::fmt::Display,
    ) -> Result<T, PluginError> {
        r.map_err(|e| e.into_plugin(what))
    }

    fn start_position(&self, shard: &str) -> Result<StartPosition, PluginError> {
        let job = &self.task.job;
        if let Some(map) = &job.start_checkpoints {
            return Ok(StartPosition {
                checkpoint: map
                    .get(shard)
                    .cloned()
                    .unwrap_or_else(|| TRIM_HORIZON.to_owned()),
                skip_before_start: false,
                seek: false,
            });
        }
        if self.config.enable_seek_iterator {
            return Ok(StartPosition {
                checkpoint: TRIM_HORIZON.to_owned(),
                skip_before_start: true,
                seek: true,
            });
        }
        let now = chrono::Utc::now().timestamp_millis();
        let low = now - (i64::from(job.expiration_hours) - 1) * 3_600_000;
        let found = self.ots(
            self.rt.block_on(status::latest_time_checkpoint(
                self.client,
                &self.config.status_table,
                &job.stream_id,
                shard,
                low,
                job.start_ms - 1,
            )),
            format!(
                "reading the time checkpoint of shard {shard} from statusTable {:?}",
                self.config.status_table
            ),
        )?;
        Ok(StartPosition {
            checkpoint: found.unwrap_or_else(|| TRIM_HORIZON.to_owned()),
            skip_before_start: true,
            seek: false,
        })
    }

    /// Reads every owned shard; returns the checkpoints (also reported to `out`).
    /// Up to `concurrent_shards` shards whose parents are done are fetched at once;
    /// rows are converted and pushed here, in each shard's order.
    pub fn run(&self, out: &mut RecordSink) -> Result<Vec<ShardCheckpoint>, PluginError> {
        let job = &self.task.job;
        let listed: BTreeMap<&str, &ShardInfo> = job
            .shards
            .iter()
            .map(|s| (s.shard_id.as_str(), s))
            .collect();
        let mut remaining: BTreeSet<String> = self.task.shards.iter().cloned().collect();
        let mut running: BTreeSet<String> = BTreeSet::new();
        let mut done: BTreeMap<String, ShardCheckpoint> = BTreeMap::new();
        let mut results = Vec::new();
        let mut starts = BTreeMap::new();
        for shard in &remaining {
            starts.insert(shard.clone(), self.start_position(shard)?);
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<ShardEvent>(64);
        let pool = PagePool::default();
        let mut rows = EncodedRows::default();
        let mut finish = |c: ShardCheckpoint,
                          out: &mut RecordSink,
                          done: &mut BTreeMap<String, ShardCheckpoint>,
                          remaining: &mut BTreeSet<String>|
         -> Result<(), PluginError> {
            tracing::info!(shard = %c.shard_id, checkpoint = %c.checkpoint, records = c.send_record_count, "shard done");
            out.checkpoint(serde_json::to_value(&c).unwrap_or_default())?;
            remaining.remove(&c.shard_id);
            done.insert(c.shard_id.clone(), c.clone());
            results.push(c);
            Ok(())
        };
        // Shards whose start checkpoint is SHARD_END are finished at once.
        for (shard, start) in &starts {
            if start.checkpoint == SHARD_END {
                finish(
                    ShardCheckpoint {
                        shard_id: shard.clone(),
                        checkpoint: SHARD_END.to_owned(),
                        send_record_count: 0,
                        time_checkpoint: None,
                    },
                    out,
                    &mut done,
                    &mut remaining,
                )?;
            }
        }
        loop {
            // Start what is ready, settle what is skipped, until nothing changes.
            loop {
                let mut memo = BTreeMap::new();
                let mut changed = false;
                for shard in remaining.clone() {
                    if running.contains(&shard) {
                        continue;
                    }
                    match status_of(&shard, &listed, &done, &mut memo) {
                        ShardStatus::Ready if running.len() < self.config.concurrent_shards => {
                            let start = starts.remove(&shard).ok_or_else(|| {
                                PluginError::internal(format!(
                                    "shard {shard} has no start position"
                                ))
                            })?;
                            let fetcher = ShardFetcher {
                                pool: pool.clone(),
                                client: self.client.clone(),
                                stream_id: job.stream_id.clone(),
                                data_table: self.config.data_table.clone(),
                                shard: shard.clone(),
                                start_ms: job.start_ms,
                                end_ms: job.end_ms,
                            };
                            let tx = tx.clone();
                            self.rt.spawn(async move {
                                let result = fetcher.run(start, &tx).await;
                                let _ = tx.send(ShardEvent::Done(result)).await;
                            });
                            running.insert(shard);
                        }
                        ShardStatus::Skip => {
                            finish(
                                ShardCheckpoint {
                                    shard_id: shard.clone(),
                                    checkpoint: TRIM_HORIZON.to_owned(),
                                    send_record_count: 0,
                                    time_checkpoint: None,
                                },
                                out,
                                &mut done,
                                &mut remaining,
                            )?;
                            changed = true;
                            break;
                        }
                        _ => {}
                    }
                }
                if !changed {
                    break;
                }
            }
            if remaining.is_empty() {
                return Ok(results);
            }
            if running.is_empty() {
                return Err(PluginError::internal(format!(
                    "shards {remaining:?} wait for parents that this task does not read"
                )));
            }
            let event = self.rt.block_on(rx.recv()).ok_or_else(|| {
                PluginError::internal("every shard reader stopped without a result")
            })?;
            match event {
                ShardEvent::Records {
                    shard,
                    rows: decoded,
                    heads,
                } => {
                    for (row, (action, info)) in decoded.iter().zip(&heads) {
                        self.convert(*action, row, info, &shard, &mut rows)?;
                        let (encoded, ends) = rows.run();
                        out.push_encoded_run(encoded, ends)?;
                    }
                    pool.give((decoded, heads));
                }
                ShardEvent::Done(result) => {
                    let c = result?;
                    running.remove(&c.shard_id);
                    finish(c, out, &mut done, &mut remaining)?;
                }
            }
        }
    }

    fn convert(
        &self,
        action: i32,
        row: plainbuffer::RowRef<'_>,
        info: &plainbuffer::SequenceInfo,
        shard: &str,
        rows: &mut EncodedRows,
    ) -> Result<(), PluginError> {
        let cfg = self.config;
        match cfg.mode {
            Mode::MultiVersion => {
                encoded::multi_version(action, row, info, shard, cfg.export_sequence_info, rows)
            }
            Mode::SingleVersionAndUpdateOnly => encoded::single_version(
                action,
                row,
                info,
                shard,
                &cfg.columns,
                cfg.export_sequence_info,
                rows,
            ),
            Mode::RowChange => encoded::row_change(
                action,
                row,
                info,
                shard,
                &cfg.columns,
                cfg.export_sequence_info,
                rows,
            ),
        }
        .map_err(|e| {
            PluginError::data(format!(
                "converting a stream record of shard {shard} (dataTable {:?}): {e}",
                cfg.data_table
            ))
        })
    }
}

/// A page's decoded rows and heads, in buffers reused from page to page.
type PageBuffers = (
    plainbuffer::RecordRows,
    Vec<(i32, plainbuffer::SequenceInfo)>,
);

/// Page buffers the task hands back once it has converted a page, for the fetchers'
/// next pages: a page's rows then go into memory already touched, not fresh pages
/// that each cost the kernel a fault (`bench-reader` reports the faults).
#[derive(Clone, Default)]
struct PagePool(Arc<Mutex<Vec<PageBuffers>>>);

impl PagePool {
    /// Buffers kept at most: beyond that, pages queued for the task bring their own.
    const KEPT: usize = 8;

    fn take(&self, records: usize) -> PageBuffers {
        let reused = self.0.lock().ok().and_then(|mut free| free.pop());
        match reused {
            Some((mut rows, mut heads)) => {
                rows.reserve(records);
                heads.reserve(records);
                (rows, heads)
            }
            None => (
                plainbuffer::RecordRows::with_capacity(records),
                Vec::with_capacity(records),
            ),
        }
    }

    /// Takes back a converted page's buffers, emptied (its response is freed).
    fn give(&self, (mut rows, mut heads): PageBuffers) {
        rows.clear();
        heads.clear();
        if let Ok(mut free) = self.0.lock() {
            if free.len() < Self::KEPT {
                free.push((rows, heads));
            }
        }
    }
}

/// What a shard fetcher tells the task.
enum ShardEvent {
    /// Records to emit, in order: their rows, and each one's action type and
    /// sequence info.
    Records {
        shard: String,
        rows: plainbuffer::RecordRows,
        heads: Vec<(i32, plainbuffer::SequenceInfo)>,
    },
    /// The shard is finished (its records were all sent before this).
    Done(Result<ShardCheckpoint, PluginError>),
}

/// Reads one shard's records of the window (spec §5.7) and sends them to the task.
struct ShardFetcher {
    pool: PagePool,
    client: OtsClient,
    stream_id: String,
    data_table: String,
    shard: String,
    start_ms: i64,
    end_ms: i64,
}

impl ShardFetcher {
    fn context(&self, what: &str) -> String {
        format!(
            "{what} of shard {} (dataTable {:?})",
            self.shard, self.data_table
        )
    }

    fn finish(
        &self,
        checkpoint: String,
        sent: i64,
        time_checkpoint: Option<String>,
    ) -> ShardCheckpoint {
        ShardCheckpoint {
            shard_id: self.shard.clone(),
            checkpoint,
            send_record_count: sent,
            time_checkpoint,
        }
    }

    async fn run(
        &self,
        start: StartPosition,
        tx: &tokio::sync::mpsc::Sender<ShardEvent>,
    ) -> Result<ShardCheckpoint, PluginError> {
        let mut iterator = if start.checkpoint == TRIM_HORIZON {
            let timestamp_us = if start.seek {
                let t = self.start_ms - 600_000;
                (t > 0).then_some(t * 1000)
            } else {
                None
            };
            match self
                .client
                .get_shard_iterator(&self.stream_id, &self.shard, timestamp_us)
                .await
                .map_err(|e| e.into_plugin(self.context("GetShardIterator")))?
            {
                Some(it) => it,
                None => return Ok(self.finish(SHARD_END.to_owned(), 0, None)),
            }
        } else {
            start.checkpoint
        };
        let mut skip = start.skip_before_start;
        let mut sent: i64 = 0;
        // The next page is asked for as soon as this one names it, and decoded pages are
        // handed on while it is served: the service's time and the decoding overlap. A
        // page fetched past the window's end is dropped unread (dropping a `Prefetch`
        // cancels its call).
        let mut prefetched: Option<Prefetch> = None;
        loop {
            let mut page = match prefetched.take() {
                Some(fetch) => fetch.page().await,
                None => {
                    self.client
                        .get_stream_record(&iterator, Some(client::PAGE_RECORDS))
                        .await
                }
            }
            .map_err(|e| e.into_plugin(self.context("GetStreamRecord")))?;
            let last = std::mem::take(&mut iterator);
            if !page.stream_records.is_empty() {
                prefetched = page
                    .next_shard_iterator
                    .as_deref()
                    .map(|next| Prefetch::start(&self.client, next));
            }
            if page.stream_records.is_empty() {
                return Ok(match page.next_shard_iterator {
                    // Caught up with an open shard.
                    Some(next) => self.finish(next.clone(), sent, Some(next)),
                    None => self.finish(SHARD_END.to_owned(), sent, None),
                });
            }
            let (mut rows, mut heads) = self.pool.take(page.stream_records.len());
            let mut stop_at = None;
            for (i, record) in page.stream_records.iter_mut().enumerate() {
                // The page is not needed after this: its records move into `rows`.
                let row = rows.push(std::mem::take(&mut record.record)).map_err(|e| {
                    PluginError::data(format!("{}: {e}", self.context("decoding a stream record")))
                })?;
                // DataX would take time 0 and might skip the record: refuse it instead.
                let info = row.sequence_info.ok_or_else(|| {
                    PluginError::data(format!(
                        "{}: a stream record without sequence info (no commit time)",
                        self.context("reading")
                    ))
                })?;
                let t = info.timestamp_us / 1000;
                if t >= self.end_ms {
                    rows.pop();
                    stop_at = Some(i);
                    break;
                }
                if skip && t < self.start_ms {
                    rows.pop();
                    continue;
                }
                skip = false;
                heads.push((record.action_type, info));
            }
            sent += heads.len() as i64;
            if heads.is_empty() {
                self.pool.give((rows, heads));
            } else {
                tx.send(ShardEvent::Records {
                    shard: self.shard.clone(),
                    rows,
                    heads,
                })
                .await
                .map_err(|_| PluginError::cancelled("the task stopped reading"))?;
            }
            if let Some(i) = stop_at {
                let position = if i == 0 {
                    last
                } else {
                    let partial = self
                        .client
                        .get_stream_record(&last, Some(i as i32))
                        .await
                        .map_err(|e| e.into_plugin(self.context("GetStreamRecord")))?;
                    partial.next_shard_iterator.ok_or_else(|| {
                        PluginError::service(format!(
                            "{}: the service gave no position after {i} records although more follow",
                            self.context("GetStreamRecord")
                        ))
                    })?
                };
                return Ok(self.finish(position, sent, None));
            }
            match page.next_shard_iterator {
                Some(next) => iterator = next,
                None => return Ok(self.finish(SHARD_END.to_owned(), sent, None)),
            }
        }
    }
}

/// A `GetStreamRecord` call running on its own while the page before it is decoded;
/// dropping it cancels the call.
struct Prefetch(
    tokio::task::JoinHandle<Result<crate::pb::GetStreamRecordResponse, crate::error::OtsError>>,
);

impl Prefetch {
    fn start(client: &OtsClient, iterator: &str) -> Prefetch {
        let client = client.clone();
        let iterator = iterator.to_owned();
        Prefetch(tokio::spawn(async move {
            client
                .get_stream_record(&iterator, Some(client::PAGE_RECORDS))
                .await
        }))
    }

    async fn page(mut self) -> Result<crate::pb::GetStreamRecordResponse, crate::error::OtsError> {
        match (&mut self.0).await {
            Ok(result) => result,
            Err(e) => Err(crate::error::OtsError::Transport {
                action: "GetStreamRecord".to_owned(),
                message: format!("the prefetching task stopped: {e}"),
            }),
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}
