//! Tunnel sessions.
//!
//! An upload session belongs to one table (and partition); blocks are stored per
//! block id (a later upload of the same id replaces the earlier one) and become
//! visible in the table only when the session is committed, atomically. A session
//! expires [`SESSION_TTL_MS`] after creation (by the emulator clock).
//!
//! A download session is a snapshot of rows taken when it is created: the committed
//! rows of a table partition, or the result set of a SQL instance.

use std::collections::{BTreeMap, HashMap};

use super::error::{OdpsError, OdpsResult};
use super::state::Column;
use super::types::Row;
use super::wire::EncodedBlock;

/// Sessions live 24 hours.
pub const SESSION_TTL_MS: i64 = 24 * 3600 * 1000;

/// Block ids are within `[0, MAX_BLOCK_ID)`.
pub const MAX_BLOCK_ID: u64 = 20_000;

/// The lifecycle of an upload session (rendered lower-case as `Status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadStatus {
    Normal,
    Closed,
    Expired,
}

impl UploadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadStatus::Normal => "normal",
            UploadStatus::Closed => "closed",
            UploadStatus::Expired => "expired",
        }
    }
}

/// One received block.
#[derive(Clone, Debug)]
pub struct Block {
    /// The block, checked, until the commit moves it into the table.
    pub encoded: Option<EncodedBlock>,
    /// How many rows the block held (kept after the commit).
    pub records: usize,
    pub received_ms: i64,
}

/// One upload session.
#[derive(Clone, Debug)]
pub struct UploadSession {
    pub id: String,
    pub project: String,
    pub table: String,
    /// Partition values in key order; empty for a non-partitioned table.
    pub partition: Vec<String>,
    pub columns: Vec<Column>,
    pub partition_keys: Vec<Column>,
    pub overwrite: bool,
    pub created_ms: i64,
    pub status: UploadStatus,
    pub blocks: BTreeMap<u64, Block>,
}

impl UploadSession {
    /// Marks the session expired if its time is up, committed or not (spec `odps.md`
    /// 4.6: after 24 h any call is `StatusConflict`, so whether it committed can no
    /// longer be learned); returns the current status.
    pub fn refresh(&mut self, now_ms: i64) -> UploadStatus {
        if self.status != UploadStatus::Expired && now_ms - self.created_ms >= SESSION_TTL_MS {
            self.status = UploadStatus::Expired;
        }
        self.status
    }

    /// Fails unless the session still accepts blocks and a commit.
    pub fn require_open(&mut self, now_ms: i64) -> OdpsResult<()> {
        match self.refresh(now_ms) {
            UploadStatus::Normal => Ok(()),
            UploadStatus::Expired => Err(OdpsError::status_conflict(format!(
                "The upload session {} is expired",
                self.id
            ))),
            UploadStatus::Closed => Err(OdpsError::status_conflict(format!(
                "The upload session {} is already committed",
                self.id
            ))),
        }
    }
}

/// What a download session reads from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownloadSource {
    Table {
        table: String,
        partition: Vec<String>,
    },
    Instance {
        instance: String,
    },
}

/// One download session: a snapshot.
#[derive(Clone, Debug)]
pub struct DownloadSession {
    pub id: String,
    pub project: String,
    pub source: DownloadSource,
    pub columns: Vec<Column>,
    pub partition_keys: Vec<Column>,
    pub rows: Vec<Row>,
    pub created_ms: i64,
}

impl DownloadSession {
    pub fn require_live(&self, now_ms: i64) -> OdpsResult<()> {
        if now_ms - self.created_ms >= SESSION_TTL_MS {
            return Err(OdpsError::status_conflict(format!(
                "The download session {} is expired",
                self.id
            )));
        }
        Ok(())
    }

    /// Rows `[start, start + count)` restricted to `columns` (names; all data
    /// columns when empty). Returns the chosen column list and the rows.
    pub fn read(
        &self,
        start: u64,
        count: u64,
        columns: &[String],
    ) -> OdpsResult<(Vec<Column>, Vec<Row>)> {
        let total = self.rows.len() as u64;
        let end = start.checked_add(count).filter(|&e| e <= total).ok_or_else(|| {
            OdpsError::new(
                400,
                "InvalidRowRange",
                format!("row range ({start},{count}) exceeds the {total} records of download session {}", self.id),
            )
        })?;
        let picks: Vec<usize> = if columns.is_empty() {
            (0..self.columns.len()).collect()
        } else {
            columns
                .iter()
                .map(|name| {
                    self.columns
                        .iter()
                        .position(|c| c.name.eq_ignore_ascii_case(name))
                        .ok_or_else(|| {
                            OdpsError::invalid_argument(format!("column {name} does not exist"))
                        })
                })
                .collect::<OdpsResult<_>>()?
        };
        let chosen = picks.iter().map(|&i| self.columns[i].clone()).collect();
        let rows = self.rows[start as usize..end as usize]
            .iter()
            .map(|row| {
                picks
                    .iter()
                    .map(|&i| row.get(i).cloned().flatten())
                    .collect()
            })
            .collect();
        Ok((chosen, rows))
    }
}

