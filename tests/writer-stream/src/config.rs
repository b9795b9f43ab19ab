//! The parameter of `writer-stream`, validated into a [`SinkConfig`].

use std::path::PathBuf;

use protocol::runtime::{ParameterSpec, PluginError};
use protocol::timefmt::{DatePattern, Zone};
use serde_json::Value as Json;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineFormat {
    /// Columns as text joined by the delimiter (DataX streamwriter).
    Text,
    /// The protocol's JSON lines (typed values recoverable).
    Jsonl,
}

#[derive(Clone, Debug)]
pub struct SinkConfig {
    pub print: bool,
    pub format: LineFormat,
    pub field_delimiter: String,
    /// Write to this file (one per task: `<fileName>` for task 0, `<fileName>.<i>` after).
    pub path: Option<PathBuf>,
    pub date_pattern: DatePattern,
    pub zone: Zone,
    /// Sleep `sleep_ms` once after this many records (DataX `recordNumBeforeSleep`).
    pub sleep_after_records: Option<u64>,
    pub sleep_ms: u64,
}

pub fn parameters() -> Vec<ParameterSpec> {
    vec![
        ParameterSpec { name: "print", kind: "boolean", required: false, default: Some("true"), doc: "Print records; false discards them (for benchmarks)." },
        ParameterSpec { name: "format", kind: "string", required: false, default: Some("\"text\""), doc: "text (columns joined by fieldDelimiter, null as `null`, as DataX) or jsonl (typed JSON lines)." },
        ParameterSpec { name: "fieldDelimiter", kind: "string", required: false, default: Some("\"\\t\""), doc: "Column separator of the text format." },
        ParameterSpec { name: "path", kind: "string", required: false, default: None, doc: "Directory to write into instead of printing (with fileName)." },
        ParameterSpec { name: "fileName", kind: "string", required: false, default: None, doc: "File name under path; task i > 0 writes fileName.i." },
        ParameterSpec { name: "dateFormat", kind: "string", required: false, default: Some("\"yyyy-MM-dd HH:mm:ss\""), doc: "Java pattern of dates in the text format, in the job's time zone." },
        ParameterSpec { name: "recordNumBeforeSleep", kind: "integer", required: false, default: None, doc: "Sleep once after this many records (with sleepTime)." },
        ParameterSpec { name: "sleepTime", kind: "integer", required: false, default: Some("0"), doc: "Seconds to sleep after recordNumBeforeSleep records." },
        ParameterSpec { name: "encoding", kind: "string", required: false, default: Some("\"UTF-8\""), doc: "Accepted for DataX compatibility; output is always UTF-8." },
    ]
}

fn err(message: impl Into<String>) -> PluginError {
    PluginError::config(format!("writer-stream: {}", message.into()))
}

fn string_of<'a>(p: &'a Json, key: &str) -> Result<Option<&'a str>, PluginError> {
    match p.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(other) => Err(err(format!("{key} must be a string, got {other}"))),
    }
}

fn u64_of(p: &Json, key: &str) -> Result<Option<u64>, PluginError> {
    match p.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| err(format!("{key} must be a whole number, got {n}"))),
        Some(Json::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| err(format!("{key} must be a whole number, got {s:?}"))),
        Some(other) => Err(err(format!("{key} must be a whole number, got {other}"))),
    }
}

impl SinkConfig {
    pub fn from_parameter(p: &Json, time_zone: &str) -> Result<Self, PluginError> {
        let map = p
            .as_object()
            .ok_or_else(|| err("the parameter must be a JSON object"))?;
        for key in map.keys() {
            let known = [
                "print",
                "format",
                "fieldDelimiter",
                "path",
                "fileName",
                "dateFormat",
                "recordNumBeforeSleep",
                "sleepTime",
                "encoding",
                // Set by the engine in follow mode: each batch prints its records.
                "follow",
            ];
            if !known.contains(&key.as_str()) {
                return Err(err(format!(
                    "unknown parameter {key:?} (see `writer-stream spec`)"
                )));
            }
        }
        let print = match p.get("print") {
            None | Some(Json::Null) => true,
            Some(Json::Bool(b)) => *b,
            Some(Json::String(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(Json::String(s)) if s.eq_ignore_ascii_case("false") => false,
            Some(other) => return Err(err(format!("print must be true or false, got {other}"))),
        };
        let format = match string_of(p, "format")? {
            None | Some("text") => LineFormat::Text,
            Some("jsonl") => LineFormat::Jsonl,
            Some(other) => return Err(err(format!("format must be text or jsonl, got {other:?}"))),
        };
        let path = match (string_of(p, "path")?, string_of(p, "fileName")?) {
            (Some(dir), Some(name)) => Some(PathBuf::from(dir).join(name)),
            (None, None) => None,
            _ => return Err(err("path and fileName go together")),
        };
        let date_pattern =
            DatePattern::new(string_of(p, "dateFormat")?.unwrap_or("yyyy-MM-dd HH:mm:ss"))
                .map_err(|e| err(format!("dateFormat: {e}")))?;
        Ok(Self {
            print,
            format,
            field_delimiter: string_of(p, "fieldDelimiter")?.unwrap_or("\t").to_owned(),
            path,
            date_pattern,
            zone: Zone::parse(time_zone).map_err(err)?,
            sleep_after_records: u64_of(p, "recordNumBeforeSleep")?,
            sleep_ms: u64_of(p, "sleepTime")?.unwrap_or(0).saturating_mul(1000),
        })
    }
}
