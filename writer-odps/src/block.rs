//! The Tunnel block body: records as flat protobuf-style fields, a CRC-32C per record,
//! and a trailer with the record count and a checksum over the record checksums
//! (spec `odps.md` §5).
//!
//! [`BlockEncoder`] appends encoded bytes to a caller-owned buffer, so the caller can
//! hand full chunks to the network while the block grows: nothing here holds a whole
//! block.

/// `TUNNEL_END_RECORD` (field 33553408, wire type 0) as key bytes.
const END_RECORD_KEY: [u8; 4] = [0x80, 0xc0, 0xff, 0x7f];
/// `TUNNEL_META_COUNT` (field 33554430).
const META_COUNT_KEY: [u8; 4] = [0xf0, 0xff, 0xff, 0x7f];
/// `TUNNEL_META_CHECKSUM` (field 33554431).
const META_CHECKSUM_KEY: [u8; 4] = [0xf8, 0xff, 0xff, 0x7f];

/// Values at least this long go into the record's CRC directly, not through a copy.
/// Shorter ones are copied into the record's checksum input, which is checksummed in
/// one call at the record's end: one CRC over a row's ~1 KB (folded by carry-less
/// multiplication, `crc-fast`) costs half what a chain of CRC-32C calls over its
/// values costs (one `crc32` instruction per 8 bytes, each waiting for the last).
const DIRECT_CRC_BYTES: usize = 64 * 1024;

/// One converted value, ready to encode under its column's wire rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell<'a> {
    Null,
    /// BIGINT, INT, SMALLINT, TINYINT.
    Int(i64),
    Bool(bool),
    /// DATETIME: epoch milliseconds.
    Datetime(i64),
    /// DATE: epoch days.
    Date(i64),
    Double(f64),
    Float(f32),
    /// STRING, VARCHAR, CHAR, BINARY, and DECIMAL as its plain text.
    Bytes(std::borrow::Cow<'a, [u8]>),
    /// TIMESTAMP: seconds since the epoch and nanoseconds in [0, 10^9).
    Timestamp {
        seconds: i64,
        nanos: i32,
    },
}

fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encodes the records of one block. Each block starts with a fresh encoder.
#[derive(Debug, Default)]
pub struct BlockEncoder {
    /// The checksum input of the record being encoded not yet in `record_crc`.
    crc_input: Vec<u8>,
    /// CRC-32C of the record's checksum input before `crc_input`, once a long value
    /// went into it directly instead of being copied into `crc_input`.
    record_crc: Option<u32>,
    /// CRC-32C over the record checksums so far (4 bytes LE each).
    final_crc: u32,
    records: u64,
}

