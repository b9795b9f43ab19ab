//! Printing, saving or discarding records.

use std::io::Write;

use protocol::jsonl::record_to_line;
use protocol::message::Role;
use protocol::runtime::{
    ParameterSpec, Plugin, PluginError, PluginInfo, RecordSource, StepContext, TaskContext, Writer,
    WriterOutput,
};
use protocol::value::Value;
use serde_json::{json, Value as Json};

use crate::config::{parameters, LineFormat, SinkConfig};

/// The plugin.
pub struct StreamWriter;

impl Plugin for StreamWriter {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "writer-stream",
            version: env!("CARGO_PKG_VERSION"),
            role: Role::Writer,
            about: "Prints records as text or JSON lines, writes them to a file, or discards them (DataX streamwriter)",
        }
    }

    fn parameters(&self) -> Vec<ParameterSpec> {
        parameters()
    }

    fn check(&self, ctx: &StepContext) -> Result<(), PluginError> {
        SinkConfig::from_parameter(&ctx.parameter, &ctx.job.time_zone).map(drop)
    }

    fn split(&self, ctx: &StepContext, count: usize) -> Result<Vec<Json>, PluginError> {
        SinkConfig::from_parameter(&ctx.parameter, &ctx.job.time_zone)?;
        // Every task gets the same parameter; a task learns its index from its
        // JobContext (`task.job.task_index`).
        Ok(vec![ctx.parameter.clone(); count])
    }

    fn post(&self, _ctx: &StepContext, reports: &[Json]) -> Result<(), PluginError> {
        let records: u64 = reports
            .iter()
            .filter_map(|r| r.get("records").and_then(Json::as_u64))
            .sum();
        tracing::info!(
            records,
            tasks = reports.len(),
            "writer-stream: all tasks done"
        );
        Ok(())
    }
}

impl Writer for StreamWriter {
    fn write(
        &self,
        task: &TaskContext,
        input: &mut RecordSource,
        out: &mut WriterOutput,
    ) -> Result<Json, PluginError> {
        let config = SinkConfig::from_parameter(&task.config, &task.job.time_zone)?;
        let task_index = u64::from(task.job.task_index);
        let mut file = match &config.path {
            Some(path) => {
                let path = if task_index == 0 {
                    path.clone()
                } else {
                    path.with_extension(format!("{}", task_index))
                };
                let f = std::fs::File::create(&path).map_err(|e| {
                    PluginError::io(format!("writer-stream: creating {}: {e}", path.display()))
                })?;
                Some((path, std::io::BufWriter::with_capacity(256 * 1024, f)))
            }
            None => None,
        };
        let mut records = 0u64;
        let mut slept = false;
        let mut text = Vec::with_capacity(64 * 1024);
        while let Some(batch) = input.next_batch_ref()? {
            records += batch.len() as u64;
            if config.print || file.is_some() {
                text.clear();
                for record in batch {
                    render(&config, record, &mut text);
                }
                match &mut file {
                    Some((path, f)) => f.write_all(&text).map_err(|e| {
                        PluginError::io(format!("writer-stream: writing {}: {e}", path.display()))
                    })?,
                    None => out.output(&text)?,
                }
            }
            // The engine shows what the writers wrote from their progress.
            out.progress(records, 0)?;
            if let Some(limit) = config.sleep_after_records {
                if !slept && records >= limit {
                    slept = true;
                    std::thread::sleep(std::time::Duration::from_millis(config.sleep_ms));
                }
            }
        }
        if let Some((path, f)) = &mut file {
            f.flush().map_err(|e| {
                PluginError::io(format!("writer-stream: writing {}: {e}", path.display()))
            })?;
        }
        Ok(json!({ "records": records }))
    }
}

/// Appends one record as a line.
pub fn render(config: &SinkConfig, record: &[Value], out: &mut Vec<u8>) {
    match config.format {
        LineFormat::Jsonl => out.extend_from_slice(record_to_line(record).as_bytes()),
        LineFormat::Text => {
            for (i, value) in record.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(config.field_delimiter.as_bytes());
                }
                match value {
                    Value::Null => out.extend_from_slice(b"null"),
                    Value::Date(ms) => out.extend_from_slice(
                        config.date_pattern.format(*ms, &config.zone).as_bytes(),
                    ),
                    other => out.extend_from_slice(other.as_text().unwrap_or_default().as_bytes()),
                }
            }
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_as_datax_prints_them() {
        let config = SinkConfig::from_parameter(&json!({"fieldDelimiter": ","}), "UTC").unwrap();
        let mut out = Vec::new();
        render(
            &config,
            &[
                Value::String("DataX".into()),
                Value::Null,
                Value::Date(0),
                Value::Bool(true),
                Value::Bytes(b"test".to_vec()),
            ],
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "DataX,null,1970-01-01 00:00:00,true,test\n"
        );
    }

    #[test]
    fn bad_parameters_are_config_errors() {
        assert!(SinkConfig::from_parameter(&json!({"print": "maybe"}), "UTC").is_err());
        assert!(SinkConfig::from_parameter(&json!({"path": "/tmp"}), "UTC").is_err());
        assert!(SinkConfig::from_parameter(&json!({"format": "xml"}), "UTC").is_err());
        assert!(SinkConfig::from_parameter(&json!({"pirnt": true}), "UTC").is_err());
    }
}
