//! Decoding a Tunnel block as it arrives.
//!
//! The service checks a block while it streams in and answers soon after its last
//! byte; [`BlockDecoder`] does the same, chunk by chunk, so a large block costs no
//! wait at its end. Values share the chunks they were read from. A record cut by a
//! chunk boundary is completed from the start of the next chunk (only its bytes are
//! copied); a record longer than that is gathered until it is whole, retrying at
//! doubling sizes so the work stays linear.
//!
//! An upload is only checked ([`BlockDecoder::checking`]): each record is decoded into
//! one reused row, and the block is kept as it came, its chunks in an
//! [`EncodedBlock`], which is decoded into rows when the table is first read after the
//! commit. A block costs no vector per row (nor the pages those take) while a
//! pipeline uploads it, as a service stores what it receives in its own format.

use bytes::Bytes;

use super::record_decode::{decode_unit, Cursor, RecordCrc, Unit};
use super::types::{OdpsType, Row};
use super::wire::BlockError;

/// The least of a chunk tried first when completing a cut record.
const FIRST_STITCH: usize = 4096;

/// Decodes one block from its chunks: [`BlockDecoder::push`] each, then
/// [`BlockDecoder::finish`].
#[derive(Debug)]
pub struct BlockDecoder {
    columns: Vec<OdpsType>,
    /// The decoded rows, unless only checking.
    rows: Option<Vec<Row>>,
    /// The chunks, when only checking: the block as it came.
    chunks: Vec<Bytes>,
    /// Records so far.
    records: usize,
    /// The record being decoded.
    row: Row,
    /// The checksums of the records so far (4 bytes LE each).
    record_crcs: Vec<u8>,
    /// The checksum of the record being decoded.
    crc: RecordCrc,
    /// The bytes of an incomplete record (or trailer) at the end of the data so far.
    carry: Vec<u8>,
    /// Where `carry` starts in the block.
    carry_origin: usize,
    /// Gather the carried record until it is this long before trying it again.
    retry_at: usize,
    /// Bytes pushed so far.
    received: usize,
    trailer_seen: bool,
    /// Bytes after the trailer.
    trailing: usize,
    error: Option<BlockError>,
    /// Attempts to complete a carried record (for tests of the retry policy).
    attempts: usize,
}

impl BlockDecoder {
    /// A decoder that keeps the decoded rows.
    pub fn new(columns: Vec<OdpsType>) -> Self {
        Self {
            rows: Some(Vec::new()),
            ..Self::checking(columns)
        }
    }

    /// A decoder that checks the block and keeps its chunks, not rows.
    pub fn checking(columns: Vec<OdpsType>) -> Self {
        Self {
            row: vec![None; columns.len()],
            columns,
            rows: None,
            chunks: Vec::new(),
            records: 0,
            record_crcs: Vec::new(),
            crc: RecordCrc::new(),
            carry: Vec::new(),
            carry_origin: 0,
            retry_at: 0,
            received: 0,
            trailer_seen: false,
            trailing: 0,
            error: None,
            attempts: 0,
        }
    }

    /// Bytes received so far.
    pub fn received(&self) -> usize {
        self.received
    }

    /// Decodes what `chunk` completes. An error is kept for [`BlockDecoder::finish`];
    /// later chunks are then only counted.
    pub fn push(&mut self, chunk: Bytes) {
        let origin = self.received;
        self.received += chunk.len();
        if self.error.is_some() {
            return;
        }
        if self.rows.is_none() {
            self.chunks.push(chunk.clone());
        }
        if self.trailer_seen {
            self.trailing += chunk.len();
            return;
        }
        let start = if self.carry.is_empty() {
            0
        } else {
            match self.resume(&chunk) {
                Some(start) => start,
                None => return,
            }
        };
        self.run(&chunk, start, origin, false);
    }

    /// The block's rows, once the whole block is in and valid (from a decoder made by
    /// [`BlockDecoder::new`]).
    pub fn finish(self) -> Result<Vec<Row>, BlockError> {
        let checked = self.check()?;
        Ok(checked.rows.unwrap_or_default())
    }

