//! The writer's parameter (spec oss.md §8.2), validated into a [`WriterConfig`].

use std::time::Duration;

use protocol::runtime::{ParameterSpec, PluginError};
use protocol::timefmt::{DatePattern, Zone};
use serde_json::{Map, Value as Json};

use crate::client::{self, ClientOptions, SignVersion};
use crate::columnar::{self, ColumnarConfig};
use crate::convert::{FileFormat, RecordFormat, TextEncoder};
use crate::partition::{self, Partitioning};

/// What `prepare` does with existing objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    Truncate,
    Append,
    NonConflict,
}

/// Compression of each object's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compress {
    None,
    Gzip,
    Zstd,
}

/// A checked configuration. Secrets live in `client` and are hidden from `Debug`.
#[derive(Clone, Debug)]
pub struct WriterConfig {
    pub client: ClientOptions,
    /// Name prefix (multi-object) or the exact key (single object).
    pub object: String,
    pub write_mode: WriteMode,
    pub record_format: RecordFormat,
    pub encoder: TextEncoder,
    pub header: Vec<String>,
    /// Bytes after which a part is cut.
    pub part_size_bytes: usize,
    /// Parts per object before rolling to the next name.
    pub max_parts_per_object: u32,
    /// `.suffix` or empty.
    pub suffix: String,
    pub single_object: bool,
    pub compress: Compress,
    pub encrypt: bool,
    pub generate_empty_file: bool,
    /// Parts uploading at once per task.
    pub parts_in_flight: usize,
    /// Time-partitioned paths, when `object` has `$yyyy`… placeholders.
    pub partitioning: Option<Partitioning>,
    /// `fileFormat` parquet or orc (then `record_format` and `compress` are unused).
    pub columnar: Option<ColumnarConfig>,
    /// `maxFileSize` in bytes (columnar objects roll on it at row-group boundaries).
    pub max_file_bytes: u64,
    /// Follow mode (the engine's `"follow": true`): see [`crate::follow`].
    pub follow: bool,
}

const MIB: u64 = 1024 * 1024;

pub fn parameters() -> Vec<ParameterSpec> {
    let p = ParameterSpec::new;
    let mut list = vec![
        p("endpoint", "string", true, None, "OSS endpoint, e.g. http://oss-cn-hangzhou.aliyuncs.com; http:// is added when there is no scheme. IP and localhost endpoints are addressed path-style, others virtual-hosted."),
        p("accessId", "string", false, None, "AccessKey id. Without accessId and accessKey the credentials chain is used (environment, aliyun CLI profile, ECS RAM role)."),
        p("accessKey", "string", false, None, "AccessKey secret (never logged)."),
        p("securityToken", "string", false, None, "STS token for temporary credentials (sent as x-oss-security-token)."),
        p("credentials", "string or object", false, None, "Where the keys come from instead: \"default\" (the chain), \"env\", \"profile\", \"ecs_ram_role\", or {\"type\": \"ram_role_arn\", \"roleArn\", …}; temporary credentials are refreshed ahead of their expiry."),
        p("bucket", "string", true, None, "The bucket; it must exist."),
        p("object", "string", true, None, "Name prefix: each task writes <object>__<32 hex>[_N][.suffix]; with writeSingleObject the exact key."),
        p("writeMode", "string", true, None, "truncate (delete every other key starting with object, in post once every new object is complete), append (add objects), nonConflict (fail if a key starts with object, except this window's own objects)."),
        p("fileFormat", "string", false, Some("\"text\""), "text (fields joined, no quoting), csv (RFC 4180 quoting), parquet or orc (columns from column / parquetSchema)."),
        p("column", "array", false, None, "parquet and orc: [{\"name\", \"type\"}] in record order; types tinyint, smallint, int, bigint/long, float, double, string/char/varchar, binary, boolean, date, timestamp, int96 (parquet), decimal(p,s) (parquet)."),
        p("parquetSchema", "string", false, None, "parquet: the file's message type (flat, required/optional primitives); derived from column when absent."),
        p("rowGroupSizeInMB", "integer", false, Some("64"), "parquet and orc: MiB of buffered values per row group (orc: stripe); bounds the task's memory."),
        p("fieldDelimiter", "string", false, Some("\",\""), "Field separator; exactly one character for csv."),
        p("lineDelimiter", "string", false, Some("\"\\n\""), "Record separator."),
        p("encoding", "string", false, Some("\"UTF-8\""), "Charset of the objects (UTF-8, GBK, GB18030, …); unmappable characters become '?'."),
        p("nullFormat", "string", false, Some("\"null\""), "Text written for a null value (DataX's real default is the literal null)."),
        p("dateFormat", "string", false, Some("\"yyyy-MM-dd HH:mm:ss\""), "Java date pattern for date values, in timeZone."),
        p("timeZone", "string", false, None, "Zone for dates (IANA name or GMT+8); default the job's zone (the engine's timeZone, else the machine's)."),
        p("header", "array", false, None, "Column names written as the first line of every object."),
        p("maxFileSize", "integer", false, Some("100000"), "MiB per object before rolling to <name>_1, _2, …"),
        p("suffix", "string", false, None, "Appended to every object name with a '.' (csv → .csv)."),
        p("writeSingleObject", "boolean", false, Some("false"), "All tasks write the one key object."),
        p("blockSizeInMB", "integer", false, Some("10"), "Part size in MiB (1 to 5120); memory per task is about this × (partsInFlight + 1)."),
        p("compress", "string", false, None, "text/csv: gzip or zstd (DataX refuses compression); parquet: NONE, SNAPPY, GZIP, ZSTD, LZ4_RAW, BROTLI; orc: NONE, SNAPPY, ZLIB, ZSTD, LZ4."),
        p("encrypt", "boolean", false, Some("false"), "Server-side encryption AES256."),
        p("generateEmptyFile", "boolean", false, Some("true"), "A task with no records still writes an object (header only or empty)."),
        p("byteEncoding", "string", false, None, "base64: bytes columns as Base64; otherwise decoded as UTF-8."),
        p("datasource", "string", false, None, "A named data source, resolved by the engine into endpoint and credentials."),
        p("signVersion", "string", false, Some("\"v1\""), "v1 or v4 request signatures."),
        p("region", "string", false, None, "Region for V4 signatures (default: from an oss-<region>.aliyuncs.com endpoint)."),
        p("pathStyle", "boolean", false, None, "Force path-style (true) or virtual-hosted (false) addressing."),
        p("partsInFlight", "integer", false, Some("4"), "Parts each task uploads at once."),
        p("requestTimeoutSecs", "integer", false, Some("300"), "Timeout of one HTTP request."),
        p("maxRetries", "integer", false, Some("8"), "Retries of a request that failed temporarily (5xx, throttling, timeouts, dropped connections)."),
        p("follow", "boolean", false, Some("false"), "Set by the engine in follow mode (run --follow); not for job files."),
    ];
    list.extend(crate::partition::parameters());
    list
}

