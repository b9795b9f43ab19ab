//! `plan` and `task`: the steps of [`crate::lifecycle`] run as separate commands over
//! a [`PlanStore`] (`commit` and `abort` are in [`super::finish`]). Each returns the
//! summary of what it did.

use std::sync::Arc;

use protocol::message::JobContext;
use protocol::Role;

use super::{
    attempt_id, read_doc, report_file, task_file, to_json, CommitDoc, CommitState, Created,
    PlanDoc, PlanStore, PlannedSide, ReportDoc, TaskDoc, COMMIT_FILE, FORMAT, PLAN_FILE,
};
use crate::commit::{self, CommitReport};
use crate::error::EngineError;
use crate::job::Job;
use crate::lifecycle::{self, Ctx, RunOptions, Session};
use crate::limits::{ErrorLimit, MonotonicClock, SpeedLimiter};
use crate::plugins::{self, Plugin};
use crate::summary::{Committed, Summary};
use crate::task::{run_task, TaskError};

pub(super) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(super) fn base_summary(plan: &PlanDoc) -> Summary {
    Summary {
        job_id: plan.job_id.clone(),
        job_file: plan.source_name.clone(),
        reader: plan.reader.name.clone(),
        writer: plan.writer.name.clone(),
        time_zone: plan.time_zone.clone(),
        tasks: plan.task_count as u64,
        channels: plan.task_count,
        ..Summary::default()
    }
}

/// A summary of a command that stopped before it started anything.
pub(super) fn refused(
    job_file: &str,
    e: EngineError,
    committed: Option<(Committed, String)>,
) -> Summary {
    crate::error!("{e}");
    let at = now();
    let (committed, commit_detail) = match committed {
        Some((c, d)) => (c, Some(d)),
        None => (Committed::None, None),
    };
    Summary {
        job_id: String::new(),
        job_file: job_file.to_owned(),
        outcome: e.outcome().to_owned(),
        exit_code: e.exit_code(),
        error: Some(crate::secrets::global().redact(&e.to_string())),
        committed,
        commit_detail,
        start: at.clone(),
        end: at,
        ..Summary::default()
    }
}

pub(super) fn done(plan: &PlanDoc, message: String, committed: Committed) -> Summary {
    crate::info!("{message}");
    let at = now();
    Summary {
        outcome: "succeeded".to_owned(),
        committed,
        commit_detail: Some(message),
        start: at.clone(),
        end: at,
        ..base_summary(plan)
    }
}

/// Reads `plan.json` and registers its secrets for redaction.
pub(super) async fn load_plan(store: &PlanStore) -> Result<PlanDoc, EngineError> {
    let Some(plan) = read_doc::<PlanDoc>(store, PLAN_FILE).await? else {
        return Err(EngineError::config(format!(
            "no plan at {}: run `streamport plan JOB --plan {}` first",
            store.uri(),
            store.uri()
        )));
    };
    if plan.format != FORMAT {
        return Err(EngineError::config(format!(
            "plan {}: format {:?}, this streamport reads {FORMAT:?}",
            store.uri(),
            plan.format
        )));
    }
    let mut secrets = Vec::new();
    crate::secrets::collect_secrets(&plan.reader.parameter, &mut secrets);
    crate::secrets::collect_secrets(&plan.writer.parameter, &mut secrets);
    crate::secrets::global().add(secrets);
    Ok(plan)
}

pub(super) fn context_of(plan: &PlanDoc) -> JobContext {
    JobContext {
        job_id: plan.job_id.clone(),
        fingerprint: plan.fingerprint.clone(),
        time_zone: plan.time_zone.clone(),
        task_index: 0,
        task_count: 0,
    }
}

fn time_zone_of(plan: &PlanDoc) -> chrono_tz::Tz {
    plan.time_zone.parse().unwrap_or(chrono_tz::UTC)
}

pub(super) fn resolve(
    plan: &PlanDoc,
    options: &RunOptions,
) -> Result<(Plugin, Plugin), EngineError> {
    Ok((
        plugins::resolve(Role::Reader, &plan.reader.name, &options.plugin_dirs)?,
        plugins::resolve(Role::Writer, &plan.writer.name, &options.plugin_dirs)?,
    ))
}

pub(super) fn unlimited_session(plan: &PlanDoc, options: &RunOptions) -> Session {
    let dirty = options
        .dirty_file
        .clone()
        .unwrap_or_else(|| lifecycle::default_dirty_path(&plan.source_name, &plan.job_id));
    Session::start(
        time_zone_of(plan),
        SpeedLimiter::new(None, None, Arc::new(MonotonicClock::default())),
        ErrorLimit::default(),
        dirty,
        options,
    )
}

