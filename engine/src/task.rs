//! One task: a reader process and a writer process, and the forwarding between them.
//!
//! The writer is started first, then the reader. Each gets the engine's preamble,
//! `hello` and `configure`. Then two loops run side by side:
//!
//! * forward: the reader's frames are read whole; a `batch` is throttled by the job's
//!   speed limiter and written to the writer as it arrived (never re-encoded);
//!   `checkpoint` is kept for the reader's `post` and forwarded; `dirty` counts against
//!   the error limit; `eos` is checked against what was forwarded and forwarded;
//! * collect: the writer's frames: `dirty`, `progress`, `log`, `output` (to the engine's
//!   stdout) and finally `done`, whose `report` goes to the writer's `post`.
//!
//! When either side fails, or the job is cancelled, both plugins get `cancel` and are
//! killed after a grace period. The error names the task, the side and the plugin, and
//! shows how the plugin ended and its last stderr lines.

use std::process::ExitStatus;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::frame::{encode_frame, encode_message, PREAMBLE};
use protocol::message::{Configure, ErrorKind, Hello, JobContext, Message};
use protocol::{FrameError, Role};
use serde_json::Value as Json;
use tokio::io::AsyncWriteExt;
use tokio::process::Child;
use tokio_util::sync::CancellationToken;

use crate::error::EngineError;
use crate::plugins::{self, describe_exit, Plugin, StderrTail};
use crate::shared::{Activity, JobShared};

/// How long plugins get to exit after `cancel` before they are killed.
pub const CANCEL_GRACE: Duration = Duration::from_secs(3);

/// How long a writer that stopped taking records gets to show why (its `error`, its
/// end of stream) before its task is cancelled.
pub(crate) const WRITER_END_WAIT: Duration = Duration::from_secs(2);

/// What to run.
#[derive(Clone, Debug)]
pub struct TaskPlan {
    pub index: usize,
    pub reader: Plugin,
    pub writer: Plugin,
    pub reader_config: Json,
    pub writer_config: Json,
    pub context: JobContext,
}

/// What a successful task hands to the `post` steps.
#[derive(Clone, Debug, Default)]
pub struct TaskResult {
    /// The writer's `done.report`.
    pub report: Json,
    /// The reader's checkpoint states, in order.
    pub checkpoints: Vec<Json>,
    pub records: u64,
    pub bytes: u64,
}

/// Why a task did not succeed.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskError {
    /// The task itself failed; the message says how.
    Failed(EngineError),
    /// The job was cancelled (another task failed, a limit, a signal, the watchdog).
    Cancelled,
}

/// A failure seen by one of the loops.
#[derive(Clone, Debug)]
pub(crate) struct SideFailure {
    pub(crate) side: Role,
    pub(crate) message: String,
    /// The plugin said it itself (an `error` frame): its exit status adds nothing.
    pub(crate) from_plugin: bool,
    /// Lower is more telling: 0 the plugin's own error, 1 a protocol problem, 2 a
    /// broken pipe towards the plugin.
    pub(crate) rank: u8,
}

/// The first, most telling failure of a task.
#[derive(Default)]
pub(crate) struct Failures(Mutex<Vec<SideFailure>>);

impl Failures {
    fn add(&self, failure: SideFailure, cancel: &CancellationToken) {
        self.note(failure);
        cancel.cancel();
    }

    /// Records a failure without cancelling the task (yet).
    pub(crate) fn note(&self, failure: SideFailure) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(failure);
    }

    fn best(&self) -> Option<SideFailure> {
        let list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        list.iter().min_by_key(|f| f.rank).cloned()
    }
}

/// What both loops of a task share.
pub(crate) struct TaskCtx<'a> {
    pub(crate) plan: &'a TaskPlan,
    pub(crate) shared: &'a JobShared,
    pub(crate) activity: &'a Activity,
    pub(crate) cancel: CancellationToken,
    pub(crate) failures: Failures,
}

impl TaskCtx<'_> {
    pub(crate) fn plugin(&self, side: Role) -> &str {
        match side {
            Role::Writer => &self.plan.writer.name,
            _ => &self.plan.reader.name,
        }
    }

    pub(crate) fn fail(&self, side: Role, rank: u8, message: impl Into<String>) {
        self.failures.add(
            SideFailure {
                side,
                message: message.into(),
                from_plugin: false,
                rank,
            },
            &self.cancel,
        );
    }

    pub(crate) fn frame_error(&self, side: Role, e: FrameError, what: &str) {
        let message = match e {
            FrameError::Closed => format!("its stdout ended {what}"),
            FrameError::Io(io) => format!("reading its stdout {what}: {io}"),
            other => format!("{other} ({what})"),
        };
        self.fail(side, 1, message);
    }

    pub(crate) fn plugin_error(&self, side: Role, e: protocol::message::ErrorMessage) {
        let kind = serde_json::to_value(e.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let retry = if e.retryable { ", retryable" } else { "" };
        self.failures.add(
            SideFailure {
                side,
                message: format!("{} ({kind} error{retry})", e.message),
                from_plugin: e.kind != ErrorKind::Cancelled,
                rank: if e.kind == ErrorKind::Cancelled { 3 } else { 0 },
            },
            &self.cancel,
        );
    }
}

