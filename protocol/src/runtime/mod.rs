//! The plugin-side runtime: what makes every plugin binary behave the same.
//!
//! A plugin implements [`Plugin`] plus [`Reader`] or [`Writer`] and calls
//! [`run_reader`] or [`run_writer`] from `main`. The runtime provides the command line
//! (see [`cli`]), standalone and engine modes, stdout ownership, panics turned into
//! `error` frames, and exit codes: 0 success, 1 failure, 2 usage or configuration error.
//!
//! Job-level steps (`check`, `prepare`, `split`, `post`, `abort`) are short stateless
//! processes: with `--engine` they read one [`StepRequest`] as JSON on stdin and answer
//! one [`StepResponse`] as JSON on stdout; without it they take `--config` (and
//! `--state`, `--reports`) files and print their result as JSON.

pub mod cli;
pub mod retry;
mod sink;
mod source;

use serde::{Deserialize, Serialize};

pub use cli::{run_reader, run_writer};
pub use sink::{DirtyFile, RecordSink, SharedBuffer};
pub use source::{RecordSource, VisitError, WriterOutput};

use crate::message::{ErrorKind, ErrorMessage, JobContext, Role};

/// The most tasks one `split` may be asked for, and so the most a job runs (the engine's
/// most channels; a writer is asked for as many tasks as the reader made). The runtime
/// refuses a larger `--count` before the plugin sees it, so no plugin allocates per
/// requested task for an absurd count.
pub const MAX_TASKS: usize = 128;

/// What a plugin says about itself.
#[derive(Clone, Copy, Debug)]
pub struct PluginInfo {
    /// The executable's name, e.g. `reader-otsstream`.
    pub name: &'static str,
    pub version: &'static str,
    pub role: Role,
    /// One line for `--help`.
    pub about: &'static str,
}

/// A failure inside a plugin. The message names the operation and the object and never
/// contains a secret.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct PluginError {
    pub kind: ErrorKind,
    pub retryable: bool,
    pub message: String,
}

impl PluginError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            retryable: false,
            message: message.into(),
        }
    }

    /// A configuration error (exit code 2).
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub fn service(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Service, message)
    }

    pub fn io(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Io, message)
    }

    pub fn data(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Data, message)
    }

    pub fn protocol(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, message)
    }

    pub fn cancelled(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Cancelled, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, what: impl std::fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        if self.kind == ErrorKind::Config {
            2
        } else {
            1
        }
    }

    pub fn to_message(&self) -> ErrorMessage {
        ErrorMessage {
            kind: self.kind,
            retryable: self.retryable,
            message: self.message.clone(),
        }
    }
}

impl From<ErrorMessage> for PluginError {
    fn from(m: ErrorMessage) -> Self {
        Self {
            kind: m.kind,
            retryable: m.retryable,
            message: m.message,
        }
    }
}

impl From<crate::FrameError> for PluginError {
    fn from(e: crate::FrameError) -> Self {
        match e {
            crate::FrameError::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe => {
                PluginError::cancelled("the output pipe was closed")
            }
            crate::FrameError::Io(io) => PluginError::io(io.to_string()),
            other => PluginError::protocol(other.to_string()),
        }
    }
}

/// The input of a job-level step.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StepContext {
    /// The plugin's `parameter` object, variables already substituted.
    #[serde(default)]
    pub parameter: serde_json::Value,
    /// What `prepare` returned (null before `prepare`).
    #[serde(default)]
    pub state: serde_json::Value,
    #[serde(default)]
    pub job: JobContext,
}

/// The request an engine sends to `<plugin> <step> --engine` on stdin.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StepRequest {
    #[serde(flatten)]
    pub context: StepContext,
    /// `split` only: the number of tasks advised.
    #[serde(default)]
    pub count: Option<usize>,
    /// `post`: for a writer, the `done.report` of every task in task order; for a
    /// reader, every checkpoint state its tasks reported, in order. `abort`: the
    /// writer's task reports when its `post` had started, else empty.
    #[serde(default)]
    pub reports: Vec<serde_json::Value>,
}

/// The answer of a job-level step, on stdout.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepResponse {
    pub ok: bool,
    /// `prepare`: the job state; `split`: the task configs; `spec`: the parameter list.
    #[serde(default)]
    pub value: serde_json::Value,
    #[serde(default)]
    pub error: Option<ErrorMessage>,
    /// The process id of the answering process, when it honours `--engine-pid PID`
    /// (it then asks the system to kill it when the engine dies,
    /// [`crate::parent_death`]). When this is the very process the engine started (no
    /// wrapper forked it), the engine starts the plugin's later steps directly
    /// instead of through its launcher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_death_guard: Option<u32>,
    /// The plugin also serves `<plugin> session --engine`: several steps in one
    /// process, one [`SessionRequest`] per line on stdin, one answer per line on
    /// stdout, until stdin ends. The engine then runs the plugin's later steps so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub session: bool,
}