/// `streamport plan`: check, prepare, split; writes the plan. Planning the same job at
/// a location that already holds its plan does nothing (a retried plan step).
pub async fn plan(
    job: Job,
    store: PlanStore,
    tasks: Option<usize>,
    options: RunOptions,
) -> Summary {
    match read_doc::<PlanDoc>(&store, PLAN_FILE).await {
        Ok(Some(existing)) if existing.fingerprint == job.fingerprint => {
            return done(
                &existing,
                format!(
                    "{} already holds the plan of this job (job id {}, {} tasks); nothing done",
                    store.uri(),
                    existing.job_id,
                    existing.task_count
                ),
                Committed::None,
            )
        }
        Ok(Some(existing)) => {
            let e = EngineError::config(format!(
                "{} holds the plan of another job ({}, job id {}): give each window its own plan location, or `streamport abort` that plan and remove it",
                store.uri(),
                existing.source_name,
                existing.job_id
            ));
            return refused(&job.source_name, e, None);
        }
        Ok(None) => {}
        Err(e) => return refused(&job.source_name, e, None),
    }
    let job_id = lifecycle::new_job_id();
    let mut summary = lifecycle::job_summary(&job, &job_id);
    let session = Session::start(
        job.time_zone,
        SpeedLimiter::new(None, None, Arc::new(MonotonicClock::default())),
        ErrorLimit::default(),
        lifecycle::default_dirty_path(&job.source_name, &job_id),
        &options,
    );
    let mut report = CommitReport::default();
    let result = async {
        let reader = plugins::resolve(Role::Reader, &job.reader.name, &options.plugin_dirs)?;
        let writer = plugins::resolve(Role::Writer, &job.writer.name, &options.plugin_dirs)?;
        lifecycle::log_start(&job, &job_id, &reader, &writer);
        let ctx = Ctx::new(
            (&job.reader.parameter, &job.writer.parameter),
            &session.shared,
            lifecycle::job_context(&job, &job_id),
        );
        let advice = tasks.unwrap_or(job.settings.channel);
        let planned = match lifecycle::plan(&ctx, &session.guard, (&reader, &writer), advice).await
        {
            Ok(p) => p,
            Err((e, r)) => {
                report = r;
                return Err(e);
            }
        };
        let n = planned.tasks.len();
        summary.tasks = n as u64;
        let doc = PlanDoc {
            format: FORMAT.to_owned(),
            job_id: job_id.clone(),
            source_name: job.source_name.clone(),
            fingerprint: job.fingerprint.clone(),
            time_zone: job.time_zone.name().to_owned(),
            schedule_time: job.schedule_time.to_rfc3339(),
            reader: PlannedSide {
                name: job.reader.name.clone(),
                parameter: job.reader.parameter.clone(),
                state: planned.reader_state.clone(),
            },
            writer: PlannedSide {
                name: job.writer.name.clone(),
                parameter: job.writer.parameter.clone(),
                state: planned.writer_state.clone(),
            },
            task_count: n,
            bytes_per_sec: job.settings.bytes_per_sec,
            records_per_sec: job.settings.records_per_sec,
            error_limit_record: job.settings.error_limit.record,
            error_limit_percentage: job.settings.error_limit.percentage,
            post_timeout_secs: options.post_timeout.as_secs_f64(),
        };
        let written = async {
            for (i, (reader_config, writer_config)) in planned.tasks.into_iter().enumerate() {
                let task = TaskDoc {
                    reader: reader_config,
                    writer: writer_config,
                };
                store.put(&task_file(i), &to_json(&task)?).await?;
            }
            // Last: a plan exists once plan.json does.
            store.put(PLAN_FILE, &to_json(&doc)?).await
        }
        .await;
        if let Err(e) = written {
            crate::error!("cannot write the plan: {e}");
            report =
                commit::abort_writer(&ctx, &session.guard, &writer, &planned.writer_state, None)
                    .await;
            return Err(e);
        }
        crate::info!(
            "planned {n} tasks at {}: run `streamport task --plan {} --index I` for I in 0..{n}, then `streamport commit --plan {}`",
            store.uri(),
            store.uri(),
            store.uri()
        );
        report = CommitReport {
            committed: Committed::None,
            detail: Some(format!(
                "planned {n} tasks; nothing is visible before `streamport commit`"
            )),
        };
        Ok(())
    }
    .await;
    session.finish(&mut summary, result, report).await;
    summary
}

/// The speed limit of one task process: the job's limit divided by the task count
/// (rounded up), so the tasks together never exceed the job's limit.
pub fn per_task_limit(limit: Option<u64>, task_count: usize) -> Option<u64> {
    limit.map(|l| l.div_ceil(task_count.max(1) as u64).max(1))
}

