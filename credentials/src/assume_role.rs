//! STS AssumeRole: an RPC-style call (`GET /?Action=AssumeRole&…`) signed with the
//! caller's key (signature version 1.0, HMAC-SHA1). The wire details are those of the
//! official credential providers (aliyun/credentials-python
//! `provider/ram_role_arn.py`, `utils/parameter_helper.py`):
//!
//! * parameters `Action=AssumeRole`, `Format=JSON`, `Version=2015-04-01`,
//!   `DurationSeconds`, `RoleArn`, `RoleSessionName`, `SignatureMethod=HMAC-SHA1`,
//!   `SignatureVersion=1.0`, `Timestamp` (`yyyy-MM-ddTHH:mm:ssZ`, UTC),
//!   `SignatureNonce`, `AccessKeyId`, optional `Policy`, `ExternalId`, and
//!   `SecurityToken` when the caller's key is itself temporary;
//! * string to sign `GET&%2F&` + the percent-encoded, sorted `name=value&…` string;
//!   key `secret + "&"`; the base64 signature goes in `Signature`;
//! * the answer `{"Credentials": {"AccessKeyId", "AccessKeySecret", "SecurityToken",
//!   "Expiration"}}`, or `{"Code", "Message", "RequestId"}` with a 4xx/5xx status.
//!
//! The endpoint: the `stsEndpoint` parameter, else `ALIBABA_CLOUD_STS_ENDPOINT`, else
//! `sts.<ALIBABA_CLOUD_STS_REGION>.aliyuncs.com` (`sts-vpc.` with
//! `ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true`), else `sts.aliyuncs.com`; HTTPS unless the
//! endpoint names its scheme.

use std::collections::BTreeMap;

use base64::Engine as _;
use hmac::{Hmac, Mac};

use crate::{env_first, parse_expiration, Credentials, Error};

/// What to assume.
#[derive(Clone, Debug, PartialEq)]
pub struct AssumeRole {
    pub role_arn: String,
    pub role_session_name: String,
    pub duration_seconds: u64,
    pub policy: Option<String>,
    pub external_id: Option<String>,
    /// `scheme://host[:port]`.
    pub endpoint: String,
}