/// Keys DataX documents that have no effect on text and CSV here; accepted with a warning.
const IGNORED: &[&str] = &[
    "cname",
    "column",
    "proxyHost",
    "proxyPort",
    "proxyUsername",
    "proxyPassword",
    "proxyDomain",
    "proxyWorkstation",
];

fn err(message: impl Into<String>) -> PluginError {
    PluginError::config(format!("writer-oss: {}", message.into()))
}

fn string(map: &Map<String, Json>, key: &str) -> Result<Option<String>, PluginError> {
    match map.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(Json::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(err(format!(
            "{key} must be a string, got {}",
            protocol::jobfile::json_kind(other)
        ))),
    }
}

fn required(map: &Map<String, Json>, key: &str) -> Result<String, PluginError> {
    match string(map, key)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(err(format!("{key} is required"))),
    }
}

fn boolean(map: &Map<String, Json>, key: &str, default: bool) -> Result<bool, PluginError> {
    match map.get(key) {
        None | Some(Json::Null) => Ok(default),
        Some(Json::Bool(b)) => Ok(*b),
        Some(Json::String(s)) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        Some(Json::String(s)) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(err(format!("{key} must be true or false, got {other}"))),
    }
}

fn integer(
    map: &Map<String, Json>,
    key: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, PluginError> {
    let value = match map.get(key) {
        None | Some(Json::Null) => return Ok(default),
        Some(Json::Number(n)) => n.as_u64(),
        Some(Json::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    };
    match value {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(err(format!(
            "{key} must be an integer from {min} to {max}, got {}",
            map.get(key).map(Json::to_string).unwrap_or_default()
        ))),
    }
}

impl WriterConfig {
    /// Validates the parameter; `job_zone` is the job's time zone (may be empty).
    pub fn from_parameter(parameter: &Json, job_zone: &str) -> Result<Self, PluginError> {
        let map = parameter
            .as_object()
            .ok_or_else(|| err("the parameter must be a JSON object"))?;
        let known: Vec<&str> = parameters().iter().map(|p| p.name).collect();
        let file_format_text = string(map, "fileFormat")?.unwrap_or_default();
        let columnar_format = match file_format_text.trim().to_ascii_lowercase().as_str() {
            "parquet" => Some(columnar::Format::Parquet),
            "orc" => Some(columnar::Format::Orc),
            _ => None,
        };
        for key in map.keys() {
            if IGNORED.contains(&key.as_str()) && !(columnar_format.is_some() && key == "column") {
                tracing::warn!("writer-oss: {key} has no effect on text and csv output; ignored");
            } else if !known.contains(&key.as_str()) && !unsupported(key) {
                tracing::warn!(
                    "writer-oss: unknown parameter {key:?} ignored (see `writer-oss spec`)"
                );
            }
        }
        let unsupported = |key: &str| {
            unsupported(key)
                && !(columnar_format == Some(columnar::Format::Parquet) && key == "parquetSchema")
        };
        for key in map.keys().filter(|k| unsupported(k)) {
            let empty = match &map[key] {
                Json::Null => true,
                Json::Array(a) => a.is_empty(),
                Json::String(s) => s.trim().is_empty(),
                Json::Object(o) => o.is_empty(),
                _ => false,
            };
            if !empty {
                return Err(err(format!("{key} is not supported by this writer")));
            }
        }
        if map.contains_key("datasource") && string(map, "endpoint")?.is_none() {
            return Err(err(format!(
                "datasource {} was not resolved: run the job through the engine (which resolves \
                 named data sources), or give endpoint, accessId and accessKey",
                map.get("datasource")
                    .map(Json::to_string)
                    .unwrap_or_default()
            )));
        }
        let endpoint = required(map, "endpoint")?;
        let access_id = string(map, "accessId")?;
        let access_key = string(map, "accessKey")?;
        let bucket = required(map, "bucket")?.trim().to_owned();
        let security_token = string(map, "securityToken")?.filter(|s| !s.trim().is_empty());
        let format = match file_format_text.trim() {
            _ if columnar_format.is_some() => FileFormat::Text,
            "" | "text" => FileFormat::Text,
            "csv" => FileFormat::Csv,
            other => {
                return Err(err(format!(
                    "fileFormat {other:?} is not supported: use text, csv, parquet or orc (sql is not implemented)"
                )))
            }
        };
        let single_object = boolean(map, "writeSingleObject", false)?;
        let object = required(map, "object")?;
        if object.starts_with('/') || object.starts_with('\\') {
            return Err(err(format!(
                "object {object:?} must not start with / or \\"
            )));
        }
        let compress_text = string(map, "compress")?.unwrap_or_default();
        if let (Some(f), true) = (columnar_format, single_object) {
            return Err(err(format!(
                "writeSingleObject cannot be used with fileFormat {}: every task writes a whole file",
                f.name()
            )));
        }
        let compress = match compress_text.trim().to_ascii_lowercase().as_str() {
            _ if columnar_format.is_some() => Compress::None,
            "" | "none" => Compress::None,
            "gzip" => Compress::Gzip,
            "zstd" => Compress::Zstd,
            other => {
                return Err(err(format!(
                    "compress {other:?} is not supported: use gzip or zstd"
                )))
            }
        };
        if single_object && compress != Compress::None {
            return Err(err("compress cannot be combined with writeSingleObject"));
        }
        let write_mode = match required(map, "writeMode")?.trim() {
            "truncate" => WriteMode::Truncate,
            "append" => WriteMode::Append,
            "nonConflict" => WriteMode::NonConflict,
            other => {
                return Err(err(format!(
                    "writeMode {other:?} is not valid: use truncate, append or nonConflict"
                )))
            }
        };
        if single_object && write_mode == WriteMode::Append {
            return Err(err(
                "writeMode append cannot be used with writeSingleObject (as in DataX)",
            ));
        }
        let encoding = string(map, "encoding")?.unwrap_or_default();
        let encoding = if encoding.trim().is_empty() {
            "UTF-8".to_owned()
        } else {
            encoding
        };
        let encoder = TextEncoder::for_label(&encoding).ok_or_else(|| {
            err(format!("encoding {encoding:?} is unknown or cannot be written (use UTF-8, GBK, GB18030, …)"))
        })?;
        let field_delimiter = string(map, "fieldDelimiter")?.unwrap_or_else(|| ",".into());
        let line_delimiter = string(map, "lineDelimiter")?.unwrap_or_else(|| "\n".into());
        if format == FileFormat::Csv {
            if field_delimiter.chars().count() != 1 {
                return Err(err(format!(
                    "fieldDelimiter {field_delimiter:?} is invalid for csv: it must be exactly one character"
                )));
            }
            if field_delimiter == "\"" || field_delimiter == "\r" || field_delimiter == "\n" {
                return Err(err(format!(
                    "fieldDelimiter {field_delimiter:?} is invalid for csv: it cannot be a quote or a line break"
                )));
            }
            if !matches!(line_delimiter.as_str(), "\n" | "\r\n" | "\r") {
                return Err(err(format!(
                    "lineDelimiter {line_delimiter:?} is invalid for csv: use \\n, \\r\\n or \\r"
                )));
            }
        }
        if line_delimiter.is_empty() {
            return Err(err("lineDelimiter must not be empty"));
        }
        let zone_text = string(map, "timeZone")?
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| job_zone.to_owned());
        let zone = Zone::parse(&zone_text).map_err(|e| err(format!("timeZone: {e}")))?;
        let date_text = string(map, "dateFormat")?
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "yyyy-MM-dd HH:mm:ss".into());
        let date_format =
            DatePattern::new(&date_text).map_err(|e| err(format!("dateFormat: {e}")))?;
        let header = match map.get("header") {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Array(items)) => items
                .iter()
                .map(|h| match h {
                    Json::String(s) => Ok(s.clone()),
                    other => Err(err(format!("header entries must be strings, got {other}"))),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(err(format!(
                    "header must be a list of strings, got {other}"
                )))
            }
        };
        let block_mib = integer(map, "blockSizeInMB", 10, 1, 5120)?;
        let max_file_mib = integer(map, "maxFileSize", 100_000, 1, u64::MAX / MIB)?;
        let max_parts_per_object = (max_file_mib / block_mib).clamp(1, 10_000) as u32;
        let suffix = string(map, "suffix")?.unwrap_or_default().trim().to_owned();
        let suffix = if suffix.is_empty() || suffix.starts_with('.') {
            suffix
        } else {
            format!(".{suffix}")
        };
        let sign_version = match string(map, "signVersion")?
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "v1" | "1" => SignVersion::V1,
            "v4" | "4" => SignVersion::V4,
            other => {
                return Err(err(format!(
                    "signVersion {other:?} is not valid: use v1 or v4"
                )))
            }
        };
        let (_, host_port) = client::normalize_endpoint(&endpoint).map_err(err)?;
        // Permanent local mistakes fail here instead of being retried as network errors.
        protocol::connection::check_authority(&host_port)
            .map_err(|e| err(format!("endpoint: {e}")))?;
        let keys = [
            ("accessId", access_id.as_ref()),
            ("accessKey", access_key.as_ref()),
            ("securityToken", security_token.as_ref()),
        ];
        for (key, value) in keys {
            if let Some(v) = value {
                protocol::connection::check_header_value(v)
                    .map_err(|e| err(format!("{key}: {e}")))?;
            }
        }
        let credentials = credentials::Source::from_parameter(map)
            .and_then(|source| credentials::Provider::new(&source))
            .map_err(|e| err(e.to_string()))?;
        let region = match string(map, "region")?.filter(|s| !s.trim().is_empty()) {
            Some(r) => r.trim().trim_start_matches("oss-").to_owned(),
            None => match client::region_of_endpoint(&host_port) {
                Some(r) => r,
                None if sign_version == SignVersion::V4 => {
                    return Err(err(
                        "region is required for signVersion v4 with this endpoint",
                    ))
                }
                None => String::new(),
            },
        };
        let path_style = match map.get("pathStyle") {
            None | Some(Json::Null) => None,
            Some(_) => Some(boolean(map, "pathStyle", false)?),
        };
        let byte_encoding = string(map, "byteEncoding")?.unwrap_or_default();
        let null_format = string(map, "nullFormat")?.unwrap_or_else(|| "null".into());
        let follow = crate::follow::following(map)?;
        if follow {
            crate::follow::check(map, write_mode, single_object)?;
        }
        let partitioning =
            partition::from_parameter(map, &object, zone, job_zone, single_object, write_mode)?;
        // Without time fields, only `$$` escapes are left.
        let object = match partitioning {
            None => object.replace("$$", "$"),
            Some(_) => object,
        };
        let columnar = match columnar_format {
            Some(f) => Some(ColumnarConfig::from_parameter(
                map,
                f,
                &compress_text,
                zone,
                date_format.clone(),
            )?),
            None => None,
        };
        Ok(Self {
            client: ClientOptions {
                endpoint,
                credentials,
                bucket,
                sign_version,
                region,
                path_style,
                request_timeout: Duration::from_secs(integer(
                    map,
                    "requestTimeoutSecs",
                    300,
                    1,
                    86_400,
                )?),
                max_retries: integer(map, "maxRetries", 8, 0, 100)? as u32,
            },
            object,
            write_mode,
            record_format: RecordFormat {
                format,
                field_delimiter,
                line_delimiter,
                null_format,
                date_format,
                zone,
                bytes_base64: byte_encoding.trim().eq_ignore_ascii_case("base64"),
            },
            encoder,
            header,
            part_size_bytes: (block_mib * MIB) as usize,
            max_parts_per_object,
            suffix,
            single_object,
            compress,
            encrypt: boolean(map, "encrypt", false)?,
            generate_empty_file: boolean(map, "generateEmptyFile", true)? && !follow,
            parts_in_flight: integer(map, "partsInFlight", 4, 1, 64)? as usize,
            partitioning,
            columnar,
            max_file_bytes: max_file_mib.saturating_mul(MIB),
            follow,
        })
    }

    /// The Content-Type objects are created with.
    pub fn content_type(&self) -> &'static str {
        if let Some(c) = &self.columnar {
            return c.content_type();
        }
        match (self.compress, self.record_format.format) {
            (Compress::Gzip, _) => "application/gzip",
            (Compress::Zstd, _) => "application/zstd",
            (Compress::None, FileFormat::Csv) => "text/csv",
            (Compress::None, FileFormat::Text) => "text/plain",
        }
    }
}

