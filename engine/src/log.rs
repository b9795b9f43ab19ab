//! The engine's log: `tracing` events in the plugins' format ([`protocol::logfmt`]:
//! an RFC 3339 timestamp in the machine's zone with milliseconds and the offset, the
//! level, the message), every line passed through the [secret redactor](crate::secrets),
//! written to stderr around the live progress display (which they never garble) and,
//! with `--log-file`, to the job's log file too.
//!
//! How much is logged: `--log-level`, else `-q` (warnings and errors) or `-v`/`-vv`
//! (debug/trace), else the `STREAMPORT_LOG` environment variable (an `EnvFilter`
//! directive string such as `info` or `warn,engine=debug`), else `info`. The engine
//! passes the resulting directive to every plugin it starts as `STREAMPORT_LOG`, so a
//! plugin logs at the engine's level. A plugin's stderr lines are shown with the
//! task (or step) and the plugin named: `<time> <LEVEL> [task 0 reader-stream] <message>`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use clap::Args;

use crate::error::EngineError;

/// The environment variable holding the log filter (engine and plugins).
pub const LOG_ENV: &str = "STREAMPORT_LOG";

/// The log options every command takes.
#[derive(Args, Clone, Debug, Default)]
pub struct LogArgs {
    /// More log lines: -v debug, -vv trace (for the engine and its plugins).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only warnings, errors and the summary (for the engine and its plugins).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The log filter for the engine and its plugins: a level (error, warn, info, debug,
    /// trace) or an EnvFilter directive string such as "info,engine=debug". Overrides
    /// -v, -q and STREAMPORT_LOG.
    #[arg(long, value_name = "FILTER", global = true)]
    pub log_level: Option<String>,
}

impl LogArgs {
    /// The filter directive in force: `--log-level`, `-q`, `-v`, `STREAMPORT_LOG`,
    /// else `info`.
    pub fn directive(&self) -> String {
        if let Some(level) = &self.log_level {
            return level.trim().to_owned();
        }
        if self.quiet {
            return "warn".to_owned();
        }
        match self.verbose {
            0 => {}
            1 => return "debug".to_owned(),
            _ => return "trace".to_owned(),
        }
        match std::env::var(LOG_ENV) {
            Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
            _ => "info".to_owned(),
        }
    }
}

static DIRECTIVE: Mutex<String> = Mutex::new(String::new());
static LOG_FILE: Mutex<Option<File>> = Mutex::new(None);
static LIVE: Mutex<Option<LiveDisplay>> = Mutex::new(None);

/// Sets up the engine's log with `directive` (see [`LogArgs::directive`]); a directive
/// that does not parse is a usage error naming where it came from.
pub fn init(directive: &str) -> Result<(), EngineError> {
    let filter = tracing_subscriber::EnvFilter::builder()
        .parse(directive)
        .map_err(|e| {
            EngineError::config(format!(
                "log filter {directive:?} (--log-level or {LOG_ENV}): {e}"
            ))
        })?;
    *DIRECTIVE.lock().unwrap_or_else(|e| e.into_inner()) = directive.to_owned();
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = protocol::logfmt::subscriber(EventWriter::default, ansi)
        .with_env_filter(filter)
        .try_init();
    Ok(())
}

/// The directive plugins get as `STREAMPORT_LOG` (none before [`init`]: they inherit
/// the environment).
pub fn plugin_directive() -> Option<String> {
    let d = DIRECTIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    (!d.is_empty()).then_some(d)
}

/// Also writes every line to `file` from now on (ANSI colours removed).
pub fn set_log_file(file: File) {
    *LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
}

/// Stops writing to the log file (flushed).
pub fn close_log_file() {
    if let Some(mut f) = LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = f.flush();
    }
}

/// Where `--log-file PATH|DIR` writes the job's log. A directory (existing, or given
/// with a trailing `/`) gets DataX's layout: `DIR/<yyyy-MM-dd>/<job name>-<HH_mm_ss.SSS>.log`
/// with the job name taken as DataX's `datax.py` takes it (the last 20 characters of
/// the job file's path, `/` and `.` turned into `_`) and the time in the machine's zone.
pub fn log_file_path(
    given: &Path,
    job_file: &Path,
    now: chrono::DateTime<chrono::Local>,
) -> PathBuf {
    let is_dir = given.is_dir() || given.as_os_str().to_string_lossy().ends_with('/');
    if !is_dir {
        return given.to_path_buf();
    }
    let job = job_file.to_string_lossy();
    let chars: Vec<char> = job.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(20)..].iter().collect();
    let name = tail.replace(['/', '.'], "_");
    given
        .join(now.format("%Y-%m-%d").to_string())
        .join(format!("{name}-{}.log", now.format("%H_%M_%S%.3f")))
}

/// Opens the job's log file (creating its directory), and starts writing to it.
pub fn open_log_file(path: &Path) -> Result<(), EngineError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            EngineError::config(format!("--log-file: cannot create {}: {e}", dir.display()))
        })?;
    }
    let file = File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            EngineError::config(format!("--log-file: cannot open {}: {e}", path.display()))
        })?;
    set_log_file(file);
    Ok(())
}

