//! Time-partitioned object paths, Hive style: `object` may hold `$yyyy`, `$MM`, `$dd`,
//! `$HH` and `$mm` (`$$` for a literal `$`), e.g. `lake/orders/dt=$yyyy$MM$dd/hour=$HH/part`.
//! The time is the window's (`windowTime`, one partition per job) or each record's
//! (`eventTimeColumn`), rendered in the writer's zone (`timeZone`, default the job's).
//!
//! A partition's objects are named as without a template, from the rendered prefix:
//! `<rendered object>__<24 hex of the window><8 hex task>[_k][.suffix]`, so a re-run of
//! the window writes the same names. [`Scope`] says which keys belong to a job: with
//! event time they share no prefix beyond the template's literal start, so a key is the
//! job's when it matches the template followed by `__<24 hex>`.

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike};
use protocol::runtime::{ParameterSpec, PluginError};
use protocol::timefmt::Zone;
use protocol::value::Value;
use serde_json::{Map, Value as Json};

use crate::config::{WriteMode, WriterConfig};
use crate::naming;

/// Objects a task keeps open at once by default (see `maxOpenPartitions`).
pub const DEFAULT_MAX_OPEN: usize = 16;

pub fn parameters() -> Vec<ParameterSpec> {
    let p = ParameterSpec::new;
    vec![
        p("windowTime", "string", false, None, "Partitions by the window's time: epoch milliseconds or yyyyMMddHHmmss in timeZone, e.g. \"${start_time}\"; object then holds $yyyy $MM $dd $HH $mm."),
        p("eventTimeColumn", "string", false, None, "Partitions by each record's time: the column's index (from 0) or its name in column/header; its values are dates or longs of epoch milliseconds."),
        p("maxOpenPartitions", "integer", false, Some("16"), "Objects a task keeps open at once with eventTimeColumn; beyond it the least recently used is closed (a later record of its partition starts the next object, _k)."),
    ]
}

/// One field of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Year,
    Month,
    Day,
    Hour,
    Minute,
}

impl Field {
    fn width(self) -> usize {
        if self == Field::Year {
            4
        } else {
            2
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Field(Field),
}

/// A parsed `object` template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

const TOKENS: [(&str, Field); 5] = [
    ("yyyy", Field::Year),
    ("MM", Field::Month),
    ("dd", Field::Day),
    ("HH", Field::Hour),
    ("mm", Field::Minute),
];

impl Template {
    /// Parses `text`; the error names the placeholder and its place.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let offset = text.len() - rest.len() + at;
            if let Some(tail) = after.strip_prefix('$') {
                literal.push('$');
                rest = tail;
                continue;
            }
            let Some((token, field)) = TOKENS.iter().find(|(t, _)| after.starts_with(t)) else {
                let shown: String = after.chars().take(4).collect();
                return Err(if after.is_empty() {
                    format!("unterminated $ at the end of {text:?} (use $$ for a literal $)")
                } else {
                    format!(
                        "unknown placeholder \"${shown}\" at byte {offset} of {text:?}: use $yyyy, $MM, $dd, $HH, $mm (or $$ for a literal $)"
                    )
                });
            };
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Field(*field));
            rest = &after[token.len()..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Self { pieces })
    }

    /// Whether the template has time fields.
    pub fn has_fields(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Field(_)))
    }

    /// The literal text before the first field (every rendered key starts with it).
    pub fn literal_prefix(&self) -> &str {
        match self.pieces.first() {
            Some(Piece::Literal(s)) => s,
            _ => "",
        }
    }

    /// The prefix for the instant `ms` in `zone`; `None` when the year is outside 0..=9999.
    pub fn render(&self, ms: i64, zone: &Zone) -> Option<String> {
        let local = local_time(ms, zone)?;
        if !(0..=9999).contains(&local.year()) {
            return None;
        }
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Field(f) => {
                    let v = match f {
                        Field::Year => local.year().unsigned_abs(),
                        Field::Month => local.month(),
                        Field::Day => local.day(),
                        Field::Hour => local.hour(),
                        Field::Minute => local.minute(),
                    };
                    out.push_str(&format!("{v:0width$}", width = f.width()));
                }
            }
        }
        Some(out)
    }

    /// Whether `key` is a rendering of this template followed by `__<job_hex>`.
    pub fn matches_job_key(&self, key: &str, job_hex: &str) -> bool {
        let mut rest = key;
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => match rest.strip_prefix(s.as_str()) {
                    Some(r) => rest = r,
                    None => return false,
                },
                Piece::Field(f) => {
                    let digits = rest.as_bytes().iter().take(f.width());
                    if rest.len() < f.width() || !digits.clone().all(u8::is_ascii_digit) {
                        return false;
                    }
                    rest = &rest[f.width()..];
                }
            }
        }
        rest.strip_prefix("__")
            .is_some_and(|r| r.starts_with(job_hex))
    }
}

fn local_time(ms: i64, zone: &Zone) -> Option<NaiveDateTime> {
    let utc = DateTime::from_timestamp_millis(ms)?;
    Some(utc.with_timezone(&zone.offset_at(ms)).naive_local())
}

