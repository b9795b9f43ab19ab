//! The job-level steps in follow mode: `prepare` (the start plan), `split` (tasks and
//! the batch id), `precommit` (the pending row) and `post` (the follow checkpoint).

use std::collections::BTreeMap;

use protocol::runtime::PluginError;

use crate::client::OtsClient;
use crate::config::Config;
use crate::follow::config::{check_from_time, FollowConfig, Start};
use crate::follow::{
    assign, replayable, store, utc, FollowCheckpoint, FollowReport, FollowState, FollowTask,
    PendingBatch, Plan, PlanShard, StoredShard,
};
use crate::reader::ShardInfo;
use crate::status::{SHARD_END, TRIM_HORIZON};

/// The error for a checkpoint pointing at records the stream no longer holds.
pub fn trimmed_error(
    shard: &str,
    position_ms: Option<i64>,
    retention_hours: i32,
    data_table: &str,
) -> PluginError {
    let when = match position_ms {
        Some(p) => format!("exported up to {} ({p})", utc(p)),
        None => "time unknown".to_owned(),
    };
    PluginError::config(format!(
        "shard {shard} of table {data_table:?}: the stored checkpoint ({when}) points at records \
         the stream no longer holds (OTSTrimmedDataAccess: the stream retains {retention_hours} h); \
         the records between the checkpoint and the oldest retained record are lost to this export. \
         To go on, restart from the oldest retained record: streamport run JOB --follow --from oldest \
         (re-exports everything the stream still holds), or --from TIME"
    ))
}

fn is_iterator(checkpoint: &str) -> bool {
    checkpoint != TRIM_HORIZON && checkpoint != SHARD_END
}

fn plan_shard(shard_id: &str, start: String, position_ms: Option<i64>) -> PlanShard {
    PlanShard {
        shard_id: shard_id.to_owned(),
        start,
        skip_before_ms: None,
        start_position_ms: position_ms,
        task: 0,
    }
}

/// Checkpoints of shards no longer listed must be `SHARD_END`: otherwise their
/// unread records expired with the shard.
fn check_missing(
    stored: &BTreeMap<String, (String, Option<i64>)>,
    listed: &[ShardInfo],
    hours: i32,
    data_table: &str,
) -> Result<(), PluginError> {
    for (shard, (cp, position)) in stored {
        if cp != SHARD_END && !listed.iter().any(|s| &s.shard_id == shard) {
            return Err(trimmed_error(shard, *position, hours, data_table));
        }
    }
    Ok(())
}

