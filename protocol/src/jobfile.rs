//! Reading job files as the vendor documentation writes them, for `--config`.
//!
//! * [`parse_lenient`]: JSON with `//`, `#` and `/* */` comments and trailing commas.
//! * [`substitute`]: `${name}`, `$name` and `$[expression]` placeholders, before
//!   parsing (as DataX does), JSON-aware so a value cannot change the document's
//!   structure (see [`crate::placeholders`]).
//! * [`plugin_parameter`]: a plugin's own `parameter` object from a DataX job
//!   (`job.content[0].reader.parameter`), a Data Integration script job
//!   (`configuration.reader.parameter`, or the `steps` form), or a bare parameter object.
//!   Keys are matched ignoring case and surrounding spaces (`"Configuration "`).

use serde_json::{Map, Value};

use crate::message::Role;
use crate::placeholders::is_name;
pub use crate::placeholders::{substitute, Resolver};

/// A job file that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JobFileError {
    #[error("{source_name}: not valid JSON at line {line}, column {column}: {message}")]
    Syntax {
        source_name: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{source_name}: variable ${{{name}}} is not set (give it with -p {name}=VALUE)")]
    UnsetVariable { source_name: String, name: String },
    /// A placeholder that cannot be substituted: a malformed or refused `$[…]`, or a
    /// value that is not one JSON scalar where the placeholder stands outside a string.
    #[error("{source_name}: line {line}, column {column}: {placeholder}: {message}")]
    Placeholder {
        source_name: String,
        line: usize,
        column: usize,
        placeholder: String,
        message: String,
    },
    #[error("{source_name}: {message}")]
    Shape {
        source_name: String,
        message: String,
    },
}

/// Removes comments and trailing commas, leaving strings untouched, then parses.
/// Line and column numbers in errors refer to the original text.
pub fn parse_lenient(text: &str, source_name: &str) -> Result<Value, JobFileError> {
    let cleaned = strip_comments_and_trailing_commas(text);
    serde_json::from_str(&cleaned).map_err(|e| JobFileError::Syntax {
        source_name: source_name.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e
            .to_string()
            .split(" at line")
            .next()
            .unwrap_or_default()
            .to_owned(),
    })
}

/// Removes `//`, `#` and `/* */` comments and trailing commas, leaving strings
/// untouched. Comments become spaces (newlines kept) so positions stay the same.
/// Variables must be substituted after this, or a `${name}` inside a comment would
/// count as a use of `name`.
pub fn strip_comments_and_trailing_commas(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            out.push(b);
            if b == b'\\' && i + 1 < bytes.len() {
                out.push(bytes[i + 1]);
                i += 2;
                continue;
            }
            if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                out.push(b);
                i += 1;
            }
            b'#' => i = blank_until_newline(bytes, i, &mut out),
            b'/' if bytes.get(i + 1) == Some(&b'/') => i = blank_until_newline(bytes, i, &mut out),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |p| i + 2 + p + 2);
                for &c in &bytes[i..end] {
                    out.push(if c == b'\n' { b'\n' } else { b' ' });
                }
                i = end;
            }
            b']' | b'}' => {
                // Drop a comma that only whitespace separates from this closing bracket.
                if let Some(pos) = out.iter().rposition(|c| !c.is_ascii_whitespace()) {
                    if out[pos] == b',' {
                        out[pos] = b' ';
                    }
                }
                out.push(b);
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    // Only ASCII bytes were replaced by ASCII bytes: still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn blank_until_newline(bytes: &[u8], mut i: usize, out: &mut Vec<u8>) -> usize {
    while i < bytes.len() && bytes[i] != b'\n' {
        out.push(b' ');
        i += 1;
    }
    i
}

