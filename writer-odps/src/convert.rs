//! Record values → MaxCompute cells, by the target column's type (spec `odps.md` §6.8).
//!
//! A value that does not fit its column is an error naming the column; the writer
//! reports the whole record as dirty. Where DataX silently wraps or alters a value
//! (INT/SMALLINT overflow, invalid UTF-8 bytes into STRING, impossible dates rolled
//! over) this writer refuses or keeps the bytes instead. The README's "Differences"
//! list names the DataX sources each rule was read from.

use std::borrow::Cow;

use protocol::records::{LazyValueRef, RecordDecodeError};
use protocol::timefmt::{DatePattern, Zone};
use protocol::value::{double_plain, double_text, Value, ValueRef};

use crate::block::{BlockEncoder, Cell};
use crate::schema::OdpsType;

/// DataX's `Constant.UTF8_ENCODED_CHAR_MAX_SIZE`: `truncate` keeps `maxFieldLength`
/// minus this many bytes of a STRING.
const UTF8_ENCODED_CHAR_MAX_SIZE: usize = 6;
/// Integer digits a DECIMAL takes at most (DataX's odpswriter refuses longer ones).
const DECIMAL_MAX_INTEGER_DIGITS: usize = 36;
/// DATETIME range accepted by the service (years 0000–9999), epoch ms.
const DATETIME_MIN_MS: i64 = -62_167_305_600_000;
const DATETIME_MAX_MS: i64 = 253_402_387_200_000;
const MS_PER_DAY: i64 = 86_400_000;

/// What to do with STRING/BINARY values longer than the limit (DataX `overLengthRule`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverLengthRule {
    /// Keep the value: the record is dirty (the service would refuse it).
    KeepOn,
    /// Write NULL instead.
    SetNull,
    /// Cut a STRING to `max_field_length − 6` bytes (whole characters) and a BINARY to
    /// `max_field_length` bytes, as DataX.
    Truncate,
}

/// The conversion settings of a task.
#[derive(Clone, Debug)]
pub struct Conversions {
    pub empty_as_null: bool,
    /// Zone of date text and of dates rendered as text.
    pub zone: Zone,
    /// Zone that turns an instant into a DATE.
    pub date_zone: Zone,
    pub over_length_rule: OverLengthRule,
    /// Byte length above which a STRING/BINARY value is over-long.
    pub max_odps_field_length: usize,
    /// Length kept by [`OverLengthRule::Truncate`].
    pub max_field_length: usize,
    patterns: Vec<DatePattern>,
    render: DatePattern,
}

impl Conversions {
    pub fn new(
        empty_as_null: bool,
        zone: Zone,
        date_zone: Zone,
        over_length_rule: OverLengthRule,
        max_odps_field_length: usize,
        max_field_length: usize,
    ) -> Result<Self, String> {
        // DataX's string-to-date formats, in order (engine `core.json`).
        let patterns = ["yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd", "HH:mm:ss", "yyyyMMdd"]
            .iter()
            .map(|p| DatePattern::new(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            empty_as_null,
            zone,
            date_zone,
            over_length_rule,
            max_odps_field_length,
            max_field_length,
            patterns,
            render: DatePattern::new("yyyy-MM-dd HH:mm:ss")?,
        })
    }

