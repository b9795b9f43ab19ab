//! A job from start to end.
//!
//! `check` (reader and writer at once) → `prepare` (reader, writer) → `split` (reader with the
//! channel count as advice, writer with the reader's task count) → tasks (at most
//! `channel` at once) → final error-limit check → writer `post` (each task's
//! `done.report`, in task order) → reader `post` (the reader tasks' checkpoints, in
//! order). On any failure before the commit the running tasks are cancelled, the
//! writer's `abort` runs and no `post` does; the commit itself is in [`crate::commit`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::SecondsFormat;
use protocol::message::JobContext;
use protocol::runtime::{StepContext, StepRequest};
use protocol::Role;
use serde_json::Value as Json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::commit::{self, CommitGuard, CommitReport};
use crate::error::{EngineError, EXIT_OK};
use crate::job::Job;
use crate::limits::{MonotonicClock, SpeedLimiter};
use crate::plugins::{self, Plugin, PluginDirs};
use crate::progress::{self, MonitorOptions};
use crate::shared::JobShared;
use crate::steps::STEP_TIME_LIMIT;
use crate::summary::Summary;
use crate::task::{run_task, TaskPlan, TaskResult};

/// How to run a job (from the command line).
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub plugin_dirs: PluginDirs,
    /// The dirty-record file; by default `<job file stem>-<job id>.dirty.jsonl` in the
    /// current directory, created only when there is a dirty record.
    pub dirty_file: Option<PathBuf>,
    pub summary_json: Option<PathBuf>,
    pub stall_timeout: Duration,
    pub progress_interval: Duration,
    /// Show a live progress line (stderr is a terminal).
    pub live: bool,
    /// How long the commit (writer `post`, then reader `post`) may take.
    pub post_timeout: Duration,
}

/// A new job id: the start time and a per-process counter.
pub fn new_job_id() -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let now = chrono::Utc::now();
    format!(
        "{}-{:05}-{:04x}{n}",
        now.format("%Y%m%dT%H%M%S"),
        std::process::id() % 100_000,
        now.timestamp_subsec_micros() & 0xffff
    )
}

/// Runs the job; the summary says how it ended (`exit_code`).
pub async fn run(job: Job, options: RunOptions) -> Summary {
    let job_id = new_job_id();
    let mut summary = job_summary(&job, &job_id);
    let dirty_path = options
        .dirty_file
        .clone()
        .unwrap_or_else(|| default_dirty_path(&job.source_name, &job_id));
    let limiter = SpeedLimiter::new(
        job.settings.bytes_per_sec,
        job.settings.records_per_sec,
        Arc::new(MonotonicClock::default()),
    );
    let session = Session::start(
        job.time_zone,
        limiter,
        job.settings.error_limit.clone(),
        dirty_path,
        &options,
    );
    let mut report = CommitReport::default();
    let result = lifecycle(&job, &job_id, &options, &session, &mut summary, &mut report).await;
    session.finish(&mut summary, result, report).await;
    summary
}

/// The summary of a job that is about to start: its identity, plugins, zone, window.
pub(crate) fn job_summary(job: &Job, job_id: &str) -> Summary {
    Summary {
        job_id: job_id.to_owned(),
        job_file: job.source_name.clone(),
        reader: job.reader.name.clone(),
        writer: job.writer.name.clone(),
        time_zone: job.time_zone.name().to_owned(),
        channels: job.settings.channel,
        schedule_time: job
            .schedule_time
            .to_rfc3339_opts(SecondsFormat::Millis, true),
        window: summary_window(job),
        fingerprint: job.fingerprint.clone(),
        ..Summary::default()
    }
}

/// The dirty-record file's default name: `<job file stem>-<job id>.dirty.jsonl`.
pub(crate) fn default_dirty_path(source_name: &str, job_id: &str) -> PathBuf {
    let stem = std::path::Path::new(source_name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "job".to_owned());
    PathBuf::from(format!("{stem}-{job_id}.dirty.jsonl"))
}

/// The reader's window, as the summary shows it.
fn summary_window(job: &Job) -> Option<crate::summary::SummaryWindow> {
    let w = crate::job::window_check::reader_window(&job.reader.parameter, job.time_zone)?;
    let show = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms).map(|t| {
            t.with_timezone(&job.time_zone)
                .to_rfc3339_opts(SecondsFormat::Millis, true)
        })
    };
    Some(crate::summary::SummaryWindow {
        start: show(w.start_ms)?,
        end: show(w.end_ms)?,
    })
}

