//! The reader's parameters (DataX `otsstreamreader` keys, spec `tablestore.md` §5.1),
//! validated into a [`Config`]. Every error names the parameter.

use protocol::runtime::PluginError;
use protocol::timefmt::{DatePattern, Zone};
use serde_json::{Map, Value as Json};

use crate::sign::SignatureVersion;

/// How records are turned into rows (spec §5.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One row per cell change (DataX's default).
    MultiVersion,
    /// One row per put/update record with the configured columns.
    SingleVersionAndUpdateOnly,
}

/// A checked configuration.
#[derive(Clone)]
pub struct Config {
    pub endpoint: String,
    /// Where the keys come from (secrets hidden from `Debug`).
    pub credentials: credentials::Provider,
    pub instance_name: String,
    pub signature: SignatureVersion,
    pub data_table: String,
    pub status_table: String,
    /// The window `[start_ms, end_ms)`, epoch milliseconds.
    pub start_ms: i64,
    pub end_ms: i64,
    /// The keys the window came from (for error messages): the millisecond pair, the
    /// string pair, or `date` twice.
    pub window_keys: (&'static str, &'static str),
    pub export_sequence_info: bool,
    pub max_retries: u32,
    pub mode: Mode,
    /// Single-version mode: the output columns, in order.
    pub columns: Vec<String>,
    pub enable_seek_iterator: bool,
    /// Shards a task reads at the same time (DataX's `threadNum`).
    pub concurrent_shards: usize,
    pub request_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Follow mode (the `follow` object the engine injects); `None`: window mode.
    pub follow: Option<crate::follow::config::FollowConfig>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .field("instance_name", &self.instance_name)
            .field("data_table", &self.data_table)
            .field("status_table", &self.status_table)
            .field("start_ms", &self.start_ms)
            .field("end_ms", &self.end_ms)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Every key this reader knows (others are ignored with a warning, as DataX does).
pub const KNOWN_KEYS: &[&str] = &[
    "endpoint",
    "accessId",
    "accessKey",
    "instanceName",
    "securityToken",
    "credentials",
    "signatureVersion",
    "region",
    "dataTable",
    "statusTable",
    "startTimestampMillis",
    "endTimestampMillis",
    "startTimeString",
    "endTimeString",
    "date",
    "isExportSequenceInfo",
    "maxRetries",
    "mode",
    "column",
    "enableSeekIterator",
    "isTimeseriesTable",
    "requestTimeoutMillis",
    "connectTimeoutMillis",
    "datasource",
    "dataSource",
    "threadNum",
    "enableTableGroupSupport",
    "confSimplifyEnable",
    "follow",
];

fn err(key: &str, message: impl std::fmt::Display) -> PluginError {
    PluginError::config(format!("parameter {key}: {message}"))
}

struct Params<'a>(&'a Map<String, Json>);

impl Params<'_> {
    fn get(&self, key: &str) -> Option<&Json> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// A required string, trimmed; missing or empty is an error.
    fn string(&self, key: &str) -> Result<String, PluginError> {
        match self.opt_string(key)? {
            Some(s) => Ok(s),
            None => Err(err(key, "is missing")),
        }
    }

    /// An optional string, trimmed; present but empty is an error.
    fn opt_string(&self, key: &str) -> Result<Option<String>, PluginError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::String(s)) if s.trim().is_empty() => Err(err(key, "is an empty string")),
            Some(Json::String(s)) => Ok(Some(s.trim().to_owned())),
            Some(Json::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(err(
                key,
                format!(
                    "must be a string, not {}",
                    protocol::jobfile::json_kind(other)
                ),
            )),
        }
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, PluginError> {
        match self.get(key) {
            None => Ok(default),
            Some(Json::Bool(b)) => Ok(*b),
            Some(Json::String(s)) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
            Some(Json::String(s)) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
            Some(other) => Err(err(key, format!("must be true or false, not {other}"))),
        }
    }

    fn long(&self, key: &str) -> Result<Option<i64>, PluginError> {
        match self.get(key) {
            None => Ok(None),
            Some(Json::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| err(key, format!("must be a whole number, not {n}"))),
            Some(Json::String(s)) if s.trim().is_empty() => Err(err(key, "is an empty string")),
            Some(Json::String(s)) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| err(key, format!("must be a whole number, not {s:?}"))),
            Some(other) => Err(err(key, format!("must be a whole number, not {other}"))),
        }
    }
}

