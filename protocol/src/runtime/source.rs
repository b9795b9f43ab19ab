//! Where a writer task takes its records from, and where it reports.

use std::io::{BufRead, Read, Write};

use crate::frame::{batch_parts, check_hello, decode_message, FrameReader, FrameWriter};
use crate::jsonl::JsonlReader;
use crate::message::{decode_batch_into, Message, Output, Progress};
use crate::records::{visit_records, visit_records_lazy, LazyValueRef, RecordDecodeError};
use crate::runtime::sink::{DirtyFile, DirtyRecords};
use crate::runtime::PluginError;
use crate::value::{Record, Value, ValueRef};

/// Records per batch when reading JSON lines.
const JSONL_BATCH: usize = 1024;

enum Input {
    /// Frames; `engine_mode`: the stream ends at `eos` (the engine sends one task), else
    /// it ends at EOF and may hold several readers' `eos`.
    Frames {
        reader: FrameReader<Box<dyn Read + Send>>,
        engine_mode: bool,
        saw_hello: bool,
    },
    Jsonl(JsonlReader<Box<dyn BufRead + Send>>),
}

/// A batch as it arrived, not yet decoded.
enum RawBatch {
    /// A frame whose body is a batch in this crate's layout.
    Frame(FrameBatch),
    /// A batch decoded as a message (another layout).
    Message(crate::message::Batch),
    /// Records already decoded (JSON lines).
    Records(Vec<Record>),
}

impl RawBatch {
    /// The encoded records, their count and DataX bytes; `Err`: the records, decoded
    /// already.
    fn encoded(self) -> Result<(bytes::Bytes, u32, u64), Vec<Record>> {
        match self {
            RawBatch::Frame(frame) => Ok((
                frame.body.freeze().slice(frame.records_at..),
                frame.count,
                frame.bytes,
            )),
            RawBatch::Message(batch) => Ok((batch.records.into(), batch.count, batch.bytes)),
            RawBatch::Records(records) => Err(records),
        }
    }
}

struct FrameBatch {
    body: bytes::BytesMut,
    /// Where the encoded records start in `body` (they run to its end).
    records_at: usize,
    count: u32,
    bytes: u64,
}

/// Why a visitor of [`RecordSource::next_batch_each_lazy`] stopped: a text of the
/// record that is not UTF-8 (reported as a bad batch, as the eager decoder would),
/// or the writer's own error.
#[derive(Debug)]
pub enum VisitError {
    Decode(RecordDecodeError),
    Writer(PluginError),
}

impl From<RecordDecodeError> for VisitError {
    fn from(e: RecordDecodeError) -> Self {
        VisitError::Decode(e)
    }
}

impl From<PluginError> for VisitError {
    fn from(e: PluginError) -> Self {
        VisitError::Writer(e)
    }
}

/// How a batch's records are lent: checked, or with their text left unchecked.
trait Lending {
    type Value<'b>;
    fn decoded(value: &Value) -> Self::Value<'_>;
    fn visit<'b>(
        records: &'b [u8],
        visit: impl FnMut(&[Self::Value<'b>]) -> Result<(), VisitError>,
    ) -> Result<usize, VisitError>;
}

struct Checked;
struct Lazy;

impl Lending for Checked {
    type Value<'b> = ValueRef<'b>;
    fn decoded(value: &Value) -> ValueRef<'_> {
        value.as_value_ref()
    }
    fn visit<'b>(
        records: &'b [u8],
        visit: impl FnMut(&[ValueRef<'b>]) -> Result<(), VisitError>,
    ) -> Result<usize, VisitError> {
        visit_records(records, visit)
    }
}

impl Lending for Lazy {
    type Value<'b> = LazyValueRef<'b>;
    fn decoded(value: &Value) -> LazyValueRef<'_> {
        value.as_value_ref().into()
    }
    fn visit<'b>(
        records: &'b [u8],
        visit: impl FnMut(&[LazyValueRef<'b>]) -> Result<(), VisitError>,
    ) -> Result<usize, VisitError> {
        visit_records_lazy(records, visit)
    }
}

/// The records a writer task consumes, batch by batch.
pub struct RecordSource {
    input: Input,
    finished: bool,
    records: u64,
    bytes: u64,
    /// Totals of the streams already ended by `eos`.
    ended_records: u64,
    /// An `eos` was received: a standalone input that ends without one is a reader that
    /// did not finish, and nothing of it may be committed.
    saw_eos: bool,
    /// The batch lent out by [`RecordSource::next_batch_ref`], reused for the next.
    lent: Vec<Record>,
}

impl RecordSource {
    pub(crate) fn frames(reader: FrameReader<Box<dyn Read + Send>>, engine_mode: bool) -> Self {
        Self::new(Input::Frames {
            reader,
            engine_mode,
            saw_hello: engine_mode,
        })
    }

