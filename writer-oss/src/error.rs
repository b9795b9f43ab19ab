//! OSS errors, classified once: which are worth retrying, and what they mean to a user.

use protocol::runtime::PluginError;

/// A failed OSS request.
#[derive(Clone, Debug, thiserror::Error)]
pub enum OssError {
    /// OSS answered with an error status.
    #[error("{operation} {target}: HTTP {status} {code}: {message}{}", request_id_text(.request_id))]
    Service {
        operation: &'static str,
        target: String,
        status: u16,
        code: String,
        message: String,
        request_id: String,
    },
    /// The request did not get an answer (connection refused or dropped, timeout).
    #[error("{operation} {target}: {message}")]
    Transport {
        operation: &'static str,
        target: String,
        message: String,
    },
    /// The request could not even be built (a malformed endpoint, a header value with a
    /// newline): a permanent local mistake in the configuration, never retried.
    #[error("{operation} {target}: the request cannot be built: {message} (check endpoint, accessId and securityToken)")]
    Local {
        operation: &'static str,
        target: String,
        message: String,
    },
    /// No credentials to sign with: the metadata service or STS failed (`temporary`:
    /// it may pass), or refused.
    #[error("{operation} {target}: credentials: {message}")]
    Credentials {
        operation: &'static str,
        target: String,
        message: String,
        temporary: bool,
    },
    /// The answer arrived but does not check out (CRC-64 mismatch, unreadable XML).
    #[error("{operation} {target}: {message}")]
    Integrity {
        operation: &'static str,
        target: String,
        message: String,
    },
}

fn request_id_text(id: &str) -> String {
    if id.is_empty() {
        String::new()
    } else {
        format!(" (request id {id})")
    }
}

impl OssError {
    /// The OSS error code, for service errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            OssError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether trying again may succeed: 5xx, 408, 429, clock skew, a body that timed
    /// out or arrived damaged, and every transport or integrity failure.
    pub fn is_retryable(&self) -> bool {
        match self {
            OssError::Service { status, code, .. } => {
                *status >= 500
                    || *status == 408
                    || *status == 429
                    || matches!(
                        code.as_str(),
                        "RequestTimeTooSkewed" | "RequestTimeout" | "InvalidDigest"
                    )
            }
            OssError::Transport { .. } | OssError::Integrity { .. } => true,
            OssError::Local { .. } => false,
            OssError::Credentials { temporary, .. } => *temporary,
        }
    }

    /// The error as the plugin reports it: bad credentials and a missing bucket are
    /// configuration errors (with a hint), everything else a service error.
    pub fn into_plugin(self) -> PluginError {
        let retryable = self.is_retryable();
        let hint = match self.code() {
            Some("SignatureDoesNotMatch") => {
                " (check accessKey: the signature computed with it does not match)"
            }
            Some("InvalidAccessKeyId") => " (check accessId)",
            Some("InvalidSecurityToken") => " (check securityToken)",
            Some("SecurityTokenExpired") => {
                " (check securityToken; temporary credentials of the chain are refreshed ahead of \
                 their expiry)"
            }
            Some("NoSuchBucket") => " (check bucket: DataX never creates buckets, nor do we)",
            Some("AccessDenied") => " (the credentials lack permission for this bucket)",
            _ => "",
        };
        let message = format!("OSS {self}{hint}");
        let config = matches!(
            self.code(),
            Some(
                "SignatureDoesNotMatch"
                    | "InvalidAccessKeyId"
                    | "InvalidSecurityToken"
                    | "SecurityTokenExpired"
                    | "NoSuchBucket"
                    | "InvalidBucketName"
                    | "InvalidObjectName"
                    | "AccessDenied"
            )
        );
        if config || matches!(self, OssError::Local { .. }) {
            PluginError::config(message)
        } else {
            PluginError::service(message).retryable(retryable)
        }
    }
}

impl From<OssError> for PluginError {
    fn from(e: OssError) -> Self {
        e.into_plugin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: &str) -> OssError {
        OssError::Service {
            operation: "PutObject",
            target: "b/k".into(),
            status,
            code: code.into(),
            message: "m".into(),
            request_id: "ID".into(),
        }
    }

    #[test]
    fn only_temporary_errors_are_retried() {
        assert!(service(503, "ServiceUnavailable").is_retryable());
        assert!(service(500, "InternalError").is_retryable());
        assert!(service(429, "Throttling").is_retryable());
        assert!(service(403, "RequestTimeTooSkewed").is_retryable());
        assert!(!service(403, "SignatureDoesNotMatch").is_retryable());
        assert!(!service(404, "NoSuchBucket").is_retryable());
        assert!(!service(400, "InvalidPart").is_retryable());
    }

    #[test]
    fn requests_that_cannot_be_built_are_configuration_errors_not_retried() {
        let e = OssError::Local {
            operation: "GetBucketInfo",
            target: "b/".into(),
            message: "failed to parse header value".into(),
        };
        assert!(!e.is_retryable());
        let e = e.into_plugin();
        assert_eq!((e.exit_code(), e.retryable), (2, false));
        assert!(e
            .message
            .contains("check endpoint, accessId and securityToken"));
    }

    #[test]
    fn bad_credentials_are_configuration_errors_with_a_hint() {
        let e = service(403, "SignatureDoesNotMatch").into_plugin();
        assert_eq!(e.exit_code(), 2);
        assert!(e.message.contains("accessKey"), "{}", e.message);
        assert!(e.message.contains("request id ID"), "{}", e.message);
        let e = service(503, "ServiceUnavailable").into_plugin();
        assert_eq!(e.exit_code(), 1);
        assert!(e.retryable);
    }
}
