//! Watching one task's output stream and judging every frame against the protocol.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use protocol::frame::{check_hello, decode_message};
use protocol::message::{decode_batch_into, ErrorKind, ErrorMessage, Hello, Message};
use protocol::value::record_byte_size;
use protocol::Role;
use serde::de::{Deserializer, Visitor};
use serde::Deserialize;

use super::process::{ended, Next, Session};

/// The largest batch frame advised (the runtime's batches stay near 1 MiB); a bigger
/// one is valid up to the frame limit but is reported in the detail line.
pub const ADVISED_BATCH_FRAME: usize = 4 * 1024 * 1024;

/// How a task stream ended.
#[derive(Debug)]
pub enum Terminal {
    Eos { records: u64, bytes: u64 },
    Done(protocol::message::Done),
    Error(ErrorMessage),
}

/// Everything seen of one task.
#[derive(Debug, Default)]
pub struct Observation {
    pub frames: usize,
    /// The stream broke (garbage, a bad CRC, a frame over the limit, cut inside a frame).
    pub broken: Option<String>,
    /// Nothing at all was written on stdout.
    pub empty: bool,
    /// The first frame as a hello, or why it is not an acceptable one.
    pub hello: Option<Result<Hello, String>>,
    /// Frames that are not messages, or messages this role may not send.
    pub bad_messages: Vec<String>,
    pub batches: u64,
    pub records: u64,
    pub bytes: u64,
    pub largest_batch_frame: usize,
    pub batch_problems: Vec<String>,
    pub dirty: u64,
    pub checkpoints: Vec<serde_json::Value>,
    pub progress_problems: Vec<String>,
    pub terminal: Option<Terminal>,
    /// What came after `eos`/`done`/`error`.
    pub after_terminal: Vec<String>,
    /// No frame within the timeout.
    pub timed_out: bool,
    /// How the plugin exited (`None`: it was killed after the timeout).
    pub status: Option<ExitStatus>,
    pub stderr_tail: String,
}

impl Observation {
    /// How the plugin ended, in words.
    pub fn ended(&self, wait: Duration) -> String {
        match &self.status {
            Some(s) => ended(s),
            None => format!("was still running {} s later (killed)", wait.as_secs_f64()),
        }
    }

    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// " (stderr: …)" or "".
    pub fn stderr_note(&self) -> String {
        if self.stderr_tail.is_empty() {
            String::new()
        } else {
            format!(" (stderr: {})", self.stderr_tail)
        }
    }

    pub fn sent_terminal(&self, name: &str) -> bool {
        matches!(
            (&self.terminal, name),
            (Some(Terminal::Eos { .. }), "eos")
                | (Some(Terminal::Done(_)), "done")
                | (Some(Terminal::Error(_)), "error")
        )
    }
}

/// `error` in words: "error (kind config, not retryable): message".
pub fn describe_error(e: &ErrorMessage) -> String {
    format!(
        "error (kind {}, {}): {}",
        kind_name(e.kind),
        if e.retryable {
            "retryable"
        } else {
            "not retryable"
        },
        e.message
    )
}

pub fn kind_name(kind: ErrorKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{kind:?}"))
}

/// Reads the task's stream until it ends (or nothing comes for `timeout`), then waits
/// up to `exit_wait` for the process to exit.
pub fn observe(
    session: &mut Session,
    role: Role,
    timeout: Duration,
    exit_wait: Duration,
    deadline: Option<Instant>,
) -> Observation {
    let mut o = Observation::default();
    let mut last_progress = (0u64, 0u64);
    loop {
        let wait = match deadline {
            Some(d) => timeout.min(d.saturating_duration_since(Instant::now())),
            None => timeout,
        };
        match session.next(wait) {
            Next::Frame(body) => {
                o.frames += 1;
                judge_frame(&mut o, role, &body, &mut last_progress);
            }
            Next::Broken(e) => {
                o.empty = o.frames == 0 && e.starts_with(super::process::WROTE_NOTHING);
                if o.terminal.is_some() {
                    o.after_terminal
                        .push(format!("bytes that are not a frame: {e}"));
                } else {
                    o.broken = Some(e);
                }
                break;
            }
            Next::End => break,
            Next::Timeout => {
                o.timed_out = true;
                break;
            }
        }
    }
    let wait = if o.timed_out {
        Duration::from_millis(100)
    } else {
        exit_wait
    };
    o.status = session.wait(wait);
    o.stderr_tail = session.stderr_tail();
    o
}

