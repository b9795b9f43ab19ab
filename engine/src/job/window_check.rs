//! Does a schedule make consecutive runs of a job overwrite each other?
//!
//! A job scheduled every five minutes reads a five-minute window, but its writer may
//! replace a coarser target: the vendor's MaxCompute job writes
//! `pt=${bdp.system.bizdate}` with `"truncate": true`, so every run replaces the whole
//! day's partition with its own five minutes. To find this, the job is resolved again
//! at the schedule time one window length later and one earlier (the length from the
//! reader's resolved start and end). If the reader's window moves but the writer's
//! truncating target does not, two consecutive runs replace the same data: the engine
//! warns (once, naming the target and both windows).
//!
//! What is recognised:
//! * the reader's window: `startTimestampMillis`/`endTimestampMillis` (epoch ms),
//!   `startTimeString`/`endTimeString` (`yyyyMMddHHmmss` in the job's zone) or `date`
//!   (`yyyyMMdd`, one day) — the keys of `otsstreamreader`;
//! * truncating targets: `writer-odps` with `"truncate": true` (the table's partition,
//!   or the whole table), `writer-oss` with `"writeMode": "truncate"` (every object
//!   under the `object` prefix; the exact key with `writeSingleObject`).
//!
//! A window given as literal `-p` values does not move with the schedule time, so such
//! a job cannot be checked this way (nothing is said about it).

use std::path::Path;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde_json::Value as Json;

use super::{Job, LoadOptions, Section};
use crate::plugins::executable_name;
use protocol::Role;

/// The reader's window, `[start, end)` in epoch milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

/// What a writer replaces on every run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A MaxCompute partition (or the whole table when `partition` is empty), replaced
    /// by the commit of an overwrite session.
    Odps {
        project: String,
        table: String,
        partition: String,
    },
    /// OSS objects: every key starting with `key` (or exactly `key`), deleted by
    /// `writeMode: truncate`.
    Oss {
        bucket: String,
        key: String,
        exact: bool,
    },
}

impl Target {
    /// Whether a run writing `self` replaces (some of) what a run writing `other` wrote.
    pub fn overlaps(&self, other: &Target) -> bool {
        match (self, other) {
            (Target::Odps { .. }, Target::Odps { .. }) => self == other,
            (
                Target::Oss {
                    bucket: b1,
                    key: k1,
                    exact: e1,
                },
                Target::Oss {
                    bucket: b2,
                    key: k2,
                    exact: e2,
                },
            ) => {
                b1 == b2
                    && match (e1, e2) {
                        (true, true) => k1 == k2,
                        (false, true) => k2.starts_with(k1.as_str()),
                        (true, false) => k1.starts_with(k2.as_str()),
                        (false, false) => {
                            k1.starts_with(k2.as_str()) || k2.starts_with(k1.as_str())
                        }
                    }
            }
            _ => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Odps {
                project,
                table,
                partition,
            } if partition.is_empty() => {
                format!("writer-odps (\"truncate\": true) replaces the whole table {project}.{table}")
            }
            Target::Odps {
                project,
                table,
                partition,
            } => format!(
                "writer-odps (\"truncate\": true) replaces partition {partition} of {project}.{table}"
            ),
            Target::Oss { bucket, key, exact } if *exact => format!(
                "writer-oss (\"writeMode\": \"truncate\", writeSingleObject) replaces the object oss://{bucket}/{key}"
            ),
            Target::Oss { bucket, key, .. } => format!(
                "writer-oss (\"writeMode\": \"truncate\") deletes every object under oss://{bucket}/{key}"
            ),
        }
    }
}

/// Re-resolves the job at the neighbouring schedule times and returns the warning to
/// print when consecutive runs would overwrite each other.
pub fn check(job: &Job, path: &Path, options: &LoadOptions) -> Option<String> {
    check_with(job, |at| {
        let shifted = LoadOptions {
            schedule_time: Some(at.to_rfc3339()),
            ..options.clone()
        };
        super::load(path, &shifted).ok()
    })
}

