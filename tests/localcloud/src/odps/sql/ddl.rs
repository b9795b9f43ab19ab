//! The Delta-table parts of `CREATE TABLE`: the `PRIMARY KEY (…)` constraint and
//! `TBLPROPERTIES (…)`.

use super::super::sql_lex::Tok;
use super::{ParseError, Parser};

impl Parser {
    /// `PRIMARY KEY (a, …)` as an entry of a column list; false (nothing read) if
    /// the entry is a column.
    pub(super) fn key_constraint(&mut self) -> Result<bool, ParseError> {
        let is_constraint = self.is_kw("primary")
            && matches!(self.toks.get(self.pos + 1), Some((Tok::Word(w), _)) if w.eq_ignore_ascii_case("key"))
            && matches!(self.toks.get(self.pos + 2), Some((Tok::Sym('('), _)));
        if !is_constraint {
            return Ok(false);
        }
        self.pos += 2;
        self.sym('(')?;
        loop {
            let key = self.ident()?.to_ascii_lowercase();
            self.primary_key.push(key);
            if !self.eat_sym(',') {
                break;
            }
        }
        self.sym(')')?;
        Ok(true)
    }

    /// `('k' = 'v', …)` after TBLPROPERTIES; keys lower-case.
    pub(super) fn properties(&mut self) -> Result<Vec<(String, String)>, ParseError> {
        self.sym('(')?;
        let mut pairs = Vec::new();
        loop {
            let key = self.literal()?.to_ascii_lowercase();
            self.sym('=')?;
            pairs.push((key, self.literal()?));
            if !self.eat_sym(',') {
                break;
            }
        }
        self.sym(')')?;
        Ok(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse, Statement};

    fn keys_and_properties(sql: &str) -> (Vec<String>, Vec<(String, String)>) {
        match parse(sql).unwrap() {
            Statement::CreateTable {
                primary_key,
                properties,
                ..
            } => (primary_key, properties),
            other => panic!("not a create: {other:?}"),
        }
    }

    #[test]
    fn primary_keys_inline_or_as_a_constraint_and_properties() {
        // pyodps `Table.gen_create_table_sql(…, transactional=True, primary_key=[…])`.
        let (pk, props) = keys_and_properties(
            "CREATE TABLE `t` (\n  `k` BIGINT NOT NULL,\n  `s` STRING,\n  PRIMARY KEY (`k`, `s`)\n)\nTBLPROPERTIES (\n  'transactional' = 'true'\n)\n",
        );
        assert_eq!(pk, vec!["k", "s"]);
        assert_eq!(props, vec![("transactional".to_owned(), "true".to_owned())]);
        let (pk, props) = keys_and_properties(
            "create table t (k bigint not null primary key, v string) tblproperties (\"transactional\"=\"true\", \"Write.Bucket.Num\"=\"4\")",
        );
        assert_eq!(pk, vec!["k"]);
        assert_eq!(props[1], ("write.bucket.num".to_owned(), "4".to_owned()));
        let (pk, props) = keys_and_properties("create table t (k bigint)");
        assert!(pk.is_empty() && props.is_empty());
    }

    #[test]
    fn misplaced_keys_are_parse_errors() {
        assert!(parse("create table t (k bigint) partitioned by (pt string primary key)").is_err());
        assert!(parse("create table t (k bigint, primary key ())").is_err());
        assert!(parse("create table t (k bigint) tblproperties ('a')").is_err());
    }
}
