//! The failure paths every plugin must handle: a task config it cannot use, `cancel`
//! before and during a task, and for a writer an input without `eos` and a batch that
//! does not decode.

use std::time::{Duration, Instant};

use protocol::message::{Batch, Cancel, Eos, ErrorKind, JobContext, Message};
use protocol::{Role, Value};
use serde_json::{json, Value as Json};

use super::observe::{describe_error, kind_name, observe, Observation, Terminal};
use super::tasks::{configure, engine_hello, start};
use super::Suite;

/// How long a plugin has to exit after `cancel` (the engine kills it then).
const CANCEL_GRACE: Duration = crate::task::CANCEL_GRACE;

/// A failure path and what it expects.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Scenario {
    /// `configure` with a task that is not an object: an `error` of kind config, exit 2.
    BadTaskConfig,
    /// `cancel` instead of `configure`: exit 1 within the grace, no `eos`/`done`.
    CancelFirst,
    /// `cancel` during the task (a writer after one batch): exit 1 within the grace.
    CancelMid,
    /// Writers: the input ends without `eos`: an `error`, exit 1, no `done`.
    Truncated,
    /// Writers: a batch whose records do not decode: an `error`, exit 1, no `done`.
    BadInput,
}

fn scenario_name(role: Role, scenario: Scenario) -> String {
    let verb = if role == Role::Reader {
        "read"
    } else {
        "write"
    };
    let what = match scenario {
        Scenario::BadTaskConfig => "bad task config",
        Scenario::CancelFirst => "cancel before configure",
        Scenario::CancelMid => "cancel during the task",
        Scenario::Truncated => "input without eos",
        Scenario::BadInput => "undecodable batch",
    };
    format!("{verb} ({what})")
}

pub(super) fn failure_task(
    suite: &mut Suite,
    scenario: Scenario,
    task: &Json,
    context: JobContext,
) {
    let name = scenario_name(suite.role, scenario);
    let mut s = match start(suite) {
        Ok(s) => s,
        Err(e) => {
            suite.report.fail(&name, e);
            return;
        }
    };
    s.send(&engine_hello());
    let sample: Vec<Vec<Value>> = suite.records.iter().take(10).cloned().collect();
    let mut deadline = None;
    match scenario {
        Scenario::BadTaskConfig => {
            s.send(&configure(
                &json!("streamport test-plugin: not a task config"),
                context,
            ));
        }
        Scenario::CancelFirst => {
            s.send(&Message::Cancel(Cancel {
                reason: "streamport test-plugin: cancel before configure".into(),
            }));
            deadline = Some(Instant::now() + CANCEL_GRACE);
        }
        Scenario::CancelMid => {
            s.send(&configure(task, context));
            if suite.role == Role::Writer {
                s.send(&Message::Batch(Batch::from_records(&sample)));
            }
            std::thread::sleep(Duration::from_millis(300));
            s.send(&Message::Cancel(Cancel {
                reason: "streamport test-plugin: cancel during the task".into(),
            }));
            deadline = Some(Instant::now() + CANCEL_GRACE);
        }
        Scenario::Truncated => {
            s.send(&configure(task, context));
            s.send(&Message::Batch(Batch::from_records(&sample)));
            s.close_input();
        }
        Scenario::BadInput => {
            s.send(&configure(task, context));
            // One record whose only value uses the never-used MessagePack marker 0xc1.
            let bad = Batch {
                count: 1,
                bytes: 1,
                records: vec![0x91, 0x91, 0xc1],
            };
            s.send(&Message::Batch(bad));
            s.send(&Message::Eos(Eos {
                records: 1,
                bytes: 1,
            }));
        }
    }
    let exit_wait = if deadline.is_some() {
        CANCEL_GRACE
    } else {
        suite.timeout
    };
    let o = observe(&mut s, suite.role, suite.timeout, exit_wait, deadline);
    let result = judge_failure(suite, scenario, &o);
    suite.report.check(&name, result);
}

fn judge_failure(suite: &Suite, scenario: Scenario, o: &Observation) -> Result<String, String> {
    let role = suite.role;
    let finish = if role == Role::Reader { "eos" } else { "done" };
    let cancel = matches!(scenario, Scenario::CancelFirst | Scenario::CancelMid);
    // Cancelled before it said anything, a plugin may exit without a word.
    let quiet_cancel = scenario == Scenario::CancelFirst && o.empty;
    if let Some(e) = o.broken.as_ref().filter(|_| !quiet_cancel) {
        return Err(format!("{e}; the plugin {}", o.ended(suite.timeout)));
    }
    if let Some(Err(e)) = &o.hello {
        return Err(e.clone());
    }
    if cancel {
        if scenario == Scenario::CancelMid && role == Role::Reader && o.sent_terminal("eos") {
            // The task finished before the cancel reached it: nothing to stop.
            return match o.code() {
                Some(0) => {
                    Ok("the task finished (eos, exit 0) before the cancel arrived".to_owned())
                }
                _ => Err(format!(
                    "the plugin sent eos but {} (expected exit 0)",
                    o.ended(CANCEL_GRACE)
                )),
            };
        }
        if o.sent_terminal(finish) {
            return Err(format!(
                "the plugin sent {finish} after cancel (a cancelled task sends nothing more)"
            ));
        }
        return match o.code() {
            Some(1) => Ok(format!("exited 1 within {} s of cancel", CANCEL_GRACE.as_secs())),
            _ if o.status.is_none() => Err(format!(
                "still running {} s after cancel (the engine kills a plugin then; stop at once and exit 1)",
                CANCEL_GRACE.as_secs()
            )),
            _ => Err(format!(
                "the plugin {} after cancel (documented: exit 1){}",
                o.ended(CANCEL_GRACE),
                o.stderr_note()
            )),
        };
    }
    let situation = match scenario {
        Scenario::BadTaskConfig => "a task config that is not an object",
        Scenario::Truncated => "an input that ended without eos",
        _ => "a batch whose records do not decode",
    };
    if o.sent_terminal(finish) {
        return Err(format!(
            "{situation} was accepted: the plugin sent {finish} (expected an error frame and a non-zero exit)"
        ));
    }
    let Some(Terminal::Error(e)) = &o.terminal else {
        return Err(if o.timed_out || o.status.is_none() {
            format!(
                "after {situation} the plugin neither failed nor finished within {} s",
                suite.timeout.as_secs_f64()
            )
        } else {
            format!(
                "after {situation} the plugin {} without an error frame (a failing plugin sends \
                 error {{kind, retryable, message}} on stdout before it exits){}",
                o.ended(suite.timeout),
                o.stderr_note()
            )
        });
    };
    if scenario == Scenario::BadTaskConfig && e.kind != ErrorKind::Config {
        return Err(format!(
            "after {situation} the plugin sent {} (expected kind config)",
            describe_error(e)
        ));
    }
    let want = if e.kind == ErrorKind::Config { 2 } else { 1 };
    if o.code() != Some(want) {
        return Err(format!(
            "the plugin sent an error of kind {} but {} (expected exit {want}: 2 for config errors, 1 otherwise)",
            kind_name(e.kind),
            o.ended(suite.timeout)
        ));
    }
    Ok(format!("{}; exit {want}", describe_error(e)))
}
