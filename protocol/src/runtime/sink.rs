//! Where a reader task puts its records.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::frame::FrameWriter;
use crate::jsonl::record_to_line;
use crate::logfmt::abbreviate;
use crate::message::{Checkpoint, Dirty, Eos, Message, Progress};
use crate::records::encode_record;
use crate::runtime::PluginError;
use crate::value::{record_byte_size, Value};

/// A batch is sent when it holds this many records…
pub const BATCH_MAX_RECORDS: u32 = 8192;
/// …or this many encoded bytes, whichever comes first.
pub const BATCH_MAX_BYTES: usize = 1024 * 1024;

enum Output {
    Frames(FrameWriter<Box<dyn Write + Send>>),
    Jsonl(Box<dyn Write + Send>),
}

/// Batches records and writes them as frames (or JSON lines) on the plugin's stdout.
pub struct RecordSink {
    output: Output,
    /// [`HEAD_ROOM`] free bytes, then the encoded records of the open batch (without
    /// the array header): the batch is framed in place.
    pending: Vec<u8>,
    pending_count: u32,
    pending_bytes: u64,
    records: u64,
    bytes: u64,
    dirty: DirtyRecords,
    checkpoints: Vec<serde_json::Value>,
    cancelled: Arc<AtomicBool>,
    /// Standalone mode writes dirty records to stderr; engine mode sends them.
    engine_mode: bool,
}

impl RecordSink {
    pub(crate) fn frames(
        writer: FrameWriter<Box<dyn Write + Send>>,
        engine_mode: bool,
        cancelled: Arc<AtomicBool>,
    ) -> Self {
        Self::new(Output::Frames(writer), engine_mode, cancelled)
    }

    pub(crate) fn jsonl(writer: Box<dyn Write + Send>, cancelled: Arc<AtomicBool>) -> Self {
        Self::new(Output::Jsonl(writer), false, cancelled)
    }

    fn new(output: Output, engine_mode: bool, cancelled: Arc<AtomicBool>) -> Self {
        Self {
            output,
            pending: {
                let mut pending = Vec::with_capacity(HEAD_ROOM + BATCH_MAX_BYTES + 64 * 1024);
                pending.resize(HEAD_ROOM, 0);
                pending
            },
            pending_count: 0,
            pending_bytes: 0,
            records: 0,
            bytes: 0,
            dirty: DirtyRecords::default(),
            checkpoints: Vec::new(),
            cancelled,
            engine_mode,
        }
    }

    /// Standalone: fails once more than `limit` records are dirty, and keeps them whole
    /// in `dirty_file`.
    pub(crate) fn set_dirty_policy(&mut self, limit: Option<u64>, dirty_file: Option<DirtyFile>) {
        self.dirty = DirtyRecords::new(limit, dirty_file);
    }

    /// A sink that collects frames in memory (for tests and benchmarks).
    pub fn in_memory() -> (Self, SharedBuffer) {
        let buffer = SharedBuffer::default();
        buffer
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(crate::frame::PREAMBLE);
        let writer =
            FrameWriter::without_preamble(Box::new(buffer.clone()) as Box<dyn Write + Send>);
        (Self::frames(writer, true, Arc::default()), buffer)
    }

    /// Whether the engine asked the task to stop. [`push`](Self::push) checks it too.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Adds one record.
    pub fn push(&mut self, record: &[Value]) -> Result<(), PluginError> {
        if self.is_cancelled() {
            return Err(PluginError::cancelled("the task was cancelled"));
        }
        let size = record_byte_size(record);
        self.records += 1;
        self.bytes += size;
        match &mut self.output {
            Output::Jsonl(w) => {
                let line = record_to_line(record);
                w.write_all(line.as_bytes())
                    .and_then(|_| w.write_all(b"\n"))
                    .map_err(write_error)?;
            }
            Output::Frames(_) => {
                encode_record(record, &mut self.pending);
                self.pending_count += 1;
                self.pending_bytes += size;
                if self.pending_count >= BATCH_MAX_RECORDS
                    || self.pending.len() >= HEAD_ROOM + BATCH_MAX_BYTES
                {
                    self.flush_batch()?;
                }
            }
        }
        Ok(())
    }

