//! `reader-otsstream`: exports Tablestore Stream change logs with the semantics of
//! DataX's `otsstreamreader` (see `README.md`), exactly once per window: checkpoints
//! are persisted in the status table only by `post`, after the writer committed.

pub mod client;
pub mod config;
pub mod convert;
pub mod error;
pub mod follow;
pub mod pb;
pub mod plainbuffer;
pub mod reader;
pub mod sign;
pub mod status;

use std::collections::BTreeMap;

use protocol::message::Role;
use protocol::runtime::{
    ParameterSpec, Plugin, PluginError, PluginInfo, Reader, RecordSink, StepContext, TaskContext,
};
use protocol::timefmt::Zone;

use crate::client::{ClientOptions, OtsClient};
use crate::config::Config;
use crate::reader::{JobState, ShardCheckpoint, ShardInfo, TaskConfig, TaskReader};

/// The window must end at least this long before now (DataX's `AFTER_OFFSET_TIME_MILLIS`).
pub const END_MARGIN_MS: i64 = 300_000;
/// The window must start at least this long after the retention horizon.
pub const START_MARGIN_MS: i64 = 600_000;

/// The plugin.
pub struct OtsStreamReader;

fn runtime() -> Result<tokio::runtime::Runtime, PluginError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PluginError::internal(format!("starting the async runtime: {e}")))
}

/// The runtime of a task: shard fetchers run on it while rows are converted and
/// pushed on the calling thread.
fn task_runtime() -> Result<tokio::runtime::Runtime, PluginError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| PluginError::internal(format!("starting the async runtime: {e}")))
}

fn zone(name: &str) -> Result<Zone, PluginError> {
    Zone::parse(name).map_err(|e| PluginError::config(format!("job time zone: {e}")))
}

/// Builds the client of a checked configuration.
pub fn client_for(cfg: &Config) -> Result<OtsClient, PluginError> {
    OtsClient::new(ClientOptions {
        endpoint: cfg.endpoint.clone(),
        credentials: cfg.credentials.clone(),
        instance_name: cfg.instance_name.clone(),
        signature: cfg.signature.clone(),
        max_retries: cfg.max_retries,
        request_timeout_ms: cfg.request_timeout_ms,
        connect_timeout_ms: cfg.connect_timeout_ms,
    })
    .map_err(|e| PluginError::config(format!("parameter endpoint: {e}")))
}