    /// Converts one value for a column of type `ty`.
    pub fn convert<'a>(&self, value: &'a Value, ty: &OdpsType) -> Result<Cell<'a>, String> {
        self.convert_ref(value.as_value_ref(), ty)
    }

    /// [`Conversions::convert`] of a borrowed value: the cell borrows what the value
    /// borrows.
    pub fn convert_ref<'a>(&self, value: ValueRef<'a>, ty: &OdpsType) -> Result<Cell<'a>, String> {
        if value.is_null() {
            return Ok(Cell::Null);
        }
        if self.empty_as_null && matches!(value, ValueRef::String(s) if s.is_empty()) {
            return Ok(Cell::Null);
        }
        let err = |e: protocol::value::ConvertError| e.to_string();
        let integer = |low: i64, high: i64, name: &str| -> Result<Cell<'a>, String> {
            let v = value.as_long().map_err(err)?.unwrap_or_default();
            if v < low || v > high {
                return Err(format!("{v} is out of the {name} range [{low}, {high}]"));
            }
            Ok(Cell::Int(v))
        };
        match ty {
            OdpsType::Bigint => integer(i64::MIN + 1, i64::MAX, "BIGINT"),
            OdpsType::Int => integer(i32::MIN.into(), i32::MAX.into(), "INT"),
            OdpsType::Smallint => integer(i16::MIN.into(), i16::MAX.into(), "SMALLINT"),
            OdpsType::Tinyint => integer(i8::MIN.into(), i8::MAX.into(), "TINYINT"),
            // `+ 0.0` turns -0.0 into 0.0, as DataX's DoubleColumn (a BigDecimal) does.
            OdpsType::Double => Ok(Cell::Double(
                value.as_double().map_err(err)?.unwrap_or_default() + 0.0,
            )),
            OdpsType::Float => {
                let d = value.as_double().map_err(err)?.unwrap_or_default() + 0.0;
                let f = d as f32;
                if d.is_finite() && !f.is_finite() {
                    return Err(format!("{d} is out of the FLOAT range"));
                }
                Ok(Cell::Float(f))
            }
            OdpsType::Boolean => Ok(Cell::Bool(
                value.as_bool().map_err(err)?.unwrap_or_default(),
            )),
            OdpsType::Datetime => self.instant(value).map(Cell::Datetime),
            OdpsType::Date => {
                let ms = self.instant(value)?;
                let local = ms + i64::from(self.date_zone.offset_at(ms).local_minus_utc()) * 1000;
                Ok(Cell::Date(local.div_euclid(MS_PER_DAY)))
            }
            OdpsType::Timestamp => {
                let ms = self.instant(value)?;
                Ok(Cell::Timestamp {
                    seconds: ms.div_euclid(1000),
                    nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
                })
            }
            OdpsType::String => self
                .text_bytes(value)
                .and_then(|b| self.over_length(b, false)),
            OdpsType::Binary => {
                // DataX holds a decimal as a DoubleColumn, which has no bytes.
                if let ValueRef::Decimal(_) = value {
                    return Err("cannot convert decimal value to BINARY".into());
                }
                let bytes = value.as_bytes().map_err(err)?.unwrap_or_default();
                self.over_length(bytes, true)
            }
            OdpsType::Varchar(n) | OdpsType::Char(n) => {
                let text = self.text(value)?;
                // The Java SDK compares String.length(): UTF-16 units, never more than
                // the UTF-8 bytes, so only a text longer in bytes needs counting.
                let units = if text.len() <= *n as usize {
                    text.len()
                } else {
                    text.encode_utf16().count()
                };
                if units > *n as usize {
                    let kind = if matches!(ty, OdpsType::Char(_)) {
                        "CHAR"
                    } else {
                        "VARCHAR"
                    };
                    return Err(format!(
                        "{units} UTF-16 units do not fit {kind}({n}) (the Java SDK's length)"
                    ));
                }
                Ok(Cell::Bytes(match text {
                    Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                    Cow::Owned(s) => Cow::Owned(s.into_bytes()),
                }))
            }
            OdpsType::Decimal { precision, scale } => {
                let text: Cow<'a, str> = match value {
                    ValueRef::Decimal(s) | ValueRef::String(s) => Cow::Borrowed(s),
                    ValueRef::Long(v) => Cow::Owned(v.to_string()),
                    ValueRef::Bool(b) => Cow::Owned(u8::from(b).to_string()),
                    ValueRef::Double(d) if d.is_finite() => Cow::Owned(double_text(d)),
                    other => {
                        return Err(format!("cannot convert {} value to DECIMAL", other.kind()))
                    }
                };
                let plain = match &text {
                    Cow::Borrowed(s) => decimal_text(s, *precision, *scale)?,
                    Cow::Owned(s) => Cow::Owned(decimal_text(s, *precision, *scale)?.into_owned()),
                };
                let digits = integer_digits(plain.as_bytes());
                if digits > DECIMAL_MAX_INTEGER_DIGITS {
                    return Err(format!(
                        "{text} has {digits} integer digits; DataX's odpswriter takes at most {DECIMAL_MAX_INTEGER_DIGITS}"
                    ));
                }
                Ok(Cell::Bytes(match plain {
                    Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                    Cow::Owned(s) => Cow::Owned(s.into_bytes()),
                }))
            }
            OdpsType::Other(name) => Err(format!("type {name} is not written by writer-odps")),
        }
    }

    /// [`Conversions::encode_ref`] of a value whose text is not checked yet. A string
    /// into STRING, and decimal text already in plain form into DECIMAL, is copied into
    /// the block and checked as UTF-8 there, while its bytes are in cache; any other
    /// value is checked first. `Err`: a text is not UTF-8 (the batch is bad; what the
    /// record wrote must be discarded). `Ok(Err(reason))`: the value does not fit the
    /// column. Both paths give the same bytes (property test
    /// `encode_lazy_equals_encode_ref`).
    #[inline]
    pub fn encode_lazy(
        &self,
        index: usize,
        value: LazyValueRef<'_>,
        ty: &OdpsType,
        encoder: &mut BlockEncoder,
        out: &mut Vec<u8>,
    ) -> Result<Result<(), String>, RecordDecodeError> {
        match (ty, value) {
            (OdpsType::String, LazyValueRef::String(text))
                if text.len() <= self.max_odps_field_length
                    && !(text.is_empty() && self.empty_as_null) =>
            {
                text.copy_then_check(|bytes| encoder.encode_bytes(index, bytes, out))?;
                Ok(Ok(()))
            }
            // Plain decimal text is ASCII: its check is the ASCII test alone.
            (&OdpsType::Decimal { precision, scale }, LazyValueRef::Decimal(text)) => {
                let plain = text.copy_then_check(|bytes| {
                    encode_plain_decimal(index, bytes, (precision, scale), encoder, out)
                })?;
                if plain {
                    Ok(Ok(()))
                } else {
                    // Not plain: the general conversion (encode_ref would parse it again).
                    let cell = self.convert_ref(value.check()?, ty);
                    Ok(cell.map(|cell| encoder.encode_field(index, &cell, out)))
                }
            }
            (ty, value) => Ok(self.encode_ref(index, value.check()?, ty, encoder, out)),
        }
    }

    /// Converts `value` for a column of type `ty` and appends it to the record being
    /// encoded as field `index`. The common pairs of value and column (a string into
    /// STRING, a long into BIGINT, a double into DOUBLE, a bool into BOOLEAN, a date
    /// into DATETIME, a decimal already in plain form into DECIMAL) go straight to the
    /// encoder; every other pair, and any value the fast arms would not take as they
    /// are, goes through [`Conversions::convert_ref`] and [`BlockEncoder::encode_field`].
    /// Both give the same bytes (property test `encode_ref_equals_convert_then_encode`).
    #[inline]
    pub fn encode_ref(
        &self,
        index: usize,
        value: ValueRef<'_>,
        ty: &OdpsType,
        encoder: &mut BlockEncoder,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        match (ty, value) {
            (OdpsType::String, ValueRef::String(s))
                if s.len() <= self.max_odps_field_length
                    && !(s.is_empty() && self.empty_as_null) =>
            {
                encoder.encode_bytes(index, s.as_bytes(), out)
            }
            (OdpsType::Bigint, ValueRef::Long(v)) if v != i64::MIN => {
                encoder.encode_int(index, v, out)
            }
            // `+ 0.0` as in `convert_ref`: -0.0 is written as 0.0.
            (OdpsType::Double, ValueRef::Double(d)) => encoder.encode_double(index, d + 0.0, out),
            (OdpsType::Boolean, ValueRef::Bool(b)) => encoder.encode_bool(index, b, out),
            (OdpsType::Datetime, ValueRef::Date(ms))
                if (DATETIME_MIN_MS..=DATETIME_MAX_MS).contains(&ms) =>
            {
                encoder.encode_int(index, ms, out)
            }
            (&OdpsType::Decimal { precision, scale }, ValueRef::Decimal(text)) => {
                let bytes = text.as_bytes();
                if !encode_plain_decimal(index, bytes, (precision, scale), encoder, out) {
                    encoder.encode_field(index, &self.convert_ref(value, ty)?, out)
                }
            }
            _ => encoder.encode_field(index, &self.convert_ref(value, ty)?, out),
        }
        Ok(())
    }

    /// Epoch ms of a date value: a date, a long (epoch ms), or text in DataX's formats.
    fn instant(&self, value: ValueRef<'_>) -> Result<i64, String> {
        let ms = match value {
            ValueRef::Date(ms) | ValueRef::Long(ms) => ms,
            ValueRef::String(s) => self
                .patterns
                .iter()
                .find_map(|p| p.parse(s, &self.zone).ok())
                .ok_or_else(|| {
                    format!(
                        "cannot parse {s:?} as a date (yyyy-MM-dd HH:mm:ss, yyyy-MM-dd, HH:mm:ss or yyyyMMdd in {})",
                        self.zone.name()
                    )
                })?,
            other => return Err(format!("cannot convert {} value to a date", other.kind())),
        };
        if !(DATETIME_MIN_MS..=DATETIME_MAX_MS).contains(&ms) {
            return Err(format!(
                "{ms} ms is outside the DATETIME range (years 0000-9999)"
            ));
        }
        Ok(ms)
    }

    fn text<'a>(&self, value: ValueRef<'a>) -> Result<Cow<'a, str>, String> {
        Ok(match value {
            ValueRef::Date(ms) => Cow::Owned(self.render.format(ms, &self.zone)),
            ValueRef::Double(d) => Cow::Owned(double_plain(d)),
            other => other.as_text().unwrap_or_default(),
        })
    }

    /// Text for a STRING column; bytes are kept as they are (STRING holds any bytes).
    fn text_bytes<'a>(&self, value: ValueRef<'a>) -> Result<Cow<'a, [u8]>, String> {
        Ok(match value {
            ValueRef::Bytes(b) => Cow::Borrowed(b),
            other => match self.text(other)? {
                Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                Cow::Owned(s) => Cow::Owned(s.into_bytes()),
            },
        })
    }

    fn over_length<'a>(&self, bytes: Cow<'a, [u8]>, binary: bool) -> Result<Cell<'a>, String> {
        if bytes.len() <= self.max_odps_field_length {
            return Ok(Cell::Bytes(bytes));
        }
        match self.over_length_rule {
            OverLengthRule::KeepOn => Err(format!(
                "{} bytes exceed the field limit of {} bytes (maxOdpsFieldLength; overLengthRule keepOn)",
                bytes.len(),
                self.max_odps_field_length
            )),
            OverLengthRule::SetNull => Ok(Cell::Null),
            OverLengthRule::Truncate => {
                // DataX (`OdpsUtil.truncateSingleFieldData`) keeps `maxFieldLength − 6`
                // "bytes" of a string and `maxFieldLength` bytes of a binary.
                let limit = if binary {
                    self.max_field_length
                } else {
                    self.max_field_length
                        .saturating_sub(UTF8_ENCODED_CHAR_MAX_SIZE)
                };
                let mut cut = limit.min(bytes.len());
                // Keep whole UTF-8 characters when the value is text.
                if !binary && std::str::from_utf8(&bytes).is_ok() {
                    while cut > 0 && cut < bytes.len() && (bytes[cut] & 0xC0) == 0x80 {
                        cut -= 1;
                    }
                }
                Ok(Cell::Bytes(match bytes {
                    Cow::Borrowed(b) => Cow::Borrowed(&b[..cut]),
                    Cow::Owned(mut b) => {
                        b.truncate(cut);
                        Cow::Owned(b)
                    }
                }))
            }
        }
    }
}

