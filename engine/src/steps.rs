//! Job-level steps: `check`, `prepare`, `split`, `post`, `abort`, each a short process
//! (`<plugin> <step> --engine`) that reads one [`StepRequest`] on stdin and answers one
//! [`StepResponse`] on stdout.

use std::sync::Arc;
use std::time::Duration;

use protocol::message::ErrorKind;
use protocol::runtime::{StepRequest, StepResponse};
use protocol::Role;
use serde_json::Value as Json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio_util::sync::CancellationToken;

use crate::error::EngineError;
use crate::plugins::{self, describe_exit, Plugin};
use crate::shared::JobShared;

/// A step that cannot be cancelled (abort) still gives up after this long.
pub const UNCANCELLABLE_STEP_TIMEOUT: Duration = Duration::from_secs(120);

/// The time limit of a step the job's cancellation can stop (in effect none: such a
/// step runs as long as the job, which the user or the watchdog can cancel).
pub const STEP_TIME_LIMIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Runs `step` of `plugin` in a process of its own, within `limit`. With `cancel`, the
/// step is killed when the job is cancelled; with `shared`, the watchdog sees it as an
/// activity while it runs. A step stopped by `cancel` or the limit is killed, and
/// reaped (for up to a second) before this returns: nothing it does can race what the
/// caller runs next.
pub async fn run_step_within(
    plugin: &Plugin,
    step: &str,
    request: &StepRequest,
    shared: Option<&Arc<JobShared>>,
    cancel: Option<&CancellationToken>,
    limit: Duration,
) -> Result<Json, EngineError> {
    let what = format!("{} {step}", plugin.name);
    let body = serde_json::to_vec(request)
        .map_err(|e| EngineError::failed(format!("{what}: cannot encode the request: {e}")))?;
    let count = request.count.unwrap_or(1).to_string();
    let mut args = vec![step, "--engine"];
    if step == "split" {
        args.extend(["--count", count.as_str()]);
    }
    let mut child = plugins::spawn_step(plugin, &args)?;
    let child_pid = child.id();
    let (tail, drain) = match child.stderr.take() {
        Some(stderr) => {
            let (tail, handle) = plugins::drain_stderr(stderr, what.clone());
            (tail, Some(handle))
        }
        None => (plugins::StderrTail::default(), None),
    };
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let exchange = async {
        if let Some(mut input) = stdin.take() {
            // A plugin that exits without reading its request is reported below from
            // its answer and exit status; a broken pipe here says nothing more.
            let _ = input.write_all(&body).await;
            let _ = input.shutdown().await;
        }
        let mut out = Vec::new();
        if let Some(mut output) = stdout.take() {
            output.read_to_end(&mut out).await?;
        }
        let status = child.wait().await?;
        Ok::<_, std::io::Error>((out, status))
    };
    let never = CancellationToken::new();
    let cancel = cancel.unwrap_or(&never);
    let outcome = watched((plugin, step, &what), shared, cancel, limit, exchange).await;
    if outcome.is_none() {
        let _ = child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
    }
    if let Some(handle) = drain {
        let _ = tokio::time::timeout(Duration::from_secs(1), handle).await;
    }
    let (out, status) = match outcome {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            return Err(EngineError::failed(format!(
                "{what}: {e}{}",
                tail.for_error()
            )))
        }
        None => return Err(stopped(&what, cancel, limit, &tail)),
    };
    let response: StepResponse = match serde_json::from_slice(&out) {
        Ok(r) => r,
        Err(_) => {
            let shown: String = String::from_utf8_lossy(&out[..out.len().min(200)]).into_owned();
            let text = format!(
                "{what}: did not answer a step response ({}); its stdout began with {shown:?}{}",
                describe_exit(&status),
                tail.for_error()
            );
            // `check` is the first thing asked of a plugin: an executable that ends
            // normally without answering it is not a plugin (a configuration error).
            return Err(if step == "check" && status.code().is_some() {
                EngineError::config(format!(
                    "{text}\n{} ({}) is not a streamport plugin, or it failed before answering",
                    plugin.name,
                    plugin.path.display()
                ))
            } else {
                EngineError::failed(text)
            });
        }
    };
    // Only the process the engine started may vouch for itself: behind a wrapper that
    // forked it, the plugin's parent is the wrapper, not the engine.
    if response.parent_death_guard.is_some() && response.parent_death_guard == child_pid {
        plugins::note_guards_itself(&plugin.path);
    }
    if response.session {
        plugins::note_serves_sessions(&plugin.path);
    }
    if !response.ok {
        return answered(&what, response);
    }
    if !status.success() {
        return Err(EngineError::failed(format!(
            "{what}: answered ok but ended with {}{}",
            describe_exit(&status),
            tail.for_error()
        )));
    }
    Ok(response.value)
}

