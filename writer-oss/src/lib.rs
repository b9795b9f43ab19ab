//! writer-oss: writes records to Alibaba Cloud OSS as text, CSV, Parquet or ORC objects
//! named and laid out as DataX's osswriter does, committed so that nothing half-written
//! is ever visible (Parquet and ORC: [`columnar`]).
//!
//! * `prepare` checks the bucket and `writeMode` (spec oss.md §8.5); `truncate`
//!   deletes only in `post`, once every new object is complete.
//! * Each task writes `<object>__<32 hex>[_N][.suffix]` objects as multipart uploads,
//!   parts uploading while records stream in, and reports the uploads (see [`writer`]).
//! * `post` completes every upload after all tasks succeeded, or none ([`job`]);
//!   `abort` aborts every open upload under the job's names and, given the task reports,
//!   says which of them `post` completed ([`commit`]).
//!
//! The 32 hex digits come from the job's window ([`naming`]), so a re-run of the same
//! window replaces what a failed run left instead of adding to it.
//!
//! `object` may be a template of time-partitioned paths (`$yyyy`, `$MM`, `$dd`, `$HH`,
//! `$mm`; [`partition`]): a task then writes one object sequence per partition
//! ([`route`]), and `post`/`abort` find the job's keys by the template ([`partition::Scope`]).

mod body;
pub mod client;
pub mod columnar;
pub mod commit;
pub mod config;
pub mod convert;
pub mod crc64;
pub mod endpoint;
pub mod error;
pub mod follow;
pub mod job;
pub mod naming;
mod part_buffers;
pub mod partition;
pub mod route;
pub mod sign;
pub mod writer;
#[doc(hidden)]
pub mod xml;

use std::sync::Arc;

use protocol::message::Role;
use protocol::runtime::{
    ParameterSpec, Plugin, PluginError, PluginInfo, RecordSource, StepContext, TaskContext, Writer,
    WriterOutput,
};
use serde_json::{json, Value as Json};

use crate::client::OssClient;
use crate::config::WriterConfig;
use crate::job::JobState;
use crate::writer::{TaskReport, TaskWriter};

/// The plugin.
pub struct OssWriter;

fn runtime() -> Result<tokio::runtime::Runtime, PluginError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| PluginError::internal(format!("cannot start the async runtime: {e}")))
}

fn setup(parameter: &Json, zone: &str) -> Result<(WriterConfig, OssClient), PluginError> {
    let config = WriterConfig::from_parameter(parameter, zone)?;
    let client = OssClient::new(config.client.clone())
        .map_err(|e| PluginError::config(format!("writer-oss: {e}")))?;
    Ok((config, client))
}

fn job_hex(ctx: &StepContext) -> String {
    naming::job_hex(&ctx.job.fingerprint, &ctx.job.job_id)
}

fn state_of(ctx: &StepContext) -> Result<Option<JobState>, PluginError> {
    if ctx.state.is_null() {
        return Ok(None);
    }
    serde_json::from_value(ctx.state.clone())
        .map(Some)
        .map_err(|e| {
            PluginError::config(format!(
                "writer-oss: the job state is not one prepare wrote: {e}"
            ))
        })
}

