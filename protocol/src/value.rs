//! The record and column model.
//!
//! A [`Record`] is an ordered list of [`Value`]s. Values are typed as DataX columns are,
//! with two deliberate differences, both decided here once for every plugin:
//!
//! * **Null is one value, not a typed null.** DataX keeps the type of a null column and
//!   refuses some conversions "even when the value is null" (engine spec §5.2). Here every
//!   conversion of [`Value::Null`] succeeds with `None`; a writer decides what a null
//!   becomes (an empty field, `nullFormat`, a MaxCompute null).
//! * **Doubles are binary `f64`, decimals are text.** DataX stores every double as decimal
//!   text. Tablestore and MaxCompute doubles are IEEE doubles, so the record model carries
//!   them as `f64` (exact, no text round trip), and exact decimal numbers travel as
//!   [`Value::Decimal`] text, never through `f64`.
//!
//! Conversion decisions, where DataX is inconsistent (engine spec §5.2–§5.3):
//!
//! * Text to double accepts `NaN`, `Infinity`, `+Infinity`, `-Infinity` (exact case), as
//!   the spec recommends; text to long rejects them. Text beyond the double range is
//!   refused either way: `1e400`, and a non-zero number below `4.9E-324` such as
//!   `1e-400` (DataX's `OverFlowUtil.validateDoubleNotOverFlow`), never rounded to 0.
//! * Doubles written as text by the writers are DataX's plain text ([`double_plain`]:
//!   `1e20` → `100000000000000000000`, `-0.0` → `0.0`).
//! * Text to long parses a decimal number with optional sign, fraction and exponent,
//!   truncates toward zero (`"1.9"` → 1, `"-1.9"` → −1, `"1e3"` → 1000) and fails outside
//!   the i64 range. No surrounding whitespace, no hexadecimal.
//! * Double to long truncates toward zero; NaN and ±∞ fail.
//! * Text to bool accepts `true`/`false` in any case; a long converts to `value != 0`.
//! * Bytes to text decodes UTF-8 and replaces invalid sequences with U+FFFD (DataX never
//!   fails this conversion); text to bytes is UTF-8.
//! * Date conversions to and from text need a format and a time zone, which are the
//!   writer's settings: they live in the writers, not here. A date converts to a long as
//!   its epoch milliseconds, and a long to a date likewise.
//! * Bytes convert to nothing but text and bytes; dates to nothing but long, date, text.

use std::borrow::Cow;
use std::fmt;

/// One column value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    /// An exact decimal number as text, e.g. `"12.3400"` (MaxCompute `decimal`).
    Decimal(String),
    String(String),
    Bytes(Vec<u8>),
    /// Milliseconds since the Unix epoch, UTC.
    Date(i64),
}

/// A record: the columns of one row, in order.
pub type Record = Vec<Value>;

/// The kind of a value, for messages and errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Long,
    Double,
    Decimal,
    String,
    Bytes,
    Date,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "bool",
            Kind::Long => "long",
            Kind::Double => "double",
            Kind::Decimal => "decimal",
            Kind::String => "string",
            Kind::Bytes => "bytes",
            Kind::Date => "date",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A value that cannot be converted to the requested kind. Writers turn it into a dirty
/// record with this text as the reason.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("cannot convert {from} value {shown} to {to}: {reason}")]
pub struct ConvertError {
    pub from: Kind,
    pub to: Kind,
    /// The value, shortened for messages.
    pub shown: String,
    pub reason: &'static str,
}