/// Follow-mode `prepare`.
pub async fn prepare(
    client: &OtsClient,
    cfg: &Config,
    follow: &FollowConfig,
    hours: i32,
    stream_id: String,
    listed: Vec<ShardInfo>,
    now: i64,
) -> Result<FollowState, PluginError> {
    let st = &cfg.status_table;
    let ctx = |what: &str| format!("{what} in statusTable {st:?}");
    let all = |start: &str, skip: Option<i64>| -> Vec<PlanShard> {
        listed
            .iter()
            .map(|s| PlanShard {
                skip_before_ms: skip,
                ..plan_shard(&s.shard_id, start.to_owned(), None)
            })
            .collect()
    };
    let mut replay = None;
    let (base, shards) = match follow.from {
        Start::Oldest => (format!("oldest:{now}"), all(TRIM_HORIZON, None)),
        Start::Time(t) => {
            check_from_time(t, &follow.from_text, now, hours)?;
            (format!("time:{t}:{now}"), all(TRIM_HORIZON, Some(t)))
        }
        Start::Checkpoint => {
            let checkpoint = store::read_checkpoint(client, st, &stream_id)
                .await
                .map_err(|e| e.into_plugin(ctx("reading the follow checkpoint")))?;
            let pending = store::read_pending(client, st, &stream_id)
                .await
                .map_err(|e| e.into_plugin(ctx("reading the pending batch")))?;
            if let Some(p) = replayable(pending.clone(), checkpoint.as_ref(), &stream_id) {
                tracing::info!(
                    batch = %p.id,
                    "replaying the pending batch {} (it may have been committed by the writer before a crash)",
                    p.id
                );
                let plan = p.plan.clone();
                replay = Some(p);
                (plan.base, plan.shards)
            } else {
                if let Some(p) = pending {
                    tracing::info!(batch = %p.id, "ignoring a stale pending batch (its checkpoints are stored)");
                }
                if let Some(c) = checkpoint {
                    let stored: BTreeMap<String, (String, Option<i64>)> = c
                        .shards
                        .iter()
                        .map(|(k, v)| (k.clone(), (v.checkpoint.clone(), Some(v.position_ms))))
                        .collect();
                    check_missing(&stored, &listed, hours, &cfg.data_table)?;
                    let shards = listed
                        .iter()
                        .map(|s| match c.shards.get(&s.shard_id) {
                            Some(v) => PlanShard {
                                skip_before_ms: v.skip_before_ms,
                                ..plan_shard(&s.shard_id, v.checkpoint.clone(), Some(v.position_ms))
                            },
                            None => plan_shard(&s.shard_id, TRIM_HORIZON.to_owned(), None),
                        })
                        .collect();
                    (format!("follow:{}", c.version), shards)
                } else {
                    let window = store::newest_window_checkpoints(client, st, &stream_id)
                        .await
                        .map_err(|e| e.into_plugin(ctx("looking for window checkpoints")))?;
                    let Some((end, version, set)) = window else {
                        return Err(PluginError::config(format!(
                            "parameter follow.from: \"checkpoint\" needs a checkpoint, but statusTable {st:?} \
                             holds neither a follow checkpoint nor a complete window checkpoint set for the \
                             stream of table {:?}; start with --from oldest (every retained record) or \
                             --from TIME (e.g. --from 20240115083000)",
                            cfg.data_table
                        )));
                    };
                    tracing::info!(
                        "starting from the window checkpoints stored at {} ({end})",
                        utc(end)
                    );
                    let stored = set
                        .iter()
                        .map(|(k, v)| (k.clone(), (v.clone(), None)))
                        .collect();
                    check_missing(&stored, &listed, hours, &cfg.data_table)?;
                    let shards = listed
                        .iter()
                        .map(|s| {
                            let cp = set
                                .get(&s.shard_id)
                                .cloned()
                                .unwrap_or_else(|| TRIM_HORIZON.to_owned());
                            plan_shard(&s.shard_id, cp, None)
                        })
                        .collect();
                    (format!("window:{end}:{version}"), shards)
                }
            }
        }
    };
    let mut shards: Vec<PlanShard> = shards;
    shards.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
    let plan = Plan {
        stream_id: stream_id.clone(),
        base,
        shards,
    };
    probe(client, cfg, &plan, hours).await?;
    Ok(FollowState {
        follow: true,
        stream_id,
        expiration_hours: hours,
        shards: listed,
        plan,
        replay,
    })
}

/// Reads one record at every start iterator (concurrently): a trimmed checkpoint fails
/// here, as a configuration error naming the restart, before any task runs. (Record
/// times cannot tell: a caught-up checkpoint of an idle shard is old but not trimmed.)
async fn probe(
    client: &OtsClient,
    cfg: &Config,
    plan: &Plan,
    hours: i32,
) -> Result<(), PluginError> {
    let suspects: Vec<&PlanShard> = plan
        .shards
        .iter()
        .filter(|s| is_iterator(&s.start))
        .collect();
    let results = futures::future::join_all(
        suspects
            .iter()
            .map(|s| client.get_stream_record(&s.start, Some(1))),
    )
    .await;
    for (s, r) in suspects.iter().zip(results) {
        match r {
            Ok(_) => {}
            Err(e) if e.code() == Some("OTSTrimmedDataAccess") => {
                return Err(trimmed_error(
                    &s.shard_id,
                    s.start_position_ms,
                    hours,
                    &cfg.data_table,
                ))
            }
            Err(e) => {
                return Err(e.into_plugin(format!(
                    "GetStreamRecord at the checkpoint of shard {} (dataTable {:?})",
                    s.shard_id, cfg.data_table
                )))
            }
        }
    }
    Ok(())
}

/// Follow-mode `split`: the replayed batch as it was, or the plan with whole families
/// per task; every task config carries `followBatch`.
pub fn split(
    state: &FollowState,
    parameter: &serde_json::Value,
    count: usize,
) -> Result<Vec<serde_json::Value>, PluginError> {
    let (plan, id, ends) = match &state.replay {
        Some(p) => (p.plan.clone(), p.id.clone(), Some(&p.ends)),
        None => {
            let planned: Vec<ShardInfo> = state
                .shards
                .iter()
                .filter(|s| state.plan.shards.iter().any(|p| p.shard_id == s.shard_id))
                .cloned()
                .collect();
            let plan = assign(state.plan.clone(), &crate::families(&planned), count);
            let id = plan.id();
            (plan, id, None)
        }
    };
    let tasks = plan.tasks();
    (0..tasks)
        .map(|t| {
            let shards: Vec<PlanShard> = plan
                .shards
                .iter()
                .filter(|s| s.task == t)
                .cloned()
                .collect();
            let replay = ends.map(|e| {
                shards
                    .iter()
                    .filter_map(|s| e.get(&s.shard_id).map(|v| (s.shard_id.clone(), v.clone())))
                    .collect()
            });
            serde_json::to_value(FollowTask {
                follow_batch: id.clone(),
                parameter: parameter.clone(),
                stream_id: plan.stream_id.clone(),
                base: plan.base.clone(),
                expiration_hours: state.expiration_hours,
                listed: state.shards.clone(),
                shards,
                task_count: tasks,
                replay,
            })
            .map_err(|e| PluginError::internal(e.to_string()))
        })
        .collect()
}