    /// Adds one record already encoded with [`encode_record`] (a generator that repeats
    /// a record encodes it once). `byte_size` is its DataX size.
    pub fn push_encoded(&mut self, encoded: &[u8], byte_size: u64) -> Result<(), PluginError> {
        if self.is_cancelled() {
            return Err(PluginError::cancelled("the task was cancelled"));
        }
        if let Output::Jsonl(_) = self.output {
            let record = crate::records::decode_record(encoded)
                .map_err(|e| PluginError::internal(e.to_string()))?;
            return self.push(&record);
        }
        self.records += 1;
        self.bytes += byte_size;
        self.pending.extend_from_slice(encoded);
        self.pending_count += 1;
        self.pending_bytes += byte_size;
        if self.pending_count >= BATCH_MAX_RECORDS
            || self.pending.len() >= HEAD_ROOM + BATCH_MAX_BYTES
        {
            self.flush_batch()?;
        }
        Ok(())
    }

    /// Adds the records encoded one after another in `encoded`, as [`push_encoded`]
    /// would add them one by one (the same batches): `ends` holds each one's end in
    /// `encoded` and its DataX size, in order. When the run fits in the open batch it
    /// is copied in at once (a reader that turns one change into several records).
    ///
    /// [`push_encoded`]: Self::push_encoded
    pub fn push_encoded_run(
        &mut self,
        encoded: &[u8],
        ends: &[(usize, u64)],
    ) -> Result<(), PluginError> {
        // `push_encoded` sends the batch after the record that fills it; so may this,
        // after the run's last record, as long as no record before that one fills it.
        let before_last = match ends.len() {
            0 => return Ok(()),
            n if n >= 2 => ends[n - 2].0,
            _ => 0,
        };
        let fits = u32::try_from(ends.len())
            .ok()
            .filter(|&n| n <= BATCH_MAX_RECORDS - self.pending_count)
            .filter(|_| self.pending.len() + before_last < HEAD_ROOM + BATCH_MAX_BYTES);
        let (Some(count), Output::Frames(_), Some(run)) =
            (fits, &self.output, encoded.get(..ends[ends.len() - 1].0))
        else {
            let mut start = 0;
            for &(end, size) in ends {
                let record = encoded.get(start..end).ok_or_else(|| {
                    PluginError::internal(format!(
                        "a record ends at byte {end} of a run of {}",
                        encoded.len()
                    ))
                })?;
                self.push_encoded(record, size)?;
                start = end;
            }
            return Ok(());
        };
        if self.is_cancelled() {
            return Err(PluginError::cancelled("the task was cancelled"));
        }
        let size: u64 = ends.iter().map(|&(_, size)| size).sum();
        self.records += u64::from(count);
        self.bytes += size;
        self.pending.extend_from_slice(run);
        self.pending_count += count;
        self.pending_bytes += size;
        if self.pending_count >= BATCH_MAX_RECORDS
            || self.pending.len() >= HEAD_ROOM + BATCH_MAX_BYTES
        {
            self.flush_batch()?;
        }
        Ok(())
    }

    /// Reports a resumable position: every record pushed before it is covered.
    pub fn checkpoint(&mut self, state: serde_json::Value) -> Result<(), PluginError> {
        self.flush_batch()?;
        if let Output::Frames(w) = &mut self.output {
            w.write_message(&Message::Checkpoint(Checkpoint {
                state: state.clone(),
            }))?;
        }
        self.checkpoints.push(state);
        Ok(())
    }

    /// Reports a record the reader could not turn into a proper record.
    /// Fails when the error limit (standalone `--error-limit`) is exceeded.
    pub fn dirty(&mut self, record: &[Value], reason: &str) -> Result<(), PluginError> {
        let mut frames = match &mut self.output {
            Output::Frames(w) => Some(w),
            Output::Jsonl(_) => None,
        };
        self.dirty
            .report(self.engine_mode, &mut frames, record, reason)
    }

    /// Tells the engine how many records this task will read in all (an estimate), so
    /// it can show an ETA; the records pushed so far go with it. Engine mode only; may
    /// be called again as the estimate improves.
    pub fn estimate_total(&mut self, total_records: u64) -> Result<(), PluginError> {
        if !self.engine_mode {
            return Ok(());
        }
        self.flush_batch()?;
        let progress = Message::Progress(Progress {
            records: self.records,
            bytes: self.bytes,
            total_records: Some(total_records),
        });
        if let Output::Frames(w) = &mut self.output {
            w.write_message(&progress)?;
        }
        Ok(())
    }

    /// Records pushed so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Checkpoints reported so far.
    pub fn checkpoints(&self) -> &[serde_json::Value] {
        &self.checkpoints
    }