    /// The block as it came, once the whole block is in and valid (from a decoder
    /// made by [`BlockDecoder::checking`]).
    pub fn finish_encoded(self) -> Result<EncodedBlock, BlockError> {
        let checked = self.check()?;
        Ok(EncodedBlock {
            chunks: checked.chunks,
            columns: checked.columns,
            records: checked.records,
        })
    }

    fn check(mut self) -> Result<Self, BlockError> {
        if self.error.is_none() && !self.carry.is_empty() {
            let rest = Bytes::from(std::mem::take(&mut self.carry));
            self.run(&rest, 0, self.carry_origin, true);
        }
        if let Some(e) = self.error {
            return Err(e);
        }
        if !self.trailer_seen {
            return Err(BlockError::Truncated(self.received));
        }
        if self.trailing > 0 {
            return Err(BlockError::TrailingData(self.trailing));
        }
        Ok(self)
    }

    /// Decodes the unit at the cursor (a record goes into `self.row`).
    fn next_unit(&mut self, cur: &mut Cursor<'_>) -> Result<Unit, BlockError> {
        decode_unit(
            cur,
            &self.columns,
            self.records,
            &mut self.crc,
            &mut self.row,
        )
    }

    /// Decodes units from `data[start..]` (which starts at `origin` in the block);
    /// an incomplete unit at the end is carried, unless `at_end`.
    fn run(&mut self, data: &Bytes, start: usize, origin: usize, at_end: bool) {
        let mut cur = Cursor::at(data, start);
        loop {
            let unit_start = cur.pos();
            match self.next_unit(&mut cur) {
                Ok(unit) => match self.accept(unit) {
                    Ok(false) => {}
                    Ok(true) => {
                        self.trailing += data.len() - cur.pos();
                        return;
                    }
                    Err(e) => {
                        self.error = Some(e);
                        return;
                    }
                },
                Err(BlockError::Truncated(_)) if !at_end => {
                    self.carry = data[unit_start..].to_vec();
                    self.carry_origin = origin + unit_start;
                    self.retry_at = 0;
                    return;
                }
                Err(e) => {
                    self.error = Some(shift(e, origin));
                    return;
                }
            }
        }
    }

    /// Completes the carried unit(s) with the start of `chunk`; returns where in
    /// `chunk` decoding goes on, or `None` when it is all used (or failed).
    fn resume(&mut self, chunk: &Bytes) -> Option<usize> {
        if self.carry.len() + chunk.len() < self.retry_at {
            // A long record: gather more of it before trying again.
            self.carry.extend_from_slice(chunk);
            return None;
        }
        let mut take = chunk.len().min(FIRST_STITCH.max(self.carry.len()));
        loop {
            self.attempts += 1;
            let mut joined = Vec::with_capacity(self.carry.len() + take);
            joined.extend_from_slice(&self.carry);
            joined.extend_from_slice(&chunk[..take]);
            let joined = Bytes::from(joined);
            let mut cur = Cursor::new(&joined);
            loop {
                let unit_start = cur.pos();
                match self.next_unit(&mut cur) {
                    Ok(unit) => match self.accept(unit) {
                        Ok(false) if cur.pos() >= self.carry.len() => {
                            let used = cur.pos() - self.carry.len();
                            self.carry.clear();
                            return Some(used);
                        }
                        Ok(false) => {}
                        Ok(true) => {
                            self.trailing += joined.len() - cur.pos() + chunk.len() - take;
                            self.carry.clear();
                            return None;
                        }
                        Err(e) => {
                            self.error = Some(e);
                            return None;
                        }
                    },
                    Err(BlockError::Truncated(_)) => {
                        self.carry.drain(..unit_start);
                        self.carry_origin += unit_start;
                        if take < chunk.len() {
                            take = chunk.len().min(take * 2);
                            break;
                        }
                        self.carry.extend_from_slice(chunk);
                        self.retry_at = self.carry.len() * 2;
                        return None;
                    }
                    Err(e) => {
                        self.error = Some(shift(e, self.carry_origin));
                        return None;
                    }
                }
            }
        }
    }

