//! Tablestore-specific test-control routes under `/-/ots/` (documented in the module
//! docs of [`super`]).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value as Json_};

use super::plainbuffer::{PkValue, Value};
use super::server::Shared;
use super::state::{PkType, Table};
use super::stream_ops::trim_all;
use crate::common::admin::bad_request;

pub fn router(service: Shared) -> Router {
    Router::new()
        .route("/-/ots/backdate", post(backdate))
        .route("/-/ots/split", post(split))
        .route("/-/ots/merge", post(merge))
        .route("/-/ots/tables/{name}", get(dump))
        .with_state(service)
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("request body: {e}"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Backdate {
    table: String,
    ms: i64,
}

/// Moves the table's cell versions, stream records, shard close times and stream
/// creation `ms` milliseconds into the past.
async fn backdate(State(service): State<Shared>, body: Bytes) -> Response {
    let req: Backdate = match parse(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    // A century either way keeps every shifted time (µs included) far from overflow.
    if req.ms.abs() > 100 * 366 * 86_400_000 {
        return bad_request("ms must be within a century".into());
    }
    let mut db = service.db();
    let Some(table) = db.tables.get_mut(&req.table) else {
        return bad_request(format!("no table {}", req.table));
    };
    for row in table.rows.values_mut() {
        for versions in row.columns.values_mut() {
            for (ts, _) in versions.iter_mut() {
                *ts -= req.ms;
            }
        }
    }
    table.last_commit_us -= req.ms * 1000;
    table.created_ms -= req.ms;
    if let Some(stream) = table.stream.as_mut() {
        stream.backdate(req.ms * 1000);
    }
    service.persist(&db);
    Json(json!({"ok": true, "table": req.table, "ms": req.ms})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Split {
    table: String,
    #[serde(default)]
    shard_id: Option<String>,
    #[serde(default)]
    split_point: Option<Json_>,
}

fn pk_from_json(pk_type: PkType, v: &Json_) -> Option<PkValue> {
    match (pk_type, v) {
        (PkType::Integer, Json_::Number(n)) => n.as_i64().map(PkValue::Integer),
        (PkType::String, Json_::String(s)) => Some(PkValue::String(s.clone())),
        (PkType::Binary, Json_::String(s)) => hex::decode(s).ok().map(PkValue::Binary),
        _ => None,
    }
}

/// Splits an open shard (the only one, or `shard_id`) at `split_point`, a value of the
/// first primary-key column (default: the median first-key value of the shard's rows).
async fn split(State(service): State<Shared>, body: Bytes) -> Response {
    let req: Split = match parse(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    let now = service.now();
    let mut db = service.db();
    trim_all(&mut db, now.us);
    let Some(table) = db.tables.get_mut(&req.table) else {
        return bad_request(format!("no table {}", req.table));
    };
    let first_type = table.primary_key[0].pk_type;
    let rows: Vec<PkValue> = table.rows.keys().map(|k| k[0].clone()).collect();
    let Some(stream) = table.stream.as_mut() else {
        return bad_request(format!("table {} has no stream", req.table));
    };
    let open: Vec<_> = stream
        .shards
        .iter()
        .filter(|s| s.closed_us.is_none())
        .collect();
    let shard = match &req.shard_id {
        Some(id) => open.iter().find(|s| &s.id == id),
        None if open.len() == 1 => open.first(),
        None => return bad_request("several open shards: give shard_id".into()),
    };
    let Some(shard) = shard else {
        return bad_request("no such open shard".into());
    };
    let (shard_id, low, high) = (shard.id.clone(), shard.low.clone(), shard.high.clone());
    let point = match &req.split_point {
        Some(v) => match pk_from_json(first_type, v) {
            Some(p) => p,
            None => {
                return bad_request(format!("split_point must be a {} value", first_type.name()))
            }
        },
        None => {
            let mut inside: Vec<PkValue> =
                rows.into_iter().filter(|v| &low < v && v < &high).collect();
            inside.dedup();
            match inside.get(inside.len() / 2) {
                Some(p) => p.clone(),
                None => {
                    return bad_request("shard has no rows to split at: give split_point".into())
                }
            }
        }
    };
    match stream.split(&shard_id, point, now.us) {
        Ok(children) => {
            service.persist(&db);
            Json(json!({"parent": shard_id, "children": children})).into_response()
        }
        Err(e) => bad_request(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Merge {
    table: String,
    #[serde(default)]
    shard_ids: Option<[String; 2]>,
}

/// Merges two adjacent open shards (default: the first two by key range).
async fn merge(State(service): State<Shared>, body: Bytes) -> Response {
    let req: Merge = match parse(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(e),
    };
    let now = service.now();
    let mut db = service.db();
    trim_all(&mut db, now.us);
    let Some(stream) = db
        .tables
        .get_mut(&req.table)
        .and_then(|t| t.stream.as_mut())
    else {
        return bad_request(format!("no table {} with a stream", req.table));
    };
    let [a, b] = match req.shard_ids {
        Some(ids) => ids,
        None => {
            let mut open: Vec<_> = stream
                .shards
                .iter()
                .filter(|s| s.closed_us.is_none())
                .collect();
            open.sort_by(|x, y| x.low.cmp(&y.low));
            match open.as_slice() {
                [x, y, ..] => [x.id.clone(), y.id.clone()],
                _ => return bad_request("fewer than two open shards".into()),
            }
        }
    };
    match stream.merge(&a, &b, now.us) {
        Ok(child) => {
            service.persist(&db);
            Json(json!({"parents": [a, b], "child": child})).into_response()
        }
        Err(e) => bad_request(e),
    }
}

fn pk_json(v: &PkValue) -> Json_ {
    match v {
        PkValue::Integer(i) => json!(i),
        PkValue::String(s) => json!(s),
        PkValue::Binary(b) => json!({"binary_hex": hex::encode(b)}),
        PkValue::InfMin => json!("INF_MIN"),
        PkValue::InfMax => json!("INF_MAX"),
        PkValue::AutoIncrement => json!("AUTO_INCREMENT"),
    }
}

fn value_json(v: &Value) -> Json_ {
    match v {
        Value::Integer(i) => json!({"type": "INTEGER", "value": i}),
        Value::Double(d) => json!({"type": "DOUBLE", "value": d}),
        Value::Boolean(b) => json!({"type": "BOOLEAN", "value": b}),
        Value::String(s) => json!({"type": "STRING", "value": s}),
        Value::Binary(b) => json!({"type": "BINARY", "value_hex": hex::encode(b)}),
    }
}

fn table_json(table: &Table) -> Json_ {
    let rows: Vec<Json_> = table
        .rows
        .iter()
        .map(|(key, row)| {
            let columns: serde_json::Map<String, Json_> = row
                .columns
                .iter()
                .map(|(name, versions)| {
                    let v: Vec<Json_> = versions
                        .iter()
                        .map(|(ts, value)| json!({"timestamp": ts, "value": value_json(value)}))
                        .collect();
                    (name.clone(), Json_::Array(v))
                })
                .collect();
            json!({"primary_key": key.iter().map(pk_json).collect::<Vec<_>>(), "columns": columns})
        })
        .collect();
    let stream = table.stream.as_ref().map(|s| {
        let shards: Vec<Json_> = s
            .shards
            .iter()
            .map(|sh| {
                json!({
                    "shard_id": sh.id,
                    "parent_id": sh.parent_id,
                    "parent_sibling_id": sh.parent_sibling_id,
                    "open": sh.closed_us.is_none(),
                    "low": pk_json(&sh.low),
                    "high": pk_json(&sh.high),
                    "trimmed": sh.trimmed,
                    "records": sh.records.len(),
                    "record_times_us": sh.records.iter().map(|r| r.timestamp_us()).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({"stream_id": s.stream_id, "creation_time": s.creation_us,
               "expiration_hours": s.expiration_hours, "shards": shards})
    });
    json!({
        "name": table.name,
        "primary_key": table.primary_key.iter()
            .map(|c| json!({"name": c.name, "type": c.pk_type.name(), "auto_increment": c.auto_increment}))
            .collect::<Vec<_>>(),
        "options": {"time_to_live": table.options.time_to_live_s, "max_versions": table.options.max_versions,
                    "deviation_cell_version_in_sec": table.options.deviation_cell_version_s},
        "rows": rows,
        "stream": stream,
    })
}

/// Dumps a table: schema, options, every row with all versions, the stream's shards.
async fn dump(State(service): State<Shared>, Path(name): Path<String>) -> Response {
    let now = service.now();
    let mut db = service.db();
    trim_all(&mut db, now.us);
    match db.tables.get(&name) {
        Some(table) => Json(table_json(table)).into_response(),
        None => (
            axum::http::StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no table {name}")})),
        )
            .into_response(),
    }
}
