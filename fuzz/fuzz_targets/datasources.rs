//! Fuzzes the data-source file (`--datasources`): its lenient parse and the merge of a
//! named source into a plugin parameter, with `${env:VAR}` read from the environment
//! (`engine::job::datasources`).
//!
//! Invariants beyond "no panic": after a merge the parameter has no `datasource` key,
//! keeps every key it set itself unchanged, and holds no `${env:` of a variable that is
//! set; an error is a configuration error.
#![no_main]

use engine::job::datasources::DataSources;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

const SET: &str = "STREAMPORT_FUZZ_SET";

/// Whether a string value (not a key: keys are not expanded) still holds `${env:SET}`.
fn holds_set_variable(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains(&format!("${{env:{SET}}}")),
        Value::Array(items) => items.iter().any(holds_set_variable),
        Value::Object(map) => map.values().any(holds_set_variable),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if std::env::var(SET).is_err() {
        std::env::set_var(SET, "from-env");
    }
    let Ok(sources) = DataSources::parse(text, "ds.json") else {
        return;
    };
    let doc: Value = protocol::jobfile::parse_lenient(text, "ds.json").expect("parsed once");
    let names: Vec<String> = doc
        .as_object()
        .map(|m| m.keys().take(8).cloned().collect())
        .unwrap_or_default();
    for name in names.iter().map(String::as_str).chain(["", "absent"]) {
        let mut parameter = json!({"Datasource ": name, "table": "t", "endpoint": "http://own"});
        match sources.resolve(&mut parameter, "reader") {
            Ok(()) => {
                let map = parameter.as_object().expect("still an object");
                assert!(!map.contains_key("Datasource "));
                assert_eq!(map["table"], "t");
                assert_eq!(map["endpoint"], "http://own");
                assert!(!holds_set_variable(&parameter), "{parameter}");
            }
            Err(e) => {
                assert_eq!(e.exit_code(), 2);
                assert!(!e.to_string().is_empty());
            }
        }
    }
});
