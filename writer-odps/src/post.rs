//! `post` and `abort`: commit the job's upload session once per window, and tell what
//! became visible, as established with the Tunnel (README "Commit and re-runs").

use std::collections::BTreeSet;

use protocol::message::JobContext;
use protocol::runtime::PluginError;
use serde_json::{json, Value as Json};

use crate::block::empty_block;
use crate::client::OdpsClient;
use crate::commit::{session_outcome, MarkState, Markers, SessionOutcome, Target};
use crate::config::OdpsConfig;
use crate::http::Endpoint;
use crate::writer::{client_for, with_semicolon, JobState, OdpsWriter, TaskReport};

/// The answer value of `post`/`abort` (commit contract 3).
fn answer(committed: &str, detail: String) -> Json {
    json!({"committed": committed, "detail": detail})
}

/// What a re-run of the window does, for details.
fn rerun(config: &OdpsConfig, markers: &Option<Markers>) -> &'static str {
    match (config.truncate, markers) {
        (true, _) => "a re-run of the window replaces the rows again (overwrite)",
        (false, Some(_)) => "a re-run of the window commits it at most once (commit marker)",
        (false, None) => "a re-run appends the window's rows (no commit marker)",
    }
}

fn tunnel_client(config: &OdpsConfig, state: &JobState) -> Result<OdpsClient, PluginError> {
    let tunnel = Endpoint::parse(&state.tunnel_endpoint).map_err(PluginError::internal)?;
    client_for(config, Some(tunnel))
}

impl OdpsWriter {
    pub(crate) async fn post_async(
        &self,
        config: &OdpsConfig,
        job: &JobContext,
        state: &JobState,
        reports: &[Json],
    ) -> Result<Json, PluginError> {
        let client = tunnel_client(config, state)?;
        let (t, part, id) = (&config.table, &state.partition, &state.upload_id);
        let target = target_of(config, state);
        let mut reported = BTreeSet::new();
        let mut records = 0u64;
        for (i, r) in reports.iter().enumerate() {
            let report: TaskReport = serde_json::from_value(r.clone()).map_err(|e| {
                PluginError::internal(format!(
                    "report of task {i} is not a writer-odps report: {e}"
                ))
            })?;
            if report.upload_id != *id {
                return Err(PluginError::internal(format!(
                    "task {i} wrote to upload session {}, not {id}",
                    report.upload_id
                )));
            }
            records += report.records;
            reported.extend(report.blocks);
        }
        let markers = Markers::for_job(config, job)?;
        let session = client.get_upload(t, part, id).await?;
        if session.status == "closed" {
            tracing::info!("upload session {id} is already committed");
            if let Some(m) = &markers {
                m.settle(&client, id).await;
            }
            self.post_sql(config, &client).await?;
            return Ok(answer(
                "all",
                format!("upload session {id} is committed into {target}"),
            ));
        }
        if let Some(m) = &markers {
            if let Some(earlier) = m.earlier_commit(&client, &target, id).await? {
                let detail = format!(
                    "already committed by an earlier run of this window (upload session {earlier}, {target}); \
                     nothing committed again; this run's upload session {id} is left uncommitted (the service discards it after 24 h)"
                );
                tracing::warn!("{detail}");
                self.post_sql(config, &client).await?;
                return Ok(answer("all", detail));
            }
        }
        if session.status != "normal" && session.status != "committing" {
            return Err(PluginError::service(format!(
                "upload session {id} of {}.{t} is {}: nothing was committed",
                config.project, session.status
            )));
        }
        let on_server: BTreeSet<u32> = session.blocks.iter().copied().collect();
        let missing: Vec<u32> = reported.difference(&on_server).copied().collect();
        if !missing.is_empty() {
            return Err(PluginError::service(format!(
                "upload session {id}: blocks {missing:?} reported by the tasks are not on the server; nothing was committed"
            )));
        }
        // Blocks no task reported (left by a failed attempt of a task) are emptied.
        for stale in on_server.difference(&reported) {
            tracing::warn!("upload session {id}: emptying block {stale}, which no task reported");
            let req = client.block_request(t, part, id, *stale, false);
            client
                .http
                .send(
                    &client.tunnel_endpoint()?,
                    &req,
                    bytes::Bytes::from(empty_block()),
                )
                .await?;
        }
        if let Some(m) = &markers {
            m.add(&client, id, MarkState::Intent).await?;
        }
        self.commit(&client, config, state).await?;
        if let Some(m) = &markers {
            m.settle(&client, id).await;
        }
        tracing::info!(
            records,
            blocks = reported.len(),
            "committed upload session {id} into {target}"
        );
        self.post_sql(config, &client).await?;
        Ok(answer(
            "all",
            format!("committed upload session {id} into {target} ({records} records)"),
        ))
    }

