//! MessagePack encoding of records.
//!
//! A batch of records is one MessagePack array of records; a record is an array of
//! values; each value uses the MessagePack type that fits it:
//!
//! | value | MessagePack |
//! |---|---|
//! | null | nil |
//! | bool | bool |
//! | long | int (smallest form) |
//! | double | float 64 |
//! | string | str |
//! | bytes | bin |
//! | decimal | ext type 1, the decimal text in UTF-8 |
//! | date | ext type 2, 8 bytes: epoch milliseconds, big-endian two's complement |
//!
//! Decoding accepts float 32 as a double and any int form that fits in an i64 (a uint
//! above `i64::MAX` is an error). The encoding is written with `rmp`'s primitives, not
//! through serde, because it is the hot path of every pipeline.

use crate::value::{Record, Value, ValueRef};

/// MessagePack ext type of a decimal.
pub const EXT_DECIMAL: i8 = 1;
/// MessagePack ext type of a date.
pub const EXT_DATE: i8 = 2;

/// A malformed record encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad record encoding at byte {offset}: {message}")]
pub struct RecordDecodeError {
    pub offset: usize,
    pub message: String,
}

/// Appends one value.
pub fn encode_value(value: &Value, out: &mut Vec<u8>) {
    use rmp::encode::*;
    // Writing into a Vec cannot fail: the results below are all Ok.
    let _ = match value {
        Value::Null => write_nil(out).map_err(drop),
        Value::Bool(b) => write_bool(out, *b).map_err(drop),
        Value::Long(v) => write_sint(out, *v).map(drop).map_err(drop),
        Value::Double(d) => write_f64(out, *d).map_err(drop),
        Value::String(s) => write_str(out, s).map_err(drop),
        Value::Bytes(b) => write_bin(out, b).map_err(drop),
        Value::Decimal(s) => {
            let r = write_ext_meta(out, s.len() as u32, EXT_DECIMAL)
                .map(drop)
                .map_err(drop);
            out.extend_from_slice(s.as_bytes());
            r
        }
        Value::Date(ms) => {
            let r = write_ext_meta(out, 8, EXT_DATE).map(drop).map_err(drop);
            out.extend_from_slice(&ms.to_be_bytes());
            r
        }
    };
}

/// Appends one record.
pub fn encode_record(record: &[Value], out: &mut Vec<u8>) {
    let _ = rmp::encode::write_array_len(out, record.len() as u32);
    for value in record {
        encode_value(value, out);
    }
}

/// Encodes records as one array.
pub fn encode_records<R: AsRef<[Value]>>(records: &[R], out: &mut Vec<u8>) {
    let _ = rmp::encode::write_array_len(out, records.len() as u32);
    for record in records {
        encode_record(record.as_ref(), out);
    }
}

/// Decodes an array of records. The whole input must be consumed.
pub fn decode_records(bytes: &[u8]) -> Result<Vec<Record>, RecordDecodeError> {
    let mut records = Vec::new();
    decode_records_into(bytes, &mut records)?;
    Ok(records)
}

/// Decodes an array of records into `out`, reusing its records and their string
/// buffers: a writer that decodes batch after batch into the same vector allocates
/// almost nothing per record. On error `out` holds partly decoded records.
pub fn decode_records_into(bytes: &[u8], out: &mut Vec<Record>) -> Result<(), RecordDecodeError> {
    let mut cursor = Cursor { bytes, pos: 0 };
    let count = cursor.array_len()?;
    // Each record takes at least one byte: a count beyond the input is a lie.
    if count > bytes.len() {
        return Err(cursor.error(format!("array of {count} records in {} bytes", bytes.len())));
    }
    out.truncate(count);
    out.reserve(count - out.len());
    for i in 0..count {
        match out.get_mut(i) {
            Some(record) => cursor.record_into(record)?,
            None => {
                let mut record = Vec::new();
                cursor.record_into(&mut record)?;
                out.push(record);
            }
        }
    }
    cursor.finish()
}