/// RFC 3986 percent-encoding as the POP signature wants it: every byte but
/// `A-Z a-z 0-9 - _ . ~` as `%XX`, upper-case hex.
fn pop_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `Signature` of an RPC request with `params` (without `Signature`).
pub fn rpc_signature(method: &str, params: &BTreeMap<String, String>, secret: &str) -> String {
    let canonical: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", pop_encode(k), pop_encode(v)))
        .collect();
    let string_to_sign = format!(
        "{method}&{}&{}",
        pop_encode("/"),
        pop_encode(&canonical.join("&"))
    );
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(format!("{secret}&").as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn default_endpoint() -> String {
    if let Some(e) = env_first(&["ALIBABA_CLOUD_STS_ENDPOINT"]) {
        return e;
    }
    let vpc = env_first(&["ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED"])
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let prefix = if vpc { "sts-vpc" } else { "sts" };
    match env_first(&["ALIBABA_CLOUD_STS_REGION"]) {
        Some(region) => format!("{prefix}.{region}.aliyuncs.com"),
        None => "sts.aliyuncs.com".to_owned(),
    }
}

impl AssumeRole {
    pub fn new(
        role_arn: String,
        role_session_name: Option<String>,
        duration_seconds: u64,
        policy: Option<String>,
        external_id: Option<String>,
        endpoint: Option<String>,
    ) -> Result<Self, Error> {
        let endpoint = endpoint.unwrap_or_else(default_endpoint);
        let endpoint = endpoint.trim().trim_end_matches('/');
        let endpoint = if endpoint.contains("://") {
            endpoint.to_owned()
        } else {
            format!("https://{endpoint}")
        };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(Error::Config(format!(
                "the STS endpoint {endpoint:?} must be a host or an http(s):// URL"
            )));
        }
        Ok(Self {
            role_arn,
            role_session_name: role_session_name.unwrap_or_else(|| {
                format!(
                    "streamport-{}",
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or_default()
                )
            }),
            duration_seconds,
            policy,
            external_id,
            endpoint,
        })
    }

    /// The query of a request signed with `base` at `timestamp`.
    pub fn signed_params(
        &self,
        base: &Credentials,
        timestamp: &str,
        nonce: &str,
    ) -> BTreeMap<String, String> {
        let mut p = BTreeMap::new();
        for (k, v) in [
            ("Action", "AssumeRole"),
            ("Format", "JSON"),
            ("Version", "2015-04-01"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", timestamp),
            ("SignatureNonce", nonce),
            ("RoleArn", &self.role_arn),
            ("RoleSessionName", &self.role_session_name),
            ("AccessKeyId", &base.access_key_id),
        ] {
            p.insert(k.to_owned(), v.to_owned());
        }
        p.insert(
            "DurationSeconds".to_owned(),
            self.duration_seconds.to_string(),
        );
        if let Some(v) = &self.policy {
            p.insert("Policy".to_owned(), v.clone());
        }
        if let Some(v) = &self.external_id {
            p.insert("ExternalId".to_owned(), v.clone());
        }
        if let Some(t) = &base.security_token {
            p.insert("SecurityToken".to_owned(), t.clone());
        }
        let signature = rpc_signature("GET", &p, &base.access_key_secret);
        p.insert("Signature".to_owned(), signature);
        p
    }

    /// Calls AssumeRole with `base`.
    pub(crate) async fn fetch(
        &self,
        client: &reqwest::Client,
        base: &Credentials,
    ) -> Result<Credentials, Error> {
        let timestamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let params = self.signed_params(base, &timestamp, &nonce);
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", pop_encode(k), pop_encode(v)))
            .collect();
        let url = format!("{}/?{}", self.endpoint, query.join("&"));
        let what = format!("STS AssumeRole of {} at {}", self.role_arn, self.endpoint);
        let response = client
            .get(url)
            .send()
            .await
            .map_err(|e| Error::Temporary(format!("{what}: {}", without_url(&e))))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| Error::Temporary(format!("{what}: {}", without_url(&e))))?;
        let json: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
            Error::Refused(format!("{what}: HTTP {status}, the answer is not JSON"))
        })?;
        if status != 200 {
            let code = json["Code"].as_str().unwrap_or("?");
            // STS quotes its string to sign after a signature mismatch, and that holds
            // the caller's security token: never pass it on.
            let message = json["Message"].as_str().unwrap_or("");
            let message = message
                .split_once("server string to sign")
                .map_or(message, |(before, _)| before)
                .trim();
            let e = format!("{what}: HTTP {status} {code}: {message}");
            return Err(if status >= 500 || status == 429 {
                Error::Temporary(e)
            } else {
                Error::Refused(e)
            });
        }
        parse_credentials(&json["Credentials"])
            .ok_or_else(|| Error::Refused(format!("{what}: the answer lacks Credentials")))
    }
}

/// `{"AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}`.
pub(crate) fn parse_credentials(v: &serde_json::Value) -> Option<Credentials> {
    Some(Credentials {
        access_key_id: v["AccessKeyId"].as_str()?.to_owned(),
        access_key_secret: v["AccessKeySecret"].as_str()?.to_owned(),
        security_token: Some(v["SecurityToken"].as_str()?.to_owned()),
        expiration: Some(parse_expiration(v["Expiration"].as_str()?)?),
    })
}

/// A transport error without the URL (the query holds the signature and the token).
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Alibaba Cloud RPC signature documentation ("Signature
    /// method" of the POP API reference, DescribeRegions with key `testsecret`).
    #[test]
    fn rpc_signature_documented_example() {
        let mut p = BTreeMap::new();
        for (k, v) in [
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ] {
            p.insert(k.to_owned(), v.to_owned());
        }
        assert_eq!(
            rpc_signature("GET", &p, "testsecret"),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        );
    }

    #[test]
    fn encoding() {
        assert_eq!(pop_encode("a b*~/"), "a%20b%2A~%2F");
        assert_eq!(pop_encode("é"), "%C3%A9");
    }

    #[test]
    fn signed_params_carry_the_base_token() {
        let a = AssumeRole::new(
            "acs:ram::1:role/r".into(),
            Some("s".into()),
            900,
            None,
            None,
            Some("http://127.0.0.1:1".into()),
        )
        .unwrap();
        let base = Credentials::fixed("STS.id", "secret", Some("tok"));
        let p = a.signed_params(&base, "2024-01-01T00:00:00Z", "n");
        assert_eq!(p["SecurityToken"], "tok");
        assert_eq!(p["DurationSeconds"], "900");
        assert_eq!(a.endpoint, "http://127.0.0.1:1");
        let mut unsigned = p.clone();
        let sig = unsigned.remove("Signature").unwrap();
        assert_eq!(sig, rpc_signature("GET", &unsigned, "secret"));
    }
}
