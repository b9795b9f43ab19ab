//! What every task of a running job shares: counters, limits, the dirty-record file,
//! the job's cancellation, the first failure, and the activity clocks the watchdog reads.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocol::message::Dirty;
use protocol::Role;
use tokio_util::sync::CancellationToken;

use crate::error::EngineError;
use crate::limits::{ErrorLimit, SpeedLimiter};

/// How many dirty records are also shown in the log.
pub const DIRTY_RECORDS_LOGGED: u64 = 10;

/// Job-wide counters.
#[derive(Debug, Default)]
pub struct JobStats {
    /// Records forwarded from readers to writers.
    pub records: AtomicU64,
    /// DataX bytes forwarded.
    pub bytes: AtomicU64,
    pub reader_dirty: AtomicU64,
    pub writer_dirty: AtomicU64,
    pub tasks_total: AtomicU64,
    pub tasks_running: AtomicU64,
    pub tasks_done: AtomicU64,
    /// When the first task started and the last ended (ms since the job started).
    pub transfer_start_ms: AtomicU64,
    pub transfer_end_ms: AtomicU64,
    /// Records the writers say they wrote: their latest `progress`, then their `done`.
    pub written_records: AtomicU64,
    /// Summed over tasks, as DataX's "All Task WaitReaderTime": how long the writer
    /// side of a task waited with nothing from its reader to send on.
    pub wait_reader_ns: AtomicU64,
    /// Summed over tasks, as DataX's "All Task WaitWriterTime": how long the reader
    /// side of a task waited because the queue to its writer was full.
    pub wait_writer_ns: AtomicU64,
    /// Summed over tasks: how long batches were held back by the job's speed limit.
    pub wait_limit_ns: AtomicU64,
    /// Each task's reader's estimate of its total records (`progress.total_records`).
    estimates: Mutex<BTreeMap<usize, u64>>,
    /// Follow mode: the overall lag (ms) when the last batch became visible.
    pub follow_lag_ms: Mutex<Option<u64>>,
}

impl JobStats {
    pub fn dirty(&self) -> u64 {
        self.reader_dirty.load(Ordering::Relaxed) + self.writer_dirty.load(Ordering::Relaxed)
    }

    /// Adds `elapsed` to a wait counter.
    pub fn add_wait(counter: &AtomicU64, elapsed: Duration) {
        counter.fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Records task `task`'s reader's estimate of its total records.
    pub fn set_estimate(&self, task: usize, total_records: u64) {
        self.estimates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(task, total_records);
    }

    /// The job's estimated total of records: the sum of every task's estimate, known
    /// only once every task's reader has given one.
    pub fn estimated_total(&self) -> Option<u64> {
        let total = self.tasks_total.load(Ordering::Relaxed) as usize;
        let estimates = self.estimates.lock().unwrap_or_else(|e| e.into_inner());
        (total > 0 && estimates.len() == total).then(|| estimates.values().sum())
    }
}

/// A plugin's name and program version, as its `hello` gave them.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct PluginVersion {
    /// `reader` or `writer`.
    pub role: String,
    pub name: String,
    pub version: String,
}

/// Something the watchdog watches: a task or a job-level step.
#[derive(Debug)]
pub struct Activity {
    pub name: String,
    last_ms: AtomicU64,
    waiting_on: Mutex<String>,
}

impl Activity {
    /// Records progress now.
    pub fn touch(&self, shared: &JobShared) {
        self.last_ms.store(shared.elapsed_ms(), Ordering::Relaxed);
    }

    /// What the activity is waiting for, for the stall message.
    pub fn waiting_on(&self, what: impl Into<String>) {
        *self.waiting_on.lock().unwrap_or_else(|e| e.into_inner()) = what.into();
    }

    pub fn describe_wait(&self) -> String {
        self.waiting_on
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn idle_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_ms.load(Ordering::Relaxed))
    }
}

/// The dirty-record file: one JSON line per dirty record, opened at the first one.
#[derive(Debug)]
pub struct DirtyFile {
    path: PathBuf,
    file: Mutex<Option<BufWriter<File>>>,
}

impl DirtyFile {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &PathBuf {
        &self.path
    }

