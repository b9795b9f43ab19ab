//! Parquet files through the parquet crate's column writers, so the file's schema is
//! exactly the message type configured (no round trip through an Arrow schema). Values
//! are buffered per column until `rowGroupSizeInMB` of them; then the row group is
//! encoded (pages compressed) into the sink and the buffers are cleared.

use std::sync::Arc;

use parquet::basic::{BrotliLevel, Compression, GzipLevel, ZstdLevel};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::{ByteArray, FixedLenByteArray, Int96};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use protocol::runtime::PluginError;
use protocol::value::Value;

use super::schema::{DecimalStore, Target};
use super::value::{convert, Cell, Context};
use super::{guarded, width_error, Codec, Column, ColumnarConfig, Sink};

/// One column's values of the current row group.
enum Values {
    Bool(Vec<bool>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    I96(Vec<Int96>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bytes(Vec<ByteArray>),
    Fixed(Vec<FixedLenByteArray>),
}

struct Buffer {
    column: Column,
    values: Values,
    /// Definition levels (optional columns): 1 value, 0 null.
    levels: Vec<i16>,
}

impl Buffer {
    fn new(column: &Column) -> Self {
        let values = match column.target {
            Target::Bool => Values::Bool(Vec::new()),
            Target::Int32 { .. } | Target::Date => Values::I32(Vec::new()),
            Target::Int64 | Target::Timestamp { .. } => Values::I64(Vec::new()),
            Target::Int96 => Values::I96(Vec::new()),
            Target::Float32 => Values::F32(Vec::new()),
            Target::Float64 => Values::F64(Vec::new()),
            Target::Utf8 | Target::Binary => Values::Bytes(Vec::new()),
            Target::Fixed(_) => Values::Fixed(Vec::new()),
            Target::Decimal { store, .. } => match store {
                DecimalStore::I32 => Values::I32(Vec::new()),
                DecimalStore::I64 => Values::I64(Vec::new()),
                DecimalStore::Binary => Values::Bytes(Vec::new()),
                DecimalStore::Fixed(_) => Values::Fixed(Vec::new()),
            },
        };
        Self {
            column: column.clone(),
            values,
            levels: Vec::new(),
        }
    }

    /// Appends a converted cell; returns the bytes it adds to the buffer.
    fn push(&mut self, cell: Cell) -> usize {
        if self.column.nullable {
            self.levels.push(i16::from(cell != Cell::Null));
        }
        let store = match self.column.target {
            Target::Decimal { store, .. } => Some(store),
            _ => None,
        };
        match (&mut self.values, cell) {
            (_, Cell::Null) => 2,
            (Values::Bool(v), Cell::Bool(b)) => {
                v.push(b);
                3
            }
            (Values::I32(v), Cell::I32(x)) => {
                v.push(x);
                6
            }
            (Values::I32(v), Cell::Dec(x)) => {
                v.push(x as i32);
                6
            }
            (Values::I64(v), Cell::I64(x)) => {
                v.push(x);
                10
            }
            (Values::I64(v), Cell::Dec(x)) => {
                v.push(x as i64);
                10
            }
            (Values::I96(v), Cell::I96(x)) => {
                let mut i = Int96::new();
                i.set_data(x[0], x[1], x[2]);
                v.push(i);
                14
            }
            (Values::F32(v), Cell::F32(x)) => {
                v.push(x);
                6
            }
            (Values::F64(v), Cell::F64(x)) => {
                v.push(x);
                10
            }
            (Values::Bytes(v), Cell::Bytes(b)) => {
                let n = b.len() + 40;
                v.push(ByteArray::from(b));
                n
            }
            (Values::Bytes(v), Cell::Dec(x)) => {
                let b = decimal_bytes(x, None);
                let n = b.len() + 40;
                v.push(ByteArray::from(b));
                n
            }
            (Values::Fixed(v), Cell::Bytes(b)) => {
                let n = b.len() + 40;
                v.push(FixedLenByteArray::from(b));
                n
            }
            (Values::Fixed(v), Cell::Dec(x)) => {
                let len = match store {
                    Some(DecimalStore::Fixed(n)) => Some(n),
                    _ => None,
                };
                let b = decimal_bytes(x, len);
                let n = b.len() + 40;
                v.push(FixedLenByteArray::from(b));
                n
            }
            // `convert` produces only the cells above for each target.
            _ => 0,
        }
    }

    fn clear(&mut self) {
        self.levels.clear();
        match &mut self.values {
            Values::Bool(v) => v.clear(),
            Values::I32(v) => v.clear(),
            Values::I64(v) => v.clear(),
            Values::I96(v) => v.clear(),
            Values::F32(v) => v.clear(),
            Values::F64(v) => v.clear(),
            Values::Bytes(v) => v.clear(),
            Values::Fixed(v) => v.clear(),
        }
    }

    fn write(&self, writer: &mut ColumnWriter<'_>) -> Result<(), String> {
        let levels = self.column.nullable.then_some(self.levels.as_slice());
        let result = match (writer, &self.values) {
            (ColumnWriter::BoolColumnWriter(w), Values::Bool(v)) => w.write_batch(v, levels, None),
            (ColumnWriter::Int32ColumnWriter(w), Values::I32(v)) => w.write_batch(v, levels, None),
            (ColumnWriter::Int64ColumnWriter(w), Values::I64(v)) => w.write_batch(v, levels, None),
            (ColumnWriter::Int96ColumnWriter(w), Values::I96(v)) => w.write_batch(v, levels, None),
            (ColumnWriter::FloatColumnWriter(w), Values::F32(v)) => w.write_batch(v, levels, None),
            (ColumnWriter::DoubleColumnWriter(w), Values::F64(v)) => w.write_batch(v, levels, None),
            (ColumnWriter::ByteArrayColumnWriter(w), Values::Bytes(v)) => {
                w.write_batch(v, levels, None)
            }
            (ColumnWriter::FixedLenByteArrayColumnWriter(w), Values::Fixed(v)) => {
                w.write_batch(v, levels, None)
            }
            _ => {
                return Err(format!(
                    "column {:?}: the column writer does not match its type",
                    self.column.name
                ))
            }
        };
        result.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Big-endian two's complement of `unscaled`, in `len` bytes or as few as needed.
pub fn decimal_bytes(unscaled: i128, len: Option<usize>) -> Vec<u8> {
    let full = unscaled.to_be_bytes();
    let n = match len {
        Some(n) => n.min(16),
        None => {
            // Drop leading bytes that only repeat the sign.
            let mut skip = 0;
            while skip < 15 {
                let (b, next) = (full[skip], full[skip + 1]);
                let redundant = (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0);
                if !redundant {
                    break;
                }
                skip += 1;
            }
            16 - skip
        }
    };
    let mut out = vec![if unscaled < 0 { 0xff } else { 0 }; len.unwrap_or(n).saturating_sub(n)];
    out.extend_from_slice(&full[16 - n..]);
    out
}

fn compression(codec: Codec) -> Compression {
    match codec {
        Codec::Snappy => Compression::SNAPPY,
        Codec::Gzip => Compression::GZIP(GzipLevel::default()),
        Codec::Zstd => Compression::ZSTD(ZstdLevel::default()),
        Codec::Lz4Raw => Compression::LZ4_RAW,
        Codec::Brotli => Compression::BROTLI(BrotliLevel::default()),
        Codec::None | Codec::Zlib | Codec::Lz4 => Compression::UNCOMPRESSED,
    }
}

/// A Parquet file being written.
pub struct ParquetEncoder {
    pub(super) sink: Sink,
    writer: SerializedFileWriter<Sink>,
    buffers: Vec<Buffer>,
    cells: Vec<Cell>,
    buffered_bytes: usize,
    row_group_bytes: usize,
    zone: protocol::timefmt::Zone,
    date_format: protocol::timefmt::DatePattern,
}

impl ParquetEncoder {
    pub fn new(config: &ColumnarConfig) -> Result<Self, PluginError> {
        let schema = config
            .parquet_schema
            .clone()
            .ok_or_else(|| PluginError::internal("writer-oss: parquet without a schema"))?;
        let properties = WriterProperties::builder()
            .set_compression(compression(config.codec))
            .set_created_by(format!(
                "streamport writer-oss {}",
                env!("CARGO_PKG_VERSION")
            ))
            .build();
        let sink = Sink::default();
        let writer = guarded("starting a parquet file", || {
            SerializedFileWriter::new(sink.clone(), schema, Arc::new(properties))
                .map_err(|e| e.to_string())
        })?;
        Ok(Self {
            sink,
            writer,
            buffers: config.columns.iter().map(Buffer::new).collect(),
            cells: Vec::with_capacity(config.columns.len()),
            buffered_bytes: 0,
            row_group_bytes: config.row_group_bytes,
            zone: config.zone,
            date_format: config.date_format.clone(),
        })
    }

    pub fn push(&mut self, record: &[Value]) -> Result<Option<String>, PluginError> {
        if record.len() != self.buffers.len() {
            let columns: Vec<Column> = self.buffers.iter().map(|b| b.column.clone()).collect();
            return Err(width_error(&columns, record));
        }
        let ctx = Context {
            zone: &self.zone,
            date_format: &self.date_format,
        };
        self.cells.clear();
        for (value, buffer) in record.iter().zip(&self.buffers) {
            let column = &buffer.column;
            match convert(value, column.target, &ctx) {
                Ok(Cell::Null) if !column.nullable => {
                    return Ok(Some(format!(
                        "column {:?}: null in a required column",
                        column.name
                    )))
                }
                Ok(cell) => self.cells.push(cell),
                Err(reason) => return Ok(Some(format!("column {:?}: {reason}", column.name))),
            }
        }
        for (cell, buffer) in self.cells.drain(..).zip(&mut self.buffers) {
            self.buffered_bytes += buffer.push(cell);
        }
        if self.buffered_bytes >= self.row_group_bytes {
            self.flush_row_group()?;
        }
        Ok(None)
    }

    fn flush_row_group(&mut self) -> Result<(), PluginError> {
        if self.buffered_bytes == 0 && self.buffers.iter().all(|b| rows(b) == 0) {
            return Ok(());
        }
        let (writer, buffers) = (&mut self.writer, &self.buffers);
        guarded("writing a parquet row group", || {
            let mut group = writer.next_row_group().map_err(|e| e.to_string())?;
            let mut index = 0;
            while let Some(mut column) = group.next_column().map_err(|e| e.to_string())? {
                let buffer = buffers
                    .get(index)
                    .ok_or_else(|| "more columns in the schema than buffers".to_owned())?;
                buffer.write(column.untyped())?;
                column.close().map_err(|e| e.to_string())?;
                index += 1;
            }
            group.close().map_err(|e| e.to_string())?;
            Ok(())
        })?;
        for b in &mut self.buffers {
            b.clear();
        }
        self.buffered_bytes = 0;
        Ok(())
    }

    pub fn finish(mut self) -> Result<Vec<u8>, PluginError> {
        self.flush_row_group()?;
        let writer = self.writer;
        guarded("closing a parquet file", || {
            writer.into_inner().map(drop).map_err(|e| e.to_string())
        })?;
        Ok(self.sink.take())
    }
}

fn rows(buffer: &Buffer) -> usize {
    if buffer.column.nullable {
        return buffer.levels.len();
    }
    match &buffer.values {
        Values::Bool(v) => v.len(),
        Values::I32(v) => v.len(),
        Values::I64(v) => v.len(),
        Values::I96(v) => v.len(),
        Values::F32(v) => v.len(),
        Values::F64(v) => v.len(),
        Values::Bytes(v) => v.len(),
        Values::Fixed(v) => v.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_bytes_are_minimal_or_sign_extended() {
        assert_eq!(decimal_bytes(1, None), vec![1]);
        assert_eq!(decimal_bytes(-1, None), vec![0xff]);
        assert_eq!(decimal_bytes(128, None), vec![0, 128]);
        assert_eq!(decimal_bytes(-129, None), vec![0xff, 0x7f]);
        assert_eq!(decimal_bytes(-2, Some(4)), vec![0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(
            decimal_bytes(1_234_500, Some(9)),
            vec![0, 0, 0, 0, 0, 0, 0x12, 0xd6, 0x44]
        );
    }
}
