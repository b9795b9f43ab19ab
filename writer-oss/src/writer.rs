//! A writer task: records are formatted, encoded, optionally compressed and cut into
//! parts that upload while more records stream in (at most `partsInFlight` at once per
//! task). Nothing is completed here: the task reports its uploads and the job's `post`
//! completes them, so no object becomes visible before every task succeeded.

use std::sync::Arc;

use bytes::Bytes;
use protocol::runtime::{PluginError, RecordSource, WriterOutput};
use protocol::value::{Value, ValueRef};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::body::Body;
use crate::client::{OssClient, UploadedPart};
use crate::config::WriterConfig;
use crate::error::OssError;
use crate::naming;
use crate::part_buffers::PartBuffers;

/// OSS's smallest non-final part.
pub const MIN_PART_BYTES: usize = 102_400;

/// One multipart upload a task made, for `post` to complete.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UploadReport {
    pub key: String,
    pub upload_id: String,
    pub parts: Vec<UploadedPart>,
}

/// What a multi-object task reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    pub task_index: u32,
    pub records: u64,
    pub uploads: Vec<UploadReport>,
    /// Single-object mode: parts uploaded into the job's upload, and the task's first
    /// 100 KiB and last bytes (Base64), which `post` uploads as part 1 after the header.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<UploadedPart>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tail_base64: String,
}

/// One object being uploaded.
struct OpenObject {
    key: String,
    upload_id: String,
    body: Body,
    next_part: u32,
    /// Last part number this object may use.
    last_part: u32,
    pending: Vec<JoinHandle<Result<UploadedPart, OssError>>>,
    parts: Vec<UploadedPart>,
    /// Bytes handed to this object's part uploads.
    cut: u64,
}

/// Where a task's records go.
pub struct TaskWriter<'a> {
    rt: &'a Runtime,
    client: Arc<OssClient>,
    config: &'a WriterConfig,
    task_index: u32,
    base: String,
    next_k: u32,
    current: Option<OpenObject>,
    done: Vec<UploadReport>,
    permits: Arc<Semaphore>,
    /// Buffers of uploaded parts, for the next parts (shared like `permits`).
    buffers: PartBuffers,
    /// Single-object mode: the job's upload and this task's part numbers.
    single: Option<(String, u32, u32)>,
    /// A line in a charset other than UTF-8 or compressed, before it is encoded.
    text: String,
    scratch: String,
    encoded: Vec<u8>,
    records: u64,
    /// Bytes handed to part uploads so far.
    bytes_cut: u64,
    /// Single object: the task's first records, reported instead of uploaded.
    head: Vec<u8>,
}

impl<'a> TaskWriter<'a> {
    /// A multi-object task.
    pub fn multi(
        rt: &'a Runtime,
        client: Arc<OssClient>,
        config: &'a WriterConfig,
        job_hex: &str,
        task_index: u32,
    ) -> Self {
        Self::new(
            rt,
            client,
            config,
            naming::task_base(&config.object, job_hex, task_index),
            task_index,
            None,
        )
    }

    /// A multi-object task under `base` (a partition's `<prefix>__<32 hex>`), sharing
    /// `permits` (parts in flight) and their buffers with the task's other partitions.
    pub(crate) fn multi_at(
        rt: &'a Runtime,
        client: Arc<OssClient>,
        config: &'a WriterConfig,
        base: String,
        task_index: u32,
        permits: Arc<Semaphore>,
        buffers: PartBuffers,
    ) -> Self {
        let mut writer = Self::new(rt, client, config, base, task_index, None);
        writer.permits = permits;
        writer.buffers = buffers;
        writer
    }

    /// Bytes handed to part uploads so far.
    pub(crate) fn bytes_cut(&self) -> u64 {
        self.bytes_cut
    }

