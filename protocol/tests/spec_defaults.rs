//! `spec` prints each parameter's default as the JSON value it stands for: `10`, not
//! `"10"`; `"UTF-8"`, not `"\"UTF-8\""`.

use protocol::runtime::ParameterSpec;
use serde_json::json;

#[test]
fn defaults_are_json_values_not_json_text_in_a_string() {
    let specs = [
        ParameterSpec::new("n", "integer", false, Some("10"), ""),
        ParameterSpec::new("on", "boolean", false, Some("true"), ""),
        ParameterSpec::new("enc", "string", false, Some("\"UTF-8\""), ""),
        ParameterSpec::new("empty", "string", false, Some("\"\""), ""),
        ParameterSpec::new("cols", "array", false, Some("[\"*\"]"), ""),
        ParameterSpec::new("zone", "string", false, Some("the job's"), ""),
        ParameterSpec::new("req", "string", true, None, ""),
    ];
    let got: Vec<serde_json::Value> = specs
        .iter()
        .map(|s| serde_json::to_value(s).unwrap()["default"].clone())
        .collect();
    assert_eq!(
        got,
        vec![
            json!(10),
            json!(true),
            json!("UTF-8"),
            json!(""),
            json!(["*"]),
            json!("the job's"),
            json!(null)
        ]
    );
}
