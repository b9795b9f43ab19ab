//! Table operations: CreateTable, ListTable, DescribeTable, UpdateTable, DeleteTable
//! (spec §2.3), including the stream specification.

use std::collections::BTreeMap;

use prost::Message;

use super::error::{OtsError, OtsResult};
use super::pb;
use super::state::{valid_name, Instance, Options, PkColumn, PkType, Table};
use super::stream::StreamState;
use super::writes::Now;

/// Tables an instance may hold (the service's default quota is 64).
pub const MAX_TABLES: usize = 64;
const DEFAULT_DEVIATION_S: i64 = 86_400;

fn check_stream_spec(spec: &pb::StreamSpecification) -> OtsResult<Option<i32>> {
    let enable = pb::required(spec.enable_stream, "stream_spec.enable_stream")?;
    if !enable {
        return Ok(None);
    }
    let hours = pb::required(spec.expiration_time, "stream_spec.expiration_time")?;
    if !(1..=168).contains(&hours) {
        return Err(OtsError::invalid(format!(
            "Invalid stream expiration time: {hours}, it must be within [1, 168] hours."
        )));
    }
    if !spec.columns_to_get.is_empty() {
        return Err(OtsError::invalid(
            "Stream columns_to_get is not supported by this emulator.",
        ));
    }
    Ok(Some(hours))
}

fn apply_options(options: &mut Options, given: &pb::TableOptions) -> OtsResult<()> {
    if let Some(ttl) = given.time_to_live {
        if ttl != -1 && ttl < 86_400 {
            return Err(OtsError::invalid(format!(
                "Invalid time_to_live: {ttl}, it must be -1 or at least 86400 seconds."
            )));
        }
        options.time_to_live_s = ttl;
    }
    if let Some(max) = given.max_versions {
        if max < 1 {
            return Err(OtsError::invalid(format!(
                "Invalid max_versions: {max}, it must be at least 1."
            )));
        }
        options.max_versions = max;
    }
    if let Some(dev) = given.deviation_cell_version_in_sec {
        if dev < 1 {
            return Err(OtsError::invalid(format!(
                "Invalid deviation_cell_version_in_sec: {dev}."
            )));
        }
        options.deviation_cell_version_s = dev;
    }
    Ok(())
}