    /// Takes a decoded unit; `true` for the trailer, which must match the records.
    fn accept(&mut self, unit: Unit) -> Result<bool, BlockError> {
        match unit {
            Unit::Record(crc) => {
                self.record_crcs.extend_from_slice(&crc.to_le_bytes());
                self.records += 1;
                if let Some(rows) = &mut self.rows {
                    let fresh = vec![None; self.columns.len()];
                    rows.push(std::mem::replace(&mut self.row, fresh));
                }
                Ok(false)
            }
            Unit::Trailer { count, checksum } => {
                if usize::try_from(count).ok() != Some(self.records) {
                    return Err(BlockError::Count {
                        found: count,
                        actual: self.records,
                    });
                }
                let computed = crc32c::crc32c(&self.record_crcs);
                if checksum != computed {
                    return Err(BlockError::FinalChecksum {
                        found: checksum,
                        computed,
                    });
                }
                self.trailer_seen = true;
                Ok(true)
            }
        }
    }
}

/// An error found in data that starts at `origin` in the block, with positions in
/// the block.
fn shift(e: BlockError, origin: usize) -> BlockError {
    match e {
        BlockError::Truncated(at) => BlockError::Truncated(origin + at),
        BlockError::Varint(at) => BlockError::Varint(origin + at),
        BlockError::MarkerWireType {
            field,
            wire_type,
            at,
        } => BlockError::MarkerWireType {
            field,
            wire_type,
            at: origin + at,
        },
        BlockError::TrailerTag { found, at } => BlockError::TrailerTag {
            found,
            at: origin + at,
        },
        other => other,
    }
}

/// A checked Tunnel block, kept as it came until its rows are first read.
#[derive(Clone, Debug)]
pub struct EncodedBlock {
    chunks: Vec<Bytes>,
    columns: Vec<OdpsType>,
    records: usize,
}

impl EncodedBlock {
    /// Records in the block.
    pub fn records(&self) -> usize {
        self.records
    }

    /// The block's rows. It was checked when it came, so this fails only if the
    /// decoder changed its mind.
    pub fn decode(&self) -> Result<Vec<Row>, BlockError> {
        let mut decoder = BlockDecoder::new(self.columns.clone());
        for chunk in &self.chunks {
            decoder.push(chunk.clone());
        }
        decoder.finish()
    }
}

/// Checks one whole block against the session's data columns and keeps it as it is.
pub fn check_block(data: &Bytes, columns: &[OdpsType]) -> Result<EncodedBlock, BlockError> {
    let mut decoder = BlockDecoder::checking(columns.to_vec());
    decoder.push(data.clone());
    decoder.finish_encoded()
}

