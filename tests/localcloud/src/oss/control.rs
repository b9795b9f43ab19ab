//! OSS-specific test-control routes under `/-/oss/` (documented in [`super`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::buckets::valid_bucket_name;
use super::server::Oss;
use super::state::StsCredential;
use super::wire::iso8601;
use crate::common::admin::bad_request;

/// The `/-/oss/…` routes.
pub fn router(oss: Arc<Oss>) -> Router {
    Router::new()
        .route("/-/oss/uploads", get(list_uploads))
        .route(
            "/-/oss/buckets/{name}",
            get(list_bucket).post(create_bucket),
        )
        .route("/-/oss/sts", post(issue_sts))
        .route("/-/oss/requests", get(list_requests).delete(clear_requests))
        .route("/-/oss/settings", get(get_settings).post(set_settings))
        .with_state(oss)
}

async fn list_uploads(State(oss): State<Arc<Oss>>) -> Json<serde_json::Value> {
    let store = oss.store.lock();
    let uploads: Vec<serde_json::Value> = store
        .uploads
        .iter()
        .map(|(id, upload)| {
            let parts: Vec<serde_json::Value> = upload
                .parts
                .iter()
                .map(|(number, part)| {
                    json!({
                        "part_number": number,
                        "size": part.data.len(),
                        "etag": format!("\"{}\"", part.etag),
                        "crc64": part.crc64.to_string(),
                    })
                })
                .collect();
            json!({
                "bucket": upload.bucket,
                "key": upload.key,
                "upload_id": id,
                "initiated": iso8601(upload.initiated_ms),
                "parts": parts,
            })
        })
        .collect();
    Json(json!({ "uploads": uploads }))
}

async fn create_bucket(State(oss): State<Arc<Oss>>, Path(name): Path<String>) -> Response {
    if !valid_bucket_name(&name) {
        return bad_request(format!("invalid bucket name {name:?}"));
    }
    match oss.store.lock().create_bucket(&name, oss.clock.now_ms()) {
        Ok(created) => Json(json!({ "ok": true, "created": created })).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": format!("creating bucket {name:?}: {e}") })),
        )
            .into_response(),
    }
}

async fn list_bucket(State(oss): State<Arc<Oss>>, Path(name): Path<String>) -> Response {
    let store = oss.store.lock();
    let Some(bucket) = store.buckets.get(&name) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no bucket {name:?}") })),
        )
            .into_response();
    };
    let objects: Vec<serde_json::Value> = bucket
        .objects
        .iter()
        .map(|(key, object)| {
            json!({
                "key": key,
                "size": object.data.len(),
                "etag": format!("\"{}\"", object.etag),
                "crc64": object.crc64.to_string(),
                "type": object.kind.as_str(),
                "content_type": object.meta.content_type,
                "last_modified": iso8601(object.last_modified_ms),
            })
        })
        .collect();
    Json(json!({ "name": name, "objects": objects })).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StsRequest {
    access_key_id: Option<String>,
    access_key_secret: Option<String>,
    security_token: Option<String>,
    duration_secs: Option<i64>,
}

async fn issue_sts(State(oss): State<Arc<Oss>>, body: axum::body::Bytes) -> Response {
    let request: StsRequest = if body.is_empty() || body.as_ref() == b"null" {
        StsRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(e) => return bad_request(format!("sts request: {e}")),
        }
    };
    let random = || hex::encode(rand::random::<[u8; 16]>());
    let access_key_id = request
        .access_key_id
        .unwrap_or_else(|| format!("STS.{}", random()));
    if oss
        .credentials
        .iter()
        .any(|c| c.access_key_id == access_key_id)
    {
        return bad_request("sts: that access key id is a permanent key".into());
    }
    let access_key_secret = request.access_key_secret.unwrap_or_else(random);
    let security_token = request
        .security_token
        .unwrap_or_else(|| format!("CAIS{}{}", random(), random()));
    let expires_ms = oss.clock.now_ms() + request.duration_secs.unwrap_or(3600) * 1000;
    let credential = StsCredential {
        access_key_secret: access_key_secret.clone(),
        security_token: security_token.clone(),
        expires_ms,
    };
    if let Err(e) = oss.store.lock().put_sts(&access_key_id, credential) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": format!("saving STS credentials: {e}") })),
        )
            .into_response();
    }
    Json(json!({
        "access_key_id": access_key_id,
        "access_key_secret": access_key_secret,
        "security_token": security_token,
        "expiration": iso8601(expires_ms),
    }))
    .into_response()
}

async fn list_requests(State(oss): State<Arc<Oss>>) -> Json<serde_json::Value> {
    let log = oss.log.lock().unwrap_or_else(|e| e.into_inner());
    Json(json!({ "requests": log.iter().collect::<Vec<_>>() }))
}

async fn clear_requests(State(oss): State<Arc<Oss>>) -> Json<serde_json::Value> {
    oss.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    Json(json!({ "ok": true }))
}

async fn get_settings(State(oss): State<Arc<Oss>>) -> Json<serde_json::Value> {
    Json(json!({ "max_skew_secs": oss.max_skew_ms.load(Ordering::Relaxed) / 1000 }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    max_skew_secs: i64,
}

async fn set_settings(State(oss): State<Arc<Oss>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Settings>(&body) {
        Ok(s) if s.max_skew_secs >= 0 => {
            oss.max_skew_ms
                .store(s.max_skew_secs.saturating_mul(1000), Ordering::Relaxed);
            get_settings(State(oss)).await.into_response()
        }
        Ok(_) => bad_request("settings: max_skew_secs must not be negative".into()),
        Err(e) => bad_request(format!("settings: {e}")),
    }
}
