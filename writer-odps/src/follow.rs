//! Follow mode (`streamport run --follow`): the engine puts `"follow": true` in the
//! parameter. Each micro-batch is a small job with its own fingerprint: one upload
//! session per batch, appended (`truncate: false`) with a commit marker keyed by the
//! batch fingerprint, so a batch replayed after a crash whose marker says committed
//! commits nothing again ([`crate::commit`]). Refused (a config error naming the key):
//!
//! * `truncate: true`: every batch would replace the rows of the batches before it;
//! * `commitMarker: false`: a batch replayed after a crash would be appended twice.
//!
//! Each committed batch leaves one marker partition (a table holds at most 60,000):
//! without `commitMarkerLifecycle` a warning asks for one (only the newest batch's
//! marker matters for a replay; older batches' checkpoints are saved).

use protocol::runtime::PluginError;
use serde_json::Value as Json;

/// Whether the engine runs this writer in follow mode, and if so, whether the
/// configuration can follow.
pub fn check(p: &Json, truncate: bool, marker: bool) -> Result<bool, PluginError> {
    let follow = match p.get("follow") {
        None | Some(Json::Null) | Some(Json::Bool(false)) => false,
        Some(Json::Bool(true)) => true,
        Some(other) => {
            return Err(PluginError::config(format!(
                "writer-odps: follow = {other}: the engine sets it to true in follow mode (do not set it in the job)"
            )))
        }
    };
    if follow && truncate {
        return Err(PluginError::config(
            "writer-odps: follow mode: truncate true would replace the earlier batches' rows at every commit; use truncate false (append with commit markers)",
        ));
    }
    if follow && !marker {
        return Err(PluginError::config(
            "writer-odps: follow mode: commitMarker false would append a batch replayed after a crash a second time; leave commitMarker on",
        ));
    }
    Ok(follow)
}

/// The `check` step's warning (once per run, not in every step of every batch).
pub fn warn_once(p: &Json) {
    let following = p.get("follow") == Some(&Json::Bool(true));
    let lifecycle = p.get("commitMarkerLifecycle").is_some_and(|v| !v.is_null());
    if following && !lifecycle {
        tracing::warn!(
            "writer-odps: follow mode adds one commit-marker partition per batch (a table holds at most 60,000): set commitMarkerLifecycle (days, e.g. 1) so old markers are reclaimed"
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::config::OdpsConfig;

    fn follow() -> serde_json::Value {
        json!({
            "odpsServer": "http://127.0.0.1:1/api", "project": "p", "table": "t",
            "column": ["*"], "truncate": false, "accessId": "id", "accessKey": "secret-value",
            "follow": true
        })
    }

    #[test]
    fn follow_mode_appends_with_markers_only() {
        assert!(OdpsConfig::from_parameter(&follow(), "UTC").is_ok());
        for (key, value, needle) in [
            ("truncate", json!(true), "truncate true"),
            ("commitMarker", json!(false), "commitMarker false"),
            ("follow", json!(1), "follow = 1"),
        ] {
            let mut p = follow();
            p[key] = value;
            let e = OdpsConfig::from_parameter(&p, "UTC").unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.message.contains(needle), "{}", e.message);
        }
        let mut p = follow();
        p["truncate"] = json!(true);
        p.as_object_mut().unwrap().remove("follow");
        assert!(
            OdpsConfig::from_parameter(&p, "UTC").is_ok(),
            "window jobs are unchanged"
        );
    }
}
