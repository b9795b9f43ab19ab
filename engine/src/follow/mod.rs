//! Follow mode (`streamport run JOB --follow`): a loop of micro-batches, each a small
//! job through the usual steps, until a signal stops it.
//!
//! Once: `check` (reader, writer). Then per batch:
//! reader `prepare` → reader `split` (every task config carries the same
//! `followBatch` id) → the batch fingerprint, hex MD5 of
//! `<follow fingerprint>:<followBatch>`, and a fresh job id go into the JobContext of
//! everything that follows → writer `prepare` → writer `split` → tasks → if nothing was
//! read, the writer's `abort` and no commit; else reader `precommit` (the reader
//! records the pending batch) → the commit ([`crate::commit`]: writer `post`, reader
//! `post`) → the next batch.
//!
//! The writer's `prepare` runs after the reader's `split` (in a window job it runs
//! before): the writer must know the batch fingerprint from its first step on.
//!
//! The reader's parameter gets `"follow": {"commitIntervalSeconds", "commitRecords",
//! "commitBytes", "from"}` (`from` as given until a batch committed, then
//! `checkpoint`); the writer's gets `"follow": true`.
//!
//! A first SIGINT/SIGTERM lets the current batch finish and commit, then the run stops
//! with exit 0; a second one falls back to the commit rules.

pub mod metrics;
pub mod settings;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use protocol::message::JobContext;
use protocol::Role;
use serde_json::Value as Json;

pub use settings::{FollowArgs, FollowSettings};

use crate::commit::{self, CommitReport};
use crate::error::EngineError;
use crate::job::Job;
use crate::lifecycle::{self, Ctx, RunOptions, Session};
use crate::limits::{MonotonicClock, SpeedLimiter};
use crate::plugins::{self, Plugin};
use crate::summary::{Committed, Summary};
use metrics::FollowSummary;

/// Runs the job in follow mode; the summary says how it ended.
pub async fn run(job: Job, options: RunOptions, follow: FollowSettings) -> Summary {
    let job_id = lifecycle::new_job_id();
    let mut summary = lifecycle::job_summary(&job, &job_id);
    summary.window = None;
    let dirty_path = options
        .dirty_file
        .clone()
        .unwrap_or_else(|| lifecycle::default_dirty_path(&job.source_name, &job_id));
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
    session.guard.set_follow();
    let mut run = FollowRun {
        job: &job,
        options: &options,
        follow: &follow,
        session: &session,
        stats: FollowSummary {
            state: "following".to_owned(),
            ..FollowSummary::default()
        },
        report: CommitReport::default(),
        batch_no: 0,
        tasks_total: 0,
        tasks_done: 0,
    };
    let result = run.follow_loop(&job_id, &mut summary).await;
    let FollowRun {
        mut stats,
        mut report,
        tasks_total,
        tasks_done,
        ..
    } = run;
    summary.tasks = tasks_total;
    summary.tasks_succeeded = tasks_done;
    stats.state = "stopped".to_owned();
    let earlier = format!(
        "{} batches committed before ({} records; their checkpoints are saved)",
        stats.batches_committed, stats.records
    );
    match &result {
        Ok(()) => {
            report = CommitReport {
                committed: if stats.batches_committed > 0 {
                    Committed::All
                } else {
                    Committed::None
                },
                detail: Some(format!(
                    "{} batches committed ({} records); {} empty batches committed nothing",
                    stats.batches_committed, stats.records, stats.empty_batches
                )),
            };
        }
        Err(e) => {
            stats.stop_reason = Some(format!("failed in batch {}: {e}", stats_batch(&stats)));
            if stats.batches_committed > 0 {
                if report.committed == Committed::None {
                    report.committed = Committed::Partial;
                }
                let this = report.detail.take().unwrap_or_default();
                report.detail = Some(format!("{earlier}; the failed batch: {this}"));
            }
        }
    }
    if let Some(path) = &follow.metrics_file {
        write_metrics(&stats, path);
    }
    summary.follow = Some(stats);
    session.finish(&mut summary, result, report).await;
    summary
}

fn stats_batch(stats: &FollowSummary) -> u64 {
    stats.batches_committed + stats.empty_batches + 1
}

fn write_metrics(stats: &FollowSummary, path: &std::path::Path) {
    if let Err(e) = stats.write_metrics(path) {
        crate::warn!("--metrics-file {}: cannot write it: {e}", path.display());
    }
}

/// `parameter` with `key` set (a parameter that is not an object is left as it is:
/// the plugin's `check` says what is wrong with it).
fn with_key(parameter: &Json, key: &str, value: Json) -> Json {
    let mut p = parameter.clone();
    if let Some(map) = p.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
    p
}

