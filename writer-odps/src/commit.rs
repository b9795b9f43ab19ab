//! Committing a window once (README "Commit and re-runs").
//!
//! An overwrite session (`truncate: true`) is idempotent by itself: a re-run replaces
//! the partition with the same rows. An append session is not, so append loads keep
//! commit markers: partitions `(fingerprint, target_table, upload_id, state)` of a
//! marker table in the same project, each added by one atomic
//! `ALTER TABLE … ADD IF NOT EXISTS PARTITION` and read back by listing the
//! partitions whose leading keys are the window's fingerprint and table. `post`
//! looks them up, adds `intent` naming its session, commits, adds `committed`, then
//! drops the `intent` (one partition per window stays: a table holds at most 60 000).
//! An `intent` without `committed` is settled by asking the Tunnel for that
//! session's status; a session it cannot tell about is an error, never a guess.

use std::time::Duration;

use protocol::message::JobContext;
use protocol::runtime::PluginError;

use crate::client::OdpsClient;
use crate::config::OdpsConfig;

/// The marker table's partition keys, in order.
const KEYS: [&str; 4] = ["fingerprint", "target_table", "upload_id", "state"];

/// How often a `committing`/`closing` session is asked again before giving up.
const SETTLE_TRIES: u32 = 10;

/// What a marker records of one upload session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkState {
    /// The session was about to be committed.
    Intent,
    Committed,
}

impl MarkState {
    pub fn as_str(self) -> &'static str {
        match self {
            MarkState::Intent => "intent",
            MarkState::Committed => "committed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Intent, Self::Committed]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
    }
}

/// What the Tunnel says of an upload session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionOutcome {
    /// `closed`: its rows are in the table.
    Committed,
    /// `normal` or `canceled`: none of its rows are visible.
    NotCommitted(String),
    /// Anything else (expired, critical, gone, unreachable): the reason.
    Unknown(String),
}

/// Asks the Tunnel whether session `id` committed, waiting out `committing`/`closing`.
pub async fn session_outcome(
    client: &OdpsClient,
    table: &str,
    partition: &str,
    id: &str,
) -> SessionOutcome {
    for attempt in 1..=SETTLE_TRIES {
        let status = match client.get_upload(table, partition, id).await {
            Ok(s) => s.status,
            Err(e) => return SessionOutcome::Unknown(e.to_string()),
        };
        match status.as_str() {
            "closed" => return SessionOutcome::Committed,
            "normal" | "canceled" => return SessionOutcome::NotCommitted(status),
            "committing" | "closing" if attempt < SETTLE_TRIES => {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            _ => {
                return SessionOutcome::Unknown(format!(
                    "the Tunnel reports its status as {status:?}"
                ))
            }
        }
    }
    SessionOutcome::Unknown("it stayed committing".into())
}

/// The commit markers of one window's append load.
#[derive(Clone, Debug)]
pub struct Markers {
    pub table: String,
    lifecycle: Option<u32>,
    fingerprint: String,
    target_table: String,
}

fn marker_value(what: &str, value: &str) -> Result<String, PluginError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(PluginError::internal(format!(
            "writer-odps: {what} {value:?} cannot be a commit-marker value (letters, digits, _ and - only)"
        )))
    }
}

impl Markers {
    /// The markers of this job: `None` for overwrite loads, with `commitMarker: false`,
    /// and without a window fingerprint (a standalone `write`, whose input is not
    /// part of the fingerprint).
    pub fn for_job(config: &OdpsConfig, job: &JobContext) -> Result<Option<Self>, PluginError> {
        let Some(table) = &config.commit_marker else {
            return Ok(None);
        };
        if config.truncate || job.fingerprint.is_empty() || job.job_id.starts_with("standalone-") {
            return Ok(None);
        }
        Ok(Some(Self {
            table: table.clone(),
            lifecycle: config.commit_marker_lifecycle,
            fingerprint: marker_value("the window fingerprint", &job.fingerprint)?,
            target_table: marker_value("the table name", &config.table)?.to_ascii_lowercase(),
        }))
    }

    fn spec_sql(&self, upload_id: &str, state: MarkState) -> String {
        format!(
            "fingerprint='{}',target_table='{}',upload_id='{upload_id}',state='{}'",
            self.fingerprint,
            self.target_table,
            state.as_str()
        )
    }

    /// The statement adding a marker (also shown in errors, to settle by hand).
    pub fn add_sql(&self, upload_id: &str, state: MarkState) -> String {
        format!(
            "ALTER TABLE {} ADD IF NOT EXISTS PARTITION ({});",
            self.table,
            self.spec_sql(upload_id, state)
        )
    }

