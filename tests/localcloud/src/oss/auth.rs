//! Request signature verification: OSS V1 (`OSS id:sig`, HMAC-SHA1) and V4
//! (`OSS4-HMAC-SHA256`), the STS security token and the clock-skew check.
//!
//! The procedure is the spec's §2.5: parse `Authorization`; look the key up (an unknown
//! id is `InvalidAccessKeyId`); check the skew (`RequestTimeTooSkewed`); rebuild the
//! string to sign from the decoded bucket, key, query and headers; compare in constant
//! time (`SignatureDoesNotMatch`, with the string to sign in the error body).

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::addressing::{encode_component, encode_path, Target};
use super::error::{OssError, OssResult};

/// Query parameters that are V1 sub-resources: the union of the oss2 2.19.1 and
/// alibabacloud-oss-v2 1.4.1 whitelists (`ProviderAuth._subresource_key_set`,
/// `SignerV1._subresource_key_set`). Everything else in the query is not signed in V1.
const SUBRESOURCES: &[&str] = &[
    "accessPoint",
    "accessPointPolicy",
    "acl",
    "append",
    "asyncFetch",
    "bucketArchiveDirectRead",
    "bucketInfo",
    "callback",
    "callback-var",
    "cloudboxes",
    "cname",
    "comp",
    "continuation-token",
    "cors",
    "delete",
    "encryption",
    "endTime",
    "group",
    "httpsConfig",
    "inventory",
    "inventoryId",
    "lifecycle",
    "link",
    "live",
    "location",
    "logging",
    "metaQuery",
    "objectInfo",
    "objectMeta",
    "partNumber",
    "policy",
    "position",
    "publicAccessBlock",
    "qos",
    "qosInfo",
    "qosRequester",
    "redundancyTransition",
    "referer",
    "regionList",
    "replication",
    "replicationLocation",
    "replicationProgress",
    "requestPayment",
    "requesterQosInfo",
    "resourceGroup",
    "resourcePool",
    "resourcePoolBuckets",
    "resourcePoolInfo",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "security-token",
    "sequential",
    "startTime",
    "stat",
    "status",
    "style",
    "styleName",
    "symlink",
    "tagging",
    "transferAcceleration",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "vod",
    "website",
    "worm",
    "wormExtend",
    "wormId",
    "x-oss-ac-forward-allow",
    "x-oss-ac-source-ip",
    "x-oss-ac-subnet-mask",
    "x-oss-ac-vpc-id",
    "x-oss-access-point-name",
    "x-oss-async-process",
    "x-oss-process",
    "x-oss-redundancy-transition-taskid",
    "x-oss-request-payer",
    "x-oss-target-redundancy-type",
    "x-oss-traffic-limit",
    "x-oss-write-get-object-response",
];

const V4_ALGORITHM: &str = "OSS4-HMAC-SHA256";

/// Where secrets come from: the configured key pairs and the registered STS tokens.
pub trait KeyStore {
    /// The secret to verify with, for `access_key_id` presented with `token` (an STS
    /// security token, if the request carried one). Errors are the OSS errors to answer.
    fn secret_for(
        &self,
        access_key_id: &str,
        token: Option<&str>,
        now_ms: i64,
    ) -> OssResult<String>;
}

/// The parts of a request that enter the signature.
#[derive(Clone, Copy, Debug)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub target: &'a Target,
    /// Decoded query parameters in wire order.
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
}

/// Which signature a verified request carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureVersion {
    V1,
    V4,
}

/// A request whose signature checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    pub version: SignatureVersion,
}

/// Verifies `request` at emulator time `now_ms`, allowing `max_skew_ms` of clock skew.
pub fn verify(
    request: &SignedRequest<'_>,
    keys: &dyn KeyStore,
    now_ms: i64,
    max_skew_ms: i64,
) -> OssResult<Verified> {
    let Some(authorization) = header(request.headers, "authorization") else {
        if let Some(verified) = super::presign::verify(request, keys, now_ms)? {
            return Ok(verified);
        }
        return Err(OssError::access_denied(
            "You have no right to access this object because of bucket acl.",
        ));
    };
    if let Some(rest) = authorization.strip_prefix("OSS ") {
        verify_v1(request, rest, keys, now_ms, max_skew_ms)
    } else if let Some(rest) = authorization.strip_prefix(V4_ALGORITHM) {
        verify_v4(request, rest.trim_start(), keys, now_ms, max_skew_ms)
    } else {
        Err(OssError::invalid_argument(
            "Authorization header is invalid: unknown signature scheme.",
        ))
    }
}