fn judge_frame(o: &mut Observation, role: Role, body: &[u8], last_progress: &mut (u64, u64)) {
    let message = match decode_message(body) {
        Ok(m) => m,
        Err(_) if o.frames > 1 && batch_records_not_bin(o, body) => return,
        Err(e) => {
            let what = format!("frame {} is not a protocol message: {e}", o.frames);
            if o.frames == 1 {
                o.hello = Some(Err(what));
            } else {
                o.bad_messages.push(what);
            }
            return;
        }
    };
    if o.frames == 1 {
        o.hello = Some(judge_hello(message, role));
        return;
    }
    if let Some(t) = &o.terminal {
        let after = match t {
            Terminal::Eos { .. } => "eos",
            Terminal::Done(_) => "done",
            Terminal::Error(_) => "error",
        };
        o.after_terminal
            .push(format!("{} after {after}", message.type_name()));
        return;
    }
    let allowed: &[&str] = match role {
        Role::Reader => &[
            "batch",
            "checkpoint",
            "dirty",
            "progress",
            "log",
            "eos",
            "error",
        ],
        _ => &["dirty", "progress", "log", "output", "done", "error"],
    };
    if !allowed.contains(&message.type_name()) {
        o.bad_messages.push(format!(
            "frame {}: a {} may not send {} (allowed: {})",
            o.frames,
            role.name(),
            message.type_name(),
            allowed.join(", ")
        ));
        return;
    }
    match message {
        Message::Batch(batch) => judge_batch(o, body, batch),
        Message::Dirty(d) => {
            o.dirty += 1;
            if let Err(e) = d.decode() {
                o.bad_messages
                    .push(format!("frame {}: dirty record: {e}", o.frames));
            }
        }
        Message::Checkpoint(c) => o.checkpoints.push(c.state),
        Message::Progress(p) => {
            if p.records < last_progress.0 || p.bytes < last_progress.1 {
                o.progress_problems.push(format!(
                    "progress went back from {} records / {} bytes to {} / {} (the counters are cumulative)",
                    last_progress.0, last_progress.1, p.records, p.bytes
                ));
            }
            *last_progress = (p.records, p.bytes);
        }
        Message::Eos(eos) => {
            o.terminal = Some(Terminal::Eos {
                records: eos.records,
                bytes: eos.bytes,
            });
        }
        Message::Done(done) => o.terminal = Some(Terminal::Done(done)),
        Message::Error(e) => o.terminal = Some(Terminal::Error(e)),
        _ => {}
    }
}

fn judge_hello(message: Message, role: Role) -> Result<Hello, String> {
    let Message::Hello(hello) = message else {
        return Err(format!(
            "the first frame is {}, not hello",
            message.type_name()
        ));
    };
    check_hello(&hello).map_err(|e| format!("hello: {e}"))?;
    if hello.role != role {
        return Err(format!(
            "hello says role {}, but this plugin is tested as a {}",
            hello.role.name(),
            role.name()
        ));
    }
    if hello.name.trim().is_empty() {
        return Err("hello has an empty name".to_owned());
    }
    if hello.program_version.trim().is_empty() {
        return Err("hello has an empty program_version".to_owned());
    }
    if hello.max_frame_bytes < 1024 {
        return Err(format!(
            "hello says max_frame_bytes {}: too small for any batch",
            hello.max_frame_bytes
        ));
    }
    Ok(hello)
}

/// The `records` field of a batch as it is on the wire.
#[derive(Debug)]
enum RecordsField {
    Bin,
    Other(&'static str),
}

impl<'de> Deserialize<'de> for RecordsField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RecordsField;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("the records field")
            }
            fn visit_bytes<E>(self, _: &[u8]) -> Result<RecordsField, E> {
                Ok(RecordsField::Bin)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RecordsField, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(RecordsField::Other("an array"))
            }
            fn visit_str<E>(self, _: &str) -> Result<RecordsField, E> {
                Ok(RecordsField::Other("a string"))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RecordsField, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(RecordsField::Other("a map"))
            }
            fn visit_unit<E>(self) -> Result<RecordsField, E> {
                Ok(RecordsField::Other("nil"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<RecordsField, E> {
                Ok(RecordsField::Other("an integer"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<RecordsField, E> {
                Ok(RecordsField::Other("an integer"))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct RawBatch {
    records: RecordsField,
}

#[derive(Deserialize)]
struct TypedRawBatch {
    #[serde(rename = "type")]
    kind: String,
    records: RecordsField,
}

/// A batch whose `records` is not a bin (which `decode_message` refuses): reports it
/// as such and returns true.
fn batch_records_not_bin(o: &mut Observation, body: &[u8]) -> bool {
    match rmp_serde::from_slice::<TypedRawBatch>(body) {
        Ok(TypedRawBatch {
            kind,
            records: RecordsField::Other(what),
        }) if kind == "batch" => {
            o.batches += 1;
            o.batch_problems.push(records_not_bin(o.frames, what));
            true
        }
        _ => false,
    }
}

fn records_not_bin(frame: usize, what: &str) -> String {
    format!(
        "frame {frame}: batch field records is {what}; it must be a MessagePack bin holding \
         the encoded array of records"
    )
}

fn judge_batch(o: &mut Observation, body: &[u8], batch: protocol::message::Batch) {
    let n = o.frames;
    o.batches += 1;
    o.records += u64::from(batch.count);
    o.bytes += batch.bytes;
    o.largest_batch_frame = o.largest_batch_frame.max(body.len());
    match rmp_serde::from_slice::<RawBatch>(body) {
        Ok(RawBatch {
            records: RecordsField::Bin,
        }) => {}
        Ok(RawBatch {
            records: RecordsField::Other(what),
        }) => {
            o.batch_problems.push(records_not_bin(n, what));
            return;
        }
        Err(e) => {
            o.batch_problems
                .push(format!("frame {n}: batch does not decode: {e}"));
            return;
        }
    }
    let mut records = Vec::new();
    if let Err(e) = decode_batch_into(&batch.records, batch.count, &mut records) {
        o.batch_problems
            .push(format!("frame {n}: batch records: {e}"));
        return;
    }
    let size: u64 = records.iter().map(|r| record_byte_size(r)).sum();
    if size != batch.bytes {
        o.batch_problems.push(format!(
            "frame {n}: batch says bytes {} but its {} records have a DataX byte size of {size}",
            batch.bytes, batch.count
        ));
    }
}
