//! The command line every plugin shares.
//!
//! ```text
//! <plugin> spec                                   parameters as JSON
//! <plugin> check   --config FILE [-p name=value]  validate, test connectivity
//! <plugin> prepare --config FILE                  → job state (JSON)
//! <plugin> split   --config FILE --count N [--state FILE]   → task configs (JSON)
//! <plugin> post    --config FILE --state FILE [--reports FILE]
//! <plugin> abort   --config FILE --state FILE
//! <plugin> precommit --config FILE --state FILE --reports FILE   (follow mode, readers)
//! <reader> read    --config FILE [--format msgpack|jsonl]   standalone: prepare, split 1, read, post
//! <writer> write   --config FILE [--input-format msgpack|jsonl]   standalone: frames or JSON lines on stdin
//! <plugin> <step> --engine      step request as JSON on stdin, response on stdout
//! <plugin> --version            "<name> <version>"
//! <plugin> read|write --engine  a task over stdio frames (hello, configure, …)
//! ```
//!
//! `--config` takes a whole job file (the plugin takes its own section) or a bare
//! parameter object; `-` reads it from stdin. Exit codes: 0 success, 1 failure, 2 usage
//! or configuration error.
//!
//! Standalone, a writer commits only a whole input: frames that ended with `eos` and no
//! `error` up to EOF (a standalone reader writes `hello` first and an `error` frame on
//! any failure), with no more dirty records than `--error-limit` (default 0; as the
//! engine's `errorLimit.record`, N allows N). The job's zone: `--time-zone`, else the
//! job file's `setting.timeZone`, else `TZ` or the machine's zone.

use std::io::{BufReader, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value as Json;

use crate::frame::{check_hello, FrameReader, FrameWriter};
use crate::jobfile;
use crate::message::{Done, Hello, JobContext, Message};
use crate::runtime::{
    DirtyFile, Plugin, PluginError, Reader, RecordSink, RecordSource, SessionRequest, StepContext,
    StepRequest, StepResponse, TaskContext, Writer, WriterOutput,
};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every parameter the plugin takes, as JSON.
    Spec,
    /// Validate the configuration and test connectivity and credentials.
    Check(StepArgs),
    /// Prepare the job; prints the job state as JSON.
    Prepare(StepArgs),
    /// Split the job into at most N task configs; prints them as a JSON array.
    Split {
        /// How many tasks to aim for.
        #[arg(long, default_value_t = 1)]
        count: usize,
        #[command(flatten)]
        step: StepArgs,
    },
    /// Commit the job after every task succeeded.
    Post(StepArgs),
    /// Undo what a failed or cancelled job left uncommitted.
    Abort(StepArgs),
    /// Follow mode (readers): record the batch read before the writer commits it.
    Precommit(StepArgs),
    /// Engine mode: serve several steps in one process (one request per line on stdin,
    /// one answer per line on stdout) until stdin ends.
    Session(StepArgs),
    /// Read records (readers only). Standalone: prepare, split 1, read, post.
    Read(TaskArgs),
    /// Write records (writers only). Standalone: records from stdin.
    Write(TaskArgs),
}

impl Command {
    /// The engine's pid given with `--engine-pid`.
    fn engine_pid(&self) -> Option<i32> {
        match self {
            Command::Spec => None,
            Command::Check(a)
            | Command::Prepare(a)
            | Command::Post(a)
            | Command::Abort(a)
            | Command::Precommit(a)
            | Command::Session(a)
            | Command::Split { step: a, .. } => a.engine_pid,
            Command::Read(t) | Command::Write(t) => t.step.engine_pid,
        }
    }
}

#[derive(Args, Clone, Default)]
struct StepArgs {
    /// A job file (DataX or Data Integration format) or a bare parameter object; `-` for stdin.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// A variable for `${name}` in the config, as name=value (or DataX's "-Dname=value").
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// The job state printed by `prepare`.
    #[arg(long)]
    state: Option<PathBuf>,
    /// A JSON array of task reports (for `post`).
    #[arg(long)]
    reports: Option<PathBuf>,
    /// The job's time zone (IANA name), passed to the plugin. Default: the job file's
    /// `setting.timeZone`, else the `TZ` environment variable, else the machine's zone.
    #[arg(long, default_value = "")]
    time_zone: String,
    /// Engine mode: the request comes as JSON on stdin, the answer goes to stdout.
    #[arg(long)]
    engine: bool,
    /// Set by the engine when it starts the plugin without its launcher: the plugin
    /// asks to be killed when that process (its parent) dies, and ends at once when
    /// its parent is already another.
    #[arg(long, value_name = "PID", hide = true)]
    engine_pid: Option<i32>,
}

