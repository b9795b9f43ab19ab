//! The request pipeline shared by both surfaces: classify the request, apply
//! injected faults, check the clock skew and the signature, run the operation and
//! render its answer (XML on the service endpoint, JSON on the tunnel endpoint).

use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::{self, SignedRequest};
use super::error::{OdpsError, OdpsResult};
use super::faults;
use super::render;
use super::routes::{self, Query, Route, Surface};
use super::state::Catalog;
use super::types::OdpsType;
use super::wire::{BlockDecoder, BlockError, EncodedBlock};
use super::{service, tunnel};
use crate::common::sts::wall_ms;
use crate::common::{Clock, Credentials, FaultPlan, StsCheck, StsRegistry};

/// The largest request body accepted (one Tunnel block).
pub const MAX_BODY_BYTES: usize = 512 * 1024 * 1024;

/// Requests whose `Date` is further than this from the emulator clock are refused.
pub const MAX_CLOCK_SKEW_MS: i64 = 15 * 60 * 1000;

/// Shared state of the running emulator.
pub struct Odps {
    pub catalog: Mutex<Catalog>,
    pub credentials: Vec<Credentials>,
    pub clock: Clock,
    pub faults: FaultPlan,
    pub started_ms: i64,
    /// The most recent requests, oldest first (see [`RequestRecord`]).
    pub requests: Mutex<std::collections::VecDeque<RequestRecord>>,
    /// Credentials issued by the emulated STS / metadata service.
    pub sts: StsRegistry,
}

/// How many requests `GET /-/odps/requests` remembers.
pub const REQUEST_LOG_LEN: usize = 500;

/// One received request, for tests that check what an SDK sends.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RequestRecord {
    pub operation: String,
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Header names lower-cased; `authorization` is left out.
    pub headers: Vec<(String, String)>,
    /// Body length as received (after chunked decoding, before `Content-Encoding`).
    pub body_len: usize,
    /// `v2` or `v4`, with `+sts` when an `authorization-sts-token` came along.
    pub signature: String,
}

impl Odps {
    pub fn catalog(&self) -> MutexGuard<'_, Catalog> {
        // Every mutation keeps the catalogue consistent, so a poisoned lock is usable.
        self.catalog.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a handler answers on success.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn xml(body: String) -> Self {
        Self {
            status: 200,
            content_type: "application/xml",
            headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    pub fn json(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            content_type: "text/plain",
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

/// Everything a handler needs from the request.
pub struct Call<'a> {
    pub route: Route,
    pub query: &'a Query,
    pub headers: &'a [(String, String)],
    pub body: bytes::Bytes,
    /// `host:port` the client addressed, for discovery and `Location`.
    pub host: String,
    pub now_ms: i64,
}

impl Call<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn request_id(seq: u64, now_ms: i64) -> String {
    format!("{now_ms:013X}{seq:011X}LOCALCLOUD")
}

/// Renders an error on `surface`.
pub fn error_response(surface: Surface, e: &OdpsError, request_id: &str) -> Response {
    let (content_type, body) = match surface {
        Surface::Service => ("application/xml", render::error_xml(e, request_id)),
        Surface::Tunnel => ("application/json", render::error_json(e, request_id)),
    };
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    set_header(&mut response, "content-type", content_type);
    set_header(&mut response, "x-odps-request-id", request_id);
    for (name, value) in &e.headers {
        set_header(&mut response, name, value);
    }
    response
}

fn set_header(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
}

fn reply_response(reply: Reply, request_id: &str) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut response = (status, Body::from(reply.body)).into_response();
    set_header(&mut response, "content-type", reply.content_type);
    set_header(&mut response, "x-odps-request-id", request_id);
    for (name, value) in &reply.headers {
        set_header(&mut response, name, value);
    }
    response
}

/// The fallback handler: every path that is not a control route.
pub async fn handle(State(odps): State<Arc<Odps>>, request: Request) -> Response {
    let now_ms = odps.clock.now_ms();
    let request_id = request_id(odps.catalog().next_id(), now_ms);
    let (parts, body) = request.into_parts();
    let raw_path = parts.uri.path().to_owned();
    let (surface, rel_path) = match raw_path.strip_prefix("/api") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            (Surface::Service, rest.to_owned())
        }
        _ => (Surface::Tunnel, raw_path.clone()),
    };
    let query = Query::parse(parts.uri.query());
    let method = parts.method.as_str().to_owned();
    let decoded_path = percent_encoding::percent_decode_str(&rel_path)
        .decode_utf8_lossy()
        .into_owned();
    let segments: Vec<String> = rel_path
        .trim_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let route = match routes::classify(surface, &method, &segments, &query, &decoded_path) {
        Ok(r) => r,
        Err(e) => return error_response(surface, &e, &request_id),
    };
    let fault = odps.faults.decide(route.operation());
    if fault.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(fault.latency_ms)).await;
    }
    if let Some(action) = &fault.before {
        return faults::render(surface, action, route.operation(), &request_id);
    }
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let host = parts
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    if let Err(e) = authenticate(&odps, &method, &headers, &decoded_path, &query, now_ms) {
        return error_response(surface, &e, &request_id);
    }
    // A block for an open session is checked as it arrives, as the service does;
    // every other body is read whole first.
    let streamed = match surface {
        Surface::Tunnel => tunnel::streamed_block_columns(&odps, &route, &headers),
        Surface::Service => None,
    };
    let received = match streamed {
        Some(columns) => receive_block(body, columns)
            .await
            .map(|(rows, len)| (bytes::Bytes::new(), Some(rows), len)),
        None => axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map(|b| {
                let len = b.len();
                (b, None, len)
            })
            .map_err(|e| e.to_string()),
    };
    let (body, block, body_len) = match received {
        Ok(r) => r,
        Err(e) => {
            let e = OdpsError::new(
                400,
                "IncompleteBody",
                format!("reading the request body failed: {e}"),
            );
            return error_response(surface, &e, &request_id);
        }
    };
    log_request(
        &odps, &route, &method, &raw_path, &query, &headers, body_len,
    );
    let call = Call {
        route,
        query: &query,
        headers: &headers,
        body,
        host,
        now_ms,
    };
    let operation = call.route.operation();
    let result = match surface {
        Surface::Service => service::handle(&odps, &call),
        Surface::Tunnel => tunnel::handle(&odps, &call, block),
    };
    fault.delay_answer().await;
    if let Some(action) = &fault.after {
        return faults::render(surface, action, operation, &request_id);
    }
    match result {
        Ok(reply) => reply_response(reply, &request_id),
        Err(e) => error_response(surface, &e, &request_id),
    }
}