/// Where a partition's time comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeSource {
    /// The window's time, epoch milliseconds: every record goes to one partition.
    Window(i64),
    /// Each record's time, from the column at this index (named `name` in messages).
    Column { index: usize, name: String },
}

/// Partitioned paths, when `object` has time fields.
#[derive(Clone, Debug)]
pub struct Partitioning {
    pub template: Template,
    pub source: TimeSource,
    pub zone: Zone,
    pub max_open: usize,
}

fn err(message: impl Into<String>) -> PluginError {
    PluginError::config(format!("writer-oss: {}", message.into()))
}

/// Checks the partitioning parameters: `Ok(None)` when `object` has no time fields.
/// Partitions render in `zone` (the writer's `timeZone`, default the job's); a
/// `windowTime` string is read in `job_zone`, as the reader reads `startTimeString`.
pub fn from_parameter(
    map: &Map<String, Json>,
    object: &str,
    zone: Zone,
    job_zone: &str,
    single_object: bool,
    write_mode: WriteMode,
) -> Result<Option<Partitioning>, PluginError> {
    let template = Template::parse(object).map_err(|e| err(format!("object: {e}")))?;
    let given = |k: &str| map.get(k).is_some_and(|v| !v.is_null());
    let (window, event) = (given("windowTime"), given("eventTimeColumn"));
    if !template.has_fields() {
        if window || event || given("maxOpenPartitions") {
            let key = if window {
                "windowTime"
            } else if event {
                "eventTimeColumn"
            } else {
                "maxOpenPartitions"
            };
            return Err(err(format!(
                "{key} needs an object with time placeholders ($yyyy, $MM, $dd, $HH, $mm), got object {object:?}"
            )));
        }
        return Ok(None);
    }
    if single_object {
        return Err(err(format!(
            "object {object:?} has time placeholders, which writeSingleObject (one exact key) cannot use"
        )));
    }
    let source = match (window, event) {
        (true, true) => return Err(err("give windowTime or eventTimeColumn, not both")),
        (false, false) => {
            return Err(err(format!(
                "object {object:?} has time placeholders: give windowTime (e.g. \"${{start_time}}\") or eventTimeColumn"
            )))
        }
        (true, false) => {
            let job_zone =
                Zone::parse(job_zone).map_err(|e| err(format!("the job's time zone: {e}")))?;
            TimeSource::Window(window_time(&map["windowTime"], &job_zone)?)
        }
        (false, true) => event_column(map)?,
    };
    if matches!(source, TimeSource::Column { .. }) {
        event_time_write_mode(write_mode)?;
    }
    if let TimeSource::Window(ms) = &source {
        if template.render(*ms, &zone).is_none() {
            return Err(err(format!(
                "windowTime {ms} is outside the years 0 to 9999"
            )));
        }
    }
    let max_open = max_open(map)?;
    Ok(Some(Partitioning {
        template,
        source,
        zone,
        max_open,
    }))
}

/// `eventTimeColumn` allows only `writeMode: append`.
fn event_time_write_mode(write_mode: WriteMode) -> Result<(), PluginError> {
    let (mode, why) = match write_mode {
        WriteMode::Append => return Ok(()),
        WriteMode::Truncate => ("truncate", "truncate would delete them"),
        WriteMode::NonConflict => (
            "nonConflict",
            "nonConflict would refuse every second window of a partition",
        ),
    };
    Err(err(format!(
        "writeMode {mode} cannot be used with eventTimeColumn: a window's late records land in older partitions, which hold other windows' objects ({why}); use writeMode append (a re-run of a window still replaces exactly the objects it wrote)"
    )))
}

fn max_open(map: &Map<String, Json>) -> Result<usize, PluginError> {
    match map.get("maxOpenPartitions") {
        None | Some(Json::Null) => Ok(DEFAULT_MAX_OPEN),
        Some(v) => match v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        {
            Some(n @ 1..=4096) => Ok(n as usize),
            _ => Err(err(format!(
                "maxOpenPartitions must be an integer from 1 to 4096, got {v}"
            ))),
        },
    }
}

/// `windowTime`: epoch milliseconds (a number or digits), or `yyyyMMddHHmmss` in `zone`.
fn window_time(value: &Json, zone: &Zone) -> Result<i64, PluginError> {
    let bad = || {
        err(format!(
            "windowTime must be epoch milliseconds or yyyyMMddHHmmss (e.g. \"${{start_time}}\"), got {value}"
        ))
    };
    let text = match value {
        Json::Number(n) => return n.as_i64().ok_or_else(bad),
        Json::String(s) => s.trim(),
        _ => return Err(bad()),
    };
    if text.len() == 14 && text.bytes().all(|b| b.is_ascii_digit()) {
        let local = NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%S").map_err(|_| bad())?;
        return zone.to_epoch_ms(local).ok_or_else(|| {
            err(format!(
                "windowTime {text} does not exist in {} (a daylight-saving gap)",
                zone.name()
            ))
        });
    }
    let ms: i64 = text.parse().map_err(|_| bad())?;
    DateTime::from_timestamp_millis(ms).ok_or_else(bad)?;
    Ok(ms)
}

