//! The plugin: job steps (check, prepare, split, post, abort) and the task (write).

use protocol::message::{JobContext, Role};
use protocol::runtime::{
    ParameterSpec, Plugin, PluginError, PluginInfo, RecordSource, StepContext, TaskContext, Writer,
    WriterOutput,
};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use tokio::runtime::Runtime;

use crate::client::OdpsClient;
use crate::commit::Markers;
use crate::config::{parameters, OdpsConfig, TASK_KEY};
use crate::convert::Conversions;
use crate::error::OdpsError;
use crate::http::Endpoint;
use crate::schema::TableSchema;
use crate::task::TaskWriter;
use crate::upload::BlockTarget;

/// Block ids a session accepts: [0, 20000).
const MAX_BLOCK_ID: u32 = 20_000;

/// The plugin.
pub struct OdpsWriter;

/// What `prepare` hands to later steps.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobState {
    pub upload_id: String,
    pub tunnel_endpoint: String,
    /// The partition with the table's key names, `pt=1,region=hz`.
    pub partition: String,
    /// The upload session's schema (field numbers follow its columns).
    pub schema: TableSchema,
    /// For each configured column, its index among the schema's columns.
    pub positions: Vec<usize>,
}

/// A task's share of the job: the state plus its block ids `[block_start, block_end)`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskState {
    #[serde(flatten)]
    pub job: JobState,
    pub block_start: u32,
    pub block_end: u32,
}

/// What a task reports to `post`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskReport {
    pub upload_id: String,
    pub blocks: Vec<u32>,
    pub records: u64,
    pub dirty: u64,
    pub bytes: u64,
}

fn runtime() -> Result<Runtime, PluginError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PluginError::internal(format!("starting the I/O runtime: {e}")))
}

pub(crate) fn client_for(
    config: &OdpsConfig,
    tunnel: Option<Endpoint>,
) -> Result<OdpsClient, PluginError> {
    OdpsClient::new(config.http_options(), config.service.clone(), tunnel)
        .map_err(PluginError::internal)
}

/// Checks the partition against the table's keys; returns it with the table's key
/// names.
fn check_partition(config: &OdpsConfig, schema: &TableSchema) -> Result<String, PluginError> {
    let table = format!("{}.{}", config.project, config.table);
    let keys: Vec<&str> = schema
        .partition_keys
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    if keys.is_empty() {
        if !config.partition.is_empty() {
            return Err(PluginError::config(format!(
                "writer-odps: table {table} is not partitioned, but partition is {:?}",
                config.partition
            )));
        }
        return Ok(String::new());
    }
    if config.partition.is_empty() {
        return Err(PluginError::config(format!(
            "writer-odps: table {table} is partitioned by ({}): partition must name every level, e.g. {}",
            keys.join(", "),
            keys.iter().map(|k| format!("{k}=…")).collect::<Vec<_>>().join(",")
        )));
    }
    let pairs: Vec<(&str, &str)> = config
        .partition
        .split(',')
        .filter_map(|p| p.split_once('='))
        .collect();
    let same_keys = pairs.len() == keys.len()
        && pairs
            .iter()
            .zip(&keys)
            .all(|((k, _), key)| k.eq_ignore_ascii_case(key));
    if !same_keys {
        return Err(PluginError::config(format!(
            "writer-odps: partition {:?} must name every partition level of {table} in order, down to the last: ({})",
            config.partition,
            keys.join(", ")
        )));
    }
    Ok(pairs
        .iter()
        .zip(&keys)
        .map(|((_, v), k)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(","))
}

/// Maps the configured columns to schema positions.
fn resolve_columns(config: &OdpsConfig, schema: &TableSchema) -> Result<Vec<usize>, PluginError> {
    let table = format!("{}.{}", config.project, config.table);
    let positions: Vec<usize> = match &config.columns {
        None => (0..schema.columns.len()).collect(),
        Some(names) => names
            .iter()
            .map(|name| {
                if let Some(i) = schema
                    .columns
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(name))
                {
                    return Ok(i);
                }
                if schema.partition_keys.iter().any(|k| k.name.eq_ignore_ascii_case(name)) {
                    return Err(PluginError::config(format!(
                        "writer-odps: column {name:?} is a partition key of {table}; dynamic partitions are not supported: remove it from column and set partition"
                    )));
                }
                Err(PluginError::config(format!(
                    "writer-odps: column {name:?} does not exist in table {table} (its columns: {})",
                    schema.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
                )))
            })
            .collect::<Result<_, _>>()?,
    };
    for &i in &positions {
        let c = &schema.columns[i];
        if !c.odps_type().is_writable() {
            return Err(PluginError::config(format!(
                "writer-odps: column {} of {table} has type {}, which writer-odps does not write; leave it out of column (it is then NULL)",
                c.name, c.type_name
            )));
        }
    }
    Ok(positions)
}

