//! `abort`, and what it answers the engine: `{"committed": "none"|"partial"|"all",
//! "detail": …}`.
//!
//! Every open upload of the job is aborted first: after that no reported upload can
//! still complete (a Complete a killed `post` left in flight either finished before the
//! abort or fails). Then, given the task reports (the engine passes them when `post`
//! had started), a reported object is visible when its key holds a multipart object of
//! exactly the reported size and CRC-64 (combined from the part CRCs): completed by
//! this run, or the same content by an earlier run of this window. Visible objects are
//! left as they are (deleting one could lose the same-named object of an earlier run it
//! replaced). Without reports, `post` never started and nothing of this job was made
//! visible.

use protocol::runtime::PluginError;
use serde_json::{json, Value as Json};

use crate::client::{OssClient, UploadedPart};
use crate::config::{WriteMode, WriterConfig};
use crate::crc64;
use crate::error::OssError;
use crate::job::{abort_open, first_part};
use crate::writer::TaskReport;

/// How many keys a detail names before "and N more".
const KEYS_NAMED: usize = 10;

/// The size and CRC-64 of the object the parts make.
pub(crate) fn expected(parts: &[UploadedPart]) -> (u64, u64) {
    let mut sorted: Vec<&UploadedPart> = parts.iter().collect();
    sorted.sort_by_key(|p| p.number);
    sorted.iter().fold((0, 0), |(size, crc), p| {
        (size + p.size, crc64::combine(crc, p.crc64, p.size))
    })
}

/// Whether `key` holds the multipart object of `(size, crc)`.
pub(crate) async fn holds(
    client: &OssClient,
    key: &str,
    (size, crc): (u64, u64),
) -> Result<bool, OssError> {
    Ok(client.head(key).await?.is_some_and(|meta| {
        meta.object_type == "Multipart" && meta.size == size && meta.crc64.is_none_or(|c| c == crc)
    }))
}

fn named(keys: &[String]) -> String {
    let mut text = keys
        .iter()
        .take(KEYS_NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > KEYS_NAMED {
        text.push_str(&format!(" and {} more", keys.len() - KEYS_NAMED));
    }
    text
}

/// Multi-object mode.
pub async fn abort_multi(
    client: &OssClient,
    config: &WriterConfig,
    job_hex: &str,
    reports: Option<&[TaskReport]>,
) -> Result<Json, PluginError> {
    let own = config.scope(job_hex);
    let Some(reports) = reports else {
        let count = abort_open(client, &own.prefix, |k| own.owns(k)).await?;
        return Ok(json!({"committed": "none", "detail": format!(
            "post never started: nothing of this job is visible ({count} open uploads aborted; writeMode {} deleted nothing); a re-run of this window writes it again",
            mode_name(config.write_mode)
        )}));
    };
    let aborted = abort_open(client, &own.prefix, |k| own.owns(k)).await?;
    let mut done: Vec<String> = Vec::new();
    let mut total = 0usize;
    for upload in reports.iter().flat_map(|r| r.uploads.iter()) {
        total += 1;
        if holds(client, &upload.key, expected(&upload.parts)).await? {
            done.push(upload.key.clone());
        }
    }
    let reported: Vec<&str> = reports
        .iter()
        .flat_map(|r| r.uploads.iter().map(|u| u.key.as_str()))
        .collect();
    let others: Vec<String> = if config.write_mode == WriteMode::Truncate {
        client
            .list_keys(&config.base_object(), None)
            .await?
            .into_iter()
            .filter(|k| !reported.contains(&k.as_str()))
            .collect()
    } else {
        Vec::new()
    };
    let truncate = truncate_left(client, config, &others, total > 0 && done.len() == total).await;
    let rerun = "a re-run of this window writes every object again under the same names and removes the rest";
    let (committed, detail) = if done.is_empty() {
        (
            "none",
            format!(
                "none of the {total} reported objects is visible: nothing of this job is ({aborted} open uploads aborted){truncate}; {rerun}"
            ),
        )
    } else if done.len() == total && truncate.is_empty() {
        (
            "all",
            format!(
                "all {total} reported objects are visible with the content this job wrote: {}{truncate}; {rerun}",
                named(&done)
            ),
        )
    } else if done.len() == total {
        (
            "partial",
            format!(
                "all {total} reported objects are visible with the content this job wrote: {}{truncate}; {rerun}",
                named(&done)
            ),
        )
    } else {
        (
            "partial",
            format!(
                "{} of the {total} reported objects are visible with the content this job wrote: {}; the other uploads were aborted{truncate}; {rerun}",
                done.len(),
                named(&done)
            ),
        )
    };
    tracing::warn!("abort: {detail}");
    Ok(json!({"committed": committed, "detail": detail}))
}

/// `writeMode: truncate` deletes the older objects only once every new object is
/// complete. When `post` stopped after the last Complete but before those deletions
/// (`complete`), `abort` finishes them, so the window shows exactly the new output;
/// otherwise they stay (the previous output is still whole, or part of it was replaced).
/// Returns the words for what is left, empty when nothing older is left.
async fn truncate_left(
    client: &OssClient,
    config: &WriterConfig,
    others: &[String],
    complete: bool,
) -> String {
    if others.is_empty() {
        return String::new();
    }
    let bucket = client.bucket();
    if complete {
        match client.delete_keys(others).await {
            Ok(()) => {
                tracing::info!(
                    "abort: every object of this job is complete; deleted the {} older objects writeMode truncate replaces: {}",
                    others.len(),
                    named(others)
                );
                return String::new();
            }
            Err(e) => tracing::error!(
                "abort: could not delete the older objects writeMode truncate replaces: {e}"
            ),
        }
    }
    format!(
        "; writeMode truncate did not delete the {} other objects under oss://{bucket}/{} (a re-run of this window does)",
        others.len(),
        config.base_object()
    )
}

fn mode_name(mode: WriteMode) -> &'static str {
    match mode {
        WriteMode::Truncate => "truncate",
        WriteMode::Append => "append",
        WriteMode::NonConflict => "nonConflict",
    }
}

