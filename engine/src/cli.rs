//! The engine's command line.
//!
//! ```text
//! engine run JOB [-p name=value]… [--schedule-time T] [--plugin-dir DIR]
//!            [--dirty-file F] [--summary-json F] [--datasources F] [--stall-timeout SECS]
//!            [--post-timeout SECS]
//! engine check JOB [same job options]
//! engine plugins [--plugin-dir DIR]
//! engine plan JOB --plan URI [same job options] [--tasks N]
//! engine task --plan URI --index N
//! engine commit --plan URI
//! engine abort --plan URI
//! engine --version
//! ```
//!
//! Exit codes: 0 success, 1 job failed, 2 usage or configuration error, 3 error limit
//! exceeded, 130/143 interrupted by SIGINT/SIGTERM.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use protocol::runtime::{StepContext, StepRequest};
use protocol::Role;

use crate::error::{EngineError, EXIT_OK, EXIT_USAGE};
use crate::job::{self, Job, LoadOptions};
use crate::lifecycle::{self, RunOptions};
use crate::plugins::{self, PluginDirs};

#[derive(Parser, Debug)]
#[command(
    name = "streamport",
    version,
    about = "Runs DataX and Data Integration job files: spawns the reader and writer plugins, forwards their records, and enforces the job's speed and error limits.",
    after_help = "Exit codes: 0 success, 1 job failed, 2 usage or configuration error, 3 error limit exceeded, 130/143 interrupted (SIGINT/SIGTERM)."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a job file.
    Run(RunArgs),
    /// Validate a job file and run each plugin's `check` (configuration, connectivity, credentials).
    Check(JobArgs),
    /// Distributed mode: run check, prepare and split, and write the plan (the job,
    /// the task configs, the job states) to --plan.
    Plan(crate::plan::cli::PlanJobArgs),
    /// Distributed mode: run one task of the plan and write its report.
    Task(crate::plan::cli::TaskArgs),
    /// Distributed mode: once every task reported, commit (writer post, reader post).
    Commit(crate::plan::cli::PlanArgs),
    /// Distributed mode: undo an unfinished plan (the writer's abort).
    Abort(crate::plan::cli::PlanArgs),
    /// List the plugins found, with their versions and where they are.
    Plugins {
        /// A directory searched first for plugin executables.
        #[arg(long, value_name = "DIR")]
        plugin_dir: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub(crate) struct JobArgs {
    /// The job file (DataX `{"job": …}` or Data Integration `{"type": "job", …}`).
    pub(crate) job: PathBuf,
    /// A variable for `${name}` / `$name` in the job, as name=value; DataX's
    /// "-Dname=value -Dother=v" works too. A value may be a DataWorks expression such
    /// as '$[yyyymmddhh24miss-10/24/60]'.
    #[arg(
        short = 'p',
        long = "param",
        value_name = "NAME=VALUE",
        allow_hyphen_values = true
    )]
    pub(crate) params: Vec<String>,
    /// The schedule time DataWorks expressions (`$[yyyymmdd-1]`, `${bdp.system.bizdate}`)
    /// are evaluated against, in the job's time zone: RFC 3339, yyyyMMddHHmmss or
    /// "yyyy-MM-dd HH:mm:ss". Default: now.
    #[arg(long, value_name = "T")]
    pub(crate) schedule_time: Option<String>,
    /// A directory searched first for plugin executables (then beside the engine, then PATH).
    #[arg(long, value_name = "DIR")]
    pub(crate) plugin_dir: Option<PathBuf>,
    /// A data-source file: {"name": {connection keys…}}, for "datasource": "name" in a
    /// plugin's parameter; values may use ${env:VAR}.
    #[arg(long, value_name = "F")]
    pub(crate) datasources: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Where dirty records go (JSON lines). Default: <job name>-<job id>.dirty.jsonl in the
    /// current directory, created at the first dirty record.
    #[arg(long, value_name = "F")]
    dirty_file: Option<PathBuf>,
    /// Also write the final summary as JSON to this file.
    #[arg(long, value_name = "F")]
    summary_json: Option<PathBuf>,
    /// Fail the job when a task or step makes no progress for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    stall_timeout: f64,
    /// How long the commit (writer post, then reader post) may take; a signal or the
    /// stall watchdog does not cancel it. Default: the job's setting.postTimeoutSeconds,
    /// else 600.
    #[arg(long, value_name = "SECS")]
    post_timeout: Option<f64>,
    /// Seconds between two progress lines.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    progress_interval: f64,
    /// Only warnings, errors and the summary.
    #[arg(long, short)]
    quiet: bool,
}

/// Parses the command line, runs the command, and returns the exit code.
pub fn main() -> i32 {
    if let Ok(engine) = std::env::current_exe() {
        plugins::use_launcher(engine);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::error!("cannot start the async runtime: {e}");
            return crate::error::EXIT_FAILED;
        }
    };
    let code = runtime.block_on(dispatch(cli.command));
    // Tasks left behind (stderr drains of killed plugins) must not hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(200));
    code
}

async fn dispatch(command: Command) -> i32 {
    match command {
        Command::Run(args) => run(args).await,
        Command::Check(args) => match check(&args).await {
            Ok(()) => EXIT_OK,
            Err(e) => {
                crate::error!("check failed: {e}");
                e.exit_code()
            }
        },
        Command::Plan(args) => crate::plan::cli::plan(args).await,
        Command::Task(args) => crate::plan::cli::task(args).await,
        Command::Commit(args) => crate::plan::cli::commit(args, false).await,
        Command::Abort(args) => crate::plan::cli::commit(args, true).await,
        Command::Plugins { plugin_dir } => {
            list_plugins(&PluginDirs::new(plugin_dir)).await;
            EXIT_OK
        }
    }
}

