//! The `follow` parameter object the engine injects in follow mode (issue 16):
//! `{"commitIntervalSeconds", "commitRecords", "commitBytes", "from"}`.

use protocol::runtime::PluginError;
use protocol::timefmt::{DatePattern, Zone};
use serde_json::Value as Json;

/// Where the first batch starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// The follow checkpoint, else the newest complete window checkpoint set.
    Checkpoint,
    /// Every shard from its oldest retained record.
    Oldest,
    /// Every shard from its first record at or after this time (epoch ms).
    Time(i64),
}

/// A checked `follow` object.
#[derive(Clone, Debug, PartialEq)]
pub struct FollowConfig {
    pub commit_interval_ms: u64,
    pub commit_records: Option<u64>,
    pub commit_bytes: Option<u64>,
    pub from: Start,
    /// `from` as given (for messages).
    pub from_text: String,
}

const KEYS: &[&str] = &[
    "commitIntervalSeconds",
    "commitRecords",
    "commitBytes",
    "from",
];

fn err(key: &str, message: impl std::fmt::Display) -> PluginError {
    PluginError::config(format!("parameter follow.{key}: {message}"))
}

/// The `follow` value of the reader's parameter: `None` (absent, null or `false`)
/// means window mode; `true` means follow mode with the defaults.
pub fn parse(value: Option<&Json>, zone: &Zone) -> Result<Option<FollowConfig>, PluginError> {
    let map = match value {
        None | Some(Json::Null) | Some(Json::Bool(false)) => return Ok(None),
        Some(Json::Bool(true)) => serde_json::Map::new(),
        Some(Json::Object(m)) => m.clone(),
        Some(other) => {
            return Err(PluginError::config(format!(
            "parameter follow: must be an object {{\"commitIntervalSeconds\", \"commitRecords\", \
                 \"commitBytes\", \"from\"}} or true, not {other}"
        )))
        }
    };
    for key in map.keys() {
        if !KEYS.contains(&key.as_str()) {
            tracing::warn!(
                "parameter follow.{key} is not known to reader-otsstream and is ignored"
            );
        }
    }
    let get = |k: &str| map.get(k).filter(|v| !v.is_null());
    let commit_interval_ms = match get("commitIntervalSeconds") {
        None => 10_000,
        Some(v) => match v.as_f64() {
            Some(s) if s > 0.0 && s <= 86_400.0 => (s * 1000.0).round().max(1.0) as u64,
            _ => {
                return Err(err(
                    "commitIntervalSeconds",
                    format!("must be a number of seconds above 0 and at most 86400, not {v}"),
                ))
            }
        },
    };
    let positive = |k: &str| -> Result<Option<u64>, PluginError> {
        match get(k) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Ok(Some(n)),
                _ => Err(err(
                    k,
                    format!("must be a whole number above 0 (or null), not {v}"),
                )),
            },
        }
    };
    let commit_records = positive("commitRecords")?;
    let commit_bytes = positive("commitBytes")?;
    let (from, from_text) = match get("from") {
        None => (Start::Checkpoint, "checkpoint".to_owned()),
        Some(Json::Number(n)) => (parse_from(&n.to_string(), zone)?, n.to_string()),
        Some(Json::String(s)) => (parse_from(s.trim(), zone)?, s.trim().to_owned()),
        Some(other) => {
            return Err(err(
                "from",
                format!("must be checkpoint, oldest or a time, not {other}"),
            ))
        }
    };
    Ok(Some(FollowConfig {
        commit_interval_ms,
        commit_records,
        commit_bytes,
        from,
        from_text,
    }))
}

/// `checkpoint`, `oldest`, or a time: `yyyyMMddHHmmss` in the job's zone, ISO-8601 with
/// an offset, or epoch milliseconds.
pub fn parse_from(text: &str, zone: &Zone) -> Result<Start, PluginError> {
    let bad = |why: String| {
        err(
            "from",
            format!(
                "{text:?} {why}; use checkpoint, oldest, or a time: yyyyMMddHHmmss in the \
                 job's time zone, ISO-8601 with an offset (2024-01-15T08:30:00+08:00) or epoch milliseconds"
            ),
        )
    };
    if text.eq_ignore_ascii_case("checkpoint") {
        return Ok(Start::Checkpoint);
    }
    if text.eq_ignore_ascii_case("oldest") {
        return Ok(Start::Oldest);
    }
    if text.is_empty() {
        return Err(bad("is empty".into()));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        if text.len() == 14 {
            return DatePattern::new("yyyyMMddHHmmss")
                .and_then(|p| p.parse(text, zone))
                .map(Start::Time)
                .map_err(|e| bad(format!("is not a valid yyyyMMddHHmmss time ({e})")));
        }
        return text
            .parse::<i64>()
            .map(Start::Time)
            .map_err(|e| bad(format!("is not epoch milliseconds ({e})")));
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| Start::Time(t.timestamp_millis()))
        .map_err(|e| bad(format!("is not a time ({e})")))
}

