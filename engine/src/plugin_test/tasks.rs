//! The reader's and the writer's suites: two jobs each. The first runs the failure
//! paths (a bad task config, `cancel` before and during a task, and for a writer a
//! truncated and a corrupt input) and is aborted; the second runs whole tasks and
//! commits with `post`.

use protocol::frame::DEFAULT_MAX_FRAME_BYTES;
use protocol::message::{Batch, Configure, Eos, Hello, JobContext, Message};
use protocol::{Role, Value};
use serde_json::Value as Json;

use super::failures::{failure_task, Scenario};
use super::observe::{describe_error, observe, Observation, Terminal, ADVISED_BATCH_FRAME};
use super::process::Session;
use super::steps::{bad_config, judge_commit_answer, request, step_ok};
use super::Suite;

/// Records per batch the suite sends a writer.
const SEND_BATCH: usize = 500;

pub(super) fn engine_hello() -> Message {
    Message::Hello(Hello::new(
        Role::Engine,
        "streamport test-plugin",
        env!("CARGO_PKG_VERSION"),
    ))
}

fn task_args(role: Role) -> [&'static str; 2] {
    match role {
        Role::Reader => ["read", "--engine"],
        _ => ["write", "--engine"],
    }
}

pub(super) fn start(suite: &Suite) -> Result<Session, String> {
    Session::start(
        &suite.plugin,
        &task_args(suite.role),
        DEFAULT_MAX_FRAME_BYTES,
    )
    .map_err(|e| format!("cannot run {}: {e}", suite.plugin.display()))
}

pub(super) fn configure(task: &Json, context: JobContext) -> Message {
    Message::Configure(Configure {
        task: task.clone(),
        context,
    })
}

/// `check`, `check` with a bad config, `prepare` and `split` of one job; the state
/// and the task configs.
fn open_job(suite: &mut Suite, label: &str, count: usize) -> Option<(Json, Vec<Json>)> {
    let p = suite.parameter.clone();
    let job = suite.job(0, 0);
    let state = step_ok(
        suite,
        &format!("prepare{label}"),
        "prepare",
        &request(&p, &Json::Null, job, None, vec![]),
        |v| Ok(format!("state {}", short(v))),
    )?;
    let job = suite.job(0, 0);
    let role = suite.role;
    let tasks = step_ok(
        suite,
        &format!("split{label}"),
        "split",
        &request(&p, &state, job, Some(count), vec![]),
        |v| match v.as_array() {
            Some(t) if role == Role::Writer && t.len() != count => Err(format!(
                "a writer's split must return exactly the {count} tasks asked for; it returned {}",
                t.len()
            )),
            Some(t) if t.is_empty() || t.len() > count => Err(format!(
                "split --count {count} returned {} tasks (expected 1 to {count})",
                t.len()
            )),
            Some(t) => Ok(format!("{} task configs", t.len())),
            None => Err(format!(
                "split answered {}, not an array of task configs",
                short(v)
            )),
        },
    )?;
    Some((state, tasks.as_array().cloned().unwrap_or_default()))
}

fn short(v: &Json) -> String {
    let t = v.to_string();
    if t.len() > 80 {
        format!(
            "{}…",
            &t[..t.char_indices().nth(77).map_or(t.len(), |(i, _)| i)]
        )
    } else {
        t
    }
}

fn check_step(suite: &mut Suite) -> bool {
    let p = suite.parameter.clone();
    let job = suite.job(0, 0);
    step_ok(
        suite,
        "check",
        "check",
        &request(&p, &Json::Null, job, None, vec![]),
        |_| Ok("configuration and connectivity accepted".to_owned()),
    )
    .is_some()
}

fn abort_step(suite: &mut Suite, state: &Json) {
    let p = suite.parameter.clone();
    let job = suite.job(0, 0);
    step_ok(
        suite,
        "abort",
        "abort",
        &request(&p, state, job, None, vec![]),
        |v| judge_commit_answer("abort", v),
    );
}

