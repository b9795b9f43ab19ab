//! The parameter of `reader-stream`, validated into a [`StreamConfig`].

use protocol::runtime::{ParameterSpec, PluginError};
use protocol::timefmt::{DatePattern, Zone};
use protocol::value::{parse_double, parse_long, Value};
use serde_json::{Map, Value as Json};

/// How one column gets its values.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnSource {
    /// The same value in every record.
    Constant(Value),
    /// `start + record index` (long), or that number as text (string).
    Sequence { text: bool, start: i64 },
    /// Uniform in `[low, high]`: longs and doubles by value, strings and bytes by
    /// length (alphanumeric), dates between two instants, bools biased `low : high`.
    Random { kind: Kind, low: f64, high: f64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Long,
    Double,
    Decimal,
    Date,
    Bool,
    Bytes,
}

/// A checked configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamConfig {
    pub slice_record_count: u64,
    pub columns: Vec<ColumnSource>,
    pub seed: Option<u64>,
}

pub fn parameters() -> Vec<ParameterSpec> {
    vec![
        ParameterSpec { name: "sliceRecordCount", kind: "integer", required: true, default: None, doc: "Records each task emits (the job emits tasks × this). A number or a numeric string, at least 1." },
        ParameterSpec { name: "column", kind: "array", required: true, default: None, doc: "Columns: {\"type\", \"value\"} constants, {\"type\", \"random\": \"a, b\"} random values (long/double by value, string/bytes by length, date between two dateFormat times, bool biased a:b), or {\"type\": \"long\"|\"string\", \"sequence\": start} counters. Types: string (default), long, double, decimal, date, bool, bytes." },
        ParameterSpec { name: "dateFormat", kind: "string", required: false, default: Some("\"yyyy-MM-dd HH:mm:ss\""), doc: "Java pattern of date values and random date bounds, read in the job's time zone." },
        ParameterSpec { name: "seed", kind: "integer", required: false, default: None, doc: "Seed of the random values (each task adds its index); without it every run differs." },
    ]
}

fn err(message: impl Into<String>) -> PluginError {
    PluginError::config(format!("reader-stream: {}", message.into()))
}

/// Reads a number given as a JSON number or a numeric string.
fn integer(value: &Json, what: &str) -> Result<i64, PluginError> {
    match value {
        Json::Number(n) => n
            .as_i64()
            .ok_or_else(|| err(format!("{what} must be an integer, got {n}"))),
        Json::String(s) => {
            parse_long(s.trim()).map_err(|_| err(format!("{what} must be an integer, got {s:?}")))
        }
        other => Err(err(format!("{what} must be an integer, got {other}"))),
    }
}

