//! Handlers of the service endpoint (`/api`): project, tunnel discovery, table
//! metadata, partitions, SQL instances.

use super::error::{OdpsError, OdpsResult};
use super::render;
use super::routes::Route;
use super::server::{Call, Odps, Reply};
use super::sql_exec;
use super::state::{parse_spec, Catalog, Instance, TaskOutcome};

/// Runs one service operation.
pub fn handle(odps: &Odps, call: &Call<'_>) -> OdpsResult<Reply> {
    let mut catalog = odps.catalog();
    match &call.route {
        Route::GetProject { project } => {
            catalog.project(project)?;
            Ok(Reply::xml(render::project_xml(project, odps.started_ms)))
        }
        Route::GetTunnelEndpoint { project } => {
            catalog.project(project)?;
            // The tunnel is served at the root of this same port.
            let mut reply = Reply::empty(200);
            reply.body = call.host.clone().into_bytes();
            Ok(reply)
        }
        Route::ListTables { project } => {
            let prefix = call.query.get("name").unwrap_or("").to_ascii_lowercase();
            let tables: Vec<_> = catalog
                .project(project)?
                .tables
                .values()
                .filter(|t| t.name.starts_with(&prefix))
                .collect();
            Ok(Reply::xml(render::tables_xml(project, &tables)))
        }
        Route::GetTable { project, table } => {
            let t = catalog.table(project, table)?;
            Ok(Reply::xml(render::table_xml(project, t)))
        }
        Route::ListPartitions { project, table } => {
            let t = catalog.table(project, table)?;
            let prefix = match call.query.get("partition").filter(|s| !s.is_empty()) {
                Some(spec) => t.partition_values(&parse_spec(spec)?, true)?,
                None => Vec::new(),
            };
            let keys: Vec<&Vec<String>> = if t.is_partitioned() {
                t.partitions
                    .keys()
                    .filter(|k| k.starts_with(&prefix))
                    .collect()
            } else {
                Vec::new()
            };
            Ok(Reply::xml(render::partitions_xml(t, &keys)))
        }
        Route::GetPartition {
            project,
            table,
            spec,
        } => {
            let t = catalog.table(project, table)?;
            let key = t.partition_values(&parse_spec(spec)?, false)?;
            if !t.partitions.contains_key(&key) {
                return Err(OdpsError::no_such_partition(&t.spec_string(&key, false)));
            }
            Ok(Reply::xml(render::partition_xml(t, &key)))
        }
        Route::CreateInstance { project } => create_instance(&mut catalog, project, call),
        Route::GetInstance { project, instance } => {
            let i = instance_of(&catalog, project, instance)?;
            let mut reply = Reply::xml(render::instance_status_xml());
            let date = render::http_date(i.created_ms);
            reply.headers = vec![
                ("x-odps-owner", render::OWNER.to_owned()),
                ("x-odps-start-time", date.clone()),
                ("x-odps-end-time", date),
            ];
            Ok(reply)
        }
        Route::GetTaskStatus { project, instance } => {
            let i = instance_of(&catalog, project, instance)?;
            let success = !matches!(i.outcome, TaskOutcome::Failed(_));
            Ok(Reply::xml(render::task_status_xml(
                &i.task_name,
                success,
                i.created_ms,
            )))
        }
        Route::GetTaskResult { project, instance } => {
            let i = instance_of(&catalog, project, instance)?;
            let text = match &i.outcome {
                TaskOutcome::Done(text) | TaskOutcome::Failed(text) => text.clone(),
                TaskOutcome::ResultSet { columns, rows } => {
                    super::values::result_csv(columns, rows)
                }
            };
            Ok(Reply::xml(render::task_result_xml(&i.task_name, &text)))
        }
        Route::GetInstanceSource { project, instance } => {
            let i = instance_of(&catalog, project, instance)?;
            Ok(Reply::xml(i.job_xml.clone()))
        }
        other => Err(OdpsError::invalid_argument(format!(
            "{} is a tunnel operation",
            other.operation()
        ))),
    }
}

fn instance_of<'c>(catalog: &'c Catalog, project: &str, id: &str) -> OdpsResult<&'c Instance> {
    catalog.project(project)?.instances.get(id).ok_or_else(|| {
        OdpsError::new(
            404,
            "NoSuchObject",
            format!("ODPS-0420111: Instance not found - {id}"),
        )
    })
}

fn create_instance(catalog: &mut Catalog, project: &str, call: &Call<'_>) -> OdpsResult<Reply> {
    catalog.project(project)?;
    let tasks = render::parse_instance_xml(&call.body).map_err(OdpsError::invalid_argument)?;
    let [task] = tasks.as_slice() else {
        return Err(OdpsError::invalid_argument(
            "the emulator runs jobs with exactly one task",
        ));
    };
    if task.kind != "SQL" {
        return Err(OdpsError::invalid_argument(format!(
            "task type {} is not supported",
            task.kind
        )));
    }
    let outcome = sql_exec::run(catalog, project, &task.query, call.now_ms / 1000);
    let seq = catalog.next_id();
    let stamp = chrono::DateTime::from_timestamp_millis(call.now_ms)
        .map(|t| t.format("%Y%m%d%H%M%S%3f").to_string())
        .unwrap_or_default();
    let id = format!("{stamp}g{seq:012x}");
    let instance = Instance {
        task_name: task.name.clone(),
        job_xml: String::from_utf8_lossy(&call.body).into_owned(),
        created_ms: call.now_ms,
        outcome,
    };
    catalog
        .project_mut(project)?
        .instances
        .insert(id.clone(), instance);
    let mut reply = Reply::empty(201);
    reply.headers = vec![(
        "location",
        format!("http://{}/api/projects/{project}/instances/{id}", call.host),
    )];
    Ok(reply)
}
