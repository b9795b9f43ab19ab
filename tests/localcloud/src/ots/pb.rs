//! Tablestore protobuf messages (proto2), written by hand with `prost` derives.
//!
//! Field numbers are the union of the Java, Go and Python SDK protos (spec §2).
//! Request messages declare every field optional so that the server can tell a missing
//! required field from a default value and answer `OTSParameterInvalid`; response
//! messages declare required fields as plain values so they are always encoded.

use prost::Message;

/// `Error` body of every non-2xx answer.
#[derive(Clone, PartialEq, Message)]
pub struct Error {
    #[prost(string, required, tag = "1")]
    pub code: String,
    #[prost(string, optional, tag = "2")]
    pub message: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PrimaryKeySchema {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(int32, optional, tag = "2")]
    pub r#type: Option<i32>,
    #[prost(int32, optional, tag = "3")]
    pub option: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct DefinedColumnSchema {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(int32, optional, tag = "2")]
    pub r#type: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TableMeta {
    #[prost(string, optional, tag = "1")]
    pub table_name: Option<String>,
    #[prost(message, repeated, tag = "2")]
    pub primary_key: Vec<PrimaryKeySchema>,
    #[prost(message, repeated, tag = "3")]
    pub defined_column: Vec<DefinedColumnSchema>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TableOptions {
    #[prost(int32, optional, tag = "1")]
    pub time_to_live: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub max_versions: Option<i32>,
    #[prost(int64, optional, tag = "5")]
    pub deviation_cell_version_in_sec: Option<i64>,
    #[prost(bool, optional, tag = "6")]
    pub allow_update: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CapacityUnit {
    #[prost(int32, optional, tag = "1")]
    pub read: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub write: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ReservedThroughput {
    #[prost(message, optional, tag = "1")]
    pub capacity_unit: Option<CapacityUnit>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ReservedThroughputDetails {
    #[prost(message, required, tag = "1")]
    pub capacity_unit: CapacityUnit,
    #[prost(int64, required, tag = "2")]
    pub last_increase_time: i64,
    #[prost(int64, optional, tag = "3")]
    pub last_decrease_time: Option<i64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ConsumedCapacity {
    #[prost(message, required, tag = "1")]
    pub capacity_unit: CapacityUnit,
}

#[derive(Clone, PartialEq, Message)]
pub struct StreamSpecification {
    #[prost(bool, optional, tag = "1")]
    pub enable_stream: Option<bool>,
    #[prost(int32, optional, tag = "2")]
    pub expiration_time: Option<i32>,
    #[prost(string, repeated, tag = "3")]
    pub columns_to_get: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
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

#[derive(Clone, PartialEq, Message)]
pub struct Condition {
    #[prost(int32, optional, tag = "1")]
    pub row_existence: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub column_condition: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ReturnContent {
    #[prost(int32, optional, tag = "1")]
    pub return_type: Option<i32>,
    #[prost(string, repeated, tag = "2")]
    pub return_column_names: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TimeRange {
    #[prost(int64, optional, tag = "1")]
    pub start_time: Option<i64>,
    #[prost(int64, optional, tag = "2")]
    pub end_time: Option<i64>,
    #[prost(int64, optional, tag = "3")]
    pub specific_time: Option<i64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PartitionRange {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub begin: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub end: Option<Vec<u8>>,
}

// ----- tables -----

#[derive(Clone, PartialEq, Message)]
pub struct CreateTableRequest {
    #[prost(message, optional, tag = "1")]
    pub table_meta: Option<TableMeta>,
    #[prost(message, optional, tag = "2")]
    pub reserved_throughput: Option<ReservedThroughput>,
    #[prost(message, optional, tag = "3")]
    pub table_options: Option<TableOptions>,
    #[prost(message, repeated, tag = "4")]
    pub partitions: Vec<PartitionRange>,
    #[prost(message, optional, tag = "5")]
    pub stream_spec: Option<StreamSpecification>,
    #[prost(bytes = "vec", optional, tag = "6")]
    pub sse_spec: Option<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "7")]
    pub index_metas: Vec<Vec<u8>>,
    #[prost(bool, optional, tag = "8")]
    pub enable_local_txn: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Empty {}

#[derive(Clone, PartialEq, Message)]
pub struct ListTableResponse {
    #[prost(string, repeated, tag = "1")]
    pub table_names: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TableNameRequest {
    #[prost(string, optional, tag = "1")]
    pub table_name: Option<String>,
}

/// `DescribeTableResponse` as sent: `table_meta` uses the request-shaped schema
/// messages, so their required fields are always filled by the server.
#[derive(Clone, PartialEq, Message)]
pub struct DescribeTableResponse {
    #[prost(message, required, tag = "1")]
    pub table_meta: TableMeta,
    #[prost(message, required, tag = "2")]
    pub reserved_throughput_details: ReservedThroughputDetails,
    #[prost(message, required, tag = "3")]
    pub table_options: TableOptions,
    /// Go SDK only (`TableStatus`, required there): `ACTIVE = 1`.
    #[prost(int32, optional, tag = "4")]
    pub table_status: Option<i32>,
    #[prost(message, optional, tag = "5")]
    pub stream_details: Option<StreamDetails>,
    #[prost(bytes = "vec", repeated, tag = "6")]
    pub shard_splits: Vec<Vec<u8>>,
    /// Java SDK only.
    #[prost(int64, optional, tag = "9")]
    pub creation_time: Option<i64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct UpdateTableRequest {
    #[prost(string, optional, tag = "1")]
    pub table_name: Option<String>,
    #[prost(message, optional, tag = "2")]
    pub reserved_throughput: Option<ReservedThroughput>,
    #[prost(message, optional, tag = "3")]
    pub table_options: Option<TableOptions>,
    #[prost(message, optional, tag = "4")]
    pub stream_spec: Option<StreamSpecification>,
}

#[derive(Clone, PartialEq, Message)]
pub struct UpdateTableResponse {
    #[prost(message, required, tag = "1")]
    pub reserved_throughput_details: ReservedThroughputDetails,
    #[prost(message, required, tag = "2")]
    pub table_options: TableOptions,
    #[prost(message, optional, tag = "3")]
    pub stream_details: Option<StreamDetails>,
}

// ----- rows -----

#[derive(Clone, PartialEq, Message)]
pub struct GetRowRequest {
    #[prost(string, optional, tag = "1")]
    pub table_name: Option<String>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub primary_key: Option<Vec<u8>>,
    #[prost(string, repeated, tag = "3")]
    pub columns_to_get: Vec<String>,
    #[prost(message, optional, tag = "4")]
    pub time_range: Option<TimeRange>,
    #[prost(int32, optional, tag = "5")]
    pub max_versions: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "7")]
    pub filter: Option<Vec<u8>>,
    #[prost(string, optional, tag = "8")]
    pub start_column: Option<String>,
    #[prost(string, optional, tag = "9")]
    pub end_column: Option<String>,
    #[prost(bytes = "vec", optional, tag = "10")]
    pub token: Option<Vec<u8>>,
    #[prost(string, optional, tag = "11")]
    pub transaction_id: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GetRowResponse {
    #[prost(message, required, tag = "1")]
    pub consumed: ConsumedCapacity,
    #[prost(bytes = "vec", required, tag = "2")]
    pub row: Vec<u8>,
}

/// `PutRowRequest`, `UpdateRowRequest` and `DeleteRowRequest` share one layout.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRowRequest {
    #[prost(string, optional, tag = "1")]
    pub table_name: Option<String>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub row: Option<Vec<u8>>,
    #[prost(message, optional, tag = "3")]
    pub condition: Option<Condition>,
    #[prost(message, optional, tag = "4")]
    pub return_content: Option<ReturnContent>,
    #[prost(string, optional, tag = "5")]
    pub transaction_id: Option<String>,
}

/// `PutRowResponse`, `UpdateRowResponse` and `DeleteRowResponse`.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRowResponse {
    #[prost(message, required, tag = "1")]
    pub consumed: ConsumedCapacity,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub row: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TableInBatchGetRowRequest {
    #[prost(string, optional, tag = "1")]
    pub table_name: Option<String>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub primary_key: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub token: Vec<Vec<u8>>,
    #[prost(string, repeated, tag = "4")]
    pub columns_to_get: Vec<String>,
    #[prost(message, optional, tag = "5")]
    pub time_range: Option<TimeRange>,
    #[prost(int32, optional, tag = "6")]
    pub max_versions: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "8")]
    pub filter: Option<Vec<u8>>,
    #[prost(string, optional, tag = "9")]
    pub start_column: Option<String>,
    #[prost(string, optional, tag = "10")]
    pub end_column: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct BatchGetRowRequest {
    #[prost(message, repeated, tag = "1")]
    pub tables: Vec<TableInBatchGetRowRequest>,
}

/// A row of a `BatchGetRowResponse` or `BatchWriteRowResponse` (same fields 1–4).
#[derive(Clone, PartialEq, Message)]
pub struct RowInBatchResponse {
    #[prost(bool, required, tag = "1")]
    pub is_ok: bool,
    #[prost(message, optional, tag = "2")]
    pub error: Option<Error>,
    #[prost(message, optional, tag = "3")]
    pub consumed: Option<ConsumedCapacity>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub row: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TableInBatchResponse {
    #[prost(string, required, tag = "1")]
    pub table_name: String,
    #[prost(message, repeated, tag = "2")]
    pub rows: Vec<RowInBatchResponse>,
}

#[derive(Clone, PartialEq, Message)]
pub struct BatchResponse {
    #[prost(message, repeated, tag = "1")]
    pub tables: Vec<TableInBatchResponse>,
}

#[derive(Clone, PartialEq, Message)]
pub struct RowInBatchWriteRowRequest {
    #[prost(int32, optional, tag = "1")]
    pub r#type: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub row_change: Option<Vec<u8>>,
    #[prost(message, optional, tag = "3")]
    pub condition: Option<Condition>,
    #[prost(message, optional, tag = "4")]
    pub return_content: Option<ReturnContent>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TableInBatchWriteRowRequest {
    #[prost(string, optional, tag = "1")]
    pub table_name: Option<String>,
    #[prost(message, repeated, tag = "2")]
    pub rows: Vec<RowInBatchWriteRowRequest>,
}

#[derive(Clone, PartialEq, Message)]
pub struct BatchWriteRowRequest {
    #[prost(message, repeated, tag = "1")]
    pub tables: Vec<TableInBatchWriteRowRequest>,
    #[prost(string, optional, tag = "2")]
    pub transaction_id: Option<String>,
    #[prost(bool, optional, tag = "3")]
    pub is_atomic: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GetRangeRequest {
    #[prost(string, optional, tag = "1")]
    pub table_name: Option<String>,
    #[prost(int32, optional, tag = "2")]
    pub direction: Option<i32>,
    #[prost(string, repeated, tag = "3")]
    pub columns_to_get: Vec<String>,
    #[prost(message, optional, tag = "4")]
    pub time_range: Option<TimeRange>,
    #[prost(int32, optional, tag = "5")]
    pub max_versions: Option<i32>,
    #[prost(int32, optional, tag = "6")]
    pub limit: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "7")]
    pub inclusive_start_primary_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "8")]
    pub exclusive_end_primary_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "10")]
    pub filter: Option<Vec<u8>>,
    #[prost(string, optional, tag = "11")]
    pub start_column: Option<String>,
    #[prost(string, optional, tag = "12")]
    pub end_column: Option<String>,
    #[prost(bytes = "vec", optional, tag = "13")]
    pub token: Option<Vec<u8>>,
    #[prost(string, optional, tag = "14")]
    pub transaction_id: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GetRangeResponse {
    #[prost(message, required, tag = "1")]
    pub consumed: ConsumedCapacity,
    #[prost(bytes = "vec", required, tag = "2")]
    pub rows: Vec<u8>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub next_start_primary_key: Option<Vec<u8>>,
}

// ----- stream -----

#[derive(Clone, PartialEq, Message)]
pub struct ListStreamRequest {
    #[prost(string, optional, tag = "1")]
    pub table_name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Stream {
    #[prost(string, required, tag = "1")]
    pub stream_id: String,
    #[prost(string, required, tag = "2")]
    pub table_name: String,
    #[prost(int64, required, tag = "3")]
    pub creation_time: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListStreamResponse {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<Stream>,
}

#[derive(Clone, PartialEq, Message)]
pub struct DescribeStreamRequest {
    #[prost(string, optional, tag = "1")]
    pub stream_id: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub inclusive_start_shard_id: Option<String>,
    #[prost(int32, optional, tag = "3")]
    pub shard_limit: Option<i32>,
    #[prost(bool, optional, tag = "4")]
    pub support_timeseries_data_table: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
pub struct StreamShard {
    #[prost(string, required, tag = "1")]
    pub shard_id: String,
    #[prost(string, optional, tag = "2")]
    pub parent_id: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub parent_sibling_id: Option<String>,
}

/// `StreamStatus::STREAM_ACTIVE`.
pub const STREAM_ACTIVE: i32 = 2;

#[derive(Clone, PartialEq, Message)]
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

#[derive(Clone, PartialEq, Message)]
pub struct GetShardIteratorRequest {
    #[prost(string, optional, tag = "1")]
    pub stream_id: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub shard_id: Option<String>,
    /// Microseconds (Java/Go SDKs only).
    #[prost(int64, optional, tag = "3")]
    pub timestamp: Option<i64>,
    #[prost(string, optional, tag = "4")]
    pub token: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GetShardIteratorResponse {
    #[prost(string, required, tag = "1")]
    pub shard_iterator: String,
    #[prost(string, optional, tag = "2")]
    pub next_token: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GetStreamRecordRequest {
    #[prost(string, optional, tag = "1")]
    pub shard_iterator: Option<String>,
    #[prost(int32, optional, tag = "2")]
    pub limit: Option<i32>,
    #[prost(string, optional, tag = "3")]
    pub table_name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct StreamRecord {
    #[prost(int32, required, tag = "1")]
    pub action_type: i32,
    #[prost(bytes = "bytes", required, tag = "2")]
    pub record: bytes::Bytes,
}

#[derive(Clone, PartialEq, Message)]
pub struct GetStreamRecordResponse {
    #[prost(message, repeated, tag = "1")]
    pub stream_records: Vec<StreamRecord>,
    #[prost(string, optional, tag = "2")]
    pub next_shard_iterator: Option<String>,
}

/// Decodes a request body; a body that is not the message answers `OTSParameterInvalid`.
pub fn decode<M: Message + Default>(body: &[u8]) -> Result<M, super::error::OtsError> {
    M::decode(body)
        .map_err(|e| super::error::OtsError::invalid(format!("Invalid request body: {e}.")))
}

/// Takes a required request field or answers `OTSParameterInvalid`.
pub fn required<T>(value: Option<T>, name: &str) -> Result<T, super::error::OtsError> {
    value.ok_or_else(|| super::error::OtsError::invalid(format!("Missing required field: {name}.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_fields_are_encoded_even_when_empty() {
        // Java rejects a GetRowResponse / GetRangeResponse without `row` / `rows`.
        let consumed = ConsumedCapacity {
            capacity_unit: CapacityUnit::default(),
        };
        let get = GetRowResponse {
            consumed: consumed.clone(),
            row: Vec::new(),
        };
        assert_eq!(
            get.encode_to_vec(),
            vec![0x0a, 0x02, 0x0a, 0x00, 0x12, 0x00]
        );
        let range = GetRangeResponse {
            consumed,
            rows: Vec::new(),
            next_start_primary_key: None,
        };
        assert!(range.encode_to_vec().ends_with(&[0x12, 0x00]));
        let shard = StreamShard {
            shard_id: "s".into(),
            parent_id: None,
            parent_sibling_id: None,
        };
        assert_eq!(shard.encode_to_vec(), vec![0x0a, 0x01, b's']);
    }
}