/// What one engine process shares while it runs a job or a part of one: the shared
/// state, the progress monitor and watchdog, and the signal watcher.
pub(crate) struct Session {
    pub(crate) shared: Arc<JobShared>,
    pub(crate) guard: Arc<CommitGuard>,
    time_zone: chrono_tz::Tz,
    start: chrono::DateTime<chrono_tz::Tz>,
    stop_monitor: tokio_util::sync::CancellationToken,
    monitor: tokio::task::JoinHandle<()>,
    signals: tokio::task::JoinHandle<()>,
}

impl Session {
    pub(crate) fn start(
        time_zone: chrono_tz::Tz,
        limiter: SpeedLimiter,
        error_limit: crate::limits::ErrorLimit,
        dirty_path: PathBuf,
        options: &RunOptions,
    ) -> Self {
        let start = chrono::Utc::now().with_timezone(&time_zone);
        let shared = Arc::new(JobShared::new(limiter, error_limit, dirty_path));
        let stop_monitor = tokio_util::sync::CancellationToken::new();
        let monitor = tokio::spawn(progress::monitor(
            shared.clone(),
            MonitorOptions {
                interval: options.progress_interval,
                stall_timeout: options.stall_timeout,
                live: options.live,
            },
            stop_monitor.clone(),
        ));
        let guard = Arc::new(CommitGuard::default());
        let signals = tokio::spawn(commit::watch_signals(
            shared.clone(),
            guard.clone(),
            options.post_timeout,
        ));
        Self {
            shared,
            guard,
            time_zone,
            start,
            stop_monitor,
            monitor,
            signals,
        }
    }

    /// Stops the watchers and fills in the summary: counters, speeds, outcome.
    pub(crate) async fn finish(
        self,
        summary: &mut Summary,
        result: Result<(), EngineError>,
        report: CommitReport,
    ) {
        summary.committed = report.committed;
        summary.commit_detail = report.detail.map(|d| crate::secrets::global().redact(&d));
        self.shared.step_sessions.close().await;
        self.signals.abort();
        self.stop_monitor.cancel();
        let _ = self.monitor.await;
        let shared = &self.shared;
        let _ = shared.dirty_file.flush();
        let end = chrono::Utc::now().with_timezone(&self.time_zone);
        let stats = &shared.stats;
        use std::sync::atomic::Ordering::Relaxed;
        summary.start = self.start.to_rfc3339_opts(SecondsFormat::Millis, true);
        summary.end = end.to_rfc3339_opts(SecondsFormat::Millis, true);
        summary.elapsed_secs = (end - self.start).num_microseconds().unwrap_or(0) as f64 / 1e6;
        let (t0, t1) = (
            stats.transfer_start_ms.load(Relaxed),
            stats.transfer_end_ms.load(Relaxed),
        );
        summary.transfer_secs = t1.saturating_sub(t0) as f64 / 1000.0;
        summary.records += stats.records.load(Relaxed);
        summary.written_records += stats.written_records.load(Relaxed);
        let secs = |c: &std::sync::atomic::AtomicU64| (c.load(Relaxed) / 1_000_000) as f64 / 1000.0;
        summary.wait_reader_secs += secs(&stats.wait_reader_ns);
        summary.wait_writer_secs += secs(&stats.wait_writer_ns);
        summary.wait_limit_secs += secs(&stats.wait_limit_ns);
        let plugins = shared.plugin_versions();
        if !plugins.is_empty() {
            summary.plugins = plugins;
        }
        summary.bytes += stats.bytes.load(Relaxed);
        summary.reader_dirty_records += stats.reader_dirty.load(Relaxed);
        summary.writer_dirty_records += stats.writer_dirty.load(Relaxed);
        summary.dirty_records = summary.reader_dirty_records + summary.writer_dirty_records;
        summary.tasks = summary.tasks.max(stats.tasks_total.load(Relaxed));
        summary.tasks_succeeded += stats.tasks_done.load(Relaxed);
        summary.dirty_file = shared
            .dirty_file
            .is_used()
            .then(|| shared.dirty_file.path().display().to_string());
        summary.compute_speeds();
        match result {
            Ok(()) => {
                summary.outcome = "succeeded".to_owned();
                summary.exit_code = EXIT_OK;
            }
            Err(e) => {
                summary.outcome = e.outcome().to_owned();
                summary.exit_code = e.exit_code();
                summary.error = Some(crate::secrets::global().redact(&e.to_string()));
            }
        }
    }
}

