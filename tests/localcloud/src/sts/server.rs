//! Routes and checks of the STS / metadata emulator (see the module doc).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::json;

use crate::common::sts::{wall_ms, Issued};
use crate::common::{Credentials, ServiceOptions, StsCheck, StsRegistry};

/// What the emulator issues.
#[derive(Clone, Debug)]
pub struct StsOptions {
    /// The RAM role attached to the emulated instance.
    pub role_name: String,
    /// A fixed lifetime for every issued credential (tests), else STS's and the
    /// metadata service's own.
    pub ttl_ms: Option<i64>,
}

impl Default for StsOptions {
    fn default() -> Self {
        Self {
            role_name: "localcloud-ecs-role".to_owned(),
            ttl_ms: None,
        }
    }
}

const METADATA_TTL_MS: i64 = 6 * 3600 * 1000;
const MAX_SKEW_MS: i64 = 15 * 60 * 1000;
const CREDENTIALS_PATH: &str = "/latest/meta-data/ram/security-credentials/";

pub struct Sts {
    registry: StsRegistry,
    permanent: Vec<Credentials>,
    role_name: String,
    /// 0: none.
    ttl_ms: AtomicI64,
    imds_v2_required: AtomicBool,
    session_tokens: Mutex<HashSet<String>>,
    role_credential: Mutex<Option<Issued>>,
    nonces: Mutex<HashSet<String>>,
    assume_role_calls: AtomicU64,
    metadata_calls: AtomicU64,
}

impl Sts {
    pub fn new(options: &ServiceOptions, sts: StsOptions) -> Self {
        Self {
            registry: options.sts.clone(),
            permanent: options.credentials.clone(),
            role_name: sts.role_name,
            ttl_ms: AtomicI64::new(sts.ttl_ms.unwrap_or(0)),
            imds_v2_required: AtomicBool::new(false),
            session_tokens: Mutex::new(HashSet::new()),
            role_credential: Mutex::new(None),
            nonces: Mutex::new(HashSet::new()),
            assume_role_calls: AtomicU64::new(0),
            metadata_calls: AtomicU64::new(0),
        }
    }

    fn ttl_or(&self, default_ms: i64) -> i64 {
        match self.ttl_ms.load(Ordering::SeqCst) {
            0 => default_ms,
            t => t,
        }
    }
}

pub fn router(state: Arc<Sts>) -> Router {
    Router::new()
        .route("/latest/api/token", put(session_token))
        .route(CREDENTIALS_PATH, get(role_list))
        .route(
            &format!("{CREDENTIALS_PATH}{{role}}"),
            get(role_credentials),
        )
        .route("/", get(assume_role_get).post(assume_role_post))
        .route("/-/sts/stats", get(stats))
        .route("/-/sts/settings", post(settings))
        .with_state(state)
}

fn text(status: StatusCode, body: &str) -> Response {
    (status, body.to_owned()).into_response()
}

async fn session_token(State(sts): State<Arc<Sts>>, headers: HeaderMap) -> Response {
    let ttl = headers
        .get("x-aliyun-ecs-metadata-token-ttl-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u32>().ok());
    match ttl {
        Some(1..=21600) => {}
        _ => return text(StatusCode::BAD_REQUEST, "invalid ttl-seconds"),
    }
    let token = hex::encode(rand::random::<[u8; 24]>());
    sts.session_tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(token.clone());
    text(StatusCode::OK, &token)
}

/// The 401 to answer when the metadata request is not allowed.
fn session_refusal(sts: &Sts, headers: &HeaderMap) -> Option<Response> {
    sts.metadata_calls.fetch_add(1, Ordering::SeqCst);
    let token = headers
        .get("x-aliyun-ecs-metadata-token")
        .and_then(|v| v.to_str().ok());
    let reason = match token {
        Some(t)
            if sts
                .session_tokens
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(t) =>
        {
            return None
        }
        Some(_) => "invalid metadata token",
        None if sts.imds_v2_required.load(Ordering::SeqCst) => "metadata token required",
        None => return None,
    };
    Some(text(StatusCode::UNAUTHORIZED, reason))
}

async fn role_list(State(sts): State<Arc<Sts>>, headers: HeaderMap) -> Response {
    if let Some(r) = session_refusal(&sts, &headers) {
        return r;
    }
    text(StatusCode::OK, &sts.role_name)
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

async fn role_credentials(
    State(sts): State<Arc<Sts>>,
    Path(role): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = session_refusal(&sts, &headers) {
        return r;
    }
    if role != sts.role_name {
        return text(StatusCode::NOT_FOUND, "Not Found");
    }
    let ttl = sts.ttl_or(METADATA_TTL_MS);
    let now = wall_ms();
    let mut current = sts
        .role_credential
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let fresh = match current.as_ref() {
        Some(c) if (c.expires_ms - now) * 3 >= ttl * 2 => c.clone(),
        _ => {
            let c = sts.registry.issue(ttl);
            *current = Some(c.clone());
            c
        }
    };
    Json(json!({
        "AccessKeyId": fresh.access_key_id,
        "AccessKeySecret": fresh.access_key_secret,
        "Expiration": iso(fresh.expires_ms),
        "SecurityToken": fresh.security_token,
        "LastUpdated": iso(fresh.expires_ms - ttl),
        "Code": "Success"
    }))
    .into_response()
}

fn decode_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let d = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (d(k), d(v))
        })
        .collect()
}