impl Plugin for OssWriter {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "writer-oss",
            version: env!("CARGO_PKG_VERSION"),
            role: Role::Writer,
            about: "Writes records to OSS as text, CSV, Parquet or ORC objects (DataX osswriter), all or nothing",
        }
    }

    fn parameters(&self) -> Vec<ParameterSpec> {
        config::parameters()
    }

    fn check(&self, ctx: &StepContext) -> Result<(), PluginError> {
        let (_, client) = setup(&ctx.parameter, &ctx.job.time_zone)?;
        crate::follow::warn_once(&ctx.parameter);
        runtime()?
            .block_on(client.check_bucket())
            .map_err(|e| e.into_plugin().context("checking the bucket"))
    }

    fn prepare(&self, ctx: &StepContext) -> Result<Json, PluginError> {
        let (config, client) = setup(&ctx.parameter, &ctx.job.time_zone)?;
        let state = runtime()?.block_on(job::prepare(&client, &config, &job_hex(ctx)))?;
        serde_json::to_value(state).map_err(|e| PluginError::internal(e.to_string()))
    }

    fn split(&self, ctx: &StepContext, count: usize) -> Result<Vec<Json>, PluginError> {
        let (config, _) = setup(&ctx.parameter, &ctx.job.time_zone)?;
        let state = state_of(ctx)?;
        let hex = state
            .as_ref()
            .map_or_else(|| job_hex(ctx), |s| s.job_hex.clone());
        let upload_id = state.and_then(|s| s.upload_id);
        if config.single_object && upload_id.is_none() {
            return Err(PluginError::config(
                "writer-oss: split needs the state prepare wrote (writeSingleObject)",
            ));
        }
        if config.single_object && count > 9998 {
            return Err(PluginError::config(
                "writer-oss: writeSingleObject allows at most 9998 tasks",
            ));
        }
        Ok((0..count)
            .map(|i| {
                json!({"parameter": ctx.parameter, "jobHex": hex, "taskIndex": i,
                       "taskCount": count, "uploadId": upload_id})
            })
            .collect())
    }

    fn post(&self, ctx: &StepContext, reports: &[Json]) -> Result<(), PluginError> {
        self.post_answer(ctx, reports).map(|_| ())
    }

    fn post_answer(&self, ctx: &StepContext, reports: &[Json]) -> Result<Json, PluginError> {
        let (config, client) = setup(&ctx.parameter, &ctx.job.time_zone)?;
        let reports = task_reports(reports)?;
        let state = state_of(ctx)?;
        let rt = runtime()?;
        if config.single_object {
            let upload_id = state.and_then(|s| s.upload_id).ok_or_else(|| {
                PluginError::config("writer-oss: post needs the state prepare wrote")
            })?;
            rt.block_on(job::post_single(&client, &config, &upload_id, &reports))
        } else {
            let hex = state.map_or_else(|| job_hex(ctx), |s| s.job_hex);
            rt.block_on(job::post_multi(&client, &config, &hex, &reports))
        }
    }

    fn abort(&self, ctx: &StepContext) -> Result<(), PluginError> {
        self.abort_answer(ctx, &[]).map(|_| ())
    }

    fn abort_answer(&self, ctx: &StepContext, reports: &[Json]) -> Result<Json, PluginError> {
        let (config, client) = setup(&ctx.parameter, &ctx.job.time_zone)?;
        let state = state_of(ctx)?;
        let reports = if reports.is_empty() {
            None
        } else {
            Some(task_reports(reports)?)
        };
        let rt = runtime()?;
        if config.single_object {
            rt.block_on(commit::abort_single(&client, &config, reports.as_deref()))
        } else {
            let hex = state.map_or_else(|| job_hex(ctx), |s| s.job_hex);
            rt.block_on(commit::abort_multi(
                &client,
                &config,
                &hex,
                reports.as_deref(),
            ))
        }
    }
}

fn task_reports(reports: &[Json]) -> Result<Vec<TaskReport>, PluginError> {
    reports
        .iter()
        .enumerate()
        .map(|(i, r)| {
            serde_json::from_value(r.clone())
                .map_err(|e| PluginError::protocol(format!("writer-oss: report of task {i}: {e}")))
        })
        .collect()
}

impl Writer for OssWriter {
    fn write(
        &self,
        task: &TaskContext,
        input: &mut RecordSource,
        out: &mut WriterOutput,
    ) -> Result<Json, PluginError> {
        let parameter = task.config.get("parameter").cloned().unwrap_or(Json::Null);
        let (config, client) = setup(&parameter, &task.job.time_zone)?;
        let field = |name: &str| task.config.get(name).and_then(Json::as_u64);
        let task_index = field("taskIndex").unwrap_or(u64::from(task.job.task_index)) as u32;
        let task_count = field("taskCount")
            .unwrap_or(u64::from(task.job.task_count.max(1)))
            .max(1) as u32;
        let hex = task
            .config
            .get("jobHex")
            .and_then(Json::as_str)
            .map_or_else(
                || naming::job_hex(&task.job.fingerprint, &task.job.job_id),
                str::to_owned,
            );
        let rt = runtime()?;
        let client = Arc::new(client);
        let writer = if config.single_object {
            let upload_id = task
                .config
                .get("uploadId")
                .and_then(Json::as_str)
                .ok_or_else(|| PluginError::config("writer-oss: the task config has no uploadId"))?
                .to_owned();
            let per_task = 9998 / task_count;
            let first = 2 + task_index * per_task;
            TaskWriter::single(
                &rt,
                client,
                &config,
                task_index,
                upload_id,
                first,
                first + per_task - 1,
            )
        } else if let Some(partitioning) = &config.partitioning {
            let router = route::Router::new(&rt, client, &config, partitioning, &hex, task_index);
            let report = router.run(input, out)?;
            return serde_json::to_value(report).map_err(|e| PluginError::internal(e.to_string()));
        } else {
            TaskWriter::multi(&rt, client, &config, &hex, task_index)
        };
        let report = writer.run(input, out)?;
        serde_json::to_value(report).map_err(|e| PluginError::internal(e.to_string()))
    }
}
