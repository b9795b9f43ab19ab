//! ORC files through orc-rust's Arrow writer, for the types it writes (see
//! `schema::orc_columns`). Records are gathered into Arrow batches of [`BATCH_ROWS`];
//! orc-rust writes a stripe whenever its encoders hold more than `rowGroupSizeInMB`.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Float32Builder, Float64Builder, Int16Builder,
    Int32Builder, Int64Builder, Int8Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use orc_rust::arrow_writer::{ArrowWriter, ArrowWriterBuilder};
use orc_rust::compression::CompressionType;
use protocol::runtime::PluginError;
use protocol::value::Value;

use super::schema::{Target, Unit};
use super::value::{convert, Cell, Context};
use super::{guarded, width_error, Codec, Column, ColumnarConfig, Sink};

/// Rows per Arrow batch handed to the ORC writer.
const BATCH_ROWS: usize = 4096;

fn data_type(target: Target) -> Result<DataType, PluginError> {
    Ok(match target {
        Target::Bool => DataType::Boolean,
        Target::Int32 { bits: 8 } => DataType::Int8,
        Target::Int32 { bits: 16 } => DataType::Int16,
        Target::Int32 { .. } => DataType::Int32,
        Target::Int64 => DataType::Int64,
        Target::Float32 => DataType::Float32,
        Target::Float64 => DataType::Float64,
        Target::Utf8 => DataType::Utf8,
        Target::Binary => DataType::Binary,
        Target::Date => DataType::Date32,
        Target::Timestamp {
            unit: Unit::Millis,
            utc: true,
        } => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        other => {
            return Err(PluginError::config(format!(
                "writer-oss: fileFormat orc cannot write {}",
                super::value::describe(other)
            )))
        }
    })
}

/// The Arrow schema of an ORC file with these columns.
pub fn arrow_schema(columns: &[Column]) -> Result<SchemaRef, PluginError> {
    let fields = columns
        .iter()
        .map(|c| Ok(Field::new(&c.name, data_type(c.target)?, true)))
        .collect::<Result<Vec<_>, PluginError>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

fn compression(codec: Codec) -> Option<CompressionType> {
    match codec {
        Codec::Snappy => Some(CompressionType::Snappy),
        Codec::Zlib | Codec::Gzip => Some(CompressionType::Zlib),
        Codec::Zstd => Some(CompressionType::Zstd),
        Codec::Lz4 | Codec::Lz4Raw => Some(CompressionType::Lz4),
        Codec::None | Codec::Brotli => None,
    }
}

/// An ORC file being written.
pub struct OrcEncoder {
    pub(super) sink: Sink,
    writer: Option<ArrowWriter<Sink>>,
    schema: SchemaRef,
    columns: Vec<Column>,
    /// Converted cells of the current batch, column by column.
    cells: Vec<Vec<Cell>>,
    row: Vec<Cell>,
    zone: protocol::timefmt::Zone,
    date_format: protocol::timefmt::DatePattern,
}

impl OrcEncoder {
    pub fn new(config: &ColumnarConfig) -> Result<Self, PluginError> {
        let schema = arrow_schema(&config.columns)?;
        let sink = Sink::default();
        let mut builder = ArrowWriterBuilder::new(sink.clone(), schema.clone())
            .with_stripe_byte_size(config.row_group_bytes);
        if let Some(c) = compression(config.codec) {
            builder = builder.with_compression(c);
        }
        let writer = guarded("starting an orc file", || {
            builder.try_build().map_err(|e| e.to_string())
        })?;
        Ok(Self {
            sink,
            writer: Some(writer),
            schema,
            columns: config.columns.clone(),
            cells: config
                .columns
                .iter()
                .map(|_| Vec::with_capacity(BATCH_ROWS))
                .collect(),
            row: Vec::with_capacity(config.columns.len()),
            zone: config.zone,
            date_format: config.date_format.clone(),
        })
    }

    pub fn push(&mut self, record: &[Value]) -> Result<Option<String>, PluginError> {
        if record.len() != self.columns.len() {
            return Err(width_error(&self.columns, record));
        }
        let ctx = Context {
            zone: &self.zone,
            date_format: &self.date_format,
        };
        self.row.clear();
        for (value, column) in record.iter().zip(&self.columns) {
            match convert(value, column.target, &ctx) {
                // ORC-763: the second before the epoch has no exact ORC encoding below
                // whole milliseconds -999..=-1 (orc-rust refuses them for the whole batch).
                Ok(Cell::I64(v)) if matches!(column.target, Target::Timestamp { .. }) && (-999..0).contains(&v) => {
                    return Ok(Some(format!(
                        "column {:?}: ORC cannot store an instant in the last second before 1970-01-01 (ORC-763)",
                        column.name
                    )))
                }
                Ok(cell) => self.row.push(cell),
                Err(reason) => return Ok(Some(format!("column {:?}: {reason}", column.name))),
            }
        }
        for (cell, cells) in self.row.drain(..).zip(&mut self.cells) {
            cells.push(cell);
        }
        if self.cells.first().map_or(0, Vec::len) >= BATCH_ROWS {
            self.write_batch()?;
        }
        Ok(None)
    }

    fn write_batch(&mut self) -> Result<(), PluginError> {
        let rows = self.cells.first().map_or(0, Vec::len);
        if rows == 0 {
            return Ok(());
        }
        let arrays = self
            .cells
            .iter_mut()
            .zip(&self.columns)
            .map(|(cells, column)| build(column.target, std::mem::take(cells)))
            .collect::<Vec<ArrayRef>>();
        for cells in &mut self.cells {
            cells.reserve(BATCH_ROWS);
        }
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| PluginError::internal(format!("writer-oss: orc batch: {e}")))?;
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| PluginError::internal("writer-oss: the orc file is closed"))?;
        guarded("writing orc rows", || {
            writer.write(&batch).map_err(|e| e.to_string())
        })
    }

    pub fn finish(mut self) -> Result<Vec<u8>, PluginError> {
        self.write_batch()?;
        if let Some(writer) = self.writer.take() {
            guarded("closing an orc file", || {
                writer.close().map_err(|e| e.to_string())
            })?;
        }
        Ok(self.sink.take())
    }
}

