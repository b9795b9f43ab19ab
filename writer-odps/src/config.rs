//! The parameter of `writer-odps` (DataX odpswriter's keys, spec `odps.md` §6.1),
//! validated into an [`OdpsConfig`].

use std::time::Duration;

use protocol::runtime::{ParameterSpec, PluginError};
use protocol::timefmt::Zone;
use serde_json::Value as Json;

use crate::convert::OverLengthRule;
use crate::http::{Endpoint, HttpOptions};
use crate::sign::{region_of_host, SignatureVersion};

/// The key under which `split` adds a task's own settings to the parameter.
pub const TASK_KEY: &str = "_odpsTask";

/// The default `commitMarkerTable`.
pub const DEFAULT_MARKER_TABLE: &str = "streamport_commit_markers";

/// A checked configuration. Secrets are hidden from `Debug` (in the credentials provider).
#[derive(Clone, Debug)]
pub struct OdpsConfig {
    pub service: Endpoint,
    pub tunnel: Option<Endpoint>,
    pub project: String,
    pub table: String,
    /// Normalised as DataX does: `pt=1,region=hz` (no quotes); empty for none.
    pub partition: String,
    /// `None` for `["*"]`.
    pub columns: Option<Vec<String>>,
    pub truncate: bool,
    /// Where the keys come from (secrets hidden from `Debug`).
    pub credentials: credentials::Provider,
    pub signature: SignatureVersion,
    pub empty_as_null: bool,
    pub compress: bool,
    pub block_size_mb: u32,
    pub max_retry_time: u32,
    pub write_timeout: Duration,
    pub zone: Zone,
    pub date_zone: Zone,
    pub pre_sql: Vec<String>,
    pub post_sql: Vec<String>,
    pub over_length_rule: OverLengthRule,
    pub max_field_length: usize,
    pub max_odps_field_length: usize,
    /// The commit-marker table of append loads (`commitMarkerTable`); `None` when
    /// `commitMarker` is false.
    pub commit_marker: Option<String>,
    /// `commitMarkerLifecycle`: the LIFECYCLE (days) the marker table is created with.
    pub commit_marker_lifecycle: Option<u32>,
}

impl OdpsConfig {
    pub fn http_options(&self) -> HttpOptions {
        HttpOptions {
            credentials: self.credentials.clone(),
            signature: self.signature.clone(),
            project: self.project.clone(),
            max_attempts: self.max_retry_time,
            request_timeout: Duration::from_secs(60),
        }
    }

    /// Bytes after which a block is closed: `(blockSizeInMB − 4) MiB` as DataX.
    pub fn block_flush_bytes(&self) -> u64 {
        u64::from(self.block_size_mb.saturating_sub(4).max(1)) * 1024 * 1024
    }

