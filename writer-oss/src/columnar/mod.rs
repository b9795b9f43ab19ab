//! Parquet and ORC objects (`fileFormat: parquet | orc`): the parameters DataX's osswriter
//! takes for them (`column`, `parquetSchema`, `compress`), the mapping of record values
//! to each column's type ([`value`]), and the encoders the task writer feeds record by
//! record ([`Encoder`]). An encoder buffers at most one row group (Parquet) or stripe
//! (ORC) of `rowGroupSizeInMB` before its bytes move to the task's part uploads.

mod orc;
mod parquet;
mod schema;
mod value;

use std::io::Write;
use std::sync::{Arc, Mutex};

use protocol::runtime::PluginError;
use protocol::timefmt::{DatePattern, Zone};
use protocol::value::Value;
use serde_json::{Map, Value as Json};

pub use schema::{ColumnType, Target};

/// `parquet` or `orc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Orc,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Orc => "orc",
        }
    }
}

/// The codec inside the file (`compress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    None,
    Snappy,
    Gzip,
    Zlib,
    Zstd,
    Lz4Raw,
    Lz4,
    Brotli,
}

/// One column of the file: its name, where values go, and whether nulls are allowed.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub target: Target,
    pub nullable: bool,
}

/// A checked columnar configuration.
#[derive(Clone, Debug)]
pub struct ColumnarConfig {
    pub format: Format,
    pub columns: Vec<Column>,
    /// Parquet only: the message type written into every file.
    pub parquet_schema: Option<::parquet::schema::types::TypePtr>,
    pub codec: Codec,
    /// Bytes of buffered values after which a row group (stripe) is written.
    pub row_group_bytes: usize,
    /// The job's zone: local dates and non-UTC timestamps.
    pub zone: Zone,
    /// How a date value becomes text in a string column.
    pub date_format: DatePattern,
}

const MIB: u64 = 1024 * 1024;

fn err(message: impl Into<String>) -> PluginError {
    PluginError::config(format!("writer-oss: {}", message.into()))
}

fn codec_of(format: Format, text: &str) -> Result<Codec, PluginError> {
    let upper = text.trim().to_ascii_uppercase();
    let codec = match (format, upper.as_str()) {
        (_, "" | "NONE" | "UNCOMPRESSED") => Codec::None,
        (_, "SNAPPY") => Codec::Snappy,
        (_, "ZSTD") => Codec::Zstd,
        (Format::Parquet, "GZIP") => Codec::Gzip,
        (Format::Parquet, "LZ4_RAW") => Codec::Lz4Raw,
        (Format::Parquet, "BROTLI") => Codec::Brotli,
        (Format::Orc, "ZLIB") => Codec::Zlib,
        (Format::Orc, "LZ4") => Codec::Lz4,
        _ => {
            let choices = match format {
                Format::Parquet => "NONE, SNAPPY, GZIP, ZSTD, LZ4_RAW or BROTLI",
                Format::Orc => "NONE, SNAPPY, ZLIB, ZSTD or LZ4",
            };
            return Err(err(format!(
                "compress {text:?} is not a {} codec: use {choices}",
                format.name()
            )));
        }
    };
    Ok(codec)
}