    fn append(&self, line: &str) -> std::io::Result<()> {
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(BufWriter::new(File::create(&self.path)?));
        }
        match guard.as_mut() {
            Some(w) => {
                w.write_all(line.as_bytes())?;
                w.write_all(b"\n")
            }
            None => Ok(()),
        }
    }

    pub fn flush(&self) -> std::io::Result<()> {
        match self.file.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }

    /// Whether any dirty record was written.
    pub fn is_used(&self) -> bool {
        self.file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

/// The state shared by a running job's tasks.
#[derive(Debug)]
pub struct JobShared {
    pub stats: JobStats,
    pub limiter: SpeedLimiter,
    pub error_limit: ErrorLimit,
    pub dirty_file: DirtyFile,
    /// Cancelled when the job must stop (failure, limit, signal, stall).
    pub cancel: CancellationToken,
    failure: Mutex<Option<EngineError>>,
    activities: Mutex<Vec<Arc<Activity>>>,
    started: Instant,
    /// The plugins' `hello`s seen by the tasks.
    plugin_versions: Mutex<BTreeSet<PluginVersion>>,
    /// The reader's and writer's step sessions, kept until the job ends.
    pub step_sessions: crate::steps::StepSessions,
}

impl JobShared {
    pub fn new(limiter: SpeedLimiter, error_limit: ErrorLimit, dirty_file: PathBuf) -> Self {
        Self {
            stats: JobStats::default(),
            limiter,
            error_limit,
            dirty_file: DirtyFile::new(dirty_file),
            cancel: CancellationToken::new(),
            failure: Mutex::new(None),
            activities: Mutex::new(Vec::new()),
            started: Instant::now(),
            plugin_versions: Mutex::new(BTreeSet::new()),
            step_sessions: Default::default(),
        }
    }

    /// Notes a plugin's name and version from its `hello`.
    pub fn note_plugin(&self, role: Role, name: &str, version: &str) {
        self.plugin_versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(PluginVersion {
                role: role.name().to_owned(),
                name: name.to_owned(),
                version: version.to_owned(),
            });
    }

    /// Every plugin (name and version) a task's `hello` showed, readers first.
    pub fn plugin_versions(&self) -> Vec<PluginVersion> {
        self.plugin_versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Records the job's failure (the first one wins) and cancels the job.
    pub fn fail(&self, error: EngineError) {
        {
            let mut slot = self.failure.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(error);
            }
        }
        self.cancel.cancel();
    }

    pub fn failure(&self) -> Option<EngineError> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn register(&self, name: String) -> Arc<Activity> {
        let activity = Arc::new(Activity {
            name,
            last_ms: AtomicU64::new(self.elapsed_ms()),
            waiting_on: Mutex::new(String::new()),
        });
        self.activities
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(activity.clone());
        activity
    }

    pub fn unregister(&self, activity: &Arc<Activity>) {
        self.activities
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|a| !Arc::ptr_eq(a, activity));
    }

    pub fn activities(&self) -> Vec<Arc<Activity>> {
        self.activities
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counts a dirty record, writes it to the dirty file, logs the first few, and
    /// fails the job at once when `errorLimit.record` is exceeded.
    pub fn report_dirty(&self, task: usize, side: Role, plugin: &str, dirty: &Dirty) {
        let counter = match side {
            Role::Writer => &self.stats.writer_dirty,
            _ => &self.stats.reader_dirty,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let total = self.stats.dirty();
        let record = match dirty.decode() {
            Ok(r) => {
                serde_json::Value::Array(r.iter().map(protocol::jsonl::value_to_json).collect())
            }
            Err(e) => serde_json::Value::String(format!("(undecodable record: {e})")),
        };
        let line = serde_json::json!({
            "task": task,
            "side": side.name(),
            "plugin": plugin,
            "reason": crate::secrets::global().redact(&dirty.reason),
            "record": record,
        })
        .to_string();
        if let Err(e) = self.dirty_file.append(&line) {
            self.fail(EngineError::failed(format!(
                "cannot write the dirty-record file {}: {e}",
                self.dirty_file.path().display()
            )));
        }
        if total <= DIRTY_RECORDS_LOGGED {
            // A line shows at most LOG_RECORD_MAX_BYTES of it; the file keeps it whole.
            crate::warn!(
                "dirty record {total} (task {task} {}): {}",
                side.name(),
                protocol::logfmt::abbreviate(&line)
            );
            if total == DIRTY_RECORDS_LOGGED {
                crate::warn!(
                    "further dirty records are only written to {}",
                    self.dirty_file.path().display()
                );
            }
        }
        if let Err(message) = self.error_limit.check_record(total) {
            self.fail(EngineError::ErrorLimit(message));
        }
    }
}
