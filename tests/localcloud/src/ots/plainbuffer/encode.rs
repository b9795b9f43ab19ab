//! PlainBuffer encoder: rows with cell and row CRC-8, and the stream-record extension.

use super::*;

/// Writes one or more rows after a single header.
#[derive(Debug)]
pub struct Encoder {
    out: Vec<u8>,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Self {
        // Room for a typical stream record or small row, so that encoding one does
        // not grow (copy) the buffer five times over.
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&HEADER.to_le_bytes());
        Self { out }
    }

    pub fn finish(self) -> Vec<u8> {
        self.out
    }

    /// Bytes written so far, header included.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// True when nothing but the header has been written.
    pub fn is_empty(&self) -> bool {
        self.out.len() <= 4
    }

    fn write_name(&mut self, name: &str) -> u8 {
        self.out.push(TAG_CELL_NAME);
        self.out
            .extend_from_slice(&(name.len() as u32).to_le_bytes());
        self.out.extend_from_slice(name.as_bytes());
        crc8(0, name.as_bytes())
    }

    fn write_value(&mut self, vtype: u8, payload: &[u8]) {
        self.out.push(TAG_CELL_VALUE);
        self.out
            .extend_from_slice(&(1 + payload.len() as u32).to_le_bytes());
        self.out.push(vtype);
        self.out.extend_from_slice(payload);
    }

    pub fn write_row(&mut self, row: &Row) {
        let mut row_crc = 0u8;
        self.out.push(TAG_ROW_PK);
        for (name, value) in &row.primary_key {
            self.out.push(TAG_CELL);
            let mut crc = self.write_name(name);
            let (vtype, payload) = pk_payload(value);
            self.write_value(vtype, &payload);
            crc = crc_value(crc, vtype, &payload);
            self.out.push(TAG_CELL_CHECKSUM);
            self.out.push(crc);
            row_crc = crc8(row_crc, &[crc]);
        }
        if !row.cells.is_empty() {
            self.out.push(TAG_ROW_DATA);
            for cell in &row.cells {
                let crc = self.write_cell(cell);
                row_crc = crc8(row_crc, &[crc]);
            }
        }
        if row.delete_marker {
            self.out.push(TAG_DELETE_ROW_MARKER);
        }
        row_crc = crc8(row_crc, &[u8::from(row.delete_marker)]);
        if let Some(seq) = row.sequence_info {
            self.out.push(TAG_EXTENSION);
            self.out.extend_from_slice(&24u32.to_le_bytes());
            self.out.push(TAG_SEQ_INFO);
            self.out.extend_from_slice(&19u32.to_le_bytes());
            self.out.push(TAG_SEQ_INFO_EPOCH);
            self.out.extend_from_slice(&seq.epoch.to_le_bytes());
            self.out.push(TAG_SEQ_INFO_TS);
            self.out.extend_from_slice(&seq.timestamp_us.to_le_bytes());
            self.out.push(TAG_SEQ_INFO_ROW_INDEX);
            self.out.extend_from_slice(&seq.row_index.to_le_bytes());
        }
        self.out.push(TAG_ROW_CHECKSUM);
        self.out.push(row_crc);
    }

    fn write_cell(&mut self, cell: &Cell) -> u8 {
        self.out.push(TAG_CELL);
        let mut crc = self.write_name(&cell.name);
        if let Some(value) = &cell.value {
            let (vtype, payload) = value_payload(value);
            self.write_value(vtype, &payload);
            crc = crc_value(crc, vtype, &payload);
        }
        if let Some(op) = cell.op {
            self.out.push(TAG_CELL_TYPE);
            self.out.push(op);
        }
        if let Some(ts) = cell.timestamp_ms {
            self.out.push(TAG_CELL_TIMESTAMP);
            self.out.extend_from_slice(&ts.to_le_bytes());
            crc = crc8(crc, &ts.to_le_bytes());
        }
        if let Some(op) = cell.op {
            crc = crc8(crc, &[op]);
        }
        self.out.push(TAG_CELL_CHECKSUM);
        self.out.push(crc);
        crc
    }
}

/// One header + one row.
pub fn encode_row(row: &Row) -> Vec<u8> {
    let mut enc = Encoder::new();
    enc.write_row(row);
    enc.finish()
}
