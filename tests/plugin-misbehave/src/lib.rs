//! `reader-misbehave` and `writer-misbehave`: plugins that break the protocol on command,
//! so the engine's handling of every failure can be tested with real processes.
//!
//! They speak the protocol by hand (not through `protocol::runtime`), to be able to
//! break it. The behaviour comes from the parameter (every task config is the parameter
//! plus `taskIndex`), or from the environment variable `MISBEHAVE_MODE`:
//!
//! | parameter | meaning |
//! |---|---|
//! | `mode` | `ok` (default), `no_hello` (exit 0 with no output), `wrong_version` (hello with version 9.0.0), `garbage` (text on stdout), `crash` (abort after half the records), `exit_silently` (exit 3 after half the records, no error frame), `hang` (hello, then nothing), `error` (an `error` frame after half the records) |
//! | `only_task` | apply `mode` to this task index only; other tasks behave |
//! | `records` | records per task (default 1000), in batches of 100, a checkpoint after each batch (reader) |
//! | `dirty` | dirty records per task: a reader sends them before its records, a writer reports that many of the records it received |
//! | `dirty_every` | a reader reports every N-th of its `records` as dirty instead of sending it (a dirty rate of 1/N) |
//! | `fail_step` | this job step (`check`, `prepare`, `split`, `post`, `abort`) fails (with a config error for `check`) |
//! | `vanish_step` | this job step exits 3 without answering (a crash) |
//! | `check_error` | `service`: every `check` fails with a retryable service error |
//! | `marker_dir` | `post` and `abort` write `<role>-post.json` / `<role>-abort.json` there (the requests' reports); every step appends `<role> <step> <process id>` to `steps.log` there |
//! | `tasks` | a reader's `split` returns this many tasks whatever the advice |
//! | `task_ms` | a reader task takes at least this long, and writes `task-<i>.json` (`{"start_ms", "end_ms"}`, Unix milliseconds) into `marker_dir`; a reader task also writes `reader-task-<i>.pid` (its process id) there when it starts |
//! | `post_ms` | `post` takes at least this long (before it writes its marker); with `marker_dir`, it first writes `<role>-post.pid` (its process id) |
//! | `post_answer` / `abort_answer` | the value `post` / `abort` answers (default null) |
//! | `session` | `false`: step answers do not offer `session`, so the engine starts a process per step (default `true`: they offer it, and `session --engine` serves the steps of one process) |
//! | `parent_death_guard` | `false`: step answers do not offer `--engine-pid`, so the engine keeps starting the plugin through its launcher (default `true`: they offer it, and the plugin guards itself when started with it, as plugins on `protocol::runtime` do) |
//! | `echo` | parameter keys whose values every step and task prints on stderr (`<key> is <value>`), to test redaction |
//! | `follow`, `follow_*` | follow mode (a `precommit` step, `followBatch`, a call log): see [`follow`]; `MISBEHAVE_FAIL_READER_STEP=<step>` fails a reader step as `fail_step` does, without changing the job's fingerprint |
//!
//! Without a mode they keep the contract `streamport test-plugin` checks (`--version`, a
//! parameter or task config that is not an object is a config error, `error` frames
//! before a failure exit, exit 1 after `cancel`). The modes that break one point of
//! that contract each (for its tests) are in [`contract`].

// A test plugin's stderr is its log, as with every plugin.
#![allow(clippy::print_stderr)]

use std::io::{Read, Write};
use std::time::Duration;

use protocol::frame::{check_hello, FrameReader, FrameWriter};
use protocol::message::{
    Batch, Checkpoint, Dirty, Done, Eos, ErrorKind, ErrorMessage, Hello, Message,
};
use protocol::runtime::{SessionRequest, StepRequest, StepResponse};
use protocol::{Role, Value};
use serde_json::{json, Value as Json};

pub mod contract;
pub mod follow;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn name(role: Role) -> &'static str {
    match role {
        Role::Writer => "writer-misbehave",
        _ => "reader-misbehave",
    }
}

fn param_u64(p: &Json, key: &str, default: u64) -> u64 {
    p.get(key).and_then(Json::as_u64).unwrap_or(default)
}