/// CreateTable.
pub fn create(db: &mut Instance, body: &[u8], now: Now) -> OtsResult<Vec<u8>> {
    let req: pb::CreateTableRequest = pb::decode(body)?;
    let meta = pb::required(req.table_meta, "table_meta")?;
    pb::required(req.reserved_throughput.as_ref(), "reserved_throughput")?;
    let name = pb::required(meta.table_name, "table_meta.table_name")?;
    if !valid_name(&name, 255) {
        return Err(OtsError::invalid(format!("Invalid table name: '{name}'.")));
    }
    if meta.primary_key.is_empty() || meta.primary_key.len() > 4 {
        return Err(OtsError::invalid(
            "The number of primary key columns must be in range: [1, 4].",
        ));
    }
    let mut primary_key = Vec::new();
    for (i, pk) in meta.primary_key.iter().enumerate() {
        let pk_name = pb::required(pk.name.clone(), "primary_key.name")?;
        let pk_type = pb::required(pk.r#type, "primary_key.type")?;
        let pk_type = PkType::from_proto(pk_type)
            .ok_or_else(|| OtsError::invalid(format!("Invalid primary key type: {pk_type}.")))?;
        let auto_increment = match pk.option {
            None => false,
            Some(1) if i > 0 && pk_type == PkType::Integer => true,
            Some(_) => return Err(OtsError::invalid("Invalid primary key option.")),
        };
        if !valid_name(&pk_name, 255) || primary_key.iter().any(|c: &PkColumn| c.name == pk_name) {
            return Err(OtsError::invalid(format!(
                "Invalid primary key name: '{pk_name}'."
            )));
        }
        primary_key.push(PkColumn {
            name: pk_name,
            pk_type,
            auto_increment,
        });
    }
    let mut defined_columns = Vec::new();
    for c in &meta.defined_column {
        let n = pb::required(c.name.clone(), "defined_column.name")?;
        defined_columns.push((n, pb::required(c.r#type, "defined_column.type")?));
    }
    if !req.partitions.is_empty() || req.sse_spec.is_some() || !req.index_metas.is_empty() {
        return Err(OtsError::invalid(
            "Partitions, SSE and indexes are not supported by this emulator.",
        ));
    }
    let mut options = Options {
        time_to_live_s: -1,
        max_versions: 1,
        deviation_cell_version_s: DEFAULT_DEVIATION_S,
    };
    if let Some(given) = &req.table_options {
        apply_options(&mut options, given)?;
    }
    let stream_hours = match &req.stream_spec {
        Some(spec) => check_stream_spec(spec)?,
        None => None,
    };
    if db.tables.contains_key(&name) {
        return Err(OtsError::new(
            409,
            "OTSObjectAlreadyExist",
            "Requested table already exists.",
        ));
    }
    if db.tables.len() >= MAX_TABLES {
        return Err(OtsError::new(
            403,
            "OTSQuotaExhausted",
            "Number of tables exceeded the quota.",
        ));
    }
    let stream = stream_hours.map(|h| StreamState::new(&name, now.us, h));
    db.tables.insert(
        name.clone(),
        Table {
            name,
            primary_key,
            defined_columns,
            options,
            created_ms: now.ms,
            rows: BTreeMap::new(),
            stream,
            auto_increment_next: 1,
            last_commit_us: now.us,
        },
    );
    Ok(Vec::new())
}

/// ListTable.
pub fn list(db: &Instance) -> OtsResult<Vec<u8>> {
    Ok(pb::ListTableResponse {
        table_names: db.tables.keys().cloned().collect(),
    }
    .encode_to_vec())
}

fn table_name(body: &[u8]) -> OtsResult<String> {
    let req: pb::TableNameRequest = pb::decode(body)?;
    pb::required(req.table_name, "table_name")
}

fn throughput(table: &Table) -> pb::ReservedThroughputDetails {
    pb::ReservedThroughputDetails {
        capacity_unit: pb::CapacityUnit {
            read: Some(0),
            write: Some(0),
        },
        last_increase_time: table.created_ms / 1000,
        last_decrease_time: None,
    }
}

fn options_proto(table: &Table) -> pb::TableOptions {
    pb::TableOptions {
        time_to_live: Some(table.options.time_to_live_s),
        max_versions: Some(table.options.max_versions),
        deviation_cell_version_in_sec: Some(table.options.deviation_cell_version_s),
        allow_update: None,
    }
}

fn stream_details(table: &Table) -> pb::StreamDetails {
    match &table.stream {
        Some(s) => pb::StreamDetails {
            enable_stream: true,
            stream_id: Some(s.stream_id.clone()),
            expiration_time: Some(s.expiration_hours),
            last_enable_time: Some(s.creation_us),
        },
        None => pb::StreamDetails {
            enable_stream: false,
            stream_id: None,
            expiration_time: None,
            last_enable_time: None,
        },
    }
}

/// DescribeTable.
pub fn describe(db: &Instance, body: &[u8]) -> OtsResult<Vec<u8>> {
    let table = db.table(&table_name(body)?)?;
    let meta = pb::TableMeta {
        table_name: Some(table.name.clone()),
        primary_key: table
            .primary_key
            .iter()
            .map(|c| pb::PrimaryKeySchema {
                name: Some(c.name.clone()),
                r#type: Some(c.pk_type as i32),
                option: c.auto_increment.then_some(1),
            })
            .collect(),
        defined_column: table
            .defined_columns
            .iter()
            .map(|(n, t)| pb::DefinedColumnSchema {
                name: Some(n.clone()),
                r#type: Some(*t),
            })
            .collect(),
    };
    Ok(pb::DescribeTableResponse {
        table_meta: meta,
        reserved_throughput_details: throughput(table),
        table_options: options_proto(table),
        table_status: Some(1),
        stream_details: Some(stream_details(table)),
        shard_splits: Vec::new(),
        creation_time: Some(table.created_ms * 1000),
    }
    .encode_to_vec())
}

/// UpdateTable: table options and the stream (enabling a disabled stream creates a new
/// one; disabling drops the stream and its records).
pub fn update(db: &mut Instance, body: &[u8], now: Now) -> OtsResult<Vec<u8>> {
    let req: pb::UpdateTableRequest = pb::decode(body)?;
    let name = pb::required(req.table_name, "table_name")?;
    let table = db.table_mut(&name)?;
    let mut options = table.options;
    if let Some(given) = &req.table_options {
        apply_options(&mut options, given)?;
    }
    let stream_change = match &req.stream_spec {
        Some(spec) => Some(check_stream_spec(spec)?),
        None => None,
    };
    table.options = options;
    match stream_change {
        None => {}
        Some(None) => table.stream = None,
        Some(Some(hours)) => match table.stream.as_mut() {
            Some(existing) => existing.expiration_hours = hours,
            None => {
                let created = now.us.max(table.last_commit_us + 1);
                table.last_commit_us = created;
                table.stream = Some(StreamState::new(&name, created, hours));
            }
        },
    }
    Ok(pb::UpdateTableResponse {
        reserved_throughput_details: throughput(table),
        table_options: options_proto(table),
        stream_details: Some(stream_details(table)),
    }
    .encode_to_vec())
}

/// DeleteTable.
pub fn delete(db: &mut Instance, body: &[u8]) -> OtsResult<Vec<u8>> {
    let name = table_name(body)?;
    db.tables.remove(&name).ok_or_else(OtsError::no_table)?;
    Ok(Vec::new())
}