impl Config {
    /// Validates `parameter`; time strings are read in `zone`.
    pub fn from_parameter(parameter: &Json, zone: &Zone) -> Result<Config, PluginError> {
        let map = parameter
            .as_object()
            .ok_or_else(|| PluginError::config("the reader parameter must be a JSON object"))?;
        let p = Params(map);
        for key in map.keys() {
            if !KNOWN_KEYS.contains(&key.as_str()) {
                tracing::warn!("parameter {key} is not known to reader-otsstream and is ignored");
            }
        }
        for key in ["enableTableGroupSupport", "confSimplifyEnable"] {
            if map.contains_key(key) {
                tracing::warn!("parameter {key} (a hidden DataX option) has no effect here");
            }
        }
        let datasource = p
            .get("datasource")
            .or_else(|| p.get("dataSource"))
            .and_then(Json::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let connection_missing = ["endpoint", "instanceName"]
            .iter()
            .find(|k| p.get(k).is_none());
        if let (Some(ds), Some(missing)) = (datasource, connection_missing) {
            return Err(PluginError::config(format!(
                "parameter datasource: the data source {ds:?} was not resolved ({missing} is missing); \
                 the engine resolves data sources from its data-source file, a standalone run needs \
                 endpoint, accessId, accessKey and instanceName in the parameter"
            )));
        }
        let signature = match p.opt_string("signatureVersion")?.as_deref() {
            None | Some("v2") | Some("V2") | Some("2") => SignatureVersion::V2,
            Some("v4") | Some("V4") | Some("4") => SignatureVersion::V4 {
                region: p
                    .opt_string("region")?
                    .ok_or_else(|| err("region", "is required with signatureVersion v4"))?,
            },
            Some(other) => {
                return Err(err(
                    "signatureVersion",
                    format!("must be v2 or v4, not {other:?}"),
                ))
            }
        };
        let mode = match p.opt_string("mode")? {
            None => Mode::MultiVersion,
            Some(m) if m.eq_ignore_ascii_case("single_version_and_update_only") => {
                Mode::SingleVersionAndUpdateOnly
            }
            Some(m) if m.eq_ignore_ascii_case("multi_version") => Mode::MultiVersion,
            Some(m) => {
                return Err(err(
                    "mode",
                    format!("unsupported mode {m:?} (use single_version_and_update_only, or leave it out for multi-version)"),
                ))
            }
        };
        let timeseries = p.bool("isTimeseriesTable", false)?;
        let mut columns = Vec::new();
        match mode {
            Mode::MultiVersion => {
                if p.get("column").is_some() {
                    tracing::warn!("parameter column is only used with mode single_version_and_update_only; ignored");
                }
                if timeseries {
                    tracing::warn!("parameter isTimeseriesTable is only used with mode single_version_and_update_only; ignored");
                }
            }
            Mode::SingleVersionAndUpdateOnly => {
                if timeseries {
                    return Err(err(
                        "isTimeseriesTable",
                        "time-series tables are not supported yet by reader-otsstream",
                    ));
                }
                columns = parse_columns(p.get("column"))?;
            }
        }
        let max_retries = match p.long("maxRetries")? {
            None => 30,
            Some(n) if (0..=1000).contains(&n) => n as u32,
            Some(n) => {
                return Err(err(
                    "maxRetries",
                    format!("must be between 0 and 1000, not {n}"),
                ))
            }
        };
        let positive = |key: &str, default: u64| -> Result<u64, PluginError> {
            match p.long(key)? {
                None => Ok(default),
                Some(n) if n > 0 => Ok(n as u64),
                Some(n) => Err(err(key, format!("must be positive, not {n}"))),
            }
        };
        let follow = crate::follow::config::parse(p.get("follow"), zone)?;
        // Follow mode ignores the window keys (`prepare` says so, once per batch).
        let (start_ms, end_ms, window_keys) = if follow.is_some() {
            (0, 0, ("follow", "follow"))
        } else {
            time_range(&p, zone)?
        };
        let config = Config {
            endpoint: p.string("endpoint")?,
            credentials: credentials_of(&p)?,
            instance_name: p.string("instanceName")?,
            signature,
            data_table: p.string("dataTable")?,
            status_table: p.string("statusTable")?,
            start_ms,
            end_ms,
            window_keys,
            export_sequence_info: p.bool("isExportSequenceInfo", false)?,
            max_retries,
            mode,
            columns,
            enable_seek_iterator: p.bool("enableSeekIterator", false)?,
            concurrent_shards: positive("threadNum", 32)?.min(256) as usize,
            request_timeout_ms: positive("requestTimeoutMillis", 50_000)?,
            connect_timeout_ms: positive("connectTimeoutMillis", 10_000)?,
            follow,
        };
        check_connection(&config)?;
        Ok(config)
    }
}

/// The keys of the parameter (checked to travel in a header), or the source it names:
/// without `accessId` and `accessKey`, the credentials chain.
fn credentials_of(p: &Params<'_>) -> Result<credentials::Provider, PluginError> {
    for key in ["accessId", "accessKey", "securityToken"] {
        if let Some(v) = p.opt_string(key)? {
            protocol::connection::check_header_value(&v).map_err(|e| err(key, e))?;
        }
    }
    credentials::Source::from_parameter(p.0)
        .and_then(|source| credentials::Provider::new(&source))
        .map_err(|e| PluginError::config(e.to_string()))
}

/// Permanent local mistakes fail here, before any request: a malformed endpoint, a
/// credential or instance name that cannot travel in an HTTP header (a pasted newline),
/// a table name Tablestore cannot have. Retrying them would only wait.
fn check_connection(c: &Config) -> Result<(), PluginError> {
    protocol::connection::check_http_url(&c.endpoint, false).map_err(|e| err("endpoint", e))?;
    let headers = [("instanceName", Some(&c.instance_name))];
    for (key, value) in headers {
        if let Some(v) = value {
            protocol::connection::check_header_value(v).map_err(|e| err(key, e))?;
        }
    }
    for (key, name) in [
        ("dataTable", &c.data_table),
        ("statusTable", &c.status_table),
    ] {
        if !is_table_name(name) {
            return Err(err(
                key,
                format!(
                    "{name:?} is not a Tablestore table name (1-255 letters, digits and _, \
                     not starting with a digit)"
                ),
            ));
        }
    }
    Ok(())
}

/// Tablestore's table names: `[A-Za-z_][A-Za-z0-9_]{0,254}`.
fn is_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 255
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_columns(value: Option<&Json>) -> Result<Vec<String>, PluginError> {
    let items =
        match value {
            None => return Err(err(
                "column",
                "is required with mode single_version_and_update_only (a list of {\"name\": ...})",
            )),
            Some(Json::Array(items)) if !items.is_empty() => items,
            Some(_) => {
                return Err(err(
                    "column",
                    "must be a non-empty list of {\"name\": \"...\"} objects",
                ))
            }
        };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let name = item
                .as_object()
                .ok_or_else(|| {
                    err(
                        "column",
                        format!(
                            "item {i} must be an object like {{\"name\": \"col\"}}, not {item}"
                        ),
                    )
                })?
                .get("name")
                .and_then(Json::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    err(
                        "column",
                        format!("item {i} needs a non-empty string \"name\""),
                    )
                })?;
            if let Some(tag) = item.get("is_timeseries_tag") {
                if !tag.is_string() {
                    return Err(err(
                        "column",
                        format!(
                            "item {i}: is_timeseries_tag must be a string (\"true\"/\"false\")"
                        ),
                    ));
                }
            }
            Ok(name.to_owned())
        })
        .collect()
}

