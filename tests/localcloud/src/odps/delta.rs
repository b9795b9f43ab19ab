//! Delta tables: transactional tables with a primary key, written through Tunnel
//! upsert sessions (see [`super::upsert`]).
//!
//! A table is a Delta table when its `TBLPROPERTIES` say `"transactional"="true"` and
//! it declares a `PRIMARY KEY`. Its rows are kept merged (one row per key), so
//! `SELECT *`, the table tunnel download and the test-control dump all see the merged
//! state. Other properties read here: `write.bucket.num` (the number of hash buckets
//! an upsert session routes records to, default [`DEFAULT_BUCKETS`]) and
//! `acid.partial.fields.update.enable` (partial column updates, as the Java SDK's
//! `UpsertStream.upsert(record, columns)` needs).
//!
//! Bucket routing follows the SDKs' "default" hasher (pyodps `odps/tunnel/hasher.py`,
//! Java `tunnel/hasher/DefaultHashFactory.java`): each key column's value is hashed by
//! type, the hashes are summed (wrapping 32-bit, NULLs skipped), `h ^ (h >> 8)` is the
//! record's hash and the bucket is that modulo the bucket count (non-negative, as
//! pyodps computes it).

use std::collections::HashMap;

use super::state::{Column, Table};
use super::types::{OdpsType, Row, Value};

/// Buckets of a Delta table without `write.bucket.num`.
pub const DEFAULT_BUCKETS: u32 = 16;

/// The largest `write.bucket.num` accepted.
pub const MAX_BUCKETS: u32 = 4096;

/// The table property that enables partial column updates.
pub const PARTIAL_UPDATE_PROPERTY: &str = "acid.partial.fields.update.enable";

impl Table {
    /// `TBLPROPERTIES ("transactional"="true")`.
    pub fn is_transactional(&self) -> bool {
        self.properties
            .get("transactional")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// A transactional table with a primary key: upsert sessions may write it.
    pub fn is_delta(&self) -> bool {
        self.is_transactional() && !self.primary_key.is_empty()
    }

    /// The number of hash buckets of a Delta table.
    pub fn bucket_num(&self) -> u32 {
        self.properties
            .get("write.bucket.num")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_BUCKETS)
    }

