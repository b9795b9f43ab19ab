//! Cell values as JSON (the table dump control route) and as CSV text (the
//! `?result` of a query instance).
//!
//! JSON forms: integers (BIGINT, INT, SMALLINT, TINYINT) as numbers; DATETIME as
//! epoch milliseconds; DATE as epoch days; INTERVAL_YEAR_MONTH as months; BOOLEAN
//! as `true`/`false`; DOUBLE/FLOAT as numbers (non-finite values as the strings
//! `"NaN"`, `"inf"`, `"-inf"`); STRING, VARCHAR, CHAR, JSON and DECIMAL as strings
//! (DECIMAL keeps its text); BINARY as lower-case hex; TIMESTAMP, TIMESTAMP_NTZ and
//! INTERVAL_DAY_TIME as `{"seconds", "nanos"}`; ARRAY as an array; MAP as an array
//! of `[key, value]` pairs; STRUCT as an object by field name; NULL as `null`.

use serde_json::{json, Value as Json};

use super::state::Column;
use super::types::{OdpsType, Row, Value};

fn float_json(f: f64) -> Json {
    if f.is_nan() {
        json!("NaN")
    } else if f.is_infinite() {
        json!(if f > 0.0 { "inf" } else { "-inf" })
    } else {
        json!(f)
    }
}

/// One cell as JSON.
pub fn value_json(value: Option<&Value>, ty: &OdpsType) -> Json {
    let Some(value) = value else {
        return Json::Null;
    };
    match (value, ty) {
        (Value::Int(i), _) => json!(i),
        (Value::Bool(b), _) => json!(b),
        (Value::Double(d), _) => float_json(*d),
        (Value::Float(f), _) => float_json(f64::from(*f)),
        (Value::Bytes(b), OdpsType::Binary) => json!(hex::encode(b)),
        (Value::Bytes(b), _) => json!(String::from_utf8_lossy(b)),
        (Value::Timestamp { seconds, nanos }, _) => json!({"seconds": seconds, "nanos": nanos}),
        (Value::Array(items), OdpsType::Array(elem)) => {
            Json::Array(items.iter().map(|v| value_json(v.as_ref(), elem)).collect())
        }
        (Value::Map(map), OdpsType::Map(kt, vt)) => Json::Array(
            map.keys
                .iter()
                .zip(&map.values)
                .map(|(k, v)| json!([value_json(k.as_ref(), kt), value_json(v.as_ref(), vt)]))
                .collect(),
        ),
        (Value::Struct(fields), OdpsType::Struct(types)) => Json::Object(
            types
                .iter()
                .zip(fields)
                .map(|((name, t), v)| (name.clone(), value_json(v.as_ref(), t)))
                .collect(),
        ),
        // A nested value stored under a mismatching type cannot happen (blocks are
        // decoded against the schema); render something rather than nothing.
        (other, _) => json!(format!("{other:?}")),
    }
}

/// A row as a JSON array, one element per column.
pub fn row_json(row: &Row, columns: &[Column]) -> Json {
    Json::Array(
        columns
            .iter()
            .enumerate()
            .map(|(i, c)| value_json(row.get(i).and_then(Option::as_ref), &c.ty))
            .collect(),
    )
}

fn csv_field(value: Option<&Value>, ty: &OdpsType) -> String {
    let text = match value_json(value, ty) {
        Json::Null => return "\\N".to_owned(),
        Json::String(s) => s,
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// A result set as CSV: a header line with the column names, then one line per row.
pub fn result_csv(columns: &[Column], rows: &[Row]) -> String {
    let mut out = columns
        .iter()
        .map(|c| c.name.clone())
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for row in rows {
        let fields: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| csv_field(row.get(i).and_then(Option::as_ref), &c.ty))
            .collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_forms_by_type() {
        let t = |s: &str| OdpsType::parse(s).unwrap();
        assert_eq!(
            value_json(
                Some(&Value::Bytes(bytes::Bytes::from(vec![0, 255]))),
                &t("binary")
            ),
            json!("00ff")
        );
        assert_eq!(
            value_json(
                Some(&Value::Bytes(bytes::Bytes::from_static(b"1.5"))),
                &t("decimal")
            ),
            json!("1.5")
        );
        assert_eq!(
            value_json(Some(&Value::Double(f64::NAN)), &t("double")),
            json!("NaN")
        );
        let map = Value::Map(Box::new(crate::odps::types::MapValue {
            keys: vec![Some(Value::Bytes(bytes::Bytes::from_static(b"k")))],
            values: vec![None],
        }));
        assert_eq!(
            value_json(Some(&map), &t("map<string,bigint>")),
            json!([["k", null]])
        );
        let st = Value::Struct(vec![Some(Value::Int(5)), None]);
        assert_eq!(
            value_json(Some(&st), &t("struct<a:bigint,b:string>")),
            json!({"a": 5, "b": null})
        );
    }

    #[test]
    fn csv_quotes_and_nulls() {
        let cols = vec![
            Column {
                name: "a".into(),
                ty: OdpsType::String,
                comment: String::new(),
            },
            Column {
                name: "b".into(),
                ty: OdpsType::Bigint,
                comment: String::new(),
            },
        ];
        let rows = vec![vec![
            Some(Value::Bytes(bytes::Bytes::from_static(b"x,\"y\""))),
            None,
        ]];
        assert_eq!(result_csv(&cols, &rows), "a,b\n\"x,\"\"y\"\"\",\\N\n");
    }
}