async fn assume_role_get(State(sts): State<Arc<Sts>>, RawQuery(q): RawQuery) -> Response {
    let params = decode_form(q.as_deref().unwrap_or(""));
    assume_role(&sts, "GET", params)
}

async fn assume_role_post(
    State(sts): State<Arc<Sts>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let mut params = decode_form(q.as_deref().unwrap_or(""));
    params.extend(decode_form(&String::from_utf8_lossy(&body)));
    assume_role(&sts, "POST", params)
}

fn pop_error(status: StatusCode, code: &str, message: &str) -> Response {
    let id = hex::encode_upper(rand::random::<[u8; 16]>());
    (
        status,
        Json(json!({"RequestId": id, "HostId": "sts.aliyuncs.com", "Code": code, "Message": message})),
    )
        .into_response()
}

/// RFC 3986 encoding of the POP signature, written here independently of any client.
fn encode(text: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, KEEP).to_string()
}

/// The signature and the string to sign.
fn expected_signature(
    method: &str,
    params: &BTreeMap<String, String>,
    secret: &str,
) -> (String, String) {
    let query = params
        .iter()
        .filter(|(k, _)| k.as_str() != "Signature")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let to_sign = format!("{method}&%2F&{}", encode(&query));
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(format!("{secret}&").as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(to_sign.as_bytes());
    (
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()),
        to_sign,
    )
}

