//! Modes that break one point each of the contract `streamport test-plugin` checks.
//! Set with `MISBEHAVE_MODE` (they apply to steps and tasks alike):
//!
//! | mode | what breaks |
//! |---|---|
//! | `no_version` | `--version` is an unknown command (exit 2) |
//! | `session_unserved` | step answers offer `session`, but `session` is an unknown command (exit 2) |
//! | `step_stdout_log` | every step prints a log line on stdout before its JSON answer |
//! | `records_array` | a reader's batches carry `records` as a MessagePack array, not a bin |
//! | `wrong_bytes` | a reader's batches say one byte more than their records' DataX size |
//! | `wrong_count` | a reader's batches say one record more than they hold |
//! | `bad_crc` | a reader's first batch frame has a wrong CRC-32 |
//! | `eos_mismatch` | a reader's `eos` says one record more than its batches held |
//! | `after_eos` | a reader sends `progress` after `eos` |
//! | `cancel_exit_0` | after `cancel` the plugin exits 0 |
//! | `accept_truncated` | a writer whose input ends without `eos` sends `done` |
//! | `send_batch` | a writer sends each batch back to the engine |
//! | `done_mismatch` | a writer's `done` says one record more than it received |

use std::io::Write;

use protocol::frame::{encode_frame, encode_message};
use protocol::message::{Batch, ErrorKind, ErrorMessage, Message};

use crate::Out;

/// The mode from `MISBEHAVE_MODE` (empty when unset).
pub fn mode() -> String {
    std::env::var("MISBEHAVE_MODE").unwrap_or_default()
}

/// The exit code after `cancel`: 1, as documented, unless the mode breaks it.
pub fn cancel_exit_code() -> i32 {
    if mode() == "cancel_exit_0" {
        0
    } else {
        1
    }
}

/// Sends an `error` frame and returns the exit code that goes with it.
pub fn fail(out: &mut Out, kind: ErrorKind, message: &str) -> i32 {
    let _ = out.write_message(&Message::Error(ErrorMessage {
        kind,
        retryable: false,
        message: format!("misbehave: {message}"),
    }));
    let _ = out.flush();
    if kind == ErrorKind::Config {
        2
    } else {
        1
    }
}

/// Writes a reader's batch, broken as `mode` says.
pub fn write_batch(out: &mut Out, mut batch: Batch, mode: &str) -> std::io::Result<()> {
    match mode {
        "wrong_bytes" => batch.bytes += 1,
        "wrong_count" => batch.count += 1,
        "records_array" | "bad_crc" => {
            let body = if mode == "records_array" {
                records_as_array(&batch)
            } else {
                encode_message(&Message::Batch(batch)).map_err(std::io::Error::other)?
            };
            let mut frame = Vec::new();
            encode_frame(&body, &mut frame);
            if mode == "bad_crc" {
                let last = frame.len() - 1;
                frame[last] ^= 0xff;
            }
            out.flush()?;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&frame)?;
            return stdout.flush();
        }
        _ => {}
    }
    out.write_message(&Message::Batch(batch))
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// A batch body whose `records` is the encoded array itself instead of a bin holding
/// it: the mistake a hand-written encoder makes.
fn records_as_array(batch: &Batch) -> Vec<u8> {
    let mut body = Vec::new();
    body.push(0x84); // a map of 4
    for (key, value) in [
        ("type", None),
        ("count", Some(u64::from(batch.count))),
        ("bytes", Some(batch.bytes)),
    ] {
        push_str(&mut body, key);
        match value {
            None => push_str(&mut body, "batch"),
            Some(v) => {
                body.push(0xcf);
                body.extend_from_slice(&v.to_be_bytes());
            }
        }
    }
    push_str(&mut body, "records");
    body.extend_from_slice(&batch.records);
    body
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    // Keys and "batch" are short: a fixstr.
    out.push(0xa0 | s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}
