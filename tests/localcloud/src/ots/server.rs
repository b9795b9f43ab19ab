//! HTTP front: `POST /<Action>`, header and signature checks, fault injection, dispatch,
//! and signed responses (spec §1).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::{self, Expect, Headers, Signer};
use super::error::{OtsError, OtsResult};
use super::faults::{self, Injected};
use super::state::Instance;
use super::writes::{Now, WriteKind};
use super::{persist, reads, stream_ops, tables, writes};
use crate::common::{Clock, Credentials, FaultPlan, StsCheck, StsRegistry};

/// Largest request body the service takes.
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// Everything one Tablestore instance needs to answer requests.
pub struct Service {
    pub instance: String,
    pub clock: Clock,
    pub faults: FaultPlan,
    credentials: Vec<Credentials>,
    /// Credentials issued by the emulated STS / metadata service.
    pub sts: StsRegistry,
    db: Mutex<Instance>,
    request_counter: AtomicU64,
    /// Where the instance is saved after every change (`None`: memory only).
    data_dir: Option<PathBuf>,
}

pub type Shared = Arc<Service>;

impl Service {
    pub fn new(
        instance: String,
        clock: Clock,
        faults: FaultPlan,
        credentials: Vec<Credentials>,
        data_dir: Option<PathBuf>,
        db: Instance,
    ) -> Self {
        Self {
            instance,
            clock,
            faults,
            credentials,
            sts: StsRegistry::new(),
            db: Mutex::new(db),
            request_counter: AtomicU64::new(0),
            data_dir,
        }
    }

    /// Accepts the temporary credentials of `sts` (a registry shared with the other
    /// services of one `localcloud serve`).
    pub fn with_sts(mut self, sts: StsRegistry) -> Self {
        self.sts = sts;
        self
    }

    /// Saves the instance when a data directory is configured.
    pub fn persist(&self, db: &Instance) {
        if let Some(dir) = &self.data_dir {
            if let Err(error) = persist::save(dir, db) {
                tracing::warn!(%error, "saving tablestore state failed");
            }
        }
    }

    /// The instance's tables. A panic while the lock was held cannot leave a table half
    /// written in a way later requests trip over, so poisoning is ignored.
    pub fn db(&self) -> MutexGuard<'_, Instance> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn now(&self) -> Now {
        Now {
            ms: self.clock.now_ms(),
            us: self.clock.now_us(),
        }
    }

    fn request_id(&self) -> String {
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed);
        let r: u64 = rand::random();
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (wall_ms() / 1000) as u32,
            (n >> 16) as u16,
            n as u16,
            (r >> 48) as u16,
            r & 0xffff_ffff_ffff
        )
    }

    fn dispatch(&self, action: &str, body: &[u8]) -> OtsResult<Vec<u8>> {
        let now = self.now();
        let mut db = self.db();
        stream_ops::trim_all(&mut db, now.us);
        let result = run(&mut db, action, body, now);
        let mutating = [
            "CreateTable",
            "UpdateTable",
            "DeleteTable",
            "PutRow",
            "UpdateRow",
            "DeleteRow",
            "BatchWriteRow",
        ];
        if result.is_ok() && mutating.contains(&action) {
            self.persist(&db);
        }
        result
    }
}

/// Runs one action against the instance.
pub(super) fn run(db: &mut Instance, action: &str, body: &[u8], now: Now) -> OtsResult<Vec<u8>> {
    match action {
        "CreateTable" => tables::create(db, body, now),
        "ListTable" => tables::list(db),
        "DescribeTable" => tables::describe(db, body),
        "UpdateTable" => tables::update(db, body, now),
        "DeleteTable" => tables::delete(db, body),
        "PutRow" => writes::single(db, WriteKind::Put, body, now),
        "UpdateRow" => writes::single(db, WriteKind::Update, body, now),
        "DeleteRow" => writes::single(db, WriteKind::Delete, body, now),
        "BatchWriteRow" => writes::batch(db, body, now),
        "GetRow" => reads::get_row(db, body, now.ms),
        "BatchGetRow" => reads::batch_get_row(db, body, now.ms),
        "GetRange" => reads::get_range(db, body, now.ms),
        "ListStream" => stream_ops::list(db, body),
        "DescribeStream" => stream_ops::describe(db, body),
        "GetShardIterator" => stream_ops::shard_iterator(db, body),
        "GetStreamRecord" => stream_ops::records(db, body),
        other => Err(OtsError::invalid(format!(
            "Unsupported operation: '{other}'."
        ))),
    }
}

fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `x-ots-date` of a response: wall time with microseconds (the Python SDK requires a
/// fraction and compares it with its own clock, so the moved emulator clock is not used).
fn response_date() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn lowercase_headers(headers: &HeaderMap) -> Headers {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Builds a signed response (signed when the caller's key is known).
pub fn respond(
    service: &Service,
    action: &str,
    signer: Option<&Signer>,
    status: u16,
    body: Vec<u8>,
) -> Response {
    let mut ots: Vec<(String, String)> = vec![
        ("x-ots-contentmd5".into(), auth::content_md5(&body)),
        ("x-ots-contenttype".into(), "protocol buffer".into()),
        ("x-ots-date".into(), response_date()),
        ("x-ots-requestid".into(), service.request_id()),
    ];
    if let Some(signer) = signer {
        let authorization = signer.authorization(action, &ots);
        ots.push(("authorization".into(), authorization));
    }
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
        .into_response();
    let headers = response.headers_mut();
    for (name, value) in ots {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.insert(n, v);
        }
    }
    response
}

fn respond_error(
    service: &Service,
    action: &str,
    signer: Option<&Signer>,
    err: &OtsError,
) -> Response {
    tracing::debug!(action, code = %err.code, message = %err.message, "ots request failed");
    respond(service, action, signer, err.status, err.body())
}

/// Inflates a body sent with `x-ots-request-compress-type: deflate` (zlib); the
/// declared `x-ots-request-compress-size` must match (spec §1.1).
fn inflate_request(headers: &Headers, body: &[u8]) -> OtsResult<Vec<u8>> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    match get("x-ots-request-compress-type") {
        None => Ok(body.to_vec()),
        Some(kind) if kind.eq_ignore_ascii_case("deflate") => {
            use std::io::Read;
            let mut raw = Vec::new();
            flate2::read::ZlibDecoder::new(body)
                .take(MAX_BODY_BYTES as u64 * 4)
                .read_to_end(&mut raw)
                .map_err(|_| OtsError::invalid("Failed to decompress the request body."))?;
            let declared = get("x-ots-request-compress-size").and_then(|v| v.parse::<usize>().ok());
            if declared != Some(raw.len()) {
                return Err(OtsError::invalid(
                    "x-ots-request-compress-size does not match the decompressed body.",
                ));
            }
            Ok(raw)
        }
        Some(other) => Err(OtsError::invalid(format!(
            "Unsupported compress type: '{other}'."
        ))),
    }
}

/// Any path that is not an action: the service's error for an unknown operation.
pub async fn fallback(State(service): State<Shared>, uri: axum::http::Uri) -> Response {
    let action = uri.path().trim_start_matches('/').to_owned();
    let err = OtsError::invalid(format!("Unsupported operation: '{action}'."));
    respond_error(&service, &action, None, &err)
}

/// `POST /<Action>`.
pub async fn handle(
    State(service): State<Shared>,
    method: Method,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lower = lowercase_headers(&headers);
    let key_id = lower
        .iter()
        .find(|(n, _)| n == "x-ots-accesskeyid")
        .map(|(_, v)| v.clone());
    let sts_token = lower
        .iter()
        .find(|(n, _)| n == "x-ots-ststoken")
        .map(|(_, v)| v.as_str());
    // A key issued by the emulated STS: valid with its token until it expires.
    let sts_secret = match key_id.as_deref().map(|id| {
        service
            .sts
            .check(id, sts_token, crate::common::sts::wall_ms())
    }) {
        Some(StsCheck::Valid(secret)) => Some(secret),
        Some(StsCheck::Expired) => {
            let err = OtsError::auth("The security token you provided has expired.");
            return respond_error(&service, &action, None, &err);
        }
        Some(StsCheck::WrongToken) => {
            let err = OtsError::auth("The security token you provided is invalid.");
            return respond_error(&service, &action, None, &err);
        }
        Some(StsCheck::MissingToken) => {
            let err = OtsError::auth("The AccessKeyID does not exist.");
            return respond_error(&service, &action, None, &err);
        }
        Some(StsCheck::NotIssued) | None => None,
    };
    // Errors before the signature is verified are signed when the key is known.
    let fallback_signer = key_id.as_deref().and_then(|id| {
        let secret = sts_secret.clone().or_else(|| {
            service
                .credentials
                .iter()
                .find(|c| c.access_key_id == id)
                .map(|c| c.access_key_secret.clone())
        })?;
        Some(Signer::for_request(&lower, id, &secret))
    });
    if method != Method::POST {
        let err = OtsError::new(
            405,
            "OTSMethodNotAllowed",
            "Only POST method for requests is supported.",
        );
        return respond_error(&service, &action, fallback_signer.as_ref(), &err);
    }
    if body.len() > 4 * 1024 * 1024 {
        let err = OtsError::new(
            413,
            "OTSRequestBodyTooLarge",
            "The size of POST data is too large.",
        );
        return respond_error(&service, &action, fallback_signer.as_ref(), &err);
    }
    let verified = {
        let credentials = &service.credentials;
        let secret_of = |id: &str| {
            if key_id.as_deref() == Some(id) && sts_secret.is_some() {
                return sts_secret.clone();
            }
            credentials
                .iter()
                .find(|c| c.access_key_id == id)
                .map(|c| c.access_key_secret.clone())
        };
        let expect = Expect {
            instance: &service.instance,
            now_ms: wall_ms(),
            secret_of: &secret_of,
        };
        auth::verify(&action, &lower, &body, &expect)
    };
    let signer = match verified {
        Ok(signer) => signer,
        Err(err) => return respond_error(&service, &action, fallback_signer.as_ref(), &err),
    };
    let fault = service.faults.decide(&action);
    if fault.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(fault.latency_ms)).await;
    }
    match faults::before(&fault) {
        Some(Injected::Drop) => return crate::common::server::drop_connection(),
        Some(Injected::Error(err)) => return respond_error(&service, &action, Some(&signer), &err),
        None => {}
    }
    let result = match inflate_request(&lower, &body) {
        Ok(body) => service.dispatch(&action, &body),
        Err(err) => Err(err),
    };
    fault.delay_answer().await;
    match faults::after(&fault) {
        Some(Injected::Drop) => return crate::common::server::drop_connection(),
        Some(Injected::Error(err)) => return respond_error(&service, &action, Some(&signer), &err),
        None => {}
    }
    match result {
        Ok(body) => respond(&service, &action, Some(&signer), 200, body),
        Err(err) => respond_error(&service, &action, Some(&signer), &err),
    }
}
