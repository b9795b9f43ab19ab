//! Column types: `column` entries as DataX's hdfswriter names them, the Parquet message
//! type derived from them (HdfsHelper.generateParquetSchemaFromColumnAndType) or given as
//! `parquetSchema`, and the ORC columns orc-rust can write.

use std::sync::Arc;

use parquet::basic::{ConvertedType, LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::schema::types::{Type, TypePtr};
use protocol::runtime::PluginError;
use serde_json::Value as Json;

use super::{err, Column};

/// A type named in `column[i].type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    String,
    Binary,
    Boolean,
    Date,
    Timestamp,
    Int96,
    Decimal { precision: u32, scale: u32 },
}

/// Timestamp units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Millis,
    Micros,
    Nanos,
}

/// How a decimal's unscaled value is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecimalStore {
    I32,
    I64,
    /// Big-endian two's complement, as few bytes as needed.
    Binary,
    /// Big-endian two's complement, sign-extended to this many bytes.
    Fixed(usize),
}

/// Where a column's values go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Bool,
    /// A 32-bit integer column holding `bits`-bit values (8, 16 or 32).
    Int32 {
        bits: u8,
    },
    Int64,
    Float32,
    Float64,
    Utf8,
    Binary,
    Fixed(usize),
    /// Days since 1970-01-01 (the local date in the job's zone).
    Date,
    /// `utc`: an instant since the epoch; otherwise the wall clock in the job's zone.
    Timestamp {
        unit: Unit,
        utc: bool,
    },
    /// Parquet INT96 timestamp: Julian day and nanoseconds of the day, UTC.
    Int96,
    Decimal {
        precision: u32,
        scale: u32,
        store: DecimalStore,
    },
}

/// The largest decimal precision (Parquet's FIXED_LEN_BYTE_ARRAY(16), arrow's decimal128).
pub const MAX_PRECISION: u32 = 38;

fn parse_type(text: &str) -> Option<ColumnType> {
    let t = text.trim().to_ascii_lowercase();
    let (base, args) = match t.split_once('(') {
        Some((base, rest)) => (
            base.trim().to_owned(),
            Some(rest.strip_suffix(')')?.to_owned()),
        ),
        None => (t.clone(), None),
    };
    let plain = |ty| if args.is_none() { Some(ty) } else { None };
    match base.as_str() {
        "tinyint" => plain(ColumnType::TinyInt),
        "smallint" => plain(ColumnType::SmallInt),
        "int" | "integer" | "int32" => plain(ColumnType::Int),
        "bigint" | "long" | "int64" => plain(ColumnType::BigInt),
        "float" => plain(ColumnType::Float),
        "double" => plain(ColumnType::Double),
        "string" => plain(ColumnType::String),
        "char" | "varchar" => match &args {
            Some(n) if n.trim().parse::<u32>().is_ok() => Some(ColumnType::String),
            Some(_) => None,
            None => Some(ColumnType::String),
        },
        "binary" => plain(ColumnType::Binary),
        "boolean" => plain(ColumnType::Boolean),
        "date" => plain(ColumnType::Date),
        "timestamp" => plain(ColumnType::Timestamp),
        "int96" => plain(ColumnType::Int96),
        "decimal" => {
            // DataX's default for a bare decimal (HdfsHelper: PARQUET_DEFAULT_DECIMAL_INFO).
            let (precision, scale) = match &args {
                None => (10, 2),
                Some(a) => {
                    let (p, s) = match a.split_once(',') {
                        Some((p, s)) => (p.trim().parse().ok()?, s.trim().parse().ok()?),
                        None => (a.trim().parse().ok()?, 0),
                    };
                    (p, s)
                }
            };
            (1..=MAX_PRECISION)
                .contains(&precision)
                .then_some(())
                .filter(|()| scale <= precision)
                .map(|()| ColumnType::Decimal { precision, scale })
        }
        _ => None,
    }
}

/// `column`: `[{"name", "type"}]`.
pub fn parse_columns(items: &[Json]) -> Result<Vec<(String, ColumnType)>, PluginError> {
    let mut out: Vec<(String, ColumnType)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let name = item.get("name").and_then(Json::as_str).unwrap_or_default();
        if name.trim().is_empty() {
            return Err(err(format!(
                "column[{i}].name is required (a non-empty string)"
            )));
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(err(format!("column[{i}].name {name:?} appears twice")));
        }
        let type_text = item.get("type").and_then(Json::as_str).unwrap_or_default();
        let ty = parse_type(type_text).ok_or_else(|| {
            err(format!(
                "column[{i}].type {type_text:?} (column {name:?}) is not a known type: use \
                 tinyint, smallint, int, bigint, long, float, double, string, char, varchar, \
                 binary, boolean, date, timestamp, int96 or decimal(precision,scale) with \
                 precision 1 to {MAX_PRECISION}"
            ))
        })?;
        out.push((name.to_owned(), ty));
    }
    Ok(out)
}

