//! `setting`: speed, error limit and time zone.
//!
//! * `speed.channel` (or the hosted `concurrent`): how many tasks run at once, and the
//!   split advice given to the reader. Default 1.
//! * `speed.byte` (bytes/s), `speed.mbps` (MiB/s) and `speed.record` (records/s): limits
//!   for the **whole job**, across all channels. `throttle: false` turns the byte
//!   limits off (as in Data Integration). A limit ≤ 0 means no limit.
//! * `errorLimit.record` (dirty records allowed; `0` = none) and
//!   `errorLimit.percentage` (a fraction in [0, 1], checked at the end); `record` wins.
//! * `timeZone`: an IANA name (`Asia/Shanghai`), `UTC`, or `GMT+8`.
//! * `postTimeoutSeconds`: how long the commit (writer `post`, then reader `post`) may
//!   take; `--post-timeout` wins over it. Default [`DEFAULT_POST_TIMEOUT_SECS`].
//!
//! Numbers may be JSON numbers or numeric strings; a blank string means "not set".

use serde_json::{Map, Value as Json};

use crate::error::EngineError;
use crate::limits::ErrorLimit;

/// How long the commit may take when neither `--post-timeout` nor
/// `setting.postTimeoutSeconds` says.
pub const DEFAULT_POST_TIMEOUT_SECS: f64 = 600.0;

/// The checked settings of a job.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub channel: usize,
    pub bytes_per_sec: Option<u64>,
    pub records_per_sec: Option<u64>,
    pub error_limit: ErrorLimit,
    /// The `timeZone` setting as written, if any.
    pub time_zone: Option<String>,
    /// `postTimeoutSeconds`, when set.
    pub post_timeout_secs: Option<f64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            channel: 1,
            bytes_per_sec: None,
            records_per_sec: None,
            error_limit: ErrorLimit::default(),
            time_zone: None,
            post_timeout_secs: None,
        }
    }
}

fn number(value: Option<&Json>, path: &str, source_name: &str) -> Result<Option<f64>, EngineError> {
    match value {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Number(n)) => Ok(n.as_f64()),
        Some(Json::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Json::String(s)) => s.trim().parse::<f64>().map(Some).map_err(|_| {
            EngineError::config(format!("{source_name}: {path} = {s:?} is not a number"))
        }),
        Some(other) => Err(EngineError::config(format!(
            "{source_name}: {path} = {other} is not a number"
        ))),
    }
}

fn whole(value: Option<f64>, path: &str, source_name: &str) -> Result<Option<i64>, EngineError> {
    match value {
        None => Ok(None),
        Some(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Ok(Some(v as i64)),
        Some(v) => Err(EngineError::config(format!(
            "{source_name}: {path} = {v} must be a whole number"
        ))),
    }
}

/// Positive limit, or none.
fn limit(value: Option<f64>) -> Option<f64> {
    value.filter(|v| *v > 0.0)
}

impl Settings {
    pub fn parse(setting: &Map<String, Json>, source_name: &str) -> Result<Self, EngineError> {
        let empty = Map::new();
        let section = |key: &str| -> Result<&Map<String, Json>, EngineError> {
            match setting.get(key) {
                None | Some(Json::Null) => Ok(&empty),
                Some(Json::Object(m)) => Ok(m),
                Some(_) => Err(EngineError::config(format!(
                    "{source_name}: setting.{key} must be an object"
                ))),
            }
        };
        let speed = section("speed")?;
        let get = |key: &str| number(speed.get(key), &format!("setting.speed.{key}"), source_name);
        let channel = match whole(get("channel")?, "setting.speed.channel", source_name)? {
            Some(c) => Some(c),
            None => whole(get("concurrent")?, "setting.speed.concurrent", source_name)?,
        };
        let channel = match channel {
            None => 1,
            Some(c) if c >= 1 => c as usize,
            Some(c) => {
                return Err(EngineError::config(format!(
                    "{source_name}: setting.speed.channel = {c}: at least 1 channel is needed"
                )))
            }
        };
        let throttle = !matches!(speed.get("throttle"), Some(Json::Bool(false)))
            && !matches!(speed.get("throttle"), Some(Json::String(s)) if s.trim().eq_ignore_ascii_case("false"));
        let bytes_per_sec = if throttle {
            let byte = limit(get("byte")?);
            let mbps = limit(get("mbps")?).map(|m| m * 1024.0 * 1024.0);
            match (byte, mbps) {
                (Some(b), Some(m)) => Some(b.min(m)),
                (b, m) => b.or(m),
            }
            .map(|v| v.round().max(1.0) as u64)
        } else {
            None
        };
        let records_per_sec = limit(get("record")?).map(|v| v.round().max(1.0) as u64);

        let errors = section("errorLimit")?;
        let record = whole(
            number(
                errors.get("record"),
                "setting.errorLimit.record",
                source_name,
            )?,
            "setting.errorLimit.record",
            source_name,
        )?;
        let percentage = number(
            errors.get("percentage"),
            "setting.errorLimit.percentage",
            source_name,
        )?;
        if let Some(r) = record {
            if r < 0 {
                return Err(EngineError::config(format!(
                    "{source_name}: setting.errorLimit.record = {r}: the number of dirty records allowed must not be negative"
                )));
            }
        }
        if let Some(p) = percentage {
            if !(0.0..=1.0).contains(&p) {
                return Err(EngineError::config(format!(
                    "{source_name}: setting.errorLimit.percentage = {p}: it must be a fraction in [0.0, 1.0]"
                )));
            }
        }
        let time_zone = match setting.get("timeZone") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) if s.trim().is_empty() => None,
            Some(Json::String(s)) => Some(s.trim().to_owned()),
            Some(other) => {
                return Err(EngineError::config(format!(
                    "{source_name}: setting.timeZone = {other} must be a time zone name"
                )))
            }
        };
        let post_timeout_secs = match number(
            setting.get("postTimeoutSeconds"),
            "setting.postTimeoutSeconds",
            source_name,
        )? {
            Some(v) if !(v.is_finite() && v > 0.0) => {
                return Err(EngineError::config(format!(
                    "{source_name}: setting.postTimeoutSeconds = {v} must be a positive number of seconds"
                )))
            }
            v => v,
        };
        Ok(Self {
            post_timeout_secs,
            channel,
            bytes_per_sec,
            records_per_sec,
            error_limit: ErrorLimit {
                record: record.map(|r| r as u64),
                percentage,
            },
            time_zone,
        })
    }
}

