//! The service's errors: an HTTP status, a code (`NoSuchTable`, `StatusConflict`, …)
//! and a message. The service endpoint renders them as the XML `<Error>` document,
//! the tunnel endpoint as the JSON object `{"Code", "Message", "RequestId"}`; both
//! carry the request id in `x-odps-request-id` (see `wire_xml` / `server`).

/// One error answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct OdpsError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// Extra response headers (e.g. `odps-tunnel-routed-server` on a 308).
    pub headers: Vec<(&'static str, String)>,
}

impl OdpsError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// The same error with one more response header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn no_such_project(project: &str) -> Self {
        Self::new(
            404,
            "NoSuchProject",
            format!("ODPS-0420111: Project not found - '{project}'."),
        )
    }

    pub fn no_such_table(project: &str, table: &str) -> Self {
        Self::new(
            404,
            "NoSuchTable",
            format!("ODPS-0130131:Table not found - table {project}.{table} cannot be resolved"),
        )
    }

    pub fn no_such_partition(spec: &str) -> Self {
        Self::new(
            404,
            "NoSuchPartition",
            format!(
                "ODPS-0130131:Partition not found - {spec}; The specified partition does not exist"
            ),
        )
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidArgument", message)
    }

    pub fn invalid_partition_spec(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidPartitionSpec", message)
    }

    pub fn status_conflict(message: impl Into<String>) -> Self {
        Self::new(409, "StatusConflict", message)
    }

    /// A fault of the emulator itself.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalServerError", message)
    }

    pub fn no_such_object(what: &str) -> Self {
        Self::new(404, "NoSuchObject", format!("{what} does not exist"))
    }
}

/// Shorthand for handlers.
pub type OdpsResult<T> = Result<T, OdpsError>;