impl BlockEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records encoded so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Appends one record; `cells` are in the session schema's column order (field
    /// numbers 1, 2, …). A record may carry fewer cells than the schema has columns.
    pub fn encode_record(&mut self, cells: &[Cell<'_>], out: &mut Vec<u8>) {
        self.start_record();
        for (i, cell) in cells.iter().enumerate() {
            self.encode_field(i, cell, out);
        }
        self.end_record(out);
    }

    /// Starts a record: its fields follow with [`BlockEncoder::encode_field`] in
    /// ascending column order, then [`BlockEncoder::end_record`]. A caller that gives
    /// up on a record truncates `out` to where the record started and starts again.
    pub fn start_record(&mut self) {
        self.crc_input.clear();
        self.record_crc = None;
    }

    /// Appends the field of column `index` (0-based); NULL writes nothing.
    pub fn encode_field(&mut self, index: usize, cell: &Cell<'_>, out: &mut Vec<u8>) {
        match cell {
            Cell::Null => {}
            Cell::Int(v) | Cell::Datetime(v) | Cell::Date(v) => self.encode_int(index, *v, out),
            Cell::Bool(b) => self.encode_bool(index, *b, out),
            Cell::Double(d) => self.encode_double(index, *d, out),
            Cell::Float(f) => {
                let field = self.field_number(index);
                put_varint(out, (u64::from(field) << 3) | 5);
                out.extend_from_slice(&f.to_le_bytes());
                self.crc_input.extend_from_slice(&f.to_le_bytes());
            }
            Cell::Bytes(b) => self.encode_bytes(index, b, out),
            Cell::Timestamp { seconds, nanos } => {
                // Wire type 2 but no length prefix (spec §5.3).
                let field = self.field_number(index);
                put_varint(out, (u64::from(field) << 3) | 2);
                put_varint(out, zigzag64(*seconds));
                put_varint(out, u64::from(zigzag32(*nanos)));
                self.crc_input.extend_from_slice(&seconds.to_le_bytes());
                self.crc_input.extend_from_slice(&nanos.to_le_bytes());
            }
        }
    }

    /// The field number of column `index`, put into the checksum input.
    #[inline]
    fn field_number(&mut self, index: usize) -> u32 {
        let field = (index + 1) as u32;
        self.crc_input.extend_from_slice(&field.to_le_bytes());
        field
    }

    /// [`BlockEncoder::encode_field`] of [`Cell::Int`], [`Cell::Datetime`] and
    /// [`Cell::Date`] (one wire form).
    #[inline]
    pub fn encode_int(&mut self, index: usize, v: i64, out: &mut Vec<u8>) {
        let field = self.field_number(index);
        put_varint(out, u64::from(field) << 3);
        put_varint(out, zigzag64(v));
        self.crc_input.extend_from_slice(&v.to_le_bytes());
    }

    /// [`BlockEncoder::encode_field`] of [`Cell::Bool`].
    #[inline]
    pub fn encode_bool(&mut self, index: usize, b: bool, out: &mut Vec<u8>) {
        let field = self.field_number(index);
        put_varint(out, u64::from(field) << 3);
        out.push(u8::from(b));
        self.crc_input.push(u8::from(b));
    }

    /// [`BlockEncoder::encode_field`] of [`Cell::Double`].
    #[inline]
    pub fn encode_double(&mut self, index: usize, d: f64, out: &mut Vec<u8>) {
        let field = self.field_number(index);
        put_varint(out, (u64::from(field) << 3) | 1);
        out.extend_from_slice(&d.to_le_bytes());
        self.crc_input.extend_from_slice(&d.to_le_bytes());
    }

    /// [`BlockEncoder::encode_field`] of [`Cell::Bytes`].
    #[inline]
    pub fn encode_bytes(&mut self, index: usize, b: &[u8], out: &mut Vec<u8>) {
        let field = self.field_number(index);
        put_varint(out, (u64::from(field) << 3) | 2);
        put_varint(out, b.len() as u64);
        out.extend_from_slice(b);
        if b.len() < DIRECT_CRC_BYTES {
            self.crc_input.extend_from_slice(b);
        } else {
            // CRC-32C continues over parts: crc(a‖b) = append(crc(a), b).
            let crc = crc32c::crc32c_append(self.record_crc.unwrap_or(0), &self.crc_input);
            self.crc_input.clear();
            self.record_crc = Some(crc32c::crc32c_append(crc, b));
        }
    }

    /// Appends an `array<bigint>` field of column `index` (0-based), as the SDKs write
    /// the upsert sessions' hidden `__value_cols`: wire type 2, the element count,
    /// then per element a "null" flag byte (0) and the zigzag value; the checksum
    /// takes the field number and each element.
    pub fn encode_long_array(&mut self, index: usize, values: &[i64], out: &mut Vec<u8>) {
        let field = (index + 1) as u32;
        self.crc_input.extend_from_slice(&field.to_le_bytes());
        put_varint(out, (u64::from(field) << 3) | 2);
        put_varint(out, values.len() as u64);
        for v in values {
            out.push(0);
            put_varint(out, zigzag64(*v));
            self.crc_input.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Ends the record: the end tag and its checksum.
    pub fn end_record(&mut self, out: &mut Vec<u8>) {
        let crc = match self.record_crc {
            None => crc_fast::crc32_iscsi(&self.crc_input),
            Some(crc) => crc32c::crc32c_append(crc, &self.crc_input),
        };
        out.extend_from_slice(&END_RECORD_KEY);
        put_varint(out, u64::from(crc));
        self.final_crc = crc32c::crc32c_append(self.final_crc, &crc.to_le_bytes());
        self.records += 1;
    }

    /// Appends the trailer (record count and final checksum). The block is complete.
    pub fn finish(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&META_COUNT_KEY);
        put_varint(out, zigzag64(self.records as i64));
        out.extend_from_slice(&META_CHECKSUM_KEY);
        put_varint(out, u64::from(self.final_crc));
    }
}

/// The body of a block with no record: its trailer alone.
pub fn empty_block() -> Vec<u8> {
    let mut out = Vec::new();
    BlockEncoder::new().finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_is_castagnoli() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    /// The general form of one field's checksum input: its field number, then its
    /// value (nothing for NULL).
    fn general_crc_input(index: usize, cell: &Cell<'_>, input: &mut Vec<u8>) {
        let field = ((index + 1) as u32).to_le_bytes();
        match cell {
            Cell::Null => {}
            Cell::Int(v) | Cell::Datetime(v) | Cell::Date(v) => {
                input.extend_from_slice(&field);
                input.extend_from_slice(&v.to_le_bytes());
            }
            Cell::Bool(b) => {
                input.extend_from_slice(&field);
                input.push(u8::from(*b));
            }
            Cell::Double(d) => {
                input.extend_from_slice(&field);
                input.extend_from_slice(&d.to_le_bytes());
            }
            Cell::Float(f) => {
                input.extend_from_slice(&field);
                input.extend_from_slice(&f.to_le_bytes());
            }
            Cell::Bytes(b) => {
                input.extend_from_slice(&field);
                input.extend_from_slice(b);
            }
            Cell::Timestamp { seconds, nanos } => {
                input.extend_from_slice(&field);
                input.extend_from_slice(&seconds.to_le_bytes());
                input.extend_from_slice(&nanos.to_le_bytes());
            }
        }
    }

    /// The general form of one field: its key, length and value appended as the spec
    /// describes them, one varint at a time (nothing for NULL).
    fn general_field(index: usize, cell: &Cell<'_>, out: &mut Vec<u8>) {
        let key = ((index + 1) as u64) << 3;
        match cell {
            Cell::Null => {}
            Cell::Int(v) | Cell::Datetime(v) | Cell::Date(v) => {
                put_varint(out, key);
                put_varint(out, zigzag64(*v));
            }
            Cell::Bool(b) => {
                put_varint(out, key);
                out.push(u8::from(*b));
            }
            Cell::Double(d) => {
                put_varint(out, key | 1);
                out.extend_from_slice(&d.to_le_bytes());
            }
            Cell::Float(f) => {
                put_varint(out, key | 5);
                out.extend_from_slice(&f.to_le_bytes());
            }
            Cell::Bytes(b) => {
                put_varint(out, key | 2);
                put_varint(out, b.len() as u64);
                out.extend_from_slice(b);
            }
            Cell::Timestamp { seconds, nanos } => {
                put_varint(out, key | 2);
                put_varint(out, zigzag64(*seconds));
                put_varint(out, u64::from(zigzag32(*nanos)));
            }
        }
    }

    /// The general form of a record whose fields are `(index, cell)`: the fields, the
    /// end tag, and the CRC-32C of the whole checksum input gathered (0 when empty).
    fn general_record(fields: &[(usize, Cell<'_>)]) -> (Vec<u8>, u32) {
        let (mut out, mut input) = (Vec::new(), Vec::new());
        for (index, cell) in fields {
            general_field(*index, cell, &mut out);
            general_crc_input(*index, cell, &mut input);
        }
        let crc = if input.is_empty() {
            0
        } else {
            crc32c::crc32c(&input)
        };
        out.extend_from_slice(&END_RECORD_KEY);
        put_varint(&mut out, u64::from(crc));
        (out, crc)
    }

    fn cell() -> impl proptest::strategy::Strategy<Value = Cell<'static>> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Cell::Null),
            any::<i64>().prop_map(Cell::Int),
            any::<bool>().prop_map(Cell::Bool),
            any::<f64>().prop_map(Cell::Double),
            any::<f32>().prop_map(Cell::Float),
            any::<i64>().prop_map(Cell::Datetime),
            any::<i64>().prop_map(Cell::Date),
            proptest::collection::vec(any::<u8>(), 0..200)
                .prop_map(|b| Cell::Bytes(std::borrow::Cow::Owned(b))),
            // Long enough to go into the record's CRC directly.
            (any::<u8>(), DIRECT_CRC_BYTES..DIRECT_CRC_BYTES + 100)
                .prop_map(|(byte, len)| Cell::Bytes(std::borrow::Cow::Owned(vec![byte; len]))),
            (any::<i64>(), any::<i32>())
                .prop_map(|(seconds, nanos)| Cell::Timestamp { seconds, nanos }),
        ]
    }

    proptest::proptest! {
        /// Each record is its fields in the general form, its end tag and its
        /// checksum (that of the gathered checksum input); the block's final checksum
        /// is over those checksums. Field numbers go past 15 (two-byte keys), and one
        /// last record has a field far further (up to five-byte keys).
        #[test]
        fn records_equal_the_general_form(
            records in proptest::collection::vec(proptest::collection::vec(cell(), 0..20), 1..5),
            far in proptest::option::of((0usize..(1 << 28), cell())),
        ) {
            let mut records: Vec<Vec<(usize, Cell<'_>)>> =
                records.into_iter().map(|cells| cells.into_iter().enumerate().collect()).collect();
            records.extend(far.map(|field| vec![field]));
            let mut encoder = BlockEncoder::new();
            let mut final_crc = 0u32;
            for fields in &records {
                let mut out = Vec::new();
                encoder.start_record();
                for (index, cell) in fields {
                    encoder.encode_field(*index, cell, &mut out);
                }
                encoder.end_record(&mut out);
                let (want, crc) = general_record(fields);
                proptest::prop_assert_eq!(&out, &want);
                final_crc = crc32c::crc32c_append(final_crc, &crc.to_le_bytes());
            }
            let mut trailer = Vec::new();
            encoder.finish(&mut trailer);
            let mut expected = Vec::new();
            expected.extend_from_slice(&META_COUNT_KEY);
            put_varint(&mut expected, zigzag64(records.len() as i64));
            expected.extend_from_slice(&META_CHECKSUM_KEY);
            put_varint(&mut expected, u64::from(final_crc));
            proptest::prop_assert_eq!(trailer, expected);
        }
    }

    /// The case the regression seed holds: a value of exactly `DIRECT_CRC_BYTES`,
    /// whose bytes go into the CRC directly, between shorter ones.
    #[test]
    fn a_value_of_direct_crc_bytes_equals_the_general_form() {
        use std::borrow::Cow;
        let long = vec![0u8; DIRECT_CRC_BYTES];
        for fields in [
            vec![(0, Cell::Bytes(Cow::Borrowed(&long[..])))],
            vec![
                (0, Cell::Int(-5)),
                (1, Cell::Bytes(Cow::Borrowed(&long[..]))),
                (2, Cell::Bytes(Cow::Borrowed(&b"after"[..]))),
                (
                    20,
                    Cell::Bytes(Cow::Borrowed(&long[..DIRECT_CRC_BYTES - 1])),
                ),
            ],
        ] {
            let mut encoder = BlockEncoder::new();
            let mut out = Vec::new();
            encoder.start_record();
            for (index, cell) in &fields {
                encoder.encode_field(*index, cell, &mut out);
            }
            encoder.end_record(&mut out);
            assert!(out == general_record(&fields).0, "{fields:?}");
        }
    }

    #[test]
    fn empty_block_is_the_bare_trailer() {
        assert_eq!(
            empty_block(),
            [0xf0, 0xff, 0xff, 0x7f, 0x00, 0xf8, 0xff, 0xff, 0x7f, 0x00]
        );
    }

    /// Records of an upsert session's schema (id string, n bigint, name string and
    /// the five hidden columns) as pyodps 0.13.2's `BaseRecordWriter` writes them:
    /// `['k1', 7, None, None, None, ord('U'), None, [0, 1]]` and
    /// `['k2', -3, 'x', None, None, ord('D'), None, []]`. pyodps writes a checksum with
    /// the high bit set as a 10-byte (sign-extended) varint where the Java SDK and this
    /// encoder write 5 bytes; both read back as the same uint32.
    #[test]
    fn upsert_records_equal_pyodps() {
        use std::borrow::Cow;
        let pyodps = "0a026b31100e30aa0142020000000280c0ff7f84daa7a302\
                      0a026b3210051a0178308801420080c0ff7fdad9cee6fcffffffff01\
                      f0ffff7f04f8ffff7fe2cd9dbe07";
        let want: Vec<u8> = (0..pyodps.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&pyodps[i..i + 2], 16).unwrap())
            .collect();
        let mut e = BlockEncoder::new();
        let mut out = Vec::new();
        type Fields<'a> = (&'a [u8], i64, Option<&'a [u8]>, i64, &'a [i64]);
        let records: [Fields<'_>; 2] = [
            (b"k1", 7, None, b'U' as i64, &[0, 1]),
            (b"k2", -3, Some(b"x"), b'D' as i64, &[]),
        ];
        for (id, n, name, op, cols) in records {
            e.start_record();
            e.encode_field(0, &Cell::Bytes(Cow::Borrowed(id)), &mut out);
            e.encode_field(1, &Cell::Int(n), &mut out);
            if let Some(name) = name {
                e.encode_field(2, &Cell::Bytes(Cow::Borrowed(name)), &mut out);
            }
            e.encode_field(5, &Cell::Int(op), &mut out);
            e.encode_long_array(7, cols, &mut out);
            e.end_record(&mut out);
        }
        // The first record (its checksum has the high bit clear) is byte for byte.
        assert_eq!(out[..24], want[..24]);
        // The second: the same fields, and the same checksum as a uint32.
        assert_eq!(out[24..42], want[24..42]);
        assert_eq!(&out[42..], &[0xda, 0xd9, 0xce, 0xe6, 0x0c]);
        assert_eq!(
            want[42..52],
            [0xda, 0xd9, 0xce, 0xe6, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        let mut trailer = Vec::new();
        e.finish(&mut trailer);
        assert_eq!(trailer, want[52..]);
    }

    #[test]
    fn varints_and_zigzag() {
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        assert_eq!(zigzag64(-1), 1);
        assert_eq!(zigzag64(1), 2);
        assert_eq!(zigzag64(i64::MIN), u64::MAX);
        assert_eq!(zigzag32(-2), 3);
    }
}
