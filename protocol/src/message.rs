//! The messages exchanged over a plugin's stdin and stdout.
//!
//! Every frame body is one [`Message`], a MessagePack map whose `type` key names the
//! variant (`"hello"`, `"batch"`, …) and whose other keys are the variant's fields
//! (unknown keys are ignored, so fields can be added compatibly). Directions:
//! E = engine, R = reader task, W = writer task, P = either plugin. A reader's output
//! stream has the same shape as the engine's stream to a writer, so
//! `reader … | writer …` works with no engine in between.
//!
//! A task stream in engine mode:
//!
//! ```text
//! engine → reader: preamble, hello, configure                      [cancel]
//! reader → engine: preamble, hello, (batch | checkpoint | dirty | progress | log)*, eos
//! engine → writer: preamble, hello, configure, (batch | checkpoint)*, eos   [cancel]
//! writer → engine: preamble, hello, (dirty | progress | log | output)*, done
//! ```
//!
//! On failure a plugin sends `error` instead of `eos`/`done` and exits 1. In a direct
//! pipe (no engine) a reader may also send `error` after `eos` (its `post` failed); the
//! writer reads to EOF and commits only a stream that ended with `eos` and no `error`.

use serde::{Deserialize, Serialize};

use crate::records::{
    decode_record, decode_records_into, encode_record, encode_records, RecordDecodeError,
};
use crate::value::{record_byte_size, Record, Value};

/// The protocol's name, sent in `hello`.
pub const PROTOCOL_NAME: &str = "streamport";
/// This protocol version. Peers are compatible when their versions caret-match
/// (same major version; for 0.x the same minor).
pub const PROTOCOL_VERSION: &str = "1.0.0";

/// One protocol message. See the module docs for the order of a stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// P→E and E→P, and R→W in a direct pipe. **The first message each way**, sent
    /// without waiting for the peer's. A peer whose `version` is not compatible with
    /// ours is refused with [`FrameError::Incompatible`](crate::FrameError).
    Hello(Hello),
    /// E→P, the second message to a task. Carries the task's configuration (one entry
    /// of the `split` output) and the job context. A standalone plugin has no
    /// `configure`: it reads its configuration from `--config`.
    Configure(Configure),
    /// R→E, E→W. Records, many per frame, in order.
    Batch(Batch),
    /// P→E. A record the plugin could not process, with the reason. It counts against
    /// the job's error limit; the engine writes it to the dirty-record file.
    Dirty(Dirty),
    /// R→E (and E→W, in order with the batches). An opaque resumable position of the
    /// reader, reported to the reader's `post` after the writer has committed.
    Checkpoint(Checkpoint),
    /// P→E. Cumulative counters of the task, for progress display.
    Progress(Progress),
    /// P→E. A log line the engine should show with the task's prefix (plugins normally
    /// log to stderr; this is for lines that belong in the job's summary).
    Log(Log),
    /// W→E. Bytes the writer wants printed on the engine's stdout (a writer's stdout
    /// belongs to the protocol).
    Output(Output),
    /// R→E, E→W. **The last message of a reader's stream**: the task read everything.
    /// Carries totals the receiver checks against what it received. EOF without `eos`
    /// is a truncated stream and fails the task.
    Eos(Eos),
    /// W→E. **The writer's last message**: everything received was handled. The task
    /// succeeds only now. `report` goes to the writer's `post` (e.g. multipart uploads).
    Done(Done),
    /// E→P. Stop now: the job failed elsewhere, a limit was exceeded or the user
    /// interrupted. The plugin stops, sends nothing more and exits.
    Cancel(Cancel),
    /// P→E. A fatal error; the plugin exits 1 after sending it.
    Error(ErrorMessage),
}

impl Message {
    /// The `type` name of this message, for errors and logs.
    pub fn type_name(&self) -> &'static str {
        match self {
            Message::Hello(_) => "hello",
            Message::Configure(_) => "configure",
            Message::Batch(_) => "batch",
            Message::Dirty(_) => "dirty",
            Message::Checkpoint(_) => "checkpoint",
            Message::Progress(_) => "progress",
            Message::Log(_) => "log",
            Message::Output(_) => "output",
            Message::Eos(_) => "eos",
            Message::Done(_) => "done",
            Message::Cancel(_) => "cancel",
            Message::Error(_) => "error",
        }
    }
}

/// Who is speaking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Engine,
    Reader,
    Writer,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Engine => "engine",
            Role::Reader => "reader",
            Role::Writer => "writer",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`PROTOCOL_NAME`].
    pub protocol: String,
    /// The sender's protocol version (semver).
    pub version: String,
    pub role: Role,
    /// Name of the plugin (or `engine`), e.g. `reader-otsstream`.
    pub name: String,
    /// Version of the plugin or engine program.
    pub program_version: String,
    /// The largest frame body the sender will accept.
    pub max_frame_bytes: u32,
}