fn verify_v1(
    request: &SignedRequest<'_>,
    credential: &str,
    keys: &dyn KeyStore,
    now_ms: i64,
    max_skew_ms: i64,
) -> OssResult<Verified> {
    let (id, provided) = credential.trim().rsplit_once(':').ok_or_else(|| {
        OssError::invalid_argument(
            "Authorization header is invalid: expected OSS <id>:<signature>.",
        )
    })?;
    let secret = keys.secret_for(id, security_token(request), now_ms)?;
    let date = header(request.headers, "x-oss-date").or_else(|| header(request.headers, "date"));
    let Some(date) = date else {
        return Err(OssError::access_denied("Missing Date header."));
    };
    check_skew(parse_request_time(&date), &date, now_ms, max_skew_ms)?;
    check_v1_signature(request, id, &secret, &date, provided)?;
    Ok(Verified {
        access_key_id: id.to_owned(),
        version: SignatureVersion::V1,
    })
}

/// Rebuilds the V1 string to sign for `request` (with `date` in the date slot: the
/// `Date` header, or `Expires` for a presigned URL) and compares signatures.
pub fn check_v1_signature(
    request: &SignedRequest<'_>,
    id: &str,
    secret: &str,
    date: &str,
    provided: &str,
) -> OssResult<()> {
    let string_to_sign = v1_string_to_sign(request, date);
    let ok = base64::engine::general_purpose::STANDARD
        .decode(provided)
        .ok()
        .is_some_and(|bytes| {
            let mut mac = hmac_sha1(secret.as_bytes());
            mac.update(string_to_sign.as_bytes());
            mac.verify_slice(&bytes).is_ok()
        });
    if !ok {
        return Err(OssError::signature_does_not_match(
            id,
            &string_to_sign,
            provided,
        ));
    }
    Ok(())
}

/// The V1 string to sign (spec §2.1); `date` is `x-oss-date` or `Date`.
pub fn v1_string_to_sign(request: &SignedRequest<'_>, date: &str) -> String {
    let mut out = format!(
        "{}\n{}\n{}\n{}\n",
        request.method,
        header(request.headers, "content-md5").unwrap_or_default(),
        header(request.headers, "content-type").unwrap_or_default(),
        date
    );
    for (name, value) in sorted_headers(request.headers, |name| name.starts_with("x-oss-")) {
        out.push_str(&format!("{name}:{value}\n"));
    }
    out.push_str(&v1_resource(request));
    out
}

fn v1_resource(request: &SignedRequest<'_>) -> String {
    let mut resource = match &request.target.bucket {
        None => "/".to_owned(),
        Some(bucket) => format!("/{bucket}/{}", request.target.key),
    };
    let mut params: Vec<&(String, String)> = request
        .query
        .iter()
        .filter(|(name, _)| SUBRESOURCES.contains(&name.as_str()))
        .collect();
    params.sort();
    if !params.is_empty() {
        let rendered: Vec<String> = params
            .iter()
            .map(|(n, v)| {
                if v.is_empty() {
                    n.clone()
                } else {
                    format!("{n}={v}")
                }
            })
            .collect();
        resource.push('?');
        resource.push_str(&rendered.join("&"));
    }
    resource
}

struct V4Authorization {
    scope: V4Credential,
    additional_headers: Vec<String>,
    signature: String,
}

