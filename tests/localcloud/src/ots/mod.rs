//! The Tablestore (OTS) emulator: one instance, named `localcloud`, on one port.
//!
//! Every operation is `POST /<Action>` with a protobuf body (spec `tablestore.md` §1).
//! Requests must carry every required `x-ots-*` header, a V2 or V4 signature made with
//! the secret of a configured key pair, a matching `x-ots-contentmd5`, the instance name
//! `localcloud` and an `x-ots-date` within 15 minutes of the wall clock. Responses carry
//! `x-ots-contentmd5`, `x-ots-contenttype`, `x-ots-date` (wall time, microseconds),
//! `x-ots-requestid` and `authorization: OTS <id>:<signature>`, also on errors. Errors
//! are protobuf `Error` bodies with the service's status and code.
//!
//! Supported: CreateTable, ListTable, DescribeTable, UpdateTable, DeleteTable, PutRow,
//! UpdateRow, DeleteRow, GetRow, GetRange, BatchGetRow, BatchWriteRow, ListStream,
//! DescribeStream, GetShardIterator, GetStreamRecord. Every committed row write appends
//! a record (with sequence info; time = commit time in µs from the emulator clock,
//! strictly increasing per table) to the shard owning the row's first key column.
//! Filters, column conditions, tokens, transactions, indexes and partitions are refused
//! with `OTSParameterInvalid`. With a `data_dir`, the instance (tables, rows, streams,
//! records) is saved as JSON after every change and reloaded at start, so stream ids
//! and iterators stay valid across a restart; without one, state lives in memory.
//!
//! Row rules: the primary key must match the schema (`OTSInvalidPK`); reads need
//! `max_versions` or `time_range`; written versions must lie in
//! `[max(now - max_time_deviation, now - TTL), now + max_time_deviation)`; versions
//! beyond `max_versions` and older than the TTL are invisible; row-existence conditions
//! answer `403 OTSConditionCheckFail`; a BatchWriteRow naming one row twice is refused.
//! Limits: BatchWriteRow 200 rows, BatchGetRow 100 rows, 1024 columns per write,
//! GetRange pages of at most 5000 rows or 4 MB, GetStreamRecord 100 records by default
//! and at most 1000, DescribeStream 100 shards per page by default.
//!
//! Times of data (cell versions written without a timestamp, stream record times,
//! TTL, stream retention) follow the emulator clock of [`ServiceOptions`]; the
//! transport checks (`x-ots-date` skew, response dates) use the wall clock so that a
//! moved emulator clock does not make the SDKs reject every exchange.
//!
//! # Test control (`/-/` on the service port)
//!
//! Shared routes: see [`crate::common::admin`] (`/-/health`, `/-/faults`, `/-/clock`).
//! Fault rules match the action name as `operation` (e.g. `GetStreamRecord`); an
//! injected error is answered as a signed Tablestore error with the rule's status and
//! code.
//!
//! | request | effect |
//! |---|---|
//! | `POST /-/ots/backdate {"table", "ms"}` | moves the table's cell versions (stored and in stream records), stream record times, shard close times, stream creation time, table creation time and last commit time `ms` into the past (negative: into the future) |
//! | `POST /-/ots/split {"table", "shard_id"?, "split_point"?}` | closes an open shard (default: the only one) and opens two children with `parent_id` = it, split at `split_point` (a value of the first key column; hex for BINARY; default: the median first-key value of its rows); answers `{"parent", "children": [left, right]}` |
//! | `POST /-/ots/merge {"table", "shard_ids"?: [a, b]}` | closes two adjacent open shards (default: the first two by key range) and opens a child with `parent_id` = the lower, `parent_sibling_id` = the upper; answers `{"parents", "child"}` |
//! | `GET /-/ots/tables/<name>` | the table as JSON: schema, options, rows with every version, and the stream's shards with ranges, record counts and record times |
//!
//! Records of a closed shard stay readable until they expire; a closed shard leaves
//! `DescribeStream` once it is empty and its close time is older than the retention.

mod auth;
mod control;
mod error;
mod faults;
pub mod pb;
mod persist;
pub mod plainbuffer;
mod reads;
mod server;
mod state;
mod stream;
mod stream_ops;
mod tables;
mod writes;

pub use auth::{
    content_md5, request_string_to_sign, response_string_to_sign, sign_v2, sign_v4, v4_signing_key,
    Signer,
};
pub use error::OtsError;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::any;
use axum::Router;

use crate::common::{admin, server as common_server, ServiceHandle, ServiceOptions};

/// An in-memory instance driven without HTTP, for the fuzz targets (`fuzz/`): each
/// call decodes and runs one action's request body as the server does (after the
/// signature and checksum checks, which the fuzzer could not pass).
#[doc(hidden)]
#[derive(Default)]
pub struct FuzzInstance(state::Instance);

impl FuzzInstance {
    /// Runs `action` with `body` at `now_ms` (emulator time, milliseconds).
    pub fn run(&mut self, action: &str, body: &[u8], now_ms: i64) -> Result<Vec<u8>, OtsError> {
        let now = writes::Now {
            ms: now_ms,
            us: now_ms.saturating_mul(1000),
        };
        stream_ops::trim_all(&mut self.0, now.us);
        server::run(&mut self.0, action, body, now)
    }
}

/// The instance name clients must send in `x-ots-instancename`.
pub const INSTANCE: &str = "localcloud";

/// Starts the service on `options.bind`.
pub async fn start(options: ServiceOptions) -> std::io::Result<ServiceHandle> {
    let db = match &options.data_dir {
        Some(dir) => persist::load(dir).map_err(std::io::Error::other)?,
        None => state::Instance::default(),
    };
    let service = Arc::new(
        server::Service::new(
            INSTANCE.to_owned(),
            options.clock.clone(),
            options.faults.clone(),
            options.credentials.clone(),
            options.data_dir.clone(),
            db,
        )
        .with_sts(options.sts.clone()),
    );
    let router = Router::new()
        .route("/{action}", any(server::handle))
        .fallback(server::fallback)
        .with_state(service.clone())
        .merge(control::router(service))
        .merge(admin::router(options.faults.clone(), options.clock.clone()))
        .layer(DefaultBodyLimit::max(server::MAX_BODY_BYTES));
    let mut handle = common_server::serve(&options, router).await?;
    handle.info.insert("instance".into(), INSTANCE.into());
    Ok(handle)
}
