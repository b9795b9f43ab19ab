//! Stream records → output rows, exactly as DataX's `MultiVerModeRecordSender` and
//! `SingleVerAndUpOnlyModeRecordSender` build them (spec `tablestore.md` §5.9).

use protocol::value::Value;

use crate::pb;
use crate::plainbuffer::{
    CellValue, Row, SequenceInfo, OP_DELETE_ALL_VERSION, OP_DELETE_ONE_VERSION,
};

/// A record that cannot be turned into rows.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConvertError(pub String);

/// The error for a NaN or infinite double (also the encoded path's).
pub(crate) fn not_finite(column: &str, d: f64) -> ConvertError {
    ConvertError(format!(
        "column {column:?} holds the double {}, which DataX cannot export (its DoubleColumn refuses NaN and infinities)",
        protocol::value::double_text(d)
    ))
}

/// The error for INF_MIN, INF_MAX or AUTO_INCREMENT (also the encoded path's).
pub(crate) fn not_in_a_record(column: &str, what: &dyn std::fmt::Debug) -> ConvertError {
    ConvertError(format!(
        "column {column:?} holds {what:?}, which a stream record cannot carry"
    ))
}

pub(crate) fn value(v: &CellValue, column: &str) -> Result<Value, ConvertError> {
    Ok(match v {
        CellValue::Integer(i) => Value::Long(*i),
        // As DataX's DoubleColumn (`new BigDecimal(String.valueOf(d))`): -0.0 becomes 0.0,
        // and NaN or ±Infinity cannot be held: DataX's task fails, and so does this one.
        CellValue::Double(d) if !d.is_finite() => return Err(not_finite(column, *d)),
        CellValue::Double(d) => Value::Double(*d + 0.0),
        CellValue::Boolean(b) => Value::Bool(*b),
        CellValue::String(s) => Value::String(s.clone()),
        CellValue::Binary(b) => Value::Bytes(b.clone()),
        other => return Err(not_in_a_record(column, other)),
    })
}

