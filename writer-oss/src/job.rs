//! Job-level steps: `prepare` (bucket check, writeMode), `post` (complete every upload,
//! all or nothing) and `abort` (abort every open upload of the job).

use std::collections::BTreeSet;

use base64::Engine as _;
use bytes::Bytes;
use protocol::runtime::PluginError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use futures::stream::{self, StreamExt};

use crate::client::{OssClient, UploadedPart};
use crate::config::{WriteMode, WriterConfig};
use crate::error::OssError;
use crate::writer::{TaskReport, UploadReport, MIN_PART_BYTES};

/// CompleteMultipartUpload requests `post` sends at once.
const COMPLETES_IN_FLIGHT: usize = 8;

/// What `prepare` hands to the later steps.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct JobState {
    /// 24 hex digits of the job's names.
    pub job_hex: String,
    /// Single-object mode: the job's multipart upload.
    #[serde(default)]
    pub upload_id: Option<String>,
}

/// Bucket check, then the writeMode check; single-object mode also starts its upload.
/// Nothing is deleted here: `truncate` deletes in `post`, after the new objects are
/// complete, so a failed or killed run leaves the previous output intact.
pub async fn prepare(
    client: &OssClient,
    config: &WriterConfig,
    job_hex: &str,
) -> Result<JobState, PluginError> {
    client
        .check_bucket()
        .await
        .map_err(|e| e.into_plugin().context("checking the bucket"))?;
    let bucket = client.bucket();
    let object = &config.object;
    if config.single_object {
        if config.write_mode == WriteMode::NonConflict {
            match client.head(object).await? {
                // This window's own object (an earlier run of it): a re-run replaces it.
                Some(meta) if meta.window.as_deref() == Some(job_hex) => {}
                Some(_) => {
                    return Err(PluginError::config(format!(
                        "writeMode nonConflict: oss://{bucket}/{object} already exists"
                    )))
                }
                None => {}
            }
        }
        let upload_id = client
            .initiate_with_window(object, config.content_type(), config.encrypt, Some(job_hex))
            .await?;
        tracing::info!("single object oss://{bucket}/{object}: upload {upload_id} started");
        return Ok(JobState {
            job_hex: job_hex.to_owned(),
            upload_id: Some(upload_id),
        });
    }
    // Partitioned by the window's time: the window's partition; by event time,
    // truncate and nonConflict are refused by the configuration.
    let base = config.base_object();
    let object = &base;
    let own = config.scope(job_hex);
    match config.write_mode {
        WriteMode::Truncate => {
            let keys = client.list_keys(object, None).await?;
            tracing::info!(
                "writeMode truncate: {} objects under oss://{bucket}/{object} are deleted in post, once every new object is complete",
                keys.len()
            );
        }
        WriteMode::NonConflict => {
            // Objects of this window (an earlier run of it) are not a conflict: a re-run
            // replaces them.
            let keys: Vec<String> = client
                .list_keys(object, None)
                .await?
                .into_iter()
                .filter(|k| !own.owns(k))
                .take(10)
                .collect();
            if !keys.is_empty() {
                return Err(PluginError::config(format!(
                    "writeMode nonConflict: objects already exist under oss://{bucket}/{object}: {}",
                    keys.join(", ")
                )));
            }
        }
        WriteMode::Append => {}
    }
    Ok(JobState {
        job_hex: job_hex.to_owned(),
        upload_id: None,
    })
}

/// Completes every reported upload (several at once). If one fails, the objects
/// completed under new names are deleted (those that replaced a same-named object of
/// an earlier run of this window stay: deleting them would lose that run's output) and
/// the failed uploads aborted. Once all are complete: `truncate` deletes every other
/// object under `object` that existed before, other modes what an earlier run of this
/// window left under its names and is not part of this output; then the job's other
/// open uploads are aborted. Answers what it committed.
pub async fn post_multi(
    client: &OssClient,
    config: &WriterConfig,
    job_hex: &str,
    reports: &[TaskReport],
) -> Result<Json, PluginError> {
    let uploads: Vec<&UploadReport> = reports.iter().flat_map(|r| r.uploads.iter()).collect();
    let bucket = client.bucket();
    let own = config.scope(job_hex);
    let base = config.base_object();
    let truncate = config.write_mode == WriteMode::Truncate;
    let scope = if truncate { &base } else { &own.prefix };
    let before: BTreeSet<String> = client
        .list_keys(scope, None)
        .await?
        .into_iter()
        .filter(|k| truncate || own.owns(k))
        .collect();
    let results: Vec<(usize, Result<(), OssError>)> = stream::iter(uploads.iter().enumerate())
        .map(|(i, u)| async move { (i, complete_once(client, u).await) })
        .buffer_unordered(COMPLETES_IN_FLIGHT)
        .collect()
        .await;
    let mut completed: Vec<&str> = Vec::new();
    let mut failed: Vec<(usize, OssError)> = Vec::new();
    for (i, result) in results {
        match result {
            Ok(()) => completed.push(&uploads[i].key),
            Err(e) => failed.push((i, e)),
        }
    }
    if let Some((_, first_error)) = failed.first() {
        let (replaced, new): (Vec<&str>, Vec<&str>) =
            completed.iter().partition(|k| before.contains(**k));
        tracing::error!(
            "{} of {} objects could not be completed ({first_error}); deleting the {} completed under new names",
            failed.len(),
            uploads.len(),
            new.len()
        );
        if !replaced.is_empty() {
            tracing::warn!(
                "{} completed objects replaced same-named objects of an earlier run of this window and stay: {}",
                replaced.len(),
                replaced.join(", ")
            );
        }
        let keys: Vec<String> = new.iter().map(|k| (*k).to_owned()).collect();
        if let Err(d) = client.delete_keys(&keys).await {
            tracing::error!("rollback could not delete {keys:?}: {d}");
        }
        for (i, _) in &failed {
            let u = uploads[*i];
            if let Err(a) = client.abort(&u.key, &u.upload_id).await {
                tracing::warn!("rollback could not abort {}: {a}", u.key);
            }
        }
        let error = failed.swap_remove(0).1;
        return Err(error.into_plugin().context("post"));
    }
    let written: BTreeSet<&str> = completed.iter().copied().collect();
    let stale: Vec<String> = before
        .into_iter()
        .filter(|k| !written.contains(k.as_str()))
        .collect();
    if !stale.is_empty() {
        let why = if truncate {
            format!(
                "writeMode truncate: deleting the {} older objects under oss://{bucket}/{}",
                stale.len(),
                base
            )
        } else {
            format!(
                "removing {} objects an earlier run of this window left",
                stale.len()
            )
        };
        tracing::info!("{why}: {}", stale.join(", "));
        client.delete_keys(&stale).await?;
    }
    abort_open(client, &own.prefix, |k| own.owns(k)).await?;
    let bytes: u64 = uploads
        .iter()
        .flat_map(|u| u.parts.iter())
        .map(|p| p.size)
        .sum();
    let detail = format!(
        "{} objects ({bytes} bytes) visible under oss://{bucket}/{}{}",
        completed.len(),
        base,
        if truncate {
            format!("; writeMode truncate deleted {} older objects", stale.len())
        } else {
            String::new()
        }
    );
    tracing::info!("post: {detail}");
    Ok(json!({"committed": "all", "detail": detail}))
}

