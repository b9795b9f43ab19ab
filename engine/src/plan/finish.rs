//! `commit` and `abort` of a plan (see [`super`]): the commit's outcome is kept in
//! `commit.json`, so a re-run converges and a run after success does nothing.

use std::time::Duration;

use serde_json::Value as Json;

use super::commands::{
    base_summary, context_of, done, load_plan, now, refused, resolve, unlimited_session,
};
use super::{
    read_doc, report_file, to_json, CommitDoc, CommitState, PlanStore, ReportDoc, COMMIT_FILE,
};
use crate::commit::{self, CommitReport};
use crate::error::EngineError;
use crate::lifecycle::{Ctx, RunOptions};
use crate::limits::ErrorLimit;
use crate::summary::{Committed, Summary};
use crate::task::TaskResult;

/// The reports of every task, or the indexes that have none.
async fn reports(
    store: &PlanStore,
    n: usize,
) -> Result<Result<Vec<ReportDoc>, Vec<usize>>, EngineError> {
    let mut found = Vec::with_capacity(n);
    let mut missing = Vec::new();
    for i in 0..n {
        match read_doc::<ReportDoc>(store, &report_file(i)).await? {
            Some(r) => found.push(r),
            None => missing.push(i),
        }
    }
    Ok(if missing.is_empty() {
        Ok(found)
    } else {
        Err(missing)
    })
}

async fn record(
    store: &PlanStore,
    state: CommitState,
    report: &CommitReport,
) -> Result<(), EngineError> {
    let doc = CommitDoc {
        state,
        committed: report.committed.name().to_owned(),
        detail: report
            .detail
            .as_ref()
            .map(|d| crate::secrets::global().redact(d)),
        at: now(),
    };
    store.put(COMMIT_FILE, &to_json(&doc)?).await
}

fn committed_of(doc: &CommitDoc) -> Committed {
    Committed::parse(&doc.committed).unwrap_or(Committed::Unknown)
}

/// `streamport commit`: every report present, the job-wide error limit, then writer
/// `post` and reader `post`, recorded in `commit.json`.
pub async fn commit_plan(store: PlanStore, options: RunOptions) -> Summary {
    let uri = store.uri();
    let plan = match load_plan(&store).await {
        Ok(p) => p,
        Err(e) => return refused(&uri, e, None),
    };
    match read_doc::<CommitDoc>(&store, COMMIT_FILE).await {
        Ok(Some(c)) if c.state == CommitState::Committed => {
            return done(
                &plan,
                format!(
                    "already committed at {}{}; nothing committed again",
                    c.at,
                    c.detail.map(|d| format!(" ({d})")).unwrap_or_default()
                ),
                Committed::All,
            )
        }
        Ok(Some(c)) if c.state == CommitState::Aborted => {
            let e = EngineError::failed(format!(
                "the plan at {uri} was aborted at {}: nothing is committed; plan the window again",
                c.at
            ));
            let what = (committed_of(&c), c.detail.unwrap_or_default());
            return refused(&plan.source_name, e, Some(what));
        }
        Ok(_) => {}
        Err(e) => return refused(&plan.source_name, e, None),
    }
    let n = plan.task_count;
    let docs = match reports(&store, n).await {
        Ok(Ok(d)) => d,
        Ok(Err(missing)) => {
            let e = EngineError::failed(format!(
                "{} of {n} tasks have no report yet (indexes {missing:?}): run them (every index 0..{n} must succeed; a Job's completions must be at least {n}); nothing was committed",
                missing.len()
            ));
            let detail = "the commit did not start: nothing of this job is visible".to_owned();
            return refused(&plan.source_name, e, Some((Committed::None, detail)));
        }
        Err(e) => return refused(&plan.source_name, e, None),
    };
    let mut summary = base_summary(&plan);
    summary.tasks_succeeded = n as u64;
    for d in &docs {
        summary.records += d.records;
        summary.bytes += d.bytes;
        summary.reader_dirty_records += d.reader_dirty;
        summary.writer_dirty_records += d.writer_dirty;
    }
    let post_timeout = Duration::from_secs_f64(plan.post_timeout_secs.max(1.0));
    let options = RunOptions {
        post_timeout,
        ..options
    };
    let session = unlimited_session(&plan, &options);
    let mut report = CommitReport::default();
    let result = async {
        let (reader, writer) = resolve(&plan, &options)?;
        let ctx = Ctx::new(
            (&plan.reader.parameter, &plan.writer.parameter),
            &session.shared,
            context_of(&plan),
        );
        let limit = ErrorLimit {
            record: plan.error_limit_record,
            percentage: plan.error_limit_percentage,
        };
        let dirty = summary.reader_dirty_records + summary.writer_dirty_records;
        if let Err(text) = limit.check_final(dirty, summary.records + summary.reader_dirty_records) {
            crate::error!("{text}");
            report = commit::abort_writer(&ctx, &session.guard, &writer, &plan.writer.state, None).await;
            record(&store, CommitState::Aborted, &report).await?;
            return Err(EngineError::ErrorLimit(text));
        }
        record(&store, CommitState::Committing, &CommitReport {
            committed: Committed::Unknown,
            detail: Some("the commit started and has not ended: run `streamport commit` again".to_owned()),
        })
        .await?;
        let transfer: Vec<TaskResult> = docs
            .into_iter()
            .map(|d| TaskResult {
                report: d.report,
                checkpoints: d.checkpoints,
                records: d.records,
                bytes: d.bytes,
            })
            .collect();
        let (result, committed) = commit::commit(
            &ctx,
            &session.guard,
            (&reader, &writer),
            (&plan.reader.state, &plan.writer.state),
            transfer,
            post_timeout,
        )
        .await;
        report = committed;
        let state = if result.is_ok() { CommitState::Committed } else { CommitState::Failed };
        if let Err(e) = record(&store, state, &report).await {
            crate::error!("{e}");
            if result.is_ok() {
                return Err(EngineError::failed(format!(
                    "the commit completed but could not be recorded ({e}); running `streamport commit` again commits nothing twice"
                )));
            }
        }
        result
    }
    .await;
    session.finish(&mut summary, result, report).await;
    summary
}

