//! Runs parsed SQL statements against the catalogue. Failures become the task's
//! error text in the service's format (`ODPS-0130131:… Table not found - …`,
//! `ODPS-0130071:… Semantic analysis exception - …`).

use std::collections::BTreeSet;

use super::delta;
use super::sql::{self, SpecPairs, Statement, TableRef};
use super::state::{Catalog, Column, Partition, Table, TaskOutcome};
use super::types::{OdpsType, Row, Value};

fn semantic(message: impl std::fmt::Display) -> String {
    format!("ODPS-0130071:[1,1] Semantic analysis exception - {message}")
}

fn table_not_found(project: &str, table: &str) -> String {
    format!("ODPS-0130131:[1,1] Table not found - table {project}.{table} cannot be resolved")
}

/// Parses and runs `query` in `project` (the instance's project).
pub fn run(catalog: &mut Catalog, project: &str, query: &str, now_s: i64) -> TaskOutcome {
    let stmt = match sql::parse(query) {
        Ok(s) => s,
        Err(e) => return TaskOutcome::Failed(e.to_string()),
    };
    match execute(catalog, project, stmt, now_s) {
        Ok(outcome) => outcome,
        Err(text) => TaskOutcome::Failed(text),
    }
}

fn resolve<'a>(
    catalog: &Catalog,
    default_project: &'a str,
    t: &'a TableRef,
) -> Result<&'a str, String> {
    let project = t.project.as_deref().unwrap_or(default_project);
    if !catalog.projects.contains_key(project) {
        return Err(format!("ODPS-0420111: Project not found - '{project}'."));
    }
    Ok(project)
}

fn table_mut<'c>(
    catalog: &'c mut Catalog,
    project: &str,
    t: &TableRef,
) -> Result<&'c mut Table, String> {
    catalog
        .table_mut(project, &t.table)
        .map_err(|_| table_not_found(project, &t.table))
}