fn mode_of(config: &Json) -> String {
    if let Ok(mode) = std::env::var("MISBEHAVE_MODE") {
        return mode;
    }
    let mode = config.get("mode").and_then(Json::as_str).unwrap_or("ok");
    match (
        config.get("only_task").and_then(Json::as_u64),
        config.get("taskIndex").and_then(Json::as_u64),
    ) {
        (Some(only), Some(index)) if only != index => "ok".to_owned(),
        _ => mode.to_owned(),
    }
}

/// Runs the plugin and exits.
pub fn main(role: Role) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(pid) = args
        .iter()
        .position(|a| a == "--engine-pid")
        .and_then(|i| args.get(i + 1))
    {
        let guarded = pid
            .parse()
            .map_err(|_| format!("--engine-pid {pid:?} is not a process id"))
            .and_then(protocol::parent_death::guard);
        if let Err(e) = guarded {
            eprintln!("{}: {e}", name(role));
            std::process::exit(1);
        }
    }
    let command = args.first().map(String::as_str).unwrap_or("");
    let code = match command {
        "--version" | "-V" if contract::mode() != "no_version" => {
            let _ = writeln!(std::io::stdout(), "{} {}", name(role), protocol::VERSION);
            0
        }
        "spec" => {
            let spec = json!({"plugin": name(role), "version": VERSION, "parameters": []});
            let _ = writeln!(std::io::stdout(), "{spec}");
            0
        }
        "check" | "prepare" | "split" | "precommit" | "post" | "abort" => step(role, command),
        "session" if contract::mode() != "session_unserved" => session(role),
        "read" if role == Role::Reader => task(role),
        "write" if role == Role::Writer => task(role),
        other => {
            eprintln!("{}: unknown command {other:?}", name(role));
            2
        }
    };
    std::process::exit(code)
}

/// Answers sent on stdout by this process (a session checks that each step answered).
static ANSWERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn answer(response: &StepResponse) {
    let _ = writeln!(std::io::stdout(), "{}", json!(response));
    ANSWERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

fn step(role: Role, step: &str) -> i32 {
    let mut input = String::new();
    let _ = std::io::stdin().read_to_string(&mut input);
    step_with(role, step, &input)
}

/// `session --engine`: a step per line (`{"step": …, "request": …}`) until stdin ends. A
/// step that ends without an answer ends the session with its exit code.
fn session(role: Role) -> i32 {
    use std::io::BufRead;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { return 1 };
        let asked: SessionRequest = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{}: bad session request: {e}", name(role));
                return 2;
            }
        };
        let before = ANSWERS.load(std::sync::atomic::Ordering::Relaxed);
        let request = json!(asked.request).to_string();
        let code = step_with(role, &asked.step, &request);
        if ANSWERS.load(std::sync::atomic::Ordering::Relaxed) == before {
            return code;
        }
    }
    0
}

