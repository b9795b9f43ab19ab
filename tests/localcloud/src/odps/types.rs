//! MaxCompute column types (the type strings of table schemas) and cell values.
//!
//! Type strings follow the service's spelling: lower-case, no spaces inside nested
//! types (`map<string,array<bigint>>`, `struct<a:bigint,b:string>`), parsed
//! case-insensitively. Bare `decimal` stays bare (the 1.0 type).

use std::fmt;

/// One column type.
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
    TimestampNtz,
    String,
    Binary,
    Json,
    /// `decimal` (bare) or `decimal(p,s)`.
    Decimal(Option<(u32, u32)>),
    Varchar(u32),
    Char(u32),
    IntervalDayTime,
    IntervalYearMonth,
    Array(Box<OdpsType>),
    Map(Box<OdpsType>, Box<OdpsType>),
    Struct(Vec<(String, OdpsType)>),
}

/// A type string the emulator cannot parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid type {text:?}: {reason}")]
pub struct TypeError {
    pub text: String,
    pub reason: String,
}

/// A non-NULL cell value. NULL is `None` in a [`Row`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// BIGINT, INT, SMALLINT, TINYINT, DATETIME (epoch ms), DATE (epoch days),
    /// INTERVAL_YEAR_MONTH (months).
    Int(i64),
    Bool(bool),
    Double(f64),
    Float(f32),
    /// STRING, VARCHAR, CHAR, JSON, BINARY, DECIMAL (its text). A received value
    /// shares the buffer of the block it came in (no copy per value).
    Bytes(bytes::Bytes),
    /// TIMESTAMP, TIMESTAMP_NTZ, INTERVAL_DAY_TIME.
    Timestamp {
        seconds: i64,
        nanos: i32,
    },
    Array(Vec<Option<Value>>),
    /// Boxed: the other variants fit in 32 bytes, and every stored cell is a `Value`.
    Map(Box<MapValue>),
    Struct(Vec<Option<Value>>),
}

/// A MAP value: its keys and values, pair by pair.
#[derive(Clone, Debug, PartialEq)]
pub struct MapValue {
    pub keys: Vec<Option<Value>>,
    pub values: Vec<Option<Value>>,
}

/// One record: a value or NULL per data column.
pub type Row = Vec<Option<Value>>;

impl OdpsType {
    /// Parses a type string such as `decimal(10,2)` or `map<string,array<bigint>>`.
    pub fn parse(text: &str) -> Result<Self, TypeError> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let mut parser = TypeParser {
            text,
            chars: compact.chars().collect(),
            pos: 0,
        };
        let ty = parser.parse_type()?;
        if parser.pos != parser.chars.len() {
            return Err(parser.error("unexpected trailing characters"));
        }
        Ok(ty)
    }

    /// The protobuf wire type of this type's fields in Tunnel blocks.
    pub fn wire_type(&self) -> u32 {
        match self {
            OdpsType::Double => 1,
            OdpsType::Float => 5,
            OdpsType::Bigint
            | OdpsType::Int
            | OdpsType::Smallint
            | OdpsType::Tinyint
            | OdpsType::Boolean
            | OdpsType::Datetime
            | OdpsType::Date
            | OdpsType::IntervalYearMonth => 0,
            _ => 2,
        }
    }

    /// The inclusive value range of an integer type, if it has a narrower one than i64.
    pub fn int_range(&self) -> Option<(i64, i64)> {
        match self {
            OdpsType::Tinyint => Some((i8::MIN.into(), i8::MAX.into())),
            OdpsType::Smallint => Some((i16::MIN.into(), i16::MAX.into())),
            OdpsType::Int => Some((i32::MIN.into(), i32::MAX.into())),
            _ => None,
        }
    }
}

impl fmt::Display for OdpsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OdpsType::Bigint => f.write_str("bigint"),
            OdpsType::Int => f.write_str("int"),
            OdpsType::Smallint => f.write_str("smallint"),
            OdpsType::Tinyint => f.write_str("tinyint"),
            OdpsType::Double => f.write_str("double"),
            OdpsType::Float => f.write_str("float"),
            OdpsType::Boolean => f.write_str("boolean"),
            OdpsType::Datetime => f.write_str("datetime"),
            OdpsType::Date => f.write_str("date"),
            OdpsType::Timestamp => f.write_str("timestamp"),
            OdpsType::TimestampNtz => f.write_str("timestamp_ntz"),
            OdpsType::String => f.write_str("string"),
            OdpsType::Binary => f.write_str("binary"),
            OdpsType::Json => f.write_str("json"),
            OdpsType::Decimal(None) => f.write_str("decimal"),
            OdpsType::Decimal(Some((p, s))) => write!(f, "decimal({p},{s})"),
            OdpsType::Varchar(n) => write!(f, "varchar({n})"),
            OdpsType::Char(n) => write!(f, "char({n})"),
            OdpsType::IntervalDayTime => f.write_str("interval_day_time"),
            OdpsType::IntervalYearMonth => f.write_str("interval_year_month"),
            OdpsType::Array(t) => write!(f, "array<{t}>"),
            OdpsType::Map(k, v) => write!(f, "map<{k},{v}>"),
            OdpsType::Struct(fields) => {
                f.write_str("struct<")?;
                for (i, (name, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}:{t}")?;
                }
                f.write_str(">")
            }
        }
    }
}

