//! Job files: reading, variables, normalisation, data sources, settings.
//!
//! The steps, in order: strip comments and trailing commas; substitute `${name}` /
//! `$name` and evaluate `$[...]` in one pass that reads the text as JSON, so a value
//! cannot change the document's structure ([`variables`],
//! [`protocol::placeholders`]); parse; take the document apart and
//! normalise its keys ([`normalise`]); merge named data sources into the plugin
//! parameters ([`datasources`]); check the settings ([`settings`]).

pub mod datasources;
pub mod normalise;
pub mod settings;
pub mod variables;
pub mod window_check;

use std::path::{Path, PathBuf};

use chrono::DateTime;
use chrono_tz::Tz;
use md5::{Digest, Md5};
use serde_json::{Map, Value as Json};

use crate::error::EngineError;
pub use normalise::{JobFormat, Section};
pub use settings::Settings;

/// What the command line adds to a job file.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `-p` arguments as given (`name=value` or `-Dname=value -Dother=v`).
    pub params: Vec<String>,
    /// `--schedule-time`; now when absent.
    pub schedule_time: Option<String>,
    /// `--datasources`.
    pub datasources: Option<PathBuf>,
}

/// A job, ready to run.
#[derive(Clone, Debug)]
pub struct Job {
    pub source_name: String,
    pub format: JobFormat,
    /// The reader section: its name as written and its resolved parameter.
    pub reader: Section,
    pub writer: Section,
    pub settings: Settings,
    /// The `setting` object as written (keys normalised), for `check --offline`.
    pub setting: Map<String, Json>,
    pub time_zone: Tz,
    pub schedule_time: DateTime<Tz>,
    /// One line per normalised or unknown key, and other remarks.
    pub warnings: Vec<String>,
    /// Hex MD5 of the resolved reader and writer sections (32 hex characters).
    pub fingerprint: String,
}

/// Reads and resolves a job file.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Job, EngineError> {
    let source_name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| EngineError::config(format!("job file {source_name}: {e}")))?;
    load_text(&text, &source_name, options)
}

/// Resolves a job from its text, and registers its secrets with the log redactor.
pub fn load_text(text: &str, source_name: &str, options: &LoadOptions) -> Result<Job, EngineError> {
    let sources = match &options.datasources {
        Some(path) => datasources::DataSources::load(path)?,
        None => datasources::DataSources::default(),
    };
    let job = resolve_text(text, source_name, options, &sources)?;
    let mut secrets = Vec::new();
    crate::secrets::collect_secrets(&job.reader.parameter, &mut secrets);
    crate::secrets::collect_secrets(&job.writer.parameter, &mut secrets);
    crate::secrets::global().add(secrets);
    Ok(job)
}

/// [`load_text`] with the data sources given and nothing registered process-wide
/// (`options.datasources` is not read): the whole of reading a job, for the fuzz
/// targets (`fuzz/`), which must not grow the redactor with every input.
#[doc(hidden)]
pub fn resolve_text(
    text: &str,
    source_name: &str,
    options: &LoadOptions,
    sources: &datasources::DataSources,
) -> Result<Job, EngineError> {
    let stripped = protocol::jobfile::strip_comments_and_trailing_commas(text);
    let time_zone = settings::resolve_time_zone(find_time_zone(&stripped).as_deref())?;
    let schedule_time = match &options.schedule_time {
        Some(t) => variables::parse_schedule_time(t, time_zone)?,
        None => chrono::Utc::now().with_timezone(&time_zone),
    };
    let params = protocol::jobfile::parse_params(&options.params).map_err(EngineError::config)?;
    let vars = variables::Variables::new(params, schedule_time)?;
    let resolver = protocol::jobfile::Resolver {
        variable: &|name| vars.lookup(name),
        expression: Some(&|expr| vars.evaluate(expr)),
    };
    let substituted = protocol::jobfile::substitute(&stripped, source_name, &resolver)
        .map_err(|e| EngineError::config(e.to_string()))?;
    let doc = protocol::jobfile::parse_lenient(&substituted, source_name)
        .map_err(|e| EngineError::config(e.to_string()))?;
    let document = normalise::normalise(doc, source_name)?;
    let settings = Settings::parse(&document.setting, source_name)?;
    let mut reader = document.reader;
    let mut writer = document.writer;
    sources.resolve(&mut reader.parameter, "reader")?;
    sources.resolve(&mut writer.parameter, "writer")?;
    let fingerprint = fingerprint(&reader, &writer);
    Ok(Job {
        source_name: source_name.to_owned(),
        format: document.format,
        reader,
        writer,
        settings,
        setting: document.setting,
        time_zone,
        schedule_time,
        warnings: document.warnings,
        fingerprint,
    })
}

