//! The request path: read the request, resolve bucket and key, classify the operation,
//! verify the signature, apply injected faults, run the operation, render the answer
//! with the headers every OSS response carries.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use md5::{Digest, Md5};
use serde::Serialize;

use super::addressing::{self, Query, Target};
use super::auth::{self, KeyStore, SignedRequest};
use super::error::{OssError, OssResult};
use super::operation::Operation;
use super::state::SharedStore;
use super::{buckets, faults, multipart, objects, wire};
use crate::common::{Clock, Credentials, FaultPlan, StsCheck};

/// The largest body the emulator accepts (the PutObject limit, 5 GiB).
const MAX_BODY_BYTES: usize = 5 << 30;
/// How many requests the request log keeps.
const LOG_CAPACITY: usize = 2000;

/// The emulator's shared state and settings.
#[derive(Debug)]
pub struct Oss {
    pub store: SharedStore,
    pub credentials: Vec<Credentials>,
    pub clock: Clock,
    pub faults: FaultPlan,
    pub region: String,
    /// Allowed clock skew; settable through `POST /-/oss/settings`.
    pub max_skew_ms: AtomicI64,
    pub log: Mutex<VecDeque<LoggedRequest>>,
    /// Credentials issued by the emulated STS / metadata service (wall-clock expiry).
    pub sts: crate::common::StsRegistry,
}

/// One entry of the request log (`GET /-/oss/requests`). No header values are kept,
/// so no signature or token ends up in it.
#[derive(Clone, Debug, Serialize)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub operation: Option<&'static str>,
    pub body_bytes: usize,
    /// 0 when the connection was dropped by fault injection.
    pub status: u16,
    pub code: Option<String>,
}

/// A decoded request, as the operations see it.
#[derive(Debug)]
pub struct Ctx {
    pub method: Method,
    pub target: Target,
    pub query: Query,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub now_ms: i64,
}

impl Ctx {
    /// The bucket of a bucket- or object-level request.
    pub fn bucket(&self) -> &str {
        self.target.bucket.as_deref().unwrap_or_default()
    }

    /// A request header as text (lossy), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// Whether `x-oss-forbid-overwrite: true` was sent.
    pub fn forbid_overwrite(&self) -> bool {
        self.header("x-oss-forbid-overwrite")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }

    /// Verifies `Content-MD5` against the body if the header is present (`InvalidDigest`).
    pub fn check_content_md5(&self) -> OssResult<()> {
        let Some(sent) = self.header("content-md5") else {
            return Ok(());
        };
        let digest = base64::engine::general_purpose::STANDARD
            .decode(sent.trim())
            .map_err(|_| OssError::invalid_digest())?;
        if digest.len() != 16 || digest.as_slice() != Md5::digest(&self.body).as_slice() {
            return Err(OssError::invalid_digest());
        }
        Ok(())
    }

    /// `encoding-type=url` was requested.
    pub fn url_encoding(&self) -> bool {
        self.query.get("encoding-type") == Some("url")
    }
}

