//! What can end a job, and the exit code each outcome maps to.

/// Exit code: the job succeeded.
pub const EXIT_OK: i32 = 0;
/// Exit code: the job failed (a plugin failed, a task broke the protocol, a stall…).
pub const EXIT_FAILED: i32 = 1;
/// Exit code: the command line or the job's configuration is wrong.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the job's error limit (`errorLimit`) was exceeded.
pub const EXIT_ERROR_LIMIT: i32 = 3;
/// Exit code: interrupted by SIGINT.
pub const EXIT_SIGINT: i32 = 130;
/// Exit code: interrupted by SIGTERM.
pub const EXIT_SIGTERM: i32 = 143;

/// Why a job (or an engine command) did not succeed. Messages name the plugin, the
/// task and the step, and never contain a secret.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The command line, the job file or a plugin's configuration is wrong.
    #[error("{0}")]
    Config(String),
    /// A plugin, a task or a step failed.
    #[error("{0}")]
    Failed(String),
    /// More dirty records than `errorLimit` allows.
    #[error("{0}")]
    ErrorLimit(String),
    /// The user interrupted the job.
    #[error("interrupted by {signal}")]
    Interrupted { signal: &'static str, code: i32 },
}

impl EngineError {
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config(message.into())
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::Config(_) => EXIT_USAGE,
            EngineError::Failed(_) => EXIT_FAILED,
            EngineError::ErrorLimit(_) => EXIT_ERROR_LIMIT,
            EngineError::Interrupted { code, .. } => *code,
        }
    }

    /// A short name of the outcome, for the summary.
    pub fn outcome(&self) -> &'static str {
        match self {
            EngineError::Config(_) => "configuration error",
            EngineError::Failed(_) => "failed",
            EngineError::ErrorLimit(_) => "error limit exceeded",
            EngineError::Interrupted { .. } => "interrupted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_ones() {
        assert_eq!(EngineError::config("x").exit_code(), 2);
        assert_eq!(EngineError::failed("x").exit_code(), 1);
        assert_eq!(EngineError::ErrorLimit("x".into()).exit_code(), 3);
        let sigterm = EngineError::Interrupted {
            signal: "SIGTERM",
            code: EXIT_SIGTERM,
        };
        assert_eq!(sigterm.exit_code(), 143);
        assert_eq!(sigterm.to_string(), "interrupted by SIGTERM");
    }
}
