//! Records to text (spec oss.md §8.6–§8.8): values rendered as DataX renders them,
//! joined as CSV (RFC 4180 quoting, nothing trimmed) or text (DataX: no quoting), then
//! encoded in the configured charset.

use base64::Engine as _;
use protocol::timefmt::{DatePattern, Zone};
use protocol::value::{with_double_plain, Value, ValueRef};

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

impl RecordFormat {
    /// The text of one value.
    pub fn render(&self, value: &Value, out: &mut String) {
        self.render_ref(value.as_value_ref(), out)
    }

    /// [`RecordFormat::render`] of a borrowed value.
    pub fn render_ref(&self, value: ValueRef<'_>, out: &mut String) {
        match value {
            ValueRef::Null => out.push_str(&self.null_format),
            ValueRef::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            ValueRef::Long(v) => out.push_str(itoa::Buffer::new().format(v)),
            ValueRef::Double(d) => push_double(d, out),
            ValueRef::Decimal(s) | ValueRef::String(s) => out.push_str(s),
            ValueRef::Bytes(b) if self.bytes_base64 => {
                base64::engine::general_purpose::STANDARD.encode_string(b, out)
            }
            ValueRef::Bytes(b) => out.push_str(&String::from_utf8_lossy(b)),
            ValueRef::Date(ms) => out.push_str(&self.date_format.format(ms, &self.zone)),
        }
    }

    fn needs_quotes(&self, field: &str, first: bool) -> bool {
        if first && (field.is_empty() || field.starts_with('#')) {
            return true;
        }
        // csv delimiters are one character (checked in config); the usual ASCII one
        // takes a scan of the bytes.
        if let [delimiter] = self.field_delimiter.as_bytes() {
            return holds_csv_special(field.as_bytes(), *delimiter);
        }
        field.contains('"')
            || field.contains(['\r', '\n'])
            || (!self.field_delimiter.is_empty() && field.contains(self.field_delimiter.as_str()))
            || self.line_delimiter.chars().any(|c| field.contains(c))
            || (first && (field.is_empty() || field.starts_with('#')))
    }

    /// Appends one record (with its line delimiter) to `out`; `scratch` is reused.
    pub fn write_record(&self, record: &[Value], out: &mut String, scratch: &mut String) {
        self.write_values(record.iter().map(Value::as_value_ref), out, scratch)
    }

