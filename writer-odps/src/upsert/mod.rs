//! `writeMode: "upsert"`: a Delta table (primary key, transactional) kept equal to a
//! change stream (README "Mirror: writeMode upsert"). `prepare` opens one upsert
//! session per job (window); every task merges its changes per key and sends each
//! key once into the session's bucket; `post` commits the session once per window
//! (commit markers as append loads); `abort` asks the Tunnel what was committed.

mod hash;
pub mod merge;
mod post;
pub mod session;
mod task;

use protocol::message::JobContext;
use protocol::runtime::PluginError;
use serde::{Deserialize, Serialize};

use crate::commit::Markers;
use crate::config::OdpsConfig;
use crate::schema::OdpsType;
use crate::writer::{client_for, load_and_check, with_semicolon};

pub use hash::Hasher;
pub use post::{abort_upsert, post_upsert};
pub use session::UpsertSession;
pub use task::write_upsert;

/// What `prepare` hands to later steps in upsert mode.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpsertState {
    pub session: UpsertSession,
    pub tunnel_endpoint: String,
    /// For each configured column, its index among the session schema's columns.
    pub positions: Vec<usize>,
    /// Data-column index (among the configured columns) of each hash key column.
    pub key_at: Vec<usize>,
    /// Data-column index of each configured column that is not a key column.
    pub value_at: Vec<usize>,
}

/// What a task reports to `post`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpsertReport {
    pub upsert_id: String,
    /// Row changes read.
    pub changes: u64,
    /// Records sent: whole-row upserts, partial upserts, deletes.
    pub upserts: u64,
    pub partial: u64,
    pub deletes: u64,
    pub dirty: u64,
    pub bytes: u64,
}

fn refuse(message: String) -> PluginError {
    PluginError::config(format!("writer-odps (writeMode upsert): {message}"))
}

/// Key column types the buckets can be hashed from.
fn hashable(t: &OdpsType) -> bool {
    !matches!(t, OdpsType::Decimal { .. } | OdpsType::Other(_))
}

/// Opens the job's upsert session and checks the configuration against it.
pub async fn prepare_upsert(
    config: &OdpsConfig,
    job: &JobContext,
) -> Result<UpsertState, PluginError> {
    let table = format!("{}.{}", config.project, config.table);
    let mut client = client_for(config, config.tunnel.clone())?;
    let (schema, partition, _) = load_and_check(config, &client).await?;
    if !partition.is_empty() || schema.is_partitioned() {
        return Err(refuse(format!(
            "{table} is partitioned; upserts into partitioned Delta tables are not supported yet"
        )));
    }
    match Markers::for_job(config, job)? {
        Some(markers) => markers.ensure_table(&client, true).await?,
        None => tracing::info!(
            "no commit marker for this upsert session (standalone write or commitMarker false): a re-run applies the window's changes again"
        ),
    }
    for sql in &config.pre_sql {
        client
            .run_sql("preSql", &with_semicolon(sql), false)
            .await?;
    }
    let tunnel = client.discover_tunnel().await.map_err(|e| {
        PluginError::from(e).context("discovering the tunnel endpoint (or set tunnelServer)")
    })?;
    let session = session::create(&client, &config.table, "")
        .await
        .map_err(|e| {
            PluginError::from(e).context(format!(
                "creating an upsert session on {table} (tunnel endpoint {tunnel}); writeMode upsert needs a Delta table: PRIMARY KEY and TBLPROPERTIES (\"transactional\"=\"true\")"
            ))
        })?;
    let state = state_for(config, session, tunnel.to_string())?;
    tracing::info!(
        upsert_id = state.session.id.as_str(),
        buckets = state.session.buckets.len(),
        partial_update = state.session.partial_update,
        "upsert session created for {table}"
    );
    Ok(state)
}

