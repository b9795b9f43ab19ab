//! Request signature verification: OSS V1 (`OSS id:sig`, HMAC-SHA1) and V4
//! (`OSS4-HMAC-SHA256`), the STS security token and the clock-skew check.
//!
//! The procedure is the spec's §2.5: parse `Authorization`; look the key up (an unknown
//! id is `InvalidAccessKeyId`); check the skew (`RequestTimeTooSkewed`); rebuild the
//! string to sign from the decoded bucket, key, query and headers; compare in constant
//! time (`SignatureDoesNotMatch`, with the string to sign in the error body).

use axum::http::StatusCode;
use base64::Engine;
use hmac::Mac;
use sha2::{Digest, Sha256};

use super::canonical::{header, hmac_sha1, hmac_sha256, is_default_signed_v4};
pub use super::canonical::{
    v1_string_to_sign, v4_canonical_request, v4_signing_key, SignedRequest,
};
use super::error::{OssError, OssResult};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oss::addressing::Target;
    use axum::http::{HeaderMap, HeaderValue};

    #[test]
    fn v4_fields_in_any_order_with_any_spacing() {
        let auth = parse_v4(
            " Signature=abc ,AdditionalHeaders=Host;x-a;Content-Type,  Credential=id/20240102/cn-hangzhou/oss/aliyun_v4_request",
        )
        .unwrap();
        assert_eq!(auth.signature, "abc");
        assert_eq!(auth.scope.id, "id");
        assert_eq!(auth.scope.region, "cn-hangzhou");
        // content-type is signed anyway, so it is dropped from the list.
        assert_eq!(auth.additional_headers, ["host", "x-a"]);
        assert_eq!(
            auth.scope.scope(),
            "20240102/cn-hangzhou/oss/aliyun_v4_request"
        );
    }

    #[test]
    fn malformed_v4_authorizations_are_rejected() {
        for fields in [
            "Credential=id/20240102/cn-hangzhou/oss/aliyun_v4_request",
            "Signature=abc",
            "Credential=id/20240102/cn-hangzhou/s3/aliyun_v4_request,Signature=abc",
            "Credential=id/2024/cn-hangzhou/oss/aliyun_v4_request,Signature=abc",
            "Credential=id/20240102/cn-hangzhou/oss/aliyun_v4_request,Signature=abc,Other=1",
        ] {
            assert_eq!(
                parse_v4(fields).err().map(|e| e.code),
                Some("InvalidArgument".to_owned()),
                "{fields}"
            );
        }
    }

    #[test]
    fn request_times() {
        assert_eq!(
            parse_request_time("Tue, 02 Jan 2024 03:04:05 GMT"),
            Some(1_704_164_645_000)
        );
        assert_eq!(
            parse_request_time("20240102T030405Z"),
            Some(1_704_164_645_000)
        );
        assert_eq!(parse_request_time("yesterday"), None);
    }

    #[test]
    fn skew_window_is_inclusive() {
        let now = 1_000_000_000;
        assert!(check_skew(Some(now - 900_000), "t", now, 900_000).is_ok());
        assert!(check_skew(Some(now + 900_000), "t", now, 900_000).is_ok());
        let error = check_skew(Some(now + 900_001), "t", now, 900_000).unwrap_err();
        assert_eq!(error.code, "RequestTimeTooSkewed");
        assert_eq!(error.status, StatusCode::FORBIDDEN);
        assert_eq!(
            check_skew(None, "bad", now, 900_000).unwrap_err().code,
            "AccessDenied"
        );
    }

    struct OneKey;

    impl KeyStore for OneKey {
        fn secret_for(&self, id: &str, _: Option<&str>, _: i64) -> OssResult<String> {
            if id == "id" {
                Ok("secret".into())
            } else {
                Err(OssError::invalid_access_key_id(id))
            }
        }
    }

    fn verify_with(authorization: Option<&str>) -> OssResult<Verified> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "date",
            HeaderValue::from_static("Tue, 02 Jan 2024 03:04:05 GMT"),
        );
        if let Some(value) = authorization {
            headers.insert("authorization", HeaderValue::from_str(value).unwrap());
        }
        let target = Target {
            bucket: Some("b".into()),
            key: "k".into(),
        };
        let request = SignedRequest {
            method: "GET",
            target: &target,
            query: &[],
            headers: &headers,
        };
        verify(&request, &OneKey, 1_704_164_645_000, 900_000)
    }

    #[test]
    fn missing_unknown_and_wrong_credentials() {
        assert_eq!(verify_with(None).unwrap_err().code, "AccessDenied");
        assert_eq!(
            verify_with(Some("Bearer x")).unwrap_err().code,
            "InvalidArgument"
        );
        assert_eq!(
            verify_with(Some("OSS other:c2ln")).unwrap_err().code,
            "InvalidAccessKeyId"
        );
        let mismatch = verify_with(Some("OSS id:c2ln")).unwrap_err();
        assert_eq!(mismatch.code, "SignatureDoesNotMatch");
        let string_to_sign = mismatch
            .details
            .iter()
            .find(|(n, _)| n == "StringToSign")
            .map(|(_, v)| v.as_str());
        assert_eq!(
            string_to_sign,
            Some("GET\n\n\nTue, 02 Jan 2024 03:04:05 GMT\n/b/k")
        );
    }
}