/// Completes one reported upload. An upload that no longer exists but whose key holds
/// exactly its object (same size and CRC-64) was completed by an earlier `post` of
/// these same reports (a commit re-run after a kill, `streamport commit` again): done.
async fn complete_once(client: &OssClient, u: &UploadReport) -> Result<(), OssError> {
    match client.complete(&u.key, &u.upload_id, &u.parts).await {
        Err(e) if e.code() == Some("NoSuchUpload") => {
            if crate::commit::holds(client, &u.key, crate::commit::expected(&u.parts)).await? {
                tracing::info!(
                    "{}: upload {} was already completed by an earlier post of these reports",
                    u.key,
                    u.upload_id
                );
                Ok(())
            } else {
                Err(e)
            }
        }
        other => other,
    }
}

/// Single-object mode: uploads the header and the tasks' leftovers as part 1 and completes, or
/// aborts when no record arrived at all (no object, as DataX). Answers what it committed.
pub async fn post_single(
    client: &OssClient,
    config: &WriterConfig,
    upload_id: &str,
    reports: &[TaskReport],
) -> Result<Json, PluginError> {
    let key = &config.object;
    let bucket = client.bucket();
    let records: u64 = reports.iter().map(|r| r.records).sum();
    if records == 0 {
        client.abort(key, upload_id).await?;
        if config.write_mode == WriteMode::Truncate && client.head(key).await?.is_some() {
            client.delete(key).await?;
        }
        let detail = format!("no records: oss://{bucket}/{key} not written");
        tracing::info!("{detail}");
        return Ok(json!({"committed": "all", "detail": detail}));
    }
    let mut parts: Vec<UploadedPart> = reports
        .iter()
        .flat_map(|r| r.parts.iter().cloned())
        .collect();
    let part1 = first_part(config, reports)?;
    if !parts.is_empty() && part1.len() < MIN_PART_BYTES {
        return Err(PluginError::internal(format!(
            "single object: part 1 has {} bytes, under OSS's minimum",
            part1.len()
        )));
    }
    if !part1.is_empty() {
        parts.push(
            client
                .upload_part(key, upload_id, 1, Bytes::from(part1))
                .await?,
        );
    }
    parts.sort_by_key(|p| p.number);
    client.complete(key, upload_id, &parts).await?;
    let detail = format!(
        "oss://{bucket}/{key} visible ({records} records, {} parts)",
        parts.len()
    );
    tracing::info!("post: {detail}");
    Ok(json!({"committed": "all", "detail": detail}))
}

/// Single-object mode, part 1: the header, then every task's leftovers in task order.
/// It is at least 100 KiB whenever another part exists, since a task uploads parts only
/// after keeping its first 100 KiB for this one.
pub fn first_part(config: &WriterConfig, reports: &[TaskReport]) -> Result<Vec<u8>, PluginError> {
    let mut first = String::new();
    if !config.header.is_empty() {
        config
            .record_format
            .write_header(&config.header, &mut first);
    }
    let mut part1 = Vec::new();
    config.encoder.encode_into(&first, &mut part1);
    let mut sorted: Vec<&TaskReport> = reports.iter().collect();
    sorted.sort_by_key(|r| r.task_index);
    for r in &sorted {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&r.tail_base64)
            .map_err(|e| {
                PluginError::protocol(format!("task {} report: leftovers: {e}", r.task_index))
            })?;
        part1.extend(bytes);
    }
    Ok(part1)
}

/// Aborts the open uploads whose key starts with `prefix` and passes `keep`.
pub async fn abort_open(
    client: &OssClient,
    prefix: &str,
    keep: impl Fn(&str) -> bool,
) -> Result<usize, PluginError> {
    let uploads = client.list_uploads(prefix).await?;
    let mut count = 0;
    for (key, id) in uploads.iter().filter(|(k, _)| keep(k)) {
        client.abort(key, id).await?;
        tracing::info!("aborted the open upload of oss://{}/{key}", client.bucket());
        count += 1;
    }
    Ok(count)
}