/// The table of an ADD or DROP PARTITION statement, and the values of its partitions.
fn named_partitions<'c>(
    catalog: &'c mut Catalog,
    default_project: &str,
    table: &TableRef,
    specs: &[SpecPairs],
) -> Result<(&'c mut Table, Vec<Vec<String>>), String> {
    let project = resolve(catalog, default_project, table)?.to_owned();
    let t = table_mut(catalog, &project, table)?;
    let keys = specs
        .iter()
        .map(|s| spec_values(t, s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((t, keys))
}

fn execute(
    catalog: &mut Catalog,
    default_project: &str,
    stmt: Statement,
    now_s: i64,
) -> Result<TaskOutcome, String> {
    let ok = || Ok(TaskOutcome::Done("OK".to_owned()));
    match stmt {
        Statement::CreateTable {
            table,
            if_not_exists,
            columns,
            partition_keys,
            comment,
            lifecycle,
            primary_key,
            properties,
        } => {
            let project = resolve(catalog, default_project, &table)?.to_owned();
            check_new_columns(&columns, &partition_keys)?;
            delta::check_ddl(&columns, &partition_keys, &primary_key, &properties)
                .map_err(semantic)?;
            let tables = &mut catalog.project_mut(&project).map_err(|e| e.message)?.tables;
            if tables.contains_key(&table.table) {
                if if_not_exists {
                    return ok();
                }
                return Err(semantic(format_args!(
                    "Table or view already exists - {project}.{}",
                    table.table
                )));
            }
            let mut new = Table::new(&table.table, columns, partition_keys, now_s);
            new.comment = comment;
            new.lifecycle = lifecycle.unwrap_or(-1);
            new.primary_key = primary_key;
            new.properties = properties.into_iter().collect();
            tables.insert(table.table.clone(), new);
            ok()
        }
        Statement::DropTable { table, if_exists } => {
            let project = resolve(catalog, default_project, &table)?.to_owned();
            let tables = &mut catalog.project_mut(&project).map_err(|e| e.message)?.tables;
            if tables.remove(&table.table).is_none() && !if_exists {
                return Err(table_not_found(&project, &table.table));
            }
            ok()
        }
        Statement::Truncate { table, partition } => {
            let project = resolve(catalog, default_project, &table)?.to_owned();
            let t = table_mut(catalog, &project, &table)?;
            let key = match (partition, t.is_partitioned()) {
                (None, false) => Vec::new(),
                (None, true) => {
                    return Err(semantic(format_args!(
                        "table {project}.{} is partitioned: TRUNCATE needs a PARTITION clause",
                        t.name
                    )))
                }
                (Some(spec), _) => spec_values(t, &spec)?,
            };
            let spec_text = t.spec_string(&key, true);
            let part = t
                .partitions
                .get_mut(&key)
                .ok_or_else(|| semantic(format_args!("partition {spec_text} does not exist")))?;
            part.clear();
            part.modified_s = now_s;
            t.modified_s = now_s;
            ok()
        }
        Statement::AddPartitions {
            table,
            if_not_exists,
            specs,
        } => {
            let (t, keys) = named_partitions(catalog, default_project, &table, &specs)?;
            for key in &keys {
                if t.partitions.contains_key(key) && !if_not_exists {
                    return Err(semantic(format_args!(
                        "partition {} already exists",
                        t.spec_string(key, true)
                    )));
                }
            }
            for key in keys {
                t.partitions
                    .entry(key)
                    .or_insert_with(|| Partition::new(now_s));
            }
            t.ddl_s = now_s;
            ok()
        }
        Statement::DropPartitions {
            table,
            if_exists,
            specs,
        } => {
            let (t, keys) = named_partitions(catalog, default_project, &table, &specs)?;
            for key in &keys {
                if !t.partitions.contains_key(key) && !if_exists {
                    return Err(semantic(format_args!(
                        "partition {} does not exist",
                        t.spec_string(key, true)
                    )));
                }
            }
            for key in keys {
                t.partitions.remove(&key);
            }
            t.ddl_s = now_s;
            ok()
        }
        Statement::SelectCount {
            table,
            alias,
            filter,
        } => {
            let project = resolve(catalog, default_project, &table)?.to_owned();
            let t = catalog
                .table(&project, &table.table)
                .map_err(|_| table_not_found(&project, &table.table))?;
            let count: usize = matching(t, &filter)?.map(|(_, p)| p.len()).sum();
            Ok(TaskOutcome::ResultSet {
                columns: vec![Column {
                    name: alias,
                    ty: OdpsType::Bigint,
                    comment: String::new(),
                }],
                rows: vec![vec![Some(Value::Int(count as i64))]],
            })
        }
        Statement::SelectAll {
            table,
            filter,
            limit,
        } => {
            let project = resolve(catalog, default_project, &table)?.to_owned();
            let t = catalog
                .table_mut(&project, &table.table)
                .map_err(|_| table_not_found(&project, &table.table))?;
            t.decode().map_err(|e| e.message)?;
            let t = &*t;
            let mut rows: Vec<Row> = Vec::new();
            for (key, part) in matching(t, &filter)? {
                for row in part.rows().map_err(|e| e.message)? {
                    let mut out = row.clone();
                    out.resize(t.columns.len(), None);
                    out.extend(key.iter().enumerate().map(|(i, v)| t.partition_value(i, v)));
                    rows.push(out);
                }
            }
            if let Some(n) = limit {
                rows.truncate(usize::try_from(n).unwrap_or(usize::MAX));
            }
            let mut columns = t.columns.clone();
            columns.extend(t.partition_keys.iter().cloned());
            Ok(TaskOutcome::ResultSet { columns, rows })
        }
    }
}

fn spec_values(t: &Table, spec: &SpecPairs) -> Result<Vec<String>, String> {
    t.partition_values(spec, false)
        .map_err(|e| semantic(e.message))
}

fn matching<'t>(
    t: &'t Table,
    filter: &SpecPairs,
) -> Result<impl Iterator<Item = (&'t Vec<String>, &'t Partition)> + 't, String> {
    let mut conditions = Vec::new();
    for (k, v) in filter {
        let i = t
            .partition_keys
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(k))
            .ok_or_else(|| {
                semantic(format_args!(
                    "the emulator filters on partition keys only; {k} is not one of {}",
                    t.name
                ))
            })?;
        conditions.push((i, v.clone()));
    }
    Ok(t.partitions
        .iter()
        .filter(move |(key, _)| conditions.iter().all(|(i, v)| key.get(*i) == Some(v))))
}