    /// A single-object task writing parts `first..=last` of `upload_id`.
    pub fn single(
        rt: &'a Runtime,
        client: Arc<OssClient>,
        config: &'a WriterConfig,
        task_index: u32,
        upload_id: String,
        first: u32,
        last: u32,
    ) -> Self {
        Self::new(
            rt,
            client,
            config,
            config.object.clone(),
            task_index,
            Some((upload_id, first, last)),
        )
    }

    fn new(
        rt: &'a Runtime,
        client: Arc<OssClient>,
        config: &'a WriterConfig,
        base: String,
        task_index: u32,
        single: Option<(String, u32, u32)>,
    ) -> Self {
        Self {
            rt,
            client,
            permits: Arc::new(Semaphore::new(config.parts_in_flight)),
            buffers: part_buffers(config),
            config,
            task_index,
            base,
            next_k: 0,
            current: None,
            done: Vec::new(),
            single,
            text: String::new(),
            scratch: String::new(),
            encoded: Vec::new(),
            records: 0,
            bytes_cut: 0,
            head: Vec::new(),
        }
    }

    /// Writes every record of `input` and returns the report for `post`; on failure the
    /// task's own uploads are aborted before the error is returned.
    pub fn run(
        mut self,
        input: &mut RecordSource,
        out: &mut WriterOutput,
    ) -> Result<TaskReport, PluginError> {
        let outcome = self.consume(input, out).and_then(|()| self.finish());
        match outcome {
            Ok(report) => Ok(report),
            Err(e) => {
                self.abort_own();
                Err(e)
            }
        }
    }

    fn consume(
        &mut self,
        input: &mut RecordSource,
        out: &mut WriterOutput,
    ) -> Result<(), PluginError> {
        let mut last_progress = std::time::Instant::now();
        let columnar = self.config.columnar.is_some();
        loop {
            // Text lines are formatted straight from each batch's bytes; a columnar
            // encoder keeps values, so it takes decoded records.
            let more = if columnar {
                match input.next_batch_ref()? {
                    Some(batch) => {
                        for record in batch {
                            self.write_record(record, out)?;
                        }
                        true
                    }
                    None => false,
                }
            } else {
                input
                    .next_batch_each(|record| {
                        self.ready_object()?;
                        self.write_text(record.iter().copied())
                    })?
                    .is_some()
            };
            if !more {
                return Ok(());
            }
            if last_progress.elapsed() >= std::time::Duration::from_secs(1) {
                last_progress = std::time::Instant::now();
                out.progress(self.records, self.bytes_cut)?;
            }
        }
    }

    fn open(&mut self) -> Result<(), PluginError> {
        let (key, upload_id, next_part, last_part) = match &self.single {
            Some((id, first, last)) => (self.base.clone(), id.clone(), *first, *last),
            None => {
                let key = naming::object_name(&self.base, self.next_k, &self.config.suffix);
                self.next_k += 1;
                let id = self.rt.block_on(self.client.initiate(
                    &key,
                    self.config.content_type(),
                    self.config.encrypt,
                ))?;
                tracing::debug!("task {}: started {key} (upload {id})", self.task_index);
                // Columnar objects roll on their bytes (maxFileSize), at row-group
                // boundaries; their part count is bounded only by OSS.
                let last = if self.config.columnar.is_some() {
                    10_000
                } else {
                    self.config.max_parts_per_object
                };
                (key, id, 1, last)
            }
        };
        let mut object = OpenObject {
            key,
            upload_id,
            body: Body::new(self.config, &self.buffers)?,
            next_part,
            last_part,
            pending: Vec::new(),
            parts: Vec::new(),
            cut: 0,
        };
        // The header opens every object (single object: `post` writes it).
        if !self.config.header.is_empty() && self.single.is_none() {
            let mut line = String::new();
            self.config
                .record_format
                .write_header(&self.config.header, &mut line);
            object
                .body
                .write_text(&line, self.config, &mut self.encoded)?;
        }
        self.current = Some(object);
        Ok(())
    }

