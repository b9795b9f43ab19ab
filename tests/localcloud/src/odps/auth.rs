//! Request signatures: the `ODPS` scheme (v2: HMAC-SHA1 with the secret) and v4
//! (HMAC-SHA1 with a key derived through an HMAC-SHA256 chain over date, region and
//! service), both over the same canonical string:
//!
//! ```text
//! METHOD \n Content-MD5 \n Content-Type \n Date \n
//! x-odps-*:value \n ...        (lower-cased names, sorted)
//! /resource?a&b=v              (relative to the endpoint path, decoded, sorted)
//! ```
//!
//! STS requests sign the same way and add an unsigned `authorization-sts-token` header.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// What a verified request was signed with.
#[derive(Debug, PartialEq, Eq)]
pub struct Signer {
    pub access_key_id: String,
}

/// Why a request's signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("the request carries no Authorization header")]
    Missing,
    #[error("the Authorization header is not of the form 'ODPS <id>:<signature>'")]
    Malformed,
    #[error("ODPS-0410051:Invalid credentials - accessKeyId not found: {0}")]
    UnknownKey(String),
    #[error("ODPS-0410042:Invalid signature value - User signature dose not match")]
    SignatureMismatch,
    #[error(
        "the v4 credential scope {0:?} is not <id>/<yyyymmdd>/<region>/odps/aliyun_v4_request"
    )]
    BadScope(String),
    #[error("the v4 credential date {scope_date} does not match the request date {request_date}")]
    ScopeDate {
        scope_date: String,
        request_date: String,
    },
}

/// The parts of a request that are signed.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// Header (name, value) pairs as received.
    pub headers: &'a [(String, String)],
    /// The path relative to the endpoint's own path (`/api` stripped), decoded.
    pub resource: &'a str,
    /// Decoded query parameters in request order; empty value = bare flag.
    pub query: &'a [(String, String)],
}

impl SignedRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The canonical string both signature versions sign.
    pub fn canonical_string(&self) -> String {
        let mut lines = vec![self.method.to_ascii_uppercase()];
        lines.push(self.header("content-md5").unwrap_or("").to_owned());
        lines.push(self.header("content-type").unwrap_or("").to_owned());
        lines.push(self.header("date").unwrap_or("").to_owned());
        let mut odps_headers: Vec<(String, &str)> = self
            .headers
            .iter()
            .filter(|(n, _)| n.to_ascii_lowercase().starts_with("x-odps-"))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.as_str()))
            .collect();
        for (name, value) in self.query {
            if name.starts_with("x-odps-") {
                odps_headers.push((name.clone(), value.as_str()));
            }
        }
        odps_headers.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, value) in odps_headers {
            lines.push(format!("{name}:{value}"));
        }
        let mut resource = self.resource.to_owned();
        if !self.query.is_empty() {
            // Later duplicates win, as in the SDKs' dict-based builders.
            let mut params: std::collections::BTreeMap<&str, &str> = Default::default();
            for (k, v) in self.query {
                params.insert(k, v);
            }
            let joined: Vec<String> = params
                .iter()
                .map(|(k, v)| {
                    if v.is_empty() {
                        (*k).to_owned()
                    } else {
                        format!("{k}={v}")
                    }
                })
                .collect();
            resource.push('?');
            resource.push_str(&joined.join("&"));
        }
        lines.push(resource);
        lines.join("\n")
    }
}

fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// The v4 signing key for `date` (yyyymmdd) and `region`.
pub fn v4_signing_key(secret: &str, date: &str, region: &str) -> Vec<u8> {
    let k_date = hmac_sha256(format!("aliyun_v4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, b"odps");
    hmac_sha256(&k_service, b"aliyun_v4_request")
}

/// Verifies the `Authorization` header of `request`. `secret_of` maps an access key
/// id to its secret. `request_date_yyyymmdd` is the UTC date of the request's `Date`
/// header, against which a v4 scope date is checked.
pub fn verify(
    request: &SignedRequest<'_>,
    secret_of: impl Fn(&str) -> Option<String>,
    request_date_yyyymmdd: &str,
) -> Result<Signer, AuthError> {
    let header = request.header("authorization").ok_or(AuthError::Missing)?;
    let credential_and_sig = header.strip_prefix("ODPS ").ok_or(AuthError::Malformed)?;
    let (credential, signature) = credential_and_sig
        .rsplit_once(':')
        .ok_or(AuthError::Malformed)?;
    let canonical = request.canonical_string();
    let (access_key_id, key) = if credential.contains('/') {
        let parts: Vec<&str> = credential.split('/').collect();
        let [id, date, region, "odps", "aliyun_v4_request"] = parts[..] else {
            return Err(AuthError::BadScope(credential.to_owned()));
        };
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) || region.is_empty() {
            return Err(AuthError::BadScope(credential.to_owned()));
        }
        if date != request_date_yyyymmdd {
            return Err(AuthError::ScopeDate {
                scope_date: date.to_owned(),
                request_date: request_date_yyyymmdd.to_owned(),
            });
        }
        let secret = secret_of(id).ok_or_else(|| AuthError::UnknownKey(id.to_owned()))?;
        (id, v4_signing_key(&secret, date, region))
    } else {
        let secret =
            secret_of(credential).ok_or_else(|| AuthError::UnknownKey(credential.to_owned()))?;
        (credential, secret.into_bytes())
    };
    let expected =
        base64::engine::general_purpose::STANDARD.encode(hmac_sha1(&key, canonical.as_bytes()));
    if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        return Err(AuthError::SignatureMismatch);
    }
    Ok(Signer {
        access_key_id: access_key_id.to_owned(),
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn canonical_string_sorts_params_and_odps_headers() {
        let h = headers(&[
            ("Date", "Mon, 01 Jan 2024 00:00:00 GMT"),
            ("X-Odps-B", "2"),
            ("x-odps-a", "1"),
            ("User-Agent", "ignored"),
        ]);
        let q = vec![
            ("uploads".to_owned(), String::new()),
            ("curr_project".to_owned(), "p".to_owned()),
        ];
        let req = SignedRequest {
            method: "post",
            headers: &h,
            resource: "/projects/p/tables/t",
            query: &q,
        };
        assert_eq!(
            req.canonical_string(),
            "POST\n\n\nMon, 01 Jan 2024 00:00:00 GMT\nx-odps-a:1\nx-odps-b:2\n/projects/p/tables/t?curr_project=p&uploads"
        );
    }

    #[test]
    fn wrong_secret_and_unknown_key_fail() {
        let mut h = headers(&[("Date", "Mon, 01 Jan 2024 00:00:00 GMT")]);
        let req = SignedRequest {
            method: "GET",
            headers: &h,
            resource: "/projects/p",
            query: &[],
        };
        let sig = base64::engine::general_purpose::STANDARD
            .encode(hmac_sha1(b"secret", req.canonical_string().as_bytes()));
        h.push(("Authorization".into(), format!("ODPS id:{sig}")));
        let req = SignedRequest {
            method: "GET",
            headers: &h,
            resource: "/projects/p",
            query: &[],
        };
        let ok = |id: &str| (id == "id").then(|| "secret".to_owned());
        let bad = |id: &str| (id == "id").then(|| "other".to_owned());
        assert!(verify(&req, ok, "20240101").is_ok());
        assert_eq!(
            verify(&req, bad, "20240101"),
            Err(AuthError::SignatureMismatch)
        );
        assert!(matches!(
            verify(&req, |_| None, "20240101"),
            Err(AuthError::UnknownKey(_))
        ));
    }
}
