//! How injected faults look on Tablestore's wire: an error is a protobuf `Error` body
//! with the rule's status and code (signed like every other response); a drop closes
//! the connection without an answer. The operation name of a rule is the action, e.g.
//! `GetStreamRecord`.

use super::error::OtsError;
use crate::common::faults::FaultAction;
use crate::common::Fault;

/// A fault to apply to one response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Injected {
    Error(OtsError),
    Drop,
}

fn render(action: &FaultAction) -> Option<Injected> {
    match action {
        FaultAction::Error {
            status,
            code,
            message,
        } => Some(Injected::Error(OtsError::new(
            *status,
            code,
            message
                .clone()
                .unwrap_or_else(|| format!("Injected fault: {code}.")),
        ))),
        FaultAction::Drop => Some(Injected::Drop),
        FaultAction::Latency { .. } => None,
    }
}

/// The fault to apply before the operation runs.
pub fn before(fault: &Fault) -> Option<Injected> {
    fault.before.as_ref().and_then(render)
}

/// The fault to apply after the operation took effect.
pub fn after(fault: &Fault) -> Option<Injected> {
    fault.after.as_ref().and_then(render)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_rules_become_service_errors() {
        let fault = Fault {
            latency_ms: 0,
            latency_after_ms: 0,
            before: Some(FaultAction::Error {
                status: 503,
                code: "OTSServerBusy".into(),
                message: None,
            }),
            after: Some(FaultAction::Drop),
        };
        match before(&fault) {
            Some(Injected::Error(e)) => {
                assert_eq!((e.status, e.code.as_str()), (503, "OTSServerBusy"))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(after(&fault), Some(Injected::Drop));
    }
}