/// The `timeZone` setting, found in the text before variables are substituted (they
/// may depend on it): the `timeZone` key of the first `setting` object, not a plugin
/// parameter's own `timeZone` (which must not replace `TZ` as the job's zone).
fn find_time_zone(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("\"setting") {
        let start = from + pos + 1;
        from = start;
        let key_end = start + lower[start..].find('"')?;
        if lower[start..key_end].trim() != "setting" {
            continue;
        }
        let rest = text[key_end + 1..].trim_start();
        match rest.strip_prefix(':').map(str::trim_start) {
            Some(object) if object.starts_with('{') => return time_zone_in_object(object),
            _ => continue,
        }
    }
    None
}

/// The string value of the `timeZone` key directly in the object `text` starts with.
fn time_zone_in_object(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return None;
                }
            }
            b'"' => {
                let end = string_end(bytes, i)?;
                let after = text[end + 1..].trim_start();
                if depth == 1 && text[i + 1..end].trim().eq_ignore_ascii_case("timezone") {
                    let value = after.strip_prefix(':')?.trim_start().strip_prefix('"')?;
                    let value = &value[..value.find('"')?];
                    return Some(value.trim().to_owned()).filter(|v| !v.is_empty());
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the quote that closes the string opening at `open`.
fn string_end(bytes: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn canonical(value: &Json) -> Json {
    match value {
        Json::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&map[k]));
            }
            Json::Object(out)
        }
        Json::Array(items) => Json::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Hex MD5 of the canonical JSON (keys sorted) of both resolved sections.
pub fn fingerprint(reader: &Section, writer: &Section) -> String {
    let doc = serde_json::json!({
        "reader": {"name": reader.name, "parameter": canonical(&reader.parameter)},
        "writer": {"name": writer.name, "parameter": canonical(&writer.parameter)},
    });
    hex::encode(Md5::digest(doc.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = r#"{
      # a comment mentioning ${not_a_variable}
      "job": {
        "setting": {"speed": {"channel": ${n}}, "timeZone": "Asia/Shanghai",},
        "content": [{
          "reader": {"name": "streamreader", "parameter": {"day": "${bdp.system.bizdate}", "at": "$[yyyymmddhh24miss-10/24/60]", "x": "$start"}},
          "writer": {"name": "streamwriter", "parameter": {"print": false}},
        }]
      }
    }"#;

    fn options(params: &[&str]) -> LoadOptions {
        LoadOptions {
            params: params.iter().map(|s| s.to_string()).collect(),
            schedule_time: Some("2024-03-01 00:05:00".into()),
            datasources: None,
        }
    }

    #[test]
    fn loads_with_variables_in_the_job_zone() {
        let job = load_text(JOB, "job.json", &options(&["n=3", "-Dstart=s1"])).unwrap();
        assert_eq!(job.settings.channel, 3);
        assert_eq!(job.time_zone.name(), "Asia/Shanghai");
        assert_eq!(job.reader.parameter["day"], "20240229");
        assert_eq!(job.reader.parameter["at"], "20240229235500");
        assert_eq!(job.reader.parameter["x"], "s1");
        assert_eq!(job.fingerprint.len(), 32);
    }

    #[test]
    fn unset_variable_is_an_error_naming_it() {
        let err = load_text(JOB, "job.json", &options(&["n=3"])).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("${start}"), "{err}");
    }

    #[test]
    fn same_window_same_fingerprint() {
        let a = load_text(JOB, "a.json", &options(&["n=3", "start=1"])).unwrap();
        let b = load_text(JOB, "b.json", &options(&["start=1", "n=3"])).unwrap();
        let c = load_text(JOB, "a.json", &options(&["n=3", "start=2"])).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
    }

    #[test]
    fn time_zone_is_found_before_substitution() {
        assert_eq!(
            find_time_zone(r#"{"setting": {"timeZone ": "UTC"}}"#).as_deref(),
            Some("UTC")
        );
        assert_eq!(find_time_zone(r#"{"a": 1}"#), None);
        // A plugin parameter's own timeZone is not the job's zone.
        let writer_zone = r#"{"job": {"setting": {"speed": {"channel": ${n}}},
            "content": [{"writer": {"parameter": {"timeZone": "GMT+8"}}}]}}"#;
        assert_eq!(find_time_zone(writer_zone), None);
        let both = r#"{"job": {"content": [{"writer": {"parameter": {"timeZone": "GMT+8",
            "note": "a } or \" in a string"}}}], "setting": {"x": {"timeZone": "UTC"},
            "timeZone": "Asia/Shanghai"}}}"#;
        assert_eq!(find_time_zone(both).as_deref(), Some("Asia/Shanghai"));
    }
}