/// A column value whose text and bytes are borrowed (from the bytes of a batch, say):
/// what a writer reads with [`crate::runtime::RecordSource::next_batch_each`] without
/// copying a string. [`Value`]'s conversions are these.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Decimal(&'a str),
    String(&'a str),
    Bytes(&'a [u8]),
    Date(i64),
}

impl Value {
    /// The value with its text and bytes borrowed.
    pub fn as_value_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::Long(v) => ValueRef::Long(*v),
            Value::Double(d) => ValueRef::Double(*d),
            Value::Decimal(s) => ValueRef::Decimal(s),
            Value::String(s) => ValueRef::String(s),
            Value::Bytes(b) => ValueRef::Bytes(b),
            Value::Date(ms) => ValueRef::Date(*ms),
        }
    }

    pub fn kind(&self) -> Kind {
        self.as_value_ref().kind()
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The DataX byte size of this column (engine spec §5.5), used for speed limits,
    /// progress and summaries: long and date 8, bool 1, string its UTF-16 length,
    /// decimal its text length, double the length of its shortest decimal text,
    /// bytes their length, null 0.
    pub fn byte_size(&self) -> u64 {
        self.as_value_ref().byte_size()
    }

    /// The value as a long (see the module docs for the rules).
    pub fn as_long(&self) -> Result<Option<i64>, ConvertError> {
        self.as_value_ref().as_long()
    }

    /// The value as a double.
    pub fn as_double(&self) -> Result<Option<f64>, ConvertError> {
        self.as_value_ref().as_double()
    }

    /// The value as text: see [`ValueRef::as_text`].
    pub fn as_text(&self) -> Option<Cow<'_, str>> {
        self.as_value_ref().as_text()
    }

    /// The value as a bool.
    pub fn as_bool(&self) -> Result<Option<bool>, ConvertError> {
        self.as_value_ref().as_bool()
    }

    /// The value as bytes (text as UTF-8).
    pub fn as_bytes(&self) -> Result<Option<Cow<'_, [u8]>>, ConvertError> {
        self.as_value_ref().as_bytes()
    }

    /// The value as epoch milliseconds of a date: see [`ValueRef::as_date_ms`].
    pub fn as_date_ms(&self) -> Result<Option<i64>, ConvertError> {
        self.as_value_ref().as_date_ms()
    }
}

