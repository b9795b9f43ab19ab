//! The command line of `plan`, `task`, `commit` and `abort` (see [`crate::cli`]).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{commands, finish, oss_access, PlanStore};
use crate::cli::seconds;
use crate::cli::JobArgs;
use crate::error::{EngineError, EXIT_USAGE};
use crate::lifecycle::RunOptions;
use crate::plugins::PluginDirs;
use crate::summary::Summary;

/// Where the plan is, and how to reach it.
#[derive(Args, Debug, Clone)]
pub struct PlanLocation {
    /// The plan location: a directory, or an OSS prefix oss://bucket/prefix (one per
    /// job window).
    #[arg(long = "plan", value_name = "URI")]
    pub uri: String,
    /// The data source (in --datasources F) whose endpoint, accessId and accessKey
    /// reach an oss:// plan. Default: $STREAMPORT_PLAN_OSS_ENDPOINT with
    /// $ALIBABA_CLOUD_ACCESS_KEY_ID / $ALIBABA_CLOUD_ACCESS_KEY_SECRET
    /// ($ALIBABA_CLOUD_SECURITY_TOKEN), else (plan only) the job's OSS writer connection.
    #[arg(long, value_name = "NAME")]
    pub plan_datasource: Option<String>,
}

/// Options every plan command shares.
#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    #[command(flatten)]
    pub location: PlanLocation,
    /// A data-source file (for --plan-datasource).
    #[arg(long, value_name = "F")]
    pub datasources: Option<PathBuf>,
    /// A directory searched first for plugin executables.
    #[arg(long, value_name = "DIR")]
    pub plugin_dir: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Output and watchdog options.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Also write the summary as JSON to this file.
    #[arg(long, value_name = "F")]
    pub summary_json: Option<PathBuf>,
    /// Fail when a task or step makes no progress for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    pub stall_timeout: f64,
    /// Seconds between two progress lines.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub progress_interval: f64,
    /// Refused with a clear error: follow mode runs only with `streamport run`.
    #[arg(long, hide = true)]
    pub follow: bool,
}

/// Follow mode is for `streamport run` only: the distributed commands run one window.
pub(crate) fn refuse_follow(common: &CommonArgs, command: &str) -> Result<(), EngineError> {
    if common.follow {
        return Err(EngineError::config(format!(
            "--follow: follow mode runs only with `streamport run JOB --follow`; `streamport {command}` runs one window"
        )));
    }
    Ok(())
}

/// `streamport plan JOB --plan URI`.
#[derive(Args, Debug)]
pub struct PlanJobArgs {
    #[command(flatten)]
    pub(crate) job: JobArgs,
    #[command(flatten)]
    pub location: PlanLocation,
    /// How many tasks to split into at most (the split's advice; default: the job's
    /// channel setting). Give a Kubernetes Indexed Job at least this many completions.
    #[arg(long, value_name = "N")]
    pub tasks: Option<usize>,
    /// The commit's time limit, recorded in the plan. Default: the job's
    /// setting.postTimeoutSeconds, else 600.
    #[arg(long, value_name = "SECS")]
    pub post_timeout: Option<f64>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `streamport task --plan URI --index N`.
#[derive(Args, Debug)]
pub struct TaskArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// The task's index (a Kubernetes Indexed Job's JOB_COMPLETION_INDEX).
    #[arg(long, value_name = "N", env = "JOB_COMPLETION_INDEX")]
    pub index: usize,
    /// Where this task's dirty records go. Default: <job>-task<N>-<job id>.dirty.jsonl
    /// in the current directory.
    #[arg(long, value_name = "F")]
    pub dirty_file: Option<PathBuf>,
}

fn options(
    common: &CommonArgs,
    quiet: bool,
    plugin_dir: Option<PathBuf>,
    dirty_file: Option<PathBuf>,
    post_timeout: Duration,
) -> Result<RunOptions, EngineError> {
    if let Some(path) = &common.summary_json {
        std::fs::File::create(path).map_err(|e| {
            EngineError::config(format!(
                "--summary-json {}: cannot write there: {e}",
                path.display()
            ))
        })?;
    }
    Ok(RunOptions {
        plugin_dirs: PluginDirs::new(plugin_dir),
        dirty_file,
        summary_json: common.summary_json.clone(),
        stall_timeout: seconds(common.stall_timeout, "--stall-timeout")?,
        progress_interval: seconds(common.progress_interval, "--progress-interval")?,
        live: std::io::stderr().is_terminal() && !quiet,
        post_timeout,
    })
}