fn handshake(context: &JobContext, task: &Json) -> Result<Vec<u8>, EngineError> {
    let mut out = PREAMBLE.to_vec();
    for message in [
        Message::Hello(Hello::new(
            Role::Engine,
            "engine",
            env!("CARGO_PKG_VERSION"),
        )),
        Message::Configure(Configure {
            task: task.clone(),
            context: context.clone(),
        }),
    ] {
        let body = encode_message(&message).map_err(|e| EngineError::failed(e.to_string()))?;
        encode_frame(&body, &mut out);
    }
    Ok(out)
}

pub(crate) fn frame_of(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(body) = encode_message(message) {
        encode_frame(&body, &mut out);
    }
    out
}

/// Runs one task to its end.
pub async fn run_task(plan: TaskPlan, shared: Arc<JobShared>) -> Result<TaskResult, TaskError> {
    let i = plan.index;
    let activity = shared.register(format!(
        "task {i} ({} → {})",
        plan.reader.name, plan.writer.name
    ));
    shared.stats.tasks_running.fetch_add(1, Ordering::Relaxed);
    let result = run(&plan, &shared, &activity).await;
    shared.stats.tasks_running.fetch_sub(1, Ordering::Relaxed);
    shared.unregister(&activity);
    match &result {
        Ok(_) => {
            shared.stats.tasks_done.fetch_add(1, Ordering::Relaxed);
        }
        Err(TaskError::Failed(e)) => shared.fail(e.clone()),
        Err(TaskError::Cancelled) => {}
    }
    result
}

async fn run(
    plan: &TaskPlan,
    shared: &JobShared,
    activity: &Arc<Activity>,
) -> Result<TaskResult, TaskError> {
    let i = plan.index;
    let failed = |e: EngineError| TaskError::Failed(EngineError::failed(format!("task {i}: {e}")));
    let mut writer = plugins::spawn(&plan.writer, &["write", "--engine"]).map_err(failed)?;
    let mut reader = plugins::spawn(&plan.reader, &["read", "--engine"]).map_err(failed)?;
    tracing::debug!(
        "task {i}: started {} ({}) and {} ({})",
        plan.reader.name,
        plan.reader.path.display(),
        plan.writer.name,
        plan.writer.path.display()
    );
    plugins::enlarge_data_pipes(&writer);
    plugins::enlarge_data_pipes(&reader);
    let (writer_tail, writer_drain) = drain(
        &mut writer,
        crate::log::task_label(i, Role::Writer, &plan.writer.name),
    );
    let (reader_tail, reader_drain) = drain(
        &mut reader,
        crate::log::task_label(i, Role::Reader, &plan.reader.name),
    );
    let ctx = TaskCtx {
        plan,
        shared,
        activity,
        cancel: shared.cancel.child_token(),
        failures: Failures::default(),
    };
    let (Some(mut r_in), Some(r_out), Some(mut w_in), Some(w_out)) = (
        reader.stdin.take(),
        reader.stdout.take(),
        writer.stdin.take(),
        writer.stdout.take(),
    ) else {
        return Err(failed(EngineError::failed(
            "the plugins' pipes are missing",
        )));
    };
    let to_reader = handshake(&plan.context, &plan.reader_config).map_err(failed)?;
    let to_writer = handshake(&plan.context, &plan.writer_config).map_err(failed)?;
    // A plugin that already died is reported from its output and exit status below.
    let _ = tokio::join!(r_in.write_all(&to_reader), w_in.write_all(&to_writer));
    let _ = tokio::join!(r_in.flush(), w_in.flush());

    let mut forwarded = TaskResult::default();
    let (_, done) = tokio::join!(
        crate::forwarding::forward(&ctx, r_out, r_in, w_in, &mut forwarded),
        crate::forwarding::collect(&ctx, w_out)
    );
    let failure = ctx.failures.best();
    let grace = if failure.is_some() || ctx.cancel.is_cancelled() {
        // The wait is bounded by the grace period: the watchdog need not watch it, and
        // must not take the task's own failure for a stall.
        shared.unregister(activity);
        Some(CANCEL_GRACE)
    } else {
        None
    };
    let (reader_status, writer_status) = tokio::join!(
        wait(&mut reader, grace, &ctx.cancel),
        wait(&mut writer, grace, &ctx.cancel)
    );
    for handle in [reader_drain, writer_drain].into_iter().flatten() {
        let _ = tokio::time::timeout(Duration::from_secs(1), handle).await;
    }
    let describe = |side: Role, status: &Option<ExitStatus>, tail: &StderrTail| {
        let exit = match status {
            Some(s) => describe_exit(s),
            None => "was killed after not exiting".to_owned(),
        };
        format!("{} ended with {exit}{}", ctx.plugin(side), tail.for_error())
    };
    let tail_of = |side: Role| {
        if side == Role::Writer {
            &writer_tail
        } else {
            &reader_tail
        }
    };
    let status_of = |side: Role| {
        if side == Role::Writer {
            &writer_status
        } else {
            &reader_status
        }
    };
    if let Some(f) = failure {
        if f.rank == 3 && shared.cancel.is_cancelled() {
            return Err(TaskError::Cancelled);
        }
        let mut message = format!(
            "task {i} {} ({}): {}",
            f.side.name(),
            ctx.plugin(f.side),
            f.message
        );
        if !f.from_plugin {
            message.push_str(&format!(
                "; {}",
                describe(f.side, status_of(f.side), tail_of(f.side))
            ));
        }
        return Err(TaskError::Failed(EngineError::failed(message)));
    }
    if ctx.cancel.is_cancelled() {
        return Err(TaskError::Cancelled);
    }
    for side in [Role::Reader, Role::Writer] {
        if !status_of(side).is_some_and(|s| s.success()) {
            return Err(TaskError::Failed(EngineError::failed(format!(
                "task {i} {} ({}): failed after finishing its stream: {}",
                side.name(),
                ctx.plugin(side),
                describe(side, status_of(side), tail_of(side))
            ))));
        }
    }
    match done {
        Some(done) if done.records != forwarded.records => {
            Err(TaskError::Failed(EngineError::failed(format!(
                "task {i} writer ({}): done says {} records were received but {} were sent",
                plan.writer.name, done.records, forwarded.records
            ))))
        }
        Some(done) => Ok(TaskResult {
            report: done.report,
            ..forwarded
        }),
        None => Err(TaskError::Cancelled),
    }
}