    /// Sends the open batch, if any.
    pub fn flush_batch(&mut self) -> Result<(), PluginError> {
        if self.pending_count == 0 {
            return Ok(());
        }
        if let Output::Frames(w) = &mut self.output {
            let records = self.pending.len() - HEAD_ROOM;
            let head = batch_head(self.pending_count, self.pending_bytes, records);
            // The body (header and records) is framed where it lies.
            let at = HEAD_ROOM
                .checked_sub(head.len())
                .ok_or_else(|| PluginError::internal("a batch header longer than its room"))?;
            self.pending[at..HEAD_ROOM].copy_from_slice(&head);
            w.write_body_in_place(&mut self.pending, at)
                .map_err(write_error)?;
        }
        self.pending.truncate(HEAD_ROOM);
        self.pending_count = 0;
        self.pending_bytes = 0;
        Ok(())
    }

    /// Sends the open batch and `eos`, and flushes.
    pub(crate) fn finish(&mut self) -> Result<(), PluginError> {
        self.flush_batch()?;
        let eos = Message::Eos(Eos {
            records: self.records,
            bytes: self.bytes,
        });
        match &mut self.output {
            Output::Frames(w) => {
                w.write_message(&eos)?;
                w.flush().map_err(write_error)
            }
            Output::Jsonl(w) => w.flush().map_err(write_error),
        }
    }

    /// Writes a message on the frame output (engine mode).
    pub(crate) fn send(&mut self, message: &Message) -> Result<(), PluginError> {
        if let Output::Frames(w) = &mut self.output {
            w.write_message(message)?;
            w.flush().map_err(write_error)?;
        }
        Ok(())
    }
}

/// The dirty records a plugin reported: how many, how many may be (standalone
/// `--error-limit`; the engine applies the job's `errorLimit` in engine mode) and where
/// they are kept whole (standalone `--dirty-file`).
#[derive(Default)]
pub(crate) struct DirtyRecords {
    pub(crate) count: u64,
    pub(crate) limit: Option<u64>,
    pub(crate) file: Option<DirtyFile>,
}

impl DirtyRecords {
    pub(crate) fn new(limit: Option<u64>, file: Option<DirtyFile>) -> Self {
        Self {
            count: 0,
            limit,
            file,
        }
    }

    /// Counts a dirty record and sends it as a frame (engine mode), or, standalone,
    /// logs it (at most [`LOG_RECORD_MAX_BYTES`](crate::logfmt::LOG_RECORD_MAX_BYTES)
    /// of it) and appends it whole to the dirty-record file, if there is one. `Err`
    /// when that makes more dirty records than the limit allows.
    pub(crate) fn report(
        &mut self,
        engine_mode: bool,
        frames: &mut Option<&mut FrameWriter<Box<dyn Write + Send>>>,
        record: &[Value],
        reason: &str,
    ) -> Result<(), PluginError> {
        self.count += 1;
        self.send(engine_mode, frames, record, reason)?;
        self.check()
    }

    fn send(
        &mut self,
        engine_mode: bool,
        frames: &mut Option<&mut FrameWriter<Box<dyn Write + Send>>>,
        record: &[Value],
        reason: &str,
    ) -> Result<(), PluginError> {
        match frames {
            Some(w) if engine_mode => {
                Ok(w.write_message(&Message::Dirty(Dirty::new(record, reason)))?)
            }
            _ => {
                let record_text = record_to_line(record);
                tracing::warn!(
                    target: "dirty",
                    "dirty record {} (reason: {})",
                    abbreviate(&record_text),
                    abbreviate(reason)
                );
                match self.file.as_mut() {
                    Some(file) => file.append(&record_text, reason),
                    None => Ok(()),
                }
            }
        }
    }

    /// `Err` when more records are dirty than the limit allows (as the engine's
    /// `errorLimit.record`: `limit` dirty records pass, one more fails).
    pub(crate) fn check(&self) -> Result<(), PluginError> {
        match self.limit {
            Some(limit) if self.count > limit => Err(PluginError::data(format!(
                "error limit exceeded: {} dirty records, the limit (--error-limit) is {limit}; \
                 nothing is committed",
                self.count
            ))),
            _ => Ok(()),
        }
    }
}

/// A standalone plugin's dirty-record file (`--dirty-file`): one JSON object per line,
/// `{"record": [...], "reason": "..."}`, records whole.
pub struct DirtyFile {
    path: std::path::PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

impl DirtyFile {
    /// Creates (or truncates) the file.
    pub fn create(path: &std::path::Path) -> Result<Self, PluginError> {
        let file = std::fs::File::create(path)
            .map_err(|e| PluginError::config(format!("--dirty-file {}: {e}", path.display())))?;
        Ok(Self {
            path: path.to_owned(),
            out: std::io::BufWriter::new(file),
        })
    }