/// Decodes one whole block against the session's data columns. String values share
/// `data` rather than copying it.
pub fn decode_block(data: &Bytes, columns: &[OdpsType]) -> Result<Vec<Row>, BlockError> {
    let mut decoder = BlockDecoder::new(columns.to_vec());
    decoder.push(data.clone());
    decoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odps::types::Value;
    use crate::odps::wire::encode_block;

    fn columns() -> Vec<OdpsType> {
        ["bigint", "string", "double", "array<string>"]
            .iter()
            .map(|t| OdpsType::parse(t).unwrap())
            .collect()
    }

    fn rows(n: usize, long: usize) -> Vec<Row> {
        (0..n)
            .map(|i| {
                vec![
                    Some(Value::Int(i as i64 * 7 - 50)),
                    (i % 3 != 0).then(|| {
                        Value::Bytes(Bytes::from(
                            "é".repeat(i % 5 + if i == 3 { long } else { 1 }),
                        ))
                    }),
                    Some(Value::Double(i as f64 / 3.0)),
                    Some(Value::Array(vec![
                        Some(Value::Bytes(Bytes::from_static(b"x"))),
                        None,
                    ])),
                ]
            })
            .collect()
    }

    /// Feeds `block` in chunks of the given sizes (cycled).
    fn feed(block: &[u8], sizes: &[usize]) -> Result<Vec<Row>, BlockError> {
        feed_counting(block, sizes).0
    }

    /// Also returns the attempts at completing carried records.
    fn feed_counting(block: &[u8], sizes: &[usize]) -> (Result<Vec<Row>, BlockError>, usize) {
        let mut decoder = BlockDecoder::new(columns());
        push_chunks(&mut decoder, block, sizes);
        let attempts = decoder.attempts;
        (decoder.finish(), attempts)
    }

    /// Feeds `block` to a checking decoder in chunks of the given sizes (cycled).
    fn feed_checking(block: &[u8], sizes: &[usize]) -> Result<EncodedBlock, BlockError> {
        let mut decoder = BlockDecoder::checking(columns());
        push_chunks(&mut decoder, block, sizes);
        decoder.finish_encoded()
    }

    /// Pushes `block` in chunks of the given sizes (cycled).
    fn push_chunks(decoder: &mut BlockDecoder, block: &[u8], sizes: &[usize]) {
        let (mut at, mut i) = (0, 0);
        while at < block.len() {
            let n = sizes[i % sizes.len()].min(block.len() - at);
            decoder.push(Bytes::copy_from_slice(&block[at..at + n]));
            at += n;
            i += 1;
        }
    }

    #[test]
    fn any_chunking_gives_the_rows_of_the_whole_block_decoded_or_checked() {
        // Record 3 holds a 20,000-byte string, longer than the stitch window.
        let want = rows(40, 10_000);
        let block = encode_block(&want, &columns());
        for sizes in [
            vec![1],
            vec![2, 3],
            vec![7],
            vec![64],
            vec![1000, 1],
            vec![4096],
            vec![5000, 17, 300],
            vec![block.len()],
        ] {
            assert_eq!(feed(&block, &sizes).unwrap(), want, "chunks {sizes:?}");
            // Checked only, the block decodes later to the same rows.
            let checked = feed_checking(&block, &sizes).unwrap();
            assert_eq!(checked.records(), want.len(), "chunks {sizes:?}");
            assert_eq!(checked.decode().unwrap(), want, "chunks {sizes:?}");
        }
        let whole = check_block(&Bytes::from(block), &columns()).unwrap();
        assert_eq!(whole.decode().unwrap(), want);
    }

    #[test]
    fn errors_are_the_same_whatever_the_chunking() {
        let block = encode_block(&rows(12, 1), &columns());
        let whole = |b: &[u8]| decode_block(&Bytes::copy_from_slice(b), &columns());
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for cut in [0, 1, 5, block.len() / 2, block.len() - 1] {
            cases.push(block[..cut].to_vec());
        }
        for flip in [0, 3, 40, block.len() / 2, block.len() - 3, block.len() - 2] {
            let mut bad = block.clone();
            bad[flip] ^= 0x10;
            cases.push(bad);
        }
        let mut longer = block.clone();
        longer.extend_from_slice(b"junk");
        cases.push(longer);
        for case in cases {
            let expected = whole(&case);
            assert!(expected.is_err(), "{}", hex::encode(&case));
            for sizes in [vec![1], vec![3, 11], vec![100]] {
                assert_eq!(feed(&case, &sizes), expected, "chunks {sizes:?}");
                assert_eq!(
                    feed_checking(&case, &sizes).as_ref().err(),
                    expected.as_ref().err(),
                    "checking, chunks {sizes:?}"
                );
            }
        }
    }

    #[test]
    fn a_long_record_is_gathered_in_linear_work() {
        // One 3 MB record in 16-byte chunks: retrying it at every chunk would take
        // 187,500 passes over it; retrying at doubling sizes takes about 20.
        let big = vec![vec![
            Some(Value::Int(1)),
            Some(Value::Bytes(Bytes::from(vec![b'a'; 3_000_000]))),
            None,
            None,
        ]];
        let block = encode_block(&big, &columns());
        let (rows, attempts) = feed_counting(&block, &[16]);
        assert_eq!(rows.unwrap(), big);
        assert!(attempts <= 24, "{attempts} attempts");
    }
}