fn drain(child: &mut Child, prefix: String) -> (StderrTail, Option<tokio::task::JoinHandle<()>>) {
    match child.stderr.take() {
        Some(stderr) => {
            let (tail, handle) = plugins::drain_stderr(stderr, prefix);
            (tail, Some(handle))
        }
        None => (StderrTail::default(), None),
    }
}

/// Waits for a child to exit: without `grace`, until it exits or the task is cancelled
/// (then `CANCEL_GRACE`); with `grace`, at most that long. Then kills it.
async fn wait(
    child: &mut Child,
    grace: Option<Duration>,
    cancel: &CancellationToken,
) -> Option<ExitStatus> {
    if grace.is_none() {
        tokio::select! {
            status = child.wait() => return status.ok(),
            _ = cancel.cancelled() => {}
        }
    }
    match tokio::time::timeout(grace.unwrap_or(CANCEL_GRACE), child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::frame::decode_message;
    use protocol::FrameDecoder;

    fn failure(side: Role, rank: u8, message: &str) -> SideFailure {
        SideFailure {
            side,
            message: message.into(),
            from_plugin: rank == 0,
            rank,
        }
    }

    #[test]
    fn the_most_telling_failure_wins_and_the_first_among_equals() {
        let cancel = CancellationToken::new();
        let f = Failures::default();
        f.note(failure(Role::Writer, 2, "broken pipe"));
        assert!(!cancel.is_cancelled(), "noting does not cancel");
        f.add(failure(Role::Writer, 1, "ended without done"), &cancel);
        assert!(cancel.is_cancelled());
        f.add(failure(Role::Reader, 1, "later protocol error"), &cancel);
        assert_eq!(f.best().unwrap().message, "ended without done");
        f.add(failure(Role::Reader, 0, "the plugin's own error"), &cancel);
        assert_eq!(f.best().unwrap().message, "the plugin's own error");
    }

    #[test]
    fn handshake_is_preamble_hello_configure() {
        let context = JobContext {
            job_id: "j".into(),
            fingerprint: "f".repeat(32),
            time_zone: "UTC".into(),
            task_index: 2,
            task_count: 3,
        };
        let bytes = handshake(&context, &serde_json::json!({"taskIndex": 2})).unwrap();
        let mut buf = bytes::BytesMut::from(&bytes[..]);
        let mut decoder = FrameDecoder::default();
        let hello = decode_message(&decoder.decode_frame(&mut buf).unwrap().unwrap()).unwrap();
        assert!(matches!(hello, Message::Hello(h) if h.role == Role::Engine));
        match decode_message(&decoder.decode_frame(&mut buf).unwrap().unwrap()).unwrap() {
            Message::Configure(c) => {
                assert_eq!(c.context, context);
                assert_eq!(c.task["taskIndex"], 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(buf.is_empty());
    }
}