    pub(crate) fn jsonl(reader: Box<dyn BufRead + Send>) -> Self {
        Self::new(Input::Jsonl(JsonlReader::new(reader)))
    }

    fn new(input: Input) -> Self {
        Self {
            input,
            finished: false,
            records: 0,
            bytes: 0,
            ended_records: 0,
            saw_eos: false,
            lent: Vec::new(),
        }
    }

    /// A source over an in-memory stream as a standalone reader writes it: preamble,
    /// hello, frames (for tests and benchmarks).
    pub fn from_frame_bytes(bytes: impl AsRef<[u8]> + Send + 'static) -> Self {
        Self::frames(
            FrameReader::new(Box::new(std::io::Cursor::new(bytes))),
            false,
        )
    }

    /// A source over in-memory JSON lines, as `--input-format jsonl` reads stdin (for
    /// the fuzz targets).
    #[doc(hidden)]
    pub fn from_jsonl_bytes(bytes: impl AsRef<[u8]> + Send + 'static) -> Self {
        Self::jsonl(Box::new(std::io::Cursor::new(bytes)))
    }

    /// Records received so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The next batch of records; `Ok(None)` when the input has ended properly.
    pub fn next_batch(&mut self) -> Result<Option<Vec<Record>>, PluginError> {
        let mut batch = Vec::new();
        Ok(self.next_into(&mut batch)?.then_some(batch))
    }

    /// The next batch, lent until the next call. Cheaper than
    /// [`RecordSource::next_batch`]: each batch is decoded over the previous one,
    /// reusing its records and string buffers.
    pub fn next_batch_ref(&mut self) -> Result<Option<&[Record]>, PluginError> {
        let mut batch = std::mem::take(&mut self.lent);
        let more = self.next_into(&mut batch)?;
        self.lent = batch;
        Ok(more.then_some(self.lent.as_slice()))
    }

    /// Reads to the end of the input: `Err` when it holds more records (the writer
    /// stopped early), did not end properly, or carried an `error`.
    pub(crate) fn expect_end(&mut self) -> Result<(), PluginError> {
        let mut rest = Vec::new();
        while self.next_into(&mut rest)? {
            if !rest.is_empty() {
                return Err(PluginError::internal(format!(
                    "the writer returned after {} records with more input left",
                    self.records - rest.len() as u64
                )));
            }
        }
        Ok(())
    }

    /// Decodes the next batch over `out`; `false` when the input has ended properly.
    fn next_into(&mut self, out: &mut Vec<Record>) -> Result<bool, PluginError> {
        let Some(raw) = self.next_raw()? else {
            return Ok(false);
        };
        let (records, count, bytes) = match raw.encoded() {
            Ok(encoded) => encoded,
            Err(batch) => {
                *out = batch;
                return Ok(true);
            }
        };
        self.take_batch(&records, count, bytes, out)?;
        Ok(true)
    }

