//! How injected faults look on MaxCompute's wire: an error rule becomes the
//! service's XML `<Error>` (service endpoint) or the tunnel's JSON error (tunnel
//! endpoint) with the rule's status and code; a drop rule closes the connection
//! without an answer. Latency is applied by the pipeline before the request runs.

use axum::response::Response;

use super::error::OdpsError;
use super::routes::Surface;
use super::server;
use crate::common::faults::FaultAction;
use crate::common::server::drop_connection;

/// The response for an injected fault on `operation`.
pub fn render(
    surface: Surface,
    action: &FaultAction,
    operation: &str,
    request_id: &str,
) -> Response {
    match action {
        FaultAction::Error {
            status,
            code,
            message,
        } => {
            let message = message
                .clone()
                .unwrap_or_else(|| format!("injected fault on {operation}: {code}"));
            let e = OdpsError::new(*status, code, message);
            server::error_response(surface, &e, request_id)
        }
        FaultAction::Drop | FaultAction::Latency { .. } => drop_connection(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn error_faults_use_each_surface_format() {
        let action = FaultAction::Error {
            status: 503,
            code: "ServiceUnavailable".into(),
            message: None,
        };
        let service = render(Surface::Service, &action, "CreateInstance", "RID");
        assert_eq!(service.status(), 503);
        assert_eq!(service.headers()["x-odps-request-id"], "RID");
        let body = axum::body::to_bytes(service.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("<Code>ServiceUnavailable</Code>"), "{text}");
        let tunnel = render(Surface::Tunnel, &action, "CommitUpload", "RID");
        let body = axum::body::to_bytes(tunnel.into_body(), 1 << 20)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["Code"], "ServiceUnavailable");
        assert!(json["Message"].as_str().unwrap().contains("CommitUpload"));
    }

    #[test]
    fn drop_faults_ask_the_server_to_close() {
        let r = render(Surface::Tunnel, &FaultAction::Drop, "UploadBlock", "RID");
        assert!(r
            .extensions()
            .get::<crate::common::server::DropConnection>()
            .is_some());
    }
}