/// The job-level context of the steps and tasks: the plugins' parameters, the shared
/// state and the job's identity.
pub(crate) struct Ctx<'a> {
    reader_parameter: &'a Json,
    writer_parameter: &'a Json,
    pub(crate) shared: &'a Arc<JobShared>,
    pub(crate) base: JobContext,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        (reader_parameter, writer_parameter): (&'a Json, &'a Json),
        shared: &'a Arc<JobShared>,
        base: JobContext,
    ) -> Self {
        Self {
            reader_parameter,
            writer_parameter,
            shared,
            base,
        }
    }

    pub(crate) fn request(
        &self,
        role: Role,
        state: &Json,
        count: Option<usize>,
        reports: Vec<Json>,
        task_count: usize,
    ) -> StepRequest {
        let parameter = match role {
            Role::Writer => self.writer_parameter.clone(),
            _ => self.reader_parameter.clone(),
        };
        StepRequest {
            context: StepContext {
                parameter,
                state: state.clone(),
                job: JobContext {
                    task_count: task_count as u32,
                    ..self.base.clone()
                },
            },
            count,
            reports,
        }
    }

    pub(crate) async fn step(
        &self,
        plugin: &Plugin,
        step: &str,
        request: &StepRequest,
    ) -> Result<Json, EngineError> {
        crate::info!("{} {step}", plugin.name);
        self.shared
            .step_sessions
            .run(
                plugin,
                step,
                request,
                Some(self.shared),
                Some(&self.shared.cancel),
                STEP_TIME_LIMIT,
            )
            .await
            .map_err(|e| self.shared.failure().unwrap_or(e))
    }
}

/// The job's identity as the plugins see it (task index and count filled in later).
pub(crate) fn job_context(job: &Job, job_id: &str) -> JobContext {
    JobContext {
        job_id: job_id.to_owned(),
        fingerprint: job.fingerprint.clone(),
        time_zone: job.time_zone.name().to_owned(),
        task_index: 0,
        task_count: 0,
    }
}

/// What check, prepare and split produce: the job states and each task's configs.
pub(crate) struct Planned {
    pub(crate) reader_state: Json,
    pub(crate) writer_state: Json,
    /// (reader config, writer config) per task, in task order.
    pub(crate) tasks: Vec<(Json, Json)>,
}

/// `check` (reader and writer at once), `prepare` (reader, writer), `split` (both). A failure
/// after the writer's `prepare` started runs the writer's `abort` (its report is
/// returned with the error).
pub(crate) async fn plan(
    ctx: &Ctx<'_>,
    guard: &CommitGuard,
    (reader, writer): (&Plugin, &Plugin),
    channel: usize,
) -> Result<Planned, (EngineError, CommitReport)> {
    let null = Json::Null;
    let no_report = |e| (e, CommitReport::default());
    // The two checks change nothing and depend on nothing: they run at once. When
    // both fail, the reader's error is the one reported (DataX checks it first).
    let (reader_request, writer_request) = (
        ctx.request(reader.role, &null, None, vec![], 0),
        ctx.request(writer.role, &null, None, vec![], 0),
    );
    let (reader_check, writer_check) = tokio::join!(
        ctx.step(reader, "check", &reader_request),
        ctx.step(writer, "check", &writer_request)
    );
    reader_check.map_err(no_report)?;
    writer_check.map_err(no_report)?;
    // Both sessions (where the plugins serve them) start now, at once.
    tokio::join!(
        ctx.shared.step_sessions.open(reader),
        ctx.shared.step_sessions.open(writer)
    );
    let reader_state = ctx
        .step(
            reader,
            "prepare",
            &ctx.request(Role::Reader, &null, None, vec![], 0),
        )
        .await
        .map_err(no_report)?;
    let mut writer_state = Json::Null;
    let outcome = async {
        writer_state = ctx
            .step(
                writer,
                "prepare",
                &ctx.request(Role::Writer, &null, None, vec![], 0),
            )
            .await?;
        split_tasks(
            ctx,
            (reader, writer),
            (&reader_state, &writer_state),
            channel,
        )
        .await
    }
    .await;
    match outcome {
        Ok(tasks) => Ok(Planned {
            reader_state,
            writer_state,
            tasks,
        }),
        Err(e) => {
            let e = ctx.shared.failure().unwrap_or(e);
            crate::error!("job failed: {e}");
            let report = commit::abort_writer(ctx, guard, writer, &writer_state, None).await;
            Err((e, report))
        }
    }
}

