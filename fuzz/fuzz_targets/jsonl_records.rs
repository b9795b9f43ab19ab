//! Fuzzes `--input-format jsonl`: a writer's stdin read as JSON lines through the
//! plugin runtime (`protocol::runtime::RecordSource`), batch by batch.
//!
//! Invariants beyond "no panic": every record read writes back as a JSON line that
//! reads to the same record, and that line is canonical (writing the re-read record
//! gives the same bytes); the frame encoding of the record decodes to the same line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::jsonl::{line_to_record, record_to_line};
use protocol::records::{decode_record, encode_record};
use protocol::runtime::RecordSource;

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&b| b == b'\n').count();
    let mut source = RecordSource::from_jsonl_bytes(data.to_vec());
    let mut seen = 0usize;
    loop {
        match source.next_batch() {
            Ok(Some(batch)) => {
                for record in &batch {
                    let line = record_to_line(record);
                    let again = line_to_record(&line)
                        .unwrap_or_else(|e| panic!("own line does not read back: {e}: {line}"));
                    assert_eq!(record_to_line(&again), line, "not canonical");
                    let mut frame = Vec::new();
                    encode_record(record, &mut frame);
                    let decoded = decode_record(&frame).expect("own encoding decodes");
                    assert_eq!(record_to_line(&decoded), line, "frame round trip");
                }
                seen += batch.len();
                assert!(seen <= lines, "{seen} records from {lines} lines");
            }
            Ok(None) => break,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                break;
            }
        }
    }
    assert_eq!(source.records() as usize, seen);
});
