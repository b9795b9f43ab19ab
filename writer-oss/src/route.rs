//! A partitioned task: each record goes to its partition's [`TaskWriter`], which writes
//! that partition's objects exactly as an unpartitioned task writes its own (same
//! encoding, parts and rolling to `_k`), under `<rendered object>__<32 hex>`.
//!
//! At most `maxOpenPartitions` objects are open (buffering a part) at once: a record of
//! another partition first closes the least recently written one, whose upload then
//! waits for `post` like any other; a later record of that partition starts its next
//! object (`_k`). All parts in flight share one `partsInFlight` limit, so a task holds
//! at most about `blockSizeInMB × (maxOpenPartitions + partsInFlight)` of data, and the
//! buffers of up to `partsInFlight` + 2 uploaded parts kept for the next parts.
//!
//! With `eventTimeColumn`, a record whose column is null or not a time is a dirty record
//! naming the column; when the first record with a value there holds no time at all,
//! the parameter names the wrong column and the task fails as a configuration error.

use std::collections::HashMap;
use std::sync::Arc;

use protocol::runtime::{PluginError, RecordSource, WriterOutput};
use protocol::value::Value;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;

use crate::client::OssClient;
use crate::config::WriterConfig;
use crate::naming;
use crate::part_buffers::PartBuffers;
use crate::partition::{event_time, Partitioning, TimeSource};
use crate::writer::{part_buffers, TaskReport, TaskWriter};

/// UTC minutes whose partition a task remembers (a day's worth).
const MINUTES_KEPT: usize = 1440;

struct Slot<'a> {
    writer: TaskWriter<'a>,
    /// When a record last went here (a counter).
    used: u64,
    open: bool,
}

/// Routes a task's records to one object (sequence) per partition.
pub struct Router<'a> {
    rt: &'a Runtime,
    client: Arc<OssClient>,
    config: &'a WriterConfig,
    partitioning: &'a Partitioning,
    job_hex: String,
    task_index: u32,
    permits: Arc<Semaphore>,
    /// The part buffers of the partitions' uploads, shared like `permits`.
    buffers: PartBuffers,
    slots: HashMap<String, Slot<'a>>,
    open: usize,
    tick: u64,
    /// The partition of the last record and its UTC minute (`None`: do not reuse).
    cached_minute: Option<i64>,
    cached_key: String,
    /// Partitions of recently seen UTC minutes (records of a window arrive in no
    /// particular time order), at most [`MINUTES_KEPT`].
    minute_keys: HashMap<i64, String>,
    /// Whether a record had a time in its time column yet.
    seen_time: bool,
}

impl<'a> Router<'a> {
    pub fn new(
        rt: &'a Runtime,
        client: Arc<OssClient>,
        config: &'a WriterConfig,
        partitioning: &'a Partitioning,
        job_hex: &str,
        task_index: u32,
    ) -> Self {
        Self {
            rt,
            client,
            permits: Arc::new(Semaphore::new(config.parts_in_flight)),
            buffers: part_buffers(config),
            config,
            partitioning,
            job_hex: job_hex.to_owned(),
            task_index,
            slots: HashMap::new(),
            open: 0,
            tick: 0,
            cached_minute: None,
            cached_key: String::new(),
            minute_keys: HashMap::new(),
            seen_time: false,
        }
    }

    /// Writes every record of `input` and returns the task's report (every object of
    /// every partition); on failure every upload of the task is aborted first.
    pub fn run(
        mut self,
        input: &mut RecordSource,
        out: &mut WriterOutput,
    ) -> Result<TaskReport, PluginError> {
        let outcome = self.consume(input, out).and_then(|()| self.finish());
        outcome.inspect_err(|_| {
            for slot in self.slots.values_mut() {
                slot.writer.abort_own();
            }
        })
    }

    fn consume(
        &mut self,
        input: &mut RecordSource,
        out: &mut WriterOutput,
    ) -> Result<(), PluginError> {
        if let TimeSource::Window(ms) = self.partitioning.source {
            // generateEmptyFile: the window's partition gets an object even without records.
            self.select(ms)?;
        }
        let mut records = 0u64;
        let mut last_progress = std::time::Instant::now();
        while let Some(batch) = input.next_batch_ref()? {
            for record in batch {
                records += 1;
                self.write(record, out)?;
            }
            if last_progress.elapsed() >= std::time::Duration::from_secs(1) {
                last_progress = std::time::Instant::now();
                let bytes = self.slots.values().map(|s| s.writer.bytes_cut()).sum();
                out.progress(records, bytes)?;
            }
        }
        Ok(())
    }

