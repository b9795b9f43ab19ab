//! `post` and `abort` in upsert mode: the session committed once per window, and what
//! became visible as the Tunnel tells it.

use std::time::Duration;

use protocol::message::JobContext;
use protocol::runtime::PluginError;
use serde_json::{json, Value as Json};

use super::{session, UpsertReport, UpsertSession, UpsertState};
use crate::client::OdpsClient;
use crate::commit::{MarkState, Markers};
use crate::config::OdpsConfig;
use crate::http::Endpoint;
use crate::writer::{client_for, with_semicolon};

/// How often a committing session is asked again (about 2 minutes in all, as
/// pyodps's default commit timeout).
const COMMIT_POLLS: u32 = 30;

fn answer(committed: &str, detail: String) -> Json {
    json!({"committed": committed, "detail": detail})
}

fn client(config: &OdpsConfig, state: &UpsertState) -> Result<OdpsClient, PluginError> {
    let tunnel = Endpoint::parse(&state.tunnel_endpoint).map_err(PluginError::internal)?;
    client_for(config, Some(tunnel))
}

/// What the Tunnel says of an upsert session.
enum Outcome {
    Committed,
    NotCommitted(String),
    Unknown(String),
}

async fn outcome(client: &OdpsClient, table: &str, id: &str) -> Outcome {
    for attempt in 1..=COMMIT_POLLS {
        let status = match session::get(client, table, "", id).await {
            Ok(s) => s.status,
            Err(e) => return Outcome::Unknown(e.to_string()),
        };
        match status.as_str() {
            "COMMITTED" => return Outcome::Committed,
            "NORMAL" | "ABORTED" | "EXPIRED" => return Outcome::NotCommitted(status),
            "COMMITTING" if attempt < COMMIT_POLLS => {
                tokio::time::sleep(Duration::from_secs(1)).await
            }
            _ => return Outcome::Unknown(format!("the Tunnel reports its status as {status:?}")),
        }
    }
    Outcome::Unknown("it stayed COMMITTING".into())
}

/// Commits the session as pyodps does: ask, then reload; while it is NORMAL or
/// COMMITTING, wait and ask again.
async fn commit(client: &OdpsClient, table: &str, s: &UpsertSession) -> Result<(), PluginError> {
    let mut delay = Duration::from_millis(200);
    for _ in 0..COMMIT_POLLS {
        if let Err(e) = session::commit_once(client, table, "", s).await {
            if !e.is_retryable() && e.status() != Some(409) {
                return Err(
                    PluginError::from(e).context(format!("committing upsert session {}", s.id))
                );
            }
            tracing::warn!("{e}; asking the Tunnel for the session's status");
        }
        match session::get(client, table, "", &s.id).await {
            Ok(now) if now.status == "COMMITTED" => return Ok(()),
            Ok(now) if now.status == "NORMAL" || now.status == "COMMITTING" => {}
            Ok(now) => {
                return Err(PluginError::service(format!(
                    "upsert session {} is {} after the commit: nothing of it was committed",
                    s.id, now.status
                )))
            }
            Err(e) if e.is_retryable() => tracing::warn!("{e}"),
            Err(e) => return Err(e.into()),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(8));
    }
    Err(PluginError::service(format!(
        "upsert session {} did not reach COMMITTED in time; look at the table before running the window again",
        s.id
    )))
}

/// An earlier run of this window that committed its session, from the markers.
async fn earlier_commit(
    m: &Markers,
    client: &OdpsClient,
    table: &str,
    own: &str,
) -> Result<Option<String>, PluginError> {
    let markers = m.read(client).await?;
    if let Some((id, _)) = markers.iter().find(|(_, s)| *s == MarkState::Committed) {
        return Ok(Some(id.clone()));
    }
    for (id, _) in markers
        .iter()
        .filter(|(i, s)| *s == MarkState::Intent && i != own)
    {
        match outcome(client, table, id).await {
            Outcome::Committed => {
                m.settle(client, id).await;
                return Ok(Some(id.clone()));
            }
            Outcome::NotCommitted(status) => {
                tracing::warn!("an earlier run of this window meant to commit upsert session {id}, but it is {status}: committing this run's session instead");
                m.remove(client, id, MarkState::Intent).await?;
            }
            Outcome::Unknown(reason) => {
                return Err(PluginError::service(format!(
                    "writer-odps: an earlier run of this window was committing upsert session {id} into {table}, and the Tunnel can no longer tell whether that commit happened ({reason}); nothing was committed by this run. \
                     Its changes applied again converge to the same rows, so if no later window was committed since, remove its marker with `{}` and run the window again",
                    m.drop_sql(id, MarkState::Intent)
                )));
            }
        }
    }
    Ok(None)
}

