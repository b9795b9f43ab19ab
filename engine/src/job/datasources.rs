//! Named data sources: `"datasource": "name"` in a plugin's parameter takes its
//! connection keys from a data-source file (`--datasources F`), a JSON object
//! `{"name": {"endpoint": …, "accessId": …, "accessKey": "${env:OTS_SECRET}"}}`.
//! `${env:VAR}` in a value is read from the environment. Keys the parameter sets itself
//! win over the data source's.

use std::path::Path;

use serde_json::{Map, Value as Json};

use crate::error::EngineError;

/// The data sources of a data-source file.
#[derive(Clone, Debug, Default)]
pub struct DataSources {
    sources: Map<String, Json>,
    origin: String,
}

impl DataSources {
    pub fn load(path: &Path) -> Result<Self, EngineError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| EngineError::config(format!("data-source file {origin}: {e}")))?;
        Self::parse(&text, &origin)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, EngineError> {
        let doc = protocol::jobfile::parse_lenient(text, origin)
            .map_err(|e| EngineError::config(e.to_string()))?;
        let Json::Object(sources) = doc else {
            return Err(EngineError::config(format!(
                "data-source file {origin}: expected an object of named data sources"
            )));
        };
        Ok(Self {
            sources,
            origin: origin.to_owned(),
        })
    }

    /// Merges the data source named in `parameter["datasource"]` into `parameter` and
    /// removes the `datasource` key. An empty name means none.
    pub fn resolve(&self, parameter: &mut Json, side: &str) -> Result<(), EngineError> {
        let Json::Object(map) = parameter else {
            return Ok(());
        };
        let Some(key) = map
            .keys()
            .find(|k| k.trim().eq_ignore_ascii_case("datasource"))
            .cloned()
        else {
            return Ok(());
        };
        let name = match map.remove(&key) {
            Some(Json::String(s)) => s.trim().to_owned(),
            Some(Json::Null) | None => String::new(),
            Some(other) => {
                return Err(EngineError::config(format!(
                    "{side}.parameter.datasource must be a name, not {other}"
                )))
            }
        };
        if name.is_empty() {
            return Ok(());
        }
        if self.origin.is_empty() {
            return Err(EngineError::config(format!(
                "{side}.parameter.datasource is {name:?} but no data-source file was given (use --datasources FILE)"
            )));
        }
        let source = self.sources.get(&name).ok_or_else(|| {
            let known: Vec<&str> = self.sources.keys().map(String::as_str).collect();
            EngineError::config(format!(
                "{side}.parameter.datasource {name:?} is not in {} (it has: {})",
                self.origin,
                known.join(", ")
            ))
        })?;
        let Json::Object(fields) = source else {
            return Err(EngineError::config(format!(
                "data source {name:?} in {} must be an object",
                self.origin
            )));
        };
        if let Some(k) = fields
            .keys()
            .find(|k| k.trim().eq_ignore_ascii_case("datasource"))
        {
            // A source naming another would land in the parameter as a second,
            // unresolved reference.
            return Err(EngineError::config(format!(
                "data source {name:?} in {} has a key {k:?}: a data source cannot name another",
                self.origin
            )));
        }
        for (k, v) in fields {
            if !map.contains_key(k) {
                let v = expand_env(v, &format!("data source {name:?} key {k:?}"))?;
                map.insert(k.clone(), v);
            }
        }
        Ok(())
    }
}

/// Replaces `${env:VAR}` in every string of `value`.
fn expand_env(value: &Json, what: &str) -> Result<Json, EngineError> {
    Ok(match value {
        Json::String(s) => Json::String(expand_env_str(s, what)?),
        Json::Array(items) => Json::Array(
            items
                .iter()
                .map(|v| expand_env(v, what))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), expand_env(v, what)?)))
                .collect::<Result<_, EngineError>>()?,
        ),
        other => other.clone(),
    })
}

fn expand_env_str(s: &str, what: &str) -> Result<String, EngineError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find("${env:") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 6..];
        let end = after
            .find('}')
            .ok_or_else(|| EngineError::config(format!("{what}: unterminated ${{env:")))?;
        let var = &after[..end];
        let value = std::env::var(var).map_err(|_| {
            EngineError::config(format!("{what}: environment variable {var} is not set"))
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_with_explicit_keys_winning_and_reads_env() {
        std::env::set_var("ENGINE_TEST_DS_SECRET", "from-env-secret");
        let ds = DataSources::parse(
            r#"{"ots": {"endpoint": "http://ds", "instanceName": "i1", "accessKey": "${env:ENGINE_TEST_DS_SECRET}"}}"#,
            "ds.json",
        )
        .unwrap();
        let mut p = json!({"datasource": "ots", "endpoint": "http://explicit", "table": "t"});
        ds.resolve(&mut p, "reader").unwrap();
        assert_eq!(
            p,
            json!({"endpoint": "http://explicit", "table": "t", "instanceName": "i1", "accessKey": "from-env-secret"})
        );
    }

    #[test]
    fn a_source_naming_another_is_refused() {
        // Found by the `datasources` fuzz target: the inner key was copied into the
        // parameter, which then still held a `datasource` reference.
        let ds = DataSources::parse(
            r#"{"a": {"k": "v", "Datasource ": "b"}, "b": {}}"#,
            "ds.json",
        )
        .unwrap();
        let mut p = serde_json::json!({"datasource": "a"});
        let e = ds.resolve(&mut p, "reader").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string()
                .contains("data source \"a\" in ds.json has a key \"Datasource \""),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_source_and_variable() {
        let ds = DataSources::parse(r#"{"a": {"k": "${env:ENGINE_TEST_UNSET_VAR}"}}"#, "ds.json")
            .unwrap();
        let err = ds
            .resolve(&mut json!({"datasource": "a"}), "reader")
            .unwrap_err();
        assert!(err.to_string().contains("ENGINE_TEST_UNSET_VAR"), "{err}");
        let err = ds
            .resolve(&mut json!({"datasource": "b"}), "writer")
            .unwrap_err();
        assert!(err.to_string().contains("\"b\""), "{err}");
        let none = DataSources::default();
        let mut empty = json!({"datasource": "", "x": 1});
        none.resolve(&mut empty, "reader").unwrap();
        assert_eq!(empty, json!({"x": 1}));
        assert!(none
            .resolve(&mut json!({"datasource": "x"}), "reader")
            .is_err());
    }
}