/// The `followBatch` id every task config of a batch carries, the same in each.
fn follow_batch_of(reader: &str, tasks: &[(Json, Json)]) -> Result<String, EngineError> {
    let mut ids = tasks.iter().map(|(r, _)| r.get("followBatch"));
    let first = match ids.next().flatten() {
        Some(Json::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(EngineError::failed(format!(
                "{reader} split returned a task without \"followBatch\": this reader cannot follow (run the job without --follow / setting.follow)"
            )))
        }
    };
    if ids.any(|id| id.and_then(Json::as_str) != Some(first.as_str())) {
        return Err(EngineError::failed(format!(
            "{reader} split returned tasks with different \"followBatch\" ids: a batch has one"
        )));
    }
    Ok(first)
}

/// How a batch ended.
enum Batch {
    Committed,
    Empty,
}

struct FollowRun<'a> {
    job: &'a Job,
    options: &'a RunOptions,
    follow: &'a FollowSettings,
    session: &'a Session,
    stats: FollowSummary,
    /// The commit report of the last batch that ran a commit or an abort.
    report: CommitReport,
    batch_no: u64,
    tasks_total: u64,
    tasks_done: u64,
}

/// What every batch uses.
struct Plugins {
    reader: Plugin,
    writer: Plugin,
    writer_parameter: Json,
    fingerprint: String,
}