fn parse_v4(fields: &str) -> OssResult<V4Authorization> {
    let invalid =
        |why: &str| OssError::invalid_argument(format!("Authorization header is invalid: {why}"));
    let (mut credential, mut additional, mut signature) = (None, None, None);
    for field in fields.split(',') {
        let (name, value) = field
            .trim()
            .split_once('=')
            .ok_or_else(|| invalid("malformed field"))?;
        match name.trim() {
            "Credential" => credential = Some(value.trim()),
            "AdditionalHeaders" => additional = Some(value.trim()),
            "Signature" => signature = Some(value.trim()),
            _ => return Err(invalid("unknown field")),
        }
    }
    let credential = credential.ok_or_else(|| invalid("missing Credential"))?;
    let signature = signature.ok_or_else(|| invalid("missing Signature"))?;
    let scope = parse_credential(credential)?;
    Ok(V4Authorization {
        scope,
        additional_headers: additional.map(parse_additional_headers).unwrap_or_default(),
        signature: signature.to_owned(),
    })
}

/// A V4 credential: `<id>/<yyyymmdd>/<region>/<product>/aliyun_v4_request`.
#[derive(Clone, Debug)]
pub struct V4Credential {
    pub id: String,
    pub date: String,
    pub region: String,
    pub product: String,
}

impl V4Credential {
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aliyun_v4_request",
            self.date, self.region, self.product
        )
    }
}

pub fn parse_credential(credential: &str) -> OssResult<V4Credential> {
    let invalid = |why: &str| OssError::invalid_argument(format!("Credential is invalid: {why}"));
    let parts: Vec<&str> = credential.split('/').collect();
    let [id, date, region, product, "aliyun_v4_request"] = parts.as_slice() else {
        return Err(invalid(
            "it must be <id>/<date>/<region>/<product>/aliyun_v4_request",
        ));
    };
    if date.len() != 8 || region.is_empty() || *product != "oss" {
        return Err(invalid("bad credential scope"));
    }
    Ok(V4Credential {
        id: (*id).to_owned(),
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        product: (*product).to_owned(),
    })
}

/// The `;`-separated additional signed headers, lowercased, without the names that
/// are signed anyway.
pub fn parse_additional_headers(list: &str) -> Vec<String> {
    list.split(';')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty() && !is_default_signed_v4(h))
        .collect()
}

fn is_default_signed_v4(name: &str) -> bool {
    name.starts_with("x-oss-") || name == "content-type" || name == "content-md5"
}

fn verify_v4(
    request: &SignedRequest<'_>,
    fields: &str,
    keys: &dyn KeyStore,
    now_ms: i64,
    max_skew_ms: i64,
) -> OssResult<Verified> {
    let auth = parse_v4(fields)?;
    let secret = keys.secret_for(&auth.scope.id, security_token(request), now_ms)?;
    let Some(oss_date) = header(request.headers, "x-oss-date") else {
        return Err(OssError::access_denied(
            "Missing x-oss-date header for a V4 signature.",
        ));
    };
    check_skew(
        parse_request_time(&oss_date),
        &oss_date,
        now_ms,
        max_skew_ms,
    )?;
    check_v4_signature(
        request,
        &auth.scope,
        &secret,
        &oss_date,
        &auth.additional_headers,
        &auth.signature,
    )?;
    Ok(Verified {
        access_key_id: auth.scope.id,
        version: SignatureVersion::V4,
    })
}