/// Bytes a FIXED_LEN_BYTE_ARRAY needs for `precision` digits (two's complement).
pub fn bytes_for_precision(precision: u32) -> usize {
    let mut n = 1usize;
    while n < 16 && 10f64.powi(precision as i32) > 2f64.powi(8 * n as i32 - 1) - 1.0 {
        n += 1;
    }
    n
}

fn primitive(
    name: &str,
    physical: Physical,
    logical: Option<LogicalType>,
) -> Result<Type, PluginError> {
    Type::primitive_type_builder(name, physical)
        .with_repetition(Repetition::OPTIONAL)
        .with_logical_type(logical)
        .build()
        .map_err(|e| err(format!("column {name:?}: {e}")))
}

/// The message type DataX derives from `column` (all columns optional, message `m`);
/// `timestamp` becomes INT64 TIMESTAMP(MILLIS, true) instead of DataX's INT96.
pub fn derive_parquet_schema(columns: &[(String, ColumnType)]) -> Result<Type, PluginError> {
    let mut fields = Vec::new();
    for (name, ty) in columns {
        let field = match *ty {
            ColumnType::TinyInt | ColumnType::SmallInt | ColumnType::Int => {
                primitive(name, Physical::INT32, None)?
            }
            ColumnType::BigInt => primitive(name, Physical::INT64, None)?,
            ColumnType::Float => primitive(name, Physical::FLOAT, None)?,
            ColumnType::Double => primitive(name, Physical::DOUBLE, None)?,
            ColumnType::Binary => primitive(name, Physical::BYTE_ARRAY, None)?,
            ColumnType::String => primitive(name, Physical::BYTE_ARRAY, Some(LogicalType::String))?,
            ColumnType::Boolean => primitive(name, Physical::BOOLEAN, None)?,
            ColumnType::Date => primitive(name, Physical::INT32, Some(LogicalType::Date))?,
            ColumnType::Timestamp => primitive(
                name,
                Physical::INT64,
                Some(LogicalType::timestamp(true, TimeUnit::MILLIS)),
            )?,
            ColumnType::Int96 => primitive(name, Physical::INT96, None)?,
            ColumnType::Decimal { precision, scale } => {
                Type::primitive_type_builder(name, Physical::FIXED_LEN_BYTE_ARRAY)
                    .with_repetition(Repetition::OPTIONAL)
                    .with_logical_type(Some(LogicalType::decimal(scale as i32, precision as i32)))
                    .with_length(bytes_for_precision(precision) as i32)
                    .with_precision(precision as i32)
                    .with_scale(scale as i32)
                    .build()
                    .map_err(|e| err(format!("column {name:?}: {e}")))?
            }
        };
        fields.push(Arc::new(field));
    }
    Type::group_type_builder("m")
        .with_fields(fields)
        .build()
        .map_err(|e| err(format!("column: {e}")))
}

/// `parquetSchema`: parsed and checked to be flat and writable.
pub fn parse_parquet_schema(text: &str) -> Result<(Vec<super::Column>, TypePtr), PluginError> {
    let parsed = std::panic::catch_unwind(|| parquet::schema::parser::parse_message_type(text));
    let message = match parsed {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return Err(err(format!("parquetSchema does not parse: {e}"))),
        Err(_) => return Err(err("parquetSchema does not parse")),
    };
    columns_of_message(message).map_err(|e| {
        let mut e = e;
        e.message = e
            .message
            .replacen("writer-oss: ", "writer-oss: parquetSchema: ", 1);
        e
    })
}

fn unit_of(unit: &TimeUnit) -> Unit {
    match unit {
        TimeUnit::MILLIS => Unit::Millis,
        TimeUnit::MICROS => Unit::Micros,
        _ => Unit::Nanos,
    }
}