/// A `from` time must lie within what the stream retains and not in the future.
pub fn check_from_time(
    t: i64,
    text: &str,
    now_ms: i64,
    retention_hours: i32,
) -> Result<(), PluginError> {
    let horizon = now_ms - i64::from(retention_hours) * 3_600_000;
    if t > now_ms {
        return Err(err(
            "from",
            format!(
                "{text:?} ({}) is in the future (now is {})",
                crate::follow::utc(t),
                crate::follow::utc(now_ms)
            ),
        ));
    }
    if t < horizon {
        return Err(err(
            "from",
            format!(
                "{text:?} ({}) is before what the stream still holds (retention {retention_hours} h: \
                 records before {} are trimmed); use a later time, or --from oldest",
                crate::follow::utc(t),
                crate::follow::utc(horizon)
            ),
        ));
    }
    Ok(())
}

/// Follow mode ignores the window keys, with one WARN line naming those given.
pub fn warn_window_keys(parameter: &serde_json::Map<String, Json>) {
    let given: Vec<&str> = [
        "startTimestampMillis",
        "endTimestampMillis",
        "startTimeString",
        "endTimeString",
        "date",
    ]
    .into_iter()
    .filter(|k| parameter.get(*k).is_some_and(|v| !v.is_null()))
    .collect();
    if !given.is_empty() {
        tracing::warn!(
            "parameter {}: window keys have no effect in follow mode and are ignored",
            given.join(", ")
        );
    }
}

/// `ceil(limit / tasks)`: a task's share of a job-wide limit.
pub fn share(limit: Option<u64>, tasks: usize) -> Option<u64> {
    limit.map(|l| l.div_ceil(tasks.max(1) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc() -> Zone {
        Zone::parse("UTC").unwrap()
    }

    fn error(v: Json) -> String {
        parse(Some(&v), &utc()).unwrap_err().message
    }

    #[test]
    fn defaults_and_window_mode() {
        assert_eq!(parse(None, &utc()).unwrap(), None);
        assert_eq!(parse(Some(&json!(false)), &utc()).unwrap(), None);
        let c = parse(Some(&json!(true)), &utc()).unwrap().unwrap();
        assert_eq!(
            (
                c.commit_interval_ms,
                c.commit_records,
                c.commit_bytes,
                c.from
            ),
            (10_000, None, None, Start::Checkpoint)
        );
        let c = parse(
            Some(&json!({"commitIntervalSeconds": 0.5, "commitRecords": 7, "commitBytes": null, "from": "oldest"})),
            &utc(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (c.commit_interval_ms, c.commit_records, c.from),
            (500, Some(7), Start::Oldest)
        );
    }

    #[test]
    fn times_in_three_forms() {
        let z = Zone::parse("Asia/Shanghai").unwrap();
        assert_eq!(
            parse_from("20240115083000", &z).unwrap(),
            Start::Time(1_705_278_600_000)
        );
        assert_eq!(
            parse_from("2024-01-15T08:30:00+08:00", &z).unwrap(),
            Start::Time(1_705_278_600_000)
        );
        assert_eq!(
            parse_from("1705278600000", &z).unwrap(),
            Start::Time(1_705_278_600_000)
        );
        assert_eq!(parse_from("CHECKPOINT", &z).unwrap(), Start::Checkpoint);
    }

    #[test]
    fn errors_name_the_key() {
        assert!(error(json!({"commitIntervalSeconds": 0})).contains("follow.commitIntervalSeconds"));
        assert!(
            error(json!({"commitIntervalSeconds": "x"})).contains("follow.commitIntervalSeconds")
        );
        assert!(error(json!({"commitRecords": -3})).contains("follow.commitRecords"));
        assert!(error(json!({"commitBytes": 1.5})).contains("follow.commitBytes"));
        let m = error(json!({"from": "yesterday"}));
        assert!(m.contains("follow.from") && m.contains("yesterday"), "{m}");
        assert!(error(json!({"from": "20241345000000"})).contains("yyyyMMddHHmmss"));
        assert!(error(json!({"from": true})).contains("follow.from"));
        assert!(error(json!("yes")).contains("parameter follow"));
    }

    #[test]
    fn from_times_must_be_retained_and_past() {
        let now = 1_705_278_600_000;
        assert!(check_from_time(now - 3_600_000, "t", now, 24).is_ok());
        let m = check_from_time(now + 60_000, "t", now, 24).unwrap_err();
        assert!(
            m.message.contains("in the future") && m.exit_code() == 2,
            "{}",
            m.message
        );
        let m = check_from_time(now - 25 * 3_600_000, "t", now, 24).unwrap_err();
        assert!(m.message.contains("retention 24 h") && m.message.contains("--from oldest"));
    }

    #[test]
    fn shares_round_up() {
        assert_eq!(share(Some(10), 3), Some(4));
        assert_eq!(share(Some(9), 3), Some(3));
        assert_eq!(share(None, 3), None);
        assert_eq!(share(Some(1), 4), Some(1));
    }
}