#[derive(Args, Clone)]
struct TaskArgs {
    #[command(flatten)]
    step: StepArgs,
    /// Output of a standalone reader.
    #[arg(long, value_enum, default_value_t = Format::Msgpack)]
    format: Format,
    /// Input of a standalone writer.
    #[arg(long, value_enum, default_value_t = Format::Msgpack)]
    input_format: Format,
    /// Standalone: the most dirty records allowed; one more fails the task and nothing is
    /// committed (as the engine's `errorLimit.record`).
    #[arg(long, value_name = "N", default_value_t = 0)]
    error_limit: u64,
    /// Standalone: also write every dirty record, whole, to this file (JSON lines).
    #[arg(long, value_name = "FILE")]
    dirty_file: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Protocol frames (the input of a writer).
    Msgpack,
    /// One JSON array per record per line.
    Jsonl,
}

/// Runs a reader plugin's command line and exits.
pub fn run_reader<P: Reader>(plugin: P) -> ! {
    run(&plugin, |command, plugin| match command {
        Command::Read(args) => read(plugin, &args),
        Command::Write(_) => Err(PluginError::config(format!(
            "{} is a reader: it has no write command",
            plugin.info().name
        ))),
        other => step(plugin, other),
    })
}

/// Runs a writer plugin's command line and exits.
pub fn run_writer<P: Writer>(plugin: P) -> ! {
    run(&plugin, |command, plugin| match command {
        Command::Write(args) => write(plugin, &args),
        Command::Read(_) => Err(PluginError::config(format!(
            "{} is a writer: it has no read command",
            plugin.info().name
        ))),
        other => step(plugin, other),
    })
}

fn run<P: Plugin>(plugin: &P, dispatch: impl FnOnce(Command, &P) -> Result<(), PluginError>) -> ! {
    init_logging();
    let info = plugin.info();
    let cli = match parse(&info, std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if let Some(pid) = cli.command.engine_pid() {
        if let Err(e) = crate::parent_death::guard(pid) {
            tracing::error!("{}: {e}", info.name);
            std::process::exit(1);
        }
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| dispatch(cli.command, plugin)));
    let code = match outcome {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            log_failure(info.name, &e);
            e.exit_code()
        }
        // The panic hook already printed the panic on stderr.
        Err(_) => 1,
    };
    std::process::exit(code)
}

/// Logs the error a command or step ended with.
fn log_failure(name: &str, e: &PluginError) {
    // Plugins often name themselves in their messages already.
    let message = if e.message.starts_with(name) {
        e.message.clone()
    } else {
        format!("{name}: {}", e.message)
    };
    // A cancellation was asked for (the engine's `cancel`, a closed pipe): it is no
    // error of this plugin.
    if e.kind == crate::message::ErrorKind::Cancelled {
        tracing::info!("{message}");
    } else {
        tracing::error!("{message}");
    }
}

/// The command line, named after the plugin, with its `--version` (`<plugin> --version`
/// prints `<plugin> <version> (commit <git commit>)`).
fn parse(
    info: &crate::runtime::PluginInfo,
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    // clap keeps `'static` strings; one short string per process.
    let version: &'static str =
        Box::leak(format!("{} (commit {})", info.version, crate::BUILD_COMMIT).into_boxed_str());
    let mut command = Cli::command()
        .name(info.name)
        .bin_name(info.name)
        .about(info.about)
        .version(version);
    let matches = command.try_get_matches_from_mut(args)?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STREAMPORT_LOG")
        .unwrap_or_else(|_| "info".into());
    let _ = crate::logfmt::subscriber(
        std::io::stderr,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    )
    .with_env_filter(filter)
    .try_init();
}

// ---- job-level steps ------------------------------------------------------------