/// An Arrow array of one column's cells (each of the column's kind, or null).
fn build(target: Target, cells: Vec<Cell>) -> ArrayRef {
    macro_rules! column {
        ($builder:ty, $variant:ident, $conv:expr) => {{
            let mut b = <$builder>::with_capacity(cells.len());
            for cell in cells {
                match cell {
                    Cell::$variant(v) => b.append_value($conv(v)),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    macro_rules! bytes {
        ($builder:ty, $conv:expr) => {{
            let mut b = <$builder>::with_capacity(cells.len(), 0);
            for cell in cells {
                match cell {
                    Cell::Bytes(v) => b.append_value($conv(&v)),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    match target {
        Target::Bool => column!(BooleanBuilder, Bool, |v| v),
        // Range-checked by `convert`.
        Target::Int32 { bits: 8 } => column!(Int8Builder, I32, |v: i32| v as i8),
        Target::Int32 { bits: 16 } => column!(Int16Builder, I32, |v: i32| v as i16),
        Target::Int32 { .. } => column!(Int32Builder, I32, |v| v),
        Target::Int64 => column!(Int64Builder, I64, |v| v),
        Target::Date => column!(Date32Builder, I32, |v| v),
        Target::Float32 => column!(Float32Builder, F32, |v| v),
        Target::Float64 => column!(Float64Builder, F64, |v| v),
        Target::Timestamp { .. } => {
            let mut b =
                TimestampMillisecondBuilder::with_capacity(cells.len()).with_timezone("UTC");
            for cell in cells {
                match cell {
                    Cell::I64(v) => b.append_value(v),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }
        // Valid UTF-8: checked by `convert`.
        Target::Utf8 => bytes!(StringBuilder, utf8),
        _ => bytes!(BinaryBuilder, raw),
    }
}

fn utf8(v: &[u8]) -> &str {
    std::str::from_utf8(v).unwrap_or_default()
}

fn raw(v: &[u8]) -> &[u8] {
    v
}