impl<'a> ValueRef<'a> {
    /// The value with its text and bytes copied.
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::Long(v) => Value::Long(v),
            ValueRef::Double(d) => Value::Double(d),
            ValueRef::Decimal(s) => Value::Decimal(s.to_owned()),
            ValueRef::String(s) => Value::String(s.to_owned()),
            ValueRef::Bytes(b) => Value::Bytes(b.to_vec()),
            ValueRef::Date(ms) => Value::Date(ms),
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            ValueRef::Null => Kind::Null,
            ValueRef::Bool(_) => Kind::Bool,
            ValueRef::Long(_) => Kind::Long,
            ValueRef::Double(_) => Kind::Double,
            ValueRef::Decimal(_) => Kind::Decimal,
            ValueRef::String(_) => Kind::String,
            ValueRef::Bytes(_) => Kind::Bytes,
            ValueRef::Date(_) => Kind::Date,
        }
    }

    pub fn is_null(self) -> bool {
        matches!(self, ValueRef::Null)
    }

    /// The DataX byte size: see [`Value::byte_size`].
    pub fn byte_size(self) -> u64 {
        match self {
            ValueRef::Null => 0,
            ValueRef::Bool(_) => 1,
            ValueRef::Long(_) | ValueRef::Date(_) => 8,
            ValueRef::Double(d) => double_text_len(d),
            ValueRef::Decimal(s) => s.len() as u64,
            ValueRef::String(s) => utf16_len(s),
            ValueRef::Bytes(b) => b.len() as u64,
        }
    }

    fn error(self, to: Kind, reason: &'static str) -> ConvertError {
        ConvertError {
            from: self.kind(),
            to,
            shown: shorten(self),
            reason,
        }
    }

    /// The value as a long (see the module docs for the rules).
    pub fn as_long(self) -> Result<Option<i64>, ConvertError> {
        match self {
            ValueRef::Null => Ok(None),
            ValueRef::Bool(b) => Ok(Some(i64::from(b))),
            ValueRef::Long(v) | ValueRef::Date(v) => Ok(Some(v)),
            ValueRef::Double(d) => double_to_long(d)
                .map(Some)
                .ok_or_else(|| self.error(Kind::Long, "out of the long range")),
            ValueRef::Decimal(s) | ValueRef::String(s) => parse_long(s)
                .map(Some)
                .map_err(|reason| self.error(Kind::Long, reason)),
            ValueRef::Bytes(_) => Err(self.error(Kind::Long, "bytes do not convert to long")),
        }
    }

    /// The value as a double.
    pub fn as_double(self) -> Result<Option<f64>, ConvertError> {
        match self {
            ValueRef::Null => Ok(None),
            ValueRef::Bool(b) => Ok(Some(if b { 1.0 } else { 0.0 })),
            ValueRef::Long(v) => Ok(Some(v as f64)),
            ValueRef::Double(d) => Ok(Some(d)),
            ValueRef::Decimal(s) | ValueRef::String(s) => parse_double(s)
                .map(Some)
                .ok_or_else(|| self.error(Kind::Double, "not a number")),
            ValueRef::Date(_) => Err(self.error(Kind::Double, "dates do not convert to double")),
            ValueRef::Bytes(_) => Err(self.error(Kind::Double, "bytes do not convert to double")),
        }
    }

    /// The value as text. Doubles use their shortest round-trip text (`1.0`, `0.1`,
    /// `1e300`, `NaN`, `Infinity`, `-Infinity`); dates their epoch milliseconds (writers
    /// format dates with their own `dateFormat` and time zone); bytes are decoded as
    /// UTF-8 with replacement.
    pub fn as_text(self) -> Option<Cow<'a, str>> {
        Some(match self {
            ValueRef::Null => return None,
            ValueRef::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
            ValueRef::Long(v) | ValueRef::Date(v) => Cow::Owned(v.to_string()),
            ValueRef::Double(d) => Cow::Owned(double_text(d)),
            ValueRef::Decimal(s) | ValueRef::String(s) => Cow::Borrowed(s),
            ValueRef::Bytes(b) => String::from_utf8_lossy(b),
        })
    }

    /// The value as a bool.
    pub fn as_bool(self) -> Result<Option<bool>, ConvertError> {
        match self {
            ValueRef::Null => Ok(None),
            ValueRef::Bool(b) => Ok(Some(b)),
            ValueRef::Long(v) => Ok(Some(v != 0)),
            ValueRef::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            ValueRef::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            ValueRef::String(_) => {
                Err(self.error(Kind::Bool, "only true or false convert to bool"))
            }
            _ => Err(self.error(Kind::Bool, "no conversion to bool")),
        }
    }

    /// The value as bytes (text as UTF-8).
    pub fn as_bytes(self) -> Result<Option<Cow<'a, [u8]>>, ConvertError> {
        match self {
            ValueRef::Null => Ok(None),
            ValueRef::Bytes(b) => Ok(Some(Cow::Borrowed(b))),
            ValueRef::String(s) | ValueRef::Decimal(s) => Ok(Some(Cow::Borrowed(s.as_bytes()))),
            _ => Err(self.error(Kind::Bytes, "no conversion to bytes")),
        }
    }

    /// The value as epoch milliseconds of a date (a long is taken as epoch ms; text
    /// needs the writer's format and zone and is refused here).
    pub fn as_date_ms(self) -> Result<Option<i64>, ConvertError> {
        match self {
            ValueRef::Null => Ok(None),
            ValueRef::Date(v) | ValueRef::Long(v) => Ok(Some(v)),
            _ => Err(self.error(Kind::Date, "no conversion to date")),
        }
    }
}

/// The DataX byte size of a record: the sum of its columns' sizes.
pub fn record_byte_size(record: &[Value]) -> u64 {
    record.iter().map(Value::byte_size).sum()
}

fn utf16_len(s: &str) -> u64 {
    if s.is_ascii() {
        s.len() as u64
    } else {
        s.encode_utf16().count() as u64
    }
}

/// DataX's byte size of a double: the length of the text its `DoubleColumn` holds,
/// `new BigDecimal(String.valueOf(d)).toPlainString()` ([`double_plain`]).
fn double_text_len(d: f64) -> u64 {
    with_double_plain(d, |text| text.len() as u64)
}

/// Calls `f` with [`double_plain`]`(d)`, made on the stack in the common case: inside
/// [1e-3, 1e7) Java prints a double plainly, and the text is the shortest form itself.
/// `zmij` finds the same shortest digits as `ryu` in half the time (about 17 ns
/// against 36 here) and prints them alike in that range: it differs only in writing an
/// exponent as `e+N`, which plain numbers do not have (property test
/// `with_double_plain_is_double_plain`).
pub fn with_double_plain<R>(d: f64, f: impl FnOnce(&str) -> R) -> R {
    if (1e-3..1e7).contains(&d.abs()) {
        f(zmij::Buffer::new().format_finite(d))
    } else {
        f(&double_plain(d))
    }
}

