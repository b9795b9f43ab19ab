//! Query-string authentication: presigned URLs as `oss2` `sign_url` and the v2 SDK's
//! `presign` produce them.
//!
//! * **V1**: `OSSAccessKeyId`, `Expires` (Unix seconds), `Signature`, optional
//!   `security-token`. The string to sign is the header form's with `Expires` in the
//!   date slot (oss2 `ProviderAuth._sign_url`).
//! * **V4**: `x-oss-signature-version=OSS4-HMAC-SHA256`, `x-oss-credential`,
//!   `x-oss-date`, `x-oss-expires` (seconds), optional `x-oss-additional-headers` and
//!   `x-oss-security-token`, and `x-oss-signature`. The canonical query holds every
//!   parameter but `x-oss-signature`; the payload is `UNSIGNED-PAYLOAD`
//!   (oss2 `ProviderAuthV4._sign_url`).
//!
//! A URL used after its expiry is `AccessDenied` ("Request has expired."). There is no
//! clock-skew check: a presigned URL is meant to be used later.

use super::addressing::Query;
use super::auth::{
    check_v1_signature, check_v4_signature, parse_additional_headers, parse_credential,
    parse_request_time, security_token, KeyStore, SignatureVersion, SignedRequest, Verified,
};
use super::error::{OssError, OssResult};
use super::wire::iso8601;

/// Verifies a presigned request; `Ok(None)` if the query carries no signature.
pub fn verify(
    request: &SignedRequest<'_>,
    keys: &dyn KeyStore,
    now_ms: i64,
) -> OssResult<Option<Verified>> {
    let query = Query::new(request.query.to_vec());
    if query.has("x-oss-signature-version") || query.has("x-oss-signature") {
        return verify_v4(request, &query, keys, now_ms).map(Some);
    }
    if query.has("OSSAccessKeyId") || query.has("Signature") {
        return verify_v1(request, &query, keys, now_ms).map(Some);
    }
    Ok(None)
}

fn required<'q>(query: &'q Query, name: &str) -> OssResult<&'q str> {
    query.non_empty(name).ok_or_else(|| {
        OssError::access_denied(format!("The presigned URL lacks the {name} parameter."))
    })
}

fn expired(expires_ms: i64, now_ms: i64) -> OssError {
    OssError::access_denied("Request has expired.")
        .detail("Expires", iso8601(expires_ms))
        .detail("ServerTime", iso8601(now_ms))
}

fn verify_v1(
    request: &SignedRequest<'_>,
    query: &Query,
    keys: &dyn KeyStore,
    now_ms: i64,
) -> OssResult<Verified> {
    let id = required(query, "OSSAccessKeyId")?;
    let expires = required(query, "Expires")?;
    let signature = required(query, "Signature")?;
    let expires_ms = expires
        .parse::<i64>()
        .map_err(|_| OssError::invalid_argument("Expires must be Unix seconds."))?
        .saturating_mul(1000);
    if now_ms > expires_ms {
        return Err(expired(expires_ms, now_ms));
    }
    let secret = keys.secret_for(id, security_token(request), now_ms)?;
    check_v1_signature(request, id, &secret, expires, signature)?;
    Ok(Verified {
        access_key_id: id.to_owned(),
        version: SignatureVersion::V1,
    })
}

fn verify_v4(
    request: &SignedRequest<'_>,
    query: &Query,
    keys: &dyn KeyStore,
    now_ms: i64,
) -> OssResult<Verified> {
    if required(query, "x-oss-signature-version")? != "OSS4-HMAC-SHA256" {
        return Err(OssError::invalid_argument(
            "x-oss-signature-version must be OSS4-HMAC-SHA256.",
        ));
    }
    let credential = parse_credential(required(query, "x-oss-credential")?)?;
    let oss_date = required(query, "x-oss-date")?;
    let signed_ms = parse_request_time(oss_date)
        .ok_or_else(|| OssError::invalid_argument("x-oss-date must be yyyymmddTHHMMSSZ."))?;
    let expires_secs = required(query, "x-oss-expires")?
        .parse::<i64>()
        .map_err(|_| OssError::invalid_argument("x-oss-expires must be seconds."))?;
    let expires_ms = signed_ms.saturating_add(expires_secs.saturating_mul(1000));
    if now_ms > expires_ms {
        return Err(expired(expires_ms, now_ms));
    }
    let additional = parse_additional_headers(
        query
            .non_empty("x-oss-additional-headers")
            .unwrap_or_default(),
    );
    let signature = required(query, "x-oss-signature")?;
    let secret = keys.secret_for(&credential.id, security_token(request), now_ms)?;
    let signed_query: Vec<(String, String)> = request
        .query
        .iter()
        .filter(|(name, _)| name != "x-oss-signature")
        .cloned()
        .collect();
    let unsigned = SignedRequest {
        query: &signed_query,
        ..*request
    };
    check_v4_signature(
        &unsigned,
        &credential,
        &secret,
        oss_date,
        &additional,
        signature,
    )?;
    Ok(Verified {
        access_key_id: credential.id,
        version: SignatureVersion::V4,
    })
}