/// Parses `-p` arguments: `name=value`, or DataX's `-Dname=value -Dother=v` in one string.
/// A malformed argument is named by its position only: its text may hold a secret
/// (`-p "sk:SECRET"`), so errors never show it.
pub fn parse_params(args: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut params = Vec::new();
    for (index, arg) in args.iter().enumerate() {
        let items: Vec<&str> = if arg.trim_start().starts_with("-D") {
            arg.split_whitespace().collect()
        } else {
            vec![arg.as_str()]
        };
        let several = items.len() > 1;
        for (n, item) in items.into_iter().enumerate() {
            let item = item.strip_prefix("-D").unwrap_or(item);
            let which = if several {
                format!("-p argument {} (item {} of its -D list)", index + 1, n + 1)
            } else {
                format!("-p argument {}", index + 1)
            };
            let (name, value) = item.split_once('=').ok_or_else(|| {
                format!(
                    "{which} is not NAME=VALUE: it has no \"=\" (its text is not shown: it may hold a secret)"
                )
            })?;
            if !is_name(name) {
                return Err(format!(
                    "{which} is not NAME=VALUE: the text before \"=\" is not a variable name \
                     (letters, digits, _, . and -, starting with a letter or _; not shown: it may hold a secret)"
                ));
            }
            params.push((name.to_owned(), value.to_owned()));
        }
    }
    Ok(params)
}

/// What kind of JSON value `v` is (`"a number"`, `"an array"`…), for errors that must
/// not show the value itself (it may be a secret).
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Looks up `key` in `map` ignoring ASCII case and surrounding spaces.
pub fn get_key<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The job's `setting.timeZone` in a job document (`job.setting`, `configuration.setting`
/// or a top-level `setting`), `None` when absent or empty.
pub fn setting_time_zone(doc: &Value, source_name: &str) -> Result<Option<String>, JobFileError> {
    let Value::Object(top) = doc else {
        return Ok(None);
    };
    let holder = ["job", "configuration"]
        .iter()
        .find_map(|k| get_key(top, k).and_then(Value::as_object))
        .unwrap_or(top);
    let zone = holder
        .get("setting")
        .or_else(|| get_key(holder, "setting"))
        .and_then(Value::as_object)
        .and_then(|s| get_key(s, "timeZone"));
    match zone {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(other) => Err(JobFileError::Shape {
            source_name: source_name.to_owned(),
            message: format!("setting.timeZone = {other} must be a time zone name"),
        }),
    }
}

/// The zone of a standalone job, as the engine decides it: `flag` (`--time-zone`), else
/// the job file's `setting.timeZone`, else `TZ`, else the machine's zone. Checked.
pub fn job_time_zone(flag: &str, doc: &Value, source_name: &str) -> Result<String, String> {
    let (name, from) = if !flag.trim().is_empty() {
        (flag.trim().to_owned(), "--time-zone")
    } else if let Some(setting) = setting_time_zone(doc, source_name).map_err(|e| e.to_string())? {
        (setting, "setting.timeZone")
    } else {
        (
            crate::timefmt::machine_zone_name()?,
            "the machine's zone (TZ)",
        )
    };
    crate::timefmt::Zone::parse(&name).map_err(|e| format!("{source_name}: {from}: {e}"))?;
    Ok(name)
}

