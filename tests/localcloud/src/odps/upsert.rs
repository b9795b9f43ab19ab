//! Tunnel upsert sessions on Delta tables (`/projects/<p>/tables/<t>/upserts`), as
//! pyodps 0.13.2 (`TableUpsertSession`, `io.writer.Upsert`) and the Java SDK
//! (`UpsertSessionImpl`, `UpsertStreamImpl`) drive them:
//!
//! | request | operation |
//! |---|---|
//! | `POST …/upserts?slotnum=N[&partition=…][&lifecycle=H]` | `CreateUpsertSession` |
//! | `GET …/upserts?upsertid=ID` | `GetUpsertSession` |
//! | `PUT …/upserts?upsertid=ID&bucketid=B&slotid=S&record_count=N` | `UpsertData` |
//! | `POST …/upserts?upsertid=ID` | `CommitUpsert` |
//! | `DELETE …/upserts?upsertid=ID` | `AbortUpsert` |
//!
//! Every answer (errors aside) is the session document: `id`, `status` (`normal`,
//! `committed`, `expired`, `aborted`), `schema` (data columns with `column_id`, and
//! partition keys), `hash_key` (the primary key), `hasher` (`default`), `slots`
//! (`slot_id`, `worker_addr`, `buckets`), `quota_name`, `enable_partial_update`.
//!
//! A data request carries one Tunnel block (see [`super::wire`]; `deflate` allowed)
//! whose records are the data columns followed by `__version bigint`,
//! `__app_version bigint`, `__operation tinyint` (`'U'` 85 or `'D'` 68),
//! `__key_cols array<bigint>` and `__value_cols array<bigint>` (empty: the whole row;
//! else the `column_id`s a partial update sets). The request must name the bucket's
//! slot (`slotid`) and its `worker_addr` (header `odps-tunnel-routed-server`, else 308
//! with the right address in that header, as the SDKs expect), `record_count` must be
//! the block's record count, every record must have a non-NULL key that hashes to
//! `bucketid` (see [`super::delta`]). A refused request changes nothing.
//!
//! Changes are kept in arrival order and applied at commit, in that order (a key
//! always goes to the same bucket, so each key's changes keep the order the client
//! sent them); the last change of a key wins. Commit is idempotent (a committed
//! session answers `committed` again, as the SDKs' commit polling needs); data or a
//! commit after abort or expiry is `StatusConflict`. Sessions expire after their
//! `lifecycle` (hours, 1–24; default 24) by the emulator clock.

use serde_json::{json, Value as Json};

mod records;

use super::delta::{self, Change};
use super::error::{OdpsError, OdpsResult};
use super::render::OWNER;
use super::routes::Route;
use super::server::{Call, Odps, Reply};
use super::sessions::session_id;
use super::state::{parse_spec, Catalog, Column};
use super::tunnel::requested_partition;
use records::inflate;

/// Default session lifetime.
pub const DEFAULT_LIFECYCLE_MS: i64 = 24 * 3600 * 1000;

/// The header naming the worker a request is meant for.
pub const ROUTED_SERVER: &str = "odps-tunnel-routed-server";

/// The lifecycle of an upsert session (lower-case on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsertStatus {
    Normal,
    Committed,
    Expired,
    Aborted,
}

impl UpsertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UpsertStatus::Normal => "normal",
            UpsertStatus::Committed => "committed",
            UpsertStatus::Expired => "expired",
            UpsertStatus::Aborted => "aborted",
        }
    }
}

/// One slot: a worker serving some buckets.
#[derive(Clone, Debug)]
pub struct Slot {
    pub id: String,
    pub worker_addr: String,
    pub buckets: Vec<u32>,
}

/// One upsert session.
#[derive(Clone, Debug)]
pub struct UpsertSession {
    pub id: String,
    pub project: String,
    pub table: String,
    /// Partition values in key order; empty for a non-partitioned table.
    pub partition: Vec<String>,
    pub columns: Vec<Column>,
    pub partition_keys: Vec<Column>,
    pub primary_key: Vec<String>,
    pub buckets: u32,
    pub slots: Vec<Slot>,
    pub partial_update: bool,
    pub created_ms: i64,
    pub lifecycle_ms: i64,
    pub status: UpsertStatus,
    /// Received changes in arrival order, applied at commit.
    pub changes: Vec<Change>,
    /// Accepted data requests.
    pub batches: usize,
}