fn target_of(field: &Type) -> Result<Target, String> {
    let info = field.get_basic_info();
    let physical = field.get_physical_type();
    let logical = info.logical_type_ref();
    let converted = info.converted_type();
    let decimal = |store| {
        let precision = field.get_precision();
        let scale = field.get_scale();
        if !(1..=MAX_PRECISION as i32).contains(&precision) || !(0..=precision).contains(&scale) {
            return Err(format!("decimal precision {precision} / scale {scale} is not supported (precision 1 to {MAX_PRECISION})"));
        }
        Ok(Target::Decimal {
            precision: precision as u32,
            scale: scale as u32,
            store,
        })
    };
    let is_decimal =
        matches!(logical, Some(LogicalType::Decimal(_))) || converted == ConvertedType::DECIMAL;
    let target = match physical {
        Physical::BOOLEAN if logical.is_none() => Target::Bool,
        Physical::INT32 if is_decimal => decimal(DecimalStore::I32)?,
        Physical::INT32 => match (logical, converted) {
            (None, ConvertedType::NONE) => Target::Int32 { bits: 32 },
            (Some(LogicalType::Date), _) | (None, ConvertedType::DATE) => Target::Date,
            (Some(LogicalType::Integer(i)), _) if i.is_signed => Target::Int32 { bits: i.bit_width.clamp(8, 32) as u8 },
            (None, ConvertedType::INT_8) => Target::Int32 { bits: 8 },
            (None, ConvertedType::INT_16) => Target::Int32 { bits: 16 },
            (None, ConvertedType::INT_32) => Target::Int32 { bits: 32 },
            _ => return Err("INT32 with this annotation is not supported (use none, DATE, INTEGER(8|16|32,true) or DECIMAL)".into()),
        },
        Physical::INT64 if is_decimal => decimal(DecimalStore::I64)?,
        Physical::INT64 => match (logical, converted) {
            (None, ConvertedType::NONE | ConvertedType::INT_64) => Target::Int64,
            (Some(LogicalType::Integer(i)), _) if i.is_signed && i.bit_width == 64 => Target::Int64,
            (Some(LogicalType::Timestamp(t)), _) => Target::Timestamp { unit: unit_of(&t.unit), utc: t.is_adjusted_to_u_t_c },
            (None, ConvertedType::TIMESTAMP_MILLIS) => Target::Timestamp { unit: Unit::Millis, utc: true },
            (None, ConvertedType::TIMESTAMP_MICROS) => Target::Timestamp { unit: Unit::Micros, utc: true },
            _ => return Err("INT64 with this annotation is not supported (use none, INTEGER(64,true), TIMESTAMP or DECIMAL)".into()),
        },
        Physical::INT96 if logical.is_none() => Target::Int96,
        Physical::FLOAT if logical.is_none() => Target::Float32,
        Physical::DOUBLE if logical.is_none() => Target::Float64,
        Physical::BYTE_ARRAY if is_decimal => decimal(DecimalStore::Binary)?,
        Physical::BYTE_ARRAY => match (logical, converted) {
            (None, ConvertedType::NONE) => Target::Binary,
            (Some(LogicalType::String | LogicalType::Json | LogicalType::Enum), _)
            | (None, ConvertedType::UTF8 | ConvertedType::JSON | ConvertedType::ENUM) => Target::Utf8,
            (Some(LogicalType::Bson), _) | (None, ConvertedType::BSON) => Target::Binary,
            _ => return Err("BINARY with this annotation is not supported (use none, UTF8/STRING, JSON, ENUM, BSON or DECIMAL)".into()),
        },
        Physical::FIXED_LEN_BYTE_ARRAY if is_decimal => {
            let length = type_length(field);
            let needed = bytes_for_precision(field.get_precision().max(1) as u32);
            if length < needed {
                return Err(format!("FIXED_LEN_BYTE_ARRAY({length}) is too short for DECIMAL precision {}", field.get_precision()));
            }
            decimal(DecimalStore::Fixed(length))?
        }
        Physical::FIXED_LEN_BYTE_ARRAY if logical.is_none() || matches!(logical, Some(LogicalType::Uuid)) => {
            Target::Fixed(type_length(field))
        }
        _ => return Err(format!("{physical} with annotation {logical:?} is not supported")),
    };
    Ok(target)
}

fn type_length(field: &Type) -> usize {
    match field {
        Type::PrimitiveType { type_length, .. } => (*type_length).max(0) as usize,
        Type::GroupType { .. } => 0,
    }
}

/// The columns of a flat message type (primitive fields, required or optional).
pub fn columns_of_message(message: Type) -> Result<(Vec<Column>, TypePtr), PluginError> {
    if message.is_primitive() {
        return Err(err("the schema must be a message (a group of columns)"));
    }
    let mut columns = Vec::new();
    for field in message.get_fields() {
        let name = field.name().to_owned();
        if !field.is_primitive() {
            return Err(err(format!(
                "column {name:?} is a group; only flat schemas (one primitive per column) are supported"
            )));
        }
        let nullable = match field.get_basic_info().repetition() {
            Repetition::REQUIRED => false,
            Repetition::OPTIONAL => true,
            Repetition::REPEATED => {
                return Err(err(format!(
                    "column {name:?} is repeated; only required and optional columns are supported"
                )))
            }
        };
        let target = target_of(field).map_err(|e| err(format!("column {name:?}: {e}")))?;
        columns.push(Column {
            name,
            target,
            nullable,
        });
    }
    if columns.is_empty() {
        return Err(err("the schema has no columns"));
    }
    Ok((columns, Arc::new(message)))
}