    /// Lends the records of the next batch one by one to `visit`, their text and bytes
    /// borrowed from the batch as it arrived (no string is copied: cheaper than
    /// [`RecordSource::next_batch_ref`] for a writer that only reads each value once).
    /// `Ok(None)` when the input has ended properly, else the batch's record count.
    /// An error of `visit` ends the batch and is returned as it is.
    pub fn next_batch_each(
        &mut self,
        mut visit: impl FnMut(&[ValueRef<'_>]) -> Result<(), PluginError>,
    ) -> Result<Option<usize>, PluginError> {
        self.next_batch_lent::<Checked>(|record| visit(record).map_err(VisitError::Writer))
    }

    /// [`RecordSource::next_batch_each`] with each string and decimal lent unchecked,
    /// as [`crate::records::visit_records_lazy`] lends them: `visit` must check every
    /// text of a record ([`crate::records::Text`]), which it can do while copying it.
    /// A text that is not UTF-8 ([`VisitError::Decode`]) ends the batch with the error
    /// [`RecordSource::next_batch_each`] would give.
    pub fn next_batch_each_lazy(
        &mut self,
        visit: impl FnMut(&[LazyValueRef<'_>]) -> Result<(), VisitError>,
    ) -> Result<Option<usize>, PluginError> {
        self.next_batch_lent::<Lazy>(visit)
    }

    fn next_batch_lent<L: Lending>(
        &mut self,
        mut visit: impl FnMut(&[L::Value<'_>]) -> Result<(), VisitError>,
    ) -> Result<Option<usize>, PluginError> {
        let Some(raw) = self.next_raw()? else {
            return Ok(None);
        };
        let decoded = self.records;
        let bad = |e: RecordDecodeError| {
            PluginError::protocol(format!("batch after record {decoded}: {e}"))
        };
        let fault = |e: VisitError| match e {
            VisitError::Decode(e) => bad(e),
            VisitError::Writer(e) => e,
        };
        let (records, count, bytes) = match raw.encoded() {
            Ok(encoded) => encoded,
            Err(batch) => {
                let mut values = Vec::new();
                for record in &batch {
                    values.clear();
                    values.extend(record.iter().map(L::decoded));
                    visit(&values).map_err(fault)?;
                }
                return Ok(Some(batch.len()));
            }
        };
        let visited = L::visit(&records, visit).map_err(fault)?;
        if visited != count as usize {
            return Err(bad(RecordDecodeError {
                offset: 0,
                message: format!("batch says {count} records but holds {visited}"),
            }));
        }
        self.records += visited as u64;
        self.bytes += bytes;
        Ok(Some(visited))
    }

    /// The next batch as it arrived; `None` when the input has ended properly.
    fn next_raw(&mut self) -> Result<Option<RawBatch>, PluginError> {
        if self.finished {
            return Ok(None);
        }
        if matches!(self.input, Input::Jsonl(_)) {
            return Ok(self.next_jsonl_batch_from_input()?.map(RawBatch::Records));
        }
        loop {
            let (reader, engine_mode, saw_hello) = match &mut self.input {
                Input::Jsonl(_) => return Ok(None),
                Input::Frames {
                    reader,
                    engine_mode,
                    saw_hello,
                } => (reader, *engine_mode, saw_hello),
            };
            let Some(body) = reader.next_frame()? else {
                if engine_mode {
                    return Err(PluginError::protocol(
                        "the input ended without eos: the stream was truncated",
                    ));
                }
                if !*saw_hello {
                    return Err(PluginError::protocol(
                        "the input ended before any hello: nothing was piped in",
                    ));
                }
                if self.records != self.ended_records || !self.saw_eos {
                    return Err(PluginError::protocol(format!(
                        "the input ended without eos after {} records: the reader did not finish \
                         (it failed or was killed); nothing is committed",
                        self.records - self.ended_records
                    )));
                }
                self.finished = true;
                return Ok(None);
            };
            // A batch is decoded straight from its frame when it can be.
            if *saw_hello {
                if let Some(batch) = batch_parts(&body) {
                    return Ok(Some(RawBatch::Frame(FrameBatch {
                        records_at: body.len() - batch.records.len(),
                        count: batch.count,
                        bytes: batch.bytes,
                        body,
                    })));
                }
            }
            let message = decode_message(&body)?;
            match message {
                Message::Hello(hello) if !*saw_hello => {
                    check_hello(&hello)?;
                    *saw_hello = true;
                }
                _ if !*saw_hello => {
                    return Err(PluginError::protocol(format!(
                        "expected hello first, got {}",
                        message.type_name()
                    )))
                }
                Message::Batch(batch) => return Ok(Some(RawBatch::Message(batch))),
                Message::Eos(eos) => {
                    let received = self.records - self.ended_records;
                    if eos.records != received {
                        return Err(PluginError::protocol(format!(
                            "eos says {} records but {received} arrived",
                            eos.records
                        )));
                    }
                    self.ended_records = self.records;
                    self.saw_eos = true;
                    if engine_mode {
                        self.finished = true;
                        return Ok(None);
                    }
                }
                Message::Cancel(cancel) => {
                    return Err(PluginError::cancelled(format!(
                        "cancelled by the engine: {}",
                        cancel.reason
                    )))
                }
                Message::Error(e) => return Err(PluginError::from(e).context("the reader failed")),
                // A direct pipe from a reader carries its checkpoints, progress and logs:
                // they are the engine's business, and a writer ignores them.
                Message::Checkpoint(_)
                | Message::Progress(_)
                | Message::Log(_)
                | Message::Dirty(_) => {}
                other => {
                    return Err(PluginError::protocol(format!(
                        "unexpected {} message in a writer's input",
                        other.type_name()
                    )))
                }
            }
        }
    }

    /// Decodes a batch's records over `out` and counts them.
    fn take_batch(
        &mut self,
        records: &[u8],
        count: u32,
        bytes: u64,
        out: &mut Vec<Record>,
    ) -> Result<(), PluginError> {
        decode_batch_into(records, count, out).map_err(|e| {
            PluginError::protocol(format!("batch after record {}: {e}", self.records))
        })?;
        self.records += out.len() as u64;
        self.bytes += bytes;
        Ok(())
    }

    fn next_jsonl_batch_from_input(&mut self) -> Result<Option<Vec<Record>>, PluginError> {
        let Input::Jsonl(reader) = &mut self.input else {
            return Ok(None);
        };
        let mut batch = Vec::with_capacity(JSONL_BATCH);
        while batch.len() < JSONL_BATCH {
            match reader.next_record() {
                Ok(Some(record)) => batch.push(record),
                Ok(None) => {
                    self.finished = true;
                    break;
                }
                Err(e) => return Err(PluginError::data(format!("input {e}"))),
            }
        }
        self.records += batch.len() as u64;
        Ok(if batch.is_empty() { None } else { Some(batch) })
    }
}

/// What a writer task reports besides its records: dirty records, printed output,
/// progress.
pub struct WriterOutput {
    frames: Option<FrameWriter<Box<dyn Write + Send>>>,
    engine_mode: bool,
    dirty: DirtyRecords,
    /// When a `progress` was last pushed out to the engine.
    progress_sent: Option<std::time::Instant>,
}

/// How often a writer's `progress` is sent to the engine at most.
const PROGRESS_FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

impl WriterOutput {
    pub(crate) fn engine(frames: FrameWriter<Box<dyn Write + Send>>) -> Self {
        Self {
            frames: Some(frames),
            engine_mode: true,
            dirty: DirtyRecords::default(),
            progress_sent: None,
        }
    }

    /// Standalone: dirty records go to stderr, output to stdout. No error limit until
    /// [`with_error_limit`](Self::with_error_limit).
    pub fn standalone() -> Self {
        Self {
            frames: None,
            engine_mode: false,
            dirty: DirtyRecords::default(),
            progress_sent: None,
        }
    }

    /// Fails the task once more than `limit` records are dirty (as the engine's
    /// `errorLimit.record`: `limit` dirty records pass, one more fails).
    pub fn with_error_limit(mut self, limit: u64) -> Self {
        self.dirty.limit = Some(limit);
        self
    }

    /// Keeps every dirty record whole in `file` (standalone `--dirty-file`).
    pub fn with_dirty_file(mut self, file: DirtyFile) -> Self {
        self.dirty.file = Some(file);
        self
    }

    /// Reports a record that could not be written, with the reason (naming the column).
    /// Fails when the error limit is exceeded: the writer must stop and commit nothing.
    pub fn dirty(&mut self, record: &[Value], reason: &str) -> Result<(), PluginError> {
        self.dirty
            .report(self.engine_mode, &mut self.frames.as_mut(), record, reason)
    }

    /// `Err` when more records are dirty than the error limit allows.
    pub fn check_error_limit(&self) -> Result<(), PluginError> {
        self.dirty.check()
    }

    /// Dirty records reported so far.
    pub fn dirty_count(&self) -> u64 {
        self.dirty.count
    }

    /// Prints bytes on the user's terminal: the engine's stdout in engine mode, stdout
    /// in standalone mode.
    pub fn output(&mut self, data: &[u8]) -> Result<(), PluginError> {
        match &mut self.frames {
            Some(w) => Ok(w.write_message(&Message::Output(Output {
                data: data.to_vec(),
            }))?),
            None => std::io::stdout()
                .lock()
                .write_all(data)
                .map_err(|e| PluginError::io(format!("writing to stdout: {e}"))),
        }
    }

    /// Reports cumulative progress (engine mode only): the records written so far
    /// (the engine shows the job's written records from it, and `done` gives the
    /// final count). Cheap to call per batch: at most one `progress` a quarter second
    /// is sent, and sent at once; the calls in between are dropped.
    pub fn progress(&mut self, records: u64, bytes: u64) -> Result<(), PluginError> {
        if let Some(w) = &mut self.frames {
            if self
                .progress_sent
                .is_some_and(|t| t.elapsed() < PROGRESS_FLUSH_EVERY)
            {
                return Ok(());
            }
            w.write_message(&Message::Progress(Progress {
                records,
                bytes,
                total_records: None,
            }))?;
            w.flush()
                .map_err(|e| PluginError::io(format!("writing to stdout: {e}")))?;
            self.progress_sent = Some(std::time::Instant::now());
        }
        Ok(())
    }

    pub(crate) fn send(&mut self, message: &Message) -> Result<(), PluginError> {
        if let Some(w) = &mut self.frames {
            w.write_message(message)?;
            w.flush()
                .map_err(|e| PluginError::io(format!("writing to stdout: {e}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{encode_frame, encode_message, PREAMBLE};
    use crate::message::{Batch, Eos, ErrorKind, ErrorMessage, Hello};
    use crate::Role;

    fn stream(messages: &[Message]) -> Vec<u8> {
        let mut bytes = PREAMBLE.to_vec();
        let hello = Message::Hello(Hello::new(Role::Reader, "test", "0"));
        for m in std::iter::once(&hello).chain(messages) {
            encode_frame(&encode_message(m).unwrap(), &mut bytes);
        }
        bytes
    }

    fn drain(source: &mut RecordSource) -> Result<u64, PluginError> {
        while source.next_batch()?.is_some() {}
        Ok(source.records())
    }

    fn batch(n: i64) -> Message {
        let records: Vec<Vec<Value>> = (0..n).map(|i| vec![Value::Long(i)]).collect();
        Message::Batch(Batch::from_records(&records))
    }

    fn eos(records: u64) -> Message {
        Message::Eos(Eos { records, bytes: 0 })
    }

    #[test]
    fn a_standalone_input_is_whole_only_with_eos() {
        let mut whole = RecordSource::from_frame_bytes(stream(&[batch(3), eos(3)]));
        assert_eq!(drain(&mut whole).unwrap(), 3);
        let mut empty = RecordSource::from_frame_bytes(stream(&[eos(0)]));
        assert_eq!(drain(&mut empty).unwrap(), 0);
        // A reader that failed (or was killed) after its hello: EOF without eos must not
        // look like an empty window.
        let e = drain(&mut RecordSource::from_frame_bytes(stream(&[]))).unwrap_err();
        assert!(e.message.contains("without eos"), "{}", e.message);
        let e = drain(&mut RecordSource::from_frame_bytes(stream(&[batch(2)]))).unwrap_err();
        assert!(
            e.message.contains("without eos after 2 records"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_readers_error_fails_the_writer_even_after_eos() {
        let error = Message::Error(ErrorMessage {
            kind: ErrorKind::Service,
            retryable: false,
            message: "prepare: the stream is disabled".into(),
        });
        for messages in [vec![error.clone()], vec![batch(1), eos(1), error]] {
            let e = drain(&mut RecordSource::from_frame_bytes(stream(&messages))).unwrap_err();
            assert_eq!(
                e.message,
                "the reader failed: prepare: the stream is disabled"
            );
        }
    }

    #[test]
    fn the_error_limit_allows_exactly_n_dirty_records() {
        let record = [Value::String("x".into())];
        let mut strict = WriterOutput::standalone().with_error_limit(0);
        let e = strict.dirty(&record, "bad").unwrap_err();
        assert!(
            e.message.contains("error limit exceeded: 1 dirty records"),
            "{}",
            e.message
        );
        let mut two = WriterOutput::standalone().with_error_limit(2);
        two.dirty(&record, "bad").unwrap();
        two.dirty(&record, "bad").unwrap();
        assert!(two.check_error_limit().is_ok());
        assert!(two.dirty(&record, "bad").is_err());
        assert!(two.check_error_limit().is_err());
        let mut unlimited = WriterOutput::standalone();
        for _ in 0..5 {
            unlimited.dirty(&record, "bad").unwrap();
        }
    }

    #[test]
    fn the_dirty_file_keeps_records_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dirty.jsonl");
        let mut out = WriterOutput::standalone()
            .with_error_limit(1)
            .with_dirty_file(DirtyFile::create(&path).unwrap());
        let big = "y".repeat(100_000);
        out.dirty(&[Value::String(big.clone())], "too long")
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["record"][0].as_str().unwrap().len(), big.len());
        assert_eq!(line["reason"], "too long");
    }

    #[test]
    fn a_writers_progress_reaches_the_engine_at_once_and_at_most_four_times_a_second() {
        let buffer = crate::runtime::SharedBuffer::default();
        let frames = FrameWriter::new(Box::new(buffer.clone()) as Box<dyn Write + Send>).unwrap();
        let mut out = WriterOutput::engine(frames);
        assert_eq!(buffer.take(), PREAMBLE);
        let progress = |bytes: &[u8]| -> Vec<u64> {
            let mut body = PREAMBLE.to_vec();
            body.extend_from_slice(bytes);
            let mut reader = crate::frame::FrameReader::new(body.as_slice());
            let mut seen = Vec::new();
            while let Ok(Some(m)) = reader.next_message() {
                if let Message::Progress(p) = m {
                    seen.push(p.records);
                }
            }
            seen
        };
        out.progress(10, 100).unwrap();
        // Sent (flushed) at once, not left in the output buffer.
        assert_eq!(progress(&buffer.take()), [10]);
        for n in 11..1000 {
            out.progress(n, 100).unwrap();
        }
        assert!(
            progress(&buffer.take()).is_empty(),
            "more than one in 250 ms"
        );
        std::thread::sleep(PROGRESS_FLUSH_EVERY);
        out.progress(1000, 100).unwrap();
        assert_eq!(progress(&buffer.take()), [1000]);
    }
}