/// Rebuilds the V4 string to sign for `request` and compares signatures.
pub fn check_v4_signature(
    request: &SignedRequest<'_>,
    credential: &V4Credential,
    secret: &str,
    oss_date: &str,
    additional_headers: &[String],
    provided: &str,
) -> OssResult<()> {
    let canonical_request = v4_canonical_request(request, additional_headers);
    let string_to_sign = format!(
        "{V4_ALGORITHM}\n{oss_date}\n{}\n{}",
        credential.scope(),
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let key = v4_signing_key(
        secret,
        &credential.date,
        &credential.region,
        &credential.product,
    );
    let ok = hex::decode(provided).ok().is_some_and(|bytes| {
        let mut mac = hmac_sha256(&key);
        mac.update(string_to_sign.as_bytes());
        mac.verify_slice(&bytes).is_ok()
    });
    if !ok {
        return Err(
            OssError::signature_does_not_match(&credential.id, &string_to_sign, provided)
                .detail("CanonicalRequest", canonical_request),
        );
    }
    Ok(())
}

/// The V4 canonical request (spec §2.2).
pub fn v4_canonical_request(request: &SignedRequest<'_>, additional_headers: &[String]) -> String {
    let uri = match &request.target.bucket {
        None => "/".to_owned(),
        Some(bucket) => format!(
            "/{}/{}",
            encode_path(bucket),
            encode_path(&request.target.key)
        ),
    };
    let mut query: Vec<(String, String)> = request
        .query
        .iter()
        .map(|(n, v)| (encode_component(n), encode_component(v)))
        .collect();
    query.sort();
    let query: Vec<String> = query
        .into_iter()
        .map(|(n, v)| if v.is_empty() { n } else { format!("{n}={v}") })
        .collect();
    let mut additional: Vec<String> = additional_headers.to_vec();
    additional.sort();
    additional.dedup();
    let signed = sorted_headers(request.headers, |name| {
        is_default_signed_v4(name) || additional.iter().any(|a| a == name)
    });
    let headers: String = signed.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let payload = header(request.headers, "x-oss-content-sha256")
        .unwrap_or_else(|| "UNSIGNED-PAYLOAD".to_owned());
    format!(
        "{}\n{uri}\n{}\n{headers}\n{}\n{payload}",
        request.method,
        query.join("&"),
        additional.join(";")
    )
}

/// `HMAC256(HMAC256(HMAC256(HMAC256("aliyun_v4" + secret, date), region), product), "aliyun_v4_request")`.
pub fn v4_signing_key(secret: &str, date: &str, region: &str, product: &str) -> Vec<u8> {
    let mut key = format!("aliyun_v4{secret}").into_bytes();
    for part in [date, region, product, "aliyun_v4_request"] {
        let mut mac = hmac_sha256(&key);
        mac.update(part.as_bytes());
        key = mac.finalize().into_bytes().to_vec();
    }
    key
}

fn hmac_sha1(key: &[u8]) -> Hmac<Sha1> {
    // HMAC accepts keys of any length, so this cannot fail.
    <Hmac<Sha1> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// The security token a request carries: the signed `x-oss-security-token` header,
/// the v2 SDK's unsigned `security-token` header, or the query forms.
pub fn security_token<'a>(request: &SignedRequest<'a>) -> Option<&'a str> {
    for name in ["x-oss-security-token", "security-token"] {
        if let Some(value) = request.headers.get(name).and_then(|v| v.to_str().ok()) {
            return Some(value);
        }
    }
    request
        .query
        .iter()
        .find(|(n, _)| n == "security-token" || n == "x-oss-security-token")
        .map(|(_, v)| v.as_str())
}

/// A header's value as text (bytes outside UTF-8 are replaced), trimmed.
fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
}

/// `(lowercase name, trimmed value)` of the headers `keep` selects, sorted by name.
fn sorted_headers(headers: &HeaderMap, keep: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| keep(name))
        .filter_map(|name| header(headers, name).map(|v| (name.to_owned(), v)))
        .collect();
    out.sort();
    out
}

/// Milliseconds since the epoch of an RFC 1123 `Date` or a `yyyymmddTHHMMSSZ` stamp.
pub fn parse_request_time(value: &str) -> Option<i64> {
    if let Ok(time) = httpdate::parse_http_date(value) {
        let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
        return i64::try_from(since.as_millis()).ok();
    }
    chrono::NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

fn check_skew(request_ms: Option<i64>, raw: &str, now_ms: i64, max_skew_ms: i64) -> OssResult<()> {
    let Some(request_ms) = request_ms else {
        return Err(OssError::access_denied(format!(
            "Invalid date format: {raw}"
        )));
    };
    if (request_ms - now_ms).abs() > max_skew_ms {
        return Err(OssError::new(
            StatusCode::FORBIDDEN,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        )
        .detail("RequestTime", raw)
        .detail("ServerTime", super::wire::iso8601(now_ms))
        .detail("MaxAllowedSkewMilliseconds", max_skew_ms.to_string())
        .ec("0002-00000504"));
    }
    Ok(())
}