fn assume_role(sts: &Sts, method: &str, list: Vec<(String, String)>) -> Response {
    sts.assume_role_calls.fetch_add(1, Ordering::SeqCst);
    let params: BTreeMap<String, String> = list.into_iter().collect();
    let bad = |code: &str, message: &str| pop_error(StatusCode::BAD_REQUEST, code, message);
    for name in [
        "Action",
        "AccessKeyId",
        "Signature",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "Timestamp",
        "Version",
    ] {
        if params.get(name).is_none_or(|v| v.is_empty()) {
            return bad(
                &format!("Missing{name}"),
                &format!("{name} is mandatory for this action."),
            );
        }
    }
    if params["Action"] != "AssumeRole" || params["Version"] != "2015-04-01" {
        return pop_error(
            StatusCode::NOT_FOUND,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        );
    }
    if params["SignatureMethod"] != "HMAC-SHA1" || params["SignatureVersion"] != "1.0" {
        return bad(
            "InvalidParameter",
            "SignatureMethod must be HMAC-SHA1 and SignatureVersion 1.0.",
        );
    }
    let stamp = chrono::DateTime::parse_from_rfc3339(&params["Timestamp"])
        .map(|t| t.timestamp_millis())
        .ok();
    match stamp {
        None => {
            return bad(
                "InvalidTimeStamp.Format",
                "Specified time stamp is not valid.",
            )
        }
        Some(t) if (t - wall_ms()).abs() > MAX_SKEW_MS => {
            return bad(
                "InvalidTimeStamp.Expired",
                "Specified time stamp or date value is expired.",
            )
        }
        Some(_) => {}
    }
    let id = &params["AccessKeyId"];
    let secret = match sts.registry.check(
        id,
        params.get("SecurityToken").map(String::as_str),
        wall_ms(),
    ) {
        StsCheck::Valid(secret) => secret,
        StsCheck::Expired => {
            return bad(
                "InvalidSecurityToken.Expired",
                "Specified SecurityToken is expired.",
            )
        }
        StsCheck::WrongToken | StsCheck::MissingToken => {
            return bad(
                "InvalidSecurityToken.MismatchWithAccessKey",
                "Specified SecurityToken mismatch with the AccessKey.",
            )
        }
        StsCheck::NotIssued => match sts.permanent.iter().find(|c| &c.access_key_id == id) {
            Some(c) => c.access_key_secret.clone(),
            None => {
                return pop_error(
                    StatusCode::NOT_FOUND,
                    "InvalidAccessKeyId.NotFound",
                    "Specified access key is not found.",
                )
            }
        },
    };
    let (expected, string_to_sign) = expected_signature(method, &params, &secret);
    if expected.as_bytes() != params["Signature"].as_bytes() {
        // The real text: aliyun-python-sdk-core compares what follows the colon with
        // its own string to sign to tell a wrong secret from a signing bug.
        return bad(
            "SignatureDoesNotMatch",
            &format!(
                "Specified signature is not matched with our calculation. server string to \
                 sign is:{string_to_sign}"
            ),
        );
    }
    if !sts
        .nonces
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(params["SignatureNonce"].clone())
    {
        return bad(
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        );
    }
    let Some(role_arn) = params.get("RoleArn").filter(|v| !v.is_empty()) else {
        return bad("MissingRoleArn", "RoleArn is mandatory for this action.");
    };
    let Some(session) = params.get("RoleSessionName").filter(|v| !v.is_empty()) else {
        return bad(
            "MissingRoleSessionName",
            "RoleSessionName is mandatory for this action.",
        );
    };
    let role = role_arn
        .strip_prefix("acs:ram::")
        .and_then(|r| r.split_once(":role/"))
        .filter(|(account, name)| {
            !account.is_empty() && account.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty()
        });
    let Some((account, role_name)) = role else {
        return bad(
            "InvalidParameter.RoleArn",
            "The parameter RoleArn is wrongly formed.",
        );
    };
    let duration = match params.get("DurationSeconds").map(|d| d.parse::<i64>()) {
        None => 3600,
        Some(Ok(d)) if (900..=3600).contains(&d) => d,
        Some(_) => {
            return bad(
                "InvalidParameter.DurationSeconds",
                "The Min/Max value of DurationSeconds is 15min/1hr.",
            )
        }
    };
    let issued = sts.registry.issue(sts.ttl_or(duration * 1000));
    Json(json!({
        "RequestId": hex::encode_upper(rand::random::<[u8; 16]>()),
        "AssumedRoleUser": {
            "Arn": format!("acs:ram::{account}:role/{}/{session}", role_name.to_ascii_lowercase()),
            "AssumedRoleId": format!("3{}:{session}", &hex::encode(rand::random::<[u8; 8]>())[..15]),
        },
        "Credentials": {
            "AccessKeyId": issued.access_key_id,
            "AccessKeySecret": issued.access_key_secret,
            "SecurityToken": issued.security_token,
            "Expiration": iso(issued.expires_ms),
        }
    }))
    .into_response()
}

async fn stats(State(sts): State<Arc<Sts>>) -> Response {
    Json(json!({
        "issued": sts.registry.issued_count(),
        "assume_role_calls": sts.assume_role_calls.load(Ordering::SeqCst),
        "metadata_calls": sts.metadata_calls.load(Ordering::SeqCst),
        "role_name": sts.role_name,
    }))
    .into_response()
}

async fn settings(State(sts): State<Arc<Sts>>, body: Bytes) -> Response {
    let v: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return text(StatusCode::BAD_REQUEST, &format!("settings: {e}")),
    };
    if let Some(ttl) = v.get("ttl_ms") {
        sts.ttl_ms
            .store(ttl.as_i64().unwrap_or(0).max(0), Ordering::SeqCst);
        *sts.role_credential
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }
    if let Some(b) = v.get("imds_v2_required").and_then(|b| b.as_bool()) {
        sts.imds_v2_required.store(b, Ordering::SeqCst);
    }
    stats(State(sts)).await
}
