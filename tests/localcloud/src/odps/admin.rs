//! MaxCompute-specific test-control routes, under `/-/odps/` on the service port.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::server::Odps;
use super::values::row_json;

/// `GET /-/odps/projects/{project}/tables/{table}`, `GET /-/odps/uploads`,
/// `POST /-/odps/uploads/{upload_id}/age` (`{"age_ms": n}`: the session was created
/// n ms earlier, so it can expire without moving the clock that signatures are
/// checked against), `GET|DELETE /-/odps/requests`, `GET /-/odps/upserts`,
/// `POST /-/odps/upserts/{upsert_id}/age`, `POST /-/odps/upserts/{upsert_id}/reassign`.
pub fn router(odps: Arc<Odps>) -> Router {
    Router::new()
        .route("/-/odps/projects/{project}/tables/{table}", get(dump_table))
        .route("/-/odps/uploads", get(list_uploads))
        .route("/-/odps/uploads/{upload_id}/age", post(age_upload))
        .route("/-/odps/upserts", get(list_upserts))
        .route("/-/odps/upserts/{upsert_id}/age", post(age_upsert))
        .route("/-/odps/upserts/{upsert_id}/reassign", post(reassign_slot))
        .route(
            "/-/odps/requests",
            get(list_requests).delete(clear_requests),
        )
        .with_state(odps)
}

async fn dump_table(
    State(odps): State<Arc<Odps>>,
    Path((project, table)): Path<(String, String)>,
) -> Response {
    let mut catalog = odps.catalog();
    let t = match catalog.table_mut(&project, &table) {
        Ok(t) => t,
        Err(e) => {
            return (StatusCode::NOT_FOUND, Json(json!({"error": e.message}))).into_response()
        }
    };
    if let Err(e) = t.decode() {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.message})),
        )
            .into_response();
    }
    let t = &*t;
    let column_json = |c: &super::state::Column| json!({"name": c.name, "type": c.ty.to_string()});
    let partitions: Result<Vec<serde_json::Value>, _> = t
        .partitions
        .iter()
        .map(|(key, p)| {
            let values: serde_json::Map<String, serde_json::Value> = t
                .partition_keys
                .iter()
                .zip(key)
                .map(|(k, v)| (k.name.clone(), json!(v)))
                .collect();
            let rows = p.rows()?;
            Ok::<_, super::error::OdpsError>(json!({
                "spec": t.spec_string(key, false),
                "values": values,
                "rows": rows.iter().map(|r| row_json(r, &t.columns)).collect::<Vec<_>>(),
            }))
        })
        .collect();
    let partitions = match partitions {
        Ok(partitions) => partitions,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": e.message})),
            )
                .into_response()
        }
    };
    Json(json!({
        "project": project,
        "table": t.name,
        "columns": t.columns.iter().map(column_json).collect::<Vec<_>>(),
        "partition_keys": t.partition_keys.iter().map(column_json).collect::<Vec<_>>(),
        "primary_key": t.primary_key,
        "properties": t.properties,
        "partitions": partitions,
    }))
    .into_response()
}

async fn list_uploads(State(odps): State<Arc<Odps>>) -> Json<serde_json::Value> {
    let catalog = odps.catalog();
    let mut uploads: Vec<serde_json::Value> = catalog
        .sessions
        .uploads
        .values()
        .map(|s| {
            json!({
                "upload_id": s.id,
                "project": s.project,
                "table": s.table,
                "partition": s.partition,
                "status": s.status.as_str(),
                "blocks": s.blocks.keys().collect::<Vec<_>>(),
                "created_ms": s.created_ms,
            })
        })
        .collect();
    uploads.sort_by_key(|u| u["created_ms"].as_i64());
    Json(json!({"uploads": uploads}))
}

/// `GET /-/odps/upserts`: every upsert session, oldest first.
async fn list_upserts(State(odps): State<Arc<Odps>>) -> Json<serde_json::Value> {
    let catalog = odps.catalog();
    let mut list: Vec<serde_json::Value> = catalog
        .sessions
        .upserts
        .values()
        .map(|s| {
            json!({
                "upsert_id": s.id,
                "project": s.project,
                "table": s.table,
                "partition": s.partition,
                "status": s.status.as_str(),
                "batches": s.batches,
                "pending_changes": s.changes.len(),
                "created_ms": s.created_ms,
            })
        })
        .collect();
    list.sort_by_key(|u| u["created_ms"].as_i64());
    Json(json!({"upserts": list}))
}

/// `POST /-/odps/upserts/{id}/age` (`{"age_ms": n}`), as for upload sessions.
async fn age_upsert(
    State(odps): State<Arc<Odps>>,
    Path(upsert_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let age: Age = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            let error = json!({"error": format!("age: {e} (send {{\"age_ms\": n}})")});
            return (StatusCode::BAD_REQUEST, Json(error)).into_response();
        }
    };
    let mut catalog = odps.catalog();
    match catalog.sessions.upserts.get_mut(&upsert_id) {
        Some(s) => {
            s.created_ms -= age.age_ms;
            Json(json!({"upsert_id": upsert_id, "created_ms": s.created_ms})).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("upsert session {upsert_id} does not exist")})),
        )
            .into_response(),
    }
}

#[derive(serde::Deserialize)]
struct Reassign {
    slot_id: String,
    worker_addr: String,
}

/// `POST /-/odps/upserts/{id}/reassign` (`{"slot_id", "worker_addr"}`): the slot
/// moves to another worker, so requests still routed to the old one get 308
/// `SlotReassignment` naming the new one (`odps-tunnel-routed-server`).
async fn reassign_slot(
    State(odps): State<Arc<Odps>>,
    Path(upsert_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let r: Reassign = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let error =
                json!({"error": format!("reassign: {e} (send {{\"slot_id\", \"worker_addr\"}})")});
            return (StatusCode::BAD_REQUEST, Json(error)).into_response();
        }
    };
    let mut catalog = odps.catalog();
    let slot = catalog
        .sessions
        .upserts
        .get_mut(&upsert_id)
        .and_then(|s| s.slots.iter_mut().find(|slot| slot.id == r.slot_id));
    match slot {
        Some(slot) => {
            slot.worker_addr = r.worker_addr;
            Json(json!({"upsert_id": upsert_id, "slot_id": slot.id, "worker_addr": slot.worker_addr}))
                .into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("upsert session {upsert_id} has no slot {}", r.slot_id)})),
        )
            .into_response(),
    }
}

#[derive(serde::Deserialize)]
struct Age {
    age_ms: i64,
}

async fn age_upload(
    State(odps): State<Arc<Odps>>,
    Path(upload_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let age: Age = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            let error = json!({"error": format!("age: {e} (send {{\"age_ms\": n}})")});
            return (StatusCode::BAD_REQUEST, Json(error)).into_response();
        }
    };
    let mut catalog = odps.catalog();
    match catalog.sessions.uploads.get_mut(&upload_id) {
        Some(s) => {
            s.created_ms -= age.age_ms;
            Json(json!({"upload_id": upload_id, "created_ms": s.created_ms})).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("upload session {upload_id} does not exist")})),
        )
            .into_response(),
    }
}

async fn list_requests(State(odps): State<Arc<Odps>>) -> Json<serde_json::Value> {
    let log = odps.requests.lock().unwrap_or_else(|e| e.into_inner());
    Json(json!({"requests": log.iter().collect::<Vec<_>>()}))
}

async fn clear_requests(State(odps): State<Arc<Odps>>) -> Json<serde_json::Value> {
    odps.requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    Json(json!({"ok": true}))
}
