//! Records to text (spec oss.md §8.6–§8.8): values rendered as DataX renders them,
//! joined as CSV (RFC 4180 quoting, nothing trimmed) or text (DataX: no quoting), then
//! encoded in the configured charset.

use std::fmt::Write as _;

use base64::Engine as _;
use protocol::timefmt::{DatePattern, Zone};
use protocol::value::Value;

/// `text` or `csv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Text,
    Csv,
}

/// How records become lines.
#[derive(Clone, Debug)]
pub struct RecordFormat {
    pub format: FileFormat,
    pub field_delimiter: String,
    pub line_delimiter: String,
    pub null_format: String,
    pub date_format: DatePattern,
    pub zone: Zone,
    pub bytes_base64: bool,
}

/// A Java-style plain rendering of a double (spec §8.7): `Double.toString`'s digits,
/// never in scientific notation (`1.0E7` → `10000000`, `1.0E-5` → `0.000010`).
pub fn double_plain(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let abs = d.abs();
    let mut buf = ryu::Buffer::new();
    let shortest = buf.format_finite(d);
    if abs == 0.0 || (1e-3..1e7).contains(&abs) {
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

impl RecordFormat {
    /// The text of one value.
    pub fn render(&self, value: &Value, out: &mut String) {
        match value {
            Value::Null => out.push_str(&self.null_format),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Long(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Double(d) => out.push_str(&double_plain(*d)),
            Value::Decimal(s) | Value::String(s) => out.push_str(s),
            Value::Bytes(b) if self.bytes_base64 => {
                base64::engine::general_purpose::STANDARD.encode_string(b, out)
            }
            Value::Bytes(b) => out.push_str(&String::from_utf8_lossy(b)),
            Value::Date(ms) => out.push_str(&self.date_format.format(*ms, &self.zone)),
        }
    }

    fn needs_quotes(&self, field: &str, first: bool) -> bool {
        if first && (field.is_empty() || field.starts_with('#')) {
            return true;
        }
        // csv delimiters are one character (checked in config); the usual ASCII one
        // takes a single pass over the bytes.
        if let [delimiter] = self.field_delimiter.as_bytes() {
            let bytes = field.as_bytes();
            return memchr::memchr3(b'"', b'\r', b'\n', bytes).is_some()
                || memchr::memchr(*delimiter, bytes).is_some();
        }
        field.contains('"')
            || field.contains(['\r', '\n'])
            || (!self.field_delimiter.is_empty() && field.contains(self.field_delimiter.as_str()))
            || self.line_delimiter.chars().any(|c| field.contains(c))
            || (first && (field.is_empty() || field.starts_with('#')))
    }

    /// Appends one record (with its line delimiter) to `out`; `scratch` is reused.
    pub fn write_record(&self, record: &[Value], out: &mut String, scratch: &mut String) {
        match self.format {
            FileFormat::Text => {
                for (i, value) in record.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.field_delimiter);
                    }
                    self.render(value, out);
                }
                out.push_str(&self.line_delimiter);
            }
            FileFormat::Csv => {
                if record.is_empty() {
                    return;
                }
                for (i, value) in record.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.field_delimiter);
                    }
                    match value {
                        Value::String(text) | Value::Decimal(text) => {
                            self.push_csv_field(text, i == 0, out)
                        }
                        _ => {
                            scratch.clear();
                            self.render(value, scratch);
                            self.push_csv_field(scratch, i == 0, out);
                        }
                    }
                }
                out.push_str(&self.line_delimiter);
            }
        }
    }

    fn push_csv_field(&self, field: &str, first: bool, out: &mut String) {
        if self.needs_quotes(field, first) {
            out.push('"');
            for c in field.chars() {
                if c == '"' {
                    out.push('"');
                }
                out.push(c);
            }
            out.push('"');
        } else {
            out.push_str(field);
        }
    }

    /// Appends the header line (the same quoting as data).
    pub fn write_header(&self, header: &[String], out: &mut String) {
        let record: Vec<Value> = header.iter().map(|h| Value::String(h.clone())).collect();
        let mut scratch = String::new();
        self.write_record(&record, out, &mut scratch);
    }
}

/// Text to bytes in the configured charset; unmappable characters become `?` as in
/// Java's `String.getBytes`.
#[derive(Clone, Copy, Debug)]
pub struct TextEncoder {
    encoding: &'static encoding_rs::Encoding,
}

impl TextEncoder {
    /// The encoder for a charset name; `None` for names encoding_rs does not know or
    /// cannot encode to (UTF-16, the replacement encoding).
    pub fn for_label(label: &str) -> Option<Self> {
        let encoding = encoding_rs::Encoding::for_label(label.trim().as_bytes())?;
        (encoding.output_encoding() == encoding).then_some(Self { encoding })
    }

