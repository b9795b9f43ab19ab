//! One task's side of the upload: records converted and encoded into blocks of the
//! job's session, each block streamed while it grows.

use protocol::records::LazyValueRef;
use protocol::runtime::{PluginError, VisitError};

use crate::block::BlockEncoder;
use crate::convert::Conversions;
use crate::schema::{OdpsType, TableSchema};
use crate::upload::{BlockTarget, OpenBlock, CHUNK_BYTES, CHUNK_CAPACITY};

/// One task's encoding and block state.
pub(crate) struct TaskWriter<'a> {
    target: BlockTarget<'a>,
    schema: &'a TableSchema,
    types: Vec<OdpsType>,
    positions: &'a [usize],
    /// For each schema column, the index of the record value it takes.
    sources: Vec<Option<usize>>,
    /// The record values no schema column takes: their text is checked all the same.
    untaken: Vec<usize>,
    conversions: Conversions,
    flush_bytes: u64,
    next_block: u32,
    block_end: u32,
    open: Option<OpenBlock>,
    /// The previous block: its body is sent, its answer not yet awaited.
    pending: Option<OpenBlock>,
    encoder: BlockEncoder,
    /// Uncompressed bytes of the open block, and of the blocks before it.
    block_bytes: u64,
    done_bytes: u64,
    buf: Vec<u8>,
    blocks: Vec<u32>,
    records: u64,
    sent_bytes: u64,
}

/// What a task uploaded.
pub(crate) struct TaskOutcome {
    pub blocks: Vec<u32>,
    pub records: u64,
    pub sent_bytes: u64,
}

impl<'a> TaskWriter<'a> {
    /// A writer of blocks `[block_start, block_end)`; `positions[i]` is the schema
    /// column of record value `i`.
    pub(crate) fn new(
        target: BlockTarget<'a>,
        schema: &'a TableSchema,
        positions: &'a [usize],
        conversions: Conversions,
        flush_bytes: u64,
        block_start: u32,
        block_end: u32,
    ) -> Self {
        let mut sources = vec![None; schema.columns.len()];
        for (i, &pos) in positions.iter().enumerate() {
            if let Some(s) = sources.get_mut(pos) {
                *s = Some(i);
            }
        }
        let untaken = (0..positions.len())
            .filter(|&i| !sources.contains(&Some(i)))
            .collect();
        Self {
            target,
            schema,
            types: schema.columns.iter().map(|c| c.odps_type()).collect(),
            positions,
            sources,
            untaken,
            conversions,
            flush_bytes,
            next_block: block_start,
            block_end,
            open: None,
            pending: None,
            encoder: BlockEncoder::new(),
            block_bytes: 0,
            done_bytes: 0,
            buf: Vec::with_capacity(CHUNK_CAPACITY),
            blocks: Vec::new(),
            records: 0,
            sent_bytes: 0,
        }
    }

    /// Converts and encodes one record. `Ok(Err(reason))`: the record is dirty. Every
    /// text of the record is checked as UTF-8, whether a column takes it or not, and
    /// the record dirty or not: one that is not UTF-8 is a [`VisitError::Decode`].
    pub(crate) fn write_record(
        &mut self,
        record: &[LazyValueRef<'_>],
    ) -> Result<Result<(), String>, VisitError> {
        if record.len() > self.positions.len() {
            return Err(PluginError::data(format!(
                "writer-odps: a record has {} columns but column lists {}: more source columns than target columns",
                record.len(),
                self.positions.len()
            ))
            .into());
        }
        if self.open.is_none() {
            if self.next_block >= self.block_end {
                return Err(PluginError::data(format!(
                    "writer-odps: this task used all its block ids (up to {}); raise blockSizeInMB or use fewer tasks",
                    self.block_end
                ))
                .into());
            }
            self.open = Some(self.target.begin(self.next_block)?);
            self.next_block += 1;
            self.encoder = BlockEncoder::new();
            self.done_bytes += self.block_bytes;
            self.block_bytes = 0;
        }
        // Convert and encode in schema order; a value that does not fit discards
        // what the record wrote so far.
        let before = self.buf.len();
        self.encoder.start_record();
        for (pos, source) in self.sources.iter().enumerate() {
            let Some(&value) = source.and_then(|i| record.get(i)) else {
                continue;
            };
            let ty = &self.types[pos];
            let encoded =
                self.conversions
                    .encode_lazy(pos, value, ty, &mut self.encoder, &mut self.buf);
            match encoded {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    self.buf.truncate(before);
                    for value in record {
                        value.check()?;
                    }
                    let c = &self.schema.columns[pos];
                    return Ok(Err(format!("column {} ({}): {e}", c.name, c.type_name)));
                }
                Err(e) => {
                    self.buf.truncate(before);
                    return Err(e.into());
                }
            }
        }
        for &i in &self.untaken {
            if let Some(value) = record.get(i) {
                value.check()?;
            }
        }
        self.encoder.end_record(&mut self.buf);
        self.block_bytes += (self.buf.len() - before) as u64;
        self.records += 1;
        if self.block_bytes >= self.flush_bytes {
            self.close_block()?;
        } else if self.buf.len() >= CHUNK_BYTES {
            if let Some(block) = self.open.as_mut() {
                self.target.push(block, &mut self.buf)?;
            }
        }
        Ok(Ok(()))
    }

    /// Encoded bytes so far (blocks done and the open one).
    pub(crate) fn encoded_bytes(&self) -> u64 {
        self.done_bytes + self.block_bytes
    }

    /// Ends the open block (trailer) and waits for the answer to the block before it:
    /// one block's answer is awaited while the next one is being sent.
    fn close_block(&mut self) -> Result<(), PluginError> {
        let Some(block) = self.open.take() else {
            return Ok(());
        };
        self.encoder.finish(&mut self.buf);
        let data = std::mem::replace(&mut self.buf, self.target.recycled.chunk());
        let ended = self.target.end(block, data)?;
        if let Some(previous) = self.pending.replace(ended) {
            self.wait(previous)?;
        }
        Ok(())
    }

    /// Ends the open block and waits for every answer.
    pub(crate) fn finish(mut self) -> Result<TaskOutcome, PluginError> {
        self.close_block()?;
        if let Some(last) = self.pending.take() {
            self.wait(last)?;
        }
        Ok(TaskOutcome {
            blocks: std::mem::take(&mut self.blocks),
            records: self.records,
            sent_bytes: self.sent_bytes,
        })
    }

    fn wait(&mut self, block: OpenBlock) -> Result<(), PluginError> {
        let id = block.id;
        self.sent_bytes += self.target.wait(block)?;
        self.blocks.push(id);
        Ok(())
    }
}
