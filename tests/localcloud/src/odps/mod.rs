//! The MaxCompute (ODPS) emulator: the REST service and the Tunnel on one port.
//!
//! # Endpoints
//!
//! * Service endpoint: `http://127.0.0.1:<port>/api` (give this to the SDKs).
//! * Tunnel endpoint: `http://127.0.0.1:<port>` (the root of the same port). SDKs
//!   discover it with `GET /api/projects/<p>/tunnel?service`, which answers the
//!   `Host` the client addressed (`127.0.0.1:<port>`); pyodps then builds
//!   `http://127.0.0.1:<port>` and appends tunnel paths to it. It is also in
//!   `handle.info["tunnel_endpoint"]`.
//! * A project `localcloud` exists from the start (`handle.info["project"]`).
//!
//! Every request must carry a `Date` within 15 minutes of the emulator clock and an
//! `Authorization: ODPS <id>:<sig>` (v2) or `ODPS <id>/<yyyymmdd>/<region>/odps/aliyun_v4_request:<sig>`
//! (v4) header signed with a configured key; `authorization-sts-token`, when present,
//! must be non-empty (the emulator issues no STS tokens, so it cannot check more).
//! Failures: 401 `Unauthorized` (`ODPS-0410051:Invalid credentials - accessKeyId not found`),
//! 401 `SignatureNotMatch` (`ODPS-0410042:Invalid signature value - …`), 403
//! `RequestTimeTooSkewed`.
//!
//! # Operations (names used by fault rules)
//!
//! Service (`/api/projects/<p>/…`): `GetProject`, `GetTunnelEndpoint`, `ListTables`
//! (`tables[?name=prefix]`), `GetTable`
//! (also `?extended`), `ListPartitions` (`?partitions`), `GetPartition`
//! (`?partition=spec`), `CreateInstance` (POST `instances`, SQL run at once),
//! `GetInstance`, `GetTaskStatus` (`?taskstatus`), `GetTaskResult` (`?result`),
//! `GetInstanceSource` (`?source`).
//!
//! Tunnel (`/projects/<p>/tables/<t>` and `/projects/<p>/instances/<id>`):
//! `CreateUploadSession` (POST `?uploads`), `GetUploadSession` (GET `?uploadid`),
//! `UploadBlock` (PUT `?uploadid&blockid`), `CommitUpload` (POST `?uploadid`),
//! `CreateDownloadSession` (POST `?downloads`), `GetDownloadSession` (GET
//! `?downloadid`), `DownloadData` (GET `?downloadid&data&rowrange=(s,n)[&columns=]`).
//! Upsert sessions of Delta tables (`/projects/<p>/tables/<t>/upserts`, see [`upsert`]):
//! `CreateUpsertSession` (POST `?slotnum=N`), `GetUpsertSession` (GET `?upsertid`),
//! `UpsertData` (PUT `?upsertid&bucketid&slotid&record_count`), `CommitUpsert` (POST
//! `?upsertid`), `AbortUpsert` (DELETE `?upsertid`).
//!
//! Delta tables (`CREATE TABLE … PRIMARY KEY (…) TBLPROPERTIES ("transactional"="true")`,
//! see [`delta`]) keep their rows merged by key; their table metadata carries
//! `Reserved` (`Transactional`, `PrimaryKey`) as pyodps and the Java SDK read it.
//!
//! A fault rule names one of these operations, e.g. "the commit fails but in fact
//! succeeded": `POST /-/faults` with
//! `{"operation":"CommitUpload","times":1,"kind":"error","status":500,"code":"InternalServerError","after_apply":true}`
//! (`kind` `drop` closes the connection instead; an error's `message` defaults to
//! `injected fault on <operation>: <code>`).
//!
//! SQL statements: see [`sql`]. Blocks: see [`wire`]; a rejected block answers 400
//! `MalformedDataStream`, a committed or expired session 409 `StatusConflict`, a
//! block id outside [0, 20000) 400 `InvalidBlockID`. Upload sessions expire 24 h
//! after creation by the emulator clock (advance it with `POST /-/clock`). Blocks
//! become visible only at commit; a second commit of a session is a `StatusConflict`.
//! A block is checked in full as it arrives and kept as it came; a partition decodes
//! its committed blocks into rows when it is first read (see [`block_decoder`]).
//!
//! Order of checks for every request: route (unknown paths 404 `NoSuchObject`), injected
//! faults (latency, then an error or drop before the operation), `Date` skew and
//! signature, the operation itself, then `after_apply` faults on its response.
//!
//! Service errors are the XML `<Error><Code/><Message/><RequestId/><HostId/></Error>`
//! document, tunnel errors the JSON `{"Code","Message","RequestId"}`; both with
//! `x-odps-request-id`. Injected error faults use the same forms.
//!
//! # Test-control routes (same port)
//!
//! | request | answer |
//! |---|---|
//! | `/-/health`, `/-/faults`, `/-/clock` | shared routes, see [`crate::common::admin`] |
//! | `GET /-/odps/projects/<p>/tables/<t>` | `{"project","table","columns","partition_keys","primary_key","properties","partitions":[{"spec","values","rows"}]}`, committed rows per partition; value forms in [`values`] |
//! | `GET /-/odps/uploads` | `{"uploads":[{"upload_id","project","table","partition","status","blocks","created_ms"}]}` |
//! | `GET /-/odps/upserts` | `{"upserts":[{"upsert_id","project","table","partition","status","batches","pending_changes","created_ms"}]}` |
//! | `POST /-/odps/upserts/<id>/age` | `{"age_ms": n}`: the session was created n ms earlier (expiry without moving the clock) |
//! | `POST /-/odps/upserts/<id>/reassign` | `{"slot_id","worker_addr"}`: the slot moves; requests routed to the old worker get 308 |
//! | `GET /-/odps/requests` | `{"requests":[{"operation","method","path","query","headers","body_len","signature"}]}` (`signature`: `v2`/`v4`, `+sts`): the last 500 authenticated requests, oldest first (no `authorization` header) |
//! | `DELETE /-/odps/requests` | forget them |
//!
//! State is kept in memory only: `data_dir` is not implemented for this service.