/// One event as the subscriber formats it, written out whole when dropped.
#[derive(Default)]
struct EventWriter(Vec<u8>);

impl Write for EventWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let text = String::from_utf8_lossy(&self.0);
            write_raw(&crate::secrets::global().redact(&text));
        }
    }
}

/// Writes an info line whatever the level (the summary).
pub fn always(message: &str) {
    write_raw(&format_lines("INFO", message));
}

/// Every line of the (redacted) message with the timestamp and level, as the
/// subscriber writes them.
fn format_lines(level: &str, message: &str) -> String {
    let now = protocol::logfmt::log_timestamp();
    let text = crate::secrets::global().redact(message);
    let mut out = String::with_capacity(text.len() + 40);
    for l in text.lines() {
        out.push_str(&format!("{now} {level:>5} {l}\n"));
    }
    out
}

/// The label a plugin's lines carry: `task 3 reader-stream`, or `task 3 reader my-tool`
/// for a plugin whose name does not say its role.
pub fn task_label(task: usize, role: protocol::Role, plugin: &str) -> String {
    if plugin.starts_with(&format!("{}-", role.name())) {
        format!("task {task} {plugin}")
    } else {
        format!("task {task} {} {plugin}", role.name())
    }
}

/// Writes a line a plugin wrote on its stderr (or sent as a `log` message), with
/// `label` (`task 0 reader-stream`, `writer-oss check`). A line in the log format keeps
/// its time and level and gets the label after the level; any other line (a panic, a
/// plugin that does not use the format) gets the engine's time and WARN, so `-q` does
/// not hide it.
pub fn plugin_line(label: &str, line: &str) {
    let text = crate::secrets::global().redact(line);
    write_raw(&format!("{}\n", relabel(label, &text)));
}

/// A plugin's line with `label`, in the log format.
fn relabel(label: &str, line: &str) -> String {
    let trimmed = line.trim_start();
    let (stamp, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
    let rest = rest.trim_start();
    let (level, message) = rest.split_once(' ').unwrap_or((rest, ""));
    let known = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];
    if chrono::DateTime::parse_from_rfc3339(stamp).is_ok() && known.contains(&level) {
        format!("{stamp} {level:>5} [{label}] {message}")
    } else {
        format!(
            "{} {:>5} [{label}] {line}",
            protocol::logfmt::log_timestamp(),
            "WARN"
        )
    }
}

/// A `log` message's level (`error`, `warn`, `info`, `debug`) in the log format.
pub fn level_of(name: &str) -> &'static str {
    match name.to_ascii_lowercase().as_str() {
        "error" => "ERROR",
        "warn" | "warning" => "WARN",
        "debug" => "DEBUG",
        "trace" => "TRACE",
        _ => "INFO",
    }
}

/// Writes a `log` message of a plugin (level and message) with `label`.
pub fn plugin_message(label: &str, level: &str, message: &str) {
    let stamp = protocol::logfmt::log_timestamp();
    plugin_line(label, &format!("{stamp} {} {message}", level_of(level)));
}

fn write_raw(text: &str) {
    let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    let write = || {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    };
    match live.as_ref() {
        Some(display) => display.multi.suspend(write),
        None => write(),
    }
    drop(live);
    if let Some(f) = LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        let _ = f.write_all(strip_ansi(text).as_bytes());
    }
}

/// `text` without ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\x1b') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The live progress display on a terminal: a few lines, each cut to the terminal's
/// width (so nothing wraps and leaves stale lines behind), redrawn in place.
struct LiveDisplay {
    multi: indicatif::MultiProgress,
    lines: Vec<indicatif::ProgressBar>,
}

/// Shows (or replaces) the live progress lines on stderr.
pub fn live(lines: &[String]) {
    let mut slot = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    let display = slot.get_or_insert_with(|| LiveDisplay {
        multi: indicatif::MultiProgress::with_draw_target(
            indicatif::ProgressDrawTarget::stderr_with_hz(4),
        ),
        lines: Vec::new(),
    });
    while display.lines.len() < lines.len() {
        let style = indicatif::ProgressStyle::with_template("{wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
        let bar = display
            .multi
            .add(indicatif::ProgressBar::no_length().with_style(style));
        display.lines.push(bar);
    }
    for (bar, text) in display.lines.iter().zip(lines) {
        bar.set_message(text.clone());
    }
}

/// Removes the live progress lines.
pub fn clear_live() {
    if let Some(display) = LIVE.lock().unwrap_or_else(|e| e.into_inner()).take() {
        for bar in &display.lines {
            bar.finish_and_clear();
        }
        let _ = display.multi.clear();
    }
}

/// Logs how a job ended badly: an interruption the user asked for (a signal) at INFO,
/// anything else at ERROR.
pub fn job_failed(e: &EngineError) {
    match e {
        EngineError::Interrupted { .. } => tracing::info!("job stopped: {e}"),
        _ => tracing::error!("job failed: {e}"),
    }
}

#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { ::tracing::info!($($arg)*) };
}

#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { ::tracing::warn!($($arg)*) };
}

#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { ::tracing::error!($($arg)*) };
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
