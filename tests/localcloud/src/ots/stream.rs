//! A table's stream: shards (each the change log of a range of the first primary-key
//! column), records with sequence info, iterators, retention, split and merge
//! (spec §4).
//!
//! Positions are absolute record numbers within a shard; records before
//! `trimmed` have expired. An iterator names (stream, shard, position) and never
//! expires by age: it stays valid while the record it points to is retained.

use std::collections::VecDeque;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::error::{OtsError, OtsResult};
use super::plainbuffer::{self, PkValue, Row, SequenceInfo};

/// Epoch written into every sequence info.
pub const EPOCH: u32 = 1;
/// `GetStreamRecord` page size when the request sets no limit, and the largest allowed.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// `ActionType` of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Put = 1,
    Update = 2,
    Delete = 3,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogRecord {
    pub action: Action,
    /// The PlainBuffer row including its sequence info.
    pub row: Row,
    /// The row's PlainBuffer bytes, encoded when the record is appended (or, for a
    /// record loaded from a saved state, at its first read); cleared when the row
    /// changes.
    #[serde(skip)]
    pub encoded: std::sync::OnceLock<bytes::Bytes>,
}

impl LogRecord {
    pub fn timestamp_us(&self) -> i64 {
        self.row.sequence_info.map_or(0, |s| s.timestamp_us)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Shard {
    pub id: String,
    pub parent_id: Option<String>,
    pub parent_sibling_id: Option<String>,
    /// Range of the first primary-key column: `[low, high)`.
    pub low: PkValue,
    pub high: PkValue,
    /// When the shard was closed by a split or merge, µs.
    pub closed_us: Option<i64>,
    /// Number of records trimmed from the front.
    pub trimmed: u64,
    pub records: VecDeque<LogRecord>,
}

impl Shard {
    fn end(&self) -> u64 {
        self.trimmed + self.records.len() as u64
    }

    fn contains(&self, first_pk: &PkValue) -> bool {
        &self.low <= first_pk && first_pk < &self.high
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StreamState {
    pub stream_id: String,
    pub creation_us: i64,
    pub expiration_hours: i32,
    pub shards: Vec<Shard>,
    next_shard_no: u32,
}

impl StreamState {
    pub fn new(table: &str, creation_us: i64, expiration_hours: i32) -> Self {
        let mut s = Self {
            stream_id: format!("{table}_{creation_us}"),
            creation_us,
            expiration_hours,
            shards: Vec::new(),
            next_shard_no: 0,
        };
        let id = s.new_shard_id();
        s.shards.push(Shard {
            id,
            parent_id: None,
            parent_sibling_id: None,
            low: PkValue::InfMin,
            high: PkValue::InfMax,
            closed_us: None,
            trimmed: 0,
            records: VecDeque::new(),
        });
        s
    }

    fn new_shard_id(&mut self) -> String {
        self.next_shard_no += 1;
        // Sortable by creation, distinct across streams of the same table.
        format!(
            "{:04}-{:x}",
            self.next_shard_no,
            self.creation_us % 0xffff_ffff
        )
    }

    pub fn retention_us(&self) -> i64 {
        i64::from(self.expiration_hours) * 3_600_000_000
    }

    /// Drops expired records, and closed shards whose retention has passed.
    pub fn trim(&mut self, now_us: i64) {
        let cutoff = now_us - self.retention_us();
        for shard in &mut self.shards {
            while shard
                .records
                .front()
                .is_some_and(|r| r.timestamp_us() < cutoff)
            {
                shard.records.pop_front();
                shard.trimmed += 1;
            }
        }
        self.shards.retain(|s| {
            s.closed_us
                .is_none_or(|c| c >= cutoff || !s.records.is_empty())
        });
    }

    /// Appends a committed change to the shard that owns its first key column.
    pub fn append(&mut self, action: Action, mut row: Row, commit_us: i64, row_index: u32) {
        row.sequence_info = Some(SequenceInfo {
            epoch: EPOCH,
            timestamp_us: commit_us,
            row_index,
        });
        let Some(first) = row.primary_key.first().map(|(_, v)| v.clone()) else {
            return;
        };
        if let Some(shard) = self
            .shards
            .iter_mut()
            .find(|s| s.closed_us.is_none() && s.contains(&first))
        {
            // Encoded once, as written, the way the service keeps its log: a read
            // copies the bytes.
            let encoded =
                std::sync::OnceLock::from(bytes::Bytes::from(plainbuffer::encode_row(&row)));
            shard.records.push_back(LogRecord {
                action,
                row,
                encoded,
            });
        }
    }

    fn shard(&self, shard_id: &str) -> Option<&Shard> {
        self.shards.iter().find(|s| s.id == shard_id)
    }

    /// `GetShardIterator`: the oldest retained record, or the first at or after
    /// `timestamp_us`.
    pub fn iterator(&self, shard_id: &str, timestamp_us: Option<i64>) -> OtsResult<String> {
        let shard = self
            .shard(shard_id)
            .ok_or_else(|| OtsError::invalid(format!("Shard does not exist: {shard_id}.")))?;
        let offset = match timestamp_us {
            None => 0,
            Some(t) => shard
                .records
                .iter()
                .position(|r| r.timestamp_us() >= t)
                .unwrap_or(shard.records.len()),
        };
        Ok(encode_iterator(
            &self.stream_id,
            shard_id,
            shard.trimmed + offset as u64,
        ))
    }

    /// `GetStreamRecord`: records from the iterator on and the next iterator (absent at
    /// the end of a closed shard).
    pub fn read(
        &self,
        position: &IteratorPosition,
        limit: usize,
    ) -> OtsResult<(Vec<&LogRecord>, Option<String>)> {
        if position.stream_id != self.stream_id {
            return Err(OtsError::trimmed());
        }
        let shard = self
            .shard(&position.shard_id)
            .ok_or_else(OtsError::trimmed)?;
        if position.position < shard.trimmed || position.position > shard.end() {
            return Err(OtsError::trimmed());
        }
        let from = (position.position - shard.trimmed) as usize;
        let records: Vec<&LogRecord> = shard.records.iter().skip(from).take(limit).collect();
        let next = position.position + records.len() as u64;
        let next_iterator = if shard.closed_us.is_some() && next == shard.end() {
            None
        } else {
            Some(encode_iterator(&self.stream_id, &shard.id, next))
        };
        Ok((records, next_iterator))
    }

    /// Closes `shard_id` and opens two children split at `point` (first key column).
    pub fn split(
        &mut self,
        shard_id: &str,
        point: PkValue,
        now_us: i64,
    ) -> Result<[String; 2], String> {
        let idx = self
            .shards
            .iter()
            .position(|s| s.id == shard_id && s.closed_us.is_none())
            .ok_or_else(|| format!("no open shard {shard_id}"))?;
        let (low, high) = (self.shards[idx].low.clone(), self.shards[idx].high.clone());
        if !(low < point && point < high) {
            return Err(format!("split point {point:?} is outside shard {shard_id}"));
        }
        self.shards[idx].closed_us = Some(now_us);
        let ids = [self.new_shard_id(), self.new_shard_id()];
        let ranges = [(low, point.clone()), (point, high)];
        for (id, (low, high)) in ids.iter().zip(ranges) {
            self.shards.push(Shard {
                id: id.clone(),
                parent_id: Some(shard_id.to_owned()),
                parent_sibling_id: None,
                low,
                high,
                closed_us: None,
                trimmed: 0,
                records: VecDeque::new(),
            });
        }
        Ok(ids)
    }

    /// Closes two adjacent open shards and opens one child with both as parents.
    pub fn merge(&mut self, a: &str, b: &str, now_us: i64) -> Result<String, String> {
        let find = |id: &str| {
            self.shards
                .iter()
                .position(|s| s.id == id && s.closed_us.is_none())
                .ok_or_else(|| format!("no open shard {id}"))
        };
        let (mut i, mut j) = (find(a)?, find(b)?);
        if self.shards[j].low < self.shards[i].low {
            std::mem::swap(&mut i, &mut j);
        }
        if i == j || self.shards[i].high != self.shards[j].low {
            return Err(format!("shards {a} and {b} are not adjacent"));
        }
        let (low, high) = (self.shards[i].low.clone(), self.shards[j].high.clone());
        let (pi, pj) = (self.shards[i].id.clone(), self.shards[j].id.clone());
        self.shards[i].closed_us = Some(now_us);
        self.shards[j].closed_us = Some(now_us);
        let id = self.new_shard_id();
        self.shards.push(Shard {
            id: id.clone(),
            parent_id: Some(pi),
            parent_sibling_id: Some(pj),
            low,
            high,
            closed_us: None,
            trimmed: 0,
            records: VecDeque::new(),
        });
        Ok(id)
    }

    /// Moves every time of the stream `delta_us` into the past.
    pub fn backdate(&mut self, delta_us: i64) {
        self.creation_us -= delta_us;
        for shard in &mut self.shards {
            shard.closed_us = shard.closed_us.map(|c| c - delta_us);
            for record in &mut shard.records {
                record.encoded = std::sync::OnceLock::new();
                if let Some(seq) = record.row.sequence_info.as_mut() {
                    seq.timestamp_us -= delta_us;
                }
                for cell in &mut record.row.cells {
                    cell.timestamp_ms = cell.timestamp_ms.map(|t| t - delta_us / 1000);
                }
            }
        }
    }

    /// The record bytes of `GetStreamRecord`.
    pub fn encode_record(record: &LogRecord) -> bytes::Bytes {
        record
            .encoded
            .get_or_init(|| plainbuffer::encode_row(&record.row).into())
            .clone()
    }
}

/// What a shard iterator points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IteratorPosition {
    pub stream_id: String,
    pub shard_id: String,
    pub position: u64,
}

fn encode_iterator(stream_id: &str, shard_id: &str, position: u64) -> String {
    B64.encode(format!("lcit1\n{stream_id}\n{shard_id}\n{position}"))
}

/// Parses an iterator; one this emulator did not issue answers `OTSParameterInvalid`.
pub fn decode_iterator(iterator: &str) -> OtsResult<IteratorPosition> {
    let invalid = || OtsError::invalid("Invalid shard iterator.");
    let raw = B64.decode(iterator).map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let mut parts = text.split('\n');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("lcit1"), Some(stream), Some(shard), Some(pos), None) => Ok(IteratorPosition {
            stream_id: stream.to_owned(),
            shard_id: shard.to_owned(),
            position: pos.parse().map_err(|_| invalid())?,
        }),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pk: i64) -> Row {
        Row {
            primary_key: vec![("id".into(), PkValue::Integer(pk))],
            ..Row::default()
        }
    }

    #[test]
    fn open_shard_caught_up_returns_the_same_iterator() {
        let mut s = StreamState::new("t", 1_000_000, 24);
        s.append(Action::Put, row(1), 2_000_000, 0);
        let shard = s.shards[0].id.clone();
        let it = s.iterator(&shard, None).unwrap();
        let (recs, next) = s.read(&decode_iterator(&it).unwrap(), 10).unwrap();
        assert_eq!(recs.len(), 1);
        let next = next.unwrap();
        let (recs, again) = s.read(&decode_iterator(&next).unwrap(), 10).unwrap();
        assert!(recs.is_empty());
        assert_eq!(again.as_deref(), Some(next.as_str()));
    }

    #[test]
    fn split_closes_parent_and_routes_by_first_key() {
        let mut s = StreamState::new("t", 1_000_000, 24);
        s.append(Action::Put, row(1), 2_000_000, 0);
        let parent = s.shards[0].id.clone();
        let [left, right] = s.split(&parent, PkValue::Integer(10), 3_000_000).unwrap();
        s.append(Action::Put, row(5), 4_000_000, 0);
        s.append(Action::Put, row(50), 5_000_000, 0);
        let it = decode_iterator(&s.iterator(&parent, None).unwrap()).unwrap();
        let (recs, next) = s.read(&it, 10).unwrap();
        assert_eq!((recs.len(), next), (1, None));
        for (id, want) in [(left, 5), (right, 50)] {
            let it = decode_iterator(&s.iterator(&id, None).unwrap()).unwrap();
            let (recs, _) = s.read(&it, 10).unwrap();
            assert_eq!(recs[0].row.primary_key[0].1, PkValue::Integer(want));
        }
    }

    #[test]
    fn trimmed_positions_are_refused() {
        let mut s = StreamState::new("t", 0, 1);
        s.append(Action::Put, row(1), 1_000, 0);
        let shard = s.shards[0].id.clone();
        let it = decode_iterator(&s.iterator(&shard, None).unwrap()).unwrap();
        s.trim(2 * 3_600_000_000);
        assert_eq!(s.read(&it, 10).unwrap_err().code, "OTSTrimmedDataAccess");
        assert!(decode_iterator("not-an-iterator").is_err());
    }

    #[test]
    fn merge_needs_adjacent_open_shards_and_names_both_parents() {
        let mut s = StreamState::new("t", 0, 24);
        let root = s.shards[0].id.clone();
        let [a, b] = s.split(&root, PkValue::Integer(10), 1).unwrap();
        let [b1, b2] = s.split(&b, PkValue::Integer(20), 2).unwrap();
        assert!(s.merge(&a, &b2, 3).is_err(), "not adjacent");
        assert!(s.merge(&root, &a, 3).is_err(), "root is closed");
        let child = s.merge(&b1, &a, 3).unwrap();
        let merged = s.shards.iter().find(|x| x.id == child).unwrap();
        // The lower range is the parent, the upper the sibling, whatever the order given.
        assert_eq!(merged.parent_id.as_deref(), Some(a.as_str()));
        assert_eq!(merged.parent_sibling_id.as_deref(), Some(b1.as_str()));
        assert_eq!(
            (merged.low.clone(), merged.high.clone()),
            (PkValue::InfMin, PkValue::Integer(20))
        );
        s.append(Action::Put, row(15), 4, 0);
        assert_eq!(
            s.shards
                .iter()
                .find(|x| x.id == child)
                .unwrap()
                .records
                .len(),
            1
        );
    }
}
