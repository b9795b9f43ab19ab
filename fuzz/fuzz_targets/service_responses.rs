//! Fuzzes the plugins' decoders of what the services answer: Tablestore PlainBuffer
//! rows and stream records (the protobuf answer, then each record's rows), and the
//! MaxCompute table schema and column types. Any panic or hang is a bug; errors are
//! expected.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use reader_otsstream::pb::GetStreamRecordResponse;
use reader_otsstream::plainbuffer::{decode_rows, decode_single_row};
use writer_odps::schema::{OdpsType, TableSchema};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            let _ = decode_rows(rest);
            let _ = decode_single_row(rest);
        }
        1 => {
            if let Ok(answer) = GetStreamRecordResponse::decode(rest) {
                for record in &answer.stream_records {
                    let _ = decode_single_row(&record.record);
                }
            }
        }
        2 => {
            if let Ok(json) = serde_json::from_slice::<serde_json::Value>(rest) {
                let _ = TableSchema::from_json(&json);
            }
        }
        _ => {
            let _ = OdpsType::parse(&String::from_utf8_lossy(rest));
        }
    }
});
