//! The catalogue: projects, tables (data columns and partition keys), partitions
//! and their committed rows, plus SQL instances. Upload and download sessions live
//! in [`super::sessions`].
//!
//! Table and column names are case-insensitive (kept lower-case); project names are
//! kept as given. A non-partitioned table holds its rows under the empty partition.

use std::collections::{BTreeMap, HashMap};

use super::error::{OdpsError, OdpsResult};
use super::sessions::Sessions;
use super::types::{OdpsType, Row, Value};
use super::wire::EncodedBlock;

/// One column or partition key.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: OdpsType,
    pub comment: String,
}

/// The rows and times of one partition. Rows committed through the Tunnel stay in
/// their blocks until the partition is first read ([`Partition::decode`]).
#[derive(Clone, Debug, Default)]
pub struct Partition {
    pub created_s: i64,
    pub modified_s: i64,
    rows: Vec<Row>,
    /// Committed blocks whose rows follow `rows`, not decoded yet.
    encoded: Vec<EncodedBlock>,
}

impl Partition {
    pub fn new(now_s: i64) -> Self {
        Self {
            created_s: now_s,
            modified_s: now_s,
            ..Self::default()
        }
    }

    /// Rows, decoded or not.
    pub fn len(&self) -> usize {
        self.rows.len()
            + self
                .encoded
                .iter()
                .map(EncodedBlock::records)
                .sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes the committed blocks not decoded yet.
    pub fn decode(&mut self) -> OdpsResult<()> {
        for block in std::mem::take(&mut self.encoded) {
            let mut rows = block.decode().map_err(|e| {
                OdpsError::internal(format!("a committed block no longer decodes: {e}"))
            })?;
            self.rows.append(&mut rows);
        }
        Ok(())
    }

    /// The rows, once [`Partition::decode`] ran; an error if some are still encoded
    /// (a reader that forgot to decode them would see fewer rows).
    pub fn rows(&self) -> OdpsResult<&[Row]> {
        if self.encoded.is_empty() {
            Ok(&self.rows)
        } else {
            Err(OdpsError::internal(
                "a partition was read before its committed blocks were decoded",
            ))
        }
    }

    /// The rows, decoded, to change.
    pub fn rows_mut(&mut self) -> OdpsResult<&mut Vec<Row>> {
        self.decode()?;
        Ok(&mut self.rows)
    }

    /// Appends rows committed as blocks.
    pub fn append_blocks(&mut self, blocks: impl IntoIterator<Item = EncodedBlock>) {
        self.encoded.extend(blocks);
    }

    /// Drops every row.
    pub fn clear(&mut self) {
        self.rows.clear();
        self.encoded.clear();
    }
}

/// One table.
#[derive(Clone, Debug)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    pub partition_keys: Vec<Column>,
    pub comment: String,
    pub lifecycle: i64,
    pub created_s: i64,
    pub ddl_s: i64,
    pub modified_s: i64,
    /// Keyed by the partition values in key order; `[]` for a non-partitioned table.
    pub partitions: BTreeMap<Vec<String>, Partition>,
    /// `TBLPROPERTIES` as given (keys lower-case), e.g. `transactional` = `true`.
    pub properties: BTreeMap<String, String>,
    /// `PRIMARY KEY` columns in declaration order (a Delta table has one); see
    /// [`super::delta`].
    pub primary_key: Vec<String>,
}

impl Table {
    /// Decodes every partition's committed blocks (before its rows are read).
    pub fn decode(&mut self) -> OdpsResult<()> {
        self.partitions.values_mut().try_for_each(Partition::decode)
    }

    pub fn new(name: &str, columns: Vec<Column>, partition_keys: Vec<Column>, now_s: i64) -> Self {
        let mut partitions = BTreeMap::new();
        if partition_keys.is_empty() {
            partitions.insert(Vec::new(), Partition::new(now_s));
        }
        Self {
            name: name.to_ascii_lowercase(),
            columns,
            partition_keys,
            comment: String::new(),
            lifecycle: -1,
            created_s: now_s,
            ddl_s: now_s,
            modified_s: now_s,
            partitions,
            properties: BTreeMap::new(),
            primary_key: Vec::new(),
        }
    }

    pub fn is_partitioned(&self) -> bool {
        !self.partition_keys.is_empty()
    }

    pub fn column_types(&self) -> Vec<OdpsType> {
        self.columns.iter().map(|c| c.ty.clone()).collect()
    }