fn open(args: &PlanArgs) -> Result<PlanStore, EngineError> {
    let access = oss_access(
        args.location.plan_datasource.as_deref(),
        args.datasources.as_deref(),
        None,
    )?;
    PlanStore::open(&args.location.uri, access)
}

fn finish(summary: Summary, path: Option<PathBuf>) -> i32 {
    crate::log::always(&summary.text());
    if let Some(path) = path {
        if let Err(e) = summary.write_json(&path) {
            crate::error!("cannot write the summary to {}: {e}", path.display());
        }
    }
    summary.exit_code
}

fn failed(e: EngineError) -> i32 {
    crate::error!("{e}");
    if e.exit_code() == 0 {
        EXIT_USAGE
    } else {
        e.exit_code()
    }
}

pub async fn plan(args: PlanJobArgs, quiet: bool) -> i32 {
    crate::commit::catch_signals();
    let prepared = (|| {
        refuse_follow(&args.common, "plan")?;
        let job = crate::cli::load(&args.job)?;
        if job
            .setting
            .get("follow")
            .is_some_and(|f| f != &serde_json::Value::Bool(false) && !f.is_null())
        {
            return Err(EngineError::config(format!(
                "{}: setting.follow: follow mode runs only with `streamport run`; `streamport plan` plans one window (remove setting.follow)",
                job.source_name
            )));
        }
        let post_timeout = match args.post_timeout {
            Some(v) => seconds(v, "--post-timeout")?,
            None => Duration::from_secs_f64(
                job.settings
                    .post_timeout_secs
                    .unwrap_or(crate::job::settings::DEFAULT_POST_TIMEOUT_SECS),
            ),
        };
        let options = options(
            &args.common,
            quiet,
            args.job.plugin_dir.clone(),
            None,
            post_timeout,
        )?;
        let access = oss_access(
            args.location.plan_datasource.as_deref(),
            args.job.datasources.as_deref(),
            Some(&job.writer.parameter),
        )?;
        let store = PlanStore::open(&args.location.uri, access)?;
        if args.tasks == Some(0) {
            return Err(EngineError::config("--tasks must be at least 1"));
        }
        Ok::<_, EngineError>((job, store, options))
    })();
    match prepared {
        Ok((job, store, options)) => {
            let path = options.summary_json.clone();
            finish(commands::plan(job, store, args.tasks, options).await, path)
        }
        Err(e) => failed(e),
    }
}

pub async fn task(args: TaskArgs, quiet: bool) -> i32 {
    crate::commit::catch_signals();
    let prepared = (|| {
        refuse_follow(&args.plan.common, "task")?;
        let options = options(
            &args.plan.common,
            quiet,
            args.plan.plugin_dir.clone(),
            args.dirty_file.clone(),
            Duration::from_secs(600),
        )?;
        Ok::<_, EngineError>((open(&args.plan)?, options))
    })();
    match prepared {
        Ok((store, options)) => {
            let path = options.summary_json.clone();
            finish(commands::task(store, args.index, options).await, path)
        }
        Err(e) => failed(e),
    }
}

/// `commit` (`abort: false`) or `abort`.
pub async fn commit(args: PlanArgs, abort: bool, quiet: bool) -> i32 {
    crate::commit::catch_signals();
    let prepared = (|| {
        refuse_follow(&args.common, if abort { "abort" } else { "commit" })?;
        let options = options(
            &args.common,
            quiet,
            args.plugin_dir.clone(),
            None,
            Duration::from_secs(600),
        )?;
        Ok::<_, EngineError>((open(&args)?, options))
    })();
    match prepared {
        Ok((store, options)) => {
            let path = options.summary_json.clone();
            let summary = if abort {
                finish::abort_plan(store, options).await
            } else {
                finish::commit_plan(store, options).await
            };
            finish(summary, path)
        }
        Err(e) => failed(e),
    }
}