/// ORC columns from `column`. orc-rust 0.9 writes no decimal and no INT96; those are
/// refused here instead of reaching its `unimplemented!`.
pub fn orc_columns(declared: &[(String, ColumnType)]) -> Result<Vec<Column>, PluginError> {
    declared
        .iter()
        .enumerate()
        .map(|(i, (name, ty))| {
            let target =
                match ty {
                    ColumnType::TinyInt => Target::Int32 { bits: 8 },
                    ColumnType::SmallInt => Target::Int32 { bits: 16 },
                    ColumnType::Int => Target::Int32 { bits: 32 },
                    ColumnType::BigInt => Target::Int64,
                    ColumnType::Float => Target::Float32,
                    ColumnType::Double => Target::Float64,
                    ColumnType::String => Target::Utf8,
                    ColumnType::Binary => Target::Binary,
                    ColumnType::Boolean => Target::Bool,
                    ColumnType::Date => Target::Date,
                    ColumnType::Timestamp => Target::Timestamp {
                        unit: Unit::Millis,
                        utc: true,
                    },
                    ColumnType::Decimal { .. } | ColumnType::Int96 => {
                        return Err(err(format!(
                        "column[{i}].type (column {name:?}): fileFormat orc cannot write {} yet \
                         (the ORC library writes no such type); use string, double or parquet",
                        if matches!(ty, ColumnType::Int96) { "int96" } else { "decimal" }
                    )))
                    }
                };
            Ok(Column {
                name: name.clone(),
                target,
                nullable: true,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_needs_datax_byte_counts() {
        // HdfsUtil.computeMinBytesForPrecision: 9 digits fit 4 bytes, 10 need 5, 38 need 16.
        assert_eq!(bytes_for_precision(9), 4);
        assert_eq!(bytes_for_precision(10), 5);
        assert_eq!(bytes_for_precision(18), 8);
        assert_eq!(bytes_for_precision(20), 9);
        assert_eq!(bytes_for_precision(38), 16);
    }

    #[test]
    fn column_types_parse_like_datax() {
        assert_eq!(parse_type("BIGINT"), Some(ColumnType::BigInt));
        assert_eq!(parse_type("varchar(20)"), Some(ColumnType::String));
        assert_eq!(
            parse_type("decimal"),
            Some(ColumnType::Decimal {
                precision: 10,
                scale: 2
            })
        );
        assert_eq!(
            parse_type("decimal(20, 4)"),
            Some(ColumnType::Decimal {
                precision: 20,
                scale: 4
            })
        );
        assert_eq!(parse_type("decimal(39,1)"), None);
        assert_eq!(parse_type("decimal(5,6)"), None);
        assert_eq!(parse_type("map<string,int>"), None);
    }

    #[test]
    fn schemas_that_are_not_flat_or_do_not_parse_are_config_errors() {
        let e = parse_parquet_schema("message m { optional int65 a; }").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.message.contains("parquetSchema does not parse"),
            "{}",
            e.message
        );
        let e = parse_parquet_schema("message m { optional group g { optional int32 x; } }")
            .unwrap_err();
        assert!(
            e.message.contains("parquetSchema: column \"g\" is a group"),
            "{}",
            e.message
        );
        let e = parse_parquet_schema("message m { repeated int32 x; }").unwrap_err();
        assert!(e.message.contains("repeated"), "{}", e.message);
        let (cols, _) = parse_parquet_schema(
            "message m { required int64 id; optional binary s (UTF8); optional int64 t (TIMESTAMP(MICROS,false)); optional fixed_len_byte_array(9) d (DECIMAL(20,4)); }",
        )
        .unwrap();
        assert!(!cols[0].nullable);
        assert_eq!(cols[1].target, Target::Utf8);
        assert_eq!(
            cols[2].target,
            Target::Timestamp {
                unit: Unit::Micros,
                utc: false
            }
        );
        assert_eq!(
            cols[3].target,
            Target::Decimal {
                precision: 20,
                scale: 4,
                store: DecimalStore::Fixed(9)
            }
        );
    }
}