    /// Orders `pairs` (key, value) by the table's partition keys; every key must
    /// appear exactly once unless `allow_prefix`, in which case a leading subset may.
    pub fn partition_values(
        &self,
        pairs: &[(String, String)],
        allow_prefix: bool,
    ) -> OdpsResult<Vec<String>> {
        if !self.is_partitioned() {
            return Err(OdpsError::invalid_partition_spec(format!(
                "table {} is not partitioned but a partition spec was given",
                self.name
            )));
        }
        let mut values = Vec::new();
        for key in &self.partition_keys {
            let found: Vec<&(String, String)> = pairs
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(&key.name))
                .collect();
            match found.as_slice() {
                [(_, v)] if key.ty.int_range().is_some() || key.ty == OdpsType::Bigint => {
                    let typed = v.parse::<i64>().ok().filter(|n| {
                        key.ty
                            .int_range()
                            .is_none_or(|(lo, hi)| (lo..=hi).contains(n))
                    });
                    if typed.is_none() {
                        return Err(OdpsError::invalid_partition_spec(format!(
                            "partition value {v:?} is not a valid {} for key {}",
                            key.ty, key.name
                        )));
                    }
                    values.push(v.clone());
                }
                [(_, v)] => values.push(v.clone()),
                [] if allow_prefix => break,
                [] => {
                    return Err(OdpsError::new(
                        400,
                        "MissingPartitionSpec",
                        format!(
                            "partition spec misses key {} of table {}",
                            key.name, self.name
                        ),
                    ))
                }
                _ => {
                    return Err(OdpsError::invalid_partition_spec(format!(
                        "partition key {} given twice",
                        key.name
                    )))
                }
            }
        }
        if values.len() != pairs.len() {
            return Err(OdpsError::invalid_partition_spec(format!(
                "partition spec names keys table {} does not have (or out of order)",
                self.name
            )));
        }
        Ok(values)
    }

    /// `k1=v1,k2=v2` for values in key order.
    pub fn spec_string(&self, values: &[String], quoted: bool) -> String {
        self.partition_keys
            .iter()
            .zip(values)
            .map(|(k, v)| {
                if quoted {
                    format!("{}='{v}'", k.name)
                } else {
                    format!("{}={v}", k.name)
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The value of partition key `i` for `SELECT *` results, typed as the key.
    pub fn partition_value(&self, i: usize, text: &str) -> Option<Value> {
        match &self.partition_keys.get(i)?.ty {
            OdpsType::Bigint | OdpsType::Int | OdpsType::Smallint | OdpsType::Tinyint => {
                text.parse().ok().map(Value::Int)
            }
            _ => Some(Value::Bytes(bytes::Bytes::copy_from_slice(text.as_bytes()))),
        }
    }
}

/// Splits `k1=v1,k2='v2'` into pairs, dropping quotes and spaces around keys/values.
pub fn parse_spec(spec: &str) -> OdpsResult<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for part in spec
        .split([',', '/'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            OdpsError::invalid_partition_spec(format!("invalid partition spec {spec:?}"))
        })?;
        let v: String = v
            .trim()
            .chars()
            .filter(|c| *c != '\'' && *c != '"')
            .collect();
        if k.trim().is_empty() || v.is_empty() {
            return Err(OdpsError::invalid_partition_spec(format!(
                "invalid partition spec {spec:?}"
            )));
        }
        pairs.push((k.trim().to_ascii_lowercase(), v));
    }
    Ok(pairs)
}

/// What a finished SQL task produced.
#[derive(Clone, Debug)]
pub enum TaskOutcome {
    /// A statement without a result set; the text is the task result (`OK`).
    Done(String),
    /// A query: result columns and rows.
    ResultSet {
        columns: Vec<Column>,
        rows: Vec<Row>,
    },
    /// The task failed with this error text (`ODPS-…:…`).
    Failed(String),
}

/// One SQL instance. Instances run synchronously: they are terminated when created.
#[derive(Clone, Debug)]
pub struct Instance {
    pub task_name: String,
    pub job_xml: String,
    pub created_ms: i64,
    pub outcome: TaskOutcome,
}

/// One project.
#[derive(Debug, Default)]
pub struct Project {
    pub tables: BTreeMap<String, Table>,
    pub instances: HashMap<String, Instance>,
}

/// Everything the emulator holds.
#[derive(Debug, Default)]
pub struct Catalog {
    pub projects: BTreeMap<String, Project>,
    pub sessions: Sessions,
    counter: u64,
}

impl Catalog {
    pub fn with_project(name: &str) -> Self {
        let mut catalog = Self::default();
        catalog.projects.insert(name.to_owned(), Project::default());
        catalog
    }

    /// A fresh sequence number for ids.
    pub fn next_id(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    pub fn project(&self, name: &str) -> OdpsResult<&Project> {
        self.projects
            .get(name)
            .ok_or_else(|| OdpsError::no_such_project(name))
    }

    pub fn project_mut(&mut self, name: &str) -> OdpsResult<&mut Project> {
        self.projects
            .get_mut(name)
            .ok_or_else(|| OdpsError::no_such_project(name))
    }

    pub fn table(&self, project: &str, table: &str) -> OdpsResult<&Table> {
        self.project(project)?
            .tables
            .get(&table.to_ascii_lowercase())
            .ok_or_else(|| OdpsError::no_such_table(project, table))
    }

    pub fn table_mut(&mut self, project: &str, table: &str) -> OdpsResult<&mut Table> {
        self.project_mut(project)?
            .tables
            .get_mut(&table.to_ascii_lowercase())
            .ok_or_else(|| OdpsError::no_such_table(project, table))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_blocks_are_counted_at_once_and_read_once_decoded() {
        let types = [OdpsType::Bigint];
        let block = |from: i64| {
            let rows: Vec<Row> = (from..from + 3)
                .map(|v| vec![Some(Value::Int(v))])
                .collect();
            let data = bytes::Bytes::from(super::super::wire::encode_block(&rows, &types));
            (
                super::super::wire::check_block(&data, &types).unwrap(),
                rows,
            )
        };
        let mut p = Partition::new(5);
        p.rows_mut().unwrap().push(vec![Some(Value::Int(-1))]);
        let ((a, a_rows), (b, b_rows)) = (block(0), block(10));
        p.append_blocks([a, b]);
        assert_eq!(p.len(), 7);
        assert_eq!(p.rows().unwrap_err().code, "InternalServerError");
        p.decode().unwrap();
        let mut want = vec![vec![Some(Value::Int(-1))]];
        want.extend(a_rows);
        want.extend(b_rows);
        assert_eq!(p.rows().unwrap(), want.as_slice());
        p.append_blocks([block(20).0]);
        p.clear();
        assert!(p.is_empty());
        assert!(p.rows().unwrap().is_empty());
    }

    fn table() -> Table {
        let col = |n: &str| Column {
            name: n.into(),
            ty: OdpsType::String,
            comment: String::new(),
        };
        Table::new("T", vec![col("a")], vec![col("pt"), col("region")], 0)
    }

    #[test]
    fn specs_parse_with_and_without_quotes() {
        let pairs = parse_spec("pt='20240101', region = \"hz\"").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("pt".into(), "20240101".into()),
                ("region".into(), "hz".into())
            ]
        );
        assert!(parse_spec("pt").is_err());
        assert!(parse_spec("pt=").is_err());
    }

    #[test]
    fn partition_values_follow_key_order_and_must_be_complete() {
        let t = table();
        let swapped = parse_spec("region=hz,pt=1").unwrap();
        assert_eq!(
            t.partition_values(&swapped, false).unwrap(),
            vec!["1", "hz"]
        );
        let partial = parse_spec("pt=1").unwrap();
        assert_eq!(
            t.partition_values(&partial, false).unwrap_err().code,
            "MissingPartitionSpec"
        );
        assert_eq!(t.partition_values(&partial, true).unwrap(), vec!["1"]);
        let unknown = parse_spec("pt=1,region=hz,x=2").unwrap();
        assert!(t.partition_values(&unknown, false).is_err());
        assert_eq!(
            t.spec_string(&["1".into(), "hz".into()], true),
            "pt='1',region='hz'"
        );
    }

    #[test]
    fn integer_partition_keys_need_integer_values() {
        let key = |ty| Column {
            name: "k".into(),
            ty,
            comment: String::new(),
        };
        let t = Table::new("t", vec![], vec![key(OdpsType::Tinyint)], 0);
        assert!(t
            .partition_values(&parse_spec("k=12").unwrap(), false)
            .is_ok());
        assert!(t
            .partition_values(&parse_spec("k=300").unwrap(), false)
            .is_err());
        let t = Table::new("t", vec![], vec![key(OdpsType::Bigint)], 0);
        assert!(t
            .partition_values(&parse_spec("k=abc").unwrap(), false)
            .is_err());
    }
}