/// Resolves a time-zone setting: an IANA name, `UTC`, `GMT+8` / `UTC-3`; none means the
/// machine's zone (UTC when it cannot be determined).
pub fn resolve_time_zone(setting: Option<&str>) -> Result<chrono_tz::Tz, EngineError> {
    let name = match setting {
        Some(s) => s.to_owned(),
        None => iana_time_zone::get_timezone().unwrap_or_else(|_| "UTC".to_owned()),
    };
    if let Ok(tz) = name.parse::<chrono_tz::Tz>() {
        return Ok(tz);
    }
    let upper = name.to_ascii_uppercase();
    let offset = upper
        .strip_prefix("GMT")
        .or_else(|| upper.strip_prefix("UTC"))
        .and_then(|rest| {
            let (sign, digits) = rest.split_at(rest.find(|c: char| c.is_ascii_digit())?);
            let hours: i32 = digits.parse().ok()?;
            match sign {
                "+" => Some(hours),
                "-" => Some(-hours),
                _ => None,
            }
        });
    if let Some(hours) = offset {
        // The Etc/GMT zones have POSIX signs: Etc/GMT-8 is 8 hours east of UTC.
        let etc = if hours == 0 {
            "Etc/GMT".to_owned()
        } else {
            format!("Etc/GMT{:+}", -hours)
        };
        if let Ok(tz) = etc.parse::<chrono_tz::Tz>() {
            return Ok(tz);
        }
    }
    Err(EngineError::config(format!(
        "setting.timeZone {name:?} is not a known time zone (use an IANA name such as Asia/Shanghai, or UTC, or GMT+8)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Json) -> Result<Settings, EngineError> {
        Settings::parse(v.as_object().unwrap(), "j")
    }

    #[test]
    fn numbers_as_strings_and_hosted_keys() {
        let s = parse(
            json!({"speed": {"mbps": "1", "concurrent": "3"}, "errorLimit": {"record": "0"}}),
        )
        .unwrap();
        assert_eq!(s.channel, 3);
        assert_eq!(s.bytes_per_sec, Some(1024 * 1024));
        assert_eq!(s.error_limit.record, Some(0));
        let s = parse(
            json!({"speed": {"channel": 4, "byte": 2097152, "record": 50000, "concurrent": 9}}),
        )
        .unwrap();
        assert_eq!(
            (s.channel, s.bytes_per_sec, s.records_per_sec),
            (4, Some(2097152), Some(50000))
        );
        let s = parse(json!({"speed": {"throttle": false, "mbps": 5, "channel": -1}}));
        assert!(s.is_err());
        let s =
            parse(json!({"speed": {"throttle": false, "mbps": 5}, "errorLimit": {"record": ""}}))
                .unwrap();
        assert_eq!(s.bytes_per_sec, None);
        assert_eq!(s.error_limit.record, None);
        assert_eq!(s.channel, 1);
    }

    #[test]
    fn invalid_limits() {
        assert!(parse(json!({"errorLimit": {"record": -1}})).is_err());
        assert!(parse(json!({"errorLimit": {"percentage": 1.5}})).is_err());
        assert!(parse(json!({"speed": {"channel": "many"}})).is_err());
        assert!(parse(json!({"speed": {"channel": 1.5}})).is_err());
        assert!(parse(json!({"postTimeoutSeconds": 0})).is_err());
        assert!(parse(json!({"postTimeoutSeconds": "soon"})).is_err());
        let s = parse(json!({"postTimeoutSeconds": "90"})).unwrap();
        assert_eq!(s.post_timeout_secs, Some(90.0));
        assert_eq!(parse(json!({})).unwrap().post_timeout_secs, None);
    }

    #[test]
    fn time_zones() {
        assert_eq!(
            resolve_time_zone(Some("Asia/Shanghai")).unwrap().name(),
            "Asia/Shanghai"
        );
        assert_eq!(
            resolve_time_zone(Some("GMT+8")).unwrap().name(),
            "Etc/GMT-8"
        );
        assert_eq!(resolve_time_zone(Some("UTC")).unwrap().name(), "UTC");
        assert!(resolve_time_zone(Some("Mars/Olympus")).is_err());
        assert!(resolve_time_zone(None).is_ok());
    }
}