async fn lifecycle(
    job: &Job,
    job_id: &str,
    options: &RunOptions,
    session: &Session,
    summary: &mut Summary,
    report: &mut CommitReport,
) -> Result<(), EngineError> {
    let (shared, guard) = (&session.shared, &*session.guard);
    let reader = plugins::resolve(Role::Reader, &job.reader.name, &options.plugin_dirs)?;
    let writer = plugins::resolve(Role::Writer, &job.writer.name, &options.plugin_dirs)?;
    summary.reader = reader.name.clone();
    summary.writer = writer.name.clone();
    log_start(job, job_id, &reader, &writer);
    let ctx = Ctx::new(
        (&job.reader.parameter, &job.writer.parameter),
        shared,
        job_context(job, job_id),
    );
    let channel = job.settings.channel;
    let planned = match plan(&ctx, guard, (&reader, &writer), channel).await {
        Ok(p) => p,
        Err((e, r)) => {
            *report = r;
            return Err(e);
        }
    };
    let tasks = async {
        let results = run_tasks(&ctx, (&reader, &writer), planned.tasks, channel).await?;
        final_error_check(shared)?;
        Ok::<_, EngineError>(results)
    }
    .await;
    let transfer = match tasks {
        Ok(t) => t,
        Err(e) => {
            let e = shared.failure().unwrap_or(e);
            crate::log::job_failed(&e);
            *report = commit::abort_writer(&ctx, guard, &writer, &planned.writer_state, None).await;
            return Err(e);
        }
    };
    let (result, committed) = commit::commit(
        &ctx,
        guard,
        (&reader, &writer),
        (&planned.reader_state, &planned.writer_state),
        transfer,
        options.post_timeout,
    )
    .await;
    *report = committed;
    result
}

pub(crate) fn log_start(job: &Job, job_id: &str, reader: &Plugin, writer: &Plugin) {
    crate::info!(
        "job {job_id}: {} ({} format)",
        job.source_name,
        job.format.name()
    );
    crate::info!(
        "reader {} ({}), writer {} ({})",
        reader.name,
        reader.path.display(),
        writer.name,
        writer.path.display()
    );
    crate::info!(
        "time zone {}, schedule time {}",
        job.time_zone.name(),
        job.schedule_time.format("%Y-%m-%d %H:%M:%S")
    );
    let s = &job.settings;
    let speed = match (s.bytes_per_sec, s.records_per_sec) {
        (None, None) => "no speed limit".to_owned(),
        (b, r) => format!(
            "speed limit for the whole job: {}{}",
            b.map(|b| format!("{b} bytes/s ({:.2} MiB/s)", b as f64 / 1048576.0))
                .unwrap_or_default(),
            r.map(|r| format!("{}{r} records/s", if b.is_some() { " and " } else { "" }))
                .unwrap_or_default()
        ),
    };
    let errors = match (s.error_limit.record, s.error_limit.percentage) {
        (Some(r), _) => format!("error limit {r} dirty records"),
        (None, Some(p)) => format!("error limit {p} of the records read"),
        (None, None) => "no error limit".to_owned(),
    };
    crate::info!("{} channels, {speed}, {errors}", s.channel);
    crate::info!("fingerprint {}", job.fingerprint);
    for (side, section) in [("reader", &job.reader), ("writer", &job.writer)] {
        crate::info!(
            "{side} parameter: {}",
            crate::secrets::masked(&section.parameter)
        );
    }
}

/// Splits the job: the reader with the channel count as advice, the writer with the
/// reader's task count. (reader config, writer config) per task.
pub(crate) async fn split_tasks(
    ctx: &Ctx<'_>,
    (reader, writer): (&Plugin, &Plugin),
    (reader_state, writer_state): (&Json, &Json),
    channel: usize,
) -> Result<Vec<(Json, Json)>, EngineError> {
    let reader_tasks = split(ctx, reader, reader_state, channel).await?;
    let n = reader_tasks.len();
    if n > protocol::runtime::MAX_TASKS {
        return Err(EngineError::failed(format!(
            "{} split returned {n} tasks; a job runs at most {} (a writer's split refuses more)",
            reader.name,
            protocol::runtime::MAX_TASKS
        )));
    }
    let writer_tasks = split(ctx, writer, writer_state, n).await?;
    if writer_tasks.len() != n {
        return Err(EngineError::failed(format!(
            "{} split returned {} tasks, but the reader has {n}: a writer must return exactly the count asked",
            writer.name,
            writer_tasks.len()
        )));
    }
    Ok(reader_tasks.into_iter().zip(writer_tasks).collect())
}

/// The plan of task `index` of `count`.
pub(crate) fn task_plan(
    ctx: &Ctx<'_>,
    (reader, writer): (&Plugin, &Plugin),
    (index, count): (usize, usize),
    (reader_config, writer_config): (Json, Json),
) -> TaskPlan {
    TaskPlan {
        index,
        reader: reader.clone(),
        writer: writer.clone(),
        reader_config,
        writer_config,
        context: JobContext {
            task_index: index as u32,
            task_count: count as u32,
            ..ctx.base.clone()
        },
    }
}

