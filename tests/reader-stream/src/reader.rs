//! The records `reader-stream` emits.

use protocol::message::Role;
use protocol::records::encode_record;
use protocol::runtime::{
    ParameterSpec, Plugin, PluginError, PluginInfo, Reader, RecordSink, StepContext, TaskContext,
};
use protocol::timefmt::Zone;
use protocol::value::{record_byte_size, Value};
use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value as Json;

use crate::config::{parameters, ColumnSource, Kind, StreamConfig};

/// The plugin.
pub struct StreamReader;

fn zone_of(job_zone: &str) -> Result<Zone, PluginError> {
    Zone::parse(job_zone).map_err(PluginError::config)
}

impl Plugin for StreamReader {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "reader-stream",
            version: env!("CARGO_PKG_VERSION"),
            role: Role::Reader,
            about: "Generates constant, sequence or random records (DataX streamreader)",
        }
    }

    fn parameters(&self) -> Vec<ParameterSpec> {
        parameters()
    }

    fn check(&self, ctx: &StepContext) -> Result<(), PluginError> {
        StreamConfig::from_parameter(&ctx.parameter, &zone_of(&ctx.job.time_zone)?).map(drop)
    }

    /// As DataX's streamreader: exactly `count` identical tasks.
    fn split(&self, ctx: &StepContext, count: usize) -> Result<Vec<Json>, PluginError> {
        StreamConfig::from_parameter(&ctx.parameter, &zone_of(&ctx.job.time_zone)?)?;
        // Every task gets the same parameter; a task learns its index from its
        // JobContext (`task.job.task_index`).
        Ok(vec![ctx.parameter.clone(); count])
    }
}

impl Reader for StreamReader {
    fn read(&self, task: &TaskContext, out: &mut RecordSink) -> Result<(), PluginError> {
        let config = StreamConfig::from_parameter(&task.config, &zone_of(&task.job.time_zone)?)?;
        let task_index = u64::from(task.job.task_index);
        let first = task_index * config.slice_record_count;
        // The engine shows an ETA from it.
        out.estimate_total(config.slice_record_count)?;
        let constant = config
            .columns
            .iter()
            .all(|c| matches!(c, ColumnSource::Constant(_)));
        if constant {
            // As DataX: the same record every time; encode it once.
            let record: Vec<Value> = config
                .columns
                .iter()
                .filter_map(|c| match c {
                    ColumnSource::Constant(v) => Some(v.clone()),
                    _ => None,
                })
                .collect();
            let mut encoded = Vec::new();
            encode_record(&record, &mut encoded);
            let size = record_byte_size(&record);
            for _ in 0..config.slice_record_count {
                out.push_encoded(&encoded, size)?;
            }
            return Ok(());
        }
        let mut rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed.wrapping_add(task_index)),
            None => StdRng::from_entropy(),
        };
        let mut record = Vec::with_capacity(config.columns.len());
        for i in 0..config.slice_record_count {
            record.clear();
            for column in &config.columns {
                record.push(generate(column, first + i, &mut rng));
            }
            out.push(&record)?;
        }
        Ok(())
    }
}

fn generate(column: &ColumnSource, index: u64, rng: &mut StdRng) -> Value {
    match column {
        ColumnSource::Constant(v) => v.clone(),
        ColumnSource::Sequence { text: false, start } => {
            Value::Long(start.wrapping_add(index as i64))
        }
        ColumnSource::Sequence { text: true, start } => {
            Value::String(start.wrapping_add(index as i64).to_string())
        }
        ColumnSource::Random { kind, low, high } => {
            let (low, high) = (*low, *high);
            let int_in = |rng: &mut StdRng| rng.gen_range(low as i64..=high as i64);
            match kind {
                Kind::Long => Value::Long(int_in(rng)),
                Kind::Date => Value::Date(int_in(rng)),
                Kind::Double => Value::Double(rng.gen_range(low..high + 1.0)),
                Kind::Decimal => Value::Decimal(format!("{:.4}", rng.gen_range(low..high + 1.0))),
                Kind::String => {
                    let len = int_in(rng) as usize;
                    Value::String(Alphanumeric.sample_string(rng, len))
                }
                Kind::Bytes => {
                    let len = int_in(rng) as usize;
                    Value::Bytes(Alphanumeric.sample_string(rng, len).into_bytes())
                }
                Kind::Bool => Value::Bool(rng.gen_range(0.0..low + high) < low),
            }
        }
    }
}
