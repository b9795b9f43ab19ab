//! What the engine's and the plugins' log lines share: one timestamp format, and how
//! much of a record a log line shows.
//!
//! Every line starts with an RFC 3339 timestamp in the machine's zone (the `TZ`
//! environment variable, else `/etc/localtime`) with milliseconds and the offset,
//! e.g. `2024-11-21T10:05:00.123+08:00`, so lines of the engine and of its plugins
//! sort and compare as they are.

use std::borrow::Cow;

/// The `chrono` format of every log line's timestamp.
pub const LOG_TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3f%:z";

/// The most bytes of a record (or a reason) one log line shows; the dirty-record file
/// keeps the whole record.
pub const LOG_RECORD_MAX_BYTES: usize = 1024;

/// The timestamp of a log line written now.
pub fn log_timestamp() -> String {
    chrono::Local::now()
        .format(LOG_TIMESTAMP_FORMAT)
        .to_string()
}

/// The timestamp for the plugins' `tracing` subscriber.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogTimer;

impl tracing_subscriber::fmt::time::FormatTime for LogTimer {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        w.write_str(&log_timestamp())
    }
}

/// The plugins' `tracing` subscriber: the timestamp above, the level, the message.
pub fn subscriber<W>(
    writer: W,
    ansi: bool,
) -> tracing_subscriber::fmt::SubscriberBuilder<
    tracing_subscriber::fmt::format::DefaultFields,
    tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Full, LogTimer>,
    tracing_subscriber::filter::LevelFilter,
    W,
>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_timer(LogTimer)
        .with_target(false)
        .with_ansi(ansi)
}

/// `text` as a log line shows it: whole up to [`LOG_RECORD_MAX_BYTES`], else its first
/// bytes (cut at a character boundary) and `… (N bytes)`.
pub fn abbreviate(text: &str) -> Cow<'_, str> {
    abbreviate_to(text, LOG_RECORD_MAX_BYTES)
}

/// [`abbreviate`] with a given maximum.
pub fn abbreviate_to(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… ({} bytes)", &text[..end], text.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_character_boundary_with_its_size() {
        assert_eq!(abbreviate_to("short", 10), "short");
        assert_eq!(abbreviate_to("0123456789ab", 10), "0123456789… (12 bytes)");
        // "é" is two bytes: the cut never splits it.
        assert_eq!(abbreviate_to("aaaaaaaaaé", 10), "aaaaaaaaa… (11 bytes)");
        let big = "x".repeat(50 * 1024 * 1024);
        assert!(abbreviate(&big).len() < LOG_RECORD_MAX_BYTES + 32);
    }

    #[test]
    fn timestamps_are_rfc3339_with_millis_and_offset() {
        let ts = log_timestamp();
        let parsed = chrono::DateTime::parse_from_rfc3339(&ts).unwrap();
        assert_eq!(ts.len(), "2024-11-21T10:05:00.123+08:00".len(), "{ts}");
        assert_eq!(parsed.format(LOG_TIMESTAMP_FORMAT).to_string(), ts);
    }
}