pub fn reader_suite(suite: &mut Suite) {
    bad_config(suite);
    if !check_step(suite) {
        suite
            .report
            .skip("tasks", "check failed: fix the configuration first");
        return;
    }
    if let Some((state, tasks)) = open_job(suite, " (job 1)", 2) {
        let count = tasks.len() as u32;
        for scenario in [
            Scenario::BadTaskConfig,
            Scenario::CancelFirst,
            Scenario::CancelMid,
        ] {
            let context = suite.job(0, count);
            failure_task(suite, scenario, &tasks[0], context);
        }
        abort_step(suite, &state);
    }
    let Some((state, tasks)) = open_job(suite, " (job 2)", 2) else {
        return;
    };
    let mut checkpoints = Vec::new();
    let count = tasks.len() as u32;
    for (i, task) in tasks.iter().enumerate() {
        let label = if i == 0 {
            "read".to_owned()
        } else {
            format!("read task {i}")
        };
        let context = suite.job(i as u32, count);
        match read_task(suite, &label, task, context) {
            Some(mut c) => checkpoints.append(&mut c),
            None => {
                suite.report.skip("post", "a task failed");
                return;
            }
        }
    }
    let p = suite.parameter.clone();
    let job = suite.job(0, count);
    step_ok(
        suite,
        "post",
        "post",
        &request(&p, &state, job, None, checkpoints),
        |v| judge_commit_answer("post", v),
    );
}

pub fn writer_suite(suite: &mut Suite) {
    bad_config(suite);
    if !check_step(suite) {
        suite
            .report
            .skip("tasks", "check failed: fix the configuration first");
        return;
    }
    if let Some((state, tasks)) = open_job(suite, " (job 1)", 2) {
        for scenario in [
            Scenario::BadTaskConfig,
            Scenario::CancelFirst,
            Scenario::CancelMid,
            Scenario::Truncated,
            Scenario::BadInput,
        ] {
            let context = suite.job(0, 2);
            failure_task(suite, scenario, &tasks[0], context);
        }
        abort_step(suite, &state);
    }
    let Some((state, tasks)) = open_job(suite, " (job 2)", 1) else {
        return;
    };
    let context = suite.job(0, 1);
    let Some(report) = write_task(suite, &tasks[0], context) else {
        suite.report.skip("post", "the task failed");
        return;
    };
    let p = suite.parameter.clone();
    let job = suite.job(0, 1);
    step_ok(
        suite,
        "post",
        "post",
        &request(&p, &state, job, None, vec![report]),
        |v| judge_commit_answer("post", v),
    );
}

/// The checks every task stream gets: frames, hello; `false` if the stream is unusable.
fn judge_stream(suite: &mut Suite, label: &str, o: &Observation) -> bool {
    let frames_ok = match (
        &o.broken,
        o.bad_messages.first(),
        o.progress_problems.first(),
    ) {
        (Some(e), _, _) => suite.report.fail(
            &format!("{label}: frames"),
            format!(
                "{e}; the plugin {}{}",
                o.ended(suite.timeout),
                o.stderr_note()
            ),
        ),
        (None, Some(m), _) | (None, None, Some(m)) => {
            suite.report.fail(&format!("{label}: frames"), m.clone())
        }
        (None, None, None) => suite.report.pass(
            &format!("{label}: frames"),
            format!("{} frames, each with a valid length and CRC-32", o.frames),
        ),
    };
    let hello = match &o.hello {
        Some(Ok(h)) => Ok(format!(
            "{} {}, role {}, {} {}",
            h.protocol,
            h.version,
            h.role.name(),
            h.name,
            h.program_version
        )),
        Some(Err(e)) => Err(e.clone()),
        None => Err(format!(
            "no hello: the plugin {} before its first frame{}",
            o.ended(suite.timeout),
            o.stderr_note()
        )),
    };
    let hello_ok = suite.report.check(&format!("{label}: hello"), hello);
    frames_ok && hello_ok
}

/// Why a stream ended without its last message, in words.
fn no_end(suite: &Suite, o: &Observation, want: &str) -> String {
    match &o.terminal {
        Some(Terminal::Error(e)) => {
            format!("the plugin sent {} instead of {want}", describe_error(e))
        }
        _ if o.timed_out => format!(
            "no {want}: nothing on stdout for {} s after {} frames (the plugin hangs)",
            suite.timeout.as_secs_f64(),
            o.frames
        ),
        _ => format!(
            "the stream ended without {want} after {} records: the plugin {}{}",
            o.records,
            o.ended(suite.timeout),
            o.stderr_note()
        ),
    }
}

fn judge_exit(suite: &mut Suite, label: &str, o: &Observation, after: &str) {
    let result = if let Some(m) = o.after_terminal.first() {
        Err(format!("{m}: {after} must be the last thing on stdout"))
    } else {
        match o.code() {
            Some(0) => Ok(format!("exited 0 after {after}")),
            _ => Err(format!(
                "the plugin {} after {after} (expected exit 0){}",
                o.ended(suite.timeout),
                o.stderr_note()
            )),
        }
    };
    suite.report.check(&format!("{label}: exit"), result);
}