/// `eventTimeColumn`: an index, or a name looked up in `column` (names) or `header`.
fn event_column(map: &Map<String, Json>) -> Result<TimeSource, PluginError> {
    let value = &map["eventTimeColumn"];
    if let Some(index) = value.as_u64() {
        return Ok(TimeSource::Column {
            index: index as usize,
            name: format!("column {index}"),
        });
    }
    let Some(name) = value.as_str().map(str::trim).filter(|s| !s.is_empty()) else {
        return Err(err(format!(
            "eventTimeColumn must be a column index (from 0) or a column name, got {value}"
        )));
    };
    let names: Vec<String> = ["column", "header"]
        .iter()
        .find_map(|key| {
            let items = map.get(*key)?.as_array()?;
            let names: Vec<String> = items
                .iter()
                .filter_map(|c| match c {
                    Json::String(s) => Some(s.clone()),
                    Json::Object(o) => o.get("name")?.as_str().map(str::to_owned),
                    _ => None,
                })
                .collect();
            (names.len() == items.len() && !names.is_empty()).then_some(names)
        })
        .unwrap_or_default();
    match names.iter().position(|n| n == name) {
        Some(index) => Ok(TimeSource::Column {
            index,
            name: format!("column {name:?}"),
        }),
        None if names.is_empty() => Err(err(format!(
            "eventTimeColumn {name:?} is a name, but neither column nor header names the columns: give its index instead"
        ))),
        None => Err(err(format!(
            "eventTimeColumn {name:?} is not a column: the columns are {}",
            names.join(", ")
        ))),
    }
}

/// The epoch milliseconds of a record's time column, or why it has none.
pub fn event_time(record: &[Value], index: usize, name: &str) -> Result<i64, String> {
    match record.get(index) {
        None => Err(format!(
            "eventTimeColumn: the record has no {name} (it has {} columns)",
            record.len()
        )),
        Some(Value::Date(ms)) | Some(Value::Long(ms)) => {
            if DateTime::from_timestamp_millis(*ms).is_some() {
                Ok(*ms)
            } else {
                Err(format!("eventTimeColumn: {name} holds {ms}, not a time"))
            }
        }
        Some(Value::Null) => Err(format!(
            "eventTimeColumn: {name} is null, so the record has no partition"
        )),
        Some(other) => Err(format!(
            "eventTimeColumn: {name} holds a {} value, not a date or epoch milliseconds",
            other.kind()
        )),
    }
}

/// Which keys belong to a job: those starting with `prefix` that [`Scope::owns`].
#[derive(Clone, Debug)]
pub struct Scope {
    /// Every key of the job starts with it.
    pub prefix: String,
    /// Event time: keys must also match the template followed by `__<hex>`.
    template: Option<(Template, String)>,
}

impl Scope {
    /// The job's keys for `object` (not partitioned) or `partitioning`.
    pub fn new(object: &str, partitioning: Option<&Partitioning>, job_hex: &str) -> Self {
        match partitioning {
            None => Self {
                prefix: naming::job_prefix(object, job_hex),
                template: None,
            },
            Some(p) => match p.source {
                TimeSource::Window(_) => Self {
                    prefix: naming::job_prefix(&base_object(object, Some(p)), job_hex),
                    template: None,
                },
                TimeSource::Column { .. } => Self {
                    prefix: p.template.literal_prefix().to_owned(),
                    template: Some((p.template.clone(), job_hex.to_owned())),
                },
            },
        }
    }

    /// Whether `key` is one of the job's names.
    pub fn owns(&self, key: &str) -> bool {
        key.starts_with(&self.prefix)
            && self
                .template
                .as_ref()
                .is_none_or(|(t, hex)| t.matches_job_key(key, hex))
    }
}

/// The prefix `writeMode` acts on: `object`, or with `windowTime` the window's rendered
/// partition; with `eventTimeColumn` the template's literal start (for messages only:
/// truncate and nonConflict are refused there).
pub fn base_object(object: &str, partitioning: Option<&Partitioning>) -> String {
    match partitioning {
        None => object.to_owned(),
        Some(p) => match p.source {
            TimeSource::Window(ms) => p
                .template
                .render(ms, &p.zone)
                .unwrap_or_else(|| p.template.literal_prefix().to_owned()),
            TimeSource::Column { .. } => p.template.literal_prefix().to_owned(),
        },
    }
}

impl WriterConfig {
    /// The keys of the job with this window's `job_hex`.
    pub fn scope(&self, job_hex: &str) -> Scope {
        Scope::new(&self.object, self.partitioning.as_ref(), job_hex)
    }

    /// The prefix `writeMode` acts on ([`base_object`]).
    pub fn base_object(&self) -> String {
        base_object(&self.object, self.partitioning.as_ref())
    }
}

#[cfg(test)]
#[path = "partition_tests.rs"]
mod tests;