fn str_value(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// `%010d_%020d_%010d_%s` (Java's `%0Nd` keeps a minus sign inside the width, as
/// Rust's `{:0N}` does).
pub fn sequence_prefix(info: &SequenceInfo, shard_id: &str) -> String {
    format!(
        "{:010}_{:020}_{:010}_{}",
        info.epoch as i32, info.timestamp_us, info.row_index as i32, shard_id
    )
}

/// Rows of one record in multi-version mode.
pub fn multi_version(
    action: i32,
    row: &Row,
    info: &SequenceInfo,
    shard_id: &str,
    export_sequence_info: bool,
    out: &mut Vec<Vec<Value>>,
) -> Result<(), ConvertError> {
    let mut pk = Vec::with_capacity(row.primary_key.len());
    for c in &row.primary_key {
        let v = c
            .value
            .as_ref()
            .ok_or_else(|| ConvertError(format!("primary key column {:?} has no value", c.name)))?;
        pk.push(value(v, &c.name)?);
    }
    let prefix = export_sequence_info.then(|| sequence_prefix(info, shard_id));
    let mut index = 0u32;
    let mut line = |name: Value, ts: Value, v: Value, op: &str| {
        let mut r = Vec::with_capacity(pk.len() + 5);
        r.extend(pk.iter().cloned());
        r.extend([name, ts, v, str_value(op)]);
        if let Some(p) = &prefix {
            r.push(Value::String(format!("{p}:{index:010}")));
        }
        index += 1;
        out.push(r);
    };
    match action {
        pb::DELETE_ROW => line(Value::Null, Value::Null, Value::Null, "DR"),
        pb::PUT_ROW | pb::UPDATE_ROW => {
            if action == pb::PUT_ROW {
                line(Value::Null, Value::Null, Value::Null, "DR");
            }
            for c in &row.cells {
                let name = str_value(&c.name);
                let ts = c.timestamp.map(Value::Long).unwrap_or(Value::Null);
                match c.op {
                    None => {
                        let v = c.value.as_ref().ok_or_else(|| {
                            ConvertError(format!("put cell {:?} has no value", c.name))
                        })?;
                        line(name, ts, value(v, &c.name)?, "U");
                    }
                    Some(OP_DELETE_ONE_VERSION) => line(name, ts, Value::Null, "DO"),
                    Some(OP_DELETE_ALL_VERSION) => line(name, Value::Null, Value::Null, "DA"),
                    Some(op) => {
                        return Err(ConvertError(format!(
                            "cell {:?} has the unknown operation type {op:#04x}",
                            c.name
                        )))
                    }
                }
            }
        }
        other => return Err(ConvertError(format!("unknown stream action type {other}"))),
    }
    Ok(())
}

/// The row of one record in single-version-and-update-only mode, or `None` when the
/// record yields none (a delete, or none of the columns present).
pub fn single_version(
    action: i32,
    row: &Row,
    info: &SequenceInfo,
    shard_id: &str,
    columns: &[String],
    export_sequence_info: bool,
) -> Result<Option<Vec<Value>>, ConvertError> {
    if action != pb::PUT_ROW && action != pb::UPDATE_ROW {
        return Ok(None);
    }
    let mut out = vec![Value::Null; columns.len()];
    let mut found = false;
    let puts = row
        .primary_key
        .iter()
        .chain(row.cells.iter().filter(|c| c.op.is_none()));
    // A later cell with the same name overwrites an earlier one.
    for c in puts {
        for (i, name) in columns.iter().enumerate() {
            if *name == c.name {
                if let Some(v) = &c.value {
                    out[i] = value(v, &c.name)?;
                    found = true;
                }
            }
        }
    }
    if !found {
        return Ok(None);
    }
    if export_sequence_info {
        out.push(Value::String(sequence_prefix(info, shard_id)));
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plainbuffer::decode_single_row;
    use prost::Message;

    fn expected(rows: &serde_json::Value) -> Vec<Vec<Value>> {
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|c| match (c["type"].as_str().unwrap(), &c["value"]) {
                        (_, serde_json::Value::Null) if c.get("value_hex").is_none() => Value::Null,
                        ("STRING", v) => Value::String(v.as_str().unwrap().into()),
                        ("LONG", v) => Value::Long(v.as_i64().unwrap()),
                        ("DOUBLE", v) => Value::Double(v.as_f64().unwrap()),
                        ("BOOL", v) => Value::Bool(v.as_bool().unwrap()),
                        ("BYTES", _) => {
                            Value::Bytes(hex::decode(c["value_hex"].as_str().unwrap()).unwrap())
                        }
                        (t, _) => panic!("type {t}"),
                    })
                    .collect()
            })
            .collect()
    }

    fn records() -> Vec<pb::StreamRecord> {
        let d: serde_json::Value =
            serde_json::from_str(include_str!("../testdata/protobuf.json")).unwrap();
        let v = d["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "get_stream_record_response")
            .unwrap();
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        pb::GetStreamRecordResponse::decode(bytes.as_slice())
            .unwrap()
            .stream_records
    }

    fn datax() -> serde_json::Value {
        serde_json::from_str(include_str!("../testdata/datax_rows.json")).unwrap()
    }

    #[test]
    fn multi_version_rows_equal_datax_rows() {
        let mut out = Vec::new();
        for r in records() {
            let row = decode_single_row(&r.record).unwrap();
            let info = row.sequence_info.unwrap();
            multi_version(r.action_type, &row, &info, "shard-a", true, &mut out).unwrap();
        }
        assert_eq!(
            out,
            expected(&datax()["multi_version_isExportSequenceInfo_true"]["rows"])
        );
    }

    #[test]
    fn single_version_rows_equal_datax_rows() {
        let d = datax();
        let key = d
            .as_object()
            .unwrap()
            .keys()
            .find(|k| k.starts_with("single"))
            .unwrap()
            .clone();
        let section = &d[&key];
        let columns: Vec<String> = section["column_config"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        let export = key.ends_with("isExportSequenceInfo_true");
        let mut out = Vec::new();
        for r in records() {
            let row = decode_single_row(&r.record).unwrap();
            let info = row.sequence_info.unwrap();
            if let Some(line) =
                single_version(r.action_type, &row, &info, "shard-a", &columns, export).unwrap()
            {
                out.push(line);
            }
        }
        assert_eq!(out, expected(&section["rows"]));
    }

    fn put_row(value: CellValue) -> Row {
        Row {
            primary_key: vec![crate::plainbuffer::Cell {
                name: "pk".into(),
                value: Some(CellValue::Integer(1)),
                op: None,
                timestamp: None,
            }],
            cells: vec![crate::plainbuffer::Cell {
                name: "d".into(),
                value: Some(value),
                op: None,
                timestamp: Some(7),
            }],
            delete_marker: false,
            sequence_info: None,
        }
    }

    fn info() -> SequenceInfo {
        SequenceInfo {
            epoch: 1,
            timestamp_us: 5,
            row_index: 0,
        }
    }

    #[test]
    fn negative_zero_doubles_become_zero_as_datax() {
        let mut out = Vec::new();
        let row = put_row(CellValue::Double(-0.0));
        multi_version(pb::UPDATE_ROW, &row, &info(), "s", false, &mut out).unwrap();
        match &out[0][3] {
            Value::Double(d) => assert!(*d == 0.0 && d.is_sign_positive(), "{d}"),
            other => panic!("{other:?}"),
        }
        let cols = ["d".to_owned()];
        let line = single_version(pb::UPDATE_ROW, &row, &info(), "s", &cols, false)
            .unwrap()
            .unwrap();
        assert!(matches!(line[0], Value::Double(d) if d.is_sign_positive()));
    }

    #[test]
    fn nan_and_infinite_doubles_fail_as_in_datax() {
        for (d, text) in [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            let row = put_row(CellValue::Double(d));
            let e = multi_version(pb::PUT_ROW, &row, &info(), "s", false, &mut Vec::new())
                .unwrap_err()
                .to_string();
            assert!(e.contains("\"d\"") && e.contains(text), "{e}");
            let cols = ["d".to_owned()];
            assert!(single_version(pb::PUT_ROW, &row, &info(), "s", &cols, false).is_err());
        }
    }

    #[test]
    fn negative_numbers_keep_java_padding() {
        let info = SequenceInfo {
            epoch: u32::MAX,
            timestamp_us: 5,
            row_index: 0,
        };
        assert!(sequence_prefix(&info, "s").starts_with("-000000001_"));
    }
}