fn step<P: Plugin>(plugin: &P, command: Command) -> Result<(), PluginError> {
    let (name, args, count) = match command {
        Command::Spec => {
            let value = serde_json::to_value(plugin.parameters())
                .map_err(|e| PluginError::internal(e.to_string()))?;
            return print_json(
                &serde_json::json!({"plugin": plugin.info().name, "version": plugin.info().version, "commit": crate::BUILD_COMMIT, "parameters": value}),
            );
        }
        Command::Check(a) => ("check", a, None),
        Command::Prepare(a) => ("prepare", a, None),
        Command::Split { count, step } => ("split", step, Some(count)),
        Command::Post(a) => ("post", a, None),
        Command::Abort(a) => ("abort", a, None),
        Command::Precommit(a) => ("precommit", a, None),
        Command::Session(a) => return session(plugin, &a),
        Command::Read(_) | Command::Write(_) => return Err(PluginError::internal("not a step")),
    };
    if args.engine {
        let request: StepRequest = serde_json::from_reader(std::io::stdin().lock())
            .map_err(|e| PluginError::config(format!("{name} request on stdin: {e}")))?;
        let (result, response) = engine_step(plugin, name, &request);
        print_json(
            &serde_json::to_value(response).map_err(|e| PluginError::internal(e.to_string()))?,
        )?;
        return result.map(drop);
    }
    let request = StepRequest {
        context: standalone_context(plugin, &args)?,
        count,
        reports: match &args.reports {
            Some(path) => match read_json_file(path)? {
                Json::Array(items) => items,
                _ => {
                    return Err(PluginError::config(format!(
                        "{}: reports must be a JSON array",
                        path.display()
                    )))
                }
            },
            None => Vec::new(),
        },
    };
    let value = run_step(plugin, name, &request)?;
    if name == "check" {
        tracing::info!("{}: check passed", plugin.info().name);
        return Ok(());
    }
    print_json(&value)
}

/// Runs a step asked by the engine: its result, and the answer that says it.
fn engine_step<P: Plugin>(
    plugin: &P,
    name: &str,
    request: &StepRequest,
) -> (Result<Json, PluginError>, StepResponse) {
    let result = catch_unwind(AssertUnwindSafe(|| run_step(plugin, name, request)))
        .unwrap_or_else(|_| Err(PluginError::internal(format!("{name} panicked"))));
    let (ok, value, error) = match &result {
        Ok(value) => (true, value.clone(), None),
        Err(e) => (false, Json::Null, Some(e.to_message())),
    };
    let response = StepResponse {
        ok,
        value,
        error,
        parent_death_guard: Some(std::process::id()),
        session: true,
    };
    (result, response)
}

/// `session --engine`: every line on stdin is a [`SessionRequest`]; each gets its
/// answer on one line of stdout. A failed step is answered (and logged) and the
/// session goes on; it ends, exit 0, when stdin ends.
fn session<P: Plugin>(plugin: &P, args: &StepArgs) -> Result<(), PluginError> {
    use std::io::{BufRead, Write};
    if !args.engine {
        return Err(PluginError::config(
            "session is the engine's: it needs --engine (requests on stdin)",
        ));
    }
    let name = plugin.info().name;
    name_process("session", name);
    let mut input = std::io::stdin().lock();
    let mut line = String::new();
    loop {
        line.clear();
        let read = input
            .read_line(&mut line)
            .map_err(|e| PluginError::io(format!("session: reading stdin: {e}")))?;
        if read == 0 {
            return Ok(());
        }
        if line.trim().is_empty() {
            continue;
        }
        let asked: SessionRequest = serde_json::from_str(&line)
            .map_err(|e| PluginError::protocol(format!("session request on stdin: {e}")))?;
        name_process(&asked.step, name);
        let (result, response) = engine_step(plugin, &asked.step, &asked.request);
        if let Err(e) = &result {
            log_failure(name, e);
        }
        let mut text =
            serde_json::to_vec(&response).map_err(|e| PluginError::internal(e.to_string()))?;
        text.push(b'\n');
        let mut out = std::io::stdout().lock();
        out.write_all(&text)
            .and_then(|()| out.flush())
            .map_err(|e| PluginError::io(format!("session: writing the answer: {e}")))?;
        name_process("session", name);
    }
}

/// Names the process (its `comm`, what `ps -o comm` and `/proc/<pid>/comm` show) after
/// what a session does: `<step>:<plugin>` while a step runs, `session:<plugin>` between
/// steps (at most 15 bytes; the system cuts the rest). Best effort.
fn name_process(doing: &str, plugin: &str) {
    let mut name = format!("{doing}:{plugin}").into_bytes();
    name.truncate(15);
    if let Ok(name) = std::ffi::CString::new(name) {
        let _ = rustix::thread::set_name(&name);
    }
}

