//! The commit (writer `post`, then reader `post`), the writer's `abort`, and signals.
//!
//! Before the commit, a first SIGINT/SIGTERM cancels the job: the tasks stop and the
//! writer's `abort` runs (a further signal stops waiting for the abort).
//!
//! Once the writer's `post` has started, neither a first signal nor the stall watchdog
//! cancels it: the engine warns and waits, for at most the post timeout
//! (`--post-timeout`, `setting.postTimeoutSeconds`, default 600 s) for the whole
//! commit. A commit that completes makes the job succeed, signal or not. A second
//! signal (or the timeout) stops waiting at once: the running `post` is killed, the
//! writer's `abort` runs with the task reports, and its answer
//! (`{"committed", "detail"}`) says what is visible. The summary reports it in
//! `committed` / `commit_detail`, never a guess.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocol::Role;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

use crate::error::{EngineError, EXIT_SIGINT, EXIT_SIGTERM};
use crate::lifecycle::Ctx;
use crate::plugins::Plugin;
use crate::shared::JobShared;
use crate::steps::{run_step_within, UNCANCELLABLE_STEP_TIMEOUT};
use crate::summary::Committed;
use crate::task::TaskResult;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// Before the writer's `post`: a signal cancels the job.
    Transfer,
    /// The writer's `post` has started: a first signal is waited out.
    Committing,
}

