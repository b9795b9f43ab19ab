//! Tablestore service errors: an HTTP status, an `OTS…` code and a message, sent as a
//! protobuf `Error` body (spec §1.6). Codes and messages follow the service's error
//! code reference (DOC-ERR in the spec).

use prost::Message;

use super::pb;

/// One service error as the client will see it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct OtsError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl OtsError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// 400 `OTSParameterInvalid`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "OTSParameterInvalid", message)
    }

    /// 403 `OTSAuthFailed`.
    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(403, "OTSAuthFailed", message)
    }

    /// 404 `OTSObjectNotExist` for a table.
    pub fn no_table() -> Self {
        Self::new(404, "OTSObjectNotExist", "Requested table does not exist.")
    }

    /// 403 `OTSConditionCheckFail`.
    pub fn condition() -> Self {
        Self::new(403, "OTSConditionCheckFail", "Condition check failed.")
    }

    /// 400 `OTSInvalidPK`.
    pub fn invalid_pk() -> Self {
        Self::new(400, "OTSInvalidPK", "Primary key schema mismatch.")
    }

    /// `OTSTrimmedDataAccess`; the status is not documented, 400 is the project's choice
    /// (spec §1.6).
    pub fn trimmed() -> Self {
        Self::new(
            400,
            "OTSTrimmedDataAccess",
            "Requested stream data is already trimmed or does not exist.",
        )
    }

    /// The `Error` message as it goes on the wire.
    pub fn to_proto(&self) -> pb::Error {
        pb::Error {
            code: self.code.clone(),
            message: Some(self.message.clone()),
        }
    }

    pub fn body(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }
}

/// Result of a Tablestore operation.
pub type OtsResult<T> = Result<T, OtsError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_round_trips_through_protobuf() {
        let err = OtsError::trimmed();
        let decoded = pb::Error::decode(err.body().as_slice()).unwrap();
        assert_eq!(decoded.code, "OTSTrimmedDataAccess");
        assert_eq!(decoded.message.as_deref(), Some(err.message.as_str()));
    }
}