struct TypeParser<'a> {
    text: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl TypeParser<'_> {
    fn error(&self, reason: &str) -> TypeError {
        TypeError {
            text: self.text.to_owned(),
            reason: reason.to_owned(),
        }
    }

    fn word(&mut self) -> String {
        let start = self.pos;
        while self.pos < self.chars.len()
            && (self.chars[self.pos].is_ascii_alphanumeric() || self.chars[self.pos] == '_')
        {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.chars.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), TypeError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected '{c}'")))
        }
    }

    fn number(&mut self) -> Result<u32, TypeError> {
        let start = self.pos;
        while self.pos < self.chars.len() && self.chars[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        let digits: String = self.chars[start..self.pos].iter().collect();
        digits.parse().map_err(|_| self.error("expected a number"))
    }

    fn parse_type(&mut self) -> Result<OdpsType, TypeError> {
        let name = self.word().to_ascii_lowercase();
        let ty = match name.as_str() {
            "bigint" => OdpsType::Bigint,
            "int" => OdpsType::Int,
            "smallint" => OdpsType::Smallint,
            "tinyint" => OdpsType::Tinyint,
            "double" => OdpsType::Double,
            "float" => OdpsType::Float,
            "boolean" => OdpsType::Boolean,
            "datetime" => OdpsType::Datetime,
            "date" => OdpsType::Date,
            "timestamp" => OdpsType::Timestamp,
            "timestamp_ntz" => OdpsType::TimestampNtz,
            "string" => OdpsType::String,
            "binary" => OdpsType::Binary,
            "json" => OdpsType::Json,
            "interval_day_time" => OdpsType::IntervalDayTime,
            "interval_year_month" => OdpsType::IntervalYearMonth,
            "decimal" => {
                if self.eat('(') {
                    let p = self.number()?;
                    self.expect(',')?;
                    let s = self.number()?;
                    self.expect(')')?;
                    if !(1..=38).contains(&p) || s > p {
                        return Err(self.error("decimal precision/scale out of range"));
                    }
                    OdpsType::Decimal(Some((p, s)))
                } else {
                    OdpsType::Decimal(None)
                }
            }
            "varchar" | "char" => {
                self.expect('(')?;
                let n = self.number()?;
                self.expect(')')?;
                let max = if name == "char" { 255 } else { 65535 };
                if !(1..=max).contains(&n) {
                    return Err(self.error("length out of range"));
                }
                if name == "char" {
                    OdpsType::Char(n)
                } else {
                    OdpsType::Varchar(n)
                }
            }
            "array" => {
                self.expect('<')?;
                let t = self.parse_type()?;
                self.expect('>')?;
                OdpsType::Array(Box::new(t))
            }
            "map" => {
                self.expect('<')?;
                let k = self.parse_type()?;
                self.expect(',')?;
                let v = self.parse_type()?;
                self.expect('>')?;
                OdpsType::Map(Box::new(k), Box::new(v))
            }
            "struct" => {
                self.expect('<')?;
                let mut fields = Vec::new();
                loop {
                    self.eat('`');
                    let field = self.word();
                    self.eat('`');
                    if field.is_empty() {
                        return Err(self.error("expected a struct field name"));
                    }
                    self.expect(':')?;
                    fields.push((field, self.parse_type()?));
                    if !self.eat(',') {
                        break;
                    }
                }
                self.expect('>')?;
                OdpsType::Struct(fields)
            }
            "" => return Err(self.error("expected a type name")),
            _ => return Err(self.error("unknown type")),
        };
        Ok(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_cell_takes_40_bytes() {
        // Every cell of every stored row is an Option<Value>: keep the rare variants boxed.
        assert_eq!(std::mem::size_of::<Option<Value>>(), 40);
    }

    #[test]
    fn every_type_string_round_trips() {
        for text in [
            "bigint",
            "int",
            "smallint",
            "tinyint",
            "double",
            "float",
            "boolean",
            "datetime",
            "date",
            "timestamp",
            "timestamp_ntz",
            "string",
            "binary",
            "json",
            "decimal",
            "decimal(10,2)",
            "varchar(10)",
            "char(5)",
            "interval_day_time",
            "interval_year_month",
            "array<bigint>",
            "map<string,array<bigint>>",
            "struct<a:bigint,b:string>",
        ] {
            assert_eq!(OdpsType::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn parsing_is_case_and_space_insensitive() {
        assert_eq!(
            OdpsType::parse("MAP< STRING , Decimal(3, 1) >").unwrap(),
            OdpsType::Map(
                Box::new(OdpsType::String),
                Box::new(OdpsType::Decimal(Some((3, 1))))
            )
        );
    }

    #[test]
    fn bad_types_are_rejected() {
        for text in [
            "",
            "bigin",
            "varchar",
            "char(0)",
            "array<bigint",
            "decimal(3,4)",
            "int x",
        ] {
            assert!(OdpsType::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn wire_types_follow_the_spec() {
        assert_eq!(OdpsType::Bigint.wire_type(), 0);
        assert_eq!(OdpsType::Double.wire_type(), 1);
        assert_eq!(OdpsType::Float.wire_type(), 5);
        assert_eq!(OdpsType::Timestamp.wire_type(), 2);
        assert_eq!(OdpsType::Boolean.wire_type(), 0);
    }
}