/// `streamport abort`: the writer's `abort` (with the reports when a commit had
/// started), recorded in `commit.json`; a committed plan is left as it is.
pub async fn abort_plan(store: PlanStore, options: RunOptions) -> Summary {
    let uri = store.uri();
    let plan = match load_plan(&store).await {
        Ok(p) => p,
        Err(e) => return refused(&uri, e, None),
    };
    let state = match read_doc::<CommitDoc>(&store, COMMIT_FILE).await {
        Ok(Some(c)) if c.state == CommitState::Committed => {
            let e = EngineError::failed(format!(
                "the plan at {uri} was committed at {}: there is nothing to undo",
                c.at
            ));
            let what = (Committed::All, c.detail.unwrap_or_default());
            return refused(&plan.source_name, e, Some(what));
        }
        Ok(c) => c.map(|c| c.state),
        Err(e) => return refused(&plan.source_name, e, None),
    };
    let post_started = matches!(state, Some(CommitState::Committing | CommitState::Failed));
    let reports = if post_started {
        match reports(&store, plan.task_count).await {
            Ok(Ok(docs)) => Some(docs.into_iter().map(|d| d.report).collect::<Vec<Json>>()),
            Ok(Err(_)) => Some(Vec::new()),
            Err(e) => return refused(&plan.source_name, e, None),
        }
    } else {
        None
    };
    let mut summary = base_summary(&plan);
    let session = unlimited_session(&plan, &options);
    let mut report = CommitReport::default();
    let result = async {
        let (_, writer) = resolve(&plan, &options)?;
        let ctx = Ctx::new(
            (&plan.reader.parameter, &plan.writer.parameter),
            &session.shared,
            context_of(&plan),
        );
        report =
            commit::abort_writer(&ctx, &session.guard, &writer, &plan.writer.state, reports).await;
        record(&store, CommitState::Aborted, &report).await
    }
    .await;
    summary.tasks = plan.task_count as u64;
    session.finish(&mut summary, result, report).await;
    summary
}
