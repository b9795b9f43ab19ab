//! Fuzzes what reader-otsstream reads from Tablestore beyond stream records (those are
//! in `service_responses`): ListStream, DescribeStream, GetShardIterator,
//! DescribeTable, GetRow / GetRange (with their PlainBuffer rows), BatchWriteRow and
//! error answers, and the conversion of stream records to DataX rows.
//!
//! Invariants beyond "no panic": a decoded protobuf answer re-encodes to bytes that
//! decode to the same answer and re-encode to the same bytes (protobuf encoding of a
//! message is canonical); a decoded PlainBuffer row re-encodes to a row that decodes
//! to the same cells, and that encoding is canonical.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use reader_otsstream::convert::{multi_version, single_version};
use reader_otsstream::pb;
use reader_otsstream::plainbuffer::{decode_rows, decode_single_row, encode_row, SequenceInfo};

fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Option<M> {
    let message = M::decode(bytes).ok()?;
    let encoded = message.encode_to_vec();
    let again = M::decode(encoded.as_slice()).expect("own encoding decodes");
    assert_eq!(again, message);
    assert_eq!(again.encode_to_vec(), encoded, "not canonical");
    Some(message)
}

fn rows(bytes: &[u8]) {
    let Ok(rows) = decode_rows(bytes) else {
        return;
    };
    for row in rows {
        let encoded = encode_row(&row.primary_key, &row.cells, row.delete_marker);
        let again = decode_single_row(&encoded).expect("own encoding decodes");
        assert_eq!(
            format!("{:?}", again.primary_key),
            format!("{:?}", row.primary_key)
        );
        assert_eq!(format!("{:?}", again.cells), format!("{:?}", row.cells));
        assert_eq!(again.delete_marker, row.delete_marker);
        let canonical = encode_row(&again.primary_key, &again.cells, again.delete_marker);
        assert_eq!(canonical, encoded, "PlainBuffer encoding not canonical");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 9 {
        0 => {
            let _ = round_trip::<pb::ListStreamResponse>(rest);
        }
        1 => {
            let _ = round_trip::<pb::DescribeStreamResponse>(rest);
        }
        2 => {
            let _ = round_trip::<pb::GetShardIteratorResponse>(rest);
        }
        3 => {
            let _ = round_trip::<pb::DescribeTableResponse>(rest);
        }
        4 => {
            if let Some(r) = round_trip::<pb::GetRangeResponse>(rest) {
                rows(&r.rows);
                if let Some(next) = &r.next_start_primary_key {
                    rows(next);
                }
            }
        }
        5 => {
            if let Some(r) = round_trip::<pb::GetRowResponse>(rest) {
                rows(&r.row);
            }
        }
        6 => {
            let _ = round_trip::<pb::BatchWriteRowResponse>(rest);
        }
        7 => {
            let _ = round_trip::<pb::Error>(rest);
        }
        _ => {
            let Some(answer) = round_trip::<pb::GetStreamRecordResponse>(rest) else {
                return;
            };
            let info = SequenceInfo {
                epoch: 1,
                timestamp_us: 1_700_000_000_000_000,
                row_index: 0,
            };
            let columns = vec!["a".to_owned(), "b".to_owned()];
            for record in &answer.stream_records {
                let Ok(row) = decode_single_row(&record.record) else {
                    continue;
                };
                let mut out = Vec::new();
                let _ = multi_version(record.action_type, &row, &info, "shard", true, &mut out);
                let _ = single_version(record.action_type, &row, &info, "shard", &columns, true);
            }
        }
    }
});