/// Single-object mode: the one key `object`.
pub async fn abort_single(
    client: &OssClient,
    config: &WriterConfig,
    reports: Option<&[TaskReport]>,
) -> Result<Json, PluginError> {
    let key = config.object.clone();
    let target = format!("oss://{}/{key}", client.bucket());
    let aborted = abort_open(client, &key, |k| k == key).await?;
    let rerun = "a re-run of this window writes it again";
    let (committed, detail) = match reports {
        None => (
            "none",
            format!("post never started: {target} is as before ({aborted} open uploads aborted); {rerun}"),
        ),
        Some(reports) if reports.iter().all(|r| r.records == 0) => {
            let older = config.write_mode == WriteMode::Truncate
                && client.head(&key).await?.is_some()
                && client.delete(&key).await.inspect_err(|e| tracing::error!("abort: could not delete the older {target}: {e}")).is_err();
            if older {
                ("partial", format!("no records: {target} was not written, but writeMode truncate has not deleted the older {target}; {rerun}"))
            } else {
                ("all", format!("no records: {target} was not written; {rerun}"))
            }
        }
        Some(reports) => {
            let mut parts: Vec<UploadedPart> =
                reports.iter().flat_map(|r| r.parts.iter().cloned()).collect();
            let part1 = first_part(config, reports)?;
            if !part1.is_empty() {
                parts.push(UploadedPart {
                    number: 1,
                    etag: String::new(),
                    size: part1.len() as u64,
                    crc64: crc64::checksum(&part1),
                });
            }
            if holds(client, &key, expected(&parts)).await? {
                ("all", format!("{target} is visible with the content this job wrote; {rerun}"))
            } else {
                ("none", format!("{target} does not hold this job's object (its upload was not completed, {aborted} open uploads aborted): nothing of this job is visible; {rerun}"))
            }
        }
    };
    tracing::warn!("abort: {detail}");
    Ok(json!({"committed": committed, "detail": detail}))
}