/// A whole reader task; its checkpoints if it passed.
fn read_task(
    suite: &mut Suite,
    label: &str,
    task: &Json,
    context: JobContext,
) -> Option<Vec<Json>> {
    let mut s = match start(suite) {
        Ok(s) => s,
        Err(e) => {
            suite.report.fail(label, e);
            return None;
        }
    };
    s.send(&engine_hello());
    s.send(&configure(task, context));
    let o = observe(&mut s, Role::Reader, suite.timeout, suite.timeout, None);
    let mut ok = judge_stream(suite, label, &o);
    let batches = match o.batch_problems.first() {
        Some(p) => Err(if o.batch_problems.len() > 1 {
            format!("{p} (and {} more)", o.batch_problems.len() - 1)
        } else {
            p.clone()
        }),
        None => Ok(format!(
            "{} batches, {} records, {} bytes; largest batch frame {} bytes{}",
            o.batches,
            o.records,
            o.bytes,
            o.largest_batch_frame,
            if o.largest_batch_frame > ADVISED_BATCH_FRAME {
                " (over the advised 4 MiB: smaller batches keep memory and latency low)"
            } else {
                ""
            }
        )),
    };
    ok &= suite.report.check(&format!("{label}: batches"), batches);
    let eos = match &o.terminal {
        Some(Terminal::Eos { records, bytes }) if (*records, *bytes) != (o.records, o.bytes) => {
            Err(format!(
                "eos says {records} records and {bytes} bytes but the batches held {} records and {} bytes",
                o.records, o.bytes
            ))
        }
        Some(Terminal::Eos { records, .. }) => Ok(format!("eos with {records} records, matching the batches")),
        _ => Err(no_end(suite, &o, "eos")),
    };
    let eos_ok = suite.report.check(&format!("{label}: eos"), eos);
    if o.sent_terminal("eos") {
        judge_exit(suite, label, &o, "eos");
    } else {
        suite.report.skip(&format!("{label}: exit"), "no eos");
    }
    (ok && eos_ok && o.code() == Some(0)).then_some(o.checkpoints)
}

fn batches_of(records: &[Vec<Value>]) -> Vec<Batch> {
    records
        .chunks(SEND_BATCH)
        .map(Batch::from_records)
        .collect()
}

/// A whole writer task; its `done.report` if it passed.
fn write_task(suite: &mut Suite, task: &Json, context: JobContext) -> Option<Json> {
    let label = "write";
    let mut s = match start(suite) {
        Ok(s) => s,
        Err(e) => {
            suite.report.fail(label, e);
            return None;
        }
    };
    s.send(&engine_hello());
    s.send(&configure(task, context));
    let batches = batches_of(&suite.records);
    let (records, bytes) = batches.iter().fold((0u64, 0u64), |(r, b), x| {
        (r + u64::from(x.count), b + x.bytes)
    });
    for b in batches {
        s.send(&Message::Batch(b));
    }
    s.send(&Message::Eos(Eos { records, bytes }));
    let o = observe(&mut s, Role::Writer, suite.timeout, suite.timeout, None);
    let ok = judge_stream(suite, label, &o);
    let done = match &o.terminal {
        Some(Terminal::Done(d)) if d.records != records => Err(format!(
            "done says {} records received but {records} were sent",
            d.records
        )),
        Some(Terminal::Done(d)) if d.written + d.dirty != d.records => Err(format!(
            "done says written {} + dirty {} but records {} (written + dirty must equal records)",
            d.written, d.dirty, d.records
        )),
        Some(Terminal::Done(d)) if d.dirty != o.dirty => Err(format!(
            "done says {} dirty but the writer sent {} dirty frames",
            d.dirty, o.dirty
        )),
        Some(Terminal::Done(d)) => Ok(format!(
            "done: {} records, {} written, {} dirty; report {}",
            d.records,
            d.written,
            d.dirty,
            short(&d.report)
        )),
        _ => Err(no_end(suite, &o, "done")),
    };
    let done_ok = suite.report.check(&format!("{label}: done"), done);
    if o.sent_terminal("done") {
        judge_exit(suite, label, &o, "done");
    } else {
        suite.report.skip(&format!("{label}: exit"), "no done");
    }
    match o.terminal {
        Some(Terminal::Done(d)) if ok && done_ok && o.code() == Some(0) => Some(d.report),
        _ => None,
    }
}
