//! How an injected fault looks on the OSS wire: an error action becomes an OSS error
//! (rendered as `<Error>` XML, or `x-oss-err` for HEAD); a drop closes the connection.

use axum::http::StatusCode;

use super::error::OssError;
use crate::common::faults::FaultAction;

/// The OSS error for an injected error action; `None` for a dropped connection.
/// Latency is applied by the caller and never reaches here as an error.
pub fn render(action: &FaultAction) -> Option<OssError> {
    match action {
        FaultAction::Error {
            status,
            code,
            message,
        } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = message
                .clone()
                .unwrap_or_else(|| format!("Injected fault: {code}."));
            Some(OssError::new(status, code, message))
        }
        FaultAction::Latency { .. } | FaultAction::Drop => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_action_keeps_status_and_code() {
        let error = render(&FaultAction::Error {
            status: 503,
            code: "ServiceUnavailable".into(),
            message: None,
        })
        .unwrap();
        assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.code, "ServiceUnavailable");
        assert!(render(&FaultAction::Drop).is_none());
    }
}
