//! Errors of the MaxCompute client, classified once: only temporary failures (5xx,
//! throttling, 408, connection errors and timeouts) are retried.

use protocol::runtime::{PluginError, VisitError};

/// A failed call to MaxCompute. Messages name the operation and the object.
#[derive(Debug, thiserror::Error)]
pub enum OdpsError {
    /// The service answered with an error status.
    #[error("{operation}: HTTP {status} {code}: {message}{}", request_id_suffix(.request_id))]
    Service {
        operation: String,
        status: u16,
        code: String,
        message: String,
        request_id: String,
    },
    /// No answer: connection refused or reset, timeout.
    #[error("{operation}: {message}")]
    Transport { operation: String, message: String },
    /// The request could not even be built (a malformed endpoint, a header value with a
    /// newline): a permanent local mistake in the configuration, never retried.
    #[error("{operation}: the request cannot be built: {message} (check odpsServer, tunnelServer, accessId and securityToken)")]
    Local { operation: String, message: String },
    /// No credentials to sign with: the metadata service or STS refused (a failure
    /// that may pass is a `Transport` error).
    #[error("{operation}: credentials: {message}")]
    Credentials { operation: String, message: String },
    /// An answer that does not follow the protocol.
    #[error("{operation}: unexpected response: {message}")]
    Protocol { operation: String, message: String },
}

fn request_id_suffix(id: &str) -> String {
    if id.is_empty() {
        String::new()
    } else {
        format!(" (request id {id})")
    }
}

impl OdpsError {
    pub fn protocol(operation: impl Into<String>, message: impl Into<String>) -> Self {
        OdpsError::Protocol {
            operation: operation.into(),
            message: message.into(),
        }
    }

    /// Whether retrying the same request may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            OdpsError::Service { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            OdpsError::Transport { .. } => true,
            OdpsError::Protocol { .. } | OdpsError::Local { .. } => false,
            OdpsError::Credentials { .. } => false,
        }
    }

    /// The service error code, if the service answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            OdpsError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            OdpsError::Service { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the error says the caller's input is wrong (unknown project or table,
    /// bad credentials, denied access): a configuration error rather than a failure.
    pub fn is_user_error(&self) -> bool {
        match self {
            OdpsError::Service { status, code, .. } => {
                matches!(status, 401 | 403)
                    || matches!(
                        code.as_str(),
                        "NoSuchProject" | "NoSuchTable" | "NoSuchObject" | "NoSuchPartition"
                    )
            }
            OdpsError::Local { .. } | OdpsError::Credentials { .. } => true,
            _ => false,
        }
    }
}

impl From<OdpsError> for PluginError {
    fn from(e: OdpsError) -> Self {
        let retryable = e.is_retryable();
        let base = if e.is_user_error() {
            PluginError::config(e.to_string())
        } else {
            PluginError::service(e.to_string())
        };
        base.retryable(retryable)
    }
}

impl From<OdpsError> for VisitError {
    fn from(e: OdpsError) -> Self {
        VisitError::Writer(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: &str) -> OdpsError {
        OdpsError::Service {
            operation: "GetTable t".into(),
            status,
            code: code.into(),
            message: "m".into(),
            request_id: "r1".into(),
        }
    }

    #[test]
    fn only_temporary_errors_are_retried() {
        assert!(service(500, "InternalServerError").is_retryable());
        assert!(service(503, "ServiceUnavailable").is_retryable());
        assert!(service(429, "FlowExceeded").is_retryable());
        assert!(!service(404, "NoSuchTable").is_retryable());
        assert!(!service(409, "StatusConflict").is_retryable());
        assert!(OdpsError::Transport {
            operation: "x".into(),
            message: "reset".into()
        }
        .is_retryable());
        assert!(!OdpsError::protocol("x", "y").is_retryable());
        let local = OdpsError::Local {
            operation: "GetTable p.t".into(),
            message: "builder error: failed to parse header value".into(),
        };
        assert!(!local.is_retryable() && local.is_user_error());
        let e = PluginError::from(local);
        assert_eq!((e.exit_code(), e.retryable), (2, false));
        assert_eq!(
            service(404, "NoSuchTable").to_string(),
            "GetTable t: HTTP 404 NoSuchTable: m (request id r1)"
        );
        let p: PluginError = service(401, "Unauthorized").into();
        assert_eq!(p.exit_code(), 2);
    }
}
