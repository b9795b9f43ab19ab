//! Follow mode of the misbehaving plugins, for the engine's follow-loop tests.
//!
//! With `marker_dir`, every step and task appends a line to `<marker_dir>/calls.log`:
//! `<role> <step> fp=<fingerprint> reports=<n>` (a reader's `split` adds
//! ` batch=<followBatch>`; a task logs `<role> task<i> fp=<fingerprint>`).
//!
//! A reader whose parameter has the engine's `follow` object follows: its `split` gives
//! every task `followBatch` = the number of batches its `post` committed so far (8 hex
//! digits; kept in `<marker_dir>/follow-state.json`, with the number of splits), so a
//! batch after an empty one has the same id. Parameters:
//!
//! | parameter | meaning |
//! |---|---|
//! | `follow_records` | records per task of each batch, by split number (after the list: 0) |
//! | `follow_task_ms` | each reader task of a batch takes at least this long |
//! | `follow_lag_ms` | checkpoints carry `position_ms` = now − this |
//! | `follow_no_batch` | `split` leaves `followBatch` out (a reader that cannot follow) |

use std::io::Write;

use protocol::message::JobContext;
use protocol::Role;
use serde_json::{json, Value as Json};

fn marker_dir(p: &Json) -> Option<&str> {
    p.get("marker_dir").and_then(Json::as_str)
}

/// Whether `MISBEHAVE_FAIL_READER_STEP` names this reader step (a failure that leaves
/// the parameter, so the job's fingerprint, as it is).
pub fn fails(role: Role, step: &str) -> bool {
    role == Role::Reader && std::env::var("MISBEHAVE_FAIL_READER_STEP").is_ok_and(|s| s == step)
}

/// Appends `line` to `<marker_dir>/calls.log`.
pub fn log_call(p: &Json, line: &str) {
    if let Some(dir) = marker_dir(p) {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(format!("{dir}/calls.log"))
        {
            // One write per line: tasks of two processes append at once (O_APPEND keeps
            // a single small write whole; `writeln!` may split it).
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
}

/// The call line of a step.
pub fn step_line(role: Role, step: &str, job: &JobContext, reports: usize) -> String {
    format!(
        "{} {step} fp={} reports={reports}",
        role.name(),
        job.fingerprint
    )
}

fn is_following(p: &Json) -> bool {
    p.get("follow").is_some_and(Json::is_object)
}

fn state(p: &Json) -> (u64, u64) {
    let Some(dir) = marker_dir(p) else {
        return (0, 0);
    };
    let s: Json = std::fs::read_to_string(format!("{dir}/follow-state.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Json::Null);
    let n = |k: &str| s.get(k).and_then(Json::as_u64).unwrap_or(0);
    (n("committed"), n("splits"))
}

fn save(p: &Json, (committed, splits): (u64, u64)) {
    if let Some(dir) = marker_dir(p) {
        let body = json!({"committed": committed, "splits": splits});
        let _ = std::fs::write(format!("{dir}/follow-state.json"), body.to_string());
    }
}

/// A following reader's `split`: `count` task configs of one batch, or `None` when the
/// reader does not follow.
pub fn split(role: Role, p: &Json, count: usize) -> Option<(Json, String)> {
    if role != Role::Reader || !is_following(p) {
        return None;
    }
    let (committed, splits) = state(p);
    save(p, (committed, splits + 1));
    let records = p
        .get("follow_records")
        .and_then(Json::as_array)
        .and_then(|a| a.get(splits as usize))
        .and_then(Json::as_u64)
        .unwrap_or(0);
    let id = format!("{committed:08x}");
    let tasks = (0..count)
        .map(|i| {
            let mut t = p.clone();
            if let Some(m) = t.as_object_mut() {
                m.insert("taskIndex".into(), json!(i));
                m.insert("records".into(), json!(records));
                if let Some(ms) = p.get("follow_task_ms") {
                    m.insert("task_ms".into(), ms.clone());
                }
                if p.get("follow_no_batch") != Some(&Json::Bool(true)) {
                    m.insert("followBatch".into(), json!(id));
                }
            }
            t
        })
        .collect();
    Some((Json::Array(tasks), id))
}

/// A following reader's `post`: one more batch committed.
pub fn post(role: Role, p: &Json) {
    if role == Role::Reader && is_following(p) {
        let (committed, splits) = state(p);
        save(p, (committed + 1, splits));
    }
}

/// A checkpoint state of a following task: `position_ms` added.
pub fn checkpoint(config: &Json, mut state: Json, now_ms: u64) -> Json {
    if config.get("followBatch").is_some() {
        let lag = config
            .get("follow_lag_ms")
            .and_then(Json::as_u64)
            .unwrap_or(0);
        if let Some(m) = state.as_object_mut() {
            m.insert("position_ms".into(), json!(now_ms.saturating_sub(lag)));
        }
    }
    state
}