/// A double as DataX writes it as text (`new BigDecimal(String.valueOf(d))
/// .toPlainString()`, spec oss.md §8.7): `Double.toString`'s digits, never in scientific
/// notation (`1.0E7` → `10000000`, `1.0E-7` → `0.00000010`), and `-0.0` → `0.0` (a
/// BigDecimal has no negative zero). NaN and ±Infinity, which DataX cannot hold, keep
/// Java's names.
pub fn double_plain(d: f64) -> String {
    if !d.is_finite() {
        return double_text(d);
    }
    if d == 0.0 {
        return "0.0".into();
    }
    let abs = d.abs();
    let mut buf = ryu::Buffer::new();
    let shortest = buf.format_finite(d);
    if (1e-3..1e7).contains(&abs) {
        // Java prints these plainly; ryu does too, with at least one fraction digit.
        return shortest.to_owned();
    }
    // Digits and decimal exponent of the shortest form: value = 0.d1d2… × 10^point.
    let negative = shortest.starts_with('-');
    let body = shortest.trim_start_matches('-');
    let (mantissa, exp) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().unwrap_or(0)),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = format!("{int_part}{frac_part}");
    let lead = all.len() - all.trim_start_matches('0').len();
    let mut digits = all.trim_start_matches('0').trim_end_matches('0').to_owned();
    if digits.is_empty() {
        return shortest.to_owned();
    }
    // Position of the decimal point relative to the start of `digits`.
    let point = int_part.len() as i64 - lead as i64 + exp;
    // Java's scientific form d.ddd always has a fraction digit: 1.0E7 keeps the "0".
    if digits.len() == 1 {
        digits.push('0');
    }
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    let n = digits.len() as i64;
    if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else if point >= n {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (point - n) as usize));
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
    out
}

/// The shortest round-trip text of a double, with Java's names for the specials.
pub fn double_text(d: f64) -> String {
    if d.is_nan() {
        "NaN".to_owned()
    } else if d.is_infinite() {
        if d > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        ryu::Buffer::new().format_finite(d).to_owned()
    }
}

fn double_to_long(d: f64) -> Option<i64> {
    let t = d.trunc();
    // i64::MAX as f64 rounds up to 2^63, which is out of range.
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&t) {
        Some(t as i64)
    } else {
        None
    }
}

/// Parses text as a long: decimal with optional sign, fraction and exponent, truncated.
pub fn parse_long(s: &str) -> Result<i64, &'static str> {
    if let Ok(v) = s.parse::<i64>() {
        return Ok(v);
    }
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match digits.find(['e', 'E']) {
        Some(i) => (
            &digits[..i],
            digits[i + 1..]
                .parse::<i32>()
                .map_err(|_| "not a decimal number")?,
        ),
        None => (digits, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return Err("not a decimal number");
    }
    // Shift the decimal point by the exponent, then keep the integer part.
    let all: String = format!("{int_part}{frac_part}");
    let point = int_part.len() as i64 + i64::from(exponent);
    let integer_digits: String = if point <= 0 {
        String::new()
    } else if point as usize >= all.len() {
        let zeros = point as usize - all.len();
        if zeros > 20 && all.bytes().any(|b| b != b'0') {
            return Err("out of the long range");
        }
        format!("{all}{}", "0".repeat(zeros.min(20)))
    } else {
        all[..point as usize].to_owned()
    };
    let trimmed = integer_digits.trim_start_matches('0');
    if trimmed.is_empty() {
        return Ok(0);
    }
    let magnitude: u64 = trimmed.parse().map_err(|_| "out of the long range")?;
    if negative {
        if magnitude <= i64::MAX as u64 + 1 {
            Ok((magnitude as i64).wrapping_neg())
        } else {
            Err("out of the long range")
        }
    } else {
        i64::try_from(magnitude).map_err(|_| "out of the long range")
    }
}