/// The plugin's own parameter object in a job document (or the document itself when it
/// is a bare parameter object).
pub fn plugin_parameter(doc: &Value, role: Role, source_name: &str) -> Result<Value, JobFileError> {
    let shape = |message: String| JobFileError::Shape {
        source_name: source_name.to_owned(),
        message,
    };
    let Value::Object(top) = doc else {
        return Err(shape(
            "a job file or parameter must be a JSON object".into(),
        ));
    };
    let side = role.name();
    let section = if let Some(job) = get_key(top, "job") {
        let content = job
            .as_object()
            .and_then(|j| get_key(j, "content"))
            .and_then(Value::as_array)
            .ok_or_else(|| shape("job.content must be an array".into()))?;
        let first = content
            .first()
            .and_then(Value::as_object)
            .ok_or_else(|| shape("job.content is empty".into()))?;
        get_key(first, side).ok_or_else(|| shape(format!("job.content[0] has no {side}")))?
    } else if let Some(configuration) = get_key(top, "configuration") {
        configuration
            .as_object()
            .and_then(|c| get_key(c, side))
            .ok_or_else(|| shape(format!("configuration has no {side}")))?
    } else if let Some(steps) = get_key(top, "steps") {
        steps
            .as_array()
            .and_then(|steps| {
                steps.iter().find(|s| {
                    s.as_object()
                        .and_then(|s| get_key(s, "category"))
                        .and_then(Value::as_str)
                        .is_some_and(|c| c.eq_ignore_ascii_case(side))
                })
            })
            .ok_or_else(|| shape(format!("no step with category {side:?}")))?
    } else {
        return Ok(doc.clone());
    };
    section
        .as_object()
        .and_then(|s| get_key(s, "parameter"))
        .filter(|p| p.is_object())
        .cloned()
        .ok_or_else(|| shape(format!("the {side} section has no parameter object")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn comments_and_trailing_commas() {
        let text = r#"{
            "a": "x // not a comment # nor this", // comment
            "b": [1, 2,], # another
            /* block */ "c": {"d": 1,},
        }"#;
        let v = parse_lenient(text, "job.json").unwrap();
        assert_eq!(
            v,
            json!({"a": "x // not a comment # nor this", "b": [1, 2], "c": {"d": 1}})
        );
    }

    #[test]
    fn syntax_errors_point_at_the_original_line() {
        let err = parse_lenient("{\n  // c\n  \"a\": nope\n}", "job.json").unwrap_err();
        match err {
            JobFileError::Syntax { line, .. } => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn params_in_both_forms() {
        let p = parse_params(&["a=1".into(), "-Db=2 -Dc=x=y".into()]).unwrap();
        assert_eq!(
            p,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "2".into()),
                ("c".into(), "x=y".into())
            ]
        );
        for bad in ["sk:SECRET", "-Da=1 -Dsk:SECRET", "s k=SECRET"] {
            let err = parse_params(&["ok=1".into(), bad.into()]).unwrap_err();
            assert!(err.starts_with("-p argument 2"), "{err}");
            assert!(!err.contains("SECRET"), "a malformed -p is echoed: {err}");
        }
    }

    #[test]
    fn sections_in_every_job_shape() {
        let datax = json!({"job": {"content": [{"reader": {"name": "r", "parameter": {"x": 1}}, "writer": {"parameter": {"y": 2}}}]}});
        assert_eq!(
            plugin_parameter(&datax, Role::Reader, "j").unwrap(),
            json!({"x": 1})
        );
        assert_eq!(
            plugin_parameter(&datax, Role::Writer, "j").unwrap(),
            json!({"y": 2})
        );
        let di = json!({"type": "job", "Configuration ": {"reader": {"plugin": "otsstream", "parameter": {"x": 1}}}});
        assert_eq!(
            plugin_parameter(&di, Role::Reader, "j").unwrap(),
            json!({"x": 1})
        );
        let steps = json!({"steps": [{"category": "reader", "parameter": {"x": 3}}, {"category": "writer", "parameter": {"y": 4}}]});
        assert_eq!(
            plugin_parameter(&steps, Role::Writer, "j").unwrap(),
            json!({"y": 4})
        );
        let bare = json!({"sliceRecordCount": 3});
        assert_eq!(plugin_parameter(&bare, Role::Reader, "j").unwrap(), bare);
        assert!(plugin_parameter(&json!({"job": {"content": []}}), Role::Reader, "j").is_err());
    }

    #[test]
    fn setting_time_zone_in_every_job_shape() {
        let tz = |v: Value| setting_time_zone(&v, "j").unwrap();
        let zone = json!({"timeZone": "Asia/Shanghai"});
        assert_eq!(
            tz(json!({"job": {"setting": zone, "content": []}})).as_deref(),
            Some("Asia/Shanghai")
        );
        assert_eq!(
            tz(json!({"configuration": {"setting": zone}})).as_deref(),
            Some("Asia/Shanghai")
        );
        assert_eq!(
            tz(json!({"steps": [], "setting": zone})).as_deref(),
            Some("Asia/Shanghai")
        );
        assert_eq!(tz(json!({"job": {"setting": {"speed": {}}}})), None);
        assert_eq!(tz(json!({"endpoint": "x", "timeZone": "UTC"})), None);
        assert!(setting_time_zone(&json!({"job": {"setting": {"timeZone": 8}}}), "j").is_err());
    }

    #[test]
    fn job_time_zone_prefers_the_flag_then_the_setting() {
        let doc = json!({"job": {"setting": {"timeZone": "Asia/Shanghai"}, "content": []}});
        assert_eq!(job_time_zone("", &doc, "j").unwrap(), "Asia/Shanghai");
        assert_eq!(job_time_zone("UTC", &doc, "j").unwrap(), "UTC");
        let bad = json!({"job": {"setting": {"timeZone": "Mars/Olympus"}}});
        let e = job_time_zone("", &bad, "j.json").unwrap_err();
        assert!(
            e.contains("j.json: setting.timeZone") && e.contains("Mars/Olympus"),
            "{e}"
        );
    }
}