/// The batch the reports describe: its id, start plan and ends (checked to agree).
pub fn batch_of(reports: &[serde_json::Value]) -> Result<PendingBatch, PluginError> {
    let reports: Vec<FollowReport> = reports
        .iter()
        .map(|r| serde_json::from_value(r.clone()))
        .collect::<Result<_, _>>()
        .map_err(|e| PluginError::protocol(format!("a follow checkpoint state: {e}")))?;
    let first = reports
        .first()
        .ok_or_else(|| PluginError::protocol("no follow checkpoint state was reported"))?;
    let mut shards: BTreeMap<String, PlanShard> = BTreeMap::new();
    let mut ends = BTreeMap::new();
    for r in &reports {
        if (&r.follow_batch, &r.stream_id, &r.base)
            != (&first.follow_batch, &first.stream_id, &first.base)
        {
            return Err(PluginError::protocol(format!(
                "the reports name two batches ({} and {})",
                first.follow_batch, r.follow_batch
            )));
        }
        if shards
            .insert(r.shard.shard_id.clone(), r.shard.clone())
            .is_some()
        {
            return Err(PluginError::protocol(format!(
                "shard {} was reported twice",
                r.shard.shard_id
            )));
        }
        ends.insert(r.shard.shard_id.clone(), r.end.clone());
    }
    let plan = Plan {
        stream_id: first.stream_id.clone(),
        base: first.base.clone(),
        shards: shards.into_values().collect(),
    };
    if plan.id() != first.follow_batch {
        return Err(PluginError::protocol(format!(
            "the reports do not add up to the start plan of batch {} (a task's report is missing?); nothing was stored",
            first.follow_batch
        )));
    }
    Ok(PendingBatch {
        id: first.follow_batch.clone(),
        plan,
        ends,
    })
}

/// `precommit`: one PutRow of the pending batch.
pub async fn precommit(
    client: &OtsClient,
    cfg: &Config,
    reports: &[serde_json::Value],
) -> Result<(), PluginError> {
    let batch = batch_of(reports)?;
    store::write_pending(client, &cfg.status_table, &batch)
        .await
        .map_err(|e| {
            e.into_plugin(format!(
                "storing pending batch {} in statusTable {:?}",
                batch.id, cfg.status_table
            ))
        })?;
    tracing::info!(batch = %batch.id, shards = batch.ends.len(), "pending batch stored");
    Ok(())
}

/// Follow-mode `post`: the follow checkpoint, then the pending row deleted.
pub async fn post(
    client: &OtsClient,
    cfg: &Config,
    reports: &[serde_json::Value],
) -> Result<(), PluginError> {
    let batch = batch_of(reports)?;
    let checkpoint = FollowCheckpoint {
        stream_id: batch.plan.stream_id.clone(),
        version: batch.id.clone(),
        shards: batch
            .ends
            .iter()
            .map(|(k, e)| {
                (
                    k.clone(),
                    StoredShard {
                        checkpoint: e.checkpoint.clone(),
                        position_ms: e.position_ms,
                        skip_before_ms: e.end_skip_before_ms,
                    },
                )
            })
            .collect(),
    };
    let st = &cfg.status_table;
    store::write_checkpoint(client, st, &checkpoint)
        .await
        .map_err(|e| {
            e.into_plugin(format!(
                "storing the follow checkpoint of batch {} in statusTable {st:?}",
                batch.id
            ))
        })?;
    store::delete_pending(client, st, &checkpoint.stream_id)
        .await
        .map_err(|e| {
            e.into_plugin(format!(
                "deleting pending batch {} from statusTable {st:?}",
                batch.id
            ))
        })?;
    tracing::info!(batch = %batch.id, shards = checkpoint.shards.len(), "follow checkpoint stored");
    Ok(())
}

/// Whether the job state is a follow state.
pub fn is_follow_state(state: &serde_json::Value) -> bool {
    state.get("follow").and_then(|v| v.as_bool()) == Some(true)
}