fn step_with(role: Role, step: &str, input: &str) -> i32 {
    let request: StepRequest = match serde_json::from_str(input) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}: bad {step} request: {e}", name(role));
            return 2;
        }
    };
    let p = &request.context.parameter;
    if contract::mode() == "step_stdout_log" {
        let _ = writeln!(std::io::stdout(), "INFO {}: starting {step}", name(role));
    }
    if !p.is_object() {
        let error = ErrorMessage {
            kind: ErrorKind::Config,
            retryable: false,
            message: format!("{}: the parameter must be a JSON object", name(role)),
        };
        let response = StepResponse {
            ok: false,
            value: Json::Null,
            error: Some(error),
            parent_death_guard: None,
            session: contract::mode() == "session_unserved",
        };
        answer(&response);
        return 2;
    }
    let guard = p
        .get("parent_death_guard")
        .and_then(Json::as_bool)
        .unwrap_or(true);
    let session = p.get("session").and_then(Json::as_bool).unwrap_or(true);
    eprintln!(
        "{}: {step} (job {})",
        name(role),
        request.context.job.job_id
    );
    if let Some(dir) = p.get("marker_dir").and_then(Json::as_str) {
        // Which process ran which step (one write per line, as calls.log).
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(format!("{dir}/steps.log"))
        {
            let line = format!("{} {step} {}\n", role.name(), std::process::id());
            let _ = f.write_all(line.as_bytes());
        }
    }
    let mut call = follow::step_line(role, step, &request.context.job, request.reports.len());
    if step == "check" && p.get("check_error").and_then(Json::as_str) == Some("service") {
        let response = StepResponse {
            ok: false,
            value: Json::Null,
            error: Some(ErrorMessage {
                kind: ErrorKind::Service,
                retryable: true,
                message: format!("{}: simulated temporary check failure", name(role)),
            }),
            parent_death_guard: guard.then(std::process::id),
            session,
        };
        answer(&response);
        return 1;
    }
    if p.get("fail_step").and_then(Json::as_str) == Some(step) || follow::fails(role, step) {
        let kind = if step == "check" {
            ErrorKind::Config
        } else {
            ErrorKind::Service
        };
        let response = StepResponse {
            ok: false,
            value: Json::Null,
            error: Some(ErrorMessage {
                kind,
                retryable: false,
                message: format!("{}: simulated {step} failure", name(role)),
            }),
            parent_death_guard: guard.then(std::process::id),
            session,
        };
        answer(&response);
        return if step == "check" { 2 } else { 1 };
    }
    if p.get("vanish_step").and_then(Json::as_str) == Some(step) {
        eprintln!("{}: vanishing in {step}", name(role));
        std::process::exit(3);
    }
    let follow_split = match step {
        "split" => follow::split(role, p, request.count.unwrap_or(1)),
        _ => None,
    };
    let value = match step {
        "split" if follow_split.is_some() => {
            let (tasks, id) = follow_split.unwrap_or((Json::Null, String::new()));
            call.push_str(&format!(" batch={id}"));
            tasks
        }
        "split" => {
            let count = match (role, p.get("tasks").and_then(Json::as_u64)) {
                (Role::Reader, Some(tasks)) => tasks as usize,
                _ => request.count.unwrap_or(1),
            };
            Json::Array(
                (0..count)
                    .map(|i| {
                        let mut t = p.clone();
                        if let Some(m) = t.as_object_mut() {
                            m.insert("taskIndex".into(), json!(i));
                        }
                        t
                    })
                    .collect(),
            )
        }
        "prepare" => json!({"prepared_by": name(role)}),
        "post" | "abort" | "precommit" => {
            if step == "post" {
                follow::post(role, p);
            }
            let post_ms = param_u64(p, "post_ms", 0);
            if step == "post" && post_ms > 0 {
                if let Some(dir) = p.get("marker_dir").and_then(Json::as_str) {
                    let file = format!("{dir}/{}-post.pid", role.name());
                    let _ = std::fs::write(file, std::process::id().to_string());
                }
                std::thread::sleep(Duration::from_millis(post_ms));
            }
            if let Some(dir) = p.get("marker_dir").and_then(Json::as_str) {
                let file = format!("{dir}/{}-{step}.json", role.name());
                let body = json!({"state": request.context.state, "reports": request.reports, "fingerprint": request.context.job.fingerprint});
                if let Err(e) = std::fs::write(&file, body.to_string()) {
                    eprintln!("{}: cannot write {file}: {e}", name(role));
                    return 1;
                }
            }
            p.get(format!("{step}_answer"))
                .cloned()
                .unwrap_or(Json::Null)
        }
        _ => Json::Null,
    };
    follow::log_call(p, &call);
    let response = StepResponse {
        ok: true,
        value,
        error: None,
        parent_death_guard: guard.then(std::process::id),
        session,
    };
    answer(&response);
    0
}

fn echo(role: Role, p: &Json) {
    for key in p.get("echo").and_then(Json::as_array).into_iter().flatten() {
        if let Some(key) = key.as_str() {
            eprintln!(
                "{}: {key} is {}",
                name(role),
                p.get(key).unwrap_or(&Json::Null)
            );
        }
    }
}

pub(crate) type Out = FrameWriter<std::io::BufWriter<std::io::Stdout>>;

fn hello(role: Role, out: &mut Out, version: &str) {
    let mut h = Hello::new(role, name(role), VERSION);
    h.version = version.to_owned();
    let _ = out.write_message(&Message::Hello(h));
    let _ = out.flush();
}

