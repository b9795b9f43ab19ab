//! The test-control interface every service answers under `/-/` on its own port.
//!
//! | request | effect |
//! |---|---|
//! | `GET /-/health` | `{"ok": true}` |
//! | `GET /-/faults` | the active rules and every fault injected so far |
//! | `POST /-/faults` | add a [`FaultRule`](super::FaultRule) (JSON body) |
//! | `DELETE /-/faults` | remove every rule |
//! | `GET /-/clock` | `{"now_ms", "offset_ms"}` |
//! | `POST /-/clock` | `{"advance_ms": n}` or `{"offset_ms": n}` |
//!
//! Services merge this router with their own `/-/…` routes (shard split, table dump,
//! open multipart uploads, …).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{Clock, FaultPlan, FaultRule};

#[derive(Clone)]
struct AdminState {
    faults: FaultPlan,
    clock: Clock,
}

/// The shared admin routes for one service.
pub fn router(faults: FaultPlan, clock: Clock) -> Router {
    Router::new()
        .route("/-/health", get(|| async { Json(json!({"ok": true})) }))
        .route(
            "/-/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/-/clock", get(get_clock).post(set_clock))
        .with_state(AdminState { faults, clock })
}

async fn list_faults(State(s): State<AdminState>) -> Json<serde_json::Value> {
    Json(json!({"rules": s.faults.rules(), "injected": s.faults.injected()}))
}

async fn add_fault(State(s): State<AdminState>, body: axum::body::Bytes) -> Response {
    let rule: FaultRule = match serde_json::from_slice(&body) {
        Ok(rule) => rule,
        Err(e) => return bad_request(format!("fault rule: {e}")),
    };
    match s.faults.add(rule) {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e) => bad_request(e.to_string()),
    }
}

async fn clear_faults(State(s): State<AdminState>) -> Json<serde_json::Value> {
    s.faults.clear();
    Json(json!({"ok": true}))
}

async fn get_clock(State(s): State<AdminState>) -> Json<serde_json::Value> {
    Json(json!({"now_ms": s.clock.now_ms(), "offset_ms": s.clock.offset_ms()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockChange {
    advance_ms: Option<i64>,
    offset_ms: Option<i64>,
}

async fn set_clock(State(s): State<AdminState>, body: axum::body::Bytes) -> Response {
    let change: ClockChange = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return bad_request(format!("clock change: {e}")),
    };
    match (change.advance_ms, change.offset_ms) {
        (Some(d), None) => s.clock.advance_ms(d),
        (None, Some(o)) => s.clock.set_offset_ms(o),
        _ => return bad_request("clock change: give exactly one of advance_ms, offset_ms".into()),
    }
    get_clock(State(s)).await.into_response()
}

/// A 400 answer with a JSON error body, for admin requests.
pub fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}