fn run_step<P: Plugin>(plugin: &P, name: &str, request: &StepRequest) -> Result<Json, PluginError> {
    let ctx = &request.context;
    match name {
        "check" => plugin.check(ctx).map(|()| Json::Null),
        "prepare" => plugin.prepare(ctx),
        "split" => {
            let count = request.count.unwrap_or(1).max(1);
            if count > super::MAX_TASKS {
                return Err(PluginError::config(format!(
                    "split --count {count}: at most {} tasks (the engine's most channels)",
                    super::MAX_TASKS
                )));
            }
            let tasks = plugin.split(ctx, count)?;
            if tasks.is_empty() {
                return Err(PluginError::internal("split returned no task"));
            }
            Ok(Json::Array(tasks))
        }
        "post" => plugin.post_answer(ctx, &request.reports),
        "abort" => plugin.abort_answer(ctx, &request.reports),
        "precommit" => plugin.precommit(ctx, &request.reports),
        other => Err(PluginError::internal(format!("unknown step {other}"))),
    }
}

fn print_json(value: &Json) -> Result<(), PluginError> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)
        .map_err(|e| PluginError::io(e.to_string()))
        .and_then(|()| {
            out.write_all(b"\n")
                .map_err(|e| PluginError::io(e.to_string()))
        })
}

fn read_json_file(path: &PathBuf) -> Result<Json, PluginError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| PluginError::config(format!("{}: {e}", path.display())))?;
    jobfile::parse_lenient(&text, &path.display().to_string())
        .map_err(|e| PluginError::config(e.to_string()))
}

/// The step context of a standalone command: the parameter from `--config` with `-p`
/// variables, the state from `--state`.
fn standalone_context<P: Plugin>(plugin: &P, args: &StepArgs) -> Result<StepContext, PluginError> {
    let path = args.config.as_ref().ok_or_else(|| {
        PluginError::config("--config FILE is required (a job file or a parameter object)")
    })?;
    let source_name = path.display().to_string();
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| PluginError::config(format!("stdin: {e}")))?;
        s
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| PluginError::config(format!("{source_name}: {e}")))?
    };
    let params = jobfile::parse_params(&args.params)
        .and_then(|params| {
            params
                .into_iter()
                .map(|(n, v)| crate::placeholders::literal_param_value(&n, &v).map(|v| (n, v)))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(PluginError::config)?;
    let lookup = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    // Comments first: a `${name}` in a comment is not a use of `name`.
    let text = jobfile::strip_comments_and_trailing_commas(&text);
    let resolver = jobfile::Resolver {
        variable: &lookup,
        expression: None,
    };
    let text = jobfile::substitute(&text, &source_name, &resolver)
        .map_err(|e| PluginError::config(e.to_string()))?;
    let doc = jobfile::parse_lenient(&text, &source_name)
        .map_err(|e| PluginError::config(e.to_string()))?;
    let parameter = jobfile::plugin_parameter(&doc, plugin.info().role, &source_name)
        .map_err(|e| PluginError::config(e.to_string()))?;
    let state = match &args.state {
        Some(path) => read_json_file(path)?,
        None => Json::Null,
    };
    let time_zone =
        jobfile::job_time_zone(&args.time_zone, &doc, &source_name).map_err(PluginError::config)?;
    tracing::debug!("job time zone {time_zone}");
    let fingerprint = fnv1a_hex(parameter.to_string().as_bytes());
    Ok(StepContext {
        parameter,
        state,
        job: JobContext {
            job_id: format!("standalone-{}", std::process::id()),
            fingerprint,
            time_zone,
            task_index: 0,
            task_count: 1,
        },
    })
}

fn fnv1a_hex(bytes: &[u8]) -> String {
    let mut hash: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in bytes {
        hash ^= u128::from(*b);
        hash = hash.wrapping_mul(0x0000000001000000000000000000013B);
    }
    format!("{hash:032x}")
}

// ---- tasks ----------------------------------------------------------------------

type Stdout = Box<dyn Write + Send>;

/// The task's output: its frames (or lines) go to a duplicate of the standard
/// output's descriptor, not through std's `Stdout`, which is line-buffered: it would
/// search every batch for its last newline byte and keep a copy of what follows. The
/// buffer gathers small frames; a larger one (a batch of records is most often 100 KB
/// to 1 MB) goes out with its own write, not copied into the buffer first.
fn stdout_writer() -> Stdout {
    use std::os::fd::AsFd;
    let raw: Stdout = match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(std::io::stdout()),
    };
    Box::new(std::io::BufWriter::with_capacity(64 * 1024, raw))
}