/// What the signal watcher and the commit share.
#[derive(Debug)]
pub struct CommitGuard {
    phase: Mutex<Phase>,
    /// Signals received so far (name, exit code), in order.
    signals: Mutex<Vec<(&'static str, i32)>>,
    /// Cancelled to stop waiting for a `post` (second signal during the commit).
    stop: CancellationToken,
    /// Cancelled to stop waiting for the writer's `abort` (one more signal).
    stop_abort: CancellationToken,
    /// Follow mode: a first signal lets the current batch finish and commit.
    follow: std::sync::atomic::AtomicBool,
}

impl Default for CommitGuard {
    fn default() -> Self {
        Self {
            phase: Mutex::new(Phase::Transfer),
            signals: Mutex::new(Vec::new()),
            stop: CancellationToken::new(),
            stop_abort: CancellationToken::new(),
            follow: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl CommitGuard {
    /// Enters the commit unless the job already failed (a signal, a limit, a stall
    /// that came after the last task).
    fn begin(&self, shared: &JobShared) -> bool {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if shared.failure().is_some() {
            return false;
        }
        *phase = Phase::Committing;
        true
    }

    /// Follow mode: the first signal stops the run after the current batch's commit
    /// instead of cancelling it; the second falls back to the rules above.
    pub fn set_follow(&self) {
        self.follow
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Follow mode: a signal asked the run to stop after the current batch.
    pub fn stop_requested(&self) -> Option<&'static str> {
        self.signals().first().map(|(name, _)| *name)
    }

    /// Follow mode: the next batch starts; a signal cancels nothing committed.
    pub fn next_batch(&self) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = Phase::Transfer;
    }

    fn signals(&self) -> Vec<(&'static str, i32)> {
        self.signals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Handles one SIGINT/SIGTERM.
    pub fn on_signal(
        &self,
        shared: &JobShared,
        name: &'static str,
        code: i32,
        post_timeout: Duration,
    ) {
        // Held throughout, so the commit cannot begin between reading it and failing.
        let guard = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        let phase = *guard;
        let count = {
            let mut signals = self.signals.lock().unwrap_or_else(|e| e.into_inner());
            signals.push((name, code));
            signals.len()
        };
        let follow = self.follow.load(std::sync::atomic::Ordering::Relaxed);
        match (phase, count) {
            (Phase::Transfer, 1) if follow => crate::info!(
                "{name} received: finishing and committing the current batch, then stopping; send it again to cancel the batch"
            ),
            (Phase::Transfer, 2) if follow => {
                crate::warn!("{name} received again: cancelling the current batch");
                shared.fail(EngineError::Interrupted { signal: name, code });
            }
            (Phase::Transfer, 1) => {
                // Asked for: INFO (the log's ERRORs are failures).
                crate::info!("{name} received: cancelling the tasks");
                shared.fail(EngineError::Interrupted { signal: name, code });
            }
            (Phase::Committing, 1) => crate::warn!(
                "{name} received during the commit: waiting for it to complete (at most {} s, --post-timeout); send it again to stop waiting",
                post_timeout.as_secs_f64()
            ),
            (Phase::Committing, 2) => {
                crate::warn!("{name} received again: stopping the commit");
                self.stop.cancel();
            }
            _ => {
                crate::warn!("{name} received again: no longer waiting for the writer's abort");
                self.stop_abort.cancel();
            }
        }
    }
}

type SignalStreams = (tokio::signal::unix::Signal, tokio::signal::unix::Signal);

/// SIGINT and SIGTERM streams registered by [`catch_signals`], waiting for the job.
static CAUGHT: Mutex<Option<SignalStreams>> = Mutex::new(None);

fn register_signals() -> Option<SignalStreams> {
    use tokio::signal::unix::{signal, SignalKind};
    Some((
        signal(SignalKind::interrupt()).ok()?,
        signal(SignalKind::terminate()).ok()?,
    ))
}

/// Takes over SIGINT and SIGTERM now, before the job is loaded: from here on a signal
/// no longer kills the engine outright but is delivered to the job's watcher when it
/// starts ([`watch_signals`]), so even a signal in the first milliseconds ends with a
/// summary. Must be called inside the runtime.
pub fn catch_signals() {
    let mut caught = CAUGHT.lock().unwrap_or_else(|e| e.into_inner());
    if caught.is_none() {
        *caught = register_signals();
    }
}

/// Feeds SIGINT/SIGTERM to `guard` until the job ends, including any that arrived
/// since [`catch_signals`].
pub async fn watch_signals(
    shared: Arc<JobShared>,
    guard: Arc<CommitGuard>,
    post_timeout: Duration,
) {
    let caught = CAUGHT.lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some((mut int, mut term)) = caught.or_else(register_signals) else {
        return;
    };
    loop {
        let (name, code) = tokio::select! {
            _ = int.recv() => ("SIGINT", EXIT_SIGINT),
            _ = term.recv() => ("SIGTERM", EXIT_SIGTERM),
        };
        guard.on_signal(&shared, name, code, post_timeout);
    }
}

/// What the job committed, for the summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommitReport {
    pub committed: Committed,
    pub detail: Option<String>,
}

/// Reads `{"committed": …, "detail": …}` from a `post` or `abort` answer.
fn answer(value: &Json) -> Option<(Committed, Option<String>)> {
    let committed = Committed::parse(value.get("committed")?.as_str()?)?;
    let detail = value
        .get("detail")
        .and_then(Json::as_str)
        .map(|d| crate::secrets::global().redact(d));
    Some((committed, detail))
}

/// Runs the writer's `abort`; `reports` are the task reports when its `post` had
/// started (`None` otherwise: the request then has no reports). Says what the job committed.
pub(crate) async fn abort_writer(
    ctx: &Ctx<'_>,
    guard: &CommitGuard,
    writer: &Plugin,
    state: &Json,
    reports: Option<Vec<Json>>,
) -> CommitReport {
    let post_started = reports.is_some();
    let reports = reports.unwrap_or_default();
    let n = reports.len();
    crate::info!("{} abort", writer.name);
    let request = ctx.request(Role::Writer, state, None, reports, n);
    let result = run_step_within(
        writer,
        "abort",
        &request,
        None,
        Some(&guard.stop_abort),
        UNCANCELLABLE_STEP_TIMEOUT,
    )
    .await;
    let who = &writer.name;
    match result {
        Ok(value) => match answer(&value) {
            Some((committed, detail)) => CommitReport {
                committed,
                detail: Some(detail.unwrap_or_else(|| format!("as {who} abort answered"))),
            },
            None if post_started => CommitReport {
                committed: Committed::Unknown,
                detail: Some(format!(
                    "{who} post had started and did not finish; {who} abort did not say what became visible: check the target before using it; a re-run of this window writes it again"
                )),
            },
            None => CommitReport {
                committed: Committed::None,
                detail: Some(format!(
                    "{who} post never started, so nothing of this job was committed; a re-run of this window writes it again"
                )),
            },
        },
        Err(e) => {
            crate::error!("{who} abort also failed: {e}");
            CommitReport {
                committed: if post_started {
                    Committed::Unknown
                } else {
                    Committed::None
                },
                detail: Some(if post_started {
                    format!(
                        "{who} post had started and did not finish, and its abort failed ({e}): check the target before using it; a re-run of this window writes it again"
                    )
                } else {
                    format!(
                        "{who} post never started, so nothing of this job was committed; its abort failed ({e}), so unfinished uploads may be left (not visible); a re-run of this window writes it again"
                    )
                }),
            }
        }
    }
}

/// Why a `post` ended without an answer, or its own failure.
fn post_failure(
    guard: &CommitGuard,
    e: EngineError,
    what: &str,
    deadline: Instant,
    post_timeout: Duration,
) -> EngineError {
    if guard.stop.is_cancelled() {
        let (signal, code) = guard
            .signals()
            .last()
            .copied()
            .unwrap_or(("SIGINT", EXIT_SIGINT));
        EngineError::Interrupted { signal, code }
    } else if Instant::now() + Duration::from_millis(50) >= deadline {
        EngineError::failed(format!(
            "{what} did not finish within the post timeout of {} s (--post-timeout, setting.postTimeoutSeconds): it was stopped",
            post_timeout.as_secs_f64()
        ))
    } else {
        e
    }
}

/// The commit: writer `post`, then reader `post`, as described in the module docs.
pub(crate) async fn commit(
    ctx: &Ctx<'_>,
    guard: &CommitGuard,
    (reader, writer): (&Plugin, &Plugin),
    (reader_state, writer_state): (&Json, &Json),
    transfer: Vec<TaskResult>,
    post_timeout: Duration,
) -> (Result<(), EngineError>, CommitReport) {
    let n = transfer.len();
    let reports: Vec<Json> = transfer.iter().map(|t| t.report.clone()).collect();
    if !guard.begin(ctx.shared) {
        let e = ctx
            .shared
            .failure()
            .unwrap_or_else(|| EngineError::failed("cancelled before the commit"));
        crate::log::job_failed(&e);
        let report = abort_writer(ctx, guard, writer, writer_state, None).await;
        return (Err(e), report);
    }
    let deadline = Instant::now() + post_timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    crate::info!(
        "{} post (the commit; at most {} s with the reader's post)",
        writer.name,
        post_timeout.as_secs_f64()
    );
    let request = ctx.request(Role::Writer, writer_state, None, reports.clone(), n);
    let posted = ctx
        .shared
        .step_sessions
        .run(writer, "post", &request, None, Some(&guard.stop), left())
        .await;
    let mut report = match posted {
        Ok(value) => {
            let detail = answer(&value).and_then(|(_, d)| d);
            CommitReport {
                committed: Committed::All,
                detail,
            }
        }
        Err(e) => {
            let what = format!("{} post", writer.name);
            let e = post_failure(guard, e, &what, deadline, post_timeout);
            crate::error!("job failed during the commit: {e}");
            let report = abort_writer(ctx, guard, writer, writer_state, Some(reports)).await;
            return (Err(e), report);
        }
    };
    let checkpoints: Vec<Json> = transfer.into_iter().flat_map(|t| t.checkpoints).collect();
    crate::info!("{} post", reader.name);
    let request = ctx.request(Role::Reader, reader_state, None, checkpoints, n);
    let posted = ctx
        .shared
        .step_sessions
        .run(reader, "post", &request, None, Some(&guard.stop), left())
        .await;
    if let Err(e) = posted {
        let what = format!("{} post", reader.name);
        let e = post_failure(guard, e, &what, deadline, post_timeout);
        crate::error!("job failed after the writer committed: {e}");
        let writer_said = report
            .detail
            .take()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        report.detail = Some(format!(
            "{} committed everything this job wrote{writer_said}; {what} did not finish, so the reader's checkpoints of this window may not be saved; a re-run of this window gives the same output",
            writer.name
        ));
        return (Err(e), report);
    }
    if let Some((name, _)) = guard.signals().first() {
        crate::warn!(
            "{name} arrived during the commit; the commit completed, so the job succeeded"
        );
    }
    (Ok(()), report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_are_read_strictly() {
        assert_eq!(
            answer(&json!({"committed": "partial", "detail": "a is visible"})),
            Some((Committed::Partial, Some("a is visible".to_owned())))
        );
        assert_eq!(
            answer(&json!({"committed": "all"})),
            Some((Committed::All, None))
        );
        assert_eq!(answer(&json!({"committed": "some"})), None);
        assert_eq!(answer(&json!(null)), None);
        assert_eq!(answer(&json!({"detail": "x"})), None);
    }

    #[test]
    fn a_signal_before_the_commit_cancels_and_one_during_it_waits() {
        use crate::limits::{ErrorLimit, ManualClock, SpeedLimiter};
        let shared = || {
            JobShared::new(
                SpeedLimiter::new(None, None, Arc::new(ManualClock::default())),
                ErrorLimit::default(),
                std::env::temp_dir().join("unused.dirty.jsonl"),
            )
        };
        let timeout = Duration::from_secs(600);
        let before = shared();
        let guard = CommitGuard::default();
        guard.on_signal(&before, "SIGTERM", EXIT_SIGTERM, timeout);
        assert!(before.cancel.is_cancelled());
        assert!(!guard.begin(&before), "no commit after a signal");

        let during = shared();
        let guard = CommitGuard::default();
        assert!(guard.begin(&during));
        guard.on_signal(&during, "SIGINT", EXIT_SIGINT, timeout);
        assert!(!during.cancel.is_cancelled() && !guard.stop.is_cancelled());
        guard.on_signal(&during, "SIGINT", EXIT_SIGINT, timeout);
        assert!(guard.stop.is_cancelled() && !guard.stop_abort.is_cancelled());
        guard.on_signal(&during, "SIGINT", EXIT_SIGINT, timeout);
        assert!(guard.stop_abort.is_cancelled());
        assert!(during.failure().is_none());
    }
}
