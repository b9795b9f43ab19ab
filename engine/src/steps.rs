//! Job-level steps: `check`, `prepare`, `split`, `post`, `abort`, each a short process
//! (`<plugin> <step> --engine`) that reads one [`StepRequest`] on stdin and answers one
//! [`StepResponse`] on stdout.

use std::sync::Arc;
use std::time::Duration;

use protocol::message::ErrorKind;
use protocol::runtime::{StepRequest, StepResponse};
use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::error::EngineError;
use crate::plugins::{self, describe_exit, Plugin};
use crate::shared::JobShared;

/// A step that cannot be cancelled (abort) still gives up after this long.
pub const UNCANCELLABLE_STEP_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `step` of `plugin`. With `cancel`, the step is killed when the job is
/// cancelled; the watchdog sees it as an activity while it runs.
pub async fn run_step(
    plugin: &Plugin,
    step: &str,
    request: &StepRequest,
    shared: Option<&Arc<JobShared>>,
    cancel: Option<&CancellationToken>,
) -> Result<Json, EngineError> {
    let limit = if shared.is_some() {
        Duration::from_secs(365 * 24 * 3600)
    } else {
        UNCANCELLABLE_STEP_TIMEOUT
    };
    run_step_within(plugin, step, request, shared, cancel, limit).await
}

/// [`run_step`] with its own time limit. A step stopped by `cancel` or the limit is
/// killed, and reaped (for up to a second) before this returns: nothing it does can
/// race what the caller runs next.
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
    let activity = shared.map(|s| {
        let a = s.register(format!("step {what}"));
        a.waiting_on(format!("{} to answer {step}", plugin.name));
        a
    });
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
    let outcome = tokio::select! {
        r = exchange => Some(r),
        _ = cancel.cancelled() => None,
        _ = tokio::time::sleep(limit) => None,
    };
    if outcome.is_none() {
        let _ = child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
    }
    if let (Some(s), Some(a)) = (shared, &activity) {
        s.unregister(a);
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
        None if cancel.is_cancelled() => {
            return Err(EngineError::failed(format!(
                "{what}: stopped because the job was cancelled"
            )))
        }
        None => {
            return Err(EngineError::failed(format!(
                "{what}: no answer after {} s{}",
                limit.as_secs_f64(),
                tail.for_error()
            )))
        }
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
    if !response.ok {
        let (kind, message) = match response.error {
            Some(e) => (e.kind, e.message),
            None => (ErrorKind::Internal, "failed without saying why".to_owned()),
        };
        let text = format!("{what} failed: {message}");
        return Err(if kind == ErrorKind::Config {
            EngineError::Config(text)
        } else {
            EngineError::Failed(text)
        });
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