impl FollowRun<'_> {
    async fn follow_loop(
        &mut self,
        job_id: &str,
        summary: &mut Summary,
    ) -> Result<(), EngineError> {
        let job = self.job;
        let reader = plugins::resolve(Role::Reader, &job.reader.name, &self.options.plugin_dirs)?;
        let writer = plugins::resolve(Role::Writer, &job.writer.name, &self.options.plugin_dirs)?;
        summary.reader = reader.name.clone();
        summary.writer = writer.name.clone();
        lifecycle::log_start(job, job_id, &reader, &writer);
        let (fingerprint, window_keys) = settings::follow_fingerprint(job);
        if !window_keys.is_empty() {
            crate::warn!(
                "follow mode: the reader's window keys ({}) are ignored (a follow job has no window) and left out of the fingerprint",
                window_keys.join(", ")
            );
        }
        summary.fingerprint = fingerprint.clone();
        let f = self.follow;
        crate::info!(
            "follow mode: a batch every {} s{}{}, starting from {}; SIGINT/SIGTERM commits the current batch and stops",
            f.commit_interval_secs,
            f.commit_records
                .map(|r| format!(" or {r} records"))
                .unwrap_or_default(),
            f.commit_bytes
                .map(|b| format!(" or {b} bytes"))
                .unwrap_or_default(),
            f.from
        );
        let p = Plugins {
            writer_parameter: with_key(&job.writer.parameter, "follow", Json::Bool(true)),
            reader,
            writer,
            fingerprint,
        };
        let mut from = f.from.clone();
        {
            let reader_parameter =
                with_key(&job.reader.parameter, "follow", f.reader_object(&from));
            let ctx = Ctx::new(
                (&reader_parameter, &p.writer_parameter),
                &self.session.shared,
                self.context(job_id, &p.fingerprint),
            );
            for plugin in [&p.reader, &p.writer] {
                let request = ctx.request(plugin.role, &Json::Null, None, vec![], 0);
                ctx.step(plugin, "check", &request).await?;
            }
        }
        self.metrics();
        loop {
            self.batch_no += 1;
            self.session.guard.next_batch();
            let outcome = self.batch(&p, &from).await?;
            if matches!(outcome, Batch::Committed) {
                from = "checkpoint".to_owned();
            }
            if let Some(signal) = self.session.guard.stop_requested() {
                let n = self.batch_no;
                self.stats.stop_reason = Some(match outcome {
                    Batch::Committed => format!("stopped by {signal} after committing batch {n}"),
                    Batch::Empty => format!(
                        "stopped by {signal} after batch {n}, which read nothing (nothing to commit)"
                    ),
                });
                crate::info!("{}", self.stats.stop_reason.as_deref().unwrap_or_default());
                return Ok(());
            }
            self.metrics();
        }
    }

    fn context(&self, job_id: &str, fingerprint: &str) -> JobContext {
        JobContext {
            fingerprint: fingerprint.to_owned(),
            ..lifecycle::job_context(self.job, job_id)
        }
    }

    fn metrics(&mut self) {
        self.stats.state = if self.session.guard.stop_requested().is_some() {
            "stopping"
        } else {
            "following"
        }
        .to_owned();
        if let Some(path) = &self.follow.metrics_file {
            write_metrics(&self.stats, path);
        }
    }

    /// One micro-batch.
    async fn batch(&mut self, p: &Plugins, from: &str) -> Result<Batch, EngineError> {
        let (shared, guard) = (&self.session.shared, &*self.session.guard);
        let n_batch = self.batch_no;
        let reader_parameter = with_key(
            &self.job.reader.parameter,
            "follow",
            self.follow.reader_object(from),
        );
        let base = self.context(&lifecycle::new_job_id(), &p.fingerprint);
        let ctx = Ctx::new(
            (&reader_parameter, &p.writer_parameter),
            shared,
            base.clone(),
        );
        let null = Json::Null;
        let reader_state = ctx
            .step(
                &p.reader,
                "prepare",
                &ctx.request(Role::Reader, &null, None, vec![], 0),
            )
            .await?;
        let channel = self.job.settings.channel;
        let reader_tasks = lifecycle::split(&ctx, &p.reader, &reader_state, channel).await?;
        let n = reader_tasks.len();
        if n > protocol::runtime::MAX_TASKS {
            return Err(EngineError::failed(format!(
                "{} split returned {n} tasks; a job runs at most {}",
                p.reader.name,
                protocol::runtime::MAX_TASKS
            )));
        }
        let pairs: Vec<(Json, Json)> = reader_tasks.into_iter().map(|r| (r, Json::Null)).collect();
        let follow_batch = follow_batch_of(&p.reader.name, &pairs)?;
        let fingerprint = settings::batch_fingerprint(&p.fingerprint, &follow_batch);
        crate::info!(
            "batch {n_batch} (job {}): followBatch {follow_batch}, fingerprint {fingerprint}, {n} tasks",
            base.job_id
        );
        let ctx = Ctx::new(
            (&reader_parameter, &p.writer_parameter),
            shared,
            JobContext {
                fingerprint,
                ..base
            },
        );
        let mut writer_state = Json::Null;
        let planned = async {
            writer_state = ctx
                .step(&p.writer, "prepare", &ctx.request(Role::Writer, &null, None, vec![], 0))
                .await?;
            let writer_tasks = lifecycle::split(&ctx, &p.writer, &writer_state, n).await?;
            if writer_tasks.len() != n {
                return Err(EngineError::failed(format!(
                    "{} split returned {} tasks, but the reader has {n}: a writer must return exactly the count asked",
                    p.writer.name,
                    writer_tasks.len()
                )));
            }
            let tasks: Vec<(Json, Json)> = pairs
                .into_iter()
                .map(|(r, _)| r)
                .zip(writer_tasks)
                .collect();
            let results = lifecycle::run_tasks(&ctx, (&p.reader, &p.writer), tasks, channel).await?;
            lifecycle::final_error_check(shared)?;
            Ok(results)
        }
        .await;
        self.count_tasks(n);
        let results = match planned {
            Ok(r) => r,
            Err(e) => {
                let e = shared.failure().unwrap_or(e);
                crate::log::job_failed(&e);
                self.report =
                    commit::abort_writer(&ctx, guard, &p.writer, &writer_state, None).await;
                return Err(e);
            }
        };
        let records: u64 = results.iter().map(|t| t.records).sum();
        let bytes: u64 = results.iter().map(|t| t.bytes).sum();
        let checkpoints: Vec<(usize, Json)> = results
            .iter()
            .enumerate()
            .flat_map(|(i, t)| t.checkpoints.iter().map(move |c| (i, c.clone())))
            .collect();
        if records == 0 {
            self.stats.observe_lag(&checkpoints);
            self.show_lag();
            crate::info!(
                "batch {n_batch} read nothing: not committed ({} abort; the checkpoints stay where they were)",
                p.writer.name
            );
            self.report = commit::abort_writer(&ctx, guard, &p.writer, &writer_state, None).await;
            self.stats.empty_batches += 1;
            return Ok(Batch::Empty);
        }
        let reports: Vec<Json> = checkpoints.iter().map(|(_, c)| c.clone()).collect();
        let request = ctx.request(Role::Reader, &reader_state, None, reports, n);
        if let Err(e) = ctx.step(&p.reader, "precommit", &request).await {
            let e = shared.failure().unwrap_or(e);
            crate::error!(
                "batch {n_batch}: {} precommit failed, so the batch is not committed: {e}",
                p.reader.name
            );
            self.report = commit::abort_writer(&ctx, guard, &p.writer, &writer_state, None).await;
            return Err(e);
        }
        let (result, report) = commit::commit(
            &ctx,
            guard,
            (&p.reader, &p.writer),
            (&reader_state, &writer_state),
            results,
            self.options.post_timeout,
        )
        .await;
        // The commit is over: a signal from here on stops the run after this batch.
        guard.next_batch();
        self.report = report;
        result?;
        self.stats.committed(records, bytes, &checkpoints);
        self.show_lag();
        crate::info!(
            "batch {n_batch} committed: {records} records, {bytes} bytes{}",
            self.stats
                .lag_ms
                .map(|l| format!(", lag {:.1} s", l as f64 / 1000.0))
                .unwrap_or_default()
        );
        Ok(Batch::Committed)
    }

    /// The progress line's lag.
    fn show_lag(&self) {
        let stats = &self.session.shared.stats;
        *stats
            .follow_lag_ms
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = self.stats.lag_ms.map(|l| l as u64);
    }

    /// Task counts over all batches (the progress line shows the current batch's).
    fn count_tasks(&mut self, n: usize) {
        self.tasks_total += n as u64;
        self.tasks_done += self.session.shared.stats.tasks_done.swap(0, Relaxed);
    }
}
