use super::*;

/// The timestamp a log line starts with, parsed as RFC 3339.
fn timestamp_of(line: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let first = line.split_whitespace().next().unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(first)
        .unwrap_or_else(|e| panic!("{line:?} does not start with an RFC 3339 time: {e}"))
}

/// What the engine's subscriber writes for a warning, through the same format.
fn plugin_format_line(emit: impl FnOnce()) -> String {
    let buffer = protocol::runtime::SharedBuffer::default();
    let writer = buffer.clone();
    let subscriber = protocol::logfmt::subscriber(move || writer.clone(), false).finish();
    tracing::subscriber::with_default(subscriber, emit);
    String::from_utf8(buffer.take()).unwrap_or_default()
}

#[test]
fn engine_and_plugin_lines_carry_the_same_format() {
    let engine = format_lines("WARN", "a warning");
    let plugin = plugin_format_line(|| tracing::warn!("a plugin warning"));
    let (e, p) = (timestamp_of(&engine), timestamp_of(&plugin));
    assert_eq!(e.offset(), p.offset());
    assert!((p - e).num_seconds().abs() < 60);
    // Same shape: the timestamp, the level right-aligned in five columns, the message.
    let stamp_len = "2024-11-21T10:05:00.123+08:00".len();
    assert_eq!(&engine[stamp_len..], "  WARN a warning\n", "{engine:?}");
    assert_eq!(
        &plugin[stamp_len..],
        "  WARN a plugin warning\n",
        "{plugin:?}"
    );
}

#[test]
fn a_plugins_line_keeps_its_time_and_level_and_gets_its_task() {
    let plugin = plugin_format_line(|| tracing::info!("reading shard s1"));
    let line = relabel("task 2 reader-otsstream", plugin.trim_end());
    let stamp = plugin.split_whitespace().next().unwrap_or_default();
    assert_eq!(
        line,
        format!("{stamp}  INFO [task 2 reader-otsstream] reading shard s1")
    );
    // A line not in the format (a panic): the engine's time, WARN, the label.
    let line = relabel(
        "writer-oss post",
        "thread 'main' panicked at src/main.rs:3:5:",
    );
    timestamp_of(&line);
    assert!(
        line.ends_with("  WARN [writer-oss post] thread 'main' panicked at src/main.rs:3:5:"),
        "{line}"
    );
    assert_eq!(
        task_label(0, protocol::Role::Reader, "reader-stream"),
        "task 0 reader-stream"
    );
    assert_eq!(
        task_label(1, protocol::Role::Writer, "my-sink"),
        "task 1 writer my-sink"
    );
    assert_eq!(level_of("warn"), "WARN");
    assert_eq!(level_of("error"), "ERROR");
}

#[test]
fn the_level_comes_from_the_flags_then_the_environment() {
    let args = |verbose, quiet, level: Option<&str>| LogArgs {
        verbose,
        quiet,
        log_level: level.map(str::to_owned),
    };
    assert_eq!(args(0, true, None).directive(), "warn");
    assert_eq!(args(1, false, None).directive(), "debug");
    assert_eq!(args(2, false, None).directive(), "trace");
    assert_eq!(
        args(0, true, Some("info,engine=debug")).directive(),
        "info,engine=debug"
    );
    // Without flags: STREAMPORT_LOG, else info. (The variable is read, not set, here:
    // tests run in parallel.)
    let expected = std::env::var(LOG_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| "info".to_owned());
    assert_eq!(args(0, false, None).directive(), expected);
}

#[test]
fn a_log_directory_gets_dataxs_layout() {
    use chrono::TimeZone;
    let dir = tempfile::tempdir().unwrap();
    let now = chrono::Local
        .with_ymd_and_hms(2024, 11, 21, 10, 5, 7)
        .single()
        .unwrap()
        + chrono::Duration::milliseconds(42);
    let path = log_file_path(
        dir.path(),
        Path::new("/srv/jobs/hourly/stream_to_oss.json"),
        now,
    );
    assert_eq!(
        path,
        dir.path()
            .join("2024-11-21")
            .join("y_stream_to_oss_json-10_05_07.042.log")
    );
    // A short job path is taken whole; a path that is not a directory is the file.
    let path = log_file_path(dir.path(), Path::new("job.json"), now);
    assert!(
        path.ends_with("2024-11-21/job_json-10_05_07.042.log"),
        "{path:?}"
    );
    let file = dir.path().join("one.log");
    assert_eq!(log_file_path(&file, Path::new("job.json"), now), file);
    let not_yet = dir.path().join("logs/");
    assert!(log_file_path(&not_yet, Path::new("j.json"), now).starts_with(&not_yet));
}

#[test]
fn ansi_colours_stay_out_of_the_log_file() {
    assert_eq!(strip_ansi("\x1b[32m INFO\x1b[0m done"), " INFO done");
    assert_eq!(strip_ansi("plain"), "plain");
}

#[test]
fn a_bad_filter_is_a_usage_error() {
    let e = tracing_subscriber::EnvFilter::builder()
        .parse("info,=[")
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(e.is_err());
    let e = init("info,=[").unwrap_err();
    assert_eq!(e.exit_code(), crate::error::EXIT_USAGE);
    assert!(e.to_string().contains("STREAMPORT_LOG"), "{e}");
}