/// Digits before the point of a decimal in plain notation.
fn integer_digits(plain: &[u8]) -> usize {
    let body = plain.strip_prefix(b"-").unwrap_or(plain);
    body.iter().position(|&b| b == b'.').unwrap_or(body.len())
}

/// Appends decimal text that is already in the plain form of DECIMAL(`precision`,
/// `scale`), within DataX's 36 integer digits, as it is; `false` (nothing appended) for
/// any other text, which the general conversion then takes.
#[inline]
fn encode_plain_decimal(
    index: usize,
    text: &[u8],
    (precision, scale): (u32, u32),
    encoder: &mut BlockEncoder,
    out: &mut Vec<u8>,
) -> bool {
    match plain_decimal(text, precision, scale) {
        Some(Cow::Borrowed(plain)) if integer_digits(plain) <= DECIMAL_MAX_INTEGER_DIGITS => {
            encoder.encode_bytes(index, plain, out);
            true
        }
        _ => false,
    }
}

/// Checks decimal text against DECIMAL(precision, scale) and renders it in plain
/// notation, rounded half-up to `scale` digits when it has more (as the Java SDK).
/// Text already in that form is lent back, not copied.
pub fn decimal_text(text: &str, precision: u32, scale: u32) -> Result<Cow<'_, str>, String> {
    match plain_decimal(text.as_bytes(), precision, scale) {
        Some(Cow::Borrowed(_)) => return Ok(Cow::Borrowed(text)),
        // Sign, digits and point only, so always UTF-8; were it not, the general form
        // below would render the text, never a lossy copy.
        Some(Cow::Owned(plain)) => {
            if let Ok(plain) = String::from_utf8(plain) {
                return Ok(Cow::Owned(plain));
            }
        }
        None => {}
    }
    decimal_text_general(text, precision, scale).map(Cow::Owned)
}