fn utc_minute(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%MZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// DataX's rule: the window must end at least five minutes in the past.
pub fn check_window_end(cfg: &Config, now_ms: i64) -> Result<(), PluginError> {
    let latest = now_ms - END_MARGIN_MS;
    if cfg.end_ms > latest {
        return Err(PluginError::config(format!(
            "parameter {}: the window must end at least 5 minutes ago \
             (to absorb clock differences between machines); its end {} ({}) is later than {} ({latest})",
            cfg.window_keys.1,
            utc_minute(cfg.end_ms),
            cfg.end_ms,
            utc_minute(latest)
        )));
    }
    Ok(())
}

/// DescribeTable of the data table: exists, stream enabled; returns the retention hours.
async fn check_data_table(client: &OtsClient, cfg: &Config) -> Result<i32, PluginError> {
    let table = &cfg.data_table;
    let d = client.describe_table(table).await.map_err(|e| {
        if e.code() == Some("OTSObjectNotExist") {
            PluginError::config(format!(
                "parameter dataTable: table {table:?} does not exist in instance {:?} ({e})",
                cfg.instance_name
            ))
        } else {
            e.into_plugin(format!("DescribeTable of dataTable {table:?}"))
        }
    })?;
    match d.stream_details {
        Some(s) if s.enable_stream => Ok(s.expiration_time.unwrap_or(24)),
        _ => Err(PluginError::config(format!(
            "parameter dataTable: the stream of table {table:?} is not enabled \
             (enable it with UpdateTable stream_spec, or in the console)"
        ))),
    }
}

fn parse_state(ctx: &StepContext) -> Result<JobState, PluginError> {
    serde_json::from_value(ctx.state.clone())
        .map_err(|e| PluginError::config(format!("job state from prepare: {e}")))
}

/// Groups shards into families (connected by parent links), largest first.
pub(crate) fn families(shards: &[ShardInfo]) -> Vec<Vec<String>> {
    let index: BTreeMap<&str, usize> = shards
        .iter()
        .enumerate()
        .map(|(i, s)| (s.shard_id.as_str(), i))
        .collect();
    let mut root: Vec<usize> = (0..shards.len()).collect();
    fn find(root: &mut [usize], mut i: usize) -> usize {
        while root[i] != i {
            root[i] = root[root[i]];
            i = root[i];
        }
        i
    }
    for (i, s) in shards.iter().enumerate() {
        for p in [&s.parent_id, &s.parent_sibling_id].into_iter().flatten() {
            if let Some(&j) = index.get(p.as_str()) {
                let (a, b) = (find(&mut root, i), find(&mut root, j));
                root[a] = b;
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (i, s) in shards.iter().enumerate() {
        let r = find(&mut root, i);
        groups.entry(r).or_default().push(s.shard_id.clone());
    }
    let mut out: Vec<Vec<String>> = groups.into_values().collect();
    out.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    out
}

impl Plugin for OtsStreamReader {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "reader-otsstream",
            version: env!("CARGO_PKG_VERSION"),
            role: Role::Reader,
            about: "Exports Tablestore Stream change logs with DataX otsstreamreader semantics",
        }
    }

    fn parameters(&self) -> Vec<ParameterSpec> {
        parameter_specs()
    }

    fn check(&self, ctx: &StepContext) -> Result<(), PluginError> {
        let cfg = Config::from_parameter(&ctx.parameter, &zone(&ctx.job.time_zone)?)?;
        if cfg.follow.is_none() {
            check_window_end(&cfg, chrono::Utc::now().timestamp_millis())?;
        }
        let client = client_for(&cfg)?;
        runtime()?
            .block_on(check_data_table(&client, &cfg))
            .map(drop)
    }

    fn prepare(&self, ctx: &StepContext) -> Result<serde_json::Value, PluginError> {
        let cfg = Config::from_parameter(&ctx.parameter, &zone(&ctx.job.time_zone)?)?;
        let now = chrono::Utc::now().timestamp_millis();
        if let Some(follow) = &cfg.follow {
            if let Some(map) = ctx.parameter.as_object() {
                follow::config::warn_window_keys(map);
            }
            let client = client_for(&cfg)?;
            let state = runtime()?.block_on(prepare_follow(&client, &cfg, follow, now))?;
            return serde_json::to_value(state).map_err(|e| PluginError::internal(e.to_string()));
        }
        check_window_end(&cfg, now)?;
        let client = client_for(&cfg)?;
        let state = runtime()?.block_on(prepare_job(&client, &cfg, now))?;
        serde_json::to_value(state).map_err(|e| PluginError::internal(e.to_string()))
    }

    fn split(
        &self,
        ctx: &StepContext,
        count: usize,
    ) -> Result<Vec<serde_json::Value>, PluginError> {
        if follow::steps::is_follow_state(&ctx.state) {
            let state: follow::FollowState = serde_json::from_value(ctx.state.clone())
                .map_err(|e| PluginError::config(format!("follow state from prepare: {e}")))?;
            return follow::steps::split(&state, &ctx.parameter, count);
        }
        let state = parse_state(ctx)?;
        let groups = families(&state.shards);
        let n = count.min(groups.len()).max(1);
        let mut tasks: Vec<Vec<String>> = vec![Vec::new(); n];
        for g in groups {
            // Largest family first into the task holding the fewest shards.
            let (i, _) = tasks
                .iter()
                .enumerate()
                .min_by_key(|(i, t)| (t.len(), *i))
                .unwrap_or((0, &Vec::new()));
            tasks[i].extend(g);
        }
        tasks
            .into_iter()
            .map(|shards| {
                serde_json::to_value(TaskConfig {
                    parameter: ctx.parameter.clone(),
                    job: state.clone(),
                    shards,
                })
                .map_err(|e| PluginError::internal(e.to_string()))
            })
            .collect()
    }

    fn precommit(
        &self,
        ctx: &StepContext,
        reports: &[serde_json::Value],
    ) -> Result<serde_json::Value, PluginError> {
        let cfg = Config::from_parameter(&ctx.parameter, &zone(&ctx.job.time_zone)?)?;
        if cfg.follow.is_none() {
            return Err(PluginError::config(
                "precommit is a follow-mode step: the parameter has no follow object",
            ));
        }
        let client = client_for(&cfg)?;
        runtime()?.block_on(follow::steps::precommit(&client, &cfg, reports))?;
        Ok(serde_json::Value::Null)
    }

    fn post(&self, ctx: &StepContext, reports: &[serde_json::Value]) -> Result<(), PluginError> {
        let cfg = Config::from_parameter(&ctx.parameter, &zone(&ctx.job.time_zone)?)?;
        if cfg.follow.is_some() {
            let client = client_for(&cfg)?;
            return runtime()?.block_on(follow::steps::post(&client, &cfg, reports));
        }
        let state = parse_state(ctx)?;
        let mut by_shard: BTreeMap<String, ShardCheckpoint> = BTreeMap::new();
        for r in reports {
            let c: ShardCheckpoint = serde_json::from_value(r.clone())
                .map_err(|e| PluginError::protocol(format!("a reader checkpoint state: {e}")))?;
            by_shard.insert(c.shard_id.clone(), c);
        }
        let shard_ids: Vec<String> = state.shards.iter().map(|s| s.shard_id.clone()).collect();
        if let Some(missing) = shard_ids.iter().find(|s| !by_shard.contains_key(*s)) {
            return Err(PluginError::protocol(format!(
                "post: no task reported a checkpoint for shard {missing}; nothing was persisted"
            )));
        }
        let outcomes: Vec<_> = shard_ids
            .iter()
            .filter_map(|s| by_shard.remove(s))
            .map(Into::into)
            .collect();
        let client = client_for(&cfg)?;
        runtime()?
            .block_on(status::persist(
                &client,
                &cfg.status_table,
                &state.stream_id,
                &cfg.data_table,
                &state.version,
                state.start_ms,
                state.end_ms,
                &shard_ids,
                &outcomes,
            ))
            .map_err(|e| {
                e.into_plugin(format!(
                    "persisting checkpoints for {} in statusTable {:?}",
                    state.end_ms, cfg.status_table
                ))
            })?;
        tracing::info!(
            shards = shard_ids.len(),
            end = state.end_ms,
            "checkpoints persisted in statusTable {:?}",
            cfg.status_table
        );
        Ok(())
    }
}

/// The stream id of the data table.
async fn stream_id_of(client: &OtsClient, cfg: &Config) -> Result<String, PluginError> {
    let streams = client
        .list_stream(&cfg.data_table)
        .await
        .map_err(|e| e.into_plugin(format!("ListStream of dataTable {:?}", cfg.data_table)))?;
    streams
        .into_iter()
        .find(|s| s.table_name == cfg.data_table)
        .map(|s| s.stream_id)
        .ok_or_else(|| {
            PluginError::config(format!(
                "parameter dataTable: no stream found for table {:?}",
                cfg.data_table
            ))
        })
}

async fn prepare_follow(
    client: &OtsClient,
    cfg: &Config,
    follow: &follow::config::FollowConfig,
    now: i64,
) -> Result<follow::FollowState, PluginError> {
    let hours = check_data_table(client, cfg).await?;
    let st = &cfg.status_table;
    status::ensure_table(client, st)
        .await
        .map_err(|e| e.into_plugin(format!("checking statusTable {st:?}")))?;
    let stream_id = stream_id_of(client, cfg).await?;
    let (_, shards) = client
        .describe_stream(&stream_id)
        .await
        .map_err(|e| e.into_plugin(format!("DescribeStream of dataTable {:?}", cfg.data_table)))?;
    let listed = shards
        .into_iter()
        .map(|s| ShardInfo {
            shard_id: s.shard_id,
            parent_id: s.parent_id,
            parent_sibling_id: s.parent_sibling_id,
        })
        .collect();
    follow::steps::prepare(client, cfg, follow, hours, stream_id, listed, now).await
}

async fn prepare_job(client: &OtsClient, cfg: &Config, now: i64) -> Result<JobState, PluginError> {
    let expiration_hours = check_data_table(client, cfg).await?;
    let horizon = now - i64::from(expiration_hours) * 3_600_000 + START_MARGIN_MS;
    if cfg.start_ms < horizon {
        return Err(PluginError::config(format!(
            "parameter {}: the window starts at {} ({}), before what the stream of \
             table {:?} still holds (retention {expiration_hours} h): the start must be after {} ({horizon}); \
             records older than the retention are trimmed and would be lost",
            cfg.window_keys.0,
            utc_minute(cfg.start_ms),
            cfg.start_ms,
            cfg.data_table,
            utc_minute(horizon)
        )));
    }
    let st = &cfg.status_table;
    status::ensure_table(client, st)
        .await
        .map_err(|e| e.into_plugin(format!("checking statusTable {st:?}")))?;
    let streams = client
        .list_stream(&cfg.data_table)
        .await
        .map_err(|e| e.into_plugin(format!("ListStream of dataTable {:?}", cfg.data_table)))?;
    let stream_id = streams
        .into_iter()
        .find(|s| s.table_name == cfg.data_table)
        .map(|s| s.stream_id)
        .ok_or_else(|| {
            PluginError::config(format!(
                "parameter dataTable: no stream found for table {:?}",
                cfg.data_table
            ))
        })?;
    let deleted = status::delete_checkpoints(client, st, &stream_id, cfg.end_ms)
        .await
        .map_err(|e| {
            e.into_plugin(format!(
                "clearing checkpoints at {} in statusTable {st:?}",
                cfg.end_ms
            ))
        })?;
    if deleted > 0 {
        tracing::info!(
            "cleared {deleted} checkpoints stored at {} by an earlier run",
            cfg.end_ms
        );
    }
    let (_, shards) = client
        .describe_stream(&stream_id)
        .await
        .map_err(|e| e.into_plugin(format!("DescribeStream of dataTable {:?}", cfg.data_table)))?;
    let shards: Vec<ShardInfo> = shards
        .into_iter()
        .map(|s| ShardInfo {
            shard_id: s.shard_id,
            parent_id: s.parent_id,
            parent_sibling_id: s.parent_sibling_id,
        })
        .collect();
    let start_checkpoints = status::complete_checkpoints(client, st, &stream_id, cfg.start_ms)
        .await
        .map_err(|e| {
            e.into_plugin(format!(
                "reading checkpoints at {} from statusTable {st:?}",
                cfg.start_ms
            ))
        })?;
    match &start_checkpoints {
        Some(map) => {
            for (shard, cp) in map {
                if cp != status::SHARD_END && !shards.iter().any(|s| &s.shard_id == shard) {
                    return Err(PluginError::service(format!(
                        "shard {shard} of the checkpoint stored at {} no longer exists (checkpoint {cp}); \
                         its unread records are lost to this window",
                        cfg.start_ms
                    )));
                }
            }
            tracing::info!(
                "resuming {} shards from the checkpoints stored at {}",
                map.len(),
                cfg.start_ms
            );
        }
        None => tracing::info!(
            "no complete checkpoint set at {}: reading from the oldest retained records{}",
            cfg.start_ms,
            if cfg.enable_seek_iterator {
                " (seeking by time)"
            } else {
                ""
            }
        ),
    }
    let version = format!("{now}-{:032x}", rand::random::<u128>());
    Ok(JobState {
        stream_id,
        version,
        start_ms: cfg.start_ms,
        end_ms: cfg.end_ms,
        expiration_hours,
        shards,
        start_checkpoints,
    })
}

impl Reader for OtsStreamReader {
    fn read(&self, task: &TaskContext, out: &mut RecordSink) -> Result<(), PluginError> {
        if task.config.get("followBatch").is_some() {
            let follow_task: follow::FollowTask = serde_json::from_value(task.config.clone())
                .map_err(|e| PluginError::config(format!("follow task config from split: {e}")))?;
            let cfg = Config::from_parameter(&follow_task.parameter, &zone(&task.job.time_zone)?)?;
            let client = client_for(&cfg)?;
            return runtime()?
                .block_on(
                    follow::task::FollowTaskReader {
                        config: &cfg,
                        client: &client,
                        task: &follow_task,
                    }
                    .run(out),
                )
                .map(drop);
        }
        let task_config: TaskConfig = serde_json::from_value(task.config.clone())
            .map_err(|e| PluginError::config(format!("task config from split: {e}")))?;
        let cfg = Config::from_parameter(&task_config.parameter, &zone(&task.job.time_zone)?)?;
        let client = client_for(&cfg)?;
        let rt = task_runtime()?;
        TaskReader {
            config: &cfg,
            client: &client,
            rt: &rt,
            task: &task_config,
        }
        .run(out)
        .map(drop)
    }
}

fn spec(
    name: &'static str,
    kind: &'static str,
    required: bool,
    default: Option<&'static str>,
    doc: &'static str,
) -> ParameterSpec {
    ParameterSpec {
        name,
        kind,
        required,
        default,
        doc,
    }
}

fn parameter_specs() -> Vec<ParameterSpec> {
    vec![
        spec("endpoint", "string", true, None, "Tablestore endpoint, http(s)://host[:port]"),
        spec("accessId", "string", true, None, "AccessKey ID"),
        spec("accessKey", "string", true, None, "AccessKey secret (never printed)"),
        spec("instanceName", "string", true, None, "Tablestore instance name"),
        spec("securityToken", "string", false, None, "STS security token for temporary credentials"),
        spec("signatureVersion", "string", false, Some("\"v2\""), "request signature: v2 or v4 (v4 needs region)"),
        spec("region", "string", false, None, "region for V4 signatures, e.g. cn-hangzhou"),
        spec("datasource", "string", false, None, "named data source, resolved by the engine into the connection keys"),
        spec("dataTable", "string", true, None, "table whose stream is exported"),
        spec("statusTable", "string", true, None, "table holding checkpoints (created if missing, DataX layout)"),
        spec("startTimestampMillis", "integer", false, None, "window start (inclusive), epoch ms; with endTimestampMillis"),
        spec("endTimestampMillis", "integer", false, None, "window end (exclusive), epoch ms; at least 5 minutes ago"),
        spec("startTimeString", "string", false, None, "window start, yyyyMMddHHmmss in the job's time zone; with endTimeString"),
        spec("endTimeString", "string", false, None, "window end, yyyyMMddHHmmss in the job's time zone"),
        spec("date", "string", false, None, "one day, yyyyMMdd in the job's time zone (instead of a start/end pair)"),
        spec("isExportSequenceInfo", "boolean", false, Some("false"), "append the sequenceInfo column"),
        spec("maxRetries", "integer", false, Some("30"), "retries per request for temporary failures (exponential backoff from 100 ms, capped at 10 s)"),
        spec("mode", "string", false, None, "absent: multi-version rows; single_version_and_update_only: one row per put/update"),
        spec("column", "array", false, None, "single_version_and_update_only: [{\"name\": ...}] output columns"),
        spec("enableSeekIterator", "boolean", false, Some("false"), "without stored checkpoints, seek by time instead of scanning from the oldest record"),
        spec("isTimeseriesTable", "boolean", false, Some("false"), "time-series tables: not supported yet (an error in single-version mode)"),
        spec("threadNum", "integer", false, Some("32"), "shards a task reads at the same time (parents still before children)"),
        spec("requestTimeoutMillis", "integer", false, Some("50000"), "timeout of one HTTP request"),
        spec("connectTimeoutMillis", "integer", false, Some("10000"), "timeout of one connection attempt"),
        spec("follow", "object", false, None, "follow mode (injected by `streamport run --follow`): {commitIntervalSeconds, commitRecords, commitBytes, from}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, p: Option<&str>, s: Option<&str>) -> ShardInfo {
        ShardInfo {
            shard_id: id.into(),
            parent_id: p.map(Into::into),
            parent_sibling_id: s.map(Into::into),
        }
    }

    #[test]
    fn families_keep_parents_with_children() {
        let shards = vec![
            shard("a", None, None),
            shard("b", None, None),
            shard("c", Some("a"), None),
            shard("d", Some("a"), None),
            shard("e", Some("d"), Some("b")),
            shard("f", None, None),
            shard("g", Some("x"), None),
        ];
        let f = families(&shards);
        assert_eq!(f.len(), 3);
        assert_eq!(f[0], vec!["a", "b", "c", "d", "e"]);
    }
}
