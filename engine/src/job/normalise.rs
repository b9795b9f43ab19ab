//! The shape of a job document: which format it is, its keys normalised, and its
//! reader, writer and setting sections.
//!
//! Keys that differ from a known key only by case or surrounding spaces (`"Setting "`,
//! `"Configuration "`) are renamed, with one warning each. Keys the engine does not know
//! are warned about and ignored. Plugin parameters are the plugins' business and are not
//! looked into.

use serde_json::{Map, Value as Json};

use crate::error::EngineError;

/// The three job formats the engine reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobFormat {
    /// `{"job": {"setting", "content": [{"reader", "writer"}]}}`
    DataX,
    /// `{"type": "job", "configuration": {"reader", "writer", "setting"}}`
    Configuration,
    /// `{"type": "job", "steps": [{"stepType", "category", "parameter"}], "setting"}`
    Steps,
}

impl JobFormat {
    pub fn name(self) -> &'static str {
        match self {
            JobFormat::DataX => "DataX",
            JobFormat::Configuration => "Data Integration script (configuration)",
            JobFormat::Steps => "Data Integration script (steps)",
        }
    }
}

/// A plugin section: its name as written and its parameter object.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    pub name: String,
    pub parameter: Json,
}

/// A job document taken apart.
#[derive(Clone, Debug)]
pub struct JobDocument {
    pub format: JobFormat,
    pub reader: Section,
    pub writer: Section,
    /// The `setting` object (normalised), empty when absent.
    pub setting: Map<String, Json>,
    pub warnings: Vec<String>,
}

const SETTING_KEYS: &[&str] = &[
    "speed",
    "errorLimit",
    "timeZone",
    "dryRun",
    "restore",
    "postTimeoutSeconds",
    // Follow mode (`run --follow`): checked by crate::follow::settings.
    "follow",
];
const SPEED_KEYS: &[&str] = &[
    "channel",
    "concurrent",
    "byte",
    "mbps",
    "record",
    "throttle",
];
const ERROR_LIMIT_KEYS: &[&str] = &["record", "percentage"];
/// Known keys the engine reads nothing from (warned about once as ignored).
const IGNORED: &[&str] = &[
    "core",
    "common",
    "transformer",
    "order",
    "preHandler",
    "postHandler",
    "dryRun",
    "restore",
    "name",
];

struct Normaliser<'a> {
    source_name: &'a str,
    warnings: Vec<String>,
}

impl Normaliser<'_> {
    /// Renames near-miss keys of `map` to the `known` spelling and warns about
    /// unknown ones.
    fn keys(
        &mut self,
        map: &mut Map<String, Json>,
        known: &[&str],
        path: &str,
    ) -> Result<(), EngineError> {
        let original: Vec<String> = map.keys().cloned().collect();
        for key in original {
            if known.contains(&key.as_str()) {
                continue;
            }
            let canonical = known.iter().find(|k| key.trim().eq_ignore_ascii_case(k));
            match canonical {
                Some(canonical) => {
                    if map.contains_key(*canonical) {
                        return Err(EngineError::config(format!(
                            "{}: {path} has both {key:?} and {canonical:?}",
                            self.source_name
                        )));
                    }
                    if let Some(value) = map.remove(&key) {
                        map.insert((*canonical).to_owned(), value);
                    }
                    self.warnings.push(format!(
                        "{}: key {key:?} in {path} normalised to {canonical:?}",
                        self.source_name
                    ));
                }
                None => self.warnings.push(format!(
                    "{}: unknown key {key:?} in {path} is ignored",
                    self.source_name
                )),
            }
        }
        for key in IGNORED {
            if known.contains(key) && map.contains_key(*key) && !matches!(*key, "name") {
                self.warnings.push(format!(
                    "{}: {path}.{key} is not supported by this engine and is ignored",
                    self.source_name
                ));
            }
        }
        Ok(())
    }

    fn object<'m>(
        &self,
        value: &'m mut Json,
        path: &str,
    ) -> Result<&'m mut Map<String, Json>, EngineError> {
        value.as_object_mut().ok_or_else(|| {
            EngineError::config(format!("{}: {path} must be an object", self.source_name))
        })
    }

    fn setting(
        &mut self,
        setting: &mut Json,
        path: &str,
    ) -> Result<Map<String, Json>, EngineError> {
        let map = self.object(setting, path)?;
        self.keys(map, SETTING_KEYS, path)?;
        if let Some(speed) = map.get_mut("speed") {
            let speed_path = format!("{path}.speed");
            let speed = self.object(speed, &speed_path)?;
            self.keys(speed, SPEED_KEYS, &speed_path)?;
        }
        if let Some(limit) = map.get_mut("errorLimit") {
            let limit_path = format!("{path}.errorLimit");
            let limit = self.object(limit, &limit_path)?;
            self.keys(limit, ERROR_LIMIT_KEYS, &limit_path)?;
        }
        Ok(map.clone())
    }

    /// A `{name|plugin|stepType, parameter}` section.
    fn section(
        &mut self,
        value: &mut Json,
        path: &str,
        name_keys: &[&str],
        known: &[&str],
    ) -> Result<Section, EngineError> {
        let map = self.object(value, path)?;
        self.keys(map, known, path)?;
        let name = name_keys
            .iter()
            .find_map(|k| map.get(*k).and_then(Json::as_str))
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                EngineError::config(format!(
                    "{}: {path} names no plugin (expected {})",
                    self.source_name,
                    name_keys.join(" or ")
                ))
            })?
            .to_owned();
        let parameter = match map.get("parameter") {
            Some(p @ Json::Object(_)) => p.clone(),
            None | Some(Json::Null) => Json::Object(Map::new()),
            Some(_) => {
                return Err(EngineError::config(format!(
                    "{}: {path}.parameter must be an object",
                    self.source_name
                )))
            }
        };
        Ok(Section { name, parameter })
    }
}