/// Reads a block body chunk by chunk into a [`BlockDecoder`]; returns the checked
/// block (or why it is invalid) and the body's length.
async fn receive_block(
    mut body: Body,
    columns: Vec<OdpsType>,
) -> Result<(Result<EncodedBlock, BlockError>, usize), String> {
    use http_body_util::BodyExt;
    let mut decoder = BlockDecoder::checking(columns);
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|e| e.to_string())?.into_data() else {
            continue; // trailers
        };
        if decoder.received() + data.len() > MAX_BODY_BYTES {
            return Err("length limit exceeded".to_owned());
        }
        decoder.push(data);
    }
    let len = decoder.received();
    Ok((decoder.finish_encoded(), len))
}

fn log_request(
    odps: &Odps,
    route: &Route,
    method: &str,
    path: &str,
    query: &Query,
    headers: &[(String, String)],
    body_len: usize,
) {
    let record = RequestRecord {
        operation: route.operation().to_owned(),
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.0.clone(),
        headers: headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("authorization"))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect(),
        body_len,
        signature: signature_kind(headers),
    };
    let mut log = odps.requests.lock().unwrap_or_else(|e| e.into_inner());
    if log.len() == REQUEST_LOG_LEN {
        log.pop_front();
    }
    log.push_back(record);
}

fn signature_kind(headers: &[(String, String)]) -> String {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let credential = header("authorization")
        .and_then(|a| a.rsplit_once(':'))
        .map_or("", |(c, _)| c);
    let mut kind = if credential.contains('/') { "v4" } else { "v2" }.to_owned();
    if header("authorization-sts-token").is_some() {
        kind.push_str("+sts");
    }
    kind
}

fn authenticate(
    odps: &Odps,
    method: &str,
    headers: &[(String, String)],
    resource: &str,
    query: &Query,
    now_ms: i64,
) -> OdpsResult<()> {
    let date = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("date"))
        .and_then(|(_, v)| httpdate::parse_http_date(v).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .ok_or_else(|| {
            OdpsError::new(
                403,
                "AccessDenied",
                "the request has no valid Date header (RFC 1123, GMT)",
            )
        })?;
    if (date - now_ms).abs() > MAX_CLOCK_SKEW_MS {
        return Err(OdpsError::new(
            403,
            "RequestTimeTooSkewed",
            format!(
                "max_interval_date:{MAX_CLOCK_SKEW_MS},expire_date:{},now_date:{}",
                iso_ms(date),
                iso_ms(now_ms)
            ),
        ));
    }
    if let Some((_, token)) = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization-sts-token"))
    {
        if token.trim().is_empty() {
            return Err(OdpsError::new(
                401,
                "Unauthorized",
                "the authorization-sts-token header is empty",
            ));
        }
    }
    let yyyymmdd = chrono::DateTime::from_timestamp_millis(date)
        .map(|t| t.format("%Y%m%d").to_string())
        .unwrap_or_default();
    let signed = SignedRequest {
        method,
        headers,
        resource,
        query: &query.0,
    };
    let sts_token = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization-sts-token"))
        .map(|(_, v)| v.as_str());
    // A key issued by the emulated STS is valid with its token until it expires.
    let sts_refusal = std::cell::RefCell::new(None);
    let secret_of = |id: &str| match odps.sts.check(id, sts_token, wall_ms()) {
        StsCheck::Valid(secret) => Some(secret),
        StsCheck::NotIssued => odps
            .credentials
            .iter()
            .find(|c| c.access_key_id == id)
            .map(|c| c.access_key_secret.clone()),
        refused => {
            *sts_refusal.borrow_mut() = Some(refused);
            None
        }
    };
    auth::verify(&signed, secret_of, &yyyymmdd)
        .map(|_| ())
        .map_err(|e| {
            match sts_refusal.take() {
                Some(StsCheck::Expired) => {
                    return OdpsError::new(
                        401,
                        "Unauthorized",
                        "ODPS-0410051:Invalid credentials - the STS token has expired",
                    )
                }
                Some(_) => {
                    return OdpsError::new(
                        401,
                        "Unauthorized",
                        "ODPS-0410051:Invalid credentials - invalid STS token",
                    )
                }
                None => {}
            }
            let code = match e {
                auth::AuthError::SignatureMismatch => "SignatureNotMatch",
                _ => "Unauthorized",
            };
            OdpsError::new(401, code, e.to_string())
        })
}

fn iso_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}