/// Loads the table and validates the configuration against it.
pub(crate) async fn load_and_check(
    config: &OdpsConfig,
    client: &OdpsClient,
) -> Result<(TableSchema, String, Vec<usize>), PluginError> {
    let table = client.get_table(&config.table).await?;
    if table.is_view {
        return Err(PluginError::config(format!(
            "writer-odps: {}.{} is a view; only tables can be loaded",
            config.project, config.table
        )));
    }
    let partition = check_partition(config, &table.schema)?;
    let positions = resolve_columns(config, &table.schema)?;
    Ok((table.schema, partition, positions))
}

pub(crate) fn with_semicolon(sql: &str) -> String {
    let t = sql.trim();
    if t.ends_with(';') {
        t.to_owned()
    } else {
        format!("{t};")
    }
}

impl OdpsWriter {
    fn config(&self, ctx: &StepContext) -> Result<OdpsConfig, PluginError> {
        OdpsConfig::from_parameter(&ctx.parameter, &ctx.job.time_zone)
    }

    async fn prepare_async(
        &self,
        config: &OdpsConfig,
        job: &JobContext,
    ) -> Result<JobState, PluginError> {
        let mut client = client_for(config, config.tunnel.clone())?;
        let (schema, partition, _) = load_and_check(config, &client).await?;
        match Markers::for_job(config, job)? {
            Some(markers) => markers.ensure_table(&client, true).await?,
            None if !config.truncate && config.commit_marker.is_some() => tracing::info!(
                "no window fingerprint (standalone write): this append is not recorded as a commit marker"
            ),
            None => {}
        }
        for sql in &config.pre_sql {
            client
                .run_sql("preSql", &with_semicolon(sql), false)
                .await?;
        }
        let t = &config.table;
        if schema.is_partitioned() && !client.list_partitions(t).await?.contains(&partition) {
            let spec_sql = partition
                .split(',')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| format!("{k}='{v}'"))
                .collect::<Vec<_>>()
                .join(",");
            client
                .run_sql(
                    "addPart",
                    &format!("alter table {t} add IF NOT EXISTS partition({spec_sql});"),
                    true,
                )
                .await?;
        }
        let tunnel = client.discover_tunnel().await.map_err(|e| {
            PluginError::from(e).context("discovering the tunnel endpoint (or set tunnelServer)")
        })?;
        // Truncation is the session's: its commit replaces the rows, so a job that
        // fails leaves the old rows in place.
        let session = client
            .create_upload(t, &partition, config.truncate)
            .await
            .map_err(|e| PluginError::from(e).context(format!("tunnel endpoint {tunnel}")))?;
        // Field numbers come from the session's schema.
        let positions = resolve_columns(config, &session.schema)?;
        tracing::info!(
            upload_id = session.id.as_str(),
            "upload session created for {}.{t}{}{}",
            config.project,
            if partition.is_empty() {
                String::new()
            } else {
                format!(" partition {partition}")
            },
            if config.truncate {
                " (overwrite: its commit replaces the rows)"
            } else {
                ""
            }
        );
        Ok(JobState {
            upload_id: session.id,
            tunnel_endpoint: tunnel.to_string(),
            partition,
            schema: session.schema,
            positions,
        })
    }
}

/// The upsert job state as `prepare` returned it (checked by its users).
fn upsert_state_of(state: &Json) -> Result<Json, PluginError> {
    match state.get("session") {
        Some(_) => Ok(state.clone()),
        None => Err(PluginError::internal(
            "the job state is not writer-odps's upsert state (run prepare first)",
        )),
    }
}

pub(crate) fn state_of(ctx: &StepContext) -> Result<JobState, PluginError> {
    serde_json::from_value(ctx.state.clone()).map_err(|e| {
        PluginError::internal(format!(
            "the job state is not writer-odps's (run prepare first): {e}"
        ))
    })
}