/// The common case of [`decimal_text`] without its digit vectors: plain notation
/// (`[-+]digits[.digits]`, no exponent) with no more fraction digits than `scale` and
/// integer digits that fit, so nothing is rounded or refused. The text is then the
/// input without its `+` and leading zeros, `0` before an empty integer part, no
/// `.` after an empty fraction, and no `-` on a zero. `None`: anything else, left to
/// the general form (property test `plain_decimals_equal_the_general_form`).
fn plain_decimal(text: &[u8], precision: u32, scale: u32) -> Option<Cow<'_, [u8]>> {
    let (negative, rest) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (int_part, frac_part) = match rest.iter().position(|&b| b == b'.') {
        Some(point) => (&rest[..point], &rest[point + 1..]),
        None => (rest, &[][..]),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.iter().all(u8::is_ascii_digit)
        || !frac_part.iter().all(u8::is_ascii_digit)
        || frac_part.len() > scale as usize
    {
        return None;
    }
    let zeros = int_part.iter().take_while(|&&b| b == b'0').count();
    let int_digits = &int_part[zeros..];
    if int_digits.len() > (precision as usize).saturating_sub(scale as usize) {
        return None;
    }
    let is_zero = int_digits.is_empty() && frac_part.iter().all(|&b| b == b'0');
    let sign = negative && !is_zero;
    let int_out: &[u8] = if int_digits.is_empty() {
        b"0"
    } else {
        int_digits
    };
    // The text is `[sign] int_part [. frac_part]`: it is already the result when its
    // sign, integer part and point are those of the result.
    let has_point = rest.len() > int_part.len();
    if text.first() != Some(&b'+')
        && negative == sign
        && int_part == int_out
        && has_point != frac_part.is_empty()
    {
        return Some(Cow::Borrowed(text));
    }
    let mut out = Vec::with_capacity(rest.len() + 2);
    if sign {
        out.push(b'-');
    }
    out.extend_from_slice(int_out);
    if !frac_part.is_empty() {
        out.push(b'.');
        out.extend_from_slice(frac_part);
    }
    Some(Cow::Owned(out))
}