impl UpsertSession {
    /// Marks the session expired if its time is up (unless committed or aborted).
    pub fn refresh(&mut self, now_ms: i64) -> UpsertStatus {
        if self.status == UpsertStatus::Normal && now_ms - self.created_ms >= self.lifecycle_ms {
            self.status = UpsertStatus::Expired;
            self.changes = Vec::new();
        }
        self.status
    }

    fn require_normal(&mut self, now_ms: i64) -> OdpsResult<()> {
        match self.refresh(now_ms) {
            UpsertStatus::Normal => Ok(()),
            status => Err(OdpsError::status_conflict(format!(
                "upsert session {} is {}",
                self.id,
                status.as_str()
            ))),
        }
    }

    /// The session document every answer carries.
    pub fn to_json(&self) -> String {
        let column = |i: usize, c: &Column, key: bool| {
            json!({"column_id": i.to_string(), "comment": c.comment, "default_value": "",
                   "name": c.name, "nullable": !key, "isNullable": !key, "type": c.ty.to_string()})
        };
        let columns: Vec<Json> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| column(i, c, self.primary_key.contains(&c.name)))
            .collect();
        let keys: Vec<Json> = self
            .partition_keys
            .iter()
            .enumerate()
            .map(|(i, c)| column(self.columns.len() + i, c, false))
            .collect();
        let slots: Vec<Json> = self
            .slots
            .iter()
            .map(|s| json!({"slot_id": s.id, "worker_addr": s.worker_addr, "buckets": s.buckets}))
            .collect();
        json!({
            "id": self.id,
            "status": self.status.as_str(),
            "schema": {"IsVirtualView": false, "columns": columns, "partitionKeys": keys},
            "hash_key": self.primary_key,
            "hasher": "default",
            "slots": slots,
            "quota_name": "",
            "enable_partial_update": self.partial_update,
            "owner": OWNER,
        })
        .to_string()
    }

    /// What decoding a data request needs, detached from the session.
    fn shape(&self) -> records::Shape {
        records::Shape {
            table: self.table.clone(),
            columns: self.columns.clone(),
            primary_key: self.primary_key.clone(),
            buckets: self.buckets,
            partial_update: self.partial_update,
        }
    }

    fn slot_of(&self, bucket: u32) -> Option<&Slot> {
        self.slots.iter().find(|s| s.buckets.contains(&bucket))
    }
}

fn not_found(id: &str) -> OdpsError {
    OdpsError::new(
        404,
        "UpsertSessionNotFound",
        format!("upsert session {id} does not exist"),
    )
}

/// The session `id` of `project.table`.
pub fn session_mut<'c>(
    catalog: &'c mut Catalog,
    project: &str,
    table: &str,
    id: &str,
) -> OdpsResult<&'c mut UpsertSession> {
    catalog
        .sessions
        .upserts
        .get_mut(id)
        .filter(|s| s.project == project && s.table.eq_ignore_ascii_case(table))
        .ok_or_else(|| not_found(id))
}