impl Plugin for OdpsWriter {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "writer-odps",
            version: env!("CARGO_PKG_VERSION"),
            role: Role::Writer,
            about: "Loads records into a MaxCompute (ODPS) table through the Tunnel, committed once (DataX odpswriter)",
        }
    }

    fn parameters(&self) -> Vec<ParameterSpec> {
        parameters()
    }

    fn check(&self, ctx: &StepContext) -> Result<(), PluginError> {
        let config = self.config(ctx)?;
        crate::follow::warn_once(&ctx.parameter);
        runtime()?.block_on(async {
            let mut client = client_for(&config, config.tunnel.clone())?;
            load_and_check(&config, &client).await?;
            if let Some(markers) = Markers::for_job(&config, &ctx.job)? {
                markers.ensure_table(&client, false).await?;
            }
            let tunnel = client.discover_tunnel().await?;
            // Any answer from the Tunnel proves it reachable and our signature accepted
            // there; an unknown session is the expected answer.
            match client.get_upload(&config.table, "", "0").await {
                Ok(_) => Ok(()),
                Err(e @ OdpsError::Transport { .. }) => Err(PluginError::config(format!(
                    "writer-odps: tunnel endpoint {tunnel} is unreachable: {e}"
                ))),
                Err(e) if matches!(e.status(), Some(401 | 403)) => Err(e.into()),
                Err(_) => Ok(()),
            }
        })
    }

    fn prepare(&self, ctx: &StepContext) -> Result<Json, PluginError> {
        let config = self.config(ctx)?;
        if config.upsert {
            let state = runtime()?.block_on(crate::upsert::prepare_upsert(&config, &ctx.job))?;
            return serde_json::to_value(state).map_err(|e| PluginError::internal(e.to_string()));
        }
        let state = runtime()?.block_on(self.prepare_async(&config, &ctx.job))?;
        serde_json::to_value(state).map_err(|e| PluginError::internal(e.to_string()))
    }

    fn split(&self, ctx: &StepContext, count: usize) -> Result<Vec<Json>, PluginError> {
        if self.config(ctx)?.upsert {
            // Every task sends into the one session (each key comes from one task).
            let state = upsert_state_of(&ctx.state)?;
            let mut config = ctx.parameter.clone();
            if let Some(map) = config.as_object_mut() {
                map.insert(TASK_KEY.into(), state);
            }
            return Ok(vec![config; count.max(1)]);
        }
        let state = state_of(ctx)?;
        if count == 0 || count > MAX_BLOCK_ID as usize {
            return Err(PluginError::config(format!(
                "writer-odps: {count} tasks cannot share one upload session (at most {MAX_BLOCK_ID})"
            )));
        }
        let per_task = MAX_BLOCK_ID / count as u32;
        (0..count as u32)
            .map(|i| {
                let task = TaskState {
                    job: state.clone(),
                    block_start: i * per_task,
                    block_end: (i + 1) * per_task,
                };
                let mut config = ctx.parameter.clone();
                let value =
                    serde_json::to_value(task).map_err(|e| PluginError::internal(e.to_string()))?;
                if let Some(map) = config.as_object_mut() {
                    map.insert(TASK_KEY.into(), value);
                }
                Ok(config)
            })
            .collect()
    }

    fn post(&self, ctx: &StepContext, reports: &[Json]) -> Result<(), PluginError> {
        self.post_answer(ctx, reports).map(drop)
    }

    fn post_answer(&self, ctx: &StepContext, reports: &[Json]) -> Result<Json, PluginError> {
        let config = self.config(ctx)?;
        if config.upsert {
            let state = upsert_state_of(&ctx.state)?;
            let state: crate::upsert::UpsertState = serde_json::from_value(state)
                .map_err(|e| PluginError::internal(format!("the upsert job state: {e}")))?;
            return runtime()?.block_on(crate::upsert::post_upsert(
                &config, &ctx.job, &state, reports,
            ));
        }
        let state = state_of(ctx)?;
        runtime()?.block_on(self.post_async(&config, &ctx.job, &state, reports))
    }

    fn abort(&self, ctx: &StepContext) -> Result<(), PluginError> {
        self.abort_answer(ctx, &[]).map(drop)
    }

    fn abort_answer(&self, ctx: &StepContext, reports: &[Json]) -> Result<Json, PluginError> {
        let config = self.config(ctx)?;
        if config.upsert {
            let state: Option<crate::upsert::UpsertState> = match ctx.state.is_null() {
                true => None,
                false => Some(
                    serde_json::from_value(upsert_state_of(&ctx.state)?)
                        .map_err(|e| PluginError::internal(format!("the upsert job state: {e}")))?,
                ),
            };
            let value = runtime()?.block_on(crate::upsert::abort_upsert(
                &config,
                &ctx.job,
                state.as_ref(),
                reports,
            ))?;
            tracing::info!("{}", value["detail"].as_str().unwrap_or_default());
            return Ok(value);
        }
        // No state: prepare did not finish, so no session exists.
        let state = match ctx.state.is_null() {
            true => None,
            false => Some(state_of(ctx)?),
        };
        let value =
            runtime()?.block_on(self.abort_async(&config, &ctx.job, state.as_ref(), reports))?;
        tracing::info!("{}", value["detail"].as_str().unwrap_or_default());
        Ok(value)
    }
}

