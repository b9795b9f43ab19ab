//! What a follow run counts: batches, records, lag; the summary's `follow` section and
//! the `--metrics-file` (rewritten atomically after every batch: a temporary file in
//! the same directory, then a rename).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value as Json;

/// The follow section of the summary (and the body of the metrics file).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FollowSummary {
    /// `following`, `stopping` (a signal arrived; the current batch is finishing) or
    /// `stopped`.
    pub state: String,
    pub batches_committed: u64,
    /// Batches that read nothing: not committed, the checkpoint did not move.
    pub empty_batches: u64,
    /// Records and bytes of the committed batches.
    pub records: u64,
    pub bytes: u64,
    pub last_batch_records: u64,
    pub last_batch_bytes: u64,
    /// When the last batch became visible (RFC 3339, UTC).
    pub last_commit: Option<String>,
    /// Commit end time − the shard's exported position, at the last commit, in ms.
    pub lag_ms_per_shard: BTreeMap<String, i64>,
    /// The largest of `lag_ms_per_shard`.
    pub lag_ms: Option<i64>,
    /// Why the run stopped, when it did.
    pub stop_reason: Option<String>,
}

/// A checkpoint state's shard name: `shard_id`, `shardId` or `shard`, else `task <i>`.
fn shard_of(state: &Json, task: usize) -> String {
    ["shard_id", "shardId", "shard"]
        .iter()
        .find_map(|k| match state.get(k) {
            Some(Json::String(s)) => Some(s.clone()),
            Some(Json::Number(n)) => Some(n.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| format!("task {task}"))
}

/// Each shard's lag at `commit_ms`: commit time − the newest `position_ms` its
/// checkpoints carry (checkpoints without one do not count).
pub fn lags(checkpoints: &[(usize, Json)], commit_ms: i64) -> BTreeMap<String, i64> {
    let mut positions: BTreeMap<String, i64> = BTreeMap::new();
    for (task, state) in checkpoints {
        let Some(position) = state.get("position_ms").and_then(Json::as_i64) else {
            continue;
        };
        let p = positions.entry(shard_of(state, *task)).or_insert(position);
        *p = (*p).max(position);
    }
    positions
        .into_iter()
        .map(|(shard, p)| (shard, (commit_ms - p).max(0)))
        .collect()
}

impl FollowSummary {
    /// Notes a committed batch.
    pub fn committed(&mut self, records: u64, bytes: u64, checkpoints: &[(usize, Json)]) {
        let now = chrono::Utc::now();
        self.batches_committed += 1;
        self.records += records;
        self.bytes += bytes;
        self.last_batch_records = records;
        self.last_batch_bytes = bytes;
        self.last_commit = Some(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        self.observe_lag(checkpoints);
    }

    /// Notes the lag the checkpoints of a batch show now (a batch that read nothing
    /// shows how far its caught-up shards are exported too).
    pub fn observe_lag(&mut self, checkpoints: &[(usize, Json)]) {
        let lags = lags(checkpoints, chrono::Utc::now().timestamp_millis());
        if !lags.is_empty() {
            self.lag_ms = lags.values().copied().max();
            self.lag_ms_per_shard = lags;
        }
    }

    /// The summary's follow lines.
    pub fn text(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![(
            "Follow",
            format!(
                "{} batches committed ({} records, {} bytes), {} empty batches, {}",
                self.batches_committed, self.records, self.bytes, self.empty_batches, self.state
            ),
        )];
        if let Some(lag) = self.lag_ms {
            let shards: Vec<String> = self
                .lag_ms_per_shard
                .iter()
                .map(|(s, l)| format!("{s} {:.1} s", *l as f64 / 1000.0))
                .collect();
            rows.push((
                "Lag",
                format!("{:.1} s ({})", lag as f64 / 1000.0, shards.join(", ")),
            ));
        }
        if let Some(r) = &self.stop_reason {
            rows.push(("Stopped", r.clone()));
        }
        rows
    }

    /// Rewrites the metrics file atomically: a temporary file beside it, then a rename.
    pub fn write_metrics(&self, path: &Path) -> std::io::Result<()> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::io::Write::write_all(&mut file, text.as_bytes())?;
        std::io::Write::write_all(&mut file, b"\n")?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lag_is_per_shard_from_the_newest_position() {
        let cps = vec![
            (0, json!({"shard_id": "a", "position_ms": 1_000})),
            (0, json!({"shard_id": "a", "position_ms": 4_000})),
            (1, json!({"shard_id": "b", "position_ms": 2_500})),
            (1, json!({"task": 1})),
            (2, json!({"position_ms": 9_000})),
        ];
        let l = lags(&cps, 10_000);
        assert_eq!(l["a"], 6_000);
        assert_eq!(l["b"], 7_500);
        assert_eq!(l["task 2"], 1_000);
        assert_eq!(l.len(), 3);
        let mut s = FollowSummary::default();
        s.committed(5, 50, &cps);
        assert_eq!(s.batches_committed, 1);
        assert!(s.lag_ms.unwrap() >= l["b"]);
    }

    #[test]
    fn the_metrics_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        let mut s = FollowSummary {
            state: "following".into(),
            ..FollowSummary::default()
        };
        s.write_metrics(&path).unwrap();
        s.batches_committed = 7;
        s.write_metrics(&path).unwrap();
        let back: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back["batches_committed"], 7);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
