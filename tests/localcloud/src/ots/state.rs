//! The instance's tables: schema, options, multi-version cells, and each table's stream.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{OtsError, OtsResult};
use super::plainbuffer::{Cell, PkValue, Value};
use super::stream::StreamState;

/// `PrimaryKeyType` of the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PkType {
    Integer = 1,
    String = 2,
    Binary = 3,
}

impl PkType {
    pub fn from_proto(v: i32) -> Option<Self> {
        match v {
            1 => Some(Self::Integer),
            2 => Some(Self::String),
            3 => Some(Self::Binary),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Integer => "INTEGER",
            Self::String => "STRING",
            Self::Binary => "BINARY",
        }
    }

    fn matches(self, value: &PkValue) -> bool {
        matches!(
            (self, value),
            (Self::Integer, PkValue::Integer(_))
                | (Self::String, PkValue::String(_))
                | (Self::Binary, PkValue::Binary(_))
        )
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PkColumn {
    pub name: String,
    pub pk_type: PkType,
    pub auto_increment: bool,
}

/// Table options as the service reports them.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Options {
    /// Seconds; -1 keeps data forever.
    pub time_to_live_s: i32,
    pub max_versions: i32,
    pub deviation_cell_version_s: i64,
}

/// The primary key of a stored row, in schema order.
pub type Key = Vec<PkValue>;

/// One column's versions, newest first.
pub type Versions = Vec<(i64, Value)>;

/// A stored row: every column's versions.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StoredRow {
    pub columns: BTreeMap<String, Versions>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub primary_key: Vec<PkColumn>,
    pub defined_columns: Vec<(String, i32)>,
    pub options: Options,
    pub created_ms: i64,
    #[serde(with = "super::persist::map_as_pairs")]
    pub rows: BTreeMap<Key, StoredRow>,
    pub stream: Option<StreamState>,
    /// Next value for an auto-increment primary-key column.
    pub auto_increment_next: i64,
    /// Commit time of the last logged write, µs (stream record times never go back).
    pub last_commit_us: i64,
}

/// Which versions a read wants (spec §2.4: `max_versions` and/or `time_range`).
#[derive(Clone, Debug)]
pub struct VersionFilter {
    pub max_versions: Option<i32>,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl VersionFilter {
    pub fn from_request(
        max_versions: Option<i32>,
        time_range: Option<&super::pb::TimeRange>,
    ) -> OtsResult<Self> {
        if max_versions.is_none() && time_range.is_none() {
            return Err(OtsError::invalid(
                "No version condition is specified while querying row.",
            ));
        }
        if max_versions.is_some_and(|m| m <= 0) {
            return Err(OtsError::invalid("max_versions must be greater than 0."));
        }
        let (start_ms, end_ms) = match time_range {
            None => (0, i64::MAX),
            Some(tr) => match (tr.specific_time, tr.start_time, tr.end_time) {
                (Some(t), None, None) => (t, t.saturating_add(1)),
                (None, Some(s), Some(e)) if s < e && s >= 0 => (s, e),
                _ => return Err(OtsError::invalid("Invalid time range.")),
            },
        };
        Ok(Self {
            max_versions,
            start_ms,
            end_ms,
        })
    }
}

impl Table {
    /// Earliest cell version still alive under the table's TTL.
    pub fn ttl_floor_ms(&self, now_ms: i64) -> i64 {
        if self.options.time_to_live_s < 0 {
            i64::MIN
        } else {
            now_ms - i64::from(self.options.time_to_live_s) * 1000
        }
    }

    /// Checks a written primary key against the schema and fills auto-increment columns.
    pub fn check_write_key(
        &mut self,
        pk: &[(String, PkValue)],
        allow_auto_increment: bool,
        now_us: i64,
    ) -> OtsResult<Key> {
        if pk.len() != self.primary_key.len() {
            return Err(OtsError::invalid_pk());
        }
        let mut key = Vec::with_capacity(pk.len());
        for ((name, value), col) in pk.iter().zip(&self.primary_key) {
            if name != &col.name {
                return Err(OtsError::invalid_pk());
            }
            let value = match value {
                PkValue::AutoIncrement if col.auto_increment && allow_auto_increment => {
                    let next = self.auto_increment_next.max(now_us);
                    self.auto_increment_next = next + 1;
                    PkValue::Integer(next)
                }
                v if col.pk_type.matches(v) => v.clone(),
                _ => return Err(OtsError::invalid_pk()),
            };
            if let PkValue::String(s) = &value {
                if s.len() > 1024 {
                    return Err(OtsError::invalid(
                        "The length of primary key column exceeds the limit.",
                    ));
                }
            }
            if let PkValue::Binary(b) = &value {
                if b.len() > 1024 {
                    return Err(OtsError::invalid(
                        "The length of primary key column exceeds the limit.",
                    ));
                }
            }
            key.push(value);
        }
        Ok(key)
    }

