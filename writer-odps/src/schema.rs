//! Table schemas: column types as MaxCompute names them, and the schema JSON of the
//! table metadata (S2) and of upload sessions (T1) (spec `odps.md` §3.1, §4.2).

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// A column type. Types this writer does not write are kept by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OdpsType {
    Bigint,
    Int,
    Smallint,
    Tinyint,
    Double,
    Float,
    Boolean,
    Datetime,
    Date,
    Timestamp,
    String,
    Varchar(u32),
    Char(u32),
    Binary,
    /// Precision and scale; bare `decimal` is (54, 18) as in the Java SDK.
    Decimal {
        precision: u32,
        scale: u32,
    },
    /// array, map, struct, interval, json, timestamp_ntz, …: not written.
    Other(String),
}

impl OdpsType {
    /// Parses a type string such as `bigint`, `varchar(10)`, `decimal(10,2)`.
    pub fn parse(text: &str) -> Self {
        let t = text.trim().to_ascii_lowercase();
        let args = |name: &str| -> Option<Vec<u32>> {
            let inner = t
                .strip_prefix(name)?
                .trim()
                .strip_prefix('(')?
                .strip_suffix(')')?;
            inner.split(',').map(|p| p.trim().parse().ok()).collect()
        };
        match t.as_str() {
            "bigint" => return OdpsType::Bigint,
            "int" => return OdpsType::Int,
            "smallint" => return OdpsType::Smallint,
            "tinyint" => return OdpsType::Tinyint,
            "double" => return OdpsType::Double,
            "float" => return OdpsType::Float,
            "boolean" => return OdpsType::Boolean,
            "datetime" => return OdpsType::Datetime,
            "date" => return OdpsType::Date,
            "timestamp" => return OdpsType::Timestamp,
            "string" => return OdpsType::String,
            "binary" => return OdpsType::Binary,
            "decimal" => {
                return OdpsType::Decimal {
                    precision: 54,
                    scale: 18,
                }
            }
            _ => {}
        }
        if let Some([n]) = args("varchar").as_deref() {
            return OdpsType::Varchar(*n);
        }
        if let Some([n]) = args("char").as_deref() {
            return OdpsType::Char(*n);
        }
        if let Some([p, s]) = args("decimal").as_deref() {
            if s <= p {
                return OdpsType::Decimal {
                    precision: *p,
                    scale: *s,
                };
            }
        }
        OdpsType::Other(t)
    }

    /// Whether this writer can write values of this type.
    pub fn is_writable(&self) -> bool {
        !matches!(self, OdpsType::Other(_))
    }
}

/// One column of a schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// The type as the service wrote it.
    #[serde(rename = "type")]
    pub type_name: String,
}

impl Column {
    pub fn odps_type(&self) -> OdpsType {
        OdpsType::parse(&self.type_name)
    }
}

/// Data columns (field order) and partition keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSchema {
    pub columns: Vec<Column>,
    #[serde(rename = "partitionKeys")]
    pub partition_keys: Vec<Column>,
}

impl TableSchema {
    /// Reads the `columns` and `partitionKeys` arrays of a schema JSON object (the
    /// table metadata's `<Schema>` text, or the `Schema` of an upload session).
    pub fn from_json(value: &Json) -> Result<Self, String> {
        let list = |key: &str| -> Result<Vec<Column>, String> {
            match value.get(key) {
                None | Some(Json::Null) => Ok(Vec::new()),
                Some(Json::Array(items)) => items
                    .iter()
                    .map(|c| {
                        let name = c.get("name").and_then(Json::as_str);
                        let ty = c.get("type").and_then(Json::as_str);
                        match (name, ty) {
                            (Some(n), Some(t)) => Ok(Column {
                                name: n.to_owned(),
                                type_name: t.to_owned(),
                            }),
                            _ => Err(format!("a {key} entry lacks name or type: {c}")),
                        }
                    })
                    .collect(),
                Some(other) => Err(format!("{key} is not an array: {other}")),
            }
        };
        Ok(Self {
            columns: list("columns")?,
            partition_keys: list("partitionKeys")?,
        })
    }

    pub fn is_partitioned(&self) -> bool {
        !self.partition_keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_strings() {
        assert_eq!(OdpsType::parse("BIGINT"), OdpsType::Bigint);
        assert_eq!(OdpsType::parse("varchar(10)"), OdpsType::Varchar(10));
        assert_eq!(OdpsType::parse("char(5)"), OdpsType::Char(5));
        assert_eq!(
            OdpsType::parse("decimal(10,2)"),
            OdpsType::Decimal {
                precision: 10,
                scale: 2
            }
        );
        assert_eq!(
            OdpsType::parse("decimal"),
            OdpsType::Decimal {
                precision: 54,
                scale: 18
            }
        );
        assert!(!OdpsType::parse("array<bigint>").is_writable());
        assert!(!OdpsType::parse("decimal(2,5)").is_writable());
    }

    #[test]
    fn schema_json() {
        let s = TableSchema::from_json(&serde_json::json!({
            "columns": [{"name": "id", "type": "bigint", "nullable": true}],
            "partitionKeys": [{"name": "pt", "type": "string"}]
        }))
        .unwrap();
        assert_eq!(s.columns[0].name, "id");
        assert!(s.is_partitioned());
        assert!(TableSchema::from_json(&serde_json::json!({"columns": [{"name": "x"}]})).is_err());
    }
}