/// What the engine handshake yields: our frame output, the engine's input, the task.
type Handshake = (
    FrameWriter<Stdout>,
    FrameReader<Box<dyn Read + Send>>,
    TaskContext,
);

/// Engine mode: send our hello, read the engine's hello and `configure`.
fn engine_handshake(info: crate::runtime::PluginInfo) -> Result<Handshake, PluginError> {
    let mut out = FrameWriter::new(stdout_writer())
        .map_err(|e| PluginError::io(format!("writing to stdout: {e}")))?;
    out.write_message(&Message::Hello(Hello::new(
        info.role,
        info.name,
        info.version,
    )))?;
    out.flush().map_err(|e| PluginError::io(e.to_string()))?;
    let mut input =
        FrameReader::new(Box::new(BufReader::new(std::io::stdin())) as Box<dyn Read + Send>);
    match input.expect_message()? {
        Message::Hello(hello) => check_hello(&hello)?,
        other => {
            return Err(PluginError::protocol(format!(
                "expected hello from the engine, got {}",
                other.type_name()
            )))
        }
    }
    let configure = match input.expect_message()? {
        Message::Configure(c) => c,
        Message::Cancel(c) => return Err(PluginError::cancelled(c.reason)),
        other => {
            return Err(PluginError::protocol(format!(
                "expected configure from the engine, got {}",
                other.type_name()
            )))
        }
    };
    tracing::debug!(
        "task {} of {} of job {} configured (time zone {})",
        configure.context.task_index,
        configure.context.task_count,
        configure.context.job_id,
        configure.context.time_zone
    );
    Ok((
        out,
        input,
        TaskContext {
            config: configure.task,
            job: configure.context,
        },
    ))
}

fn read<P: Reader>(plugin: &P, args: &TaskArgs) -> Result<(), PluginError> {
    if args.step.engine {
        return read_engine(plugin);
    }
    let cancelled = Arc::new(AtomicBool::new(false));
    let mut sink = match args.format {
        Format::Jsonl => RecordSink::jsonl(stdout_writer(), cancelled),
        Format::Msgpack => {
            // Hello first, so that every failure below reaches a piped writer as an
            // `error` frame: a writer commits only a stream that ended with `eos`.
            let mut out = FrameWriter::new(stdout_writer())
                .map_err(|e| PluginError::io(format!("writing to stdout: {e}")))?;
            let info = plugin.info();
            out.write_message(&Message::Hello(Hello::new(
                info.role,
                info.name,
                info.version,
            )))?;
            RecordSink::frames(out, false, cancelled)
        }
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        read_standalone(plugin, args, &mut sink)
    }))
    .unwrap_or_else(|_| {
        Err(PluginError::internal(format!(
            "{} panicked while reading",
            plugin.info().name
        )))
    });
    if let Err(e) = &result {
        // After `eos` too: the writer reads to EOF, so a failed `post` still stops it.
        let _ = sink.send(&Message::Error(e.to_message()));
    }
    result
}

/// A standalone reader: prepare, split 1, read, `eos`, post.
fn read_standalone<P: Reader>(
    plugin: &P,
    args: &TaskArgs,
    sink: &mut RecordSink,
) -> Result<(), PluginError> {
    let dirty_file = args
        .dirty_file
        .as_deref()
        .map(DirtyFile::create)
        .transpose()?;
    sink.set_dirty_policy(Some(args.error_limit), dirty_file);
    let ctx = standalone_context(plugin, &args.step)?;
    let state = plugin.prepare(&ctx)?;
    let ctx = StepContext { state, ..ctx };
    let tasks = plugin.split(&ctx, 1)?;
    for (index, config) in tasks.into_iter().enumerate() {
        let task = TaskContext {
            config,
            job: JobContext {
                task_index: index as u32,
                ..ctx.job.clone()
            },
        };
        plugin.read(&task, sink)?;
    }
    sink.finish()?;
    let checkpoints = sink.checkpoints().to_vec();
    plugin.post(&ctx, &checkpoints)
}