/// `post`: commits the session once per window.
pub async fn post_upsert(
    config: &OdpsConfig,
    job: &JobContext,
    state: &UpsertState,
    reports: &[Json],
) -> Result<Json, PluginError> {
    let client = client(config, state)?;
    let (t, id) = (&config.table, &state.session.id);
    let target = format!("{}.{t}", config.project);
    let mut total = UpsertReport::default();
    for (i, r) in reports.iter().enumerate() {
        let report: UpsertReport = serde_json::from_value(r.clone()).map_err(|e| {
            PluginError::internal(format!("report of task {i} is not an upsert report: {e}"))
        })?;
        if report.upsert_id != *id {
            return Err(PluginError::internal(format!(
                "task {i} wrote to upsert session {}, not {id}",
                report.upsert_id
            )));
        }
        total.changes += report.changes;
        total.upserts += report.upserts;
        total.partial += report.partial;
        total.deletes += report.deletes;
    }
    let markers = Markers::for_job(config, job)?;
    let now = session::get(&client, t, "", id).await?;
    if now.status == "COMMITTED" {
        if let Some(m) = &markers {
            m.settle(&client, id).await;
        }
        post_sql(config, &client).await?;
        return Ok(answer(
            "all",
            format!("upsert session {id} is committed into {target}"),
        ));
    }
    if let Some(m) = &markers {
        if let Some(earlier) = earlier_commit(m, &client, t, id).await? {
            if let Err(e) = session::abort(&client, t, "", &now).await {
                tracing::warn!("{e} (aborting this run's unused upsert session; harmless)");
            }
            let detail = format!(
                "already committed by an earlier run of this window (upsert session {earlier}, {target}); nothing committed again; this run's upsert session {id} is aborted"
            );
            tracing::warn!("{detail}");
            post_sql(config, &client).await?;
            return Ok(answer("all", detail));
        }
    }
    if now.status != "NORMAL" && now.status != "COMMITTING" {
        return Err(PluginError::service(format!(
            "upsert session {id} of {target} is {}: nothing was committed",
            now.status
        )));
    }
    if let Some(m) = &markers {
        m.add(&client, id, MarkState::Intent).await?;
    }
    commit(&client, t, &now).await?;
    if let Some(m) = &markers {
        m.settle(&client, id).await;
    }
    tracing::info!(
        changes = total.changes,
        upserts = total.upserts,
        partial = total.partial,
        deletes = total.deletes,
        "committed upsert session {id} into {target}"
    );
    post_sql(config, &client).await?;
    Ok(answer(
        "all",
        format!(
            "committed upsert session {id} into {target} ({} changes: {} row upserts, {} partial upserts, {} deletes)",
            total.changes, total.upserts, total.partial, total.deletes
        ),
    ))
}

async fn post_sql(config: &OdpsConfig, client: &OdpsClient) -> Result<(), PluginError> {
    for sql in &config.post_sql {
        client
            .run_sql("postSql", &with_semicolon(sql), false)
            .await?;
    }
    Ok(())
}

/// `abort`: before `post` the session is aborted (nothing of it can become visible);
/// after, the Tunnel is asked whether it committed.
pub async fn abort_upsert(
    config: &OdpsConfig,
    job: &JobContext,
    state: Option<&UpsertState>,
    reports: &[Json],
) -> Result<Json, PluginError> {
    let Some(state) = state else {
        return Ok(answer(
            "none",
            "writer-odps: no upsert session was created (prepare did not finish): nothing of this job is visible".into(),
        ));
    };
    let client = client(config, state)?;
    let (t, id) = (&config.table, &state.session.id);
    let target = format!("{}.{t}", config.project);
    let markers = Markers::for_job(config, job).ok().flatten();
    if reports.is_empty() {
        if let Err(e) = session::abort(&client, t, "", &state.session).await {
            tracing::warn!("{e} (aborting upsert session {id})");
        }
    }
    let post = if reports.is_empty() {
        ""
    } else {
        " (post had started)"
    };
    Ok(match outcome(&client, t, id).await {
        Outcome::Committed => {
            if let Some(m) = &markers {
                m.settle(&client, id).await;
            }
            answer(
                "all",
                format!("upsert session {id} is committed{post}: this job's changes are applied to {target}; a re-run of the window commits nothing again"),
            )
        }
        Outcome::NotCommitted(status) => answer(
            "none",
            format!("upsert session {id} is not committed (the Tunnel says {status}){post}: nothing of this job is visible in {target}; a re-run of the window applies its changes"),
        ),
        Outcome::Unknown(reason) => answer(
            "unknown",
            format!("could not learn whether upsert session {id} committed into {target}{post}: {reason}; a re-run of the window converges to the same rows unless a later window was committed since"),
        ),
    })
}
