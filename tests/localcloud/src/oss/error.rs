//! OSS service errors: the code, HTTP status and message OSS answers with.
//!
//! Codes and statuses follow the OSS documentation and the SDKs' exception tables
//! (oss2 `exceptions.py`, the Java SDK's `OSSErrorCode`); see the module docs of
//! [`super`] for the ones whose exact code is inferred.

use axum::http::StatusCode;

/// One OSS error response, before rendering (see [`super::wire::error_xml`]).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct OssError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Code-specific elements added to the `<Error>` body, in order.
    pub details: Vec<(String, String)>,
    /// Extra response headers (e.g. `x-oss-next-append-position`).
    pub headers: Vec<(String, String)>,
    /// The detailed error code (`<EC>`), when the documentation names one.
    pub ec: Option<&'static str>,
}

/// Result of an OSS operation.
pub type OssResult<T> = Result<T, OssError>;

impl OssError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            details: Vec::new(),
            headers: Vec::new(),
            ec: None,
        }
    }

    pub fn detail(mut self, name: &str, value: impl Into<String>) -> Self {
        self.details.push((name.to_owned(), value.into()));
        self
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn ec(mut self, ec: &'static str) -> Self {
        self.ec = Some(ec);
        self
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    pub fn invalid_access_key_id(id: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
        )
        .detail("OSSAccessKeyId", id)
        .ec("0002-00000002")
    }

    pub fn signature_does_not_match(id: &str, string_to_sign: &str, provided: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. \
             Check your key and signing method.",
        )
        .detail("StringToSign", string_to_sign)
        .detail("SignatureProvided", provided)
        .detail("OSSAccessKeyId", id)
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
    }

    pub fn invalid_digest() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidDigest",
            "The Content-MD5 you specified is not valid.",
        )
    }

    pub fn malformed_xml(why: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MalformedXML",
            format!("The XML you provided was not well-formed or did not validate against our published schema: {why}"),
        )
    }

    pub fn missing_argument(what: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MissingArgument",
            "Missing Some Required Arguments.",
        )
        .detail("ArgumentName", what)
    }

    pub fn no_such_bucket(bucket: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist.",
        )
        .detail("BucketName", bucket)
    }

    pub fn no_such_key(key: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        )
        .detail("Key", key)
        .ec("0026-00000001")
    }

    pub fn no_such_upload(upload_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
        .detail("UploadId", upload_id)
    }

    pub fn invalid_object_name(why: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidObjectName",
            format!("The specified object is not valid: {why}"),
        )
    }

    pub fn invalid_bucket_name(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidBucketName",
            "The specified bucket is not valid.",
        )
        .detail("BucketName", name)
    }

    pub fn file_already_exists(key: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "FileAlreadyExists",
            "The object you specified already exists and can not be overwritten.",
        )
        .detail("Key", key)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }

    pub fn not_implemented(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!("The emulator does not implement {what}."),
        )
    }
}

/// A failure to write the data directory is the emulator's own fault: `InternalError`.
impl From<std::io::Error> for OssError {
    fn from(error: std::io::Error) -> Self {
        Self::internal(format!(
            "The emulator could not update its data directory: {error}"
        ))
    }
}