/// Runs `exchange` (a step's request and answer) while the watchdog sees the step as
/// an activity; `None` when `cancel` or `limit` stopped it first.
async fn watched<T>(
    (plugin, step, what): (&Plugin, &str, &str),
    shared: Option<&Arc<JobShared>>,
    cancel: &CancellationToken,
    limit: Duration,
    exchange: impl std::future::Future<Output = std::io::Result<T>>,
) -> Option<std::io::Result<T>> {
    let activity = shared.map(|s| {
        let a = s.register(format!("step {what}"));
        a.waiting_on(format!("{} to answer {step}", plugin.name));
        a
    });
    let outcome = tokio::select! {
        r = exchange => Some(r),
        _ = cancel.cancelled() => None,
        _ = tokio::time::sleep(limit) => None,
    };
    if let (Some(s), Some(a)) = (shared, &activity) {
        s.unregister(a);
    }
    outcome
}

/// The failure of a step that the job's cancellation or its time limit stopped.
fn stopped(
    what: &str,
    cancel: &CancellationToken,
    limit: Duration,
    tail: &plugins::StderrTail,
) -> EngineError {
    if cancel.is_cancelled() {
        EngineError::failed(format!("{what}: stopped because the job was cancelled"))
    } else {
        EngineError::failed(format!(
            "{what}: no answer after {} s{}",
            limit.as_secs_f64(),
            tail.for_error()
        ))
    }
}

/// The value of an answer, or the failure it reports.
fn answered(what: &str, response: StepResponse) -> Result<Json, EngineError> {
    if response.ok {
        return Ok(response.value);
    }
    let (kind, message) = match response.error {
        Some(e) => (e.kind, e.message),
        None => (ErrorKind::Internal, "failed without saying why".to_owned()),
    };
    let text = format!("{what} failed: {message}");
    Err(if kind == ErrorKind::Config {
        EngineError::Config(text)
    } else {
        EngineError::Failed(text)
    })
}

/// A step request on a session's stdin.
#[derive(serde::Serialize)]
struct Asked<'a> {
    step: &'a str,
    request: &'a StepRequest,
}

/// A plugin process that serves several steps (`<plugin> session --engine`), for a
/// plugin whose step answer said `session`: one request per line on its stdin, one
/// answer per line on its stdout. The steps keep DataX's order; what they save is a
/// process start each (about 1.5 ms for a plugin in Rust, far more for one on a JVM).
pub struct StepSession {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// The step its stderr lines are logged under.
    label: Arc<std::sync::Mutex<String>>,
    tail: plugins::StderrTail,
    drain: Option<tokio::task::JoinHandle<()>>,
    /// False once the process failed, was killed, or answered out of turn: the next
    /// step starts a new session.
    usable: bool,
}

