//! Fuzzes the plugins' decoders of what the services answer: Tablestore PlainBuffer
//! rows and stream records (the protobuf answer, then each record's rows), and the
//! MaxCompute table schema and column types. Any panic or hang is a bug; errors are
//! expected. The reader's fast stream-record decoder (`RecordRow`) must give the same
//! row or the same error as the general one, and its page decoder (`decode_page`) the
//! same answer or error as prost.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use reader_otsstream::pb::GetStreamRecordResponse;
use reader_otsstream::plainbuffer::{decode_rows, decode_single_row, RecordRow};
use writer_odps::schema::{OdpsType, TableSchema};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            let _ = decode_rows(rest);
            let general = decode_single_row(rest);
            let fast = RecordRow::decode(bytes::Bytes::copy_from_slice(rest));
            match (&general, &fast) {
                // As text: a NaN is not equal to itself.
                (Ok(g), Ok(f)) => assert_eq!(format!("{g:?}"), format!("{:?}", f.to_row())),
                (Err(g), Err(f)) => assert_eq!(g, f),
                _ => panic!("general {general:?}, fast {fast:?}"),
            }
        }
        1 => {
            let body = bytes::Bytes::copy_from_slice(rest);
            let general = GetStreamRecordResponse::decode(body.clone());
            // The reader's page decoder: prost's values and errors, whatever the bytes.
            let fast = GetStreamRecordResponse::decode_page(body);
            match (&general, &fast) {
                (Ok(g), Ok(f)) => assert_eq!(g, f),
                (Err(g), Err(f)) => assert_eq!(g.to_string(), f.to_string()),
                _ => panic!("prost {general:?}, decode_page {fast:?}"),
            }
            if let Ok(answer) = general {
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
