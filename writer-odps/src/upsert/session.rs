//! The Tunnel's upsert sessions as pyodps 0.13.2 drives them
//! (`odps/tunnel/tabletunnel.py` `TableUpsertSession`, `io/writer.py` `Upsert`):
//! `POST …/tables/<t>/upserts?slotnum=1` creates, `GET ?upsertid=` reloads, `PUT
//! ?upsertid=&bucketid=&slotid=&record_count=` (header `odps-tunnel-routed-server`)
//! sends one bucket's records, `POST ?upsertid=` commits, `DELETE ?upsertid=` aborts.

use std::collections::BTreeMap;

use bytes::Bytes;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::client::OdpsClient;
use crate::error::OdpsError;
use crate::http::Request;
use crate::schema::TableSchema;

/// The header naming the slot's worker.
pub const ROUTED_SERVER: &str = "odps-tunnel-routed-server";

/// An upsert session as the Tunnel describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpsertSession {
    pub id: String,
    /// Upper-case: `NORMAL`, `COMMITTING`, `COMMITTED`, `EXPIRED`, `CRITICAL`, `ABORTED`.
    pub status: String,
    /// The table's columns (without the five hidden upsert columns).
    pub schema: TableSchema,
    /// bucket id → (slot id, worker address).
    pub buckets: BTreeMap<u32, (String, String)>,
    /// The key columns the bucket is hashed from, in order.
    pub hash_keys: Vec<String>,
    pub hasher: String,
    /// `enable_partial_update`: the table takes upserts of some columns.
    pub partial_update: bool,
    /// Each schema column's `column_id` (what `__value_cols` names); its position
    /// when the session gives none.
    pub column_ids: Vec<i64>,
}

impl UpsertSession {
    /// The worker of the first bucket (commit and abort are routed there).
    pub fn first_worker(&self) -> &str {
        self.buckets
            .values()
            .next()
            .map(|(_, w)| w.as_str())
            .unwrap_or_default()
    }
}

