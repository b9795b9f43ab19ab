//! The engine's command line.
//!
//! ```text
//! engine run JOB [-p name=value]… [--schedule-time T] [--plugin-dir DIR]
//!            [--dirty-file F] [--summary-json F] [--datasources F] [--stall-timeout SECS]
//!            [--post-timeout SECS]
//!            [--follow [--commit-interval SECS] [--commit-records N] [--commit-bytes N]
//!             [--from checkpoint|oldest|TIME] [--metrics-file F]]
//! engine check JOB [--offline] [same job options]
//! engine plugins [--plugin-dir DIR]
//! engine test-plugin PATH [--config JSON|FILE] [--role reader|writer] [--timeout SECS]
//! engine completions SHELL | engine man [--dir DIR]
//! engine plan JOB --plan URI [same job options] [--tasks N]
//! engine task --plan URI --index N
//! engine commit --plan URI
//! engine abort --plan URI
//! engine --version
//!
//! JOB `-` reads the job from stdin.
//! ```
//!
//! Exit codes: 0 success, 1 job failed, 2 usage or configuration error, 3 error limit
//! exceeded, 130/143 interrupted by SIGINT/SIGTERM.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::error::{EngineError, EXIT_OK, EXIT_USAGE};
use crate::job::{self, Job, LoadOptions};
use crate::lifecycle::{self, RunOptions};
use crate::plugins::{self, PluginDirs};

#[derive(Parser, Debug)]
#[command(
    name = "streamport",
    version = protocol::VERSION,
    about = "Runs DataX and Data Integration job files: spawns the reader and writer plugins, forwards their records, and enforces the job's speed and error limits.",
    after_help = "Exit codes: 0 success, 1 job failed, 2 usage or configuration error, 3 error limit exceeded, 130/143 interrupted (SIGINT/SIGTERM)."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: crate::log::LogArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a job file.
    Run(RunArgs),
    /// Validate a job file and run each plugin's `check` (configuration, connectivity,
    /// credentials); with --offline, print the resolved job without contacting services.
    Check(crate::check::CheckArgs),
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
    /// Run the plugin contract suite against an executable and print what it got wrong.
    TestPlugin(crate::plugin_test::TestPluginArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout, or write one page per command into DIR.
    Man {
        /// Write streamport.1 and streamport-<command>.1 into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub(crate) struct JobArgs {
    /// The job file (DataX `{"job": …}` or Data Integration `{"type": "job", …}`); `-`
    /// reads it from stdin.
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
    /// Also write the job's log (the engine's and its plugins' lines) to this file, or,
    /// given a directory, to DIR/<yyyy-MM-dd>/<job name>-<HH_mm_ss.SSS>.log as DataX's log/.
    #[arg(long, value_name = "PATH|DIR")]
    log_file: Option<PathBuf>,
    #[command(flatten)]
    follow: crate::follow::FollowArgs,
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
    if let Err(e) = crate::log::init(&cli.log.directive()) {
        let _ = writeln!(std::io::stderr().lock(), "streamport: {e}");
        return e.exit_code();
    }
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
    let quiet = cli.log.quiet;
    let code = runtime.block_on(dispatch(cli.command, quiet));
    // Tasks left behind (stderr drains of killed plugins) must not hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(200));
    code
}

async fn dispatch(command: Command, quiet: bool) -> i32 {
    match command {
        Command::Run(args) => run(args, quiet).await,
        Command::Check(args) => crate::check::check(&args).await,
        Command::Plan(args) => crate::plan::cli::plan(args, quiet).await,
        Command::Task(args) => crate::plan::cli::task(args, quiet).await,
        Command::Commit(args) => crate::plan::cli::commit(args, false, quiet).await,
        Command::Abort(args) => crate::plan::cli::commit(args, true, quiet).await,
        Command::Plugins { plugin_dir } => {
            list_plugins(&PluginDirs::new(plugin_dir)).await;
            EXIT_OK
        }
        Command::TestPlugin(args) => tokio::task::block_in_place(|| crate::plugin_test::run(&args)),
        Command::Completions { shell } => crate::manuals::completions(shell),
        Command::Man { dir } => crate::manuals::man(dir.as_deref()),
    }
}

/// The job file's text: the file, or stdin for `-`.
fn job_text(path: &std::path::Path) -> Result<(String, String), EngineError> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text)
            .map_err(|e| EngineError::config(format!("job from stdin: {e}")))?;
        return Ok((text, "stdin".to_owned()));
    }
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| EngineError::config(format!("job file {name}: {e}")))?;
    Ok((text, name))
}

pub(crate) fn load(args: &JobArgs) -> Result<Job, EngineError> {
    let options = LoadOptions {
        params: args.params.clone(),
        schedule_time: args.schedule_time.clone(),
        datasources: args.datasources.clone(),
    };
    let (text, name) = job_text(&args.job)?;
    let job = job::load_text(&text, &name, &options)?;
    for w in &job.warnings {
        crate::warn!("{w}");
    }
    let warning = job::window_check::check_with(&job, |at| {
        let shifted = LoadOptions {
            schedule_time: Some(at.to_rfc3339()),
            ..options.clone()
        };
        job::load_text(&text, &name, &shifted).ok()
    });
    if let Some(w) = warning {
        crate::warn!("{w}");
    }
    Ok(job)
}

/// A positive number of seconds given as option `name`.
pub(crate) fn seconds(value: f64, name: &str) -> Result<Duration, EngineError> {
    if value.is_finite() && value > 0.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(EngineError::config(format!(
            "{name} must be a positive number of seconds"
        )))
    }
}

async fn run(args: RunArgs, quiet: bool) -> i32 {
    let code = run_job(args, quiet).await;
    crate::log::close_log_file();
    code
}

async fn run_job(args: RunArgs, quiet: bool) -> i32 {
    crate::commit::catch_signals();
    // An unwritable summary path fails before anything runs: a scheduler reading the
    // summary must never find an old one, nor none, after a job it started.
    if let Some(path) = &args.summary_json {
        if let Err(e) = std::fs::File::create(path) {
            crate::error!("--summary-json {}: cannot write there: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    let prepared = (|| {
        if let Some(given) = &args.log_file {
            let path = crate::log::log_file_path(given, &args.job.job, chrono::Local::now());
            crate::log::open_log_file(&path)?;
            crate::info!("log file {}", path.display());
        }
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
            live: std::io::stderr().is_terminal() && !quiet,
        };
        let follow = crate::follow::settings::resolve(&args.follow, &job)?;
        Ok::<_, EngineError>((job, options, follow))
    })();
    let (job, options, follow) = match prepared {
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
    let summary = match follow {
        Some(follow) => crate::follow::run(job, options, follow).await,
        None => lifecycle::run(job, options).await,
    };
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
        job_file: if args.job.as_os_str() == "-" {
            "stdin".to_owned()
        } else {
            args.job.display().to_string()
        },
        outcome: e.outcome().to_owned(),
        exit_code: e.exit_code(),
        error: Some(crate::secrets::global().redact(&e.to_string())),
        start: now.clone(),
        end: now,
        ..crate::summary::Summary::default()
    }
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
