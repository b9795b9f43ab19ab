//! The records of an upsert data request: decoding the block, checking each record
//! (key present, bucket, operation, partial-update columns) and turning it into a
//! [`Change`].

use std::io::Read;

use super::super::delta::{self, Change};
use super::super::error::{OdpsError, OdpsResult};
use super::super::server::Call;
use super::super::state::Column;
use super::super::types::{OdpsType, Row, Value};
use super::super::wire;

/// The largest block accepted after inflating a `deflate` body.
const MAX_INFLATED_BYTES: u64 = 1024 * 1024 * 1024;

/// The parts of an upsert session its records are checked against.
pub(super) struct Shape {
    pub(super) table: String,
    pub(super) columns: Vec<Column>,
    pub(super) primary_key: Vec<String>,
    pub(super) buckets: u32,
    pub(super) partial_update: bool,
}

impl Shape {
    /// Decodes and checks one data request's block; returns its changes.
    pub(super) fn decode(
        &self,
        call: &Call<'_>,
        bucket: u32,
        data: &bytes::Bytes,
    ) -> OdpsResult<Vec<Change>> {
        let mut types: Vec<OdpsType> = self.columns.iter().map(|c| c.ty.clone()).collect();
        let n = types.len();
        let array = || OdpsType::Array(Box::new(OdpsType::Bigint));
        types.extend([
            OdpsType::Bigint,
            OdpsType::Bigint,
            OdpsType::Tinyint,
            array(),
            array(),
        ]);
        let rows = wire::decode_block(data, &types)
            .map_err(|e| malformed(format!("bucket {bucket}: {e}")))?;
        let count = call.query.get("record_count").unwrap_or("");
        if count.parse::<usize>().ok() != Some(rows.len()) {
            return Err(OdpsError::invalid_argument(format!(
                "record_count {count:?} does not match the {} records of the block",
                rows.len()
            )));
        }
        let key: Vec<usize> = self
            .primary_key
            .iter()
            .filter_map(|k| self.columns.iter().position(|c| c.name == *k))
            .collect();
        let key_types: Vec<&OdpsType> = key.iter().map(|&i| &self.columns[i].ty).collect();
        rows.into_iter()
            .enumerate()
            .map(|(r, mut row)| {
                let meta = row.split_off(n.min(row.len()));
                self.change(r, bucket, row, meta, &key, &key_types)
            })
            .collect()
    }

    fn change(
        &self,
        r: usize,
        bucket: u32,
        row: Row,
        meta: Row,
        key: &[usize],
        key_types: &[&OdpsType],
    ) -> OdpsResult<Change> {
        let mut values = Vec::new();
        for &i in key {
            match row.get(i).and_then(Option::as_ref) {
                Some(v) => values.push(Some(v)),
                None => {
                    return Err(OdpsError::invalid_argument(format!(
                        "record {r}: primary key column {} is NULL; every record needs its key",
                        self.columns[i].name
                    )))
                }
            }
        }
        let hash = delta::record_hash(key_types, &values)
            .ok_or_else(|| malformed(format!("record {r}: a key value does not fit its type")))?;
        let expected = delta::bucket_of(hash, self.buckets);
        if expected != bucket {
            return Err(OdpsError::invalid_argument(format!(
                "record {r}: its key hashes to bucket {expected} but it was sent to bucket {bucket}"
            )));
        }
        let op = meta.get(2).cloned().flatten();
        match op {
            Some(Value::Int(68)) => Ok(Change::Delete { row }),
            Some(Value::Int(85)) => {
                let columns = self.value_columns(r, meta.get(4).cloned().flatten())?;
                Ok(Change::Upsert { row, columns })
            }
            other => Err(malformed(format!(
                "record {r}: __operation must be 'U' (85) or 'D' (68), found {other:?}"
            ))),
        }
    }

    /// `__value_cols`: NULL or empty sets the whole row; else the column ids to set.
    fn value_columns(&self, r: usize, value: Option<Value>) -> OdpsResult<Option<Vec<usize>>> {
        let ids = match value {
            None => return Ok(None),
            Some(Value::Array(ids)) if ids.is_empty() => return Ok(None),
            Some(Value::Array(ids)) => ids,
            Some(other) => return Err(malformed(format!("record {r}: __value_cols is {other:?}"))),
        };
        if !self.partial_update {
            return Err(OdpsError::invalid_argument(format!(
                "record {r}: partial update (__value_cols) on table {} which does not enable it; \
                 set table properties '{}'='true'",
                self.table,
                delta::PARTIAL_UPDATE_PROPERTY
            )));
        }
        ids.into_iter()
            .map(|id| match id {
                Some(Value::Int(i)) if (0..self.columns.len() as i64).contains(&i) => {
                    Ok(i as usize)
                }
                other => Err(OdpsError::invalid_argument(format!(
                    "record {r}: __value_cols names {other:?}, not a column_id of the session schema"
                ))),
            })
            .collect::<OdpsResult<Vec<_>>>()
            .map(Some)
    }
}

fn malformed(message: String) -> OdpsError {
    OdpsError::new(400, "MalformedDataStream", message)
}

/// The body, inflated when it is `deflate`-encoded.
pub(super) fn inflate(call: &Call<'_>) -> OdpsResult<bytes::Bytes> {
    match call.header("content-encoding").map(str::trim) {
        None | Some("" | "identity") => Ok(call.body.clone()),
        Some(enc) if enc.eq_ignore_ascii_case("deflate") => {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(&call.body[..])
                .take(MAX_INFLATED_BYTES + 1)
                .read_to_end(&mut out)
                .map_err(|e| malformed(format!("deflate (zlib) body: {e}")))?;
            if out.len() as u64 > MAX_INFLATED_BYTES {
                return Err(OdpsError::invalid_argument(format!(
                    "the inflated block exceeds {MAX_INFLATED_BYTES} bytes"
                )));
            }
            Ok(bytes::Bytes::from(out))
        }
        Some(enc) => Err(OdpsError::invalid_argument(format!(
            "Content-Encoding {enc} is not supported"
        ))),
    }
}