/// Keys DataX has that this writer does not implement (an error when set).
fn unsupported(key: &str) -> bool {
    matches!(
        key,
        "partition"
            | "csvWriterConfig"
            | "syncMode"
            | "truncateMode"
            | "table"
            | "quoteChar"
            | "commitSize"
            | "parquetSchema"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Json {
        json!({"endpoint": "127.0.0.1:1", "accessId": "id", "accessKey": "secret",
               "bucket": "b-1", "object": "out/x", "writeMode": "truncate"})
    }

    fn with(key: &str, value: Json) -> Json {
        let mut p = base();
        p[key] = value;
        p
    }

    fn error(p: Json) -> String {
        let e = WriterConfig::from_parameter(&p, "").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        e.message
    }

    #[test]
    fn defaults_follow_datax() {
        let c = WriterConfig::from_parameter(&base(), "").unwrap();
        assert_eq!(c.record_format.format, FileFormat::Text);
        assert_eq!(c.record_format.null_format, "null");
        assert_eq!(c.part_size_bytes, 10 * 1024 * 1024);
        assert_eq!(c.max_parts_per_object, 10_000);
        assert_eq!(c.encoder.name(), "UTF-8");
        assert!(c.generate_empty_file);
        assert!(!format!("{c:?}").contains("secret"));
        let c = WriterConfig::from_parameter(&with("suffix", json!("csv")), "").unwrap();
        assert_eq!(c.suffix, ".csv");
        let c = WriterConfig::from_parameter(&with("suffix", json!(".csv")), "").unwrap();
        assert_eq!(c.suffix, ".csv");
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let mut p = base();
        p.as_object_mut().unwrap().remove("bucket");
        assert!(error(p).contains("bucket is required"));
        assert!(error(with("encoding", json!("no-such"))).contains("encoding"));
        let mut p = with("fileFormat", json!("csv"));
        p["fieldDelimiter"] = json!(",,");
        assert!(error(p).contains("fieldDelimiter"));
        assert!(error(with("fileFormat", json!("sql"))).contains("fileFormat \"sql\""));
        assert!(error(with("fileFormat", json!("CSV"))).contains("fileFormat"));
        assert!(error(with("writeMode", json!("overwrite"))).contains("writeMode"));
        assert!(error(with("compress", json!("bzip2"))).contains("compress"));
        assert!(error(with("partition", json!(["a"]))).contains("partition"));
        let mut p = base();
        p.as_object_mut().unwrap().remove("endpoint");
        p["datasource"] = json!("my_oss");
        assert!(error(p).contains("datasource \"my_oss\" was not resolved"));
        let mut p = with("writeSingleObject", json!(true));
        p["writeMode"] = json!("append");
        assert!(error(p).contains("append"));
    }

    #[test]
    fn permanent_local_mistakes_fail_naming_the_parameter() {
        for (key, value, needle) in [
            ("endpoint", "http://[::1", "endpoint: the IPv6 address"),
            ("endpoint", "http://host:70000", "endpoint: the port"),
            (
                "securityToken",
                "a\nSECRET",
                "securityToken: it contains a newline",
            ),
            (
                "accessId",
                "id\r",
                "accessId: it contains a carriage return",
            ),
        ] {
            let message = error(with(key, json!(value)));
            assert!(
                message.contains(needle) && !message.contains("SECRET"),
                "{message}"
            );
        }
    }
}