/// Parses text as a double, accepting `NaN`, `Infinity`, `+Infinity`, `-Infinity`.
pub fn parse_double(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "Infinity" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        // Rust also accepts "inf", "nan", "infinity" in any case: refuse those.
        _ if s
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') =>
        {
            None
        }
        // Like DataX (`OverFlowUtil.validateDoubleNotOverFlow`), a non-zero number below
        // Double.MIN_VALUE's text `4.9E-324` is refused, not rounded to 0 or 5e-324.
        _ => s
            .parse::<f64>()
            .ok()
            .filter(|d| d.is_finite())
            .filter(|d| d.abs() > f64::from_bits(1) || !below_min_double(s)),
    }
}

/// Whether decimal text is non-zero and smaller in magnitude than `4.9E-324`.
fn below_min_double(s: &str) -> bool {
    let body = s.trim_start_matches(['+', '-']);
    let (mantissa, exponent) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().unwrap_or(0)),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = format!("{int_part}{frac_part}");
    let significant = all.trim_start_matches('0');
    if significant.trim_end_matches('0').is_empty() {
        return false;
    }
    // value = 0.<significant> × 10^point
    let point = int_part.len() as i64 - (all.len() - significant.len()) as i64 + exponent;
    (point, significant.trim_end_matches('0')) < (-323, "49")
}