fn decimal_text_general(text: &str, precision: u32, scale: u32) -> Result<String, String> {
    let bad = || format!("{text:?} is not a decimal number");
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().map_err(|_| bad())?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
        || exponent.abs() > 10_000
    {
        return Err(bad());
    }
    // All digits with the decimal point `point` digits from the left.
    let mut digits: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .collect();
    let mut point = int_part.len() as i64 + exponent;
    if point < 0 {
        let pad = (-point) as usize;
        digits.splice(0..0, std::iter::repeat_n(0, pad));
        point = 0;
    }
    while (digits.len() as i64) < point {
        digits.push(0);
    }
    let point = point as usize;
    let scale = scale as usize;
    // Round half-up to `scale` fraction digits.
    if digits.len() > point + scale {
        let round_up = digits[point + scale] >= 5;
        digits.truncate(point + scale);
        if round_up {
            let mut i = digits.len();
            loop {
                if i == 0 {
                    digits.insert(0, 1);
                    return render_decimal(negative, &digits, point + 1, precision, scale, text);
                }
                i -= 1;
                if digits[i] == 9 {
                    digits[i] = 0;
                } else {
                    digits[i] += 1;
                    break;
                }
            }
        }
    }
    render_decimal(negative, &digits, point, precision, scale, text)
}

fn render_decimal(
    negative: bool,
    digits: &[u8],
    point: usize,
    precision: u32,
    scale: usize,
    original: &str,
) -> Result<String, String> {
    let int_digits: Vec<u8> = digits[..point]
        .iter()
        .copied()
        .skip_while(|d| *d == 0)
        .collect();
    let max_int = (precision as usize).saturating_sub(scale);
    if int_digits.len() > max_int {
        return Err(format!(
            "{original} has {} integer digits; DECIMAL({precision},{scale}) allows {max_int}",
            int_digits.len()
        ));
    }
    let frac = &digits[point..];
    let is_zero = int_digits.is_empty() && frac.iter().all(|d| *d == 0);
    let mut out = String::with_capacity(digits.len() + 3);
    if negative && !is_zero {
        out.push('-');
    }
    if int_digits.is_empty() {
        out.push('0');
    }
    out.extend(int_digits.iter().map(|d| char::from(b'0' + d)));
    if !frac.is_empty() {
        out.push('.');
        out.extend(frac.iter().map(|d| char::from(b'0' + d)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