/// The time keys: exactly one of `date`, the millisecond pair, the string pair.
type Window = (i64, i64, (&'static str, &'static str));

fn time_range(p: &Params<'_>, zone: &Zone) -> Result<Window, PluginError> {
    let date = p.opt_string("date")?;
    let millis = (
        p.get("startTimestampMillis").is_some(),
        p.get("endTimestampMillis").is_some(),
    );
    let strings = (
        p.get("startTimeString").is_some(),
        p.get("endTimeString").is_some(),
    );
    let any_millis = millis.0 || millis.1;
    let any_strings = strings.0 || strings.1;
    if date.is_some() && any_millis {
        return Err(err("date", "cannot be set together with startTimestampMillis/endTimestampMillis; use one form of time range"));
    }
    if date.is_some() && any_strings {
        return Err(err(
            "date",
            "cannot be set together with startTimeString/endTimeString; use one form of time range",
        ));
    }
    if any_millis && any_strings {
        return Err(err(
            "startTimestampMillis",
            "cannot be set together with startTimeString/endTimeString; use one form of time range",
        ));
    }
    let window = if let Some(d) = date {
        let pattern = DatePattern::new("yyyyMMdd").map_err(|e| err("date", e))?;
        if d.len() != 8 || !d.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(
                "date",
                format!("{d:?} is not a date like 20240115 (yyyyMMdd)"),
            ));
        }
        let start = pattern.parse(&d, zone).map_err(|e| {
            err(
                "date",
                format!("{d:?} is not a date like 20240115 (yyyyMMdd): {e}"),
            )
        })?;
        (start, start + 86_400_000, ("date", "date"))
    } else if any_strings {
        let start = time_string(p, "startTimeString", zone)?;
        let end = time_string(p, "endTimeString", zone)?;
        (start, end, ("startTimeString", "endTimeString"))
    } else if any_millis {
        let start = millis_value(p, "startTimestampMillis")?;
        let end = millis_value(p, "endTimestampMillis")?;
        (start, end, ("startTimestampMillis", "endTimestampMillis"))
    } else {
        return Err(PluginError::config(
            "parameter date / startTimestampMillis+endTimestampMillis / startTimeString+endTimeString: \
             set one form of time range",
        ));
    };
    let (start, end, keys) = window;
    if start >= end {
        return Err(PluginError::config(format!(
            "parameter {}: the end of the window ({end}) must be later than its start ({start})",
            keys.1
        )));
    }
    Ok((start, end, keys))
}

