//! A follow task: reads its shards from their start checkpoints with shard iterators
//! (parents to their end before children), polls caught-up shards, and stops at the
//! commit deadline, at its share of the record/byte limits, or (replay) at exactly the
//! recorded record count of every shard. Reports one [`FollowReport`] per shard.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use futures::future::LocalBoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use protocol::runtime::{PluginError, RecordSink};

use crate::client::{self, OtsClient};
use crate::config::{Config, Mode};
use crate::error::OtsError;
use crate::follow::config::share;
use crate::follow::{steps, FollowReport, FollowTask, PlanShard, ShardEnd};
use crate::pb;
use crate::plainbuffer;
use crate::status::{SHARD_END, TRIM_HORIZON};
use crate::{convert, reader::ShardInfo};

/// A caught-up shard is asked again after this wait.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

enum Fetched {
    Iterator(Option<String>),
    Page {
        used: String,
        page: pb::GetStreamRecordResponse,
    },
}

type Fetch = LocalBoxFuture<'static, (String, Result<Fetched, OtsError>)>;

#[derive(Debug, PartialEq)]
enum State {
    Waiting,
    Reading,
    Done(String),
}

struct Run {
    plan: PlanShard,
    iterator: String,
    records: u64,
    position_ms: Option<i64>,
    skip_before_ms: Option<i64>,
    state: State,
}