    pub fn drop_sql(&self, upload_id: &str, state: MarkState) -> String {
        format!(
            "ALTER TABLE {} DROP IF EXISTS PARTITION ({});",
            self.table,
            self.spec_sql(upload_id, state)
        )
    }

    /// Creates the marker table if it does not exist (with `create`; `check` only
    /// looks); checks its partition keys.
    pub async fn ensure_table(&self, client: &OdpsClient, create: bool) -> Result<(), PluginError> {
        let keys: Vec<String> = match client.get_table(&self.table).await {
            Ok(t) => t
                .schema
                .partition_keys
                .iter()
                .map(|k| k.name.to_ascii_lowercase())
                .collect(),
            Err(e) if e.status() == Some(404) && !create => return Ok(()),
            Err(e) if e.status() == Some(404) => {
                let sql = format!(
                    "CREATE TABLE IF NOT EXISTS {} (note STRING) COMMENT 'streamport writer-odps commit markers: one partition per marker' PARTITIONED BY ({}){};",
                    self.table,
                    KEYS.map(|k| format!("{k} STRING")).join(", "),
                    self.lifecycle
                        .map(|days| format!(" LIFECYCLE {days}"))
                        .unwrap_or_default()
                );
                client.run_sql("commitMarker", &sql, true).await.map_err(|e| {
                    PluginError::from(e).context(format!(
                        "creating the commit-marker table {} (commitMarkerTable; needs CreateTable once, or create it as the README shows)",
                        self.table
                    ))
                })?;
                tracing::info!("created the commit-marker table {}", self.table);
                return Ok(());
            }
            Err(e) => {
                return Err(PluginError::from(e)
                    .context(format!("reading the commit-marker table {}", self.table)))
            }
        };
        if keys != KEYS {
            return Err(PluginError::config(format!(
                "writer-odps: commitMarkerTable {} is partitioned by ({}), not ({}): it is not a commit-marker table; name another one",
                self.table,
                keys.join(", "),
                KEYS.join(", ")
            )));
        }
        Ok(())
    }

    /// Every marker of this window: `(upload_id, state)`.
    pub async fn read(&self, client: &OdpsClient) -> Result<Vec<(String, MarkState)>, PluginError> {
        let filter = format!(
            "fingerprint='{}',target_table='{}'",
            self.fingerprint, self.target_table
        );
        let specs = client
            .list_partitions_matching(&self.table, &filter)
            .await
            .map_err(|e| {
                PluginError::from(e)
                    .context(format!("reading the commit markers in {}", self.table))
            })?;
        let mut found = Vec::new();
        for spec in specs {
            let value = |key: &str| {
                spec.split(',')
                    .filter_map(|p| p.split_once('='))
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v.to_owned())
            };
            // The service filters by prefix; check again, as pyodps does.
            if value("fingerprint").as_deref() != Some(&self.fingerprint)
                || value("target_table").as_deref() != Some(&self.target_table)
            {
                continue;
            }
            match (
                value("upload_id"),
                value("state").as_deref().and_then(MarkState::parse),
            ) {
                (Some(id), Some(state)) => found.push((id, state)),
                _ => tracing::warn!("ignoring commit marker {spec} in {}", self.table),
            }
        }
        Ok(found)
    }

    /// Adds a marker (idempotent).
    pub async fn add(
        &self,
        client: &OdpsClient,
        upload_id: &str,
        state: MarkState,
    ) -> Result<(), PluginError> {
        let sql = self.add_sql(upload_id, state);
        self.ddl(
            client,
            upload_id,
            &sql,
            format_args!("adding the {} commit marker", state.as_str()),
            "to",
        )
        .await
    }

    /// Drops a marker (idempotent).
    pub async fn remove(
        &self,
        client: &OdpsClient,
        upload_id: &str,
        state: MarkState,
    ) -> Result<(), PluginError> {
        let sql = self.drop_sql(upload_id, state);
        self.ddl(
            client,
            upload_id,
            &sql,
            format_args!("dropping the {} commit marker", state.as_str()),
            "from",
        )
        .await
    }

    /// Runs one marker statement; errors say `what` of `upload_id` and the table.
    async fn ddl(
        &self,
        client: &OdpsClient,
        upload_id: &str,
        sql: &str,
        what: std::fmt::Arguments<'_>,
        preposition: &str,
    ) -> Result<(), PluginError> {
        marker_value("the upload session id", upload_id)?;
        let context = format!(
            "{what} of upload session {upload_id} {preposition} {}",
            self.table
        );
        client
            .run_sql("commitMarker", sql, true)
            .await
            .map_err(|e| PluginError::from(e).context(context))
    }

    /// Whether an earlier run of this window committed: the session that did. Drops
    /// the intents of sessions that never committed.
    pub async fn earlier_commit(
        &self,
        client: &OdpsClient,
        target: &Target<'_>,
        own: &str,
    ) -> Result<Option<String>, PluginError> {
        let markers = self.read(client).await?;
        if let Some((id, _)) = markers.iter().find(|(_, s)| *s == MarkState::Committed) {
            return Ok(Some(id.clone()));
        }
        for (id, _) in markers
            .iter()
            .filter(|(i, s)| *s == MarkState::Intent && i != own)
        {
            match session_outcome(client, target.table, target.partition, id).await {
                SessionOutcome::Committed => {
                    self.settle(client, id).await;
                    return Ok(Some(id.clone()));
                }
                SessionOutcome::NotCommitted(status) => {
                    tracing::warn!(
                        "an earlier run of this window meant to commit upload session {id} into {target}, but it is {status} (never committed): committing this run's session instead"
                    );
                    self.remove(client, id, MarkState::Intent).await?;
                }
                SessionOutcome::Unknown(reason) => {
                    return Err(PluginError::service(format!(
                        "writer-odps: an earlier run of this window was committing upload session {id} into {target}, \
                         and the Tunnel can no longer tell whether that commit happened ({reason}); nothing was committed by this run. \
                         Look at {target}: if that run's rows are there, record it with `{}`; if they are not, \
                         remove its marker with `{}`; then run the window again",
                        self.add_sql(id, MarkState::Committed),
                        self.drop_sql(id, MarkState::Intent)
                    )));
                }
            }
        }
        Ok(None)
    }

    /// Once session `upload_id` is known committed: adds its `committed` marker, then
    /// drops its `intent`. Failures are logged (the rows are committed either way),
    /// with the statement to run.
    pub async fn settle(&self, client: &OdpsClient, upload_id: &str) {
        if let Err(e) = self.add(client, upload_id, MarkState::Committed).await {
            tracing::warn!(
                "{}; a re-run of this window within 24 h still finds the commit through the Tunnel, later it fails until you run `{}`",
                e.message,
                self.add_sql(upload_id, MarkState::Committed)
            );
            return;
        }
        if let Err(e) = self.remove(client, upload_id, MarkState::Intent).await {
            tracing::warn!("{} (harmless: the committed marker decides)", e.message);
        }
    }
}