/// Runs the tasks, at most `channel` at once; their results in task order.
pub(crate) async fn run_tasks(
    ctx: &Ctx<'_>,
    plugins: (&Plugin, &Plugin),
    tasks: Vec<(Json, Json)>,
    channel: usize,
) -> Result<Vec<TaskResult>, EngineError> {
    let n = tasks.len();
    crate::info!(
        "{} splits into {n} tasks; running at most {} at once",
        plugins.0.name,
        channel.min(n)
    );
    let shared = ctx.shared;
    shared
        .stats
        .tasks_total
        .store(n as u64, std::sync::atomic::Ordering::Relaxed);
    shared
        .stats
        .transfer_start_ms
        .store(shared.elapsed_ms(), std::sync::atomic::Ordering::Relaxed);
    let slots = Arc::new(Semaphore::new(channel.max(1)));
    let mut running = JoinSet::new();
    for (index, configs) in tasks.into_iter().enumerate() {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p,
            _ = shared.cancel.cancelled() => break,
        };
        if shared.cancel.is_cancelled() {
            break;
        }
        let plan = task_plan(ctx, plugins, (index, n), configs);
        let task_shared = shared.clone();
        running.spawn(async move {
            let result = run_task(plan, task_shared).await;
            drop(permit);
            (index, result)
        });
    }
    let mut results: Vec<Option<TaskResult>> = vec![None; n];
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok((index, Ok(result))) => {
                crate::info!("task {index} done: {} records", result.records);
                results[index] = Some(result);
            }
            Ok((_, Err(_))) => {}
            Err(e) => shared.fail(EngineError::failed(format!("a task panicked: {e}"))),
        }
    }
    shared
        .stats
        .transfer_end_ms
        .store(shared.elapsed_ms(), std::sync::atomic::Ordering::Relaxed);
    if let Some(e) = shared.failure() {
        return Err(e);
    }
    let results: Vec<TaskResult> = results.into_iter().flatten().collect();
    if results.len() != n {
        return Err(EngineError::failed("not every task finished"));
    }
    Ok(results)
}

/// The error limit over the whole job, once every task has finished.
pub(crate) fn final_error_check(shared: &JobShared) -> Result<(), EngineError> {
    let stats = &shared.stats;
    let read = stats.records.load(std::sync::atomic::Ordering::Relaxed)
        + stats
            .reader_dirty
            .load(std::sync::atomic::Ordering::Relaxed);
    shared
        .error_limit
        .check_final(stats.dirty(), read)
        .map_err(EngineError::ErrorLimit)
}

pub(crate) async fn split(
    ctx: &Ctx<'_>,
    plugin: &Plugin,
    state: &Json,
    count: usize,
) -> Result<Vec<Json>, EngineError> {
    let role = plugin.role;
    let value = ctx
        .step(
            plugin,
            "split",
            &ctx.request(role, state, Some(count), vec![], 0),
        )
        .await?;
    match value {
        Json::Array(tasks) if !tasks.is_empty() => Ok(tasks),
        Json::Array(_) => Err(EngineError::failed(format!(
            "{} split returned no task",
            plugin.name
        ))),
        other => Err(EngineError::failed(format!(
            "{} split returned {} instead of an array of task configs",
            plugin.name,
            match other {
                Json::Object(_) => "an object",
                Json::Null => "null",
                _ => "a scalar",
            }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_shows_the_readers_window_in_the_jobs_zone() {
        let text = r#"{"job": {"setting": {"timeZone": "Asia/Shanghai"}, "content": [{
            "reader": {"name": "otsstreamreader", "parameter": {
                "startTimestampMillis": 1732154400000, "endTimestampMillis": 1732154700000}},
            "writer": {"name": "streamwriter", "parameter": {}}}]}}"#;
        let options = crate::job::LoadOptions::default();
        let job = crate::job::load_text(text, "j.json", &options).unwrap();
        let window = summary_window(&job).unwrap();
        assert_eq!(window.start, "2024-11-21T10:00:00.000+08:00");
        assert_eq!(window.end, "2024-11-21T10:05:00.000+08:00");
        let text = text.replace("otsstreamreader", "streamreader").replace(
            r#""startTimestampMillis": 1732154400000, "endTimestampMillis": 1732154700000"#,
            r#""sliceRecordCount": 1"#,
        );
        let job = crate::job::load_text(&text, "j.json", &options).unwrap();
        assert!(summary_window(&job).is_none());
    }
}