    /// Whether upserts may change only some columns.
    pub fn partial_update_enabled(&self) -> bool {
        self.properties
            .get(PARTIAL_UPDATE_PROPERTY)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// Positions of the primary key columns among the data columns.
    pub fn key_positions(&self) -> Vec<usize> {
        self.primary_key
            .iter()
            .filter_map(|k| self.columns.iter().position(|c| c.name == *k))
            .collect()
    }
}

/// Checks a `CREATE TABLE`'s primary key and Delta properties; the error text is
/// the semantic error's message.
pub fn check_ddl(
    columns: &[Column],
    partition_keys: &[Column],
    primary_key: &[String],
    properties: &[(String, String)],
) -> Result<(), String> {
    let prop = |name: &str| {
        properties
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let transactional = prop("transactional").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !primary_key.is_empty() && !transactional {
        return Err("a PRIMARY KEY needs TBLPROPERTIES (\"transactional\"=\"true\")".to_owned());
    }
    for (i, key) in primary_key.iter().enumerate() {
        if primary_key[..i].contains(key) {
            return Err(format!("primary key column {key} is named twice"));
        }
        if partition_keys.iter().any(|c| c.name == *key) {
            return Err(format!(
                "primary key column {key} is a partition key; it must be a data column"
            ));
        }
        let column = columns
            .iter()
            .find(|c| c.name == *key)
            .ok_or_else(|| format!("primary key column {key} is not a column of the table"))?;
        if !hashable(&column.ty) {
            return Err(format!(
                "primary key column {key} has type {}, which the emulator cannot use as a key \
                 (integer, boolean, float, double, decimal, string, varchar, char, binary, \
                 date, datetime, timestamp, timestamp_ntz, interval_day_time)",
                column.ty
            ));
        }
    }
    if let Some(n) = prop("write.bucket.num") {
        if !n
            .parse::<u32>()
            .is_ok_and(|n| (1..=MAX_BUCKETS).contains(&n))
        {
            return Err(format!(
                "write.bucket.num must be a whole number in [1, {MAX_BUCKETS}], found {n:?}"
            ));
        }
    }
    Ok(())
}

fn hashable(ty: &OdpsType) -> bool {
    matches!(
        ty,
        OdpsType::Bigint
            | OdpsType::Int
            | OdpsType::Smallint
            | OdpsType::Tinyint
            | OdpsType::Boolean
            | OdpsType::Float
            | OdpsType::Double
            | OdpsType::String
            | OdpsType::Varchar(_)
            | OdpsType::Char(_)
            | OdpsType::Binary
            | OdpsType::Date
            | OdpsType::Datetime
            | OdpsType::Timestamp
            | OdpsType::TimestampNtz
            | OdpsType::IntervalDayTime
            | OdpsType::Decimal(_)
    )
}

/// The "default" hasher's hash of a 64-bit integer.
pub fn hash_bigint(v: i64) -> i32 {
    let mut l = (!v).wrapping_add(v.wrapping_shl(18));
    l ^= l >> 31;
    l = l.wrapping_mul(21);
    l ^= l >> 11;
    l = l.wrapping_add(l.wrapping_shl(6));
    l ^= l >> 22;
    l as i32
}

/// The "default" hasher's hash of bytes (each taken as a signed byte).
pub fn hash_bytes(data: &[u8]) -> i32 {
    let mut h: i32 = 0;
    for &b in data {
        h = h.wrapping_add(i32::from(b as i8));
        h = h.wrapping_add(h.wrapping_shl(10));
        h ^= h >> 6;
    }
    h = h.wrapping_add(h.wrapping_shl(3));
    h ^= h >> 11;
    h.wrapping_add(h.wrapping_shl(15))
}

/// The hash of one key value of type `ty`; `None` when the value does not fit the type.
pub fn hash_value(ty: &OdpsType, value: &Value) -> Option<i32> {
    match (ty, value) {
        (
            OdpsType::Bigint | OdpsType::Int | OdpsType::Smallint | OdpsType::Tinyint,
            Value::Int(v),
        ) => Some(hash_bigint(*v)),
        (OdpsType::Datetime, Value::Int(ms)) => Some(hash_bigint(*ms)),
        (OdpsType::Date, Value::Int(days)) => Some(hash_bigint(days.wrapping_mul(86_400))),
        (OdpsType::Boolean, Value::Bool(b)) => Some(if *b { 0x172B_A9C7 } else { -0x3A59_CB12 }),
        (OdpsType::Float, Value::Float(f)) => Some(hash_bigint(i64::from(f.to_bits() as i32))),
        (OdpsType::Double, Value::Double(d)) => Some(hash_bigint(d.to_bits() as i64)),
        (
            OdpsType::String | OdpsType::Varchar(_) | OdpsType::Char(_) | OdpsType::Binary,
            Value::Bytes(b),
        ) => Some(hash_bytes(b)),
        (
            OdpsType::Timestamp | OdpsType::TimestampNtz | OdpsType::IntervalDayTime,
            Value::Timestamp { seconds, nanos },
        ) => Some(hash_bigint(seconds.wrapping_shl(30) | i64::from(*nanos))),
        (OdpsType::Decimal(ps), Value::Bytes(text)) => {
            // Bare `decimal`: pyodps' defaults (`types.Decimal._default_precision`, `_scale`).
            let (precision, scale) = ps.unwrap_or((54, 18));
            hash_decimal(std::str::from_utf8(text).ok()?, precision, scale)
        }
        _ => None,
    }
}

/// The "default" hasher's hash of a decimal's text at the column's precision and
/// scale (pyodps `_hash_decimal`, Java `DecimalHasher`): the value scaled to an
/// integer (the first dropped digit rounding half up), hashed as one 64-bit integer,
/// or for precision > 18 as its low 64 bits plus its high bits. `None` when the text
/// is not a decimal or the scaled value does not fit 128 bits.
pub fn hash_decimal(text: &str, precision: u32, scale: u32) -> Option<i32> {
    let x = text.trim();
    let (negative, rest) = match x.as_bytes().first() {
        Some(b'-') => (true, &x[1..]),
        Some(b'+') => (false, &x[1..]),
        _ => (false, x),
    };
    let rest = rest.trim_start_matches('0');
    let mut value_scale: i64 = 0;
    let mut found_dot = false;
    let mut digits = String::new();
    for (i, c) in rest.char_indices() {
        if c.is_ascii_digit() {
            if found_dot {
                value_scale += 1;
            }
            digits.push(c);
        } else if c == '.' && !found_dot {
            found_dot = true;
        } else if (c == 'e' || c == 'E') && i + 1 < rest.len() {
            value_scale = value_scale.checked_sub(rest[i + 1..].parse::<i64>().ok()?)?;
            break;
        } else {
            return None;
        }
    }
    let scale = i64::from(scale);
    let mut n: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    if value_scale > scale {
        let drop = value_scale - scale;
        n = u32::try_from(drop)
            .ok()
            .and_then(|d| 10i128.checked_pow(d))
            .map_or(0, |p| n / p);
        // The first dropped digit (a negative position counts from the end, as
        // pyodps indexes).
        let len = digits.len() as i64;
        let at = len - drop;
        let at = if at < 0 { at + len } else { at };
        let digit = *digits.as_bytes().get(usize::try_from(at).ok()?)?;
        if digit >= b'5' {
            n += 1;
        }
    } else if value_scale < scale {
        let up = u32::try_from(scale.checked_sub(value_scale)?).ok()?;
        n = n.checked_mul(10i128.checked_pow(up)?)?;
    }
    if negative {
        n = -n;
    }
    if precision > 18 {
        Some(hash_bigint(n as i64).wrapping_add(hash_bigint((n >> 64) as i64)))
    } else {
        Some(hash_bigint(n as i64))
    }
}

/// The record hash over its key values (NULLs skipped), before the modulo.
pub fn record_hash(key_types: &[&OdpsType], key_values: &[Option<&Value>]) -> Option<i32> {
    let mut sum: i32 = 0;
    for (ty, value) in key_types.iter().zip(key_values) {
        if let Some(v) = value {
            sum = sum.wrapping_add(hash_value(ty, v)?);
        }
    }
    Some(sum ^ (sum >> 8))
}

/// The bucket a record hash routes to (non-negative modulo, as pyodps computes it).
pub fn bucket_of(hash: i32, buckets: u32) -> u32 {
    i64::from(hash).rem_euclid(i64::from(buckets.max(1))) as u32
}

/// What one upsert record asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Insert or replace the row with this key. `columns` lists the data columns to
    /// set (partial update); `None` sets every column.
    Upsert {
        row: Row,
        columns: Option<Vec<usize>>,
    },
    /// Delete the row with the key of this row.
    Delete { row: Row },
}

impl Change {
    fn row(&self) -> &Row {
        match self {
            Change::Upsert { row, .. } | Change::Delete { row } => row,
        }
    }
}

/// One key cell in a hashable form (floating point values by their bits).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum KeyCell {
    Null,
    Int(i64),
    Bool(bool),
    Bits(u64),
    Bytes(bytes::Bytes),
    Timestamp(i64, i32),
    Other(String),
}