fn hang() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn task(role: Role) -> i32 {
    let mut input = FrameReader::new(std::io::BufReader::new(std::io::stdin()));
    // Read the engine's hello and configure before deciding how to misbehave.
    let config = match (input.expect_message(), input.expect_message()) {
        (Ok(Message::Hello(h)), Ok(Message::Configure(c))) => {
            if let Err(e) = check_hello(&h) {
                eprintln!("{}: {e}", name(role));
                return 1;
            }
            follow::log_call(
                &c.task,
                &format!(
                    "{} task{} fp={}",
                    role.name(),
                    c.context.task_index,
                    c.context.fingerprint
                ),
            );
            c.task
        }
        (Ok(Message::Hello(_)), Ok(Message::Cancel(c))) => {
            eprintln!("{}: cancelled before configure: {}", name(role), c.reason);
            return contract::cancel_exit_code();
        }
        other => {
            eprintln!("{}: bad handshake: {other:?}", name(role));
            return 1;
        }
    };
    echo(role, &config);
    let mode = mode_of(&config);
    let index = param_u64(&config, "taskIndex", 0);
    eprintln!("{}: task {index} in mode {mode}", name(role));
    match mode.as_str() {
        "no_hello" => return 0,
        "garbage" => {
            let _ = std::io::stdout()
                .write_all(b"DEBUG: connecting to the service...\nthis is not a frame\n");
            let _ = std::io::stdout().flush();
            std::thread::sleep(Duration::from_millis(200));
            return 0;
        }
        _ => {}
    }
    let Ok(mut out) = FrameWriter::new(std::io::BufWriter::new(std::io::stdout())) else {
        return 1;
    };
    if mode == "wrong_version" {
        hello(role, &mut out, "9.0.0");
        std::thread::sleep(Duration::from_secs(30));
        return 0;
    }
    hello(role, &mut out, protocol::message::PROTOCOL_VERSION);
    if !config.is_object() {
        return contract::fail(
            &mut out,
            ErrorKind::Config,
            "the task config must be a JSON object",
        );
    }
    if mode == "hang" {
        hang();
    }
    match role {
        Role::Writer => write_task(&mut input, &mut out, &config, &mode),
        _ => read_task(&mut out, &config, &mode),
    }
}

fn record(i: u64) -> Vec<Value> {
    vec![Value::Long(i as i64), Value::String(format!("row-{i}"))]
}

fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

fn read_task(out: &mut Out, config: &Json, mode: &str) -> i32 {
    let start_ms = unix_ms();
    if let Some(dir) = config.get("marker_dir").and_then(Json::as_str) {
        let index = param_u64(config, "taskIndex", 0);
        let _ = std::fs::write(
            format!("{dir}/reader-task-{index}.pid"),
            std::process::id().to_string(),
        );
    }
    let code = read_records(out, config, mode);
    let task_ms = param_u64(config, "task_ms", 0);
    if task_ms > 0 {
        std::thread::sleep(Duration::from_millis(task_ms));
        if let Some(dir) = config.get("marker_dir").and_then(Json::as_str) {
            let index = param_u64(config, "taskIndex", 0);
            let body = json!({"start_ms": start_ms as u64, "end_ms": unix_ms() as u64});
            let _ = std::fs::write(format!("{dir}/task-{index}.json"), body.to_string());
        }
    }
    if code == 0 {
        // eos goes last, after the task's time.
        let _ = out.write_message(&Message::Eos(Eos {
            records: LAST_FORWARDED.load(std::sync::atomic::Ordering::Relaxed)
                + u64::from(mode == "eos_mismatch"),
            bytes: LAST_BYTES.load(std::sync::atomic::Ordering::Relaxed),
        }));
        if mode == "after_eos" {
            let _ = out.write_message(&Message::Progress(protocol::message::Progress::default()));
        }
        if out.flush().is_err() {
            return 1;
        }
    }
    code
}