fn check_new_columns(columns: &[Column], partition_keys: &[Column]) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for c in columns.iter().chain(partition_keys) {
        if !seen.insert(c.name.clone()) {
            return Err(semantic(format_args!("column {} is defined twice", c.name)));
        }
    }
    for k in partition_keys {
        let allowed = matches!(
            k.ty,
            OdpsType::String
                | OdpsType::Varchar(_)
                | OdpsType::Char(_)
                | OdpsType::Bigint
                | OdpsType::Int
                | OdpsType::Smallint
                | OdpsType::Tinyint
        );
        if !allowed {
            return Err(semantic(format_args!(
                "partition key {} cannot have type {}",
                k.name, k.ty
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome_ok(o: &TaskOutcome) -> bool {
        matches!(o, TaskOutcome::Done(t) if t == "OK")
    }

    fn count(c: &mut Catalog, sql: &str) -> i64 {
        match run(c, "p", sql, 0) {
            TaskOutcome::ResultSet { rows, .. } => match rows[0][0] {
                Some(Value::Int(n)) => n,
                _ => -1,
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ddl_lifecycle() {
        let mut c = Catalog::with_project("p");
        assert!(outcome_ok(&run(
            &mut c,
            "p",
            "create table t (a bigint) partitioned by (pt string)",
            0
        )));
        assert!(
            matches!(run(&mut c, "p", "create table t (a bigint)", 0), TaskOutcome::Failed(e) if e.contains("already exists"))
        );
        assert!(outcome_ok(&run(
            &mut c,
            "p",
            "create table if not exists t (a bigint)",
            0
        )));
        assert!(outcome_ok(&run(
            &mut c,
            "p",
            "alter table t add partition (pt='1')",
            0
        )));
        assert!(matches!(
            run(&mut c, "p", "alter table t add partition (pt='1')", 0),
            TaskOutcome::Failed(_)
        ));
        assert!(outcome_ok(&run(
            &mut c,
            "p",
            "alter table p.t add if not exists partition (pt='1') partition (pt='2')",
            0
        )));
        assert_eq!(c.table("p", "t").unwrap().partitions.len(), 2);
        c.table_mut("p", "t")
            .unwrap()
            .partitions
            .get_mut(&vec!["1".to_owned()])
            .unwrap()
            .rows_mut()
            .unwrap()
            .push(vec![Some(Value::Int(1))]);
        assert_eq!(count(&mut c, "select count(*) from t"), 1);
        assert_eq!(count(&mut c, "select count(*) from t where pt='2'"), 0);
        assert!(matches!(
            run(&mut c, "p", "truncate table t", 0),
            TaskOutcome::Failed(_)
        ));
        assert!(outcome_ok(&run(
            &mut c,
            "p",
            "truncate table t partition (pt='1')",
            0
        )));
        assert_eq!(count(&mut c, "select count(*) from t"), 0);
        assert!(outcome_ok(&run(
            &mut c,
            "p",
            "alter table t drop partition (pt='1')",
            0
        )));
        assert!(matches!(
            run(&mut c, "p", "alter table t drop partition (pt='1')", 0),
            TaskOutcome::Failed(_)
        ));
        assert!(outcome_ok(&run(&mut c, "p", "drop table t", 0)));
        assert!(
            matches!(run(&mut c, "p", "drop table t", 0), TaskOutcome::Failed(e) if e.starts_with("ODPS-0130131"))
        );
        assert!(outcome_ok(&run(&mut c, "p", "drop table if exists t", 0)));
        assert!(
            matches!(run(&mut c, "p", "select * from q.t", 0), TaskOutcome::Failed(e) if e.starts_with("ODPS-0420111"))
        );
    }

    #[test]
    fn select_star_appends_typed_partition_values() {
        let mut c = Catalog::with_project("p");
        run(
            &mut c,
            "p",
            "create table t (a string) partitioned by (pt bigint)",
            0,
        );
        run(&mut c, "p", "alter table t add partition (pt=7)", 0);
        c.table_mut("p", "t")
            .unwrap()
            .partitions
            .get_mut(&vec!["7".to_owned()])
            .unwrap()
            .rows_mut()
            .unwrap()
            .push(vec![None]);
        let TaskOutcome::ResultSet { columns, rows } =
            run(&mut c, "p", "select * from t where pt=7", 0)
        else {
            panic!("no result set");
        };
        assert_eq!(columns.len(), 2);
        assert_eq!(rows, vec![vec![None, Some(Value::Int(7))]]);
        assert!(matches!(
            run(&mut c, "p", "select * from t where a='x'", 0),
            TaskOutcome::Failed(_)
        ));
    }
}