pub(crate) fn load(args: &JobArgs) -> Result<Job, EngineError> {
    let options = LoadOptions {
        params: args.params.clone(),
        schedule_time: args.schedule_time.clone(),
        datasources: args.datasources.clone(),
    };
    let job = job::load(&args.job, &options)?;
    for w in &job.warnings {
        crate::warn!("{w}");
    }
    if let Some(w) = job::window_check::check(&job, &args.job, &options) {
        crate::warn!("{w}");
    }
    Ok(job)
}

fn seconds(value: f64, name: &str) -> Result<Duration, EngineError> {
    if value.is_finite() && value > 0.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(EngineError::config(format!(
            "{name} must be a positive number of seconds"
        )))
    }
}

async fn run(args: RunArgs) -> i32 {
    crate::log::set_quiet(args.quiet);
    // An unwritable summary path fails before anything runs: a scheduler reading the
    // summary must never find an old one, nor none, after a job it started.
    if let Some(path) = &args.summary_json {
        if let Err(e) = std::fs::File::create(path) {
            crate::error!("--summary-json {}: cannot write there: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    let prepared = (|| {
        let job = load(&args.job)?;
        let options = RunOptions {
            plugin_dirs: PluginDirs::new(args.job.plugin_dir.clone()),
            dirty_file: args.dirty_file.clone(),
            summary_json: args.summary_json.clone(),
            stall_timeout: seconds(args.stall_timeout, "--stall-timeout")?,
            progress_interval: seconds(args.progress_interval, "--progress-interval")?,
            post_timeout: match args.post_timeout {
                Some(v) => seconds(v, "--post-timeout")?,
                None => Duration::from_secs_f64(
                    job.settings
                        .post_timeout_secs
                        .unwrap_or(job::settings::DEFAULT_POST_TIMEOUT_SECS),
                ),
            },
            live: std::io::stderr().is_terminal() && !args.quiet,
        };
        Ok::<_, EngineError>((job, options))
    })();
    let (job, options) = match prepared {
        Ok(p) => p,
        Err(e) => {
            crate::error!("{e}");
            if let Some(path) = &args.summary_json {
                write_summary(&early_summary(&args.job, &e), path);
            }
            return e.exit_code();
        }
    };
    let summary_json = options.summary_json.clone();
    let summary = lifecycle::run(job, options).await;
    crate::log::always(&summary.text());
    if let Some(path) = summary_json {
        write_summary(&summary, &path);
    }
    summary.exit_code
}

fn write_summary(summary: &crate::summary::Summary, path: &std::path::Path) {
    if let Err(e) = summary.write_json(path) {
        crate::error!("cannot write the summary to {}: {e}", path.display());
    }
}

/// The summary of a run that ended before its job could start (a missing job file, an
/// unset variable, a bad setting): nothing ran, and the error says why.
fn early_summary(args: &JobArgs, e: &EngineError) -> crate::summary::Summary {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    crate::summary::Summary {
        job_id: lifecycle::new_job_id(),
        job_file: args.job.display().to_string(),
        outcome: e.outcome().to_owned(),
        exit_code: e.exit_code(),
        error: Some(crate::secrets::global().redact(&e.to_string())),
        start: now.clone(),
        end: now,
        ..crate::summary::Summary::default()
    }
}

async fn check(args: &JobArgs) -> Result<(), EngineError> {
    let job = load(args)?;
    let dirs = PluginDirs::new(args.plugin_dir.clone());
    let reader = plugins::resolve(Role::Reader, &job.reader.name, &dirs)?;
    let writer = plugins::resolve(Role::Writer, &job.writer.name, &dirs)?;
    crate::info!(
        "{} ({} format): reader {}, writer {}, {} channels, time zone {}",
        job.source_name,
        job.format.name(),
        reader.name,
        writer.name,
        job.settings.channel,
        job.time_zone.name()
    );
    for (plugin, parameter) in [
        (&reader, &job.reader.parameter),
        (&writer, &job.writer.parameter),
    ] {
        let request = StepRequest {
            context: StepContext {
                parameter: parameter.clone(),
                state: serde_json::Value::Null,
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
        crate::steps::run_step(plugin, "check", &request, None, None).await?;
        crate::info!("{} check passed", plugin.name);
    }
    crate::info!("check passed");
    Ok(())
}

async fn list_plugins(dirs: &PluginDirs) {
    let found = plugins::list(dirs);
    let mut out = String::new();
    if found.is_empty() {
        out.push_str("no plugins found\n");
    }
    for plugin in found {
        let version = plugin_version(&plugin).await;
        out.push_str(&format!(
            "{:<24} {:<10} {}\n",
            plugin.name,
            version.as_deref().unwrap_or("?"),
            plugin.path.display()
        ));
    }
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
}

/// The version a plugin's `spec` reports.
async fn plugin_version(plugin: &plugins::Plugin) -> Option<String> {
    let run = tokio::process::Command::new(&plugin.path)
        .arg("spec")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .ok()?
        .ok()?;
    let spec: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    spec.get("version")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}
