//! A small parser for exactly the SQL statements writers and tests need:
//!
//! ```text
//! CREATE TABLE [IF NOT EXISTS] t (col type [NOT NULL] [PRIMARY KEY] [COMMENT '…'], …
//!     [, PRIMARY KEY (col, …)])
//!     [COMMENT '…'] [PARTITIONED BY (key type [COMMENT '…'], …)] [LIFECYCLE n]
//!     [TBLPROPERTIES ('k'='v', …)]
//! DROP TABLE [IF EXISTS] t
//! TRUNCATE TABLE t [PARTITION (k='v', …)]
//! ALTER TABLE t ADD [IF NOT EXISTS] PARTITION (k='v', …) [PARTITION (…) …]
//! ALTER TABLE t DROP [IF EXISTS] PARTITION (k='v', …) [, PARTITION (…) …]
//! SELECT COUNT(*) [[AS] alias] FROM t [WHERE k='v' [AND k='v' …]]
//! SELECT * FROM t [WHERE k='v' [AND …]] [LIMIT n]
//! ```
//!
//! `t` may be `project.t`, names may be back-quoted, keywords are case-insensitive,
//! one trailing `;` is allowed. WHERE filters name partition keys only. Anything else
//! is a parse error in the service's format (`ODPS-0130161:[line,col] Parse exception - …`).

mod ddl;

use super::sql_lex::{tokenize, Tok};
use super::state::Column;
use super::types::OdpsType;

/// A table reference, optionally qualified by a project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRef {
    pub project: Option<String>,
    pub table: String,
}

/// `(key, value)` pairs as written.
pub type SpecPairs = Vec<(String, String)>;

/// One parsed statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    CreateTable {
        table: TableRef,
        if_not_exists: bool,
        columns: Vec<Column>,
        partition_keys: Vec<Column>,
        comment: String,
        lifecycle: Option<i64>,
        /// `PRIMARY KEY` columns (lower-case), inline or as a table constraint.
        primary_key: Vec<String>,
        /// `TBLPROPERTIES` pairs as written, keys lower-case.
        properties: Vec<(String, String)>,
    },
    DropTable {
        table: TableRef,
        if_exists: bool,
    },
    Truncate {
        table: TableRef,
        partition: Option<SpecPairs>,
    },
    AddPartitions {
        table: TableRef,
        if_not_exists: bool,
        specs: Vec<SpecPairs>,
    },
    DropPartitions {
        table: TableRef,
        if_exists: bool,
        specs: Vec<SpecPairs>,
    },
    SelectCount {
        table: TableRef,
        alias: String,
        filter: SpecPairs,
    },
    SelectAll {
        table: TableRef,
        filter: SpecPairs,
        limit: Option<u64>,
    },
}

/// A parse failure with its position (1-based line and column).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("ODPS-0130161:[{line},{column}] Parse exception - {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    src: Vec<char>,
    /// Primary key columns met while reading a column list.
    primary_key: Vec<String>,
}

/// Parses one statement.
pub fn parse(sql: &str) -> Result<Statement, ParseError> {
    let src: Vec<char> = sql.chars().collect();
    let toks = match tokenize(&src) {
        Ok(t) => t,
        Err((at, message)) => {
            let p = Parser {
                toks: vec![],
                pos: 0,
                src,
                primary_key: Vec::new(),
            };
            return Err(p.error_at(at, message));
        }
    };
    let mut p = Parser {
        toks,
        pos: 0,
        src,
        primary_key: Vec::new(),
    };
    let stmt = p.statement()?;
    p.eat_sym(';');
    if p.pos < p.toks.len() {
        return Err(p.error("unexpected text after the statement"));
    }
    Ok(stmt)
}

impl Parser {
    fn error_at(&self, at: usize, message: String) -> ParseError {
        let before = &self.src[..at.min(self.src.len())];
        let line = before.iter().filter(|&&c| c == '\n').count() + 1;
        let column = before.iter().rev().take_while(|&&c| c != '\n').count() + 1;
        ParseError {
            line,
            column,
            message,
        }
    }