/// A successful answer before the common headers are added.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Reply {
    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub fn xml(body: String) -> Self {
        Self {
            status: StatusCode::OK,
            headers: vec![("content-type".into(), "application/xml".into())],
            body: Bytes::from(body),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

fn invalid_security_token() -> OssError {
    OssError::new(
        StatusCode::FORBIDDEN,
        "InvalidSecurityToken",
        "The security token you provided is invalid.",
    )
    .ec("0002-00000006")
}

/// OSS's answer to an expired STS token (EC 0002-00000007 of the OSS error center).
fn security_token_expired() -> OssError {
    OssError::new(
        StatusCode::FORBIDDEN,
        "SecurityTokenExpired",
        "The security token you provided has expired.",
    )
    .ec("0002-00000007")
}

impl KeyStore for Oss {
    fn secret_for(&self, id: &str, token: Option<&str>, now_ms: i64) -> OssResult<String> {
        match self.sts.check(id, token, crate::common::sts::wall_ms()) {
            StsCheck::NotIssued => {}
            StsCheck::Valid(secret) => return Ok(secret),
            StsCheck::MissingToken => return Err(OssError::invalid_access_key_id(id)),
            StsCheck::WrongToken => return Err(invalid_security_token()),
            StsCheck::Expired => return Err(security_token_expired()),
        }
        if let Some(sts) = self.store.lock().sts.get(id) {
            let Some(token) = token else {
                return Err(OssError::invalid_access_key_id(id));
            };
            if token != sts.security_token {
                return Err(invalid_security_token());
            }
            if now_ms > sts.expires_ms {
                return Err(security_token_expired());
            }
            return Ok(sts.access_key_secret.clone());
        }
        match self.credentials.iter().find(|c| c.access_key_id == id) {
            // A token with a permanent key makes OSS treat the request as STS, and the
            // key is then unknown (documented cause of 0002-00000002).
            Some(c) if token.is_none() => Ok(c.access_key_secret.clone()),
            _ => Err(OssError::invalid_access_key_id(id)),
        }
    }
}

/// The fallback handler: every request that is not a control route.
pub async fn handle(State(oss): State<Arc<Oss>>, request: Request) -> Response {
    let request_id = request_id();
    let (parts, body) = request.into_parts();
    let host = parts
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let is_head = parts.method == Method::HEAD;
    let mut entry = LoggedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: redacted_query(parts.uri.query().unwrap_or_default()),
        operation: None,
        body_bytes: 0,
        status: 0,
        code: None,
    };
    let outcome = match read_body(&parts.headers, body).await {
        Ok(body) => {
            entry.body_bytes = body.len();
            process(&oss, parts, body, &mut entry).await
        }
        Err(error) => Outcome::Error(error),
    };
    let now_ms = oss.clock.now_ms();
    let response = match outcome {
        Outcome::Reply(reply) => render(reply, &request_id, now_ms, is_head),
        Outcome::Error(error) => {
            entry.code = Some(error.code.clone());
            render_error(&error, &request_id, &host, now_ms, is_head)
        }
        Outcome::Drop => crate::common::server::drop_connection(),
    };
    let dropped = response
        .extensions()
        .get::<crate::common::server::DropConnection>()
        .is_some();
    entry.status = if dropped {
        0
    } else {
        response.status().as_u16()
    };
    tracing::debug!(
        operation = entry.operation.unwrap_or("-"),
        method = %entry.method,
        path = %entry.path,
        status = entry.status,
        code = entry.code.as_deref().unwrap_or(""),
        "oss request"
    );
    oss.record(entry);
    response
}

/// The whole request body, within the PutObject size limit.
async fn read_body(headers: &HeaderMap, body: Body) -> OssResult<Bytes> {
    let declared_length = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(OssError::new(
            StatusCode::BAD_REQUEST,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed object size.",
        ));
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            OssError::new(
                StatusCode::BAD_REQUEST,
                "RequestTimeout",
                "Your socket connection to the server was not read from or written to within the timeout period.",
            )
        })
}

enum Outcome {
    Reply(Reply),
    Error(OssError),
    Drop,
}

async fn process(
    oss: &Oss,
    parts: axum::http::request::Parts,
    body: Bytes,
    entry: &mut LoggedRequest,
) -> Outcome {
    let host = parts.headers.get("host").and_then(|h| h.to_str().ok());
    let prepared = addressing::resolve(host, parts.uri.path()).and_then(|target| {
        let query = Query::new(addressing::parse_query(parts.uri.query())?);
        let operation = Operation::classify(&parts.method, &target, &query, &parts.headers)?;
        Ok((target, query, operation))
    });
    let (target, query, operation) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return Outcome::Error(error),
    };
    entry.operation = Some(operation.name());
    let now_ms = oss.clock.now_ms();
    let signed = SignedRequest {
        method: parts.method.as_str(),
        target: &target,
        query: &query.pairs,
        headers: &parts.headers,
    };
    if let Err(error) = auth::verify(
        &signed,
        oss,
        now_ms,
        oss.max_skew_ms.load(Ordering::Relaxed),
    ) {
        return Outcome::Error(error);
    }

    let fault = oss.faults.decide(operation.name());
    if fault.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(fault.latency_ms)).await;
    }
    if let Some(action) = &fault.before {
        return match faults::render(action) {
            Some(error) => Outcome::Error(error),
            None => Outcome::Drop,
        };
    }
    let ctx = Ctx {
        method: parts.method,
        target,
        query,
        headers: parts.headers,
        body,
        now_ms,
    };
    let result = execute(oss, operation, &ctx);
    fault.delay_answer().await;
    if let Some(action) = &fault.after {
        return match faults::render(action) {
            Some(error) => Outcome::Error(error),
            None => Outcome::Drop,
        };
    }
    match result {
        Ok(reply) => Outcome::Reply(reply),
        Err(error) => Outcome::Error(error),
    }
}