/// [`check`] with the job resolved at another schedule time by `load_at`.
pub fn check_with(job: &Job, load_at: impl Fn(DateTime<Tz>) -> Option<Job>) -> Option<String> {
    let target = truncating_target(&job.writer)?;
    let window = reader_window(&job.reader.parameter, job.time_zone)?;
    let length = Duration::milliseconds(window.end_ms - window.start_ms);
    for shift in [length, -length] {
        let at = job.schedule_time.checked_add_signed(shift)?;
        let Some(other) = load_at(at) else { continue };
        let (Some(other_window), Some(other_target)) = (
            reader_window(&other.reader.parameter, other.time_zone),
            truncating_target(&other.writer),
        ) else {
            continue;
        };
        if other_window != window && other_target.overlaps(&target) {
            let zone = job.time_zone;
            let ((first, first_at), (second, second_at)) = if shift > Duration::zero() {
                ((window, job.schedule_time), (other_window, at))
            } else {
                ((other_window, at), (window, job.schedule_time))
            };
            return Some(format!(
                "consecutive runs of this job overwrite each other: the reader's window moves \
                 with the schedule time ({} for schedule time {}, {} for {}), but {} in both, \
                 so each run deletes what the previous one wrote. Give every window its own \
                 target (e.g. \"partition\": \"pt=$[yyyymmddhh24mi-10/24/60]\" or an OSS \
                 \"object\" with the window's start in it), or write without truncating; see \
                 \"Scheduling five-minute windows\" in the README",
                show_window(first, zone),
                show_time(first_at),
                show_window(second, zone),
                show_time(second_at),
                target.describe()
            ));
        }
    }
    None
}

fn show_time(t: DateTime<Tz>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn show_window(w: Window, zone: Tz) -> String {
    let at = |ms: i64| {
        zone.timestamp_millis_opt(ms)
            .single()
            .map(show_time)
            .unwrap_or_else(|| format!("{ms} ms"))
    };
    format!("[{}, {})", at(w.start_ms), at(w.end_ms))
}

/// The window of an `otsstreamreader`-style parameter, if it has one.
pub fn reader_window(parameter: &Json, zone: Tz) -> Option<Window> {
    let window = if let Some(date) = text(parameter.get("date")) {
        let day = NaiveDate::parse_from_str(&date, "%Y%m%d").ok()?;
        let start = local_ms(day.and_hms_opt(0, 0, 0)?, zone)?;
        Window {
            start_ms: start,
            end_ms: start + 86_400_000,
        }
    } else if let (Some(s), Some(e)) = (
        text(parameter.get("startTimeString")),
        text(parameter.get("endTimeString")),
    ) {
        let parse = |t: &str| {
            NaiveDateTime::parse_from_str(t, "%Y%m%d%H%M%S")
                .ok()
                .and_then(|n| local_ms(n, zone))
        };
        Window {
            start_ms: parse(&s)?,
            end_ms: parse(&e)?,
        }
    } else {
        Window {
            start_ms: text(parameter.get("startTimestampMillis"))?.parse().ok()?,
            end_ms: text(parameter.get("endTimestampMillis"))?.parse().ok()?,
        }
    };
    (window.end_ms > window.start_ms).then_some(window)
}

fn local_ms(naive: NaiveDateTime, zone: Tz) -> Option<i64> {
    Some(
        zone.from_local_datetime(&naive)
            .earliest()?
            .timestamp_millis(),
    )
}

/// A string or a number, as text.
fn text(value: Option<&Json>) -> Option<String> {
    match value? {
        Json::String(s) => Some(s.trim().to_owned()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn truthy(value: Option<&Json>) -> bool {
    match value {
        Some(Json::Bool(b)) => *b,
        Some(Json::String(s)) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// What the writer replaces on every run, if it truncates.
pub fn truncating_target(writer: &Section) -> Option<Target> {
    let name = writer.name.rsplit('/').next().unwrap_or(&writer.name);
    let p = &writer.parameter;
    match executable_name(Role::Writer, name).ok()?.as_str() {
        "writer-odps" if truthy(p.get("truncate")) => Some(Target::Odps {
            project: text(p.get("project")).unwrap_or_default().to_lowercase(),
            table: text(p.get("table"))?.to_lowercase(),
            partition: normalise_partition(&text(p.get("partition")).unwrap_or_default()),
        }),
        "writer-oss"
            if text(p.get("writeMode")).is_some_and(|m| m.eq_ignore_ascii_case("truncate")) =>
        {
            Some(Target::Oss {
                bucket: text(p.get("bucket")).unwrap_or_default(),
                key: text(p.get("object"))?,
                exact: truthy(p.get("writeSingleObject")),
            })
        }
        _ => None,
    }
}

/// `pt = 1 / region = 'hz'` → `pt=1,region=hz` (as writer-odps and DataX normalise it).
fn normalise_partition(spec: &str) -> String {
    spec.chars()
        .filter(|c| !c.is_whitespace() && *c != '\'' && *c != '"')
        .map(|c| if c == '/' { ',' } else { c })
        .collect()
}

#[cfg(test)]
#[path = "window_check_tests.rs"]
mod tests;