    fn write(&mut self, record: &[Value], out: &mut WriterOutput) -> Result<(), PluginError> {
        let ms = match &self.partitioning.source {
            TimeSource::Window(ms) => *ms,
            TimeSource::Column { index, name } => match event_time(record, *index, name) {
                Ok(ms) => {
                    self.seen_time = true;
                    ms
                }
                Err(reason) => {
                    let null = matches!(record.get(*index), Some(Value::Null));
                    if !self.seen_time && !null {
                        return Err(PluginError::config(format!(
                            "writer-oss: {reason} in the task's first record with a value there: eventTimeColumn must name a column of dates or epoch milliseconds"
                        )));
                    }
                    return out.dirty(record, &reason);
                }
            },
        };
        let Some(slot) = self.select(ms)? else {
            return out.dirty(
                record,
                &format!("eventTimeColumn: {ms} is outside the years 0 to 9999"),
            );
        };
        slot.writer.write_record(record, out)
    }

    /// The slot of the partition of `ms`, opened (closing the least recently used one
    /// when too many are open); `None` when the time cannot be rendered.
    fn select(&mut self, ms: i64) -> Result<Option<&mut Slot<'a>>, PluginError> {
        let p = self.partitioning;
        let minute = ms.div_euclid(60_000);
        if self.cached_minute != Some(minute) {
            if let Some(key) = self.minute_keys.get(&minute) {
                self.cached_key.clear();
                self.cached_key.push_str(key);
                self.cached_minute = Some(minute);
            } else {
                let Some(key) = p.template.render(ms, &p.zone) else {
                    return Ok(None);
                };
                // Every instant of one UTC minute renders alike when the offset is whole
                // minutes (the zone's rules change on minute boundaries).
                let whole = p.zone.offset_at(ms).local_minus_utc() % 60 == 0;
                if whole {
                    if self.minute_keys.len() >= MINUTES_KEPT {
                        self.minute_keys.clear();
                    }
                    self.minute_keys.insert(minute, key.clone());
                }
                self.cached_minute = whole.then_some(minute);
                self.cached_key = key;
            }
        }
        self.tick += 1;
        let tick = self.tick;
        let needs_open = self
            .slots
            .get(&self.cached_key)
            .is_none_or(|slot| !slot.open);
        if needs_open && self.open >= p.max_open {
            self.close_least_recent()?;
        }
        if !self.slots.contains_key(&self.cached_key) {
            let base = naming::task_base(&self.cached_key, &self.job_hex, self.task_index);
            tracing::debug!("task {}: partition {}", self.task_index, self.cached_key);
            let writer = TaskWriter::multi_at(
                self.rt,
                self.client.clone(),
                self.config,
                base,
                self.task_index,
                self.permits.clone(),
                self.buffers.clone(),
            );
            let slot = Slot {
                writer,
                used: tick,
                open: false,
            };
            self.slots.insert(self.cached_key.clone(), slot);
        }
        let Some(slot) = self.slots.get_mut(&self.cached_key) else {
            return Err(PluginError::internal("a partition vanished"));
        };
        if !slot.open {
            slot.open = true;
            self.open += 1;
        }
        slot.used = tick;
        Ok(Some(slot))
    }

    fn close_least_recent(&mut self) -> Result<(), PluginError> {
        let Some((key, slot)) = self
            .slots
            .iter_mut()
            .filter(|(_, s)| s.open)
            .min_by_key(|(_, s)| s.used)
        else {
            return Ok(());
        };
        tracing::info!(
            "task {}: {} partitions open (maxOpenPartitions); closing the object of {key}",
            self.task_index,
            self.partitioning.max_open
        );
        slot.writer.close()?;
        slot.open = false;
        self.open -= 1;
        Ok(())
    }

    /// Closes every partition's object, then reports them all (in partition order).
    fn finish(&mut self) -> Result<TaskReport, PluginError> {
        for slot in self.slots.values_mut() {
            slot.writer.close()?;
        }
        let mut keys: Vec<String> = self.slots.keys().cloned().collect();
        keys.sort();
        let mut report = TaskReport {
            task_index: self.task_index,
            ..TaskReport::default()
        };
        for key in keys {
            let Some(slot) = self.slots.get_mut(&key) else {
                continue;
            };
            // Only an empty partition opens (and closes) its object here.
            let part = match slot.writer.finish() {
                Ok(part) => part,
                Err(e) => {
                    self.abort_reported(&report);
                    return Err(e);
                }
            };
            report.records += part.records;
            report.uploads.extend(part.uploads);
        }
        tracing::info!(
            "task {}: {} records in {} objects of {} partitions, ready for post",
            self.task_index,
            report.records,
            report.uploads.len(),
            self.slots.len()
        );
        Ok(report)
    }

    fn abort_reported(&self, report: &TaskReport) {
        for upload in &report.uploads {
            if let Err(e) = self
                .rt
                .block_on(self.client.abort(&upload.key, &upload.upload_id))
            {
                tracing::warn!("aborting {} after the failure: {e}", upload.key);
            }
        }
    }
}