pub struct FollowTaskReader<'a> {
    pub config: &'a Config,
    pub client: &'a OtsClient,
    pub task: &'a FollowTask,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl FollowTaskReader<'_> {
    fn fetch(&self, shard: &str, iterator: &str, delay: Duration) -> Fetch {
        let client = self.client.clone();
        let (shard, iterator) = (shard.to_owned(), iterator.to_owned());
        let stream_id = self.task.stream_id.clone();
        let seek_us = if iterator == TRIM_HORIZON && self.config.enable_seek_iterator {
            self.task
                .shards
                .iter()
                .find(|s| s.shard_id == shard)
                .and_then(|s| s.skip_before_ms)
                .map(|t| (t - 600_000).max(1) * 1000)
        } else {
            None
        };
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let result = if iterator == TRIM_HORIZON {
                client
                    .get_shard_iterator(&stream_id, &shard, seek_us)
                    .await
                    .map(Fetched::Iterator)
            } else {
                client
                    .get_stream_record(&iterator, Some(client::PAGE_RECORDS))
                    .await
                    .map(|page| Fetched::Page {
                        used: iterator,
                        page,
                    })
            };
            (shard, result)
        })
    }

    fn failed(&self, run: &Run, what: &str, e: OtsError) -> PluginError {
        if e.code() == Some("OTSTrimmedDataAccess") {
            return steps::trimmed_error(
                &run.plan.shard_id,
                run.position_ms,
                self.task.expiration_hours,
                &self.config.data_table,
            );
        }
        e.into_plugin(format!(
            "{what} of shard {} (dataTable {:?})",
            run.plan.shard_id, self.config.data_table
        ))
    }

    /// Reads the task's shards; pushes rows to `out` and, at the end, one checkpoint
    /// state per shard. Returns the reports.
    pub async fn run(&self, out: &mut RecordSink) -> Result<Vec<FollowReport>, PluginError> {
        let task = self.task;
        let follow = self.config.follow.as_ref();
        let interval = follow.map_or(10_000, |f| f.commit_interval_ms);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(interval);
        let started = Instant::now();
        let record_share = share(follow.and_then(|f| f.commit_records), task.task_count);
        let byte_share = share(follow.and_then(|f| f.commit_bytes), task.task_count);
        let replay = task.replay.as_ref();
        let listed: BTreeMap<&str, &ShardInfo> = task
            .listed
            .iter()
            .map(|s| (s.shard_id.as_str(), s))
            .collect();
        let mut runs: BTreeMap<String, Run> = BTreeMap::new();
        for p in &task.shards {
            let recorded = replay.and_then(|r| r.get(&p.shard_id));
            let state = match recorded {
                Some(end) if end.records == 0 => State::Done(end.checkpoint.clone()),
                None if replay.is_some() => {
                    return Err(PluginError::protocol(format!(
                        "replay of batch {}: shard {} has no recorded end",
                        task.follow_batch, p.shard_id
                    )))
                }
                _ if p.start == SHARD_END => State::Done(SHARD_END.to_owned()),
                _ => State::Waiting,
            };
            runs.insert(
                p.shard_id.clone(),
                Run {
                    plan: p.clone(),
                    iterator: p.start.clone(),
                    records: 0,
                    position_ms: recorded.map(|e| e.position_ms).or(p.start_position_ms),
                    skip_before_ms: p.skip_before_ms,
                    state,
                },
            );
            if let (Some(end), Some(run)) = (recorded, runs.get_mut(&p.shard_id)) {
                if end.records == 0 {
                    run.iterator = end.checkpoint.clone();
                    run.position_ms = Some(end.position_ms);
                }
            }
        }
        let mut inflight: FuturesUnordered<Fetch> = FuturesUnordered::new();
        let mut total_records: u64 = 0;
        let mut total_bytes: u64 = 0;
        let mut rows = Vec::new();
        // Shards due for a request, in order, with the wait before it (a caught-up
        // shard's poll): at most `concurrent_shards` requests are in flight, and a
        // caught-up shard goes to the back of the line, so every shard gets its turn.
        let mut queue: VecDeque<(String, Duration)> = VecDeque::new();
        loop {
            // Start shards whose parents reached their end.
            let ready: Vec<String> = runs
                .iter()
                .filter(|(_, r)| r.state == State::Waiting)
                .filter(|(id, _)| {
                    let parents = listed
                        .get(id.as_str())
                        .map(|i| [i.parent_id.clone(), i.parent_sibling_id.clone()])
                        .unwrap_or_default();
                    parents.iter().flatten().all(|p| match runs.get(p) {
                        Some(r) => r.state == State::Done(SHARD_END.to_owned()),
                        None => true,
                    })
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in ready {
                if let Some(run) = runs.get_mut(&id) {
                    run.state = State::Reading;
                    queue.push_back((id, Duration::ZERO));
                }
            }
            while inflight.len() < self.config.concurrent_shards {
                let Some((id, wait)) = queue.pop_front() else {
                    break;
                };
                if let Some(run) = runs.get(&id) {
                    inflight.push(self.fetch(&id, &run.iterator, wait));
                }
            }
            if inflight.is_empty() {
                break;
            }
            let next = if replay.is_some() {
                inflight.next().await
            } else {
                match tokio::time::timeout_at(deadline, inflight.next()).await {
                    Ok(n) => n,
                    Err(_) => break,
                }
            };
            let Some((shard, result)) = next else { break };
            let Some(run) = runs.get_mut(&shard) else {
                continue;
            };
            let target = replay.and_then(|r| r.get(&shard));
            let fetched = result.map_err(|e| self.failed(run, "reading", e))?;
            let (used, page) = match fetched {
                Fetched::Iterator(Some(it)) => {
                    run.iterator = it;
                    queue.push_back((shard, Duration::ZERO));
                    continue;
                }
                Fetched::Iterator(None) => {
                    run.state = State::Done(SHARD_END.to_owned());
                    continue;
                }
                Fetched::Page { used, page } => (used, page),
            };
            if page.stream_records.is_empty() {
                match (&page.next_shard_iterator, target) {
                    (_, Some(end)) => {
                        return Err(PluginError::service(format!(
                            "replay of batch {}: shard {} holds only {} of the {} records read the first time \
                             (were records trimmed?)",
                            task.follow_batch, shard, run.records, end.records
                        )))
                    }
                    (None, None) => {
                        run.position_ms = Some(now_ms());
                        run.state = State::Done(SHARD_END.to_owned());
                    }
                    (Some(next), None) => {
                        run.position_ms = Some(now_ms());
                        run.iterator = next.clone();
                        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                        queue.push_back((shard, POLL_INTERVAL.min(left)));
                    }
                }
                continue;
            }
            let n = page.stream_records.len();
            let mut stop_at = None;
            let mut global_stop = false;
            for (i, record) in page.stream_records.iter().enumerate() {
                let row = plainbuffer::decode_single_row(&record.record).map_err(|e| {
                    PluginError::data(format!(
                        "decoding a stream record of shard {shard} (dataTable {:?}): {e}",
                        self.config.data_table
                    ))
                })?;
                let info = row.sequence_info.ok_or_else(|| {
                    PluginError::data(format!(
                        "a stream record of shard {shard} without sequence info (no commit time)"
                    ))
                })?;
                let t = info.timestamp_us / 1000;
                if run.skip_before_ms.is_some_and(|s| t < s) {
                    continue;
                }
                run.skip_before_ms = None;
                rows.clear();
                convert_record(
                    self.config,
                    record.action_type,
                    &row,
                    &info,
                    &shard,
                    &mut rows,
                )?;
                for r in &rows {
                    out.push(r)?;
                }
                run.records += 1;
                run.position_ms = Some(t);
                total_records += 1;
                total_bytes += record.record.len() as u64;
                if let Some(end) = target {
                    if run.records == end.records {
                        stop_at = Some(i + 1);
                        break;
                    }
                } else if record_share.is_some_and(|s| total_records >= s)
                    || byte_share.is_some_and(|s| total_bytes >= s)
                {
                    stop_at = Some(i + 1);
                    global_stop = true;
                    break;
                }
            }
            if let (Some(_), Some(end)) = (stop_at, target) {
                run.iterator = end.checkpoint.clone();
                run.state = State::Done(end.checkpoint.clone());
                continue;
            }
            let k = stop_at.unwrap_or(n);
            let position = if k == n {
                page.next_shard_iterator.clone()
            } else {
                let partial = self
                    .client
                    .get_stream_record(&used, Some(k as i32))
                    .await
                    .map_err(|e| self.failed(run, "GetStreamRecord", e))?;
                Some(partial.next_shard_iterator.ok_or_else(|| {
                    PluginError::service(format!(
                        "GetStreamRecord of shard {shard}: the service gave no position after {k} records although more follow"
                    ))
                })?)
            };
            match position {
                None => run.state = State::Done(SHARD_END.to_owned()),
                Some(next) => {
                    run.iterator = next;
                    if !global_stop {
                        queue.push_back((shard, Duration::ZERO));
                    }
                }
            }
            if global_stop || (replay.is_none() && tokio::time::Instant::now() >= deadline) {
                break;
            }
        }
        drop(inflight);
        let mut reports = Vec::with_capacity(runs.len());
        for (id, run) in runs {
            if let Some(end) = replay.and_then(|r| r.get(&id)) {
                if run.state != State::Done(end.checkpoint.clone()) || run.records != end.records {
                    return Err(PluginError::service(format!(
                        "replay of batch {}: shard {id} did not reach its recorded end ({} of the {} records read)",
                        task.follow_batch, run.records, end.records
                    )));
                }
            }
            let checkpoint = match &run.state {
                State::Done(c) => c.clone(),
                _ => run.iterator.clone(),
            };
            let position_ms = match (&run.state, run.position_ms) {
                (State::Done(c), _) if c == SHARD_END => now_ms(),
                (_, Some(p)) => p,
                (_, None) => now_ms(),
            };
            let end = match replay.and_then(|r| r.get(&id)) {
                Some(recorded) => recorded.clone(),
                None => ShardEnd {
                    records: run.records,
                    checkpoint,
                    position_ms,
                    end_skip_before_ms: run.skip_before_ms,
                },
            };
            let report = FollowReport {
                follow_batch: task.follow_batch.clone(),
                stream_id: task.stream_id.clone(),
                base: task.base.clone(),
                shard: run.plan.clone(),
                end,
            };
            out.checkpoint(
                serde_json::to_value(&report).map_err(|e| PluginError::internal(e.to_string()))?,
            )?;
            reports.push(report);
        }
        tracing::info!(
            batch = %task.follow_batch,
            records = total_records,
            bytes = total_bytes,
            ms = started.elapsed().as_millis() as u64,
            replay = replay.is_some(),
            "follow task done"
        );
        Ok(reports)
    }
}

fn convert_record(
    cfg: &Config,
    action: i32,
    row: &plainbuffer::Row,
    info: &plainbuffer::SequenceInfo,
    shard: &str,
    rows: &mut Vec<Vec<protocol::value::Value>>,
) -> Result<(), PluginError> {
    match cfg.mode {
        Mode::MultiVersion => {
            convert::multi_version(action, row, info, shard, cfg.export_sequence_info, rows)
        }
        Mode::SingleVersionAndUpdateOnly => convert::single_version(
            action,
            row,
            info,
            shard,
            &cfg.columns,
            cfg.export_sequence_info,
        )
        .map(|r| rows.extend(r)),
        Mode::RowChange => crate::row_change::row_change(
            action,
            row,
            info,
            shard,
            &cfg.columns,
            cfg.export_sequence_info,
        )
        .map(|r| rows.push(r)),
    }
    .map_err(|e| {
        PluginError::data(format!(
            "converting a stream record of shard {shard} (dataTable {:?}): {e}",
            cfg.data_table
        ))
    })
}