/// Decodes an array of records one at a time, each lent to `visit` with its text and
/// bytes borrowed from `bytes` (nothing is copied); returns the number of records.
/// The records before a malformed one have been visited when its error returns.
pub fn visit_records<'a, E: From<RecordDecodeError>>(
    bytes: &'a [u8],
    visit: impl FnMut(&[ValueRef<'a>]) -> Result<(), E>,
) -> Result<usize, E> {
    visit_with(bytes, Cursor::value_ref, visit)
}

/// [`visit_records`] with each string and decimal lent as [`Text`] whose UTF-8 check
/// is left to `visit` (its bytes come out of it only with the check): a writer that
/// copies a text checks the bytes it has just copied, in cache, instead of the decoder
/// reading them once more. Structure is checked here as in [`visit_records`]; a
/// visitor that returns without checking every text of a record lets bad input pass,
/// so `visit` must check each one (or return an error).
pub fn visit_records_lazy<'a, E: From<RecordDecodeError>>(
    bytes: &'a [u8],
    visit: impl FnMut(&[LazyValueRef<'a>]) -> Result<(), E>,
) -> Result<usize, E> {
    visit_with(bytes, Cursor::value_lazy, visit)
}

#[inline]
fn visit_with<'a, V, E: From<RecordDecodeError>>(
    bytes: &'a [u8],
    value: impl Fn(&mut Cursor<'a>) -> Result<V, RecordDecodeError>,
    mut visit: impl FnMut(&[V]) -> Result<(), E>,
) -> Result<usize, E> {
    let mut cursor = Cursor { bytes, pos: 0 };
    let count = cursor.array_len()?;
    if count > bytes.len() {
        return Err(cursor
            .error(format!("array of {count} records in {} bytes", bytes.len()))
            .into());
    }
    let mut record = Vec::new();
    for _ in 0..count {
        let len = cursor.array_len()?;
        if len > bytes.len() - cursor.pos {
            return Err(cursor
                .error(format!("record of {len} values in the remaining input"))
                .into());
        }
        record.clear();
        for _ in 0..len {
            record.push(value(&mut cursor)?);
        }
        visit(&record)?;
    }
    cursor.finish()?;
    Ok(count)
}

/// Decodes one record. The whole input must be consumed.
pub fn decode_record(bytes: &[u8]) -> Result<Record, RecordDecodeError> {
    let mut cursor = Cursor { bytes, pos: 0 };
    let record = cursor.record()?;
    cursor.finish()?;
    Ok(record)
}

/// `raw` as text: checked by SIMD (`simdutf8`), the error's detail from `std` (which
/// only runs on invalid input).
fn utf8(raw: &[u8], at: usize) -> Result<&str, RecordDecodeError> {
    simdutf8::basic::from_utf8(raw).map_err(|_| {
        let detail = std::str::from_utf8(raw).err().map(|e| e.to_string());
        RecordDecodeError {
            offset: at,
            message: format!("string is not UTF-8: {}", detail.unwrap_or_default()),
        }
    })
}

/// Text of a record value lent by [`visit_records_lazy`] before its UTF-8 check. Its
/// bytes come out only with the check: [`Text::check`], or [`Text::copy_then_check`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Text<'a> {
    raw: &'a [u8],
    /// Where the text starts in the records' bytes (for the error).
    at: usize,
}

impl<'a> Text<'a> {
    /// Length in bytes.
    pub fn len(self) -> usize {
        self.raw.len()
    }

    pub fn is_empty(self) -> bool {
        self.raw.is_empty()
    }

    /// The text, once checked as UTF-8 (the error is [`visit_records`]'s).
    #[inline]
    pub fn check(self) -> Result<&'a str, RecordDecodeError> {
        utf8(self.raw, self.at)
    }

    /// Lends the bytes to `copy`, then checks them as UTF-8 while they are still in
    /// cache: a plain ASCII test, the full check only when a byte is not ASCII. On
    /// an error, whatever `copy` made of the bytes must be thrown away.
    #[inline]
    pub fn copy_then_check<R>(
        self,
        copy: impl FnOnce(&'a [u8]) -> R,
    ) -> Result<R, RecordDecodeError> {
        let copied = copy(self.raw);
        if is_ascii(self.raw) {
            Ok(copied)
        } else {
            utf8(self.raw, self.at).map(|_| copied)
        }
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(text: &'a str) -> Self {
        Text {
            raw: text.as_bytes(),
            at: 0,
        }
    }
}

/// A value as [`visit_records_lazy`] lends it: [`ValueRef`] with the text of a string
/// or a decimal not yet checked as UTF-8.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LazyValueRef<'a> {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Decimal(Text<'a>),
    String(Text<'a>),
    Bytes(&'a [u8]),
    Date(i64),
}

impl<'a> LazyValueRef<'a> {
    /// The value, its text checked as UTF-8.
    #[inline]
    pub fn check(self) -> Result<ValueRef<'a>, RecordDecodeError> {
        Ok(match self {
            LazyValueRef::Null => ValueRef::Null,
            LazyValueRef::Bool(b) => ValueRef::Bool(b),
            LazyValueRef::Long(v) => ValueRef::Long(v),
            LazyValueRef::Double(d) => ValueRef::Double(d),
            LazyValueRef::Decimal(text) => ValueRef::Decimal(text.check()?),
            LazyValueRef::String(text) => ValueRef::String(text.check()?),
            LazyValueRef::Bytes(b) => ValueRef::Bytes(b),
            LazyValueRef::Date(ms) => ValueRef::Date(ms),
        })
    }
}

impl<'a> From<ValueRef<'a>> for LazyValueRef<'a> {
    fn from(value: ValueRef<'a>) -> Self {
        match value {
            ValueRef::Null => LazyValueRef::Null,
            ValueRef::Bool(b) => LazyValueRef::Bool(b),
            ValueRef::Long(v) => LazyValueRef::Long(v),
            ValueRef::Double(d) => LazyValueRef::Double(d),
            ValueRef::Decimal(s) => LazyValueRef::Decimal(s.into()),
            ValueRef::String(s) => LazyValueRef::String(s.into()),
            ValueRef::Bytes(b) => LazyValueRef::Bytes(b),
            ValueRef::Date(ms) => LazyValueRef::Date(ms),
        }
    }
}

/// Whether every byte is ASCII: one OR over 8-byte words, no early exit (the texts it
/// sees are short and almost always ASCII), the last word overlapping the one before.
#[inline]
fn is_ascii(raw: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let Some(last) = raw.last_chunk::<8>() else {
        return raw.iter().fold(0, |acc, &b| acc | b) < 0x80;
    };
    let (blocks, rest) = raw.as_chunks::<32>();
    let mut lanes = [0u64; 4];
    for block in blocks {
        for (lane, word) in lanes.iter_mut().zip(block.as_chunks::<8>().0) {
            *lane |= u64::from_ne_bytes(*word);
        }
    }
    let mut acc = lanes[0] | lanes[1] | lanes[2] | lanes[3] | u64::from_ne_bytes(*last);
    for word in rest.as_chunks::<8>().0 {
        acc |= u64::from_ne_bytes(*word);
    }
    acc & HIGH == 0
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn error(&self, message: String) -> RecordDecodeError {
        RecordDecodeError {
            offset: self.pos,
            message,
        }
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordDecodeError> {
        match self.bytes[self.pos..].get(..n) {
            Some(slice) => {
                self.pos += n;
                Ok(slice)
            }
            None => Err(self.short(n)),
        }
    }

    #[cold]
    #[inline(never)]
    fn short(&self, n: usize) -> RecordDecodeError {
        self.error(format!("needs {n} more bytes, input ends"))
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, RecordDecodeError> {
        match self.bytes.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.short(1)),
        }
    }

    #[inline]
    fn be<const N: usize>(&mut self) -> Result<[u8; N], RecordDecodeError> {
        match self.bytes[self.pos..].first_chunk::<N>() {
            Some(&array) => {
                self.pos += N;
                Ok(array)
            }
            None => Err(self.short(N)),
        }
    }

    fn finish(&self) -> Result<(), RecordDecodeError> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(self.error(format!("{} trailing bytes", self.bytes.len() - self.pos)))
        }
    }

    #[inline]
    fn array_len(&mut self) -> Result<usize, RecordDecodeError> {
        let at = self.pos;
        match self.byte()? {
            m @ 0x90..=0x9f => Ok(usize::from(m & 0x0f)),
            0xdc => Ok(usize::from(u16::from_be_bytes(self.be()?))),
            0xdd => Ok(u32::from_be_bytes(self.be()?) as usize),
            m => Err(RecordDecodeError {
                offset: at,
                message: format!("expected an array, found marker 0x{m:02x}"),
            }),
        }
    }

    fn record(&mut self) -> Result<Record, RecordDecodeError> {
        let mut record = Vec::new();
        self.record_into(&mut record)?;
        Ok(record)
    }

    /// Decodes a record over `record`, reusing its values' buffers.
    fn record_into(&mut self, record: &mut Record) -> Result<(), RecordDecodeError> {
        let len = self.array_len()?;
        if len > self.bytes.len() - self.pos {
            return Err(self.error(format!("record of {len} values in the remaining input")));
        }
        record.truncate(len);
        record.reserve(len - record.len());
        for i in 0..len {
            match record.get_mut(i) {
                Some(slot) => self.value_into(slot)?,
                None => record.push(self.value()?),
            }
        }
        Ok(())
    }

    /// Decodes a value over `slot`; a string or decimal over one of the same kind
    /// reuses its buffer.
    fn value_into(&mut self, slot: &mut Value) -> Result<(), RecordDecodeError> {
        match (self.value_ref()?, slot) {
            (ValueRef::String(text), Value::String(buf))
            | (ValueRef::Decimal(text), Value::Decimal(buf)) => {
                buf.clear();
                buf.push_str(text);
            }
            (value, slot) => *slot = value.to_value(),
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Value, RecordDecodeError> {
        self.value_ref().map(ValueRef::to_value)
    }

    #[inline]
    fn text(&mut self, len: usize) -> Result<Text<'a>, RecordDecodeError> {
        let at = self.pos;
        Ok(Text {
            raw: self.take(len)?,
            at,
        })
    }

    fn ext(&mut self, len: usize) -> Result<LazyValueRef<'a>, RecordDecodeError> {
        let at = self.pos;
        let ext_type = self.byte()? as i8;
        match ext_type {
            EXT_DECIMAL => Ok(LazyValueRef::Decimal(self.text(len)?)),
            EXT_DATE if len == 8 => Ok(LazyValueRef::Date(i64::from_be_bytes(self.be()?))),
            EXT_DATE => Err(RecordDecodeError {
                offset: at,
                message: format!("date ext of {len} bytes, expected 8"),
            }),
            other => Err(RecordDecodeError {
                offset: at,
                message: format!("unknown ext type {other}"),
            }),
        }
    }

    /// Decodes the value that starts here, its text and bytes borrowed from the input.
    #[inline]
    fn value_ref(&mut self) -> Result<ValueRef<'a>, RecordDecodeError> {
        self.value_lazy()?.check()
    }

    /// [`Cursor::value_ref`] with the UTF-8 check of its text left to the caller.
    #[inline]
    fn value_lazy(&mut self) -> Result<LazyValueRef<'a>, RecordDecodeError> {
        let at = self.pos;
        let marker = self.byte()?;
        let value = match marker {
            0x00..=0x7f => LazyValueRef::Long(i64::from(marker)),
            0xe0..=0xff => LazyValueRef::Long(i64::from(marker as i8)),
            0xc0 => LazyValueRef::Null,
            0xc2 => LazyValueRef::Bool(false),
            0xc3 => LazyValueRef::Bool(true),
            0xcc => LazyValueRef::Long(i64::from(self.byte()?)),
            0xcd => LazyValueRef::Long(i64::from(u16::from_be_bytes(self.be()?))),
            0xce => LazyValueRef::Long(i64::from(u32::from_be_bytes(self.be()?))),
            0xcf => {
                let v = u64::from_be_bytes(self.be()?);
                LazyValueRef::Long(i64::try_from(v).map_err(|_| RecordDecodeError {
                    offset: at,
                    message: format!("integer {v} is out of the long range"),
                })?)
            }
            0xd0 => LazyValueRef::Long(i64::from(self.byte()? as i8)),
            0xd1 => LazyValueRef::Long(i64::from(i16::from_be_bytes(self.be()?))),
            0xd2 => LazyValueRef::Long(i64::from(i32::from_be_bytes(self.be()?))),
            0xd3 => LazyValueRef::Long(i64::from_be_bytes(self.be()?)),
            0xca => LazyValueRef::Double(f64::from(f32::from_be_bytes(self.be()?))),
            0xcb => LazyValueRef::Double(f64::from_be_bytes(self.be()?)),
            0xa0..=0xbf => LazyValueRef::String(self.text(usize::from(marker & 0x1f))?),
            0xd9 => {
                let len = usize::from(self.byte()?);
                LazyValueRef::String(self.text(len)?)
            }
            0xda => {
                let len = usize::from(u16::from_be_bytes(self.be()?));
                LazyValueRef::String(self.text(len)?)
            }
            0xdb => {
                let len = u32::from_be_bytes(self.be()?) as usize;
                LazyValueRef::String(self.text(len)?)
            }
            0xc4 => {
                let len = usize::from(self.byte()?);
                LazyValueRef::Bytes(self.take(len)?)
            }
            0xc5 => {
                let len = usize::from(u16::from_be_bytes(self.be()?));
                LazyValueRef::Bytes(self.take(len)?)
            }
            0xc6 => {
                let len = u32::from_be_bytes(self.be()?) as usize;
                LazyValueRef::Bytes(self.take(len)?)
            }
            0xd4 => self.ext(1)?,
            0xd5 => self.ext(2)?,
            0xd6 => self.ext(4)?,
            0xd7 => self.ext(8)?,
            0xd8 => self.ext(16)?,
            0xc7 => {
                let len = usize::from(self.byte()?);
                self.ext(len)?
            }
            0xc8 => {
                let len = usize::from(u16::from_be_bytes(self.be()?));
                self.ext(len)?
            }
            0xc9 => {
                let len = u32::from_be_bytes(self.be()?) as usize;
                self.ext(len)?
            }
            other => {
                return Err(RecordDecodeError {
                    offset: at,
                    message: format!("marker 0x{other:02x} is not a column value"),
                })
            }
        };
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    #[test]
    fn every_value_round_trips() {
        let record = vec![
            Value::Null,
            Value::Bool(true),
            Value::Long(-1),
            Value::Long(i64::MIN),
            Value::Long(i64::MAX),
            Value::Double(0.1),
            Value::Double(f64::INFINITY),
            Value::Decimal("-12.3400".into()),
            Value::String("héllo, \"world\"\n".into()),
            Value::Bytes(vec![0, 255, 10]),
            Value::Date(-1),
            Value::Date(1_705_307_400_000),
        ];
        let mut out = Vec::new();
        encode_records(&[record.clone(), vec![]], &mut out);
        assert_eq!(decode_records(&out).unwrap(), vec![record, vec![]]);
    }

    #[test]
    fn foreign_int_and_float_forms_are_accepted() {
        // uint8 200, int16 -300, float32 1.5
        let bytes = [0x93, 0xcc, 200, 0xd1, 0xfe, 0xd4, 0xca, 0x3f, 0xc0, 0, 0];
        assert_eq!(
            decode_record(&bytes).unwrap(),
            vec![Value::Long(200), Value::Long(-300), Value::Double(1.5)]
        );
    }

    #[test]
    fn malformed_input_is_an_error_with_an_offset() {
        assert!(
            decode_record(&[0x91, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
                .unwrap_err()
                .message
                .contains("out of the long range")
        );
        let e = decode_record(&[0x91, 0xa5, b'a']).unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(decode_record(&[0x92, 0xc0]).is_err());
        assert!(decode_record(&[0x91, 0xa2, 0xff, 0xfe]).is_err());
        assert!(decode_record(&[0x91, 0xd5, 9, 0, 0]).is_err());
        assert!(decode_record(&[0x91, 0xc0, 0xc0]).is_err());
        assert!(decode_records(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn invalid_utf8_names_the_string_and_the_fault() {
        let e = decode_record(&[0x91, 0xa2, b'a', 0xff]).unwrap_err();
        assert_eq!(e.offset, 2);
        assert_eq!(
            e.message,
            "string is not UTF-8: invalid utf-8 sequence of 1 bytes from index 1"
        );
    }

    proptest::proptest! {
        /// The SIMD check accepts exactly what `std::str::from_utf8` accepts, in
        /// strings (reused buffers or new) and decimals alike.
        #[test]
        fn utf8_check_agrees_with_std(raw in proptest::collection::vec(
            proptest::prop_oneof![proptest::num::u8::ANY, 0x20u8..0x7f, 0x80u8..0xc0],
            0..200,
        )) {
            let mut string = vec![0x91, 0xdb];
            string.extend_from_slice(&(raw.len() as u32).to_be_bytes());
            string.extend_from_slice(&raw);
            let mut decimal = vec![0x91, 0xc9];
            decimal.extend_from_slice(&(raw.len() as u32).to_be_bytes());
            decimal.push(EXT_DECIMAL as u8);
            decimal.extend_from_slice(&raw);
            let expected = std::str::from_utf8(&raw).map(str::to_owned);
            for bytes in [&string, &decimal] {
                let mut reused = vec![vec![Value::String("old".into())]];
                let mut batch = vec![0x91];
                batch.extend_from_slice(bytes);
                let into = decode_records_into(&batch, &mut reused);
                match &expected {
                    Ok(text) => {
                        let got = decode_record(bytes).unwrap();
                        let text_value = match got[0] {
                            Value::Decimal(_) => Value::Decimal(text.clone()),
                            _ => Value::String(text.clone()),
                        };
                        proptest::prop_assert_eq!(&got, &vec![text_value]);
                        proptest::prop_assert!(into.is_ok());
                        proptest::prop_assert_eq!(&reused[0], &got);
                    }
                    Err(e) => {
                        let message = format!("string is not UTF-8: {e}");
                        proptest::prop_assert_eq!(decode_record(bytes).unwrap_err().message, message.clone());
                        proptest::prop_assert_eq!(into.unwrap_err().message, message);
                    }
                }
            }
        }

        /// The ASCII test of `Text::copy_then_check` agrees with std's, whatever the
        /// length and wherever a byte above 0x7f sits (first, last, in the overlap of
        /// the last word).
        #[test]
        fn ascii_test_agrees_with_std(
            mut raw in proptest::collection::vec(0u8..0x80, 0..150),
            high in proptest::option::of((proptest::num::usize::ANY, 0x80u8..=0xff)),
        ) {
            if let (Some((at, byte)), false) = (high, raw.is_empty()) {
                let at = at % raw.len();
                raw[at] = byte;
            }
            proptest::prop_assert_eq!(is_ascii(&raw), raw.is_ascii());
        }

        /// Lent lazily, then checked, records are what `visit_records` lends, and a
        /// batch `visit_records` refuses is refused: with the same error when only
        /// texts are bad, and either way by the copy-then-check path too.
        #[test]
        fn lazy_visit_then_check_equals_visit(
            values in proptest::collection::vec(proptest::prop_oneof![
                proptest::collection::vec(
                    proptest::prop_oneof![0x20u8..0x7f, proptest::num::u8::ANY, 0x80u8..0xc0],
                    0..90,
                ).prop_map(|raw| (0xdbu8, raw)),
                proptest::collection::vec(0x30u8..0x3a, 0..12).prop_map(|raw| (0xc9u8, raw)),
                proptest::collection::vec(proptest::num::u8::ANY, 0..4).prop_map(|raw| (0u8, raw)),
            ], 0..8),
            records in 1usize..3,
        ) {
            // Each value: a str 32 (0xdb), a decimal ext 32 (0xc9) or raw bytes that
            // may or may not be a value (0).
            let mut record = vec![0xdc];
            record.extend_from_slice(&(values.len() as u16).to_be_bytes());
            for (kind, raw) in &values {
                match kind {
                    0xdb => {
                        record.push(0xdb);
                        record.extend_from_slice(&(raw.len() as u32).to_be_bytes());
                    }
                    0xc9 => {
                        record.push(0xc9);
                        record.extend_from_slice(&(raw.len() as u32).to_be_bytes());
                        record.push(EXT_DECIMAL as u8);
                    }
                    _ => {}
                }
                record.extend_from_slice(raw);
            }
            let mut batch = vec![0x90 | records as u8];
            for _ in 0..records {
                batch.extend_from_slice(&record);
            }
            let mut eager = Vec::new();
            let eager_result = visit_records(&batch, |r: &[ValueRef<'_>]| {
                eager.push(r.iter().map(|v| v.to_value()).collect::<Vec<_>>());
                Ok::<_, RecordDecodeError>(())
            });
            let (mut lazy, mut copied, mut mismatches) = (Vec::new(), Vec::new(), Vec::new());
            let lazy_result = visit_records_lazy(&batch, |r: &[LazyValueRef<'_>]| {
                let mut out = Vec::new();
                for value in r {
                    if let LazyValueRef::String(text) | LazyValueRef::Decimal(text) = value {
                        let at = out.len();
                        text.copy_then_check(|b| out.extend_from_slice(b))?;
                        if text.check().map(str::as_bytes) != Ok(&out[at..]) {
                            mismatches.push(format!("{text:?} copied as {:?}", &out[at..]));
                        }
                    }
                    value.check()?;
                }
                copied.push(out);
                lazy.push(r.iter().map(|v| v.check().map(|v| v.to_value())).collect::<Result<Vec<_>, _>>()?);
                Ok::<_, RecordDecodeError>(())
            });
            proptest::prop_assert!(mismatches.is_empty(), "{:?}", mismatches);
            proptest::prop_assert_eq!(&lazy, &eager);
            match (&eager_result, &lazy_result) {
                (Ok(a), Ok(b)) => proptest::prop_assert_eq!(a, b),
                (Err(a), Err(b)) => {
                    if values.iter().all(|(kind, _)| *kind != 0) {
                        proptest::prop_assert_eq!(a, b);
                    }
                }
                _ => proptest::prop_assert!(false, "{:?} against {:?}", eager_result, lazy_result),
            }
            for (record, out) in lazy.iter().zip(&copied) {
                let texts: Vec<u8> = record.iter().flat_map(|v| match v {
                    Value::String(s) | Value::Decimal(s) => s.as_bytes().to_vec(),
                    _ => Vec::new(),
                }).collect();
                proptest::prop_assert_eq!(&texts, out);
            }
        }
    }
}