    /// The partition as SQL writes it: `pt='1',region='hz'`.
    pub fn partition_sql(&self) -> String {
        self.partition
            .split(',')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| format!("{k}='{v}'"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

const KNOWN: &[&str] = &[
    "odpsServer",
    "tunnelServer",
    "project",
    "table",
    "partition",
    "column",
    "truncate",
    "accessId",
    "accessKey",
    "securityToken",
    "credentials",
    "emptyAsNull",
    "isCompress",
    "blockSizeInMB",
    "maxRetryTime",
    "datasource",
    "timeZone",
    "signatureVersion",
    "region",
    "consistencyCommit",
    "preSql",
    "postSql",
    "writeTimeoutInMs",
    "overLengthRule",
    "maxFieldLength",
    "maxOdpsFieldLength",
    "enableOverLengthOutput",
    "maxOverLengthOutputCount",
    "supportDynamicPartition",
    "partitionColumnMapping",
    "partitionFormatType",
    "customPartitionColumns",
    "customPartitionFunctions",
    "dynamicPartitionMemUsageFlushIntervalInMinute",
    "checkWithGetSize",
    "calendarTimeZone",
    "calendarType",
    "calendarLenient",
    "useDateWithCalendar",
    "dryRun",
    "accountType",
    "commitMarker",
    "commitMarkerTable",
    "commitMarkerLifecycle",
    "follow",
    TASK_KEY,
];

pub fn parameters() -> Vec<ParameterSpec> {
    let p = ParameterSpec::new;
    vec![
        p("odpsServer", "string", true, None, "Service endpoint, e.g. http://service.cn-hangzhou.maxcompute.aliyun.com/api."),
        p("tunnelServer", "string", false, None, "Tunnel endpoint, e.g. http://dt.cn-hangzhou.maxcompute.aliyun.com; discovered through odpsServer when absent."),
        p("project", "string", true, None, "Project of the table."),
        p("table", "string", true, None, "Table to load (not a view)."),
        p("partition", "string", false, Some("\"\""), "Partition to load, naming every level: pt=20240101,region=hz (also 'pt = x / region = y', quotes removed). Required for partitioned tables, refused for others."),
        p("column", "array", true, None, "Target columns in the order of the source's columns, or [\"*\"] for all in table order. Unlisted columns are written as NULL."),
        p("truncate", "boolean", true, None, "Replace the partition's (or the table's) rows with the job's: the commit of an overwrite session does it atomically, so a failed job leaves the old rows."),
        p("accessId", "string", false, None, "AccessKey id. Without accessId and accessKey the credentials chain is used (environment, aliyun CLI profile, ECS RAM role)."),
        p("accessKey", "string", false, None, "AccessKey secret (never printed)."),
        p("securityToken", "string", false, None, "STS token for temporary credentials."),
        p("credentials", "string or object", false, None, "Where the keys come from instead: \"default\" (the chain), \"env\", \"profile\", \"ecs_ram_role\", or {\"type\": \"ram_role_arn\", \"roleArn\", …}; temporary credentials are refreshed ahead of their expiry."),
        p("emptyAsNull", "boolean", false, Some("false"), "Write empty source strings as NULL."),
        p("isCompress", "boolean", false, Some("false"), "Send blocks deflate (zlib) compressed."),
        p("blockSizeInMB", "integer", false, Some("64"), "Block size in MiB, 1-512 (values below 8 count as 8); a block closes after (blockSizeInMB - 4) MiB. Memory does not grow with it: blocks are streamed."),
        p("maxRetryTime", "integer", false, Some("10"), "Attempts per request, 1-10, for temporary failures only."),
        p("datasource", "string", false, None, "A named data source; the engine resolves it into the connection keys."),
        p("timeZone", "string", false, None, "Zone of date text and of dates written as text (default: the job's zone)."),
        p("calendarTimeZone", "string", false, None, "Zone that turns an instant into a DATE (default: timeZone)."),
        p("signatureVersion", "string", false, Some("\"v2\""), "Request signature: v2 (as DataX) or v4 (needs region)."),
        p("region", "string", false, None, "Region for v4 signatures, e.g. cn-hangzhou (default: from the odpsServer host)."),
        p("writeTimeoutInMs", "integer", false, Some("600000"), "Timeout of one block upload after its last byte, and of a retried upload."),
        p("preSql", "array", false, None, "SQL statements run before loading (idempotent; retried)."),
        p("postSql", "array", false, None, "SQL statements run after the commit."),
        p("commitMarker", "boolean", false, Some("true"), "With truncate false: record each window's commit in commitMarkerTable so a re-run of a committed window commits nothing again (README \"Commit and re-runs\"). false appends again on every re-run."),
        p("commitMarkerTable", "string", false, Some("\"streamport_commit_markers\""), "Table of the project holding the commit markers (created if missing; one partition per marker)."),
        p("commitMarkerLifecycle", "integer", false, None, "LIFECYCLE in days given to the marker table when writer-odps creates it (default: none, markers are kept; a window re-run after its marker was reclaimed appends again)."),
        p("follow", "boolean", false, Some("false"), "Set by the engine in follow mode (run --follow); not for job files."),
        p("overLengthRule", "string", false, Some("\"keepOn\""), "STRING/BINARY values longer than maxOdpsFieldLength bytes: keepOn (dirty record), setNull, truncate."),
        p("maxFieldLength", "integer", false, Some("8388608"), "Bytes kept by overLengthRule truncate."),
        p("maxOdpsFieldLength", "integer", false, Some("8388608"), "Over-length threshold in bytes."),
        p("consistencyCommit", "boolean", false, Some("true"), "Accepted for DataX compatibility: the job always commits one session once."),
        p("supportDynamicPartition", "boolean", false, Some("false"), "Dynamic partitions are not supported: only false is accepted."),
        p("accountType", "string", false, None, "Accepted and ignored (removed from DataX)."),
        p("enableOverLengthOutput", "boolean", false, None, "Accepted; over-long values are reported as dirty or logged."),
        p("maxOverLengthOutputCount", "integer", false, None, "Accepted and ignored."),
        p("checkWithGetSize", "boolean", false, None, "Accepted and ignored."),
        p("calendarType", "string", false, None, "Only iso8601 is accepted."),
        p("calendarLenient", "boolean", false, None, "Accepted and ignored."),
        p("useDateWithCalendar", "boolean", false, None, "Accepted and ignored."),
        p("dynamicPartitionMemUsageFlushIntervalInMinute", "integer", false, None, "Accepted and ignored (dynamic partitions only)."),
        p("dryRun", "boolean", false, Some("false"), "Not supported: only false is accepted (use the check command)."),
        p("partitionColumnMapping", "array", false, None, "Dynamic partitions only: refused."),
        p("partitionFormatType", "string", false, None, "Dynamic partitions only: refused."),
        p("customPartitionColumns", "array", false, None, "Dynamic partitions only: refused."),
        p("customPartitionFunctions", "array", false, None, "Dynamic partitions only: refused."),
    ]
}

fn err(message: impl Into<String>) -> PluginError {
    PluginError::config(format!("writer-odps: {}", message.into()))
}

fn string_of<'a>(p: &'a Json, key: &str) -> Result<Option<&'a str>, PluginError> {
    match p.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.trim())),
        Some(other) => Err(err(format!(
            "{key} must be a string, got {}",
            protocol::jobfile::json_kind(other)
        ))),
    }
}

