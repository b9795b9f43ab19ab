//! Follow mode (issue 16): micro-batches read each shard from its follow checkpoint with
//! shard iterators. `prepare` finds the start plan (the follow checkpoint, a pending
//! batch to replay, the newest window checkpoint set, the oldest record or a time);
//! `split` assigns whole shard families to tasks and names the batch (`followBatch`, a
//! digest of the start plan only); tasks read until the commit interval, their share of
//! the record/byte limits, or (replay) the recorded end of every shard; `precommit`
//! stores the pending batch in one row; `post` stores the follow checkpoint, then
//! deletes the pending row. See the README's "Follow mode".

pub mod config;
pub mod steps;
pub mod store;
pub mod task;

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::reader::ShardInfo;

/// A time for messages: `2024-01-15T08:30:00.000Z`.
pub fn utc(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Where one shard of a batch starts, and which task reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanShard {
    pub shard_id: String,
    /// An iterator, `TRIM_HORIZON` or `SHARD_END`.
    pub start: String,
    /// `from` a time: records before it are skipped (the shard is sought near it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_before_ms: Option<i64>,
    /// The exported position the start checkpoint stands for (when known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_position_ms: Option<i64>,
    pub task: usize,
}

/// A batch's start plan: what `followBatch` is computed from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub stream_id: String,
    /// What the plan starts from: `follow:<batch id>` (the follow checkpoint that batch
    /// stored), `window:<end ms>:<version>`, `oldest:<ms>` or `time:<from ms>:<ms>`.
    pub base: String,
    /// Sorted by shard id.
    pub shards: Vec<PlanShard>,
}

impl Plan {
    /// `followBatch`: hex MD5 of the plan's JSON (fields in declaration order, shards
    /// sorted), so the same start plan always gives the same id.
    pub fn id(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Md5::digest(&json))
    }

    pub fn tasks(&self) -> usize {
        self.shards.iter().map(|s| s.task + 1).max().unwrap_or(1)
    }
}

/// Where one shard of a batch ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEnd {
    /// Stream records read from the start checkpoint (after skipped ones).
    pub records: u64,
    /// An iterator, `TRIM_HORIZON` or `SHARD_END`.
    pub checkpoint: String,
    pub position_ms: i64,
    /// Still skipping records before this time (`from` a time, none read yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_skip_before_ms: Option<i64>,
}

/// The row `precommit` stores: a batch that may be being committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingBatch {
    pub id: String,
    pub plan: Plan,
    pub ends: BTreeMap<String, ShardEnd>,
}

/// One shard's stored follow checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredShard {
    pub checkpoint: String,
    pub position_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_before_ms: Option<i64>,
}

/// The row `post` stores: where the next batch starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowCheckpoint {
    pub stream_id: String,
    /// The id of the batch that stored it.
    pub version: String,
    pub shards: BTreeMap<String, StoredShard>,
}

/// What follow-mode `prepare` returns; later steps receive it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FollowState {
    /// Always true: tells a follow state from a window state.
    pub follow: bool,
    pub stream_id: String,
    pub expiration_hours: i32,
    /// Every shard DescribeStream listed.
    pub shards: Vec<ShardInfo>,
    /// The start plan (tasks not yet assigned), or the pending batch to replay.
    pub plan: Plan,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<PendingBatch>,
}

/// One task of a batch (an element of `split`'s output).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FollowTask {
    #[serde(rename = "followBatch")]
    pub follow_batch: String,
    pub parameter: serde_json::Value,
    pub stream_id: String,
    pub base: String,
    pub expiration_hours: i32,
    pub listed: Vec<ShardInfo>,
    /// This task's shards.
    pub shards: Vec<PlanShard>,
    pub task_count: usize,
    /// Replay: where each shard of this task ended the first time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<BTreeMap<String, ShardEnd>>,
}

/// The checkpoint state a follow task reports per shard (`precommit` and `post` get
/// them all).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowReport {
    #[serde(rename = "followBatch")]
    pub follow_batch: String,
    pub stream_id: String,
    pub base: String,
    /// The start (as planned).
    #[serde(flatten)]
    pub shard: PlanShard,
    /// The end; `position_ms` is the time up to which the shard is exported
    /// (lag = commit time − this).
    #[serde(flatten)]
    pub end: ShardEnd,
}

/// Assigns whole families to `count` tasks (largest family first into the task with
/// the fewest shards) and returns the plan with tasks set.
pub fn assign(mut plan: Plan, families: &[Vec<String>], count: usize) -> Plan {
    let n = count.min(families.len()).max(1);
    let mut sizes = vec![0usize; n];
    let mut task_of: BTreeMap<&str, usize> = BTreeMap::new();
    for family in families {
        let (i, _) = sizes
            .iter()
            .enumerate()
            .min_by_key(|(i, s)| (**s, *i))
            .unwrap_or((0, &0));
        sizes[i] += family.len();
        for s in family {
            task_of.insert(s.as_str(), i);
        }
    }
    for s in &mut plan.shards {
        s.task = task_of.get(s.shard_id.as_str()).copied().unwrap_or(0);
    }
    // Tasks must be numbered 0..n without gaps (a family of shards not planned).
    let mut used: Vec<usize> = plan.shards.iter().map(|s| s.task).collect();
    used.sort_unstable();
    used.dedup();
    for s in &mut plan.shards {
        s.task = used.iter().position(|t| *t == s.task).unwrap_or(0);
    }
    plan
}

/// The pending batch to replay under `from: checkpoint`, if `pending` continues
/// `checkpoint`: its plan starts from that follow checkpoint (same base, same starts),
/// or, when no follow checkpoint exists yet, it is the first batch of a follow run.
pub fn replayable(
    pending: Option<PendingBatch>,
    checkpoint: Option<&FollowCheckpoint>,
    stream_id: &str,
) -> Option<PendingBatch> {
    let p = pending?;
    if p.plan.stream_id != stream_id || p.plan.id() != p.id {
        return None;
    }
    match checkpoint {
        None => Some(p),
        Some(c) => {
            let same_base = p.plan.base == format!("follow:{}", c.version);
            let same_starts = p.plan.shards.iter().all(|s| {
                c.shards
                    .get(&s.shard_id)
                    .is_none_or(|stored| stored.checkpoint == s.start)
            });
            (same_base && same_starts).then_some(p)
        }
    }
}

#[cfg(test)]
mod tests;
