//! The engine's log on stderr: one line per event with a timestamp and level, every
//! line passed through the [secret redactor](crate::secrets), and a live progress line
//! (on a terminal) that other lines do not garble. The timestamp is the plugins' one
//! ([`protocol::logfmt`]): RFC 3339 in the machine's zone with milliseconds and offset.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static LOCK: Mutex<()> = Mutex::new(());
static LIVE_LINE_SHOWN: AtomicBool = AtomicBool::new(false);
static QUIET: AtomicBool = AtomicBool::new(false);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warn,
    Info,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
        }
    }
}

/// Suppresses info lines (warnings and errors still show).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Writes one log line.
pub fn line(level: Level, message: &str) {
    if level == Level::Info && QUIET.load(Ordering::Relaxed) {
        return;
    }
    write_line(level, message);
}

/// Writes an info line even in quiet mode (the summary).
pub fn always(message: &str) {
    write_line(Level::Info, message);
}

fn write_line(level: Level, message: &str) {
    write_raw(&format_lines(level, message));
}

/// The text of one event: every line of the (redacted) message with the timestamp and
/// level.
fn format_lines(level: Level, message: &str) -> String {
    let now = protocol::logfmt::log_timestamp();
    let text = crate::secrets::global().redact(message);
    let mut out = String::with_capacity(text.len() + 40);
    for l in text.lines() {
        out.push_str(&format!("{now} {} {l}\n", level.name()));
    }
    out
}

/// Writes a line from a plugin's stderr, prefixed with its task, as it is.
pub fn plugin_line(prefix: &str, message: &str) {
    let text = crate::secrets::global().redact(message);
    write_raw(&format!("{prefix} {text}\n"));
}

fn write_raw(text: &str) {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut err = std::io::stderr().lock();
    if LIVE_LINE_SHOWN.swap(false, Ordering::Relaxed) {
        let _ = err.write_all(b"\r\x1b[K");
    }
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// Shows (or replaces) the live progress line on a terminal.
pub fn live(text: &str) {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(format!("\r\x1b[K{text}").as_bytes());
    let _ = err.flush();
    LIVE_LINE_SHOWN.store(true, Ordering::Relaxed);
}

/// Removes the live progress line.
pub fn clear_live() {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if LIVE_LINE_SHOWN.swap(false, Ordering::Relaxed) {
        let _ = std::io::stderr().lock().write_all(b"\r\x1b[K");
    }
}

#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::line($crate::log::Level::Info, &format!($($arg)*)) };
}

#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::line($crate::log::Level::Warn, &format!($($arg)*)) };
}

#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::line($crate::log::Level::Error, &format!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The timestamp a log line starts with, parsed as RFC 3339.
    fn timestamp_of(line: &str) -> chrono::DateTime<chrono::FixedOffset> {
        let first = line.split_whitespace().next().unwrap_or_default();
        chrono::DateTime::parse_from_rfc3339(first)
            .unwrap_or_else(|e| panic!("{line:?} does not start with an RFC 3339 time: {e}"))
    }

    #[test]
    fn engine_and_plugin_lines_carry_the_same_timestamp_format() {
        let engine = format_lines(Level::Warn, "a warning");
        let buffer = protocol::runtime::SharedBuffer::default();
        let writer = buffer.clone();
        let subscriber = protocol::logfmt::subscriber(move || writer.clone(), false).finish();
        tracing::subscriber::with_default(subscriber, || tracing::warn!("a plugin warning"));
        let plugin = String::from_utf8(buffer.take()).unwrap_or_default();
        let (e, p) = (timestamp_of(&engine), timestamp_of(&plugin));
        // Same shape: same length, milliseconds, an explicit offset, the same zone.
        let stamp = |line: &str| {
            line.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(
            stamp(&engine).len(),
            stamp(&plugin).len(),
            "{engine:?} vs {plugin:?}"
        );
        assert_eq!(
            e.format(protocol::logfmt::LOG_TIMESTAMP_FORMAT).to_string(),
            stamp(&engine)
        );
        assert_eq!(
            p.format(protocol::logfmt::LOG_TIMESTAMP_FORMAT).to_string(),
            stamp(&plugin)
        );
        assert_eq!(e.offset(), p.offset());
        assert!((p - e).num_seconds().abs() < 60);
        assert!(engine.contains("WARN  a warning"), "{engine:?}");
        assert!(plugin.contains("WARN a plugin warning"), "{plugin:?}");
    }
}