/// The load's target, for messages: `project.table partition pt=1`.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub project: &'a str,
    pub table: &'a str,
    pub partition: &'a str,
}

impl std::fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.project, self.table)?;
        if !self.partition.is_empty() {
            write!(f, " partition {}", self.partition)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(extra: serde_json::Value) -> OdpsConfig {
        let mut p = json!({
            "odpsServer": "http://127.0.0.1:1/api", "project": "p", "table": "Person",
            "column": ["*"], "truncate": false, "accessId": "id", "accessKey": "k",
        });
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        OdpsConfig::from_parameter(&p, "UTC").unwrap()
    }

    fn job(job_id: &str, fingerprint: &str) -> JobContext {
        JobContext {
            job_id: job_id.into(),
            fingerprint: fingerprint.into(),
            ..JobContext::default()
        }
    }

    #[test]
    fn markers_only_for_engine_appends() {
        let engine = job("j1", "0123abcd");
        let m = Markers::for_job(&config(json!({})), &engine)
            .unwrap()
            .unwrap();
        assert_eq!(
            m.add_sql("U1", MarkState::Intent),
            "ALTER TABLE streamport_commit_markers ADD IF NOT EXISTS PARTITION (fingerprint='0123abcd',target_table='person',upload_id='U1',state='intent');"
        );
        for (c, j) in [
            (config(json!({"truncate": true})), engine.clone()),
            (config(json!({"commitMarker": false})), engine.clone()),
            (config(json!({})), job("standalone-42", "0123abcd")),
            (config(json!({})), job("j1", "")),
        ] {
            assert!(Markers::for_job(&c, &j).unwrap().is_none());
        }
        assert!(Markers::for_job(&config(json!({})), &job("j", "a'b")).is_err());
    }

    #[test]
    fn states_round_trip() {
        for s in [MarkState::Intent, MarkState::Committed] {
            assert_eq!(MarkState::parse(s.as_str()), Some(s));
        }
        assert_eq!(MarkState::parse("other"), None);
        let t = Target {
            project: "p",
            table: "t",
            partition: "pt=1",
        };
        assert_eq!(t.to_string(), "p.t partition pt=1");
    }
}