fn time_string(p: &Params<'_>, key: &str, zone: &Zone) -> Result<i64, PluginError> {
    let text = p.opt_string(key)?.ok_or_else(|| {
        err(
            key,
            "is missing (startTimeString and endTimeString go together)",
        )
    })?;
    if text.len() != 14 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            key,
            format!("{text:?} is not a time like 20240115083000 (yyyyMMddHHmmss)"),
        ));
    }
    DatePattern::new("yyyyMMddHHmmss")
        .and_then(|pattern| pattern.parse(&text, zone))
        .map_err(|e| {
            err(
                key,
                format!("{text:?} is not a valid yyyyMMddHHmmss time: {e}"),
            )
        })
}

fn millis_value(p: &Params<'_>, key: &str) -> Result<i64, PluginError> {
    let pair = "startTimestampMillis and endTimestampMillis go together";
    let v = p
        .long(key)?
        .ok_or_else(|| err(key, format!("is missing ({pair})")))?;
    // `${start_time}` in yyyyMMddHHmmss form (as the vendor's template suggests) read as
    // milliseconds would be a time in the 27th century: refuse it and name the fix.
    let text = v.to_string();
    if text.len() == 14
        && (text.starts_with("19") || text.starts_with("20"))
        && chrono::NaiveDateTime::parse_from_str(&text, "%Y%m%d%H%M%S").is_ok()
    {
        let string_key = key.replace("TimestampMillis", "TimeString");
        return Err(err(
            key,
            format!("{v} looks like a yyyyMMddHHmmss time, not epoch milliseconds; put it in {string_key} instead"),
        ));
    }
    if v < 0 {
        return Err(err(key, format!("must not be negative, not {v}")));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Json {
        json!({"endpoint": "http://127.0.0.1:1", "accessId": "id", "accessKey": "secret",
               "instanceName": "i", "dataTable": "t", "statusTable": "s",
               "startTimestampMillis": 1000, "endTimestampMillis": 2000})
    }

    fn with(changes: Json) -> Json {
        let mut b = base();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                b.as_object_mut().unwrap().remove(k);
            } else {
                b[k] = v.clone();
            }
        }
        b
    }

    fn error(p: Json) -> String {
        Config::from_parameter(&p, &Zone::parse("UTC").unwrap())
            .unwrap_err()
            .message
    }

    #[test]
    fn a_plain_config_is_accepted() {
        let c = Config::from_parameter(&base(), &Zone::parse("UTC").unwrap()).unwrap();
        assert_eq!((c.start_ms, c.end_ms, c.max_retries), (1000, 2000, 30));
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn time_ranges_follow_datax_rules() {
        assert!(error(with(json!({"date": "20240115"}))).contains("parameter date"));
        assert!(error(with(json!({"startTimestampMillis": 3000}))).contains("must be later"));
        assert!(error(with(json!({"endTimestampMillis": null}))).contains("endTimestampMillis"));
        let strings = json!({"startTimestampMillis": null, "endTimestampMillis": null,
            "startTimeString": "20240115083000", "endTimeString": "20240115093000"});
        let c = Config::from_parameter(
            &with(strings.clone()),
            &Zone::parse("Asia/Shanghai").unwrap(),
        )
        .unwrap();
        assert_eq!(c.start_ms, 1705278600000);
        assert_eq!(c.end_ms - c.start_ms, 3_600_000);
        let bad = with(
            json!({"startTimestampMillis": null, "endTimestampMillis": null,
            "startTimeString": "2024011508", "endTimeString": "20240115093000"}),
        );
        assert!(error(bad).contains("parameter startTimeString"));
        let bad = with(
            json!({"startTimestampMillis": null, "endTimestampMillis": null,
            "startTimeString": "20241315083000", "endTimeString": "20240115093000"}),
        );
        assert!(error(bad).contains("parameter startTimeString"));
        let day = with(
            json!({"startTimestampMillis": null, "endTimestampMillis": null, "date": "20240115"}),
        );
        let c = Config::from_parameter(&day, &Zone::parse("UTC").unwrap()).unwrap();
        assert_eq!((c.start_ms, c.end_ms), (1705276800000, 1705363200000));
        let msg = error(with(json!({"startTimestampMillis": "20240115083000"})));
        assert!(msg.contains("startTimeString"), "{msg}");
        assert!(error(with(
            json!({"startTimestampMillis": null, "endTimestampMillis": null})
        ))
        .contains("time range"));
    }

    #[test]
    fn other_keys_are_checked() {
        assert!(error(with(json!({"mode": "whatever"}))).contains("parameter mode"));
        assert!(
            error(with(json!({"mode": "single_version_and_update_only"})))
                .contains("parameter column")
        );
        assert!(error(with(json!({"mode": "single_version_and_update_only", "column": [{"name": "a"}], "isTimeseriesTable": true}))).contains("not supported yet"));
        assert!(
            error(with(json!({"isExportSequenceInfo": "yes"}))).contains("isExportSequenceInfo")
        );
        assert!(error(with(json!({"dataTable": "  "}))).contains("parameter dataTable"));
        assert!(error(with(json!({"endpoint": null, "datasource": "ots1"})))
            .contains("parameter datasource"));
        assert!(error(with(json!({"maxRetries": -1}))).contains("maxRetries"));
    }
}