static LAST_FORWARDED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static LAST_BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Sends the records; the caller sends `eos` when this returns 0.
fn read_records(out: &mut Out, config: &Json, mode: &str) -> i32 {
    let records = param_u64(config, "records", 1000);
    let dirty = param_u64(config, "dirty", 0);
    let index = param_u64(config, "taskIndex", 0);
    for d in 0..dirty {
        let _ = out.write_message(&Message::Dirty(Dirty::new(
            &record(d),
            format!("column 1: simulated bad value in record {d}"),
        )));
    }
    let (mut sent, mut bytes, mut batch_no, mut forwarded) = (0u64, 0u64, 0u64, 0u64);
    while sent < records {
        if sent >= records / 2 && sent > 0 {
            if let Some(code) = misbehave_mid_stream(out, mode) {
                return code;
            }
        }
        let n = (records - sent).min(100);
        let every = param_u64(config, "dirty_every", 0);
        let mut batch: Vec<Vec<Value>> = Vec::with_capacity(n as usize);
        for i in sent..sent + n {
            if every > 0 && i % every == every - 1 {
                let reason = format!("column 0: record {i} is every {every}th");
                let _ = out.write_message(&Message::Dirty(Dirty::new(&record(i), reason)));
            } else {
                batch.push(record(i));
            }
        }
        let b = Batch::from_records(&batch);
        bytes += b.bytes;
        forwarded += u64::from(b.count);
        if contract::write_batch(out, b, mode).is_err() {
            return 1;
        }
        sent += n;
        let _ = out.write_message(&Message::Checkpoint(Checkpoint {
            state: follow::checkpoint(
                config,
                json!({"task": index, "batch": batch_no}),
                unix_ms() as u64,
            ),
        }));
        batch_no += 1;
    }
    if records == 0 || records == 1 {
        if let Some(code) = misbehave_mid_stream(out, mode) {
            return code;
        }
    }
    LAST_FORWARDED.store(forwarded, std::sync::atomic::Ordering::Relaxed);
    LAST_BYTES.store(bytes, std::sync::atomic::Ordering::Relaxed);
    0
}

/// The mid-stream misbehaviours; `Some(exit code)` when the task must end now.
fn misbehave_mid_stream(out: &mut Out, mode: &str) -> Option<i32> {
    let _ = out.flush();
    match mode {
        "crash" => std::process::abort(),
        "exit_silently" => Some(3),
        "error" => {
            let _ = out.write_message(&Message::Error(ErrorMessage {
                kind: ErrorKind::Service,
                retryable: true,
                message: "simulated service failure reading table t1".to_owned(),
            }));
            let _ = out.flush();
            Some(1)
        }
        _ => None,
    }
}

fn write_task(
    input: &mut FrameReader<std::io::BufReader<std::io::Stdin>>,
    out: &mut Out,
    config: &Json,
    mode: &str,
) -> i32 {
    let dirty = param_u64(config, "dirty", 0);
    let index = param_u64(config, "taskIndex", 0);
    let (mut received, mut reported_dirty, mut batches) = (0u64, 0u64, 0u64);
    loop {
        let message = match input.next_message() {
            Ok(Some(m)) => m,
            Ok(None) if mode == "accept_truncated" => break,
            Ok(None) => {
                return contract::fail(out, ErrorKind::Protocol, "input ended without eos");
            }
            Err(e) => {
                return contract::fail(out, ErrorKind::Protocol, &e.to_string());
            }
        };
        match message {
            Message::Batch(b) => {
                let records = match b.decode() {
                    Ok(r) => r,
                    Err(e) => return contract::fail(out, ErrorKind::Protocol, &e.to_string()),
                };
                if mode == "send_batch" {
                    let _ = out.write_message(&Message::Batch(b.clone()));
                }
                for r in &records {
                    if reported_dirty < dirty {
                        reported_dirty += 1;
                        let _ = out.write_message(&Message::Dirty(Dirty::new(
                            r,
                            "column 0: simulated rejection by the target",
                        )));
                    }
                }
                received += u64::from(b.count);
                batches += 1;
                if batches == 2 {
                    if let Some(code) = misbehave_mid_stream(out, mode) {
                        return code;
                    }
                }
            }
            Message::Eos(_) => break,
            Message::Cancel(c) => {
                eprintln!("writer-misbehave: cancelled: {}", c.reason);
                return contract::cancel_exit_code();
            }
            _ => {}
        }
    }
    let _ = out.write_message(&Message::Done(Done {
        records: received + u64::from(mode == "done_mismatch"),
        written: received - reported_dirty,
        dirty: reported_dirty,
        report: json!({"task": index, "records": received}),
    }));
    if out.flush().is_err() {
        return 1;
    }
    0
}