fn read_engine<P: Reader>(plugin: &P) -> Result<(), PluginError> {
    let (out, mut input, task) = engine_handshake(plugin.info())?;
    let cancelled = Arc::new(AtomicBool::new(false));
    // Watch stdin for `cancel` (or the engine going away) while the task runs.
    let flag = cancelled.clone();
    std::thread::spawn(move || loop {
        match input.next_message() {
            Ok(Some(Message::Cancel(_))) | Ok(None) | Err(_) => {
                flag.store(true, Ordering::Relaxed);
                return;
            }
            Ok(Some(_)) => {}
        }
    });
    let mut sink = RecordSink::frames(out, true, cancelled);
    let result =
        catch_unwind(AssertUnwindSafe(|| plugin.read(&task, &mut sink))).unwrap_or_else(|_| {
            Err(PluginError::internal(format!(
                "{} panicked while reading",
                plugin.info().name
            )))
        });
    match result.and_then(|()| sink.finish()) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = sink.send(&Message::Error(e.to_message()));
            Err(e)
        }
    }
}

fn write<P: Writer>(plugin: &P, args: &TaskArgs) -> Result<(), PluginError> {
    if args.step.engine {
        return write_engine(plugin);
    }
    let ctx = standalone_context(plugin, &args.step)?;
    // Before `prepare`: a bad --dirty-file path must not leave anything prepared.
    let mut output = WriterOutput::standalone().with_error_limit(args.error_limit);
    if let Some(path) = &args.dirty_file {
        output = output.with_dirty_file(DirtyFile::create(path)?);
    }
    let stdin: Box<dyn Read + Send> = Box::new(std::io::stdin());
    let mut source = match args.input_format {
        Format::Jsonl => RecordSource::jsonl(Box::new(BufReader::with_capacity(256 * 1024, stdin))),
        Format::Msgpack => RecordSource::frames(FrameReader::new(stdin), false),
    };
    let state = plugin.prepare(&ctx)?;
    let ctx = StepContext { state, ..ctx };
    let mut tasks = plugin.split(&ctx, 1)?;
    if tasks.len() != 1 {
        return Err(PluginError::internal(format!(
            "split 1 returned {} tasks",
            tasks.len()
        )));
    }
    let task = TaskContext {
        config: tasks.remove(0),
        job: ctx.job.clone(),
    };
    // Commit only a whole input: the stream ended with `eos` and no `error`
    // (see RecordSource), and no more dirty records than the error limit allows.
    let result = catch_unwind(AssertUnwindSafe(|| {
        let report = plugin.write(&task, &mut source, &mut output)?;
        source.expect_end()?;
        output.check_error_limit()?;
        Ok(report)
    }))
    .unwrap_or_else(|_| {
        Err(PluginError::internal(format!(
            "{} panicked while writing",
            plugin.info().name
        )))
    });
    match result {
        Ok(report) => {
            tracing::info!(
                records = source.records(),
                dirty = output.dirty_count(),
                "{}: write finished",
                plugin.info().name
            );
            plugin.post(&ctx, &[report])
        }
        Err(mut e) => {
            match plugin.abort(&ctx) {
                Ok(()) => e.message.push_str("; nothing was committed"),
                Err(abort_error) => e.message.push_str(&format!(
                    "; nothing was committed, but the abort after the failure also failed \
                     (uncommitted data may be left): {}",
                    abort_error.message
                )),
            }
            Err(e)
        }
    }
}

fn write_engine<P: Writer>(plugin: &P) -> Result<(), PluginError> {
    let (out, input, task) = engine_handshake(plugin.info())?;
    let mut source = RecordSource::frames(input, true);
    let mut output = WriterOutput::engine(out);
    let result = catch_unwind(AssertUnwindSafe(|| {
        plugin.write(&task, &mut source, &mut output)
    }))
    .unwrap_or_else(|_| {
        Err(PluginError::internal(format!(
            "{} panicked while writing",
            plugin.info().name
        )))
    });
    match result {
        Ok(report) => {
            let records = source.records();
            let dirty = output.dirty_count();
            output.send(&Message::Done(Done {
                records,
                written: records.saturating_sub(dirty),
                dirty,
                report,
            }))
        }
        Err(e) => {
            let _ = output.send(&Message::Error(e.to_message()));
            Err(e)
        }
    }
}