    /// T4 with retries; an error whose session is in fact committed is success.
    async fn commit(
        &self,
        client: &OdpsClient,
        config: &OdpsConfig,
        state: &JobState,
    ) -> Result<(), PluginError> {
        let (t, part, id) = (&config.table, &state.partition, &state.upload_id);
        let mut backoff = client.http.backoff();
        loop {
            let error = match client.commit_upload_once(t, part, id).await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            match client.get_upload(t, part, id).await {
                Ok(s) if s.status == "closed" => {
                    tracing::warn!("{error}; but upload session {id} is committed");
                    return Ok(());
                }
                Ok(s) if s.status != "normal" && s.status != "committing" => {
                    return Err(PluginError::from(error)
                        .context(format!("upload session {id} is {}", s.status)))
                }
                _ => {}
            }
            let temporary = error.is_retryable() || error.code() == Some("StatusConflict");
            match backoff.next_delay() {
                Some(wait) if temporary => {
                    tracing::warn!("{error}; retrying the commit in {} ms", wait.as_millis());
                    tokio::time::sleep(wait).await;
                }
                _ => return Err(error.into()),
            }
        }
    }

    async fn post_sql(&self, config: &OdpsConfig, client: &OdpsClient) -> Result<(), PluginError> {
        for sql in &config.post_sql {
            client
                .run_sql("postSql", &with_semicolon(sql), false)
                .await?;
        }
        Ok(())
    }

    /// What of the job is visible, asked of the Tunnel (never assumed).
    pub(crate) async fn abort_async(
        &self,
        config: &OdpsConfig,
        job: &JobContext,
        state: Option<&JobState>,
        reports: &[Json],
    ) -> Result<Json, PluginError> {
        // prepare checked the markers; abort reports what it can regardless.
        let markers = Markers::for_job(config, job).ok().flatten();
        let Some(state) = state else {
            return Ok(answer(
                "none",
                "writer-odps: no upload session was created (prepare did not finish): nothing of this job is visible".into(),
            ));
        };
        let client = tunnel_client(config, state)?;
        let (t, part, id) = (&config.table, &state.partition, &state.upload_id);
        let target = target_of(config, state);
        let post = if reports.is_empty() {
            ""
        } else {
            " (post had started)"
        };
        let value = match session_outcome(&client, t, part, id).await {
            SessionOutcome::Committed => {
                if let Some(m) = &markers {
                    m.settle(&client, id).await;
                }
                answer(
                    "all",
                    format!(
                        "upload session {id} is committed{post}: this job's rows are in {target}; {}",
                        rerun(config, &markers)
                    ),
                )
            }
            SessionOutcome::NotCommitted(status) => answer(
                "none",
                format!(
                    "upload session {id} is not committed (the Tunnel says {status}){post}: nothing of this job is visible in {target}; \
                     the service discards the session after 24 h; {}",
                    rerun(config, &markers)
                ),
            ),
            SessionOutcome::Unknown(reason) => answer(
                "unknown",
                format!(
                    "could not learn whether upload session {id} committed into {target}{post}: {reason}; \
                     look at {target} before running the window again"
                ),
            ),
        };
        Ok(value)
    }
}

/// The table and partition the job's upload session writes.
fn target_of<'a>(config: &'a OdpsConfig, state: &'a JobState) -> Target<'a> {
    Target {
        project: &config.project,
        table: &config.table,
        partition: &state.partition,
    }
}
