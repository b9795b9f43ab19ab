//! `streamport check`: validate a job before running it.
//!
//! `--offline` resolves the job as `run` would (comments stripped, variables and
//! DataWorks expressions substituted, data sources merged, keys normalised, settings
//! checked, plugin executables found) and prints it as JSON on stdout, secrets masked,
//! without starting a plugin or contacting a service.
//!
//! Online, it also runs the reader's and the writer's `check` step (configuration,
//! connectivity, credentials) side by side and reports every failure, not only the
//! first. A check that fails for a temporary reason (anything but a configuration
//! error) is retried a few times after a short wait, with one log line per retry; one
//! attempt may take `--check-timeout` seconds.

use std::time::Duration;

use clap::Args;
use protocol::runtime::{StepContext, StepRequest};
use protocol::Role;
use serde_json::{json, Value as Json};

use crate::cli::JobArgs;
use crate::error::{EngineError, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::job::Job;
use crate::lifecycle;
use crate::plugins::{self, Plugin, PluginDirs};

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub(crate) job: JobArgs,
    /// Only validate: print the resolved job (variables substituted, data sources merged,
    /// keys normalised, secrets masked) as JSON; no plugin runs, no service is contacted.
    #[arg(long)]
    offline: bool,
    /// How long one attempt of a plugin's check may take.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    check_timeout: f64,
    /// How often a check that failed for a temporary reason (not its configuration) is
    /// tried again, after 1 s, 2 s, 4 s…
    #[arg(long, value_name = "N", default_value_t = 2)]
    check_retries: u32,
}

/// Runs `check`; returns the exit code (0, 1 when a check failed for another reason than
/// configuration, 2 for any configuration error).
pub async fn check(args: &CheckArgs) -> i32 {
    let job = match crate::cli::load(&args.job) {
        Ok(job) => job,
        Err(e) => {
            crate::error!("check failed: {e}");
            return e.exit_code();
        }
    };
    let dirs = PluginDirs::new(args.job.plugin_dir.clone());
    let reader = plugins::resolve(Role::Reader, &job.reader.name, &dirs);
    let writer = plugins::resolve(Role::Writer, &job.writer.name, &dirs);
    let mut failures: Vec<EngineError> = Vec::new();
    if args.offline {
        print_resolved(&job, reader.as_ref().ok(), writer.as_ref().ok());
        failures.extend(reader.err());
        failures.extend(writer.err());
    } else {
        let timeout = match Duration::try_from_secs_f64(args.check_timeout) {
            Ok(t) if !t.is_zero() => t,
            _ => {
                crate::error!("--check-timeout must be a positive number of seconds");
                return EXIT_USAGE;
            }
        };
        crate::info!(
            "{} ({} format): reader {}, writer {}, {} channels, time zone {}",
            job.source_name,
            job.format.name(),
            job.reader.name,
            job.writer.name,
            job.settings.channel,
            job.time_zone.name()
        );
        let budget = Budget {
            timeout,
            retries: args.check_retries,
        };
        let (r, w) = tokio::join!(
            check_slot(reader, &job, &job.reader.parameter, budget),
            check_slot(writer, &job, &job.writer.parameter, budget),
        );
        failures.extend(r.err());
        failures.extend(w.err());
    }
    report(&failures)
}

/// Logs every failure and returns the exit code.
fn report(failures: &[EngineError]) -> i32 {
    if failures.is_empty() {
        crate::info!("check passed");
        return EXIT_OK;
    }
    for e in failures {
        crate::error!("{e}");
    }
    crate::error!(
        "check failed: {} problem{}",
        failures.len(),
        if failures.len() == 1 { "" } else { "s" }
    );
    if failures.iter().any(|e| matches!(e, EngineError::Config(_))) {
        EXIT_USAGE
    } else {
        EXIT_FAILED
    }
}

/// The resolved job on stdout: a DataX job that runs as it is (once the masked secrets
/// are given back), and what the engine made of it.
fn print_resolved(job: &Job, reader: Option<&Plugin>, writer: Option<&Plugin>) {
    let section = |name: &str, parameter: &Json| json!({"name": name, "parameter": crate::secrets::masked(parameter)});
    let path = |p: Option<&Plugin>| p.map(|p| p.path.display().to_string());
    let doc = json!({
        "job": {
            "setting": crate::secrets::masked(&Json::Object(job.setting.clone())),
            "content": [{
                "reader": section(&job.reader.name, &job.reader.parameter),
                "writer": section(&job.writer.name, &job.writer.parameter),
            }],
        },
        "resolved": {
            "source": job.source_name,
            "format": job.format.name(),
            "time_zone": job.time_zone.name(),
            "schedule_time": job.schedule_time.to_rfc3339(),
            "channel": job.settings.channel,
            "fingerprint": job.fingerprint,
            "reader_plugin": path(reader),
            "writer_plugin": path(writer),
        },
    });
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    // A secret may also sit under a key that does not look like one (inside a URL…).
    let text = crate::secrets::global().redact(&text);
    let mut out = std::io::stdout().lock();
    let _ = std::io::Write::write_all(&mut out, format!("{text}\n").as_bytes());
}

#[derive(Clone, Copy, Debug)]
struct Budget {
    timeout: Duration,
    retries: u32,
}

async fn check_slot(
    plugin: Result<Plugin, EngineError>,
    job: &Job,
    parameter: &Json,
    budget: Budget,
) -> Result<(), EngineError> {
    let plugin = plugin?;
    let request = StepRequest {
        context: StepContext {
            parameter: parameter.clone(),
            state: Json::Null,
            job: protocol::message::JobContext {
                job_id: lifecycle::new_job_id(),
                fingerprint: job.fingerprint.clone(),
                time_zone: job.time_zone.name().to_owned(),
                task_index: 0,
                task_count: 0,
            },
        },
        count: None,
        reports: Vec::new(),
    };
    let attempts = budget.retries.saturating_add(1);
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=attempts {
        let outcome =
            crate::steps::run_step_within(&plugin, "check", &request, None, None, budget.timeout)
                .await;
        match outcome {
            Ok(_) => {
                crate::info!("{} check passed ({})", plugin.name, plugin.path.display());
                return Ok(());
            }
            Err(e @ EngineError::Failed(_)) if attempt < attempts => {
                crate::warn!(
                    "{e} (attempt {attempt} of {attempts}); retrying in {} s",
                    wait.as_secs()
                );
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
            Err(e) => return Err(e),
        }
    }
    Err(EngineError::failed(format!(
        "{} check: no attempt",
        plugin.name
    )))
}