impl ColumnarConfig {
    /// Reads the columnar parameters of `map` for `format`.
    pub fn from_parameter(
        map: &Map<String, Json>,
        format: Format,
        compress: &str,
        zone: Zone,
        date_format: DatePattern,
    ) -> Result<Self, PluginError> {
        let codec = codec_of(format, compress)?;
        let declared = match map.get("column") {
            None | Some(Json::Null) => None,
            Some(Json::Array(items)) if items.is_empty() => None,
            Some(Json::Array(items)) => Some(schema::parse_columns(items)?),
            Some(other) => {
                return Err(err(format!(
                    "column must be a list of {{\"name\", \"type\"}} objects, got {}",
                    protocol::jobfile::json_kind(other)
                )))
            }
        };
        let schema_text = match map.get("parquetSchema") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) if s.trim().is_empty() => None,
            Some(Json::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(err(format!(
                    "parquetSchema must be a string (a Parquet message type), got {}",
                    protocol::jobfile::json_kind(other)
                )))
            }
        };
        let (columns, parquet_schema) = match (format, schema_text, declared) {
            (Format::Orc, Some(_), _) => {
                return Err(err(
                    "parquetSchema applies to fileFormat parquet only; describe orc columns with column",
                ))
            }
            (_, None, None) => {
                return Err(err(format!(
                    "column is required for fileFormat {} (a list of {{\"name\", \"type\"}}){}",
                    format.name(),
                    if format == Format::Parquet {
                        ", or give parquetSchema"
                    } else {
                        ""
                    }
                )))
            }
            (Format::Parquet, Some(text), declared) => {
                let (columns, message) = schema::parse_parquet_schema(&text)?;
                if let Some(declared) = declared {
                    if declared.len() != columns.len() {
                        return Err(err(format!(
                            "column lists {} columns but parquetSchema has {}",
                            declared.len(),
                            columns.len()
                        )));
                    }
                }
                (columns, Some(message))
            }
            (Format::Parquet, None, Some(declared)) => {
                let message = schema::derive_parquet_schema(&declared)?;
                let (columns, message) = schema::columns_of_message(message)?;
                (columns, Some(message))
            }
            (Format::Orc, None, Some(declared)) => (schema::orc_columns(&declared)?, None),
        };
        let row_group_mib = match map.get("rowGroupSizeInMB") {
            None | Some(Json::Null) => 64,
            Some(v) => match v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()) {
                Some(n) if (1..=1024).contains(&n) => n,
                _ => {
                    return Err(err(format!(
                        "rowGroupSizeInMB must be an integer from 1 to 1024, got {v}"
                    )))
                }
            },
        };
        Ok(Self {
            format,
            columns,
            parquet_schema,
            codec,
            row_group_bytes: (row_group_mib * MIB) as usize,
            zone,
            date_format,
        })
    }

    /// The Content-Type objects are created with.
    pub fn content_type(&self) -> &'static str {
        match self.format {
            Format::Parquet => "application/vnd.apache.parquet",
            Format::Orc => "application/vnd.apache.orc",
        }
    }
}

/// Bytes the encoder wrote, shared with the library writer that owns the `Write` end.
#[derive(Clone, Default)]
pub struct Sink(Arc<Mutex<Vec<u8>>>);

impl Sink {
    fn len(&self) -> usize {
        self.0.lock().map_or(0, |v| v.len())
    }

    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut v = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("the output buffer was poisoned"))?;
        v.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs a library call, turning a panic inside it into an internal error.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, PluginError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(PluginError::internal(format!("writer-oss: {what}: {e}"))),
        Err(_) => Err(PluginError::internal(format!(
            "writer-oss: {what}: the encoder library panicked"
        ))),
    }
}

/// One file being encoded.
pub enum Encoder {
    Parquet(Box<parquet::ParquetEncoder>),
    Orc(Box<orc::OrcEncoder>),
}

impl Encoder {
    pub fn new(config: &ColumnarConfig) -> Result<Self, PluginError> {
        Ok(match config.format {
            Format::Parquet => Encoder::Parquet(Box::new(parquet::ParquetEncoder::new(config)?)),
            Format::Orc => Encoder::Orc(Box::new(orc::OrcEncoder::new(config)?)),
        })
    }

    /// Adds one record. `Ok(Some(reason))`: the record is dirty and was not added.
    /// A record of the wrong width is a configuration error naming `column`.
    pub fn push(&mut self, record: &[Value]) -> Result<Option<String>, PluginError> {
        match self {
            Encoder::Parquet(e) => e.push(record),
            Encoder::Orc(e) => e.push(record),
        }
    }

    /// Encoded bytes ready to upload.
    pub fn buffered(&self) -> usize {
        match self {
            Encoder::Parquet(e) => e.sink.len(),
            Encoder::Orc(e) => e.sink.len(),
        }
    }

    pub fn take(&mut self) -> Vec<u8> {
        match self {
            Encoder::Parquet(e) => e.sink.take(),
            Encoder::Orc(e) => e.sink.take(),
        }
    }

    /// Writes the last row group and the footer; returns what is left to upload.
    pub fn finish(self) -> Result<Vec<u8>, PluginError> {
        match self {
            Encoder::Parquet(e) => e.finish(),
            Encoder::Orc(e) => e.finish(),
        }
    }
}

/// The error for a record whose width differs from the columns.
fn width_error(columns: &[Column], record: &[Value]) -> PluginError {
    err(format!(
        "column (or parquetSchema) describes {} columns but a record has {} values: make \
         column list exactly the reader's columns, in order",
        columns.len(),
        record.len()
    ))
}