/// `streamport task --index N`: runs task N and writes its report, unless an attempt
/// of it already did.
pub async fn task(store: PlanStore, index: usize, options: RunOptions) -> Summary {
    let uri = store.uri();
    let plan = match load_plan(&store).await {
        Ok(p) => p,
        Err(e) => return refused(&uri, e, None),
    };
    match read_doc::<CommitDoc>(&store, COMMIT_FILE).await {
        Ok(Some(c)) if c.state == CommitState::Committed => {
            return done(
                &plan,
                format!("the plan at {uri} is already committed: task {index} has nothing to do"),
                Committed::All,
            )
        }
        Ok(Some(c)) if c.state == CommitState::Aborted => {
            let e = EngineError::failed(format!(
                "the plan at {uri} was aborted ({}): plan the window again",
                c.at
            ));
            return refused(&plan.source_name, e, None);
        }
        Ok(_) => {}
        Err(e) => return refused(&plan.source_name, e, None),
    }
    if index >= plan.task_count {
        return done(
            &plan,
            format!(
                "the plan has {} tasks: index {index} has nothing to do",
                plan.task_count
            ),
            Committed::None,
        );
    }
    match read_doc::<ReportDoc>(&store, &report_file(index)).await {
        Ok(Some(r)) => {
            return done(
                &plan,
                format!(
                    "task {index} was already reported by attempt {}; nothing done",
                    r.attempt
                ),
                Committed::None,
            )
        }
        Ok(None) => {}
        Err(e) => return refused(&plan.source_name, e, None),
    }
    let task_doc = match read_doc::<TaskDoc>(&store, &task_file(index)).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            let e = EngineError::failed(format!("plan {uri}: {} is missing", task_file(index)));
            return refused(&plan.source_name, e, None);
        }
        Err(e) => return refused(&plan.source_name, e, None),
    };
    let mut summary = Summary {
        channels: 1,
        ..base_summary(&plan)
    };
    summary.tasks = 1;
    let dirty = options.dirty_file.clone().unwrap_or_else(|| {
        let stem = format!("{}-task{index}", plan.source_name);
        lifecycle::default_dirty_path(&stem, &plan.job_id)
    });
    let n = plan.task_count;
    let limiter = SpeedLimiter::new(
        per_task_limit(plan.bytes_per_sec, n),
        per_task_limit(plan.records_per_sec, n),
        Arc::new(MonotonicClock::default()),
    );
    // A task alone over the record limit puts the job over it; the percentage is the
    // commit's to check, over every task.
    let error_limit = ErrorLimit {
        record: plan.error_limit_record,
        percentage: None,
    };
    let session = Session::start(time_zone_of(&plan), limiter, error_limit, dirty, &options);
    let mut report = CommitReport {
        committed: Committed::None,
        detail: Some(format!(
            "task {index} commits nothing: `streamport commit` does, with one report per task"
        )),
    };
    let result = async {
        let (reader, writer) = resolve(&plan, &options)?;
        let ctx = Ctx::new(
            (&plan.reader.parameter, &plan.writer.parameter),
            &session.shared,
            context_of(&plan),
        );
        crate::info!(
            "task {index} of {n} of job {} ({}): {} → {}",
            plan.job_id,
            plan.source_name,
            reader.name,
            writer.name
        );
        let shared = &session.shared;
        use std::sync::atomic::Ordering::Relaxed;
        shared.stats.tasks_total.store(1, Relaxed);
        shared.stats.transfer_start_ms.store(shared.elapsed_ms(), Relaxed);
        let task_plan = lifecycle::task_plan(
            &ctx,
            (&reader, &writer),
            (index, n),
            (task_doc.reader, task_doc.writer),
        );
        let outcome = run_task(task_plan, shared.clone()).await;
        shared.stats.transfer_end_ms.store(shared.elapsed_ms(), Relaxed);
        let result = match outcome {
            Ok(r) => r,
            Err(TaskError::Failed(e)) => return Err(e),
            Err(TaskError::Cancelled) => {
                return Err(shared
                    .failure()
                    .unwrap_or_else(|| EngineError::failed(format!("task {index} was cancelled"))))
            }
        };
        if let Some(e) = shared.failure() {
            return Err(e);
        }
        let doc = ReportDoc {
            attempt: attempt_id(),
            index,
            report: result.report,
            checkpoints: result.checkpoints,
            records: result.records,
            bytes: result.bytes,
            reader_dirty: shared.stats.reader_dirty.load(Relaxed),
            writer_dirty: shared.stats.writer_dirty.load(Relaxed),
        };
        match store.put_new(&report_file(index), &to_json(&doc)?).await? {
            Created::Created => crate::info!("task {index} reported ({})", doc.attempt),
            Created::Exists(other) => {
                let theirs: Option<ReportDoc> = serde_json::from_slice(&other).ok();
                match theirs {
                    // Our own PutObject, retried after its answer was lost.
                    Some(t) if t.attempt == doc.attempt => {
                        crate::info!("task {index} reported ({})", doc.attempt)
                    }
                    other => {
                        let who = other.map(|t| t.attempt).unwrap_or_default();
                        crate::warn!(
                            "another attempt of task {index} ({who}) reported first: its output is the one committed; what this attempt wrote is never made visible"
                        );
                        report.detail = Some(format!(
                            "task {index} was reported by another attempt ({who}); this attempt's output is discarded by the commit"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    session.finish(&mut summary, result, report).await;
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_speed_limit_is_divided_among_the_tasks() {
        assert_eq!(per_task_limit(None, 4), None);
        assert_eq!(per_task_limit(Some(1000), 4), Some(250));
        assert_eq!(per_task_limit(Some(1001), 4), Some(251));
        assert_eq!(per_task_limit(Some(3), 8), Some(1));
        assert_eq!(per_task_limit(Some(1000), 0), Some(1000));
    }
}