/// Maps the configured columns onto the session's schema and key.
fn state_for(
    config: &OdpsConfig,
    session: UpsertSession,
    tunnel_endpoint: String,
) -> Result<UpsertState, PluginError> {
    let table = format!("{}.{}", config.project, config.table);
    let schema = &session.schema;
    if session.hash_keys.is_empty() {
        return Err(refuse(format!(
            "{table} has no primary key (the upsert session names no key columns); writeMode upsert needs a Delta table"
        )));
    }
    if session.buckets.is_empty() {
        return Err(PluginError::service(format!(
            "the upsert session {} of {table} has no buckets",
            session.id
        )));
    }
    Hasher::parse(&session.hasher).map_err(refuse)?;
    let find = |name: &str| {
        schema
            .columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                refuse(format!(
                    "column {name:?} does not exist in table {table} (its columns: {})",
                    schema
                        .columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    };
    let positions: Vec<usize> = match &config.columns {
        None => (0..schema.columns.len()).collect(),
        Some(names) => names.iter().map(|n| find(n)).collect::<Result<_, _>>()?,
    };
    for &p in &positions {
        let c = &schema.columns[p];
        if !c.odps_type().is_writable() {
            return Err(refuse(format!(
                "column {} of {table} has type {}, which writer-odps does not write",
                c.name, c.type_name
            )));
        }
    }
    let mut key_at = Vec::with_capacity(session.hash_keys.len());
    for key in &session.hash_keys {
        let pos = find(key)?;
        let c = &schema.columns[pos];
        if !hashable(&c.odps_type()) {
            return Err(refuse(format!(
                "key column {} of {table} has type {}, which writer-odps cannot hash into a bucket",
                c.name, c.type_name
            )));
        }
        let at = positions.iter().position(|&p| p == pos).ok_or_else(|| {
            refuse(format!(
                "key column {} of {table} is not in column: every primary-key column must be written",
                c.name
            ))
        })?;
        key_at.push(at);
    }
    let value_at = (0..positions.len())
        .filter(|i| !key_at.contains(i))
        .collect();
    Ok(UpsertState {
        session,
        tunnel_endpoint,
        positions,
        key_at,
        value_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Column, TableSchema};
    use serde_json::json;

    fn config(columns: serde_json::Value) -> OdpsConfig {
        let p = json!({
            "odpsServer": "http://127.0.0.1:1/api", "project": "p", "table": "m",
            "column": columns, "writeMode": "upsert", "accessId": "id", "accessKey": "k",
        });
        OdpsConfig::from_parameter(&p, "UTC").unwrap()
    }

    fn session(keys: &[&str]) -> UpsertSession {
        let col = |n: &str, t: &str| Column {
            name: n.into(),
            type_name: t.into(),
        };
        UpsertSession {
            id: "u1".into(),
            status: "NORMAL".into(),
            schema: TableSchema {
                columns: vec![
                    col("id", "string"),
                    col("a", "bigint"),
                    col("n", "bigint"),
                    col("d", "decimal(10,2)"),
                ],
                partition_keys: vec![],
            },
            buckets: [(0, ("1".to_owned(), "w".to_owned()))].into(),
            hash_keys: keys.iter().map(|k| k.to_string()).collect(),
            hasher: "default".into(),
            partial_update: true,
            column_ids: vec![0, 1, 2, 3],
        }
    }

    #[test]
    fn columns_map_onto_the_key_and_values() {
        let s = state_for(
            &config(json!(["a", "id", "n"])),
            session(&["id", "n"]),
            "t".into(),
        )
        .unwrap();
        assert_eq!(s.positions, vec![1, 0, 2]);
        assert_eq!(s.key_at, vec![1, 2]);
        assert_eq!(s.value_at, vec![0]);
        let e = |c: serde_json::Value, keys: &[&str]| {
            state_for(&config(c), session(keys), "t".into())
                .unwrap_err()
                .message
        };
        assert!(e(json!(["a"]), &["id"]).contains("key column id"));
        assert!(e(json!(["id", "zz"]), &["id"]).contains("\"zz\""));
        assert!(e(json!(["id"]), &[]).contains("no primary key"));
        assert!(e(json!(["d", "a"]), &["d"]).contains("cannot hash"));
    }
}