    /// Checks a read or range key: schema names, and types or `INF_MIN`/`INF_MAX`.
    pub fn check_read_key(&self, pk: &[(String, PkValue)], allow_inf: bool) -> OtsResult<Key> {
        if pk.len() != self.primary_key.len() {
            return Err(OtsError::invalid_pk());
        }
        pk.iter()
            .zip(&self.primary_key)
            .map(|((name, value), col)| {
                let inf = matches!(value, PkValue::InfMin | PkValue::InfMax);
                if name != &col.name || !(col.pk_type.matches(value) || (allow_inf && inf)) {
                    Err(OtsError::invalid_pk())
                } else {
                    Ok(value.clone())
                }
            })
            .collect()
    }

    /// The primary key with its column names, for encoding.
    pub fn named_key(&self, key: &Key) -> Vec<(String, PkValue)> {
        self.primary_key
            .iter()
            .zip(key)
            .map(|(c, v)| (c.name.clone(), v.clone()))
            .collect()
    }

    /// The visible cells of a row for a read, columns by name, versions newest first;
    /// `None` when nothing of the row is visible.
    pub fn visible_cells(
        &self,
        row: &StoredRow,
        columns_to_get: &[String],
        filter: &VersionFilter,
        now_ms: i64,
    ) -> Option<Vec<Cell>> {
        let floor = self.ttl_floor_ms(now_ms);
        let table_max = usize::try_from(self.options.max_versions.max(1)).unwrap_or(1);
        let wanted_max = filter
            .max_versions
            .and_then(|m| usize::try_from(m).ok())
            .unwrap_or(usize::MAX);
        let mut any_alive = row.columns.is_empty();
        let mut cells = Vec::new();
        for (name, versions) in &row.columns {
            let alive: Vec<&(i64, Value)> = versions
                .iter()
                .take(table_max)
                .filter(|(ts, _)| *ts >= floor)
                .collect();
            any_alive |= !alive.is_empty();
            if !columns_to_get.is_empty() && !columns_to_get.contains(name) {
                continue;
            }
            for (ts, value) in alive
                .into_iter()
                .filter(|(ts, _)| *ts >= filter.start_ms && *ts < filter.end_ms)
                .take(wanted_max)
            {
                cells.push(Cell {
                    name: name.clone(),
                    value: Some(value.clone()),
                    op: None,
                    timestamp_ms: Some(*ts),
                });
            }
        }
        if !any_alive {
            return None;
        }
        let pk_requested = columns_to_get
            .iter()
            .any(|c| self.primary_key.iter().any(|p| &p.name == c));
        if !columns_to_get.is_empty() && cells.is_empty() && !pk_requested {
            return None;
        }
        Some(cells)
    }

    /// Whether a row counts as existing for a row-existence condition.
    pub fn row_exists(&self, key: &Key, now_ms: i64) -> bool {
        let floor = self.ttl_floor_ms(now_ms);
        self.rows.get(key).is_some_and(|row| {
            row.columns.is_empty()
                || row
                    .columns
                    .values()
                    .any(|v| v.iter().any(|(ts, _)| *ts >= floor))
        })
    }
}

/// Inserts a version, replacing one with the same timestamp, keeping newest first and
/// at most `max_versions`.
pub fn put_version(versions: &mut Versions, ts: i64, value: Value, max_versions: i32) {
    versions.retain(|(t, _)| *t != ts);
    let at = versions
        .iter()
        .position(|(t, _)| *t < ts)
        .unwrap_or(versions.len());
    versions.insert(at, (ts, value));
    versions.truncate(usize::try_from(max_versions.max(1)).unwrap_or(1));
}

/// Table and column name rule: a letter or underscore, then letters, digits, underscores.
pub fn valid_name(name: &str, max_len: usize) -> bool {
    let mut chars = name.chars();
    name.len() <= max_len
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// All tables of the instance.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Instance {
    pub tables: BTreeMap<String, Table>,
}

impl Instance {
    pub fn table(&self, name: &str) -> OtsResult<&Table> {
        self.tables.get(name).ok_or_else(OtsError::no_table)
    }

    pub fn table_mut(&mut self, name: &str) -> OtsResult<&mut Table> {
        self.tables.get_mut(name).ok_or_else(OtsError::no_table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_stay_newest_first_and_capped() {
        let mut v = Versions::new();
        put_version(&mut v, 10, Value::Integer(1), 2);
        put_version(&mut v, 30, Value::Integer(3), 2);
        put_version(&mut v, 20, Value::Integer(2), 2);
        assert_eq!(v.iter().map(|(t, _)| *t).collect::<Vec<_>>(), vec![30, 20]);
        put_version(&mut v, 20, Value::Integer(9), 2);
        assert_eq!(v[1], (20, Value::Integer(9)));
    }

    #[test]
    fn names_follow_the_rule() {
        assert!(valid_name("_a1", 255));
        assert!(valid_name("ShardIds_0", 255));
        assert!(!valid_name("1a", 255));
        assert!(!valid_name("a-b", 255));
        assert!(!valid_name("", 255));
    }
}