/// Every session of the emulator.
#[derive(Debug, Default)]
pub struct Sessions {
    pub uploads: HashMap<String, UploadSession>,
    pub downloads: HashMap<String, DownloadSession>,
    pub upserts: HashMap<String, super::upsert::UpsertSession>,
}

impl Sessions {
    pub fn upload_mut(
        &mut self,
        project: &str,
        table: &str,
        id: &str,
    ) -> OdpsResult<&mut UploadSession> {
        self.uploads
            .get_mut(id)
            .filter(|s| s.project == project && s.table.eq_ignore_ascii_case(table))
            .ok_or_else(|| {
                OdpsError::new(
                    404,
                    "NoSuchUpload",
                    format!("upload session {id} does not exist"),
                )
            })
    }

    /// The download session `id` of `project` reading `table` or `instance`.
    pub fn download(
        &self,
        project: &str,
        table_or_instance: &str,
        id: &str,
    ) -> OdpsResult<&DownloadSession> {
        self.downloads
            .get(id)
            .filter(|s| {
                s.project == project
                    && match &s.source {
                        DownloadSource::Table { table, .. } => {
                            table.eq_ignore_ascii_case(table_or_instance)
                        }
                        DownloadSource::Instance { instance } => instance == table_or_instance,
                    }
            })
            .ok_or_else(|| {
                OdpsError::new(
                    404,
                    "NoSuchDownload",
                    format!("download session {id} does not exist"),
                )
            })
    }
}

/// A 32-character session id: creation time `yyyyMMddHHmmss` then hex digits.
pub fn session_id(now_ms: i64, seq: u64) -> String {
    let stamp = chrono::DateTime::from_timestamp_millis(now_ms)
        .map(|t| t.format("%Y%m%d%H%M%S").to_string())
        .unwrap_or_else(|| "19700101000000".to_owned());
    let noise: u32 = rand::random();
    format!("{stamp}{noise:08x}{seq:010x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odps::types::{OdpsType, Value};

    fn col(name: &str) -> Column {
        Column {
            name: name.into(),
            ty: OdpsType::Bigint,
            comment: String::new(),
        }
    }

    #[test]
    fn upload_sessions_expire_after_the_ttl() {
        let mut s = UploadSession {
            id: "x".into(),
            project: "p".into(),
            table: "t".into(),
            partition: vec![],
            columns: vec![],
            partition_keys: vec![],
            overwrite: false,
            created_ms: 1000,
            status: UploadStatus::Normal,
            blocks: BTreeMap::new(),
        };
        assert!(s.require_open(1000 + SESSION_TTL_MS - 1).is_ok());
        assert_eq!(
            s.require_open(1000 + SESSION_TTL_MS).unwrap_err().code,
            "StatusConflict"
        );
        assert_eq!(s.status, UploadStatus::Expired);
        s.status = UploadStatus::Closed;
        s.created_ms = 0;
        assert!(s.require_open(SESSION_TTL_MS - 1).is_err());
        assert_eq!(s.refresh(SESSION_TTL_MS - 1), UploadStatus::Closed);
        assert_eq!(s.refresh(SESSION_TTL_MS), UploadStatus::Expired);
    }

    #[test]
    fn download_reads_a_range_of_chosen_columns() {
        let d = DownloadSession {
            id: "d".into(),
            project: "p".into(),
            source: DownloadSource::Instance {
                instance: "i".into(),
            },
            columns: vec![col("a"), col("b")],
            partition_keys: vec![],
            rows: (0..5)
                .map(|i| vec![Some(Value::Int(i)), Some(Value::Int(i * 10))])
                .collect(),
            created_ms: 0,
        };
        let (cols, rows) = d.read(1, 2, &["B".into()]).unwrap();
        assert_eq!(cols, vec![col("b")]);
        assert_eq!(
            rows,
            vec![vec![Some(Value::Int(10))], vec![Some(Value::Int(20))]]
        );
        assert_eq!(d.read(4, 2, &[]).unwrap_err().code, "InvalidRowRange");
        assert!(d.read(0, 1, &["zz".into()]).is_err());
        assert_eq!(session_id(0, 1).len(), 32);
    }
}