fn required<'a>(p: &'a Json, key: &str) -> Result<&'a str, PluginError> {
    string_of(p, key)?.ok_or_else(|| err(format!("{key} is required")))
}

fn bool_of(p: &Json, key: &str) -> Result<Option<bool>, PluginError> {
    match p.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Bool(b)) => Ok(Some(*b)),
        Some(Json::String(s)) if s.trim().eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Json::String(s)) if s.trim().eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(err(format!("{key} must be true or false, got {other}"))),
    }
}

fn int_of(p: &Json, key: &str) -> Result<Option<i64>, PluginError> {
    match p.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Number(n)) => n
            .as_i64()
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

fn int_in(p: &Json, key: &str, default: i64, low: i64, high: i64) -> Result<i64, PluginError> {
    let v = int_of(p, key)?.unwrap_or(default);
    if v < low || v > high {
        return Err(err(format!(
            "{key} must be within [{low}, {high}], got {v}"
        )));
    }
    Ok(v)
}

fn strings_of(p: &Json, key: &str) -> Result<Vec<String>, PluginError> {
    match p.get(key) {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::String(s)) => Ok(vec![s.clone()]),
        Some(Json::Array(items)) => items
            .iter()
            .map(|i| match i {
                Json::String(s) => Ok(s.clone()),
                other => Err(err(format!("{key} must list strings, got {other}"))),
            })
            .collect(),
        Some(other) => Err(err(format!("{key} must be a list of strings, got {other}"))),
    }
}