    fn append(&mut self, record_line: &str, reason: &str) -> Result<(), PluginError> {
        // `record_line` is already the record's JSON array.
        let reason = serde_json::Value::from(reason).to_string();
        let line = format!("{{\"record\":{record_line},\"reason\":{reason}}}\n");
        self.out
            .write_all(line.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(|e| PluginError::io(format!("writing {}: {e}", self.path.display())))
    }
}

/// Room before the pending records for the frame header and the batch's header (map,
/// keys, count, bytes, the blob's and the array's lengths: at most 56 bytes).
const HEAD_ROOM: usize = 64;
/// The start of a `batch` body whose encoded records (`records_len` bytes, without
/// their array header) follow it: with them, the same bytes
/// `rmp_serde::to_vec_named(&Message::Batch(..))` produces, in the layout
/// [`crate::frame::batch_parts`] reads.
fn batch_head(count: u32, bytes: u64, records_len: usize) -> Vec<u8> {
    let mut array = Vec::with_capacity(8);
    let _ = rmp::encode::write_array_len(&mut array, count);
    let blob_len = array.len() + records_len;
    let mut head = Vec::with_capacity(HEAD_ROOM);
    let _ = rmp::encode::write_map_len(&mut head, 4);
    let _ = rmp::encode::write_str(&mut head, "type");
    let _ = rmp::encode::write_str(&mut head, "batch");
    let _ = rmp::encode::write_str(&mut head, "count");
    let _ = rmp::encode::write_uint(&mut head, u64::from(count));
    let _ = rmp::encode::write_str(&mut head, "bytes");
    let _ = rmp::encode::write_uint(&mut head, bytes);
    let _ = rmp::encode::write_str(&mut head, "records");
    let _ = rmp::encode::write_bin_len(&mut head, blob_len as u32);
    head.extend_from_slice(&array);
    head
}

fn write_error(e: std::io::Error) -> PluginError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        PluginError::cancelled("the output pipe was closed by the reading side")
    } else {
        PluginError::io(format!("writing to stdout: {e}"))
    }
}

/// A cloneable in-memory byte sink.
#[derive(Clone, Default)]
pub struct SharedBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuffer {
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameReader;
    use crate::message::Batch;

    /// A batch framed in place is the frame of the serde encoding of the same batch,
    /// whatever the forms of its count and byte size (fixint to uint 64).
    #[test]
    fn batches_framed_in_place_equal_the_serde_encoding() {
        for (count, size) in [
            (1u32, 0u64),
            (2, 9),
            (16, 200),
            (300, 70_000),
            (8_000, 1 << 40),
        ] {
            let (mut sink, buffer) = RecordSink::in_memory();
            let records: Vec<crate::value::Record> = (0..count)
                .map(|i| {
                    vec![
                        Value::Long(i64::from(i)),
                        Value::String("a".repeat(i as usize % 40)),
                    ]
                })
                .collect();
            for r in &records {
                let mut encoded = Vec::new();
                encode_record(r, &mut encoded);
                sink.push_encoded(&encoded, size).unwrap();
            }
            sink.flush_batch().unwrap();
            let mut batch = Batch::from_records(&records);
            batch.bytes = size * u64::from(count);
            let mut want = Vec::new();
            crate::frame::encode_frame(
                &rmp_serde::to_vec_named(&Message::Batch(batch)).unwrap(),
                &mut want,
            );
            let got = buffer.take();
            let frames = got.strip_prefix(crate::frame::PREAMBLE).unwrap();
            assert_eq!(frames, want, "{count} records of size {size}");
        }
    }

    /// Runs of records: (records in the run, length of each record's string).
    fn run_shapes() -> impl proptest::strategy::Strategy<Value = Vec<(usize, usize)>> {
        use proptest::prelude::*;
        // Strings of up to 300 KB fill a batch's megabyte within a few runs; runs of
        // up to 9,000 records cross its 8,192 records.
        proptest::collection::vec(
            prop_oneof![
                (1usize..5, 0usize..40),
                (1usize..4, 100_000usize..300_000),
                (1usize..9_000, 0usize..3),
                (0usize..1, 0usize..1),
            ],
            1..12,
        )
    }