impl Hello {
    pub fn new(role: Role, name: &str, program_version: &str) -> Self {
        Self {
            protocol: PROTOCOL_NAME.to_owned(),
            version: PROTOCOL_VERSION.to_owned(),
            role,
            name: name.to_owned(),
            program_version: program_version.to_owned(),
            max_frame_bytes: crate::frame::DEFAULT_MAX_FRAME_BYTES as u32,
        }
    }
}

/// What a task knows of its job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobContext {
    /// Unique per job run.
    #[serde(default)]
    pub job_id: String,
    /// Hex digest of the job's resolved configuration (both plugins' parameters after
    /// variable substitution): the same window gives the same fingerprint, so writers
    /// can derive stable object names from it.
    #[serde(default)]
    pub fingerprint: String,
    /// The job's time zone (IANA name such as `Asia/Shanghai`, or `UTC`).
    #[serde(default)]
    pub time_zone: String,
    /// This task's index in the split output, from 0.
    #[serde(default)]
    pub task_index: u32,
    /// How many tasks the job has.
    #[serde(default)]
    pub task_count: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Configure {
    /// The task configuration: one element of the plugin's `split` output.
    pub task: serde_json::Value,
    #[serde(default)]
    pub context: JobContext,
}

/// Records in their MessagePack encoding ([`crate::records`]), kept encoded so the
/// engine forwards batches without decoding every value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Number of records.
    pub count: u32,
    /// DataX byte size of the records ([`crate::value::Value::byte_size`]).
    pub bytes: u64,
    /// The records: an array of records in the [`crate::records`] encoding.
    #[serde(with = "serde_bytes")]
    pub records: Vec<u8>,
}

impl Batch {
    pub fn from_records<R: AsRef<[Value]>>(records: &[R]) -> Self {
        let mut encoded = Vec::new();
        encode_records(records, &mut encoded);
        Self {
            count: records.len() as u32,
            bytes: records.iter().map(|r| record_byte_size(r.as_ref())).sum(),
            records: encoded,
        }
    }

    /// Decodes the records and checks their number against `count`.
    pub fn decode(&self) -> Result<Vec<Record>, RecordDecodeError> {
        let mut records = Vec::new();
        decode_batch_into(&self.records, self.count, &mut records)?;
        Ok(records)
    }
}

/// Decodes a batch's encoded records over `out` (see
/// [`crate::records::decode_records_into`]) and checks their number against the
/// batch's `count`.
pub fn decode_batch_into(
    records: &[u8],
    count: u32,
    out: &mut Vec<Record>,
) -> Result<(), RecordDecodeError> {
    decode_records_into(records, out)?;
    if out.len() != count as usize {
        return Err(RecordDecodeError {
            offset: 0,
            message: format!("batch says {count} records but holds {}", out.len()),
        });
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dirty {
    /// The record, in the [`crate::records`] encoding of one record.
    #[serde(with = "serde_bytes")]
    pub record: Vec<u8>,
    /// Why it was rejected, naming the column where there is one.
    pub reason: String,
}

impl Dirty {
    pub fn new(record: &[Value], reason: impl Into<String>) -> Self {
        let mut encoded = Vec::new();
        encode_record(record, &mut encoded);
        Self {
            record: encoded,
            reason: reason.into(),
        }
    }

    pub fn decode(&self) -> Result<Record, RecordDecodeError> {
        decode_record(&self.record)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Opaque to everyone but the plugin that made it.
    pub state: serde_json::Value,
}

/// A writer's progress counts what it has written (the engine shows it as the job's
/// written records); a reader's what it has read. A reader that can estimate how many
/// records its task holds sends `total_records`, and the engine shows an ETA.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Records handled so far by this task.
    pub records: u64,
    /// DataX bytes handled so far by this task.
    pub bytes: u64,
    /// Readers: the estimated number of records the task reads in all, when known.
    /// Absent from the frame when unknown (older peers ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_records: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Log {
    /// `error`, `warn`, `info`, `debug`.
    pub level: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Output {
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Eos {
    /// Records in every batch of the stream.
    pub records: u64,
    /// DataX bytes in every batch of the stream.
    pub bytes: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Done {
    /// Records the writer received.
    pub records: u64,
    /// Records the writer wrote (received minus dirty).
    pub written: u64,
    /// Records the writer reported dirty.
    pub dirty: u64,
    /// What the writer's `post` needs to commit this task's output.
    #[serde(default)]
    pub report: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cancel {
    pub reason: String,
}

/// The class of a fatal error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The configuration is wrong (exit code 2 in standalone commands).
    Config,
    /// Credentials were refused.
    Auth,
    /// The service answered with an error.
    Service,
    /// Network or local I/O failed.
    Io,
    /// The data could not be handled.
    Data,
    /// The peer broke the protocol.
    Protocol,
    /// The task was cancelled.
    Cancelled,
    /// A bug: a panic or a broken invariant.
    Internal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorMessage {
    pub kind: ErrorKind,
    /// Whether running the task again may succeed.
    pub retryable: bool,
    /// What failed, naming the operation and the object; never a secret.
    pub message: String,
}