impl Writer for OdpsWriter {
    fn write(
        &self,
        task: &TaskContext,
        input: &mut RecordSource,
        out: &mut WriterOutput,
    ) -> Result<Json, PluginError> {
        let config = OdpsConfig::from_parameter(&task.config, &task.job.time_zone)?;
        if config.upsert {
            let state: crate::upsert::UpsertState =
                serde_json::from_value(task.config.get(TASK_KEY).cloned().unwrap_or(Json::Null))
                    .map_err(|e| {
                        PluginError::internal(format!(
                            "task config without its upsert session (run split): {e}"
                        ))
                    })?;
            return crate::upsert::write_upsert(task, &config, &state, input, out);
        }
        let state: TaskState =
            serde_json::from_value(task.config.get(TASK_KEY).cloned().unwrap_or(Json::Null))
                .map_err(|e| {
                    PluginError::internal(format!(
                        "task config without its upload session (run split): {e}"
                    ))
                })?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| PluginError::internal(format!("starting the I/O runtime: {e}")))?;
        let tunnel = Endpoint::parse(&state.job.tunnel_endpoint).map_err(PluginError::internal)?;
        let client = client_for(&config, Some(tunnel))?;
        let conversions = Conversions::new(
            config.empty_as_null,
            config.zone,
            config.date_zone,
            config.over_length_rule,
            config.max_odps_field_length,
            config.max_field_length,
        )
        .map_err(PluginError::internal)?;
        let target = BlockTarget {
            rt: &rt,
            client: &client,
            table: &config.table,
            partition: &state.job.partition,
            upload_id: &state.job.upload_id,
            compress: config.compress,
            write_timeout: config.write_timeout,
            recycled: Default::default(),
        };
        let mut task_writer = TaskWriter::new(
            target,
            &state.job.schema,
            &state.job.positions,
            conversions,
            config.block_flush_bytes(),
            state.block_start,
            state.block_end,
        );
        let mut received = 0u64;
        // Each record is converted straight from its batch's bytes; only a dirty one
        // is copied out, to be reported.
        while let Some(count) = input.next_batch_each_lazy(|record| {
            if let Err(reason) = task_writer.write_record(record)? {
                // write_record has checked every text of a dirty record.
                let record = record
                    .iter()
                    .map(|v| v.check().map(|v| v.to_value()))
                    .collect::<Result<Vec<_>, _>>()?;
                out.dirty(&record, &reason)?;
            }
            Ok(())
        })? {
            received += count as u64;
            // Bytes as encoded for the Tunnel (cheaper than DataX byte sizes).
            out.progress(received, task_writer.encoded_bytes())?;
        }
        let outcome = task_writer.finish()?;
        let report = TaskReport {
            upload_id: state.job.upload_id.clone(),
            blocks: outcome.blocks,
            records: outcome.records,
            dirty: out.dirty_count(),
            bytes: outcome.sent_bytes,
        };
        tracing::info!(
            records = report.records,
            dirty = report.dirty,
            blocks = report.blocks.len(),
            bytes = report.bytes,
            "writer-odps: task {} uploaded its blocks",
            task.job.task_index
        );
        serde_json::to_value(report).map_err(|e| PluginError::internal(e.to_string()))
    }
}