/// The text of a `value`: JSON numbers and booleans become their text, as in DataX.
fn text_of(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl StreamConfig {
    pub fn from_parameter(parameter: &Json, zone: &Zone) -> Result<Self, PluginError> {
        let map = parameter
            .as_object()
            .ok_or_else(|| err("the parameter must be a JSON object"))?;
        for key in map.keys() {
            if !matches!(
                key.as_str(),
                "sliceRecordCount" | "column" | "dateFormat" | "seed"
            ) {
                return Err(err(format!(
                    "unknown parameter {key:?} (see `reader-stream spec`)"
                )));
            }
        }
        let count = map
            .get("sliceRecordCount")
            .ok_or_else(|| err("sliceRecordCount is required"))?;
        let slice_record_count = integer(count, "sliceRecordCount")?;
        if slice_record_count < 1 {
            return Err(err(format!(
                "sliceRecordCount must be at least 1, got {slice_record_count}"
            )));
        }
        let pattern_text = match map.get("dateFormat") {
            None => "yyyy-MM-dd HH:mm:ss".to_owned(),
            Some(Json::String(s)) => s.clone(),
            Some(other) => return Err(err(format!("dateFormat must be a string, got {other}"))),
        };
        let pattern =
            DatePattern::new(&pattern_text).map_err(|e| err(format!("dateFormat: {e}")))?;
        let columns = match map.get("column") {
            Some(Json::Array(items)) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    column(c, &pattern, zone).map_err(|e| e.context(format!("column[{i}]")))
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(err("column must be a non-empty array")),
        };
        let seed = match map.get("seed") {
            None | Some(Json::Null) => None,
            Some(v) => Some(integer(v, "seed")? as u64),
        };
        Ok(Self {
            slice_record_count: slice_record_count as u64,
            columns,
            seed,
        })
    }
}

fn kind_of(map: &Map<String, Json>) -> Result<Kind, PluginError> {
    let name = match map.get("type") {
        None | Some(Json::Null) => "string".to_owned(),
        Some(Json::String(s)) if s.trim().is_empty() => "string".to_owned(),
        Some(Json::String(s)) => s.trim().to_ascii_lowercase(),
        Some(other) => return Err(err(format!("type must be a string, got {other}"))),
    };
    Ok(match name.as_str() {
        "string" => Kind::String,
        "long" => Kind::Long,
        "double" => Kind::Double,
        "decimal" => Kind::Decimal,
        "date" => Kind::Date,
        "bool" | "boolean" => Kind::Bool,
        "bytes" => Kind::Bytes,
        other => {
            return Err(err(format!(
            "type {other:?} is not supported (string, long, double, decimal, date, bool, bytes)"
        )))
        }
    })
}

fn column(spec: &Json, pattern: &DatePattern, zone: &Zone) -> Result<ColumnSource, PluginError> {
    let map = spec
        .as_object()
        .ok_or_else(|| err("a column is an object like {\"type\": \"long\", \"value\": \"1\"}"))?;
    let kind = kind_of(map)?;
    if let Some(start) = map.get("sequence") {
        let start = match start {
            Json::Bool(true) => 0,
            other => integer(other, "sequence")?,
        };
        return match kind {
            Kind::Long => Ok(ColumnSource::Sequence { text: false, start }),
            Kind::String => Ok(ColumnSource::Sequence { text: true, start }),
            _ => Err(err("sequence is for long and string columns")),
        };
    }
    if let Some(value) = map.get("value").filter(|v| !v.is_null()) {
        let text = text_of(value).ok_or_else(|| {
            err(format!(
                "value must be text, a number or a bool, got {value}"
            ))
        })?;
        return constant(kind, &text, pattern, zone).map(ColumnSource::Constant);
    }
    if let Some(Json::String(range)) = map.get("random") {
        let (a, b) = range
            .split_once(',')
            .ok_or_else(|| err(format!("random must be \"a, b\", got {range:?}")))?;
        let bound = |t: &str| -> Result<f64, PluginError> {
            let t = t.trim();
            if kind == Kind::Date {
                return pattern.parse(t, zone).map(|ms| ms as f64).map_err(err);
            }
            parse_double(t).ok_or_else(|| err(format!("random bound {t:?} is not a number")))
        };
        let (low, high) = (bound(a)?, bound(b)?);
        if low > high || low < 0.0 && matches!(kind, Kind::String | Kind::Bytes | Kind::Bool) {
            return Err(err(format!("random range {range:?} is empty or negative")));
        }
        return Ok(ColumnSource::Random { kind, low, high });
    }
    Err(err("a column needs a value, a random range or a sequence (an empty constant is not possible, as in DataX)"))
}

fn constant(
    kind: Kind,
    text: &str,
    pattern: &DatePattern,
    zone: &Zone,
) -> Result<Value, PluginError> {
    if text.is_empty() {
        return Err(err("value is blank"));
    }
    Ok(match kind {
        Kind::String => Value::String(text.to_owned()),
        Kind::Long => {
            Value::Long(parse_long(text).map_err(|e| err(format!("value {text:?}: {e}")))?)
        }
        Kind::Double => Value::Double(
            parse_double(text).ok_or_else(|| err(format!("value {text:?} is not a double")))?,
        ),
        Kind::Decimal => {
            parse_double(text).ok_or_else(|| err(format!("value {text:?} is not a decimal")))?;
            Value::Decimal(text.to_owned())
        }
        Kind::Date => Value::Date(pattern.parse(text, zone).map_err(err)?),
        Kind::Bool => Value::Bool(text.eq_ignore_ascii_case("true")),
        Kind::Bytes => Value::Bytes(text.as_bytes().to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn datax_example_parses() {
        let p = json!({"sliceRecordCount": "10", "column": [
            {"type": "string", "value": "DataX"}, {"type": "long", "value": 19890604},
            {"type": "date", "value": "1989-06-04 00:00:00"}, {"type": "bool", "value": "true"},
            {"type": "bytes", "value": "test"}]});
        let c = StreamConfig::from_parameter(&p, &Zone::parse("UTC").unwrap()).unwrap();
        assert_eq!(c.slice_record_count, 10);
        assert_eq!(c.columns[1], ColumnSource::Constant(Value::Long(19890604)));
        assert_eq!(
            c.columns[2],
            ColumnSource::Constant(Value::Date(612_921_600_000))
        );
    }

    #[test]
    fn misuse_is_named() {
        let zone = Zone::Local;
        let e =
            StreamConfig::from_parameter(&json!({"column": [{"value": 1}]}), &zone).unwrap_err();
        assert!(
            e.message.contains("sliceRecordCount is required"),
            "{}",
            e.message
        );
        let e = StreamConfig::from_parameter(
            &json!({"sliceRecordCount": 1, "column": [{"type": "map", "value": 1}]}),
            &zone,
        )
        .unwrap_err();
        assert!(
            e.message
                .starts_with("column[0]: reader-stream: type \"map\""),
            "{}",
            e.message
        );
        let e = StreamConfig::from_parameter(
            &json!({"sliceRecordCount": 1, "column": [{"type": "long", "value": "x"}]}),
            &zone,
        )
        .unwrap_err();
        assert!(e.message.contains("value \"x\""), "{}", e.message);
        let e = StreamConfig::from_parameter(
            &json!({"sliceRecordCount": 0, "column": [{"value": 1}]}),
            &zone,
        )
        .unwrap_err();
        assert!(e.message.contains("at least 1"));
        assert!(
            StreamConfig::from_parameter(&json!({"sliceRecordCount": 1, "colum": []}), &zone)
                .is_err()
        );
    }
}