    fn error(&self, message: &str) -> ParseError {
        let at = self.toks.get(self.pos).map_or(self.src.len(), |t| t.1);
        let found = self
            .toks
            .get(self.pos)
            .map_or("end of statement".to_owned(), |t| {
                format!("'{}'", t.0.text())
            });
        self.error_at(at, format!("{message}, found {found}"))
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.is_kw(kw);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn kw(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {}", kw.to_ascii_uppercase())))
        }
    }

    fn eat_sym(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(&Tok::Sym(c));
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn sym(&mut self, c: char) -> Result<(), ParseError> {
        if self.eat_sym(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected '{c}'")))
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        match self.peek().cloned() {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => {
                self.pos += 1;
                Ok(w)
            }
            _ => Err(self.error("expected a name")),
        }
    }

    fn literal(&mut self) -> Result<String, ParseError> {
        match self.peek().cloned() {
            Some(Tok::Str(s)) | Some(Tok::Num(s)) => {
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.error("expected a literal")),
        }
    }

    fn table_ref(&mut self) -> Result<TableRef, ParseError> {
        let first = self.ident()?;
        if self.eat_sym('.') {
            let table = self.ident()?;
            Ok(TableRef {
                project: Some(first),
                table: table.to_ascii_lowercase(),
            })
        } else {
            Ok(TableRef {
                project: None,
                table: first.to_ascii_lowercase(),
            })
        }
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        if self.eat_kw("create") {
            self.kw("table")?;
            self.create_table()
        } else if self.eat_kw("drop") {
            self.kw("table")?;
            let if_exists = self.if_exists()?;
            Ok(Statement::DropTable {
                table: self.table_ref()?,
                if_exists,
            })
        } else if self.eat_kw("truncate") {
            self.kw("table")?;
            let table = self.table_ref()?;
            let partition = if self.is_kw("partition") {
                Some(self.partition_clause()?)
            } else {
                None
            };
            Ok(Statement::Truncate { table, partition })
        } else if self.eat_kw("alter") {
            self.kw("table")?;
            self.alter_table()
        } else if self.eat_kw("select") {
            self.select()
        } else {
            Err(self.error("the emulator supports CREATE TABLE, DROP TABLE, TRUNCATE TABLE, ALTER TABLE … ADD/DROP PARTITION and SELECT COUNT(*)/SELECT * only"))
        }
    }

    fn if_exists(&mut self) -> Result<bool, ParseError> {
        if self.eat_kw("if") {
            self.kw("exists")?;
            return Ok(true);
        }
        Ok(false)
    }

    fn if_not_exists(&mut self) -> Result<bool, ParseError> {
        if self.eat_kw("if") {
            self.kw("not")?;
            self.kw("exists")?;
            return Ok(true);
        }
        Ok(false)
    }

    fn create_table(&mut self) -> Result<Statement, ParseError> {
        let if_not_exists = self.if_not_exists()?;
        let table = self.table_ref()?;
        let columns = self.column_list()?;
        let primary_key = std::mem::take(&mut self.primary_key);
        let mut comment = String::new();
        let mut partition_keys = Vec::new();
        let mut lifecycle = None;
        let mut properties = Vec::new();
        loop {
            if self.eat_kw("comment") {
                comment = self.literal()?;
            } else if self.eat_kw("partitioned") {
                self.kw("by")?;
                partition_keys = self.column_list()?;
            } else if self.eat_kw("lifecycle") {
                let n = self.literal()?;
                lifecycle = Some(
                    n.parse()
                        .map_err(|_| self.error("expected a whole number of days"))?,
                );
            } else if self.eat_kw("tblproperties") {
                properties.extend(self.properties()?);
            } else {
                break;
            }
        }
        if !self.primary_key.is_empty() {
            return Err(self.error("PRIMARY KEY is only allowed on data columns"));
        }
        Ok(Statement::CreateTable {
            table,
            if_not_exists,
            columns,
            partition_keys,
            comment,
            lifecycle,
            primary_key,
            properties,
        })
    }

    fn column_list(&mut self) -> Result<Vec<Column>, ParseError> {
        self.sym('(')?;
        let mut columns = Vec::new();
        loop {
            if self.key_constraint()? {
                if !self.eat_sym(',') {
                    break;
                }
                continue;
            }
            let name = self.ident()?.to_ascii_lowercase();
            let type_at = self.pos;
            let mut text = String::new();
            let mut depth = 0i32;
            while let Some(tok) = self.peek().cloned() {
                let stop = match &tok {
                    Tok::Sym(',') | Tok::Sym(')') => depth == 0,
                    Tok::Word(w) => {
                        depth == 0
                            && ["comment", "not", "primary"]
                                .iter()
                                .any(|k| w.eq_ignore_ascii_case(k))
                    }
                    _ => false,
                };
                if stop {
                    break;
                }
                match tok {
                    Tok::Sym('<') | Tok::Sym('(') => depth += 1,
                    Tok::Sym('>') | Tok::Sym(')') => depth -= 1,
                    _ => {}
                }
                text.push_str(&tok.text());
                self.pos += 1;
            }
            let ty = OdpsType::parse(&text).map_err(|e| {
                let at = self.toks.get(type_at).map_or(self.src.len(), |t| t.1);
                self.error_at(at, e.to_string())
            })?;
            if self.eat_kw("not") {
                self.kw("null")?;
            }
            if self.eat_kw("primary") {
                self.kw("key")?;
                self.primary_key.push(name.clone());
            }
            let comment = if self.eat_kw("comment") {
                self.literal()?
            } else {
                String::new()
            };
            columns.push(Column { name, ty, comment });
            if !self.eat_sym(',') {
                break;
            }
        }
        self.sym(')')?;
        Ok(columns)
    }

    fn partition_clause(&mut self) -> Result<SpecPairs, ParseError> {
        self.kw("partition")?;
        self.sym('(')?;
        let mut pairs = Vec::new();
        loop {
            let key = self.ident()?.to_ascii_lowercase();
            self.sym('=')?;
            pairs.push((key, self.literal()?));
            if !self.eat_sym(',') {
                break;
            }
        }
        self.sym(')')?;
        Ok(pairs)
    }

    fn alter_table(&mut self) -> Result<Statement, ParseError> {
        let table = self.table_ref()?;
        if self.eat_kw("add") {
            let if_not_exists = self.if_not_exists()?;
            let mut specs = vec![self.partition_clause()?];
            while self.is_kw("partition") {
                specs.push(self.partition_clause()?);
            }
            Ok(Statement::AddPartitions {
                table,
                if_not_exists,
                specs,
            })
        } else if self.eat_kw("drop") {
            let if_exists = self.if_exists()?;
            let mut specs = vec![self.partition_clause()?];
            while self.eat_sym(',') || self.is_kw("partition") {
                specs.push(self.partition_clause()?);
            }
            Ok(Statement::DropPartitions {
                table,
                if_exists,
                specs,
            })
        } else {
            Err(self
                .error("the emulator supports ALTER TABLE … ADD PARTITION and DROP PARTITION only"))
        }
    }

    fn select(&mut self) -> Result<Statement, ParseError> {
        let count = if self.eat_kw("count") {
            self.sym('(')?;
            self.sym('*')?;
            self.sym(')')?;
            let explicit = self.eat_kw("as");
            let alias = if explicit || !self.is_kw("from") {
                self.ident()?
            } else {
                "_c0".to_owned()
            };
            Some(alias)
        } else {
            self.sym('*')?;
            None
        };
        self.kw("from")?;
        let table = self.table_ref()?;
        let mut filter = Vec::new();
        if self.eat_kw("where") {
            loop {
                let key = self.ident()?.to_ascii_lowercase();
                self.sym('=')?;
                filter.push((key, self.literal()?));
                if !self.eat_kw("and") {
                    break;
                }
            }
        }
        match count {
            Some(alias) => Ok(Statement::SelectCount {
                table,
                alias,
                filter,
            }),
            None => {
                let limit = if self.eat_kw("limit") {
                    let n = self.literal()?;
                    Some(n.parse().map_err(|_| self.error("expected a row count"))?)
                } else {
                    None
                };
                Ok(Statement::SelectAll {
                    table,
                    filter,
                    limit,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(project: Option<&str>, table: &str) -> TableRef {
        TableRef {
            project: project.map(Into::into),
            table: table.into(),
        }
    }

    #[test]
    fn create_table_with_types_comments_and_partitions() {
        let stmt = parse(
            "CREATE TABLE IF NOT EXISTS p.`T1` (a bigint COMMENT 'x', m map<string, array<bigint>>, d decimal(10, 2) NOT NULL)\n PARTITIONED BY (pt string, region string) LIFECYCLE 7;",
        )
        .unwrap();
        let Statement::CreateTable {
            table,
            if_not_exists,
            columns,
            partition_keys,
            lifecycle,
            ..
        } = stmt
        else {
            panic!("not a create");
        };
        assert_eq!(table, t(Some("p"), "t1"));
        assert!(if_not_exists);
        assert_eq!(columns.len(), 3);
        assert_eq!(columns[0].comment, "x");
        assert_eq!(columns[1].ty.to_string(), "map<string,array<bigint>>");
        assert_eq!(columns[2].ty.to_string(), "decimal(10,2)");
        assert_eq!(partition_keys.len(), 2);
        assert_eq!(lifecycle, Some(7));
    }

    #[test]
    fn partition_statements_as_pyodps_and_datax_write_them() {
        assert_eq!(
            parse("alter table datax_pt add IF NOT EXISTS partition(pt='20240101',region='hz');")
                .unwrap(),
            Statement::AddPartitions {
                table: t(None, "datax_pt"),
                if_not_exists: true,
                specs: vec![vec![
                    ("pt".into(), "20240101".into()),
                    ("region".into(), "hz".into())
                ]],
            }
        );
        assert!(matches!(
            parse("ALTER TABLE localcloud.`t` DROP IF EXISTS PARTITION (pt='1'), PARTITION (pt='2')").unwrap(),
            Statement::DropPartitions { if_exists: true, ref specs, .. } if specs.len() == 2
        ));
        assert!(matches!(
            parse("TRUNCATE TABLE localcloud.`t` PARTITION (pt='1')").unwrap(),
            Statement::Truncate {
                partition: Some(_),
                ..
            }
        ));
        assert_eq!(
            parse("truncate table datax_t;").unwrap(),
            Statement::Truncate {
                table: t(None, "datax_t"),
                partition: None
            }
        );
    }

    #[test]
    fn selects() {
        assert_eq!(
            parse("select count(*) from t where pt = '1' and region='hz'").unwrap(),
            Statement::SelectCount {
                table: t(None, "t"),
                alias: "_c0".into(),
                filter: vec![("pt".into(), "1".into()), ("region".into(), "hz".into())],
            }
        );
        assert_eq!(
            parse("SELECT * FROM t LIMIT 5").unwrap(),
            Statement::SelectAll {
                table: t(None, "t"),
                filter: vec![],
                limit: Some(5)
            }
        );
    }

    #[test]
    fn unsupported_statements_get_positioned_parse_errors() {
        let e = parse("insert into t values (1)").unwrap_err();
        assert_eq!((e.line, e.column), (1, 1));
        assert!(e
            .to_string()
            .starts_with("ODPS-0130161:[1,1] Parse exception"));
        let e = parse("select a from t").unwrap_err();
        assert_eq!((e.line, e.column), (1, 8));
        let e = parse("create table t (a bigint,\n b nosuchtype)").unwrap_err();
        assert_eq!((e.line, e.column), (2, 4));
        assert!(parse("drop table t; drop table u").is_err());
    }
}