/// Runs one upsert operation. A data request's block is decoded and checked
/// without holding the catalogue lock, so requests to several buckets (or
/// sessions) proceed in parallel.
pub fn handle(odps: &Odps, call: &Call<'_>) -> OdpsResult<Reply> {
    let now = call.now_ms;
    if let Route::UpsertData {
        project,
        table,
        upsert_id,
    } = &call.route
    {
        let (shape, bucket) = {
            let mut catalog = odps.catalog();
            let s = session_mut(&mut catalog, project, table, upsert_id)?;
            check_partition(s, call)?;
            s.require_normal(now)?;
            (s.shape(), route_bucket(s, call)?)
        };
        let changes = shape.decode(call, bucket, &inflate(call)?)?;
        let mut catalog = odps.catalog();
        let s = session_mut(&mut catalog, project, table, upsert_id)?;
        // A commit or abort may have happened while the block was decoded.
        s.require_normal(now)?;
        s.changes.extend(changes);
        s.batches += 1;
        return Ok(Reply::empty(200));
    }
    let mut catalog = odps.catalog();
    let catalog = &mut *catalog;
    match &call.route {
        Route::CreateUpsertSession { project, table } => {
            let partition = requested_partition(catalog, project, table, call)?;
            create(catalog, project, table, partition, call)
        }
        Route::GetUpsertSession {
            project,
            table,
            upsert_id,
        } => {
            let s = session_mut(catalog, project, table, upsert_id)?;
            check_partition(s, call)?;
            s.refresh(now);
            Ok(Reply::json(200, s.to_json()))
        }
        Route::CommitUpsert {
            project,
            table,
            upsert_id,
        } => commit(catalog, project, table, upsert_id, call),
        Route::AbortUpsert {
            project,
            table,
            upsert_id,
        } => {
            let s = session_mut(catalog, project, table, upsert_id)?;
            check_partition(s, call)?;
            require_routed(s, call)?;
            match s.refresh(now) {
                UpsertStatus::Committed => Err(OdpsError::status_conflict(format!(
                    "upsert session {upsert_id} is committed"
                ))),
                _ => {
                    s.status = UpsertStatus::Aborted;
                    s.changes = Vec::new();
                    Ok(Reply::json(200, s.to_json()))
                }
            }
        }
        other => Err(OdpsError::invalid_argument(format!(
            "{} is not an upsert operation",
            other.operation()
        ))),
    }
}

fn create(
    catalog: &mut Catalog,
    project: &str,
    table: &str,
    partition: Vec<String>,
    call: &Call<'_>,
) -> OdpsResult<Reply> {
    let t = catalog.table(project, table)?;
    if !t.is_delta() {
        return Err(OdpsError::invalid_argument(format!(
            "table {project}.{} is not a transactional table with a primary key; \
             upsert sessions need TBLPROPERTIES (\"transactional\"=\"true\") and a PRIMARY KEY",
            t.name
        )));
    }
    if !t.partitions.contains_key(&partition) {
        return Err(OdpsError::no_such_partition(
            &t.spec_string(&partition, false),
        ));
    }
    let slot_num = call.query.get("slotnum").unwrap_or("");
    let slot_num: u32 = slot_num.parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
        OdpsError::invalid_argument(format!("slotnum {slot_num:?} is not a positive number"))
    })?;
    let lifecycle_ms = match call.query.get("lifecycle") {
        None => DEFAULT_LIFECYCLE_MS,
        Some(h) => match h.parse::<i64>() {
            Ok(h) if (1..=24).contains(&h) => h * 3600 * 1000,
            _ => {
                return Err(OdpsError::invalid_argument(format!(
                    "lifecycle {h:?} is not a whole number of hours in [1, 24]"
                )))
            }
        },
    };
    let buckets = t.bucket_num();
    let worker_addr = if call.host.contains(':') {
        call.host.clone()
    } else {
        format!("{}:80", call.host)
    };
    let slot_count = slot_num.min(buckets);
    let slots = (0..slot_count)
        .map(|i| Slot {
            id: i.to_string(),
            worker_addr: worker_addr.clone(),
            buckets: (0..buckets).filter(|b| b % slot_count == i).collect(),
        })
        .collect();
    let (name, columns, partition_keys, primary_key, partial_update) = (
        t.name.clone(),
        t.columns.clone(),
        t.partition_keys.clone(),
        t.primary_key.clone(),
        t.partial_update_enabled(),
    );
    let seq = catalog.next_id();
    let session = UpsertSession {
        id: session_id(call.now_ms, seq),
        project: project.to_owned(),
        table: name,
        partition,
        columns,
        partition_keys,
        primary_key,
        buckets,
        slots,
        partial_update,
        created_ms: call.now_ms,
        lifecycle_ms,
        status: UpsertStatus::Normal,
        changes: Vec::new(),
        batches: 0,
    };
    let body = session.to_json();
    catalog.sessions.upserts.insert(session.id.clone(), session);
    Ok(Reply::json(200, body))
}