    /// [`RecordFormat::write_record`] of borrowed values.
    pub fn write_values<'v>(
        &self,
        record: impl IntoIterator<Item = ValueRef<'v>>,
        out: &mut String,
        scratch: &mut String,
    ) {
        match self.format {
            FileFormat::Text => {
                for (i, value) in record.into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.field_delimiter);
                    }
                    self.render_ref(value, out);
                }
                out.push_str(&self.line_delimiter);
            }
            FileFormat::Csv => {
                let mut fields = 0;
                for (i, value) in record.into_iter().enumerate() {
                    fields += 1;
                    if i > 0 {
                        out.push_str(&self.field_delimiter);
                    }
                    match value {
                        ValueRef::String(text) | ValueRef::Decimal(text) => {
                            self.push_csv_field(text, i == 0, out)
                        }
                        ValueRef::Long(v) => {
                            let mut buffer = itoa::Buffer::new();
                            let digits = buffer.format(v);
                            if self.numbers_need_quotes() {
                                self.push_csv_field(digits, i == 0, out);
                            } else {
                                out.push_str(digits);
                            }
                        }
                        _ => {
                            scratch.clear();
                            self.render_ref(value, scratch);
                            self.push_csv_field(scratch, i == 0, out);
                        }
                    }
                }
                // A record without values makes no line.
                if fields > 0 {
                    out.push_str(&self.line_delimiter);
                }
            }
        }
    }

    /// Whether a number's text (ASCII digits and `-`, never empty nor starting with `#`)
    /// can need quotes: only when the delimiter is one of its characters.
    fn numbers_need_quotes(&self) -> bool {
        match self.field_delimiter.as_bytes() {
            [d] => d.is_ascii_digit() || *d == b'-',
            _ => true,
        }
    }

    fn push_csv_field(&self, field: &str, first: bool, out: &mut String) {
        if self.needs_quotes(field, first) {
            out.push('"');
            // Each `"` doubled: the text between quotes goes in whole.
            let mut rest = field;
            while let Some(at) = memchr::memchr(b'"', rest.as_bytes()) {
                out.push_str(&rest[..=at]);
                out.push('"');
                rest = &rest[at + 1..];
            }
            out.push_str(rest);
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

/// Fields up to this length are scanned in one pass for what needs quotes; longer ones
/// by memchr (two passes, but each 32 bytes per step with AVX2 and no per-byte loop).
/// The crossing point in instructions is about 250 bytes.
const SHORT_FIELD_BYTES: usize = 256;

/// Whether `bytes` holds `"`, CR, LF or `delimiter`. A short field is compared 32 bytes
/// at a time in one pass (the comparisons of a block compile to vector instructions),
/// cheaper there than memchr's two dispatched searches; what is left after the blocks
/// is compared as a block overlapping the last one (or two of 16 bytes), not byte by
/// byte.
fn holds_csv_special(bytes: &[u8], delimiter: u8) -> bool {
    if bytes.len() > SHORT_FIELD_BYTES {
        return memchr::memchr3(b'"', b'\r', b'\n', bytes).is_some()
            || memchr::memchr(delimiter, bytes).is_some();
    }
    let (blocks, rest) = bytes.as_chunks::<32>();
    if blocks
        .iter()
        .any(|block| block_holds_csv_special(block, delimiter))
    {
        return true;
    }
    if rest.is_empty() {
        return false;
    }
    if let Some(last) = bytes.last_chunk::<32>() {
        return block_holds_csv_special(last, delimiter);
    }
    if let (Some(head), Some(tail)) = (bytes.first_chunk::<16>(), bytes.last_chunk::<16>()) {
        return block_holds_csv_special(head, delimiter)
            || block_holds_csv_special(tail, delimiter);
    }
    rest.iter().any(|&b| is_csv_special(b, delimiter))
}

fn is_csv_special(b: u8, delimiter: u8) -> bool {
    (b == b'"') | (b == b'\r') | (b == b'\n') | (b == delimiter)
}

/// One block, every byte compared (no early exit, so the compiler vectorizes it).
#[inline(always)]
fn block_holds_csv_special<const N: usize>(block: &[u8; N], delimiter: u8) -> bool {
    block
        .iter()
        .fold(false, |hit, &b| hit | is_csv_special(b, delimiter))
}

/// A double as DataX renders it ([`protocol::value::double_plain`]), without an
/// intermediate `String` in the common range.
fn push_double(d: f64, out: &mut String) {
    with_double_plain(d, |text| out.push_str(text));
}

/// Text to bytes in the configured charset; unmappable characters become `?` as in
/// Java's `String.getBytes`. `€` in GBK is `A2 E3`, as Java's GBK writes it (WHATWG's
/// GBK encoder writes `80`, which Java's GBK decoder does not read).
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

    /// UTF-8: the encoded bytes are the text's own.
    pub fn is_utf8(&self) -> bool {
        self.encoding == encoding_rs::UTF_8
    }

    pub fn encode_into(&self, text: &str, out: &mut Vec<u8>) {
        if self.is_utf8() {
            out.extend_from_slice(text.as_bytes());
            return;
        }
        // WHATWG's GBK encoder maps U+20AC to 0x80, which Java's GBK decodes as U+FFFD;
        // Java's GBK encoder writes A2 E3, which Java's and WHATWG's GBK and GB18030
        // decoders all read as U+20AC. Write what Java writes.
        if self.encoding == encoding_rs::GBK {
            let mut parts = text.split('\u{20AC}');
            if let Some(first) = parts.next() {
                self.encode_unmappable_as_question_mark(first, out);
            }
            for part in parts {
                out.extend_from_slice(&[0xA2, 0xE3]);
                self.encode_unmappable_as_question_mark(part, out);
            }
            return;
        }
        self.encode_unmappable_as_question_mark(text, out);
    }

    fn encode_unmappable_as_question_mark(&self, mut src: &str, out: &mut Vec<u8>) {
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
    use proptest::strategy::Strategy as _;
    use protocol::value::double_plain;

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

    /// Doubles render as DataX's DoubleColumn text (vectors observed with Java 17,
    /// `new BigDecimal(String.valueOf(d)).toPlainString()`); `-0.0` is `0.0`.
    #[test]
    fn doubles_render_as_datax_text() {
        let f = format(FileFormat::Csv);
        let record = [
            Value::Double(1e20),
            Value::Double(1e-7),
            Value::Double(-0.0),
            Value::Double(-2.5),
        ];
        assert_eq!(
            line(&f, &record),
            "100000000000000000000,0.00000010,0.0,-2.5\n"
        );
    }

    /// Bytes observed with Java 17: `"€a😀测".getBytes("GBK")` is `A2 E3 61 3F B2 E2`.
    #[test]
    fn encodings_replace_unmappable_characters() {
        let gbk = TextEncoder::for_label("GBK").unwrap();
        let mut out = Vec::new();
        gbk.encode_into("€a😀测", &mut out);
        assert_eq!(out, [0xA2, 0xE3, b'a', b'?', 0xB2, 0xE2]);
        out.clear();
        gbk.encode_into("测试a😀€€", &mut out);
        assert_eq!(
            out,
            [0xB2, 0xE2, 0xCA, 0xD4, b'a', b'?', 0xA2, 0xE3, 0xA2, 0xE3]
        );
        let (back, _, bad) = encoding_rs::GBK.decode(&out);
        assert!(!bad);
        assert_eq!(back, "测试a?€€");
        assert!(TextEncoder::for_label("UTF-16").is_none());
        assert!(TextEncoder::for_label("no-such-charset").is_none());
        let utf8 = TextEncoder::for_label("utf-8").unwrap();
        out.clear();
        utf8.encode_into("测", &mut out);
        assert_eq!(out, "测".as_bytes());
    }

    /// The general renderings the fast paths replace: `Display` for longs,
    /// `double_plain` for doubles, and quoting character by character.
    fn general_csv_field(f: &RecordFormat, field: &str, first: bool) -> String {
        if !f.needs_quotes(field, first) {
            return field.to_owned();
        }
        let mut out = String::from('"');
        for c in field.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
        out
    }

    /// The scan of memchr the short-field pass replaces.
    fn memchr_special(bytes: &[u8], delimiter: u8) -> bool {
        memchr::memchr3(b'"', b'\r', b'\n', bytes).is_some()
            || memchr::memchr(delimiter, bytes).is_some()
    }

    proptest::proptest! {
        /// The one-pass scan finds what memchr finds, at every length and position
        /// around the 32-byte blocks and the short-field limit.
        #[test]
        fn the_short_field_scan_equals_memchr(
            len in 0usize..300,
            at in proptest::option::of(0usize..300),
            special in proptest::sample::select(vec![b'"', b'\r', b'\n', b',', b'5', b'x']),
            delimiter in proptest::sample::select(vec![b',', b';', b'\t', b'5', b'-']),
            filler in proptest::sample::select(vec![b'x', b'0', 0xC3u8, 0x7F]),
        ) {
            let mut bytes = vec![filler; len];
            if let Some(at) = at.filter(|at| *at < len) {
                bytes[at] = special;
            }
            proptest::prop_assert_eq!(
                holds_csv_special(&bytes, delimiter),
                memchr_special(&bytes, delimiter)
            );
        }

        #[test]
        fn longs_render_as_display(v in proptest::num::i64::ANY) {
            let mut out = String::new();
            format(FileFormat::Csv).render(&Value::Long(v), &mut out);
            proptest::prop_assert_eq!(out, v.to_string());
        }

        #[test]
        fn doubles_render_as_double_plain(
            bits in proptest::num::u64::ANY,
            small in -1e8f64..1e8,
        ) {
            for d in [f64::from_bits(bits), small, small / 1e6] {
                let mut out = String::new();
                push_double(d, &mut out);
                proptest::prop_assert_eq!(out, double_plain(d));
            }
        }

        /// A record line is the general rendering of each field, quoted as RFC 4180
        /// needs, joined by the delimiters.
        #[test]
        fn csv_lines_equal_the_general_rendering(
            fields in proptest::collection::vec(
                proptest::prop_oneof![
                    "[a-z,;\"\r\n #\t é测]{0,12}".prop_map(Value::String),
                    "[a-z,;\"\r\n #\t é测]{0,200}".prop_map(Value::String),
                    "[a-z0-9 é]{120,140}[,;\"\r\n\t|5-]?".prop_map(Value::String),
                    proptest::num::i64::ANY.prop_map(Value::Long),
                    (-99i64..99).prop_map(Value::Long),
                    proptest::num::f64::ANY.prop_map(Value::Double),
                    proptest::bool::ANY.prop_map(Value::Bool),
                    proptest::strategy::Just(Value::Null),
                ],
                1..6,
            ),
            delimiter in proptest::sample::select(vec![',', ';', '\t', '|', '-', '5']),
        ) {
            let mut f = format(FileFormat::Csv);
            f.field_delimiter = delimiter.to_string();
            let mut expected = String::new();
            for (i, value) in fields.iter().enumerate() {
                if i > 0 {
                    expected.push(delimiter);
                }
                let text = match value {
                    Value::Long(v) => v.to_string(),
                    Value::Double(d) => double_plain(*d),
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    _ => "null".to_owned(),
                };
                expected.push_str(&general_csv_field(&f, &text, i == 0));
            }
            expected.push('\n');
            proptest::prop_assert_eq!(line(&f, &fields), expected);
        }
    }

    proptest::proptest! {
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