fn shorten(value: ValueRef<'_>) -> String {
    const MAX: usize = 64;
    let text = match value {
        ValueRef::Bytes(b) => format!("<{} bytes>", b.len()),
        ValueRef::String(s) | ValueRef::Decimal(s) => format!("{s:?}"),
        other => other.as_text().map(Cow::into_owned).unwrap_or_default(),
    };
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datax_byte_sizes() {
        // streamreader's documented record: "DataX"(5) + long(8) + date(8) + bool(1) + bytes "test"(4).
        let record = vec![
            Value::String("DataX".into()),
            Value::Long(19890604),
            Value::Date(0),
            Value::Bool(true),
            Value::Bytes(b"test".to_vec()),
        ];
        assert_eq!(record_byte_size(&record), 26);
        assert_eq!(Value::String("你好".into()).byte_size(), 2);
        assert_eq!(Value::String("😀".into()).byte_size(), 2);
        assert_eq!(Value::Double(1.5).byte_size(), 3);
        assert_eq!(Value::Null.byte_size(), 0);
    }

    /// A double's size is the length of DataX's plain text of it, also where Java's
    /// `String.valueOf` would use an exponent (`1.0E7` → `10000000`) and for -0.0.
    #[test]
    fn double_byte_sizes_are_those_of_the_plain_text() {
        for (d, size) in [
            (1e7, 8),
            (1.0e-7, 10),
            (123456789.0, 9),
            (-1.5e10, 12),
            (9999999.5, 9),
            (0.001, 5),
            (0.0, 3),
            (-0.0, 3),
            (f64::NAN, 3),
            (f64::NEG_INFINITY, 9),
        ] {
            assert_eq!(ValueRef::Double(d).byte_size(), size, "{d:e}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        #[test]
        fn with_double_plain_is_double_plain(
            d in proptest::prop_oneof![
                proptest::strategy::Strategy::prop_map(proptest::prelude::any::<u64>(), f64::from_bits),
                // The range measured by zmij, its edges and beyond them.
                -2e7..2e7f64,
                -0.01..0.01f64,
                // One digit below 1e-3: Java writes 5.0E-4, whose plain text keeps the 0.
                proptest::sample::select(vec![1e-3, -1e-3, 1e7, -1e7, 9999999.999999998, 0.0009999999999999998, 5e-4, -1e-4, 2e7]),
            ],
        ) {
            let plain = double_plain(d);
            proptest::prop_assert_eq!(with_double_plain(d, str::to_owned), plain.clone(), "{:e}", d);
            proptest::prop_assert_eq!(ValueRef::Double(d).byte_size(), plain.len() as u64, "{:e}", d);
        }
    }

    #[test]
    fn text_to_long_follows_datax() {
        assert_eq!(parse_long("42"), Ok(42));
        assert_eq!(parse_long("1.9"), Ok(1));
        assert_eq!(parse_long("-1.9"), Ok(-1));
        assert_eq!(parse_long("1e3"), Ok(1000));
        assert_eq!(parse_long("1.5E1"), Ok(15));
        assert_eq!(parse_long("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_long("9223372036854775807.9"), Ok(i64::MAX));
        assert!(parse_long("9223372036854775808").is_err());
        assert!(parse_long("1e30").is_err());
        assert!(parse_long("NaN").is_err());
        assert!(parse_long("Infinity").is_err());
        assert!(parse_long(" 1").is_err());
        assert!(parse_long("0x10").is_err());
        assert!(parse_long("").is_err());
        assert!(parse_long(".").is_err());
        assert_eq!(parse_long("5e-1"), Ok(0));
    }

    #[test]
    fn text_to_double_accepts_the_java_specials_only() {
        assert!(parse_double("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_double("+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_double("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_double("inf"), None);
        assert_eq!(parse_double("nan"), None);
        assert_eq!(parse_double("1e400"), None);
        assert_eq!(parse_double("2.5e-3"), Some(0.0025));
    }

    #[test]
    fn text_to_double_refuses_underflow_as_datax() {
        // DataX: BigDecimal below Double.MIN_VALUE's text 4.9E-324 → overflow error.
        assert_eq!(parse_double("1e-400"), None);
        assert_eq!(parse_double("-1e-400"), None);
        assert_eq!(parse_double("4.8e-324"), None);
        assert_eq!(parse_double("0.0000e-5"), Some(0.0));
        assert_eq!(parse_double("4.9e-324"), Some(f64::from_bits(1)));
        assert_eq!(parse_double("5e-324"), Some(f64::from_bits(1)));
        assert_eq!(parse_double("1e-323"), Some(f64::from_bits(2)));
        assert_eq!(parse_double("0"), Some(0.0));
        assert_eq!(parse_double("-0.0"), Some(-0.0));
    }

    /// Vectors observed with Java 17: `new BigDecimal(String.valueOf(d)).toPlainString()`
    /// (DataX's DoubleColumn).
    #[test]
    fn doubles_render_as_datax_plain_text() {
        for (d, text) in [
            (3.0, "3.0"),
            (123.0, "123.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1234567.0, "1234567.0"),
            (1.0e7, "10000000"),
            (12345678.9, "12345678.9"),
            (1.0e20, "100000000000000000000"),
            (1.0e-7, "0.00000010"),
            (1.0e-5, "0.000010"),
            (9.99e-4, "0.000999"),
            (1.234e-5, "0.00001234"),
            (-1.5e20, "-150000000000000000000"),
            (0.0, "0.0"),
            (-0.0, "0.0"),
            (0.001, "0.001"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(double_plain(d), text, "{d:e}");
        }
    }

    proptest::proptest! {
        /// Plain doubles never lose precision and never use scientific notation.
        #[test]
        fn plain_doubles_round_trip_exactly(bits in proptest::num::u64::ANY) {
            let d = f64::from_bits(bits);
            proptest::prop_assume!(d.is_finite());
            let text = double_plain(d);
            proptest::prop_assert!(!text.contains(['e', 'E']), "{}", text);
            // -0.0 == 0.0: the sign of zero is dropped as DataX drops it.
            proptest::prop_assert_eq!(text.parse::<f64>().unwrap(), d);
        }
    }

    #[test]
    fn conversions_and_their_refusals() {
        assert_eq!(Value::Double(-2.7).as_long(), Ok(Some(-2)));
        assert!(Value::Double(f64::NAN).as_long().is_err());
        assert!(Value::Double(1e19).as_long().is_err());
        assert_eq!(Value::Bool(true).as_double(), Ok(Some(1.0)));
        assert_eq!(Value::String("TRUE".into()).as_bool(), Ok(Some(true)));
        assert!(Value::String("yes".into()).as_bool().is_err());
        assert!(Value::Bytes(vec![1]).as_long().is_err());
        assert!(Value::Date(5).as_double().is_err());
        assert_eq!(Value::Null.as_long(), Ok(None));
        assert_eq!(
            Value::Bytes(vec![0x61, 0xff]).as_text().as_deref(),
            Some("a\u{fffd}")
        );
        let err = Value::String("abc".into()).as_long().unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot convert string value \"abc\" to long: not a decimal number"
        );
    }

    #[test]
    fn double_text_is_shortest_round_trip() {
        assert_eq!(double_text(0.1), "0.1");
        assert_eq!(double_text(1.0), "1.0");
        assert_eq!(double_text(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(double_text(1e300).parse::<f64>().unwrap(), 1e300);
    }
}