    pub(crate) fn write_record(
        &mut self,
        record: &[Value],
        out: &mut WriterOutput,
    ) -> Result<(), PluginError> {
        self.ready_object()?;
        if self.config.columnar.is_some() {
            return self.write_columnar(record, out);
        }
        self.write_text(record.iter().map(Value::as_value_ref))
    }

    /// Closes the open object when it is full and opens the next one when none is open.
    fn ready_object(&mut self) -> Result<(), PluginError> {
        let columnar = self.config.columnar.is_some();
        let roll = self.current.as_ref().is_some_and(|o| {
            self.single.is_none()
                && if columnar {
                    // A columnar object closes with its footer at a row-group boundary,
                    // once its parts reach maxFileSize.
                    o.cut >= self.config.max_file_bytes
                } else {
                    o.next_part > o.last_part
                }
        });
        if roll {
            self.close()?;
        }
        if self.current.is_none() {
            self.open()?;
        }
        Ok(())
    }

    /// One record as a text line into the open object.
    fn write_text<'v>(
        &mut self,
        values: impl IntoIterator<Item = ValueRef<'v>>,
    ) -> Result<(), PluginError> {
        self.records += 1;
        let Some(object) = self.current.as_mut() else {
            return Err(PluginError::internal("no open object"));
        };
        let format = &self.config.record_format;
        if let Body::Text(part) = &mut object.body {
            format.write_values(values, part, &mut self.scratch);
        } else {
            self.text.clear();
            format.write_values(values, &mut self.text, &mut self.scratch);
            object
                .body
                .write_text(&self.text, self.config, &mut self.encoded)?;
        }
        if self.single.is_some() && self.head.len() < MIN_PART_BYTES {
            // Single object: the first 100 KiB go to `post` with the report, so the part
            // `post` makes of them (header first) is never too small.
            object.body.drain_into(&mut self.head);
            return Ok(());
        }
        if object.body.buffered() >= self.config.part_size_bytes {
            let bytes = object.body.take(&self.buffers);
            self.upload(bytes)?;
        }
        Ok(())
    }

    /// A record into the open Parquet/ORC file; a value that does not fit its column
    /// makes the record dirty (counted against the job's error limit).
    fn write_columnar(
        &mut self,
        record: &[Value],
        out: &mut WriterOutput,
    ) -> Result<(), PluginError> {
        let Some(object) = self.current.as_mut() else {
            return Err(PluginError::internal("no open object"));
        };
        let Body::Columnar(encoder) = &mut object.body else {
            return Err(PluginError::internal("a text body for a columnar format"));
        };
        if let Some(reason) = encoder.push(record)? {
            return out.dirty(record, &reason);
        }
        self.records += 1;
        if encoder.buffered() >= self.config.part_size_bytes {
            let bytes = encoder.take();
            self.upload(bytes)?;
        }
        Ok(())
    }

    /// Starts uploading the next part of the open object (waits for a free slot).
    fn upload(&mut self, bytes: Vec<u8>) -> Result<(), PluginError> {
        let Some(object) = self.current.as_mut() else {
            return Err(PluginError::internal("no open object"));
        };
        let number = object.next_part;
        if number > object.last_part {
            return Err(PluginError::data(format!(
                "{}: more than {} parts for this task; raise blockSizeInMB",
                object.key, object.last_part
            )));
        }
        object.next_part += 1;
        object.cut += bytes.len() as u64;
        self.bytes_cut += bytes.len() as u64;
        let permit = self
            .rt
            .block_on(self.permits.clone().acquire_owned())
            .map_err(|e| PluginError::internal(e.to_string()))?;
        let client = self.client.clone();
        let buffers = self.buffers.clone();
        let (key, id) = (object.key.clone(), object.upload_id.clone());
        object.pending.push(self.rt.spawn(async move {
            let part = Bytes::from(bytes);
            let result = client.upload_part(&key, &id, number, part.clone()).await;
            buffers.recycle(part);
            drop(permit);
            result
        }));
        // Collect finished parts, so a failure stops the task early.
        let mut still = Vec::new();
        for handle in std::mem::take(&mut object.pending) {
            if handle.is_finished() {
                object.parts.push(join(self.rt, handle)?);
            } else {
                still.push(handle);
            }
        }
        object.pending = still;
        Ok(())
    }

    /// Uploads what is left of the open object and waits for its parts.
    pub(crate) fn close(&mut self) -> Result<(), PluginError> {
        let Some(mut object) = self.current.take() else {
            return Ok(());
        };
        let body = std::mem::replace(&mut object.body, Body::Plain(Vec::new()));
        let tail = body.finish()?;
        let single = self.single.is_some();
        self.current = Some(object);
        let kept_tail = if single {
            tail
        } else {
            if !tail.is_empty() {
                self.upload(tail)?;
            }
            Vec::new()
        };
        let Some(mut object) = self.current.take() else {
            return Err(PluginError::internal("no open object"));
        };
        for handle in std::mem::take(&mut object.pending) {
            object.parts.push(join(self.rt, handle)?);
        }
        object.parts.sort_by_key(|p| p.number);
        object.body = Body::Plain(kept_tail);
        let size: u64 = object.parts.iter().map(|p| p.size).sum();
        tracing::debug!(
            "task {}: {} ready ({} parts, {size} bytes)",
            self.task_index,
            object.key,
            object.parts.len()
        );
        self.done.push(UploadReport {
            key: object.key.clone(),
            upload_id: object.upload_id.clone(),
            parts: object.parts.clone(),
        });
        if single {
            self.current = Some(object);
        }
        Ok(())
    }

    pub(crate) fn finish(&mut self) -> Result<TaskReport, PluginError> {
        let empty_object =
            self.single.is_none() && self.records == 0 && self.config.generate_empty_file;
        if self.current.is_none() && empty_object {
            self.open()?;
        }
        self.close()?;
        let mut report = TaskReport {
            task_index: self.task_index,
            records: self.records,
            ..TaskReport::default()
        };
        if self.single.is_some() {
            if let Some(mut object) = self.current.take() {
                report.parts = std::mem::take(&mut object.parts);
                if let Body::Plain(tail) = &object.body {
                    use base64::Engine as _;
                    self.head.extend_from_slice(tail);
                    report.tail_base64 =
                        base64::engine::general_purpose::STANDARD.encode(&self.head);
                }
            }
        } else {
            report.uploads = std::mem::take(&mut self.done);
        }
        tracing::info!(
            "task {}: {} records in {} objects, ready for post",
            self.task_index,
            self.records,
            report.uploads.len()
        );
        Ok(report)
    }

    /// Best effort after a failure: abort this task's uploads (not the job's single one).
    pub(crate) fn abort_own(&mut self) {
        if self.single.is_some() {
            return;
        }
        let mut uploads: Vec<(String, String)> = self
            .done
            .iter()
            .map(|u| (u.key.clone(), u.upload_id.clone()))
            .collect();
        if let Some(o) = self.current.take() {
            for handle in o.pending {
                handle.abort();
            }
            uploads.push((o.key, o.upload_id));
        }
        for (key, id) in uploads {
            if let Err(e) = self.rt.block_on(self.client.abort(&key, &id)) {
                tracing::warn!("aborting {key} after the failure: {e}");
            }
        }
    }
}

/// The part buffers of a task: kept for the parts in flight, the one waiting for a slot
/// and the one filling, at least a part's room each.
pub(crate) fn part_buffers(config: &WriterConfig) -> PartBuffers {
    PartBuffers::new(config.parts_in_flight + 2, config.part_size_bytes)
}

fn join(
    rt: &Runtime,
    handle: JoinHandle<Result<UploadedPart, OssError>>,
) -> Result<UploadedPart, PluginError> {
    rt.block_on(handle)
        .map_err(|e| PluginError::internal(format!("a part upload panicked: {e}")))?
        .map_err(PluginError::from)
}