fn commit(
    catalog: &mut Catalog,
    project: &str,
    table: &str,
    upsert_id: &str,
    call: &Call<'_>,
) -> OdpsResult<Reply> {
    let s = session_mut(catalog, project, table, upsert_id)?;
    check_partition(s, call)?;
    require_routed(s, call)?;
    match s.refresh(call.now_ms) {
        UpsertStatus::Committed => return Ok(Reply::json(200, s.to_json())),
        UpsertStatus::Normal => {}
        status => {
            return Err(OdpsError::status_conflict(format!(
                "upsert session {upsert_id} is {}",
                status.as_str()
            )))
        }
    }
    let (session_table, columns, key, part) = (
        s.table.clone(),
        s.columns.clone(),
        s.primary_key.clone(),
        s.partition.clone(),
    );
    let t = catalog.table_mut(project, &session_table)?;
    if t.columns != columns || t.primary_key != key {
        return Err(OdpsError::status_conflict(format!(
            "table {project}.{} changed since upsert session {upsert_id} was created",
            t.name
        )));
    }
    if !t.partitions.contains_key(&part) {
        return Err(OdpsError::no_such_partition(&t.spec_string(&part, false)));
    }
    let key_positions = t.key_positions();
    let s = session_mut(catalog, project, table, upsert_id)?;
    s.status = UpsertStatus::Committed;
    let changes = std::mem::take(&mut s.changes);
    let t = catalog.table_mut(project, &session_table)?;
    let now_s = call.now_ms / 1000;
    t.modified_s = now_s;
    if let Some(p) = t.partitions.get_mut(&part) {
        delta::apply(p.rows_mut()?, &key_positions, changes);
        p.modified_s = now_s;
    }
    let s = session_mut(catalog, project, table, upsert_id)?;
    Ok(Reply::json(200, s.to_json()))
}

/// A `partition` parameter, when given, must name the session's partition.
fn check_partition(s: &UpsertSession, call: &Call<'_>) -> OdpsResult<()> {
    let Some(spec) = call.query.get("partition").filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    let pairs = parse_spec(spec)?;
    let keys_match = pairs.len() == s.partition_keys.len()
        && pairs
            .iter()
            .zip(&s.partition_keys)
            .all(|((k, _), c)| k.eq_ignore_ascii_case(&c.name));
    if !keys_match || pairs.iter().map(|(_, v)| v).ne(s.partition.iter()) {
        return Err(OdpsError::invalid_partition_spec(format!(
            "partition {spec} is not the partition of upsert session {}",
            s.id
        )));
    }
    Ok(())
}

/// The routed-server header must be present and name a worker of the session.
fn require_routed(s: &UpsertSession, call: &Call<'_>) -> OdpsResult<()> {
    match call.header(ROUTED_SERVER) {
        Some(server) if s.slots.iter().any(|slot| slot.worker_addr == server) => Ok(()),
        Some(server) => Err(reassigned(server, &s.slots[0].worker_addr)),
        None => Err(OdpsError::invalid_argument(format!(
            "missing header {ROUTED_SERVER}"
        ))),
    }
}

fn reassigned(sent: &str, actual: &str) -> OdpsError {
    OdpsError::new(
        308,
        "SlotReassignment",
        format!("the request was routed to {sent} but the slot is served by {actual}"),
    )
    .with_header(ROUTED_SERVER, actual)
}

/// The request's bucket, after checking its slot and routed server.
fn route_bucket(s: &UpsertSession, call: &Call<'_>) -> OdpsResult<u32> {
    let text = call.query.get("bucketid").unwrap_or("");
    let bucket: u32 = text
        .parse()
        .ok()
        .filter(|b| *b < s.buckets)
        .ok_or_else(|| {
            OdpsError::invalid_argument(format!("bucketid {text:?} is not in [0, {})", s.buckets))
        })?;
    let slot = s
        .slot_of(bucket)
        .ok_or_else(|| OdpsError::invalid_argument(format!("bucket {bucket} has no slot")))?;
    let slot_id = call.query.get("slotid").unwrap_or("");
    if slot_id != slot.id {
        return Err(OdpsError::invalid_argument(format!(
            "slotid {slot_id:?} does not serve bucket {bucket} (slot {} does)",
            slot.id
        )));
    }
    match call.header(ROUTED_SERVER) {
        Some(server) if server == slot.worker_addr => Ok(bucket),
        Some(server) => Err(reassigned(server, &slot.worker_addr)),
        None => Err(OdpsError::invalid_argument(format!(
            "missing header {ROUTED_SERVER}"
        ))),
    }
}