impl StepSession {
    /// Starts `<plugin> session --engine` (directly or through the launcher, as a step).
    pub fn start(plugin: &Plugin) -> Result<Self, EngineError> {
        let mut child = plugins::spawn_step(plugin, &["session", "--engine"])?;
        let label = Arc::new(std::sync::Mutex::new(format!("{} session", plugin.name)));
        let (tail, drain) = match child.stderr.take() {
            Some(stderr) => {
                let (tail, handle) = plugins::drain_stderr_under(stderr, label.clone());
                (tail, Some(handle))
            }
            None => (plugins::StderrTail::default(), None),
        };
        let (stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(i), Some(o)) => (i, o),
            _ => {
                return Err(EngineError::failed(format!(
                    "{} session: started without its pipes",
                    plugin.name
                )))
            }
        };
        Ok(Self {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            label,
            tail,
            drain,
            usable: true,
        })
    }

    pub fn usable(&self) -> bool {
        self.usable
    }

    /// Runs `step` in the session, as [`run_step_within`] runs it in a process of its own.
    pub async fn run(
        &mut self,
        plugin: &Plugin,
        step: &str,
        request: &StepRequest,
        shared: Option<&Arc<JobShared>>,
        cancel: Option<&CancellationToken>,
        limit: Duration,
    ) -> Result<Json, EngineError> {
        let what = format!("{} {step}", plugin.name);
        let mut line = serde_json::to_vec(&Asked { step, request })
            .map_err(|e| EngineError::failed(format!("{what}: cannot encode the request: {e}")))?;
        line.push(b'\n');
        *self.label.lock().unwrap_or_else(|e| e.into_inner()) = what.clone();
        self.tail.clear();
        let (stdin, stdout) = (&mut self.stdin, &mut self.stdout);
        let exchange = async {
            let input = stdin
                .as_mut()
                .ok_or_else(|| std::io::Error::other("the session's stdin is closed"))?;
            input.write_all(&line).await?;
            input.flush().await?;
            let mut out = Vec::new();
            stdout.read_until(b'\n', &mut out).await?;
            Ok::<_, std::io::Error>(out)
        };
        let never = CancellationToken::new();
        let cancel = cancel.unwrap_or(&never);
        let outcome = watched((plugin, step, &what), shared, cancel, limit, exchange).await;
        let out = match outcome {
            Some(Ok(out)) if !out.is_empty() => out,
            Some(Ok(_)) => {
                // Its stdout ended: the process is gone (or going).
                let status = self.end(Duration::from_secs(1)).await;
                return Err(EngineError::failed(format!(
                    "{what}: the plugin ended without answering ({status}){}",
                    self.tail.for_error()
                )));
            }
            Some(Err(e)) => {
                self.end(Duration::ZERO).await;
                return Err(EngineError::failed(format!(
                    "{what}: {e}{}",
                    self.tail.for_error()
                )));
            }
            None => {
                self.end(Duration::ZERO).await;
                return Err(stopped(&what, cancel, limit, &self.tail));
            }
        };
        let response: StepResponse = match serde_json::from_slice(&out) {
            Ok(r) => r,
            Err(_) => {
                self.end(Duration::ZERO).await;
                let shown = String::from_utf8_lossy(&out[..out.len().min(200)]).into_owned();
                return Err(EngineError::failed(format!(
                    "{what}: did not answer a step response; its answer line began with {shown:?}{}",
                    self.tail.for_error()
                )));
            }
        };
        answered(&what, response)
    }

    /// Ends the process: waits up to `grace` for it to exit by itself, then kills it,
    /// and reaps it. Returns how it ended.
    async fn end(&mut self, grace: Duration) -> String {
        self.usable = false;
        self.stdin = None;
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = self.child.start_kill();
                tokio::time::timeout(Duration::from_secs(1), self.child.wait())
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
        };
        if let Some(handle) = self.drain.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), handle).await;
        }
        status.map_or_else(|| "not reaped".to_owned(), |s| describe_exit(&s))
    }

    /// Closes the session: stdin ends, the plugin exits by itself (killed after a
    /// second if it does not).
    pub async fn close(mut self) {
        self.end(Duration::from_secs(1)).await;
    }
}

/// The step sessions of a job's reader and writer, kept from step to step (and, in
/// follow mode, from batch to batch) until the job ends.
#[derive(Default)]
pub struct StepSessions {
    slots: [tokio::sync::Mutex<Option<StepSession>>; 2],
}

impl std::fmt::Debug for StepSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StepSessions")
    }
}

impl StepSessions {
    /// Runs `step` in the plugin's session, started if needed (a plugin that did not
    /// say it serves sessions, `check` and `abort` get a process of their own).
    pub async fn run(
        &self,
        plugin: &Plugin,
        step: &str,
        request: &StepRequest,
        shared: Option<&Arc<JobShared>>,
        cancel: Option<&CancellationToken>,
        limit: Duration,
    ) -> Result<Json, EngineError> {
        if matches!(step, "check" | "abort") || !plugins::serves_sessions(&plugin.path) {
            return run_step_within(plugin, step, request, shared, cancel, limit).await;
        }
        let slot = &self.slots[usize::from(plugin.role == Role::Writer)];
        let mut slot = slot.lock().await;
        if let Some(old) = slot.take_if(|s| !s.usable()) {
            old.close().await;
        }
        let session = match slot.as_mut() {
            Some(session) => session,
            None => slot.insert(StepSession::start(plugin)?),
        };
        session
            .run(plugin, step, request, shared, cancel, limit)
            .await
    }

    /// Starts the plugin's session ahead of its first step, when it serves sessions
    /// and has none (the reader's and writer's then start at once, not one after the
    /// other). A session that cannot start now is started (or reported) by the step.
    pub async fn open(&self, plugin: &Plugin) {
        if !plugins::serves_sessions(&plugin.path) {
            return;
        }
        let mut slot = self.slots[usize::from(plugin.role == Role::Writer)]
            .lock()
            .await;
        if slot.is_none() {
            *slot = StepSession::start(plugin).ok();
        }
    }

    /// Closes every session (at the job's end), at once.
    pub async fn close(&self) {
        async fn close(slot: &tokio::sync::Mutex<Option<StepSession>>) {
            let session = slot.lock().await.take();
            if let Some(session) = session {
                session.close().await;
            }
        }
        let [reader, writer] = &self.slots;
        tokio::join!(close(reader), close(writer));
    }
}
