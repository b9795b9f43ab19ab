//! Follow mode (`streamport run --follow`): the engine puts `"follow": true` in the
//! parameter. Each micro-batch is a small job with its own fingerprint, so its objects
//! get their own names and become visible together in its `post`. What cannot work
//! batch after batch is refused (a config error naming the key):
//!
//! * `writeMode: truncate`: every batch would delete the batches before it;
//! * `writeMode: nonConflict`: the second batch would find the first batch's objects;
//! * `writeSingleObject`: one exact key cannot hold a stream of batches;
//! * `windowTime`: a follow job has no window (partition by `eventTimeColumn` instead).
//!
//! `generateEmptyFile` has no effect: a batch that read nothing is not committed, and a
//! task of a batch that got no records writes no object.

use protocol::runtime::PluginError;
use serde_json::{Map, Value as Json};

use crate::config::WriteMode;

/// Whether the engine runs this writer in follow mode (`"follow": true`).
pub fn following(map: &Map<String, Json>) -> Result<bool, PluginError> {
    match map.get("follow") {
        None | Some(Json::Null) | Some(Json::Bool(false)) => Ok(false),
        Some(Json::Bool(true)) => Ok(true),
        Some(other) => Err(PluginError::config(format!(
            "writer-oss: follow = {other}: the engine sets it to true in follow mode (do not set it in the job)"
        ))),
    }
}

/// Refuses what follow mode cannot do.
pub fn check(
    map: &Map<String, Json>,
    write_mode: WriteMode,
    single_object: bool,
) -> Result<(), PluginError> {
    let refuse = |what: &str| {
        Err(PluginError::config(format!(
            "writer-oss: follow mode: {what}"
        )))
    };
    match write_mode {
        WriteMode::Truncate => {
            return refuse("writeMode truncate would delete the earlier batches at every commit; use writeMode append")
        }
        WriteMode::NonConflict => {
            return refuse("writeMode nonConflict would fail at the second batch (the first batch's objects are under the prefix); use writeMode append")
        }
        WriteMode::Append => {}
    }
    if single_object {
        return refuse("writeSingleObject cannot hold a stream of batches in one key; leave it out (each batch writes its own objects)");
    }
    let given = |v: &Json| !(v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty()));
    if map.get("windowTime").is_some_and(given) {
        return refuse("windowTime: a follow job has no window; partition by eventTimeColumn instead, or leave the time placeholders out of object");
    }
    Ok(())
}

/// The `check` step's warning (once per run, not in every step of every batch).
pub fn warn_once(parameter: &Json) {
    if parameter.get("follow") == Some(&Json::Bool(true))
        && parameter.get("generateEmptyFile") == Some(&Json::Bool(true))
    {
        tracing::warn!("writer-oss: follow mode: generateEmptyFile has no effect (batches that read nothing are not committed)");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::config::WriterConfig;

    fn follow(mode: &str) -> serde_json::Value {
        json!({"endpoint": "127.0.0.1:1", "accessId": "id", "accessKey": "secret",
               "bucket": "b-1", "object": "out/x", "writeMode": mode, "follow": true})
    }

    fn refused(p: serde_json::Value, key: &str) {
        let e = WriterConfig::from_parameter(&p, "UTC").unwrap_err();
        assert_eq!(e.exit_code(), 2, "{}", e.message);
        assert!(
            e.message.contains("follow mode") && e.message.contains(key),
            "{}",
            e.message
        );
    }

    #[test]
    fn follow_mode_refuses_what_cannot_work_batch_after_batch() {
        refused(follow("truncate"), "writeMode truncate");
        refused(follow("nonConflict"), "writeMode nonConflict");
        let mut p = follow("append");
        p["writeMode"] = json!("truncate");
        p["writeSingleObject"] = json!(true);
        refused(p, "writeMode truncate");
        let mut p = follow("append");
        p["object"] = json!("out/$yyyy/$MM/$dd/x");
        p["windowTime"] = json!("20241121102000");
        refused(p, "windowTime");
        let mut p = follow("append");
        p["follow"] = json!("yes");
        let e = WriterConfig::from_parameter(&p, "UTC").unwrap_err();
        assert!(e.message.contains("follow = \"yes\""), "{}", e.message);
    }

    #[test]
    fn follow_mode_appends_and_writes_no_empty_object() {
        let mut p = follow("append");
        p["generateEmptyFile"] = json!(true);
        let c = WriterConfig::from_parameter(&p, "UTC").unwrap();
        assert!(c.follow && !c.generate_empty_file);
        let mut p = follow("truncate");
        p.as_object_mut().unwrap().remove("follow");
        let c = WriterConfig::from_parameter(&p, "UTC").unwrap();
        assert!(
            !c.follow && c.generate_empty_file,
            "window jobs are unchanged"
        );
        let mut p = follow("append");
        p["object"] = json!("out/$yyyy/$MM/x");
        p["eventTimeColumn"] = json!(0);
        assert!(
            WriterConfig::from_parameter(&p, "UTC").is_ok(),
            "event-time partitions work"
        );
    }
}