/// One step asked of a plugin's `session` process: a line of JSON on its stdin.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SessionRequest {
    /// `check`, `prepare`, `split`, `post`, `abort` or `precommit`.
    pub step: String,
    pub request: StepRequest,
}

/// One documented parameter, for `spec`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ParameterSpec {
    pub name: &'static str,
    /// `string`, `integer`, `boolean`, `number`, `array`, `object`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub required: bool,
    /// The default as JSON text, if there is one (`"10"`, `"true"`, `"\"UTF-8\""`).
    /// `spec` prints it as the JSON value it stands for, not as a string.
    #[serde(serialize_with = "default_as_json")]
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

/// Writes a default given as JSON text as that JSON value (`"10"` → `10`); text that
/// is not JSON stays a string.
fn default_as_json<S: serde::Serializer>(
    default: &Option<&'static str>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match default {
        None => serializer.serialize_none(),
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(value) => value.serialize(serializer),
            Err(_) => serializer.serialize_str(text),
        },
    }
}

impl ParameterSpec {
    pub const fn new(
        name: &'static str,
        kind: &'static str,
        required: bool,
        default: Option<&'static str>,
        doc: &'static str,
    ) -> Self {
        Self {
            name,
            kind,
            required,
            default,
            doc,
        }
    }
}

/// What every plugin does at job level.
pub trait Plugin: Sync {
    fn info(&self) -> PluginInfo;

    /// Every parameter the plugin takes.
    fn parameters(&self) -> Vec<ParameterSpec>;

    /// Validates the parameter and tests connectivity and credentials.
    fn check(&self, ctx: &StepContext) -> Result<(), PluginError>;

    /// Prepares the job; returns the job state later steps receive.
    fn prepare(&self, ctx: &StepContext) -> Result<serde_json::Value, PluginError> {
        let _ = ctx;
        Ok(serde_json::Value::Null)
    }

    /// Splits the job into at most `count` task configs (at least one). A writer must
    /// return exactly `count`.
    fn split(&self, ctx: &StepContext, count: usize)
        -> Result<Vec<serde_json::Value>, PluginError>;

    /// Commits the job after every task succeeded (see [`StepRequest::reports`]).
    fn post(&self, ctx: &StepContext, reports: &[serde_json::Value]) -> Result<(), PluginError> {
        let _ = (ctx, reports);
        Ok(())
    }

    /// Undoes whatever is not committed after a failure or cancellation.
    fn abort(&self, ctx: &StepContext) -> Result<(), PluginError> {
        let _ = ctx;
        Ok(())
    }

    /// `post` as the engine calls it: the answer may say what was committed,
    /// `{"committed": "all", "detail": "…"}`, or be null. Default: [`Plugin::post`],
    /// answering null.
    fn post_answer(
        &self,
        ctx: &StepContext,
        reports: &[serde_json::Value],
    ) -> Result<serde_json::Value, PluginError> {
        self.post(ctx, reports).map(|()| serde_json::Value::Null)
    }

    /// `precommit` (follow mode, readers): records the batch the tasks read, from
    /// their checkpoint states (`reports`, in task order), before the writer commits.
    /// Default: refused, the plugin cannot follow.
    fn precommit(
        &self,
        ctx: &StepContext,
        reports: &[serde_json::Value],
    ) -> Result<serde_json::Value, PluginError> {
        let _ = (ctx, reports);
        Err(PluginError::config(format!(
            "{} has no precommit step: it does not support follow mode",
            self.info().name
        )))
    }

    /// `abort` as the engine calls it: `reports` are the task reports when `post` had
    /// started (empty otherwise), so the writer can find out what became visible. The
    /// answer is `{"committed": "none"|"partial"|"all"|"unknown", "detail": "…"}` or
    /// null (the engine then reads "unknown" if `post` had started, else "none").
    /// Default: [`Plugin::abort`], answering null.
    fn abort_answer(
        &self,
        ctx: &StepContext,
        reports: &[serde_json::Value],
    ) -> Result<serde_json::Value, PluginError> {
        let _ = reports;
        self.abort(ctx).map(|()| serde_json::Value::Null)
    }
}

/// What a task sees of its job.
#[derive(Clone, Debug, Default)]
pub struct TaskContext {
    /// One element of `split`'s output.
    pub config: serde_json::Value,
    pub job: JobContext,
}

/// A reader plugin.
pub trait Reader: Plugin {
    /// Reads one task's records into `out`. Return `Ok` only after everything was
    /// pushed; the runtime then sends `eos`.
    fn read(&self, task: &TaskContext, out: &mut RecordSink) -> Result<(), PluginError>;
}

/// A writer plugin.
pub trait Writer: Plugin {
    /// Writes every record of `input`; returns the report its `post` needs.
    fn write(
        &self,
        task: &TaskContext,
        input: &mut RecordSource,
        out: &mut WriterOutput,
    ) -> Result<serde_json::Value, PluginError>;
}
