//! The Tablestore protobuf messages this plugin sends and reads (proto2, spec
//! `tablestore.md` §2), written by hand with prost's derive. Enums are carried as
//! `int32` (the same varint on the wire); their values are the constants below.
//! Only the fields this plugin uses are declared; unknown fields are skipped on decode.

#![allow(missing_docs)]

/// `PrimaryKeyType`
pub const PK_INTEGER: i32 = 1;
pub const PK_STRING: i32 = 2;
pub const PK_BINARY: i32 = 3;
/// `Direction`
pub const FORWARD: i32 = 0;
pub const BACKWARD: i32 = 1;
/// `ActionType`
pub const PUT_ROW: i32 = 1;
pub const UPDATE_ROW: i32 = 2;
pub const DELETE_ROW: i32 = 3;
/// `RowExistenceExpectation`
pub const IGNORE: i32 = 0;
/// `OperationType` of BatchWriteRow
pub const OP_PUT: i32 = 1;

#[derive(Clone, PartialEq, prost::Message)]
pub struct Error {
    #[prost(string, required, tag = "1")]
    pub code: String,
    #[prost(string, optional, tag = "2")]
    pub message: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PrimaryKeySchema {
    #[prost(string, required, tag = "1")]
    pub name: String,
    #[prost(int32, required, tag = "2")]
    pub r#type: i32,
    #[prost(int32, optional, tag = "3")]
    pub option: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TableMeta {
    #[prost(string, required, tag = "1")]
    pub table_name: String,
    #[prost(message, repeated, tag = "2")]
    pub primary_key: Vec<PrimaryKeySchema>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TableOptions {
    #[prost(int32, optional, tag = "1")]
    pub time_to_live: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub max_versions: Option<i32>,
    #[prost(int64, optional, tag = "5")]
    pub deviation_cell_version_in_sec: Option<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CapacityUnit {
    #[prost(int32, optional, tag = "1")]
    pub read: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub write: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReservedThroughput {
    #[prost(message, required, tag = "1")]
    pub capacity_unit: CapacityUnit,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Condition {
    #[prost(int32, required, tag = "1")]
    pub row_existence: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamSpecification {
    #[prost(bool, required, tag = "1")]
    pub enable_stream: bool,
    #[prost(int32, optional, tag = "2")]
    pub expiration_time: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamDetails {
    #[prost(bool, required, tag = "1")]
    pub enable_stream: bool,
    #[prost(string, optional, tag = "2")]
    pub stream_id: Option<String>,
    #[prost(int32, optional, tag = "3")]
    pub expiration_time: Option<i32>,
    #[prost(int64, optional, tag = "4")]
    pub last_enable_time: Option<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateTableRequest {
    #[prost(message, required, tag = "1")]
    pub table_meta: TableMeta,
    #[prost(message, required, tag = "2")]
    pub reserved_throughput: ReservedThroughput,
    #[prost(message, optional, tag = "3")]
    pub table_options: Option<TableOptions>,
    #[prost(message, optional, tag = "5")]
    pub stream_spec: Option<StreamSpecification>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DescribeTableRequest {
    #[prost(string, required, tag = "1")]
    pub table_name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DescribeTableResponse {
    #[prost(message, required, tag = "1")]
    pub table_meta: TableMeta,
    #[prost(message, optional, tag = "3")]
    pub table_options: Option<TableOptions>,
    #[prost(message, optional, tag = "5")]
    pub stream_details: Option<StreamDetails>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateTableRequest {
    #[prost(string, required, tag = "1")]
    pub table_name: String,
    #[prost(message, optional, tag = "4")]
    pub stream_spec: Option<StreamSpecification>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PutRowRequest {
    #[prost(string, required, tag = "1")]
    pub table_name: String,
    #[prost(bytes = "vec", required, tag = "2")]
    pub row: Vec<u8>,
    #[prost(message, required, tag = "3")]
    pub condition: Condition,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateRowRequest {
    #[prost(string, required, tag = "1")]
    pub table_name: String,
    #[prost(bytes = "vec", required, tag = "2")]
    pub row_change: Vec<u8>,
    #[prost(message, required, tag = "3")]
    pub condition: Condition,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteRowRequest {
    #[prost(string, required, tag = "1")]
    pub table_name: String,
    #[prost(bytes = "vec", required, tag = "2")]
    pub primary_key: Vec<u8>,
    #[prost(message, required, tag = "3")]
    pub condition: Condition,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RowInBatchWriteRowRequest {
    #[prost(int32, required, tag = "1")]
    pub r#type: i32,
    #[prost(bytes = "vec", required, tag = "2")]
    pub row_change: Vec<u8>,
    #[prost(message, required, tag = "3")]
    pub condition: Condition,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TableInBatchWriteRowRequest {
    #[prost(string, required, tag = "1")]
    pub table_name: String,
    #[prost(message, repeated, tag = "2")]
    pub rows: Vec<RowInBatchWriteRowRequest>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct BatchWriteRowRequest {
    #[prost(message, repeated, tag = "1")]
    pub tables: Vec<TableInBatchWriteRowRequest>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RowInBatchWriteRowResponse {
    #[prost(bool, required, tag = "1")]
    pub is_ok: bool,
    #[prost(message, optional, tag = "2")]
    pub error: Option<Error>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TableInBatchWriteRowResponse {
    #[prost(string, required, tag = "1")]
    pub table_name: String,
    #[prost(message, repeated, tag = "2")]
    pub rows: Vec<RowInBatchWriteRowResponse>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct BatchWriteRowResponse {
    #[prost(message, repeated, tag = "1")]
    pub tables: Vec<TableInBatchWriteRowResponse>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetRowRequest {
    #[prost(string, required, tag = "1")]
    pub table_name: String,
    #[prost(bytes = "vec", required, tag = "2")]
    pub primary_key: Vec<u8>,
    #[prost(int32, optional, tag = "5")]
    pub max_versions: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetRowResponse {
    #[prost(bytes = "vec", required, tag = "2")]
    pub row: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetRangeRequest {
    #[prost(string, required, tag = "1")]
    pub table_name: String,
    #[prost(int32, required, tag = "2")]
    pub direction: i32,
    #[prost(int32, optional, tag = "5")]
    pub max_versions: Option<i32>,
    #[prost(int32, optional, tag = "6")]
    pub limit: Option<i32>,
    #[prost(bytes = "vec", required, tag = "7")]
    pub inclusive_start_primary_key: Vec<u8>,
    #[prost(bytes = "vec", required, tag = "8")]
    pub exclusive_end_primary_key: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetRangeResponse {
    #[prost(bytes = "vec", required, tag = "2")]
    pub rows: Vec<u8>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub next_start_primary_key: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListStreamRequest {
    #[prost(string, optional, tag = "1")]
    pub table_name: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Stream {
    #[prost(string, required, tag = "1")]
    pub stream_id: String,
    #[prost(string, required, tag = "2")]
    pub table_name: String,
    #[prost(int64, required, tag = "3")]
    pub creation_time: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListStreamResponse {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<Stream>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DescribeStreamRequest {
    #[prost(string, required, tag = "1")]
    pub stream_id: String,
    #[prost(string, optional, tag = "2")]
    pub inclusive_start_shard_id: Option<String>,
    #[prost(int32, optional, tag = "3")]
    pub shard_limit: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamShard {
    #[prost(string, required, tag = "1")]
    pub shard_id: String,
    #[prost(string, optional, tag = "2")]
    pub parent_id: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub parent_sibling_id: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DescribeStreamResponse {
    #[prost(string, required, tag = "1")]
    pub stream_id: String,
    #[prost(int32, required, tag = "2")]
    pub expiration_time: i32,
    #[prost(string, required, tag = "3")]
    pub table_name: String,
    #[prost(int64, required, tag = "4")]
    pub creation_time: i64,
    #[prost(int32, required, tag = "5")]
    pub stream_status: i32,
    #[prost(message, repeated, tag = "6")]
    pub shards: Vec<StreamShard>,
    #[prost(string, optional, tag = "7")]
    pub next_shard_id: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetShardIteratorRequest {
    #[prost(string, required, tag = "1")]
    pub stream_id: String,
    #[prost(string, required, tag = "2")]
    pub shard_id: String,
    /// Microseconds since the epoch.
    #[prost(int64, optional, tag = "3")]
    pub timestamp: Option<i64>,
    #[prost(string, optional, tag = "4")]
    pub token: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetShardIteratorResponse {
    #[prost(string, required, tag = "1")]
    pub shard_iterator: String,
    #[prost(string, optional, tag = "2")]
    pub next_token: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetStreamRecordRequest {
    #[prost(string, required, tag = "1")]
    pub shard_iterator: String,
    #[prost(int32, optional, tag = "2")]
    pub limit: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamRecord {
    #[prost(int32, required, tag = "1")]
    pub action_type: i32,
    /// A slice of the response body when decoded from `Bytes` (no copy).
    #[prost(bytes = "bytes", required, tag = "2")]
    pub record: bytes::Bytes,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetStreamRecordResponse {
    #[prost(message, repeated, tag = "1")]
    pub stream_records: Vec<StreamRecord>,
    #[prost(string, optional, tag = "2")]
    pub next_shard_iterator: Option<String>,
}

impl GetStreamRecordResponse {
    /// Decodes an answer as `Message::decode` does: the usual layout (records of an
    /// action type then the record bytes, the next iterator) read directly, without
    /// prost's generic merging per record; anything else (other field orders, unknown
    /// fields, errors) by prost, so the values and errors are prost's.
    pub fn decode_page(body: bytes::Bytes) -> Result<Self, prost::DecodeError> {
        match decode_usual_page(&body) {
            Some(page) => Ok(page),
            None => <Self as prost::Message>::decode(body),
        }
    }
}

/// Key bytes of the usual layout: field 1 (records), 2 (next iterator) of the answer,
/// length-delimited; field 1 (action type, varint) and 2 (bytes) of a record.
const KEY_RECORD: u8 = 0x0a;
const KEY_NEXT_ITERATOR: u8 = 0x12;
const KEY_ACTION_TYPE: u8 = 0x08;
const KEY_RECORD_BYTES: u8 = 0x12;

/// The answer when it has the usual layout, `None` otherwise.
fn decode_usual_page(body: &bytes::Bytes) -> Option<GetStreamRecordResponse> {
    let b = &body[..];
    let mut pos = 0;
    let mut page = GetStreamRecordResponse::default();
    while pos < b.len() {
        let key = b[pos];
        pos += 1;
        let len = usize::try_from(varint(b, &mut pos)?).ok()?;
        let end = pos.checked_add(len).filter(|&end| end <= b.len())?;
        match key {
            KEY_RECORD => {
                if *b.get(pos)? != KEY_ACTION_TYPE {
                    return None;
                }
                pos += 1;
                // prost's int32: the varint's low 32 bits.
                let action_type = varint(b, &mut pos)? as i32;
                if *b.get(pos)? != KEY_RECORD_BYTES {
                    return None;
                }
                pos += 1;
                let record_len = usize::try_from(varint(b, &mut pos)?).ok()?;
                if pos.checked_add(record_len)? != end {
                    return None;
                }
                page.stream_records.push(StreamRecord {
                    action_type,
                    record: body.slice(pos..end),
                });
            }
            KEY_NEXT_ITERATOR => {
                let text = std::str::from_utf8(&b[pos..end]).ok()?;
                page.next_shard_iterator = Some(text.to_owned());
            }
            _ => return None,
        }
        pos = end;
    }
    Some(page)
}

/// A varint of up to 9 bytes (63 bits; longer ones are left to prost).
fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..63).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn vector(name: &str) -> Vec<u8> {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../testdata/protobuf.json")).unwrap();
        let v = doc["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap();
        hex::decode(v["hex"].as_str().unwrap()).unwrap()
    }

    #[test]
    fn decodes_the_sdk_stream_messages() {
        let r = GetStreamRecordResponse::decode(vector("get_stream_record_response").as_slice())
            .unwrap();
        assert_eq!(r.stream_records.len(), 3);
        assert_eq!(
            r.stream_records
                .iter()
                .map(|s| s.action_type)
                .collect::<Vec<_>>(),
            vec![PUT_ROW, UPDATE_ROW, DELETE_ROW]
        );
        assert_eq!(r.next_shard_iterator.as_deref(), Some("it:shard-a:3"));
        let end = GetStreamRecordResponse::decode(
            vector("get_stream_record_response_shard_end").as_slice(),
        )
        .unwrap();
        assert!(end.next_shard_iterator.is_none() && end.stream_records.is_empty());
        let d = DescribeStreamResponse::decode(
            vector("describe_stream_response_merge_paged").as_slice(),
        )
        .unwrap();
        let merged = d
            .shards
            .iter()
            .find(|s| s.shard_id == "shard-merged")
            .unwrap();
        assert!(merged.parent_id.is_some() && merged.parent_sibling_id.is_some());
        assert!(d.next_shard_id.is_some());
        let e = Error::decode(vector("error_trimmed").as_slice()).unwrap();
        assert_eq!(e.code, "OTSTrimmedDataAccess");
        let t =
            DescribeTableResponse::decode(vector("describe_table_response").as_slice()).unwrap();
        assert!(t.stream_details.unwrap().enable_stream);
    }

    fn page_strategy() -> impl proptest::strategy::Strategy<Value = GetStreamRecordResponse> {
        use proptest::prelude::*;
        let record = (
            prop_oneof![0..4i32, any::<i32>()],
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(action_type, record)| StreamRecord {
                action_type,
                record: record.into(),
            });
        (
            proptest::collection::vec(record, 0..20),
            proptest::option::of(".{0,40}"),
        )
            .prop_map(
                |(stream_records, next_shard_iterator)| GetStreamRecordResponse {
                    stream_records,
                    next_shard_iterator,
                },
            )
    }

    fn same_as_prost(bytes: &[u8]) -> Result<(), proptest::test_runner::TestCaseError> {
        let fast = GetStreamRecordResponse::decode_page(bytes::Bytes::copy_from_slice(bytes));
        let general = GetStreamRecordResponse::decode(bytes);
        match (&fast, &general) {
            (Ok(f), Ok(g)) => proptest::prop_assert_eq!(f, g),
            (Err(f), Err(g)) => proptest::prop_assert_eq!(f.to_string(), g.to_string()),
            _ => proptest::prop_assert!(false, "decode_page {fast:?}, prost {general:?}"),
        }
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn decode_page_equals_prost(
            page in page_strategy(),
            at in proptest::prelude::any::<proptest::sample::Index>(),
            byte in proptest::prelude::any::<u8>(),
            cut in proptest::prelude::any::<bool>(),
        ) {
            let bytes = page.encode_to_vec();
            // Read directly unless an action type is negative (a varint of 10 bytes).
            if page.stream_records.iter().all(|r| r.action_type >= 0) {
                let usual = decode_usual_page(&bytes::Bytes::from(bytes.clone()));
                proptest::prop_assert_eq!(usual.as_ref(), Some(&page));
            }
            same_as_prost(&bytes)?;
            // Damaged: a byte changed or the answer cut short.
            if !bytes.is_empty() {
                let mut damaged = bytes.clone();
                let i = at.index(damaged.len());
                if cut {
                    damaged.truncate(i);
                } else {
                    damaged[i] = byte;
                }
                same_as_prost(&damaged)?;
            }
        }

        #[test]
        fn decode_page_equals_prost_on_any_bytes(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            same_as_prost(&bytes)?;
        }
    }

    #[test]
    fn decode_page_reads_the_sdk_vectors_as_prost() {
        for name in [
            "get_stream_record_response",
            "get_stream_record_response_shard_end",
        ] {
            same_as_prost(&vector(name)).unwrap();
        }
    }
}
