//! Tablestore failures, classified once: which are worth a retry, and how each becomes
//! a [`PluginError`].

use protocol::message::ErrorKind;
use protocol::runtime::PluginError;

/// Codes DataX never retries (spec §1.7); every other code is retried only when it
/// is a throttling or server-side condition (see [`OtsError::is_retriable`]).
const NEVER_RETRIED: &[&str] = &[
    "OTSAuthFailed",
    "OTSConditionCheckFail",
    "OTSParameterInvalid",
    "OTSInvalidPK",
    "OTSObjectAlreadyExist",
    "OTSObjectNotExist",
    "OTSOutOfColumnCountLimit",
    "OTSOutOfRowSizeLimit",
    "OTSRequestBodyTooLarge",
    "OTSTrimmedDataAccess",
    "OTSNoPermissionAccess",
    "OTSMethodNotAllowed",
];

/// Temporary conditions the service reports with a 4xx status.
const TEMPORARY_CODES: &[&str] = &[
    "OTSServerBusy",
    "OTSPartitionUnavailable",
    "OTSTimeout",
    "OTSServerUnavailable",
    "OTSInternalServerError",
    "OTSQuotaExhausted",
    "OTSRowOperationConflict",
    "OTSTableNotReady",
    "OTSNotEnoughCapacityUnit",
    "OTSCapacityUnitExhausted",
    "OTSFlowControl",
    "OTSRequestTimeout",
    "OTSStorageServerBusy",
    "OTSTooFrequentReservedThroughputAdjustment",
];

/// One failed Tablestore call (after retries, if any were due).
#[derive(Clone, Debug, thiserror::Error)]
pub enum OtsError {
    /// The service answered with an `Error` message.
    #[error("{action}: {code} (HTTP {status}): {message}{}", request_id.as_ref().map(|r| format!(" [request id {r}]")).unwrap_or_default())]
    Service {
        action: String,
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
    },
    /// No answer: connection refused or reset, timeout.
    #[error("{action}: {message}")]
    Transport { action: String, message: String },
    /// An answer that cannot be trusted or read (MD5, body decoding).
    #[error("{action}: bad response: {message}")]
    Response { action: String, message: String },
    /// The response signature does not verify.
    #[error("{action}: {message}")]
    Signature { action: String, message: String },
    /// The request could not even be built (a malformed endpoint, a header value with a
    /// newline): a permanent local mistake in the configuration, never retried.
    #[error("{action}: the request cannot be built: {message}")]
    Local { action: String, message: String },
    /// No credentials to sign with: the metadata service or STS failed (`temporary`:
    /// it may pass) or refused.
    #[error("{action}: credentials: {message}")]
    Credentials {
        action: String,
        message: String,
        temporary: bool,
    },
}

impl OtsError {
    /// The service error code, if the service answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            OtsError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether waiting and sending the same request again may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            OtsError::Service { status, code, .. } => {
                if NEVER_RETRIED.contains(&code.as_str()) {
                    return false;
                }
                *status >= 500
                    || *status == 429
                    || *status == 408
                    || TEMPORARY_CODES.contains(&code.as_str())
            }
            OtsError::Transport { .. } | OtsError::Response { .. } => true,
            OtsError::Signature { .. } | OtsError::Local { .. } => false,
            OtsError::Credentials { temporary, .. } => *temporary,
        }
    }

    /// The plugin error, prefixed with what was being done (operation and object).
    pub fn into_plugin(self, context: impl std::fmt::Display) -> PluginError {
        let kind = match self.code() {
            Some("OTSAuthFailed") | Some("OTSNoPermissionAccess") => ErrorKind::Config,
            _ => match &self {
                OtsError::Signature { .. } | OtsError::Local { .. } => ErrorKind::Config,
                OtsError::Transport { .. } => ErrorKind::Io,
                OtsError::Credentials {
                    temporary: true, ..
                } => ErrorKind::Io,
                OtsError::Credentials { .. } => ErrorKind::Config,
                _ => ErrorKind::Service,
            },
        };
        let hint = match self.code() {
            Some("OTSAuthFailed") if self.to_string().contains("security token") => {
                " (check securityToken, or the credentials source: temporary credentials of the \
                 chain are refreshed ahead of their expiry)"
            }
            Some("OTSAuthFailed") => {
                " (check accessId, accessKey, securityToken and instanceName)"
            }
            Some("OTSTrimmedDataAccess") => {
                " (the stream no longer holds these records: they are older than the stream's retention)"
            }
            _ => match &self {
                OtsError::Transport { .. } => " (check endpoint and the network)",
                OtsError::Local { .. } => {
                    " (check endpoint, accessId, securityToken and instanceName)"
                }
                _ => "",
            },
        };
        // Name the parameter the user should look at.
        let parameter = match (&self, self.code()) {
            (_, Some("OTSAuthFailed")) | (OtsError::Signature { .. }, _) => {
                "parameter accessId/accessKey: "
            }
            (OtsError::Transport { .. }, _) => "parameter endpoint: ",
            _ => "",
        };
        let retryable = self.is_retriable();
        PluginError::new(kind, format!("{parameter}{context}: {self}{hint}")).retryable(retryable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: &str) -> OtsError {
        OtsError::Service {
            action: "GetStreamRecord".into(),
            status,
            code: code.into(),
            message: "m".into(),
            request_id: None,
        }
    }

    #[test]
    fn only_temporary_errors_are_retried() {
        assert!(service(503, "OTSServerBusy").is_retriable());
        assert!(service(500, "OTSInternalServerError").is_retriable());
        assert!(service(403, "OTSQuotaExhausted").is_retriable());
        assert!(service(409, "OTSRowOperationConflict").is_retriable());
        assert!(!service(403, "OTSAuthFailed").is_retriable());
        assert!(!service(400, "OTSTrimmedDataAccess").is_retriable());
        assert!(!service(404, "OTSObjectNotExist").is_retriable());
        assert!(!service(400, "OTSParameterInvalid").is_retriable());
        assert!(OtsError::Transport {
            action: "x".into(),
            message: "reset".into()
        }
        .is_retriable());
    }

    #[test]
    fn requests_that_cannot_be_built_are_configuration_errors_not_retried() {
        let e = OtsError::Local {
            action: "DescribeTable".into(),
            message: "failed to parse header value".into(),
        };
        assert!(!e.is_retriable());
        let e = e.into_plugin("DescribeTable of dataTable \"t\"");
        assert_eq!((e.exit_code(), e.retryable), (2, false));
        assert!(
            e.message
                .contains("check endpoint, accessId, securityToken"),
            "{}",
            e.message
        );
    }

    #[test]
    fn auth_failures_are_configuration_errors() {
        let e = service(403, "OTSAuthFailed").into_plugin("DescribeTable of dataTable 't'");
        assert_eq!(e.exit_code(), 2);
        assert!(e.message.contains("accessKey"));
    }
}