fn execute(oss: &Oss, operation: Operation, ctx: &Ctx) -> OssResult<Reply> {
    use Operation as Op;
    match operation {
        Op::ListBuckets => buckets::list_buckets(oss, ctx),
        Op::PutBucket => buckets::put_bucket(oss, ctx),
        Op::DeleteBucket => buckets::delete_bucket(oss, ctx),
        Op::GetBucketInfo => buckets::get_bucket_info(oss, ctx),
        Op::GetBucketLocation => buckets::get_bucket_location(oss, ctx),
        Op::GetBucketAcl => buckets::get_bucket_acl(oss, ctx),
        Op::ListObjects => buckets::list_objects(oss, ctx, false),
        Op::ListObjectsV2 => buckets::list_objects(oss, ctx, true),
        Op::ListMultipartUploads => multipart::list_uploads(oss, ctx),
        Op::DeleteMultipleObjects => objects::delete_multiple(oss, ctx),
        Op::PutObject => objects::put(oss, ctx),
        Op::GetObject => objects::get(oss, ctx, true),
        Op::HeadObject | Op::GetObjectMeta => objects::get(oss, ctx, false),
        Op::DeleteObject => objects::delete(oss, ctx),
        Op::AppendObject => objects::append(oss, ctx),
        Op::InitiateMultipartUpload => multipart::initiate(oss, ctx),
        Op::UploadPart => multipart::upload_part(oss, ctx),
        Op::CompleteMultipartUpload => multipart::complete(oss, ctx),
        Op::AbortMultipartUpload => multipart::abort(oss, ctx),
        Op::ListParts => multipart::list_parts(oss, ctx),
    }
}

impl Oss {
    fn record(&self, entry: LoggedRequest) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() == LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(entry);
    }
}

/// The raw query with the values of signatures and security tokens replaced, so that
/// the request log never holds a credential.
fn redacted_query(raw: &str) -> String {
    const SECRET_PARAMETERS: &[&str] = &[
        "Signature",
        "security-token",
        "x-oss-signature",
        "x-oss-security-token",
    ];
    raw.split('&')
        .map(|part| match part.split_once('=') {
            Some((name, _)) if SECRET_PARAMETERS.contains(&name) => format!("{name}=<redacted>"),
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// 24 uppercase hex characters, as OSS request ids look.
fn request_id() -> String {
    hex::encode_upper(rand::random::<[u8; 12]>())
}

fn common_headers(headers: &mut HeaderMap, request_id: &str, now_ms: i64) {
    insert(headers, "x-oss-request-id", request_id);
    insert(headers, "date", &wire::http_date(now_ms));
    insert(headers, "server", "AliyunOSS");
}

fn insert(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_bytes(value.as_bytes()),
    ) {
        headers.insert(name, value);
    }
}

fn render(reply: Reply, request_id: &str, now_ms: i64, is_head: bool) -> Response {
    let mut headers = HeaderMap::new();
    for (name, value) in &reply.headers {
        insert(&mut headers, name, value);
    }
    common_headers(&mut headers, request_id, now_ms);
    let body = if is_head {
        Body::empty()
    } else {
        Body::from(reply.body)
    };
    (reply.status, headers, body).into_response()
}

fn render_error(
    error: &OssError,
    request_id: &str,
    host: &str,
    now_ms: i64,
    is_head: bool,
) -> Response {
    let xml = wire::error_xml(error, request_id, host);
    let mut headers = HeaderMap::new();
    for (name, value) in &error.headers {
        insert(&mut headers, name, value);
    }
    common_headers(&mut headers, request_id, now_ms);
    if let Some(ec) = error.ec {
        insert(&mut headers, "x-oss-ec", ec);
    }
    if is_head {
        // HEAD errors have no body; newer OSS puts the error XML in x-oss-err.
        let encoded = base64::engine::general_purpose::STANDARD.encode(xml.as_bytes());
        insert(&mut headers, "x-oss-err", &encoded);
        return (error.status, headers, Body::empty()).into_response();
    }
    insert(&mut headers, "content-type", "application/xml");
    (error.status, headers, Body::from(xml)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_log_never_keeps_signatures_or_tokens() {
        let redacted =
            redacted_query("OSSAccessKeyId=id&Signature=abc%2B&security-token=t&prefix=p");
        assert_eq!(
            redacted,
            "OSSAccessKeyId=id&Signature=<redacted>&security-token=<redacted>&prefix=p"
        );
        assert!(redacted_query("x-oss-signature=s").ends_with("<redacted>"));
    }

    #[test]
    fn request_ids_look_like_oss_ones() {
        let id = request_id();
        assert_eq!(id.len(), 24);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
    }
}