/// DataX's partition normalisation (spec §6.2): `"pt = 1 / type='a'"` → `pt=1,type=a`.
pub fn normalise_partition(text: &str) -> Result<String, String> {
    let cleaned: String = text.trim().replace('\'', "");
    let pairs: Vec<String> = cleaned
        .split([',', '/'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let parts: Vec<&str> = pair.split('=').map(str::trim).collect();
            match parts.as_slice() {
                [k, v] if !k.is_empty() && !v.is_empty() => Ok(format!("{k}={v}")),
                _ => Err(format!("partition {text:?}: {pair:?} is not key=value")),
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(pairs.join(","))
}

impl OdpsConfig {
    pub fn from_parameter(p: &Json, job_time_zone: &str) -> Result<Self, PluginError> {
        let map = p
            .as_object()
            .ok_or_else(|| err("the parameter must be a JSON object"))?;
        for key in map.keys() {
            if !KNOWN.contains(&key.as_str()) {
                return Err(err(format!(
                    "unknown parameter {key:?} (see `writer-odps spec`)"
                )));
            }
        }
        if let Some(name) = string_of(p, "datasource")? {
            return Err(err(format!(
                "datasource {name:?} was not resolved: run the job through the engine with a \
                 data-source file (--datasources), or give odpsServer, accessId and accessKey"
            )));
        }
        refuse_unsupported(p)?;
        let service = Endpoint::parse(required(p, "odpsServer")?)
            .map_err(|e| err(format!("odpsServer: {e}")))?;
        let tunnel = string_of(p, "tunnelServer")?
            .map(Endpoint::parse)
            .transpose()
            .map_err(|e| err(format!("tunnelServer: {e}")))?;
        let truncate =
            bool_of(p, "truncate")?.ok_or_else(|| err("truncate is required (true or false)"))?;
        let columns = match p.get("column") {
            Some(Json::Array(items)) if !items.is_empty() => {
                let names = items
                    .iter()
                    .map(|c| match c {
                        Json::String(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
                        other => Err(err(format!("column entries must be names, got {other}"))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if names.len() == 1 && names[0] == "*" {
                    None
                } else {
                    let mut seen = std::collections::HashSet::new();
                    for n in &names {
                        if n == "*" {
                            return Err(err("column: \"*\" must be the only entry"));
                        }
                        if !seen.insert(n.to_ascii_lowercase()) {
                            return Err(err(format!("column {n:?} is listed twice")));
                        }
                    }
                    Some(names)
                }
            }
            _ => {
                return Err(err(
                    "column is required: a non-empty list of names, or [\"*\"]",
                ))
            }
        };
        let partition = match string_of(p, "partition")? {
            Some(text) => normalise_partition(text).map_err(err)?,
            None => String::new(),
        };
        // Permanent local mistakes fail here instead of being retried as network errors.
        for name in ["accessId", "accessKey", "securityToken"] {
            if let Some(v) = string_of(p, name)? {
                protocol::connection::check_header_value(v)
                    .map_err(|e| err(format!("{name}: {e}")))?;
            }
        }
        let credentials = p
            .as_object()
            .ok_or_else(|| err("the parameter must be an object"))
            .and_then(|map| {
                credentials::Source::from_parameter(map)
                    .and_then(|source| credentials::Provider::new(&source))
                    .map_err(|e| err(e.to_string()))
            })?;
        let signature = match string_of(p, "signatureVersion")?.unwrap_or("v2") {
            v if v.eq_ignore_ascii_case("v2") => SignatureVersion::V2,
            v if v.eq_ignore_ascii_case("v4") => {
                let region = match string_of(p, "region")? {
                    Some(r) => r.to_owned(),
                    None => region_of_host(service.host()).ok_or_else(|| {
                        err("signatureVersion v4 needs region (it is not in the odpsServer host)")
                    })?,
                };
                SignatureVersion::V4 { region }
            }
            other => {
                return Err(err(format!(
                    "signatureVersion must be v2 or v4, got {other:?}"
                )))
            }
        };
        let zone_name = string_of(p, "timeZone")?.unwrap_or(job_time_zone);
        let zone = Zone::parse(zone_name).map_err(|e| err(format!("timeZone: {e}")))?;
        let date_zone = match string_of(p, "calendarTimeZone")? {
            Some(z) => Zone::parse(z).map_err(|e| err(format!("calendarTimeZone: {e}")))?,
            None => zone,
        };
        let block_size_mb = int_in(p, "blockSizeInMB", 64, 1, 512)?;
        if block_size_mb < 8 {
            tracing::warn!("blockSizeInMB {block_size_mb} is raised to 8, as DataX does");
        }
        let over_length_rule = match string_of(p, "overLengthRule")?.unwrap_or("keepOn") {
            r if r.eq_ignore_ascii_case("keepOn") => OverLengthRule::KeepOn,
            r if r.eq_ignore_ascii_case("setNull") => OverLengthRule::SetNull,
            r if r.eq_ignore_ascii_case("truncate") => OverLengthRule::Truncate,
            other => {
                return Err(err(format!(
                    "overLengthRule must be keepOn, setNull or truncate, got {other:?}"
                )))
            }
        };
        let commit_marker = match bool_of(p, "commitMarker")?.unwrap_or(true) {
            false => None,
            true => {
                let name = string_of(p, "commitMarkerTable")?.unwrap_or(DEFAULT_MARKER_TABLE);
                let valid = name.len() <= 128
                    && name.starts_with(|c: char| c.is_ascii_alphabetic())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(err(format!(
                        "commitMarkerTable must be a table name (a letter, then letters, digits or _; at most 128), got {name:?}"
                    )));
                }
                Some(name.to_owned())
            }
        };
        let commit_marker_lifecycle = match p.get("commitMarkerLifecycle") {
            None | Some(Json::Null) => None,
            Some(_) => Some(int_in(p, "commitMarkerLifecycle", 1, 1, 37_231)? as u32),
        };
        crate::follow::check(p, truncate, commit_marker.is_some())?;
        Ok(Self {
            commit_marker,
            commit_marker_lifecycle,
            service,
            tunnel,
            project: required(p, "project")?.to_owned(),
            table: required(p, "table")?.to_owned(),
            partition,
            columns,
            truncate,
            credentials,
            signature,
            empty_as_null: bool_of(p, "emptyAsNull")?.unwrap_or(false),
            compress: bool_of(p, "isCompress")?.unwrap_or(false),
            block_size_mb: block_size_mb.max(8) as u32,
            max_retry_time: int_in(p, "maxRetryTime", 10, 1, 10)? as u32,
            write_timeout: Duration::from_millis(int_in(
                p,
                "writeTimeoutInMs",
                600_000,
                1_000,
                86_400_000,
            )? as u64),
            zone,
            date_zone,
            pre_sql: strings_of(p, "preSql")?,
            post_sql: strings_of(p, "postSql")?,
            over_length_rule,
            max_field_length: int_in(p, "maxFieldLength", 8_388_608, 1, i64::from(u32::MAX))?
                as usize,
            max_odps_field_length: int_in(
                p,
                "maxOdpsFieldLength",
                8_388_608,
                1,
                i64::from(u32::MAX),
            )? as usize,
        })
    }
}

/// Keys of DataX features this writer does not have: a clear error instead of a
/// silently different job.
fn refuse_unsupported(p: &Json) -> Result<(), PluginError> {
    if bool_of(p, "supportDynamicPartition")? == Some(true) {
        return Err(err(
            "supportDynamicPartition true is not supported: load one partition per job (partition)",
        ));
    }
    if bool_of(p, "dryRun")? == Some(true) {
        return Err(err("dryRun is not supported: use `writer-odps check`"));
    }
    for key in [
        "partitionColumnMapping",
        "partitionFormatType",
        "customPartitionColumns",
        "customPartitionFunctions",
    ] {
        match p.get(key) {
            None | Some(Json::Null) => {}
            Some(Json::Array(a)) if a.is_empty() => {}
            Some(Json::String(s)) if s.trim().is_empty() => {}
            Some(_) => {
                return Err(err(format!(
                    "{key} belongs to dynamic partitions, which are not supported"
                )))
            }
        }
    }
    if let Some(t) = string_of(p, "calendarType")? {
        if !t.eq_ignore_ascii_case("iso8601") {
            return Err(err(format!(
                "calendarType {t:?} is not supported (only iso8601)"
            )));
        }
    }
    if let Some(t) = string_of(p, "accountType")? {
        if !t.eq_ignore_ascii_case("aliyun") && !t.eq_ignore_ascii_case("taobao") {
            return Err(err(format!("accountType must be aliyun, got {t:?}")));
        }
    }
    for key in [
        "consistencyCommit",
        "enableOverLengthOutput",
        "checkWithGetSize",
        "calendarLenient",
        "useDateWithCalendar",
    ] {
        bool_of(p, key)?;
    }
    for key in [
        "maxOverLengthOutputCount",
        "dynamicPartitionMemUsageFlushIntervalInMinute",
    ] {
        int_of(p, key)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Json {
        json!({
            "odpsServer": "http://127.0.0.1:1/api", "project": "p", "table": "t",
            "column": ["*"], "truncate": false, "accessId": "id", "accessKey": "secret-value",
            "partition": "pt = 20150101 / type='1'"
        })
    }

    fn with(key: &str, value: Json) -> Json {
        let mut p = base();
        p[key] = value;
        p
    }

    #[test]
    fn datax_partition_normalisation() {
        assert_eq!(
            normalise_partition("pt = 20150101 / type='1'").unwrap(),
            "pt=20150101,type=1"
        );
        assert_eq!(normalise_partition(" pt='x' , r = y ").unwrap(), "pt=x,r=y");
        assert!(normalise_partition("pt=1=2").is_err());
        assert!(normalise_partition("pt").is_err());
        let c = OdpsConfig::from_parameter(&base(), "UTC").unwrap();
        assert_eq!(c.partition, "pt=20150101,type=1");
        assert_eq!(c.partition_sql(), "pt='20150101',type='1'");
        assert_eq!(c.block_size_mb, 64);
        assert_eq!(c.block_flush_bytes(), 60 * 1024 * 1024);
        assert!(c.columns.is_none());
        assert!(!format!("{c:?}").contains("secret-value"));
        assert_eq!(c.commit_marker.as_deref(), Some(DEFAULT_MARKER_TABLE));
        let c = OdpsConfig::from_parameter(&with("commitMarker", json!(false)), "UTC").unwrap();
        assert_eq!(c.commit_marker, None);
        let c =
            OdpsConfig::from_parameter(&with("commitMarkerTable", json!("m_1")), "UTC").unwrap();
        assert_eq!(c.commit_marker.as_deref(), Some("m_1"));
    }

    #[test]
    fn bad_parameters_name_the_key() {
        let cases = [
            (with("truncate", Json::Null), "truncate"),
            (with("column", json!([])), "column"),
            (with("column", json!(["a", "A"])), "twice"),
            (with("blockSizeInMB", json!(513)), "blockSizeInMB"),
            (with("maxRetryTime", json!(0)), "maxRetryTime"),
            (with("odpsServer", json!("nohost")), "odpsServer"),
            (with("datasource", json!("prod")), "datasource"),
            (
                with("supportDynamicPartition", json!(true)),
                "supportDynamicPartition",
            ),
            (with("overLengthRule", json!("drop")), "overLengthRule"),
            (with("signatureVersion", json!("v4")), "region"),
            (with("colunm", json!(["a"])), "colunm"),
            (with("timeZone", json!("Mars/Base")), "timeZone"),
            (with("commitMarkerTable", json!("a.b")), "commitMarkerTable"),
            (with("commitMarkerTable", json!("1x")), "commitMarkerTable"),
            (with("commitMarker", json!("no")), "commitMarker"),
            (
                with("commitMarkerLifecycle", json!(0)),
                "commitMarkerLifecycle",
            ),
            (
                with("odpsServer", json!("http://[::1/api")),
                "odpsServer: \"http://[::1/api\": the IPv6 address",
            ),
            (
                with("tunnelServer", json!("http://h:0")),
                "tunnelServer: \"http://h:0\": the port",
            ),
            (
                with("securityToken", json!("a\nSECRET")),
                "securityToken: it contains a newline",
            ),
            (
                with("accessKey", json!("s\u{7f}")),
                "accessKey: it contains the control character U+007F",
            ),
        ];
        for (p, needle) in cases {
            let e = OdpsConfig::from_parameter(&p, "UTC").unwrap_err();
            assert!(e.message.contains(needle), "{needle}: {}", e.message);
            assert!(!e.message.contains("SECRET"), "{}", e.message);
            assert_eq!(e.exit_code(), 2);
        }
        let e =
            OdpsConfig::from_parameter(&with("accessKey", json!(987654321)), "UTC").unwrap_err();
        assert!(
            e.message
                .contains("accessKey must be a string, got a number"),
            "{}",
            e.message
        );
        assert!(
            !e.message.contains("987654321"),
            "a secret is echoed: {}",
            e.message
        );
        let c = OdpsConfig::from_parameter(&with("blockSizeInMB", json!(2)), "UTC").unwrap();
        assert_eq!(c.block_size_mb, 8);
        let c = OdpsConfig::from_parameter(
            &with(
                "odpsServer",
                json!("http://service.cn-hangzhou.maxcompute.aliyun.com/api"),
            ),
            "UTC",
        )
        .unwrap();
        assert_eq!(c.signature, SignatureVersion::V2);
    }
}