impl JobDocument {
    /// The document in DataX form (`{"job": {"setting", "content": [{"reader",
    /// "writer"}]}}`) with its keys as normalised: reading it back gives the same
    /// sections and setting, whatever form the original was in.
    pub fn to_datax_json(&self) -> Json {
        let section = |s: &Section| serde_json::json!({"name": s.name, "parameter": s.parameter});
        serde_json::json!({"job": {
            "setting": Json::Object(self.setting.clone()),
            "content": [{"reader": section(&self.reader), "writer": section(&self.writer)}],
        }})
    }
}

/// Takes a parsed job document apart.
pub fn normalise(mut doc: Json, source_name: &str) -> Result<JobDocument, EngineError> {
    let mut n = Normaliser {
        source_name,
        warnings: Vec::new(),
    };
    let top = n.object(&mut doc, "the job file")?;
    let format = if protocol::jobfile::get_key(top, "job").is_some() {
        JobFormat::DataX
    } else if protocol::jobfile::get_key(top, "configuration").is_some() {
        JobFormat::Configuration
    } else if protocol::jobfile::get_key(top, "steps").is_some() {
        JobFormat::Steps
    } else {
        return Err(EngineError::config(format!(
            "{source_name}: not a job file: expected a \"job\" (DataX), \"configuration\" or \"steps\" (Data Integration) key"
        )));
    };
    let (reader, writer, setting) = match format {
        JobFormat::DataX => {
            n.keys(top, &["job", "core", "common"], "the top level")?;
            let job = top
                .get_mut("job")
                .ok_or_else(|| EngineError::config("no job"))?;
            let job = n.object(job, "job")?;
            n.keys(
                job,
                &["setting", "content", "preHandler", "postHandler"],
                "job",
            )?;
            let setting = match job.get_mut("setting") {
                Some(s) => n.setting(s, "job.setting")?,
                None => Map::new(),
            };
            let content = job
                .get_mut("content")
                .and_then(Json::as_array_mut)
                .ok_or_else(|| {
                    EngineError::config(format!("{source_name}: job.content must be an array"))
                })?;
            if content.len() > 1 {
                n.warnings.push(format!(
                    "{source_name}: job.content has {} entries; only the first is run (as in DataX)",
                    content.len()
                ));
            }
            let first = content.first_mut().ok_or_else(|| {
                EngineError::config(format!("{source_name}: job.content is empty"))
            })?;
            let first = n.object(first, "job.content[0]")?;
            n.keys(
                first,
                &["reader", "writer", "transformer"],
                "job.content[0]",
            )?;
            let mut take = |side: &str| -> Result<Section, EngineError> {
                let path = format!("job.content[0].{side}");
                let v = first.get_mut(side).ok_or_else(|| {
                    EngineError::config(format!("{source_name}: {path} is missing"))
                })?;
                n.section(v, &path, &["name"], &["name", "parameter"])
            };
            let reader = take("reader")?;
            let writer = take("writer")?;
            (reader, writer, setting)
        }
        JobFormat::Configuration => {
            n.keys(top, &["type", "version", "configuration"], "the top level")?;
            let conf = top
                .get_mut("configuration")
                .ok_or_else(|| EngineError::config("no configuration"))?;
            let conf = n.object(conf, "configuration")?;
            n.keys(conf, &["setting", "reader", "writer"], "configuration")?;
            let setting = match conf.get_mut("setting") {
                Some(s) => n.setting(s, "configuration.setting")?,
                None => Map::new(),
            };
            let mut take = |side: &str| -> Result<Section, EngineError> {
                let path = format!("configuration.{side}");
                let v = conf.get_mut(side).ok_or_else(|| {
                    EngineError::config(format!("{source_name}: {path} is missing"))
                })?;
                n.section(
                    v,
                    &path,
                    &["plugin", "name"],
                    &["plugin", "name", "parameter"],
                )
            };
            let reader = take("reader")?;
            let writer = take("writer")?;
            (reader, writer, setting)
        }
        JobFormat::Steps => {
            n.keys(
                top,
                &["type", "version", "steps", "setting", "order", "extend"],
                "the top level",
            )?;
            let setting = match top.get_mut("setting") {
                Some(s) => n.setting(s, "setting")?,
                None => Map::new(),
            };
            let steps = top
                .get_mut("steps")
                .and_then(Json::as_array_mut)
                .ok_or_else(|| {
                    EngineError::config(format!("{source_name}: steps must be an array"))
                })?;
            let mut reader = None;
            let mut writer = None;
            for (i, step) in steps.iter_mut().enumerate() {
                let path = format!("steps[{i}]");
                let map = n.object(step, &path)?;
                let category = protocol::jobfile::get_key(map, "category")
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                let section = n.section(
                    step,
                    &path,
                    &["stepType"],
                    &["stepType", "category", "name", "parameter"],
                )?;
                match category.as_str() {
                    "reader" if reader.is_none() => reader = Some(section),
                    "writer" if writer.is_none() => writer = Some(section),
                    "reader" | "writer" => {
                        return Err(EngineError::config(format!(
                            "{source_name}: more than one {category} step"
                        )))
                    }
                    other => {
                        return Err(EngineError::config(format!(
                            "{source_name}: {path}.category is {other:?}; expected \"reader\" or \"writer\""
                        )))
                    }
                }
            }
            let missing = |side: &str| {
                EngineError::config(format!("{source_name}: no step with category {side:?}"))
            };
            (
                reader.ok_or_else(|| missing("reader"))?,
                writer.ok_or_else(|| missing("writer"))?,
                setting,
            )
        }
    };
    Ok(JobDocument {
        format,
        reader,
        writer,
        setting,
        warnings: n.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn datax_shape() {
        let doc = json!({"job": {"setting": {"speed": {"channel": 2}}, "content": [{"reader": {"name": "streamreader", "parameter": {"a": 1}}, "writer": {"name": "streamwriter", "parameter": {}}}]}});
        let j = normalise(doc, "j.json").unwrap();
        assert_eq!(j.format, JobFormat::DataX);
        assert_eq!(j.reader.name, "streamreader");
        assert_eq!(j.reader.parameter, json!({"a": 1}));
        assert_eq!(j.setting["speed"]["channel"], 2);
        assert!(j.warnings.is_empty(), "{:?}", j.warnings);
    }

    #[test]
    fn near_miss_keys_are_normalised_with_one_warning_each() {
        let doc = json!({"type": "job", "Configuration ": {"reader": {"plugin": "otsstream", "parameter": {}}, "writer": {"plugin": "odps", "parameter": {}}, "Setting ": {"Speed ": {"mbps": 7, "concurrent": 7}}}});
        let j = normalise(doc, "j.json").unwrap();
        assert_eq!(j.format, JobFormat::Configuration);
        assert_eq!(j.setting["speed"]["concurrent"], 7);
        assert_eq!(j.warnings.len(), 3, "{:?}", j.warnings);
        for key in ["\"Configuration \"", "\"Setting \"", "\"Speed \""] {
            assert!(
                j.warnings.iter().any(|w| w.contains(key)),
                "{key}: {:?}",
                j.warnings
            );
        }
    }

    #[test]
    fn unknown_keys_are_warned_about() {
        let doc = json!({"type": "job", "steps": [{"stepType": "stream", "category": "reader", "parameter": {}}, {"stepType": "stream", "category": "writer"}], "setting": {"speed": {"concurent": 2}}, "bogus": 1});
        let j = normalise(doc, "j.json").unwrap();
        assert_eq!(j.format, JobFormat::Steps);
        assert_eq!(j.writer.parameter, json!({}));
        assert!(j.warnings.iter().any(|w| w.contains("\"concurent\"")));
        assert!(j.warnings.iter().any(|w| w.contains("\"bogus\"")));
    }

    #[test]
    fn broken_shapes_are_config_errors() {
        assert!(normalise(json!({"x": 1}), "j").is_err());
        assert!(normalise(json!({"job": {"content": []}}), "j").is_err());
        let no_name =
            json!({"job": {"content": [{"reader": {"parameter": {}}, "writer": {"name": "w"}}]}});
        let err = normalise(no_name, "j").unwrap_err();
        assert!(err.to_string().contains("job.content[0].reader"), "{err}");
    }
}