fn key_of(row: &Row, key: &[usize]) -> Vec<KeyCell> {
    key.iter()
        .map(|&i| match row.get(i).and_then(Option::as_ref) {
            None => KeyCell::Null,
            Some(Value::Int(v)) => KeyCell::Int(*v),
            Some(Value::Bool(b)) => KeyCell::Bool(*b),
            Some(Value::Double(d)) => KeyCell::Bits(d.to_bits()),
            Some(Value::Float(f)) => KeyCell::Bits(u64::from(f.to_bits())),
            Some(Value::Bytes(b)) => KeyCell::Bytes(b.clone()),
            Some(Value::Timestamp { seconds, nanos }) => KeyCell::Timestamp(*seconds, *nanos),
            Some(other) => KeyCell::Other(format!("{other:?}")),
        })
        .collect()
}

/// Applies `changes` in order to `rows` (one row per key), the key being the data
/// columns at `key`. The last change of a key wins; a partial upsert of a key that
/// has no row inserts one with NULL in the columns it does not set; deleting an
/// absent key changes nothing. Surviving rows keep their order, new rows come last.
pub fn apply(rows: &mut Vec<Row>, key: &[usize], changes: impl IntoIterator<Item = Change>) {
    let mut slots: Vec<Option<Row>> = rows.drain(..).map(Some).collect();
    let mut index: HashMap<Vec<KeyCell>, usize> = slots
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().map(|r| (key_of(r, key), i)))
        .collect();
    for change in changes {
        let k = key_of(change.row(), key);
        match change {
            Change::Delete { .. } => {
                if let Some(i) = index.remove(&k) {
                    slots[i] = None;
                }
            }
            Change::Upsert { row, columns } => {
                let existing = index.get(&k).copied();
                let merged = match (columns, existing.and_then(|i| slots[i].take())) {
                    (None, _) => row,
                    (Some(cols), old) => {
                        let mut base = old.unwrap_or_else(|| vec![None; row.len()]);
                        for (i, value) in row.into_iter().enumerate() {
                            if key.contains(&i) || cols.contains(&i) {
                                if let Some(cell) = base.get_mut(i) {
                                    *cell = value;
                                }
                            }
                        }
                        base
                    }
                };
                match existing {
                    Some(i) => slots[i] = Some(merged),
                    None => {
                        index.insert(k, slots.len());
                        slots.push(Some(merged));
                    }
                }
            }
        }
    }
    rows.extend(slots.into_iter().flatten());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(k: i64, v: &str) -> Row {
        vec![
            Some(Value::Int(k)),
            Some(Value::Bytes(bytes::Bytes::copy_from_slice(v.as_bytes()))),
            Some(Value::Int(k * 10)),
        ]
    }

    #[test]
    fn last_change_per_key_wins_and_deletes_remove() {
        let mut rows = vec![row(1, "a"), row(2, "b")];
        apply(
            &mut rows,
            &[0],
            vec![
                Change::Upsert {
                    row: row(3, "c"),
                    columns: None,
                },
                Change::Upsert {
                    row: row(1, "a2"),
                    columns: None,
                },
                Change::Delete { row: row(2, "") },
                Change::Upsert {
                    row: row(2, "b2"),
                    columns: None,
                },
                Change::Delete { row: row(3, "") },
                Change::Delete { row: row(9, "") },
            ],
        );
        assert_eq!(rows, vec![row(1, "a2"), row(2, "b2")]);
    }

    #[test]
    fn partial_upserts_keep_untouched_columns() {
        let mut rows = vec![row(1, "a")];
        let mut update = row(1, "new");
        update[2] = None;
        let mut fresh = row(5, "x");
        fresh[2] = Some(Value::Int(7));
        apply(
            &mut rows,
            &[0],
            vec![
                Change::Upsert {
                    row: update,
                    columns: Some(vec![1]),
                },
                Change::Upsert {
                    row: fresh,
                    columns: Some(vec![2]),
                },
            ],
        );
        assert_eq!(rows[0], row(1, "new"));
        assert_eq!(
            rows[1],
            vec![Some(Value::Int(5)), None, Some(Value::Int(7))]
        );
    }

    #[test]
    fn hashes_match_the_sdk_formulas() {
        // A few of the hashes pyodps 0.13.2 computed (all of them are checked in
        // tests/odps_upsert_vectors.rs against testdata/odps/upsert_capture.json).
        assert_eq!(hash_bigint(1), 357_654_460);
        assert_eq!(hash_bigint(-1), 357_653_185);
        assert_eq!(hash_bigint(i64::MIN), -1_787_473_579);
        assert_eq!(hash_bytes(b"a"), -902_917_054);
        assert_eq!(hash_bytes("负".as_bytes()), 850_362_848);
        assert_eq!(bucket_of(-1, 16), 15);
        assert_eq!(bucket_of(17, 16), 1);
        assert_eq!(hash_bytes(b""), 0);
    }

    #[test]
    fn decimal_hash_edge_inputs_never_panic() {
        // Same value, different spellings: the same scaled integer.
        assert_eq!(hash_decimal("1.5", 18, 4), hash_decimal("+01.50", 18, 4));
        assert_eq!(hash_decimal("15E-1", 18, 4), hash_decimal("1.5", 18, 4));
        assert_eq!(hash_decimal("0", 18, 4), Some(hash_bigint(0)));
        // Rounding half up on the first dropped digit.
        assert_eq!(
            hash_decimal("1.00005", 18, 4),
            hash_decimal("1.0001", 18, 4)
        );
        assert_eq!(hash_decimal("1.00004", 18, 4), hash_decimal("1", 18, 4));
        for text in [
            "",
            "-",
            ".",
            "1e",
            "1e-9223372036854775808",
            "1e9223372036854775807",
            "9".repeat(60).as_str(),
            "1.2.3",
            "abc",
            "1e+99999999999999999999",
        ] {
            let _ = hash_decimal(text, 38, 10);
            let _ = hash_decimal(text, 54, 18);
        }
        assert_eq!(hash_decimal("abc", 18, 4), None);
    }

    #[test]
    fn ddl_checks() {
        let col = |n: &str, ty| Column {
            name: n.into(),
            ty,
            comment: String::new(),
        };
        let cols = vec![
            col("k", OdpsType::Bigint),
            col(
                "m",
                OdpsType::Map(Box::new(OdpsType::String), Box::new(OdpsType::String)),
            ),
        ];
        let tx = vec![("transactional".to_owned(), "true".to_owned())];
        assert!(check_ddl(&cols, &[], &["k".into()], &tx).is_ok());
        assert!(check_ddl(&cols, &[], &["k".into()], &[])
            .unwrap_err()
            .contains("transactional"));
        assert!(check_ddl(&cols, &[], &["x".into()], &tx)
            .unwrap_err()
            .contains("not a column"));
        assert!(check_ddl(&cols, &[], &["m".into()], &tx)
            .unwrap_err()
            .contains("map<string,string>"));
        let bad_buckets = vec![tx[0].clone(), ("write.bucket.num".into(), "0".into())];
        assert!(check_ddl(&cols, &[], &["k".into()], &bad_buckets).is_err());
    }
}