fn text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A session JSON of the Tunnel.
pub fn parse_upsert_session(op: &str, body: &[u8]) -> Result<UpsertSession, OdpsError> {
    let json: Json = serde_json::from_slice(body)
        .map_err(|e| OdpsError::protocol(op, format!("upsert session JSON: {e}")))?;
    let id = json
        .get("id")
        .and_then(text)
        .ok_or_else(|| OdpsError::protocol(op, "no id in the upsert session"))?;
    let status = json
        .get("status")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_ascii_uppercase();
    let schema = match json.get("schema") {
        Some(s) if !s.is_null() => {
            TableSchema::from_json(s).map_err(|e| OdpsError::protocol(op, e))?
        }
        _ => TableSchema::default(),
    };
    let column_ids = match json.pointer("/schema/columns").and_then(Json::as_array) {
        Some(cols) => cols
            .iter()
            .enumerate()
            .map(|(i, c)| match c.get("column_id").and_then(text) {
                Some(id) => id.parse::<i64>().map_err(|_| {
                    OdpsError::protocol(op, format!("column_id {id:?} is not a number"))
                }),
                None => Ok(i as i64),
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let mut buckets = BTreeMap::new();
    for slot in json
        .get("slots")
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let slot_id = slot
            .get("slot_id")
            .and_then(text)
            .ok_or_else(|| OdpsError::protocol(op, format!("a slot without slot_id: {slot}")))?;
        let worker = slot.get("worker_addr").and_then(text).unwrap_or_default();
        for b in slot
            .get("buckets")
            .and_then(Json::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let b = b
                .as_u64()
                .and_then(|b| u32::try_from(b).ok())
                .ok_or_else(|| OdpsError::protocol(op, format!("bucket {b} is not a bucket id")))?;
            buckets.insert(b, (slot_id.clone(), worker.clone()));
        }
    }
    // pyodps refuses a bucket id beyond the bucket count.
    if let Some((&b, _)) = buckets.iter().find(|(&b, _)| b as usize >= buckets.len()) {
        return Err(OdpsError::protocol(
            op,
            format!("invalid bucket value: {b}"),
        ));
    }
    let hash_keys = json
        .get("hash_key")
        .and_then(Json::as_array)
        .map(|keys| keys.iter().filter_map(text).collect())
        .unwrap_or_default();
    Ok(UpsertSession {
        id,
        status,
        schema,
        buckets,
        hash_keys,
        hasher: json
            .get("hasher")
            .and_then(Json::as_str)
            .unwrap_or("default")
            .to_owned(),
        partial_update: json
            .get("enable_partial_update")
            .and_then(Json::as_bool)
            .unwrap_or(false),
        column_ids,
    })
}

fn request(
    client: &OdpsClient,
    operation: &str,
    method: Method,
    table: &str,
    partition: &str,
) -> Request {
    client
        .tunnel_request_to(
            operation,
            method,
            table,
            partition,
            format!("/projects/{}/tables/{table}/upserts", client.project()),
            "6",
        )
        .header("odps-tunnel-sdk-support-schema-evolution", "true")
}

/// Creates an upsert session (one slot asked for, as pyodps's default).
pub async fn create(
    client: &OdpsClient,
    table: &str,
    partition: &str,
) -> Result<UpsertSession, OdpsError> {
    let req = request(
        client,
        "CreateUpsertSession",
        Method::POST,
        table,
        partition,
    )
    .param("slotnum", "1");
    let answer = client
        .http
        .send(&client.tunnel_endpoint()?, &req, Bytes::new())
        .await?;
    parse_upsert_session(&req.operation, &answer.body)
}

/// Reloads a session: its status and slots.
pub async fn get(
    client: &OdpsClient,
    table: &str,
    partition: &str,
    id: &str,
) -> Result<UpsertSession, OdpsError> {
    let req =
        request(client, "GetUpsertSession", Method::GET, table, partition).param("upsertid", id);
    let answer = client
        .http
        .send(&client.tunnel_endpoint()?, &req, Bytes::new())
        .await?;
    parse_upsert_session(&req.operation, &answer.body)
}

/// Sends one bucket's records (a complete block body). A retried send after a lost
/// answer sends the same records again, which the session applies to the same
/// result: a task sends each key once.
#[allow(clippy::too_many_arguments)]
pub async fn put_bucket(
    client: &OdpsClient,
    table: &str,
    partition: &str,
    session: &UpsertSession,
    bucket: u32,
    records: u64,
    body: Bytes,
) -> Result<(), OdpsError> {
    let (slot, worker) = session.buckets.get(&bucket).cloned().unwrap_or_default();
    let mut req = request(client, "Upsert", Method::PUT, table, partition)
        .param("upsertid", &session.id)
        .param("bucketid", bucket.to_string())
        .param("slotid", slot)
        .param("record_count", records.to_string())
        .header(ROUTED_SERVER, worker);
    req.operation = format!("{} bucket {bucket}", req.operation);
    req.content_type = Some("application/octet-stream");
    client
        .http
        .send(&client.tunnel_endpoint()?, &req, body)
        .await
        .map(drop)
}

/// Asks for the commit once (the caller reloads to learn the outcome).
pub async fn commit_once(
    client: &OdpsClient,
    table: &str,
    partition: &str,
    session: &UpsertSession,
) -> Result<(), OdpsError> {
    let req = request(
        client,
        "CommitUpsertSession",
        Method::POST,
        table,
        partition,
    )
    .param("upsertid", &session.id)
    .header(ROUTED_SERVER, session.first_worker());
    client
        .http
        .send_once(
            &client.tunnel_endpoint()?,
            &req,
            reqwest::Body::from(Bytes::new()),
            Some(client.http.options.request_timeout),
        )
        .await
        .map(drop)
}

/// Aborts the session: nothing of it can be committed afterwards.
pub async fn abort(
    client: &OdpsClient,
    table: &str,
    partition: &str,
    session: &UpsertSession,
) -> Result<(), OdpsError> {
    let req = request(
        client,
        "AbortUpsertSession",
        Method::DELETE,
        table,
        partition,
    )
    .param("upsertid", &session.id)
    .header(ROUTED_SERVER, session.first_worker());
    client
        .http
        .send(&client.tunnel_endpoint()?, &req, Bytes::new())
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_json_as_pyodps_reads_it() {
        let s = parse_upsert_session(
            "T",
            br#"{"id":"u1","status":"normal","schema":{"columns":[{"name":"id","type":"string","column_id":"0"},{"name":"v","type":"bigint","column_id":"7"}]},
                "slots":[{"slot_id":"1","worker_addr":"127.0.0.1:1","buckets":[0,1]},{"slot_id":"2","worker_addr":"w2","buckets":[2]}],
                "hash_key":["id"],"hasher":"default","enable_partial_update":true}"#,
        )
        .unwrap();
        assert_eq!(s.status, "NORMAL");
        assert_eq!(s.buckets.len(), 3);
        assert_eq!(s.buckets[&2], ("2".to_owned(), "w2".to_owned()));
        assert_eq!(s.first_worker(), "127.0.0.1:1");
        assert_eq!(s.hash_keys, ["id"]);
        assert!(s.partial_update);
        assert_eq!(s.schema.columns.len(), 2);
        assert_eq!(s.column_ids, vec![0, 7]);
        let bad = br#"{"id":"u","slots":[{"slot_id":"1","buckets":[0,5]}]}"#;
        assert!(parse_upsert_session("T", bad).is_err());
        assert!(parse_upsert_session("T", b"{}").is_err());
    }
}
