//! One task: reads its shards (parents before children) from their start positions up
//! to the window's end, emits rows, and reports one checkpoint per shard (spec
//! `tablestore.md` §5.6–§5.8).

use std::collections::{BTreeMap, BTreeSet};

use protocol::runtime::{PluginError, RecordSink};
use serde::{Deserialize, Serialize};

use crate::client::OtsClient;
use crate::config::{Config, Mode};
use crate::convert;
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
    pub fn run(&self, out: &mut RecordSink) -> Result<Vec<ShardCheckpoint>, PluginError> {
        let job = &self.task.job;
        let listed: BTreeMap<&str, &ShardInfo> = job
            .shards
            .iter()
            .map(|s| (s.shard_id.as_str(), s))
            .collect();
        let mut remaining: BTreeSet<String> = self.task.shards.iter().cloned().collect();
        let mut done: BTreeMap<String, ShardCheckpoint> = BTreeMap::new();
        let mut results = Vec::new();
        let mut starts = BTreeMap::new();
        for shard in &remaining {
            starts.insert(shard.clone(), self.start_position(shard)?);
        }
        // Shards whose start checkpoint is SHARD_END are finished at once.
        for (shard, start) in &starts {
            if start.checkpoint == SHARD_END {
                let c = ShardCheckpoint {
                    shard_id: shard.clone(),
                    checkpoint: SHARD_END.to_owned(),
                    send_record_count: 0,
                    time_checkpoint: None,
                };
                out.checkpoint(serde_json::to_value(&c).unwrap_or_default())?;
                done.insert(shard.clone(), c.clone());
                results.push(c);
                remaining.remove(shard);
            }
        }
        while !remaining.is_empty() {
            let mut memo = BTreeMap::new();
            let mut progressed = false;
            for shard in remaining.clone() {
                let status = status_of(&shard, &listed, &done, &mut memo);
                let c = match status {
                    ShardStatus::Ready => {
                        let start = starts.remove(&shard).ok_or_else(|| {
                            PluginError::internal(format!("shard {shard} has no start position"))
                        })?;
                        self.read_shard(&shard, start, out)?
                    }
                    ShardStatus::Skip => ShardCheckpoint {
                        shard_id: shard.clone(),
                        checkpoint: TRIM_HORIZON.to_owned(),
                        send_record_count: 0,
                        time_checkpoint: None,
                    },
                    _ => continue,
                };
                tracing::info!(shard = %shard, checkpoint = %c.checkpoint, records = c.send_record_count, "shard done");
                out.checkpoint(serde_json::to_value(&c).unwrap_or_default())?;
                done.insert(shard.clone(), c.clone());
                results.push(c);
                remaining.remove(&shard);
                progressed = true;
                // Statuses depend on `done`: re-evaluate from scratch.
                break;
            }
            if !progressed {
                return Err(PluginError::internal(format!(
                    "shards {remaining:?} wait for parents that this task does not read"
                )));
            }
        }
        Ok(results)
    }

    fn read_shard(
        &self,
        shard: &str,
        start: StartPosition,
        out: &mut RecordSink,
    ) -> Result<ShardCheckpoint, PluginError> {
        let job = &self.task.job;
        let cfg = self.config;
        let ctx = |what: &str| format!("{what} of shard {shard} (dataTable {:?})", cfg.data_table);
        let mut iterator = if start.checkpoint == TRIM_HORIZON {
            let timestamp_us = if start.seek {
                let t = job.start_ms - 600_000;
                (t > 0).then_some(t * 1000)
            } else {
                None
            };
            match self.ots(
                self.rt.block_on(self.client.get_shard_iterator(
                    &job.stream_id,
                    shard,
                    timestamp_us,
                )),
                ctx("GetShardIterator"),
            )? {
                Some(it) => it,
                None => {
                    return Ok(ShardCheckpoint {
                        shard_id: shard.to_owned(),
                        checkpoint: SHARD_END.to_owned(),
                        send_record_count: 0,
                        time_checkpoint: None,
                    })
                }
            }
        } else {
            start.checkpoint
        };
        let mut skip = start.skip_before_start;
        let mut sent: i64 = 0;
        let mut rows = Vec::new();
        let finish =
            |checkpoint: String, sent: i64, time_checkpoint: Option<String>| ShardCheckpoint {
                shard_id: shard.to_owned(),
                checkpoint,
                send_record_count: sent,
                time_checkpoint,
            };
        loop {
            let page = self.ots(
                self.rt
                    .block_on(self.client.get_stream_record(&iterator, None)),
                ctx("GetStreamRecord"),
            )?;
            let last = std::mem::take(&mut iterator);
            if page.stream_records.is_empty() {
                if let Some(next) = page.next_shard_iterator {
                    // Caught up with an open shard.
                    return Ok(finish(next.clone(), sent, Some(next)));
                }
                return Ok(finish(SHARD_END.to_owned(), sent, None));
            }
            for (i, record) in page.stream_records.iter().enumerate() {
                let row = plainbuffer::decode_single_row(&record.record).map_err(|e| {
                    PluginError::data(format!("{}: {e}", ctx("decoding a stream record")))
                })?;
                // DataX would take time 0 and might skip the record: refuse it instead.
                let info = row.sequence_info.ok_or_else(|| {
                    PluginError::data(format!(
                        "{}: a stream record without sequence info (no commit time)",
                        ctx("reading")
                    ))
                })?;
                let t = info.timestamp_us / 1000;
                if t >= job.end_ms {
                    let position = if i == 0 {
                        last
                    } else {
                        let partial = self.ots(
                            self.rt
                                .block_on(self.client.get_stream_record(&last, Some(i as i32))),
                            ctx("GetStreamRecord"),
                        )?;
                        partial.next_shard_iterator.ok_or_else(|| {
                            PluginError::service(format!(
                                "{}: the service gave no position after {i} records although more follow",
                                ctx("GetStreamRecord")
                            ))
                        })?
                    };
                    return Ok(finish(position, sent, None));
                }
                if skip && t < job.start_ms {
                    continue;
                }
                skip = false;
                rows.clear();
                match cfg.mode {
                    Mode::MultiVersion => convert::multi_version(
                        record.action_type,
                        &row,
                        &info,
                        shard,
                        cfg.export_sequence_info,
                        &mut rows,
                    ),
                    Mode::SingleVersionAndUpdateOnly => convert::single_version(
                        record.action_type,
                        &row,
                        &info,
                        shard,
                        &cfg.columns,
                        cfg.export_sequence_info,
                    )
                    .map(|r| rows.extend(r)),
                }
                .map_err(|e| {
                    PluginError::data(format!("{}: {e}", ctx("converting a stream record")))
                })?;
                for r in &rows {
                    out.push(r)?;
                }
                sent += 1;
            }
            match page.next_shard_iterator {
                Some(next) => iterator = next,
                None => return Ok(finish(SHARD_END.to_owned(), sent, None)),
            }
        }
    }
}
