//! Which OSS API a request calls, from its method, target and query. The names are the
//! OSS API names; fault rules select operations by these names.

use axum::http::{HeaderMap, Method};

use super::addressing::{Query, Target};
use super::error::{OssError, OssResult};

/// The operations the emulator implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    ListBuckets,
    PutBucket,
    DeleteBucket,
    GetBucketInfo,
    GetBucketLocation,
    GetBucketAcl,
    ListObjects,
    ListObjectsV2,
    ListMultipartUploads,
    DeleteMultipleObjects,
    PutObject,
    GetObject,
    HeadObject,
    GetObjectMeta,
    DeleteObject,
    AppendObject,
    InitiateMultipartUpload,
    UploadPart,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
}

impl Operation {
    /// The OSS API name (used by fault rules and the request log).
    pub fn name(self) -> &'static str {
        match self {
            Self::ListBuckets => "ListBuckets",
            Self::PutBucket => "PutBucket",
            Self::DeleteBucket => "DeleteBucket",
            Self::GetBucketInfo => "GetBucketInfo",
            Self::GetBucketLocation => "GetBucketLocation",
            Self::GetBucketAcl => "GetBucketAcl",
            Self::ListObjects => "ListObjects",
            Self::ListObjectsV2 => "ListObjectsV2",
            Self::ListMultipartUploads => "ListMultipartUploads",
            Self::DeleteMultipleObjects => "DeleteMultipleObjects",
            Self::PutObject => "PutObject",
            Self::GetObject => "GetObject",
            Self::HeadObject => "HeadObject",
            Self::GetObjectMeta => "GetObjectMeta",
            Self::DeleteObject => "DeleteObject",
            Self::AppendObject => "AppendObject",
            Self::InitiateMultipartUpload => "InitiateMultipartUpload",
            Self::UploadPart => "UploadPart",
            Self::CompleteMultipartUpload => "CompleteMultipartUpload",
            Self::AbortMultipartUpload => "AbortMultipartUpload",
            Self::ListParts => "ListParts",
        }
    }

    /// Classifies a request; anything the emulator does not implement is `NotImplemented`.
    pub fn classify(
        method: &Method,
        target: &Target,
        query: &Query,
        headers: &HeaderMap,
    ) -> OssResult<Self> {
        let unsupported = || OssError::not_implemented(&format!("{method} with this query"));
        if target.bucket.is_none() {
            return match *method {
                Method::GET => Ok(Self::ListBuckets),
                _ => Err(unsupported()),
            };
        }
        if target.key.is_empty() {
            return Self::classify_bucket(method, query).ok_or_else(unsupported);
        }
        for name in [
            "acl",
            "tagging",
            "symlink",
            "restore",
            "x-oss-process",
            "versions",
        ] {
            if query.has(name) {
                return Err(OssError::not_implemented(&format!(
                    "the object sub-resource {name}"
                )));
            }
        }
        if *method == Method::PUT && headers.contains_key("x-oss-copy-source") {
            return Err(OssError::not_implemented("CopyObject and UploadPartCopy"));
        }
        let op = match *method {
            Method::PUT if query.has("uploadId") || query.has("partNumber") => Self::UploadPart,
            Method::PUT => Self::PutObject,
            Method::GET if query.has("uploadId") => Self::ListParts,
            Method::GET if query.has("objectMeta") => Self::GetObjectMeta,
            Method::GET => Self::GetObject,
            Method::HEAD if query.has("objectMeta") => Self::GetObjectMeta,
            Method::HEAD => Self::HeadObject,
            Method::DELETE if query.has("uploadId") => Self::AbortMultipartUpload,
            Method::DELETE => Self::DeleteObject,
            Method::POST if query.has("uploads") => Self::InitiateMultipartUpload,
            Method::POST if query.has("uploadId") => Self::CompleteMultipartUpload,
            Method::POST if query.has("append") => Self::AppendObject,
            _ => return Err(unsupported()),
        };
        Ok(op)
    }

    fn classify_bucket(method: &Method, query: &Query) -> Option<Self> {
        let op = match *method {
            Method::PUT if query.pairs.is_empty() => Self::PutBucket,
            Method::DELETE if query.pairs.is_empty() => Self::DeleteBucket,
            Method::POST if query.has("delete") => Self::DeleteMultipleObjects,
            Method::GET if query.has("acl") => Self::GetBucketAcl,
            Method::GET if query.has("bucketInfo") => Self::GetBucketInfo,
            Method::GET if query.has("location") => Self::GetBucketLocation,
            Method::GET if query.has("uploads") => Self::ListMultipartUploads,
            Method::GET if query.get("list-type") == Some("2") => Self::ListObjectsV2,
            Method::GET if query.pairs.iter().all(|(n, _)| is_list_parameter(n)) => {
                Self::ListObjects
            }
            _ => return None,
        };
        Some(op)
    }
}

/// Parameters a ListObjects (v1) request may carry: its own, and those of a presigned
/// URL's signature.
fn is_list_parameter(name: &str) -> bool {
    matches!(
        name,
        "prefix"
            | "marker"
            | "max-keys"
            | "delimiter"
            | "encoding-type"
            | "list-type"
            | "OSSAccessKeyId"
            | "Expires"
            | "Signature"
            | "security-token"
    ) || name.starts_with("x-oss-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oss::addressing::parse_query;

    fn op(method: Method, key: &str, query: &str) -> OssResult<Operation> {
        let target = Target {
            bucket: Some("b".into()),
            key: key.into(),
        };
        let query = Query::new(parse_query(Some(query)).unwrap());
        Operation::classify(&method, &target, &query, &HeaderMap::new())
    }

    #[test]
    fn object_operations() {
        assert_eq!(op(Method::PUT, "k", "").unwrap(), Operation::PutObject);
        assert_eq!(
            op(Method::PUT, "k", "partNumber=1&uploadId=x").unwrap(),
            Operation::UploadPart
        );
        assert_eq!(
            op(Method::POST, "k", "uploads=").unwrap(),
            Operation::InitiateMultipartUpload
        );
        assert_eq!(
            op(Method::POST, "k", "uploadId=x").unwrap(),
            Operation::CompleteMultipartUpload
        );
        assert_eq!(
            op(Method::POST, "k", "append&position=0").unwrap(),
            Operation::AppendObject
        );
        assert_eq!(
            op(Method::DELETE, "k", "uploadId=x").unwrap(),
            Operation::AbortMultipartUpload
        );
        assert_eq!(
            op(Method::GET, "k", "uploadId=x").unwrap(),
            Operation::ListParts
        );
        assert_eq!(
            op(Method::GET, "k", "acl").unwrap_err().code,
            "NotImplemented"
        );
    }

    #[test]
    fn bucket_operations() {
        assert_eq!(op(Method::GET, "", "").unwrap(), Operation::ListObjects);
        assert_eq!(
            op(Method::GET, "", "list-type=2&prefix=").unwrap(),
            Operation::ListObjectsV2
        );
        assert_eq!(
            op(Method::POST, "", "delete=").unwrap(),
            Operation::DeleteMultipleObjects
        );
        assert_eq!(
            op(Method::GET, "", "bucketInfo").unwrap(),
            Operation::GetBucketInfo
        );
        assert_eq!(
            op(Method::GET, "", "uploads").unwrap(),
            Operation::ListMultipartUploads
        );
        assert_eq!(op(Method::PUT, "", "").unwrap(), Operation::PutBucket);
        assert!(op(Method::GET, "", "lifecycle").is_err());
    }
}
