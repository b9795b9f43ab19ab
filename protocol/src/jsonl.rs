//! The JSON-lines form of records: one JSON array per record, one record per line.
//!
//! Values keep their type through the round trip:
//!
//! | value | JSON |
//! |---|---|
//! | null, bool, string | `null`, `true`/`false`, `"text"` |
//! | long | an integer: `42` |
//! | double | a number with a fraction or exponent: `1.0`, `2.5e-8`; NaN and ±∞ as `{"double": "NaN"}`, `{"double": "Infinity"}`, `{"double": "-Infinity"}` |
//! | decimal | `{"decimal": "12.3400"}` |
//! | bytes | `{"bytes": "<base64>"}` (standard alphabet, padded) |
//! | date | `{"date": "2024-01-15T08:30:00.000Z"}` (RFC 3339, UTC); outside the years 1–9999, and optionally on input, an integer of epoch milliseconds: `{"date": -62198755200001}` |
//!
//! This is the `--format jsonl` output of readers and the `--input-format jsonl` input
//! of writers, meant for `jq` and other shell tools.

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Number, Value as Json};

use crate::value::{double_text, parse_double, Record, Value};

/// A JSON line that is not a record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct JsonlError {
    /// 1-based line number, or 0 when not known.
    pub line: usize,
    pub message: String,
}

/// One value as JSON.
pub fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Long(v) => Json::Number((*v).into()),
        Value::Double(d) => match Number::from_f64(*d) {
            Some(n) => Json::Number(n),
            None => json!({ "double": double_text(*d) }),
        },
        Value::String(s) => Json::String(s.clone()),
        Value::Decimal(s) => json!({ "decimal": s }),
        Value::Bytes(b) => json!({ "bytes": base64::engine::general_purpose::STANDARD.encode(b) }),
        Value::Date(ms) => json!({ "date": date_json(*ms) }),
    }
}

/// RFC 3339 text for years 1–9999; epoch milliseconds outside them.
fn date_json(ms: i64) -> Json {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) if (1..=9999).contains(&chrono::Datelike::year(&t)) => {
            Json::String(t.to_rfc3339_opts(SecondsFormat::Millis, true))
        }
        _ => Json::Number(ms.into()),
    }
}

/// One record as a JSON line (without the newline).
pub fn record_to_line(record: &[Value]) -> String {
    Json::Array(record.iter().map(value_to_json).collect()).to_string()
}

/// One JSON value as a record value.
pub fn json_to_value(json: &Json) -> Result<Value, String> {
    Ok(match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::String(s) => Value::String(s.clone()),
        Json::Number(n) => {
            if let Some(v) = n.as_i64() {
                Value::Long(v)
            } else if n.is_u64() {
                return Err(format!("integer {n} is out of the long range"));
            } else {
                Value::Double(
                    n.as_f64()
                        .ok_or_else(|| format!("number {n} is not a double"))?,
                )
            }
        }
        Json::Object(map) => tagged(map)?,
        Json::Array(_) => return Err("a value cannot be an array".to_owned()),
    })
}

fn tagged(map: &Map<String, Json>) -> Result<Value, String> {
    let mut entries = map.iter();
    let (Some((tag, inner)), None) = (entries.next(), entries.next()) else {
        return Err(format!(
            "a typed value is an object with one key, got {} keys",
            map.len()
        ));
    };
    match (tag.as_str(), inner) {
        ("decimal", Json::String(s)) => Ok(Value::Decimal(s.clone())),
        ("double", Json::String(s)) => parse_double(s)
            .map(Value::Double)
            .ok_or_else(|| format!("{s:?} is not a double")),
        ("bytes", Json::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(Value::Bytes)
            .map_err(|e| format!("bytes are not base64: {e}")),
        ("date", Json::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Value::Date(t.timestamp_millis()))
            .map_err(|e| format!("date {s:?} is not RFC 3339: {e}")),
        ("date", Json::Number(n)) => n
            .as_i64()
            .map(Value::Date)
            .ok_or_else(|| format!("date {n} is not epoch milliseconds")),
        (tag, _) => Err(format!("unknown typed value {{\"{tag}\": …}}")),
    }
}

/// Parses one JSON line into a record.
pub fn line_to_record(line: &str) -> Result<Record, String> {
    let json: Json = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Json::Array(items) = json else {
        return Err("a record is a JSON array".to_owned());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| json_to_value(v).map_err(|e| format!("column {}: {e}", i + 1)))
        .collect()
}

/// Reads records from JSON lines. Blank lines are skipped.
pub struct JsonlReader<R> {
    inner: R,
    line: usize,
    buf: String,
}

impl<R: std::io::BufRead> JsonlReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            line: 0,
            buf: String::new(),
        }
    }

    /// The next record; `Ok(None)` at the end of input.
    pub fn next_record(&mut self) -> Result<Option<Record>, JsonlError> {
        loop {
            self.buf.clear();
            self.line += 1;
            let n = self
                .inner
                .read_line(&mut self.buf)
                .map_err(|e| JsonlError {
                    line: self.line,
                    message: e.to_string(),
                })?;
            if n == 0 {
                return Ok(None);
            }
            let text = self.buf.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            return line_to_record(text)
                .map(Some)
                .map_err(|message| JsonlError {
                    line: self.line,
                    message,
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_survive() {
        let record = vec![
            Value::Null,
            Value::Long(7),
            Value::Double(1.0),
            Value::Double(f64::NEG_INFINITY),
            Value::Decimal("1.50".into()),
            Value::Bytes(vec![0, 1, 2]),
            Value::Date(1_705_307_400_123),
            Value::String("a\"b".into()),
        ];
        let line = record_to_line(&record);
        assert_eq!(
            line,
            r#"[null,7,1.0,{"double":"-Infinity"},{"decimal":"1.50"},{"bytes":"AAEC"},{"date":"2024-01-15T08:30:00.123Z"},"a\"b"]"#
        );
        assert_eq!(line_to_record(&line).unwrap(), record);
    }

    #[test]
    fn bad_lines_name_the_column() {
        assert_eq!(
            line_to_record("[1, {\"x\": 1}]").unwrap_err(),
            "column 2: unknown typed value {\"x\": …}"
        );
        assert!(line_to_record("{}").is_err());
        assert!(line_to_record("[18446744073709551615]").is_err());
        assert_eq!(
            line_to_record(r#"[{"date": 5}]"#).unwrap(),
            vec![Value::Date(5)]
        );
    }

    #[test]
    fn reader_counts_lines() {
        let input = "[1]\n\n[2]\nnope\n";
        let mut reader = JsonlReader::new(input.as_bytes());
        assert_eq!(reader.next_record().unwrap(), Some(vec![Value::Long(1)]));
        assert_eq!(reader.next_record().unwrap(), Some(vec![Value::Long(2)]));
        assert_eq!(reader.next_record().unwrap_err().line, 4);
    }
}