    pub fn name(&self) -> &'static str {
        self.encoding.name()
    }

    pub fn encode_into(&self, text: &str, out: &mut Vec<u8>) {
        if self.encoding == encoding_rs::UTF_8 {
            out.extend_from_slice(text.as_bytes());
            return;
        }
        // WHATWG's GBK maps U+20AC to 0x80, which Java's GBK (and Python's) lack: a
        // reader in those would fail on it, so it is unmappable here, as in Java.
        let replaced;
        let mut src = text;
        if self.encoding == encoding_rs::GBK && text.contains('\u{20AC}') {
            replaced = text.replace('\u{20AC}', "?");
            src = &replaced;
        }
        let mut encoder = self.encoding.new_encoder();
        loop {
            let start = out.len();
            let room = encoder
                .max_buffer_length_from_utf8_without_replacement(src.len())
                .unwrap_or(src.len() * 4 + 16);
            out.resize(start + room, 0);
            let (result, read, written) =
                encoder.encode_from_utf8_without_replacement(src, &mut out[start..], true);
            out.truncate(start + written);
            src = &src[read..];
            match result {
                encoding_rs::EncoderResult::InputEmpty => return,
                encoding_rs::EncoderResult::Unmappable(_) => out.push(b'?'),
                encoding_rs::EncoderResult::OutputFull => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(f: FileFormat) -> RecordFormat {
        RecordFormat {
            format: f,
            field_delimiter: ",".into(),
            line_delimiter: "\n".into(),
            null_format: "null".into(),
            date_format: DatePattern::new("yyyy-MM-dd HH:mm:ss").unwrap(),
            zone: Zone::parse("GMT+8").unwrap(),
            bytes_base64: false,
        }
    }

    fn line(f: &RecordFormat, record: &[Value]) -> String {
        let mut out = String::new();
        f.write_record(record, &mut out, &mut String::new());
        out
    }

    #[test]
    fn doubles_render_like_java_plain_strings() {
        for (d, text) in [
            (3.0, "3.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1234567.0, "1234567.0"),
            (1.0e7, "10000000"),
            (12345678.9, "12345678.9"),
            (1.0e-5, "0.000010"),
            (1.234e-5, "0.00001234"),
            (-1.5e20, "-150000000000000000000"),
            (0.0, "0.0"),
            (0.001, "0.001"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(double_plain(d), text, "{d:e}");
        }
        for d in [
            1.0e-300,
            5e-324,
            1.7976931348623157e308,
            123456789.123,
            9.87e-4,
        ] {
            let text = double_plain(d);
            assert!(!text.contains('e'), "{text}");
            assert_eq!(text.parse::<f64>().unwrap(), d, "{text}");
        }
    }

    #[test]
    fn csv_quotes_what_rfc_4180_needs_and_trims_nothing() {
        let f = format(FileFormat::Csv);
        let s = |t: &str| Value::String(t.into());
        assert_eq!(line(&f, &[s("1"), s("alice")]), "1,alice\n");
        assert_eq!(line(&f, &[s("  x  "), s("y")]), "  x  ,y\n");
        assert_eq!(line(&f, &[s("a,b"), s("c\"d")]), "\"a,b\",\"c\"\"d\"\n");
        assert_eq!(line(&f, &[s("l1\nl2"), s("a\rb")]), "\"l1\nl2\",\"a\rb\"\n");
        assert_eq!(line(&f, &[s(""), s("")]), "\"\",\n");
        assert_eq!(line(&f, &[s("#t"), s("#t")]), "\"#t\",#t\n");
        assert_eq!(line(&f, &[Value::Null, Value::Long(-5)]), "null,-5\n");
        assert_eq!(line(&f, &[]), "");
    }

    #[test]
    fn text_joins_without_quoting() {
        let mut f = format(FileFormat::Text);
        f.field_delimiter = "||".into();
        f.line_delimiter = "\r\n".into();
        let record = [
            Value::String("a,\"b".into()),
            Value::Bool(true),
            Value::Date(0),
            Value::Bytes(b"hi".to_vec()),
            Value::Decimal("1.50".into()),
        ];
        assert_eq!(
            line(&f, &record),
            "a,\"b||true||1970-01-01 08:00:00||hi||1.50\r\n"
        );
        f.bytes_base64 = true;
        assert_eq!(line(&f, &[Value::Bytes(b"hi".to_vec())]), "aGk=\r\n");
    }

    #[test]
    fn encodings_replace_unmappable_characters() {
        let gbk = TextEncoder::for_label("GBK").unwrap();
        let mut out = Vec::new();
        gbk.encode_into("测试a😀€", &mut out);
        assert_eq!(out, [0xB2, 0xE2, 0xCA, 0xD4, b'a', b'?', b'?']);
        assert!(TextEncoder::for_label("UTF-16").is_none());
        assert!(TextEncoder::for_label("no-such-charset").is_none());
        let utf8 = TextEncoder::for_label("utf-8").unwrap();
        out.clear();
        utf8.encode_into("测", &mut out);
        assert_eq!(out, "测".as_bytes());
    }

    proptest::proptest! {
        /// Doubles never lose precision and never use scientific notation.
        #[test]
        fn doubles_round_trip_exactly(bits in proptest::num::u64::ANY) {
            let d = f64::from_bits(bits);
            proptest::prop_assume!(d.is_finite());
            let text = double_plain(d);
            proptest::prop_assert!(!text.contains(['e', 'E']), "{}", text);
            proptest::prop_assert_eq!(text.parse::<f64>().unwrap(), d);
        }

        /// Any strings, delimiters and line breaks included, parse back unchanged with an
        /// RFC 4180 reader.
        #[test]
        fn csv_round_trips_through_an_rfc_4180_reader(
            fields in proptest::collection::vec("[a-z,;\"\r\n #\t é测]{0,12}", 1..6),
            delimiter in proptest::sample::select(vec![',', ';', '\t', '|']),
            crlf in proptest::bool::ANY,
        ) {
            let mut f = format(FileFormat::Csv);
            f.field_delimiter = delimiter.to_string();
            f.line_delimiter = if crlf { "\r\n" } else { "\n" }.into();
            let record: Vec<Value> = fields.iter().map(|s| Value::String(s.clone())).collect();
            let text = line(&f, &record).repeat(2);
            let rows: Vec<Vec<String>> = csv::ReaderBuilder::new()
                .has_headers(false)
                .delimiter(delimiter as u8)
                .from_reader(text.as_bytes())
                .records()
                .map(|r| r.unwrap().iter().map(str::to_owned).collect())
                .collect();
            proptest::prop_assert_eq!(rows, vec![fields.clone(), fields]);
        }
    }
}