mod admin;
pub mod auth;
#[doc(hidden)]
pub mod block_decoder;
pub mod delta;
mod error;
mod faults;
mod record_decode;
pub mod render;
mod routes;
mod server;
mod service;
mod sessions;
pub mod sql;
mod sql_exec;
mod sql_lex;
mod state;
mod tunnel;
pub mod types;
pub mod upsert;
pub mod values;
pub mod wire;

use std::sync::{Arc, Mutex};

use crate::common::{
    admin as common_admin, server as common_server, ServiceHandle, ServiceOptions,
};

/// The project created at start.
pub const DEFAULT_PROJECT: &str = "localcloud";

/// Starts the service on `options.bind`.
pub async fn start(options: ServiceOptions) -> std::io::Result<ServiceHandle> {
    let odps = Arc::new(server::Odps {
        catalog: Mutex::new(state::Catalog::with_project(DEFAULT_PROJECT)),
        credentials: options.credentials.clone(),
        clock: options.clock.clone(),
        faults: options.faults.clone(),
        started_ms: options.clock.now_ms(),
        requests: Mutex::new(Default::default()),
        sts: options.sts.clone(),
    });
    let service = axum::Router::new()
        .fallback(server::handle)
        .with_state(odps.clone());
    let router = common_admin::router(options.faults.clone(), options.clock.clone())
        .merge(admin::router(odps))
        .fallback_service(service);
    let mut handle = common_server::serve(&options, router).await?;
    let endpoint = handle.endpoint();
    handle.info.insert("project".into(), DEFAULT_PROJECT.into());
    handle
        .info
        .insert("service_endpoint".into(), format!("{endpoint}/api").into());
    handle
        .info
        .insert("tunnel_endpoint".into(), endpoint.into());
    Ok(handle)
}
