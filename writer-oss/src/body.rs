//! An object's bytes before they are cut into parts: text (UTF-8 lines formatted straight
//! into the part), bytes in another charset, a compressor's output, or a Parquet/ORC
//! encoder.

use std::io::Write as _;

use protocol::runtime::PluginError;

use crate::columnar;
use crate::config::{Compress, WriterConfig};
use crate::part_buffers::PartBuffers;

/// Room beyond the part size in a part's buffer: the record that crosses the size.
const PART_SLACK: usize = 256 * 1024;

/// An object's bytes before they are cut into parts.
pub(crate) enum Body {
    /// UTF-8 text, uncompressed: lines are formatted straight into the part (UTF-8
    /// encoding is the text's own bytes).
    Text(String),
    /// Uncompressed bytes in another charset.
    Plain(Vec<u8>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    /// Parquet or ORC: records go to the encoder (see [`columnar`]).
    Columnar(columnar::Encoder),
}

impl Body {
    pub(crate) fn new(config: &WriterConfig, buffers: &PartBuffers) -> Result<Self, PluginError> {
        if let Some(c) = &config.columnar {
            return Ok(Body::Columnar(columnar::Encoder::new(c)?));
        }
        Ok(match config.compress {
            // A part's room up front: the buffer is not regrown (and copied) as it fills.
            Compress::None => {
                let buffer = buffers.take(part_room(config));
                if config.encoder.is_utf8() {
                    Body::Text(text_buffer(buffer))
                } else {
                    Body::Plain(buffer)
                }
            }
            Compress::Gzip => Body::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::default(),
            )),
            Compress::Zstd => Body::Zstd(
                zstd::stream::write::Encoder::new(Vec::new(), 3)
                    .map_err(|e| PluginError::internal(format!("zstd: {e}")))?,
            ),
        })
    }

    /// Appends `text` in the configured charset; `encoded` is scratch.
    pub(crate) fn write_text(
        &mut self,
        text: &str,
        config: &WriterConfig,
        encoded: &mut Vec<u8>,
    ) -> Result<(), PluginError> {
        match self {
            Body::Text(s) => s.push_str(text),
            Body::Plain(v) => config.encoder.encode_into(text, v),
            body => {
                encoded.clear();
                config.encoder.encode_into(text, encoded);
                body.write(encoded)?;
            }
        }
        Ok(())
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        let result = match self {
            Body::Text(_) => Err(std::io::Error::other("bytes into a text part")),
            Body::Plain(v) => {
                v.extend_from_slice(bytes);
                Ok(())
            }
            Body::Gzip(e) => e.write_all(bytes),
            Body::Zstd(e) => e.write_all(bytes),
            Body::Columnar(_) => Err(std::io::Error::other("text into a columnar file")),
        };
        result.map_err(|e| PluginError::internal(format!("compressing: {e}")))
    }

    /// Output bytes ready to upload.
    pub(crate) fn buffered(&mut self) -> usize {
        match self {
            Body::Text(s) => s.len(),
            Body::Plain(v) => v.len(),
            Body::Gzip(e) => e.get_ref().len(),
            Body::Zstd(e) => e.get_ref().len(),
            Body::Columnar(e) => e.buffered(),
        }
    }

    /// The output bytes so far; the next part's buffer is a recycled one or gets the
    /// room this one needed.
    pub(crate) fn take(&mut self, buffers: &PartBuffers) -> Vec<u8> {
        match self {
            Body::Text(s) => {
                let next = text_buffer(buffers.take(s.capacity()));
                std::mem::replace(s, next).into_bytes()
            }
            Body::Plain(v) => std::mem::replace(v, buffers.take(v.capacity())),
            Body::Gzip(e) => std::mem::take(e.get_mut()),
            Body::Zstd(e) => std::mem::take(e.get_mut()),
            Body::Columnar(e) => e.take(),
        }
    }

    /// Moves the output bytes ready so far to the end of `out`, keeping the buffer.
    pub(crate) fn drain_into(&mut self, out: &mut Vec<u8>) {
        match self {
            Body::Text(s) => {
                out.extend_from_slice(s.as_bytes());
                s.clear();
            }
            Body::Plain(v) => out.append(v),
            Body::Gzip(e) => out.append(e.get_mut()),
            Body::Zstd(e) => out.append(e.get_mut()),
            Body::Columnar(e) => out.extend(e.take()),
        }
    }

    pub(crate) fn finish(self) -> Result<Vec<u8>, PluginError> {
        let result = match self {
            Body::Text(s) => Ok(s.into_bytes()),
            Body::Plain(v) => Ok(v),
            Body::Gzip(e) => e.finish(),
            Body::Zstd(e) => e.finish(),
            Body::Columnar(e) => return e.finish(),
        };
        result.map_err(|e| PluginError::internal(format!("compressing: {e}")))
    }
}

/// A part's room: the part size and the record that crosses it.
fn part_room(config: &WriterConfig) -> usize {
    config.part_size_bytes.saturating_add(PART_SLACK)
}

/// An empty part buffer as text (empty bytes are valid UTF-8: nothing is checked).
fn text_buffer(mut buffer: Vec<u8>) -> String {
    buffer.clear();
    String::from_utf8(buffer).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use protocol::value::Value;

    fn config(extra: serde_json::Value) -> WriterConfig {
        let mut p = serde_json::json!({"endpoint": "127.0.0.1:1", "accessId": "id",
            "accessKey": "secret", "bucket": "b-1", "object": "out/x",
            "writeMode": "truncate", "fileFormat": "csv"});
        for (k, v) in extra.as_object().into_iter().flatten() {
            p[k] = v.clone();
        }
        WriterConfig::from_parameter(&p, "").unwrap()
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            "[a-z,;\"\r\n #\t é测]{0,40}".prop_map(Value::String),
            any::<i64>().prop_map(Value::Long),
            any::<f64>().prop_map(Value::Double),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
        ]
    }

    proptest! {
        /// Lines formatted straight into a text part are the bytes of the general path
        /// (a line formatted on its own, then encoded into the part), part after part,
        /// recycled buffers included.
        #[test]
        fn text_parts_equal_encoded_lines(
            records in proptest::collection::vec(proptest::collection::vec(value(), 0..5), 0..40),
            cut_every in 1usize..10,
            delimiter in proptest::sample::select(vec![",", ";", "|", "-"]),
        ) {
            let config = config(serde_json::json!({"fieldDelimiter": delimiter}));
            let buffers = PartBuffers::new(2, 0);
            let mut text = Body::new(&config, &buffers).unwrap();
            prop_assert!(matches!(text, Body::Text(_)));
            let mut general = Body::Plain(Vec::new());
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            let (mut line, mut scratch, mut encoded) = (String::new(), String::new(), Vec::new());
            for (i, record) in records.iter().enumerate() {
                let Body::Text(part) = &mut text else { unreachable!() };
                config.record_format.write_record(record, part, &mut scratch);
                line.clear();
                config.record_format.write_record(record, &mut line, &mut scratch);
                general.write_text(&line, &config, &mut encoded).unwrap();
                if i % cut_every == 0 {
                    let part = text.take(&buffers);
                    ours.extend_from_slice(&part);
                    buffers.recycle(bytes::Bytes::from(part));
                    theirs.extend(general.take(&buffers));
                }
            }
            ours.extend(text.finish().unwrap());
            theirs.extend(general.finish().unwrap());
            prop_assert_eq!(ours, theirs);
        }
    }
}