    /// The frames of `runs` pushed by `push_encoded_run` and by `push_encoded`, record
    /// by record, through sinks of the same kind.
    fn pushed_both_ways(runs: &[(usize, usize)], jsonl: bool) -> (Vec<u8>, Vec<u8>) {
        let sink = || {
            let buffer = SharedBuffer::default();
            let writer = Box::new(buffer.clone()) as Box<dyn Write + Send>;
            let sink = if jsonl {
                RecordSink::jsonl(writer, Arc::default())
            } else {
                RecordSink::frames(FrameWriter::without_preamble(writer), true, Arc::default())
            };
            (sink, buffer)
        };
        let ((mut by_run, run_out), (mut one_by_one, single_out)) = (sink(), sink());
        let mut n = 0i64;
        for &(count, len) in runs {
            let (mut encoded, mut ends) = (Vec::new(), Vec::new());
            for _ in 0..count {
                n += 1;
                let record = [Value::Long(n), Value::String("x".repeat(len))];
                let start = encoded.len();
                encode_record(&record, &mut encoded);
                one_by_one
                    .push_encoded(&encoded[start..], record_byte_size(&record))
                    .unwrap();
                ends.push((encoded.len(), record_byte_size(&record)));
            }
            by_run.push_encoded_run(&encoded, &ends).unwrap();
        }
        by_run.finish().unwrap();
        one_by_one.finish().unwrap();
        (run_out.take(), single_out.take())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// A run pushed at once gives the frames (batch by batch, byte for byte) or
        /// lines that its records pushed one by one give, wherever the batches fill
        /// up (by records or by bytes).
        #[test]
        fn runs_give_the_batches_of_their_records_pushed_one_by_one(
            runs in run_shapes(),
            jsonl in proptest::bool::ANY,
        ) {
            let (by_run, one_by_one) = pushed_both_ways(&runs, jsonl);
            proptest::prop_assert!(by_run == one_by_one, "runs {runs:?}");
        }
    }

    /// The test above sees the batches differ when a run fills its batch before its
    /// last record and is copied in whole anyway.
    #[test]
    fn runs_that_fill_a_batch_early_are_split_as_their_records_would_be() {
        let (by_run, one_by_one) = pushed_both_ways(&[(4, 400_000), (9_000, 1)], false);
        assert_eq!(by_run, one_by_one);
        let batches = |frames: &[u8]| {
            let bytes = [crate::frame::PREAMBLE, frames].concat();
            let mut reader = FrameReader::new(bytes.as_slice());
            let mut counts = Vec::new();
            while let Some(m) = reader.next_message().unwrap() {
                if let Message::Batch(b) = m {
                    counts.push(b.count);
                }
            }
            counts
        };
        // 4 × 400 KB: the third record fills the first batch, the fourth opens the
        // next, which 8,191 of the 9,000 small records fill.
        assert_eq!(batches(&by_run), vec![3, 8_192, 809]);
    }

    #[test]
    fn sink_batches_and_ends_with_eos() {
        let (mut sink, buffer) = RecordSink::in_memory();
        for i in 0..(BATCH_MAX_RECORDS as i64 + 5) {
            sink.push(&[Value::Long(i)]).unwrap();
        }
        sink.checkpoint(serde_json::json!({"at": 1})).unwrap();
        sink.finish().unwrap();
        let bytes = buffer.take();
        let mut reader = FrameReader::new(bytes.as_slice());
        let mut kinds = Vec::new();
        let mut total = 0;
        while let Some(m) = reader.next_message().unwrap() {
            if let Message::Batch(b) = &m {
                total += b.decode().unwrap().len();
            }
            kinds.push(m.type_name());
        }
        assert_eq!(kinds, vec!["batch", "batch", "checkpoint", "eos"]);
        assert_eq!(total, BATCH_MAX_RECORDS as usize + 5);
    }

    #[test]
    fn a_readers_estimate_goes_out_as_progress_after_the_records_before_it() {
        let (mut sink, buffer) = RecordSink::in_memory();
        sink.push(&[Value::Long(1)]).unwrap();
        sink.estimate_total(40).unwrap();
        sink.finish().unwrap();
        let bytes = buffer.take();
        let mut reader = FrameReader::new(bytes.as_slice());
        let mut messages = Vec::new();
        while let Some(m) = reader.next_message().unwrap() {
            messages.push(m);
        }
        assert_eq!(messages[0].type_name(), "batch");
        assert_eq!(
            messages[1],
            Message::Progress(Progress {
                records: 1,
                bytes: 8,
                total_records: Some(40)
            })
        );
        assert_eq!(messages[2].type_name(), "eos");
    }

    #[test]
    fn cancelled_sink_refuses_records() {
        let (mut sink, _) = RecordSink::in_memory();
        sink.cancelled.store(true, Ordering::Relaxed);
        assert_eq!(
            sink.push(&[Value::Null]).unwrap_err().kind,
            crate::message::ErrorKind::Cancelled
        );
    }
}
