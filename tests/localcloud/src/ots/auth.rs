//! Request authentication (spec §1.2–§1.4) and response signing (§1.5).
//!
//! A request must carry `x-ots-date`, `x-ots-apiversion`, `x-ots-accesskeyid`,
//! `x-ots-contentmd5`, `x-ots-instancename` and a V2 (`x-ots-signature`) or V4
//! (`x-ots-signaturev4` with `x-ots-signdate`, `x-ots-signregion`) signature computed
//! over every `x-ots-*` header it sent. The body's MD5 must match `x-ots-contentmd5`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::Sha256;

use super::error::OtsError;

/// The API version every SDK sends.
pub const API_VERSION: &str = "2015-12-31";
/// Largest accepted distance between `x-ots-date` and the emulator's wall clock.
pub const MAX_SKEW_MS: i64 = 15 * 60 * 1000;

const REQUIRED: [&str; 5] = [
    "x-ots-date",
    "x-ots-apiversion",
    "x-ots-accesskeyid",
    "x-ots-contentmd5",
    "x-ots-instancename",
];

/// Request headers, names lower-cased, in arrival order.
pub type Headers = Vec<(String, String)>;

/// Who signed a request, and the key its response must be signed with.
#[derive(Clone)]
pub struct Signer {
    pub access_key_id: String,
    /// V2: the secret's bytes; V4: the base64 text of the derived key.
    signing_key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// What a request is checked against.
pub struct Expect<'a> {
    pub instance: &'a str,
    pub now_ms: i64,
    pub secret_of: &'a dyn Fn(&str) -> Option<String>,
}

fn header<'h>(headers: &'h Headers, name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).expect(HMAC_ANY_KEY);
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect(HMAC_ANY_KEY);
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// HMAC takes keys of any length, so creating one cannot fail.
const HMAC_ANY_KEY: &str = "HMAC accepts keys of every length";

/// base64 of the body's MD5, the value of `x-ots-contentmd5`.
pub fn content_md5(body: &[u8]) -> String {
    B64.encode(Md5::digest(body))
}

/// The canonical request string of V2 (and the prefix of V4's): path, method, empty
/// query, then `name:trimmed-value\n` for every `x-ots-*` header except signatures.
pub fn request_string_to_sign(action: &str, headers: &Headers) -> String {
    let mut signed: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(n, _)| {
            n.starts_with("x-ots-") && n != "x-ots-signature" && n != "x-ots-signaturev4"
        })
        .map(|(n, v)| (n.as_str(), v.trim()))
        .collect();
    signed.sort();
    let mut s = format!("/{action}\nPOST\n\n");
    for (n, v) in signed {
        s.push_str(n);
        s.push(':');
        s.push_str(v);
        s.push('\n');
    }
    s
}

/// V2 signature: base64(HMAC-SHA1(secret, string to sign)).
pub fn sign_v2(secret: &str, string_to_sign: &str) -> String {
    B64.encode(hmac_sha1(secret.as_bytes(), string_to_sign.as_bytes()))
}

/// V4 signing key: the base64 text of the HMAC-SHA256 chain over date, region, product.
pub fn v4_signing_key(secret: &str, sign_date: &str, region: &str) -> String {
    let k1 = hmac_sha256(
        format!("aliyun_v4{secret}").as_bytes(),
        sign_date.as_bytes(),
    );
    let k2 = hmac_sha256(&k1, region.as_bytes());
    let k3 = hmac_sha256(&k2, b"ots");
    let k4 = hmac_sha256(&k3, b"aliyun_v4_request");
    B64.encode(k4)
}

/// V4 signature: base64(HMAC-SHA256(signing key text, V2 string + "ots")).
pub fn sign_v4(signing_key: &str, string_to_sign_v2: &str) -> String {
    let msg = format!("{string_to_sign_v2}ots");
    B64.encode(hmac_sha256(signing_key.as_bytes(), msg.as_bytes()))
}

/// Parses `yyyy-MM-ddTHH:mm:ss[.fraction]Z` (any number of fraction digits) into ms.
pub fn parse_ots_date(value: &str) -> Option<i64> {
    let core = value.strip_suffix('Z')?;
    let (main, frac) = match core.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (core, None),
    };
    if frac.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let dt = chrono::NaiveDateTime::parse_from_str(main, "%Y-%m-%dT%H:%M:%S").ok()?;
    Some(dt.and_utc().timestamp_millis())
}

/// Checks one request; on success returns who signed it.
pub fn verify(
    action: &str,
    headers: &Headers,
    body: &[u8],
    expect: &Expect<'_>,
) -> Result<Signer, OtsError> {
    for name in REQUIRED {
        if header(headers, name).is_none() {
            return Err(OtsError::invalid(format!("Missing header: '{name}'.")));
        }
    }
    let get = |name: &str| header(headers, name).unwrap_or_default();
    let v4 = header(headers, "x-ots-signaturev4").is_some();
    if !v4 && header(headers, "x-ots-signature").is_none() {
        return Err(OtsError::invalid("Missing header: 'x-ots-signature'."));
    }
    if get("x-ots-apiversion") != API_VERSION {
        return Err(OtsError::invalid(format!(
            "Unsupported API version: '{}'.",
            get("x-ots-apiversion")
        )));
    }
    let date = get("x-ots-date");
    let date_ms = parse_ots_date(date)
        .ok_or_else(|| OtsError::invalid(format!("Invalid date format: {date}.")))?;
    if (date_ms - expect.now_ms).abs() > MAX_SKEW_MS {
        return Err(OtsError::auth(format!(
            "Mismatch between system time and x-ots-date: {date}."
        )));
    }
    let access_key_id = get("x-ots-accesskeyid").to_owned();
    let secret = (expect.secret_of)(&access_key_id)
        .ok_or_else(|| OtsError::auth("The AccessKeyID does not exist."))?;
    if get("x-ots-instancename") != expect.instance {
        return Err(OtsError::auth("The instance is not found."));
    }
    let string_to_sign = request_string_to_sign(action, headers);
    let signer = if v4 {
        for name in ["x-ots-signdate", "x-ots-signregion"] {
            if header(headers, name).is_none() {
                return Err(OtsError::invalid(format!("Missing header: '{name}'.")));
            }
        }
        let key = v4_signing_key(&secret, get("x-ots-signdate"), get("x-ots-signregion"));
        if sign_v4(&key, &string_to_sign) != get("x-ots-signaturev4") {
            return Err(OtsError::auth("Signature mismatch."));
        }
        Signer {
            access_key_id,
            signing_key: key.into_bytes(),
        }
    } else {
        if sign_v2(&secret, &string_to_sign) != get("x-ots-signature") {
            return Err(OtsError::auth("Signature mismatch."));
        }
        Signer {
            access_key_id,
            signing_key: secret.into_bytes(),
        }
    };
    if content_md5(body) != get("x-ots-contentmd5") {
        return Err(OtsError::auth(
            "Mismatch between MD5 value of request body and x-ots-contentmd5 in header.",
        ));
    }
    Ok(signer)
}

/// The response string to sign: sorted `name:value\n` of the `x-ots-*` headers, then
/// `/Action` (spec §1.5).
pub fn response_string_to_sign(action: &str, headers: &[(String, String)]) -> String {
    let mut lines: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n.starts_with("x-ots-"))
        .map(|(n, v)| format!("{n}:{}", v.trim()))
        .collect();
    lines.sort();
    format!("{}\n/{action}", lines.join("\n"))
}

impl Signer {
    /// The `authorization` header value for a response with these `x-ots-*` headers.
    pub fn authorization(&self, action: &str, headers: &[(String, String)]) -> String {
        let string = response_string_to_sign(action, headers);
        let sig = B64.encode(hmac_sha1(&self.signing_key, string.as_bytes()));
        format!("OTS {}:{sig}", self.access_key_id)
    }

    /// The response signer for a request from a known key, before or after its
    /// signature is verified: V4 (derived key) when the request is V4-signed.
    pub fn for_request(headers: &Headers, access_key_id: &str, secret: &str) -> Self {
        let v4 = header(headers, "x-ots-signaturev4").is_some();
        match (
            v4,
            header(headers, "x-ots-signdate"),
            header(headers, "x-ots-signregion"),
        ) {
            (true, Some(date), Some(region)) => Self {
                access_key_id: access_key_id.to_owned(),
                signing_key: v4_signing_key(secret, date, region).into_bytes(),
            },
            _ => Self::v2(access_key_id, secret),
        }
    }

    /// A signer from a V2 secret (tests and the vectors).
    pub fn v2(access_key_id: &str, secret: &str) -> Self {
        Self {
            access_key_id: access_key_id.to_owned(),
            signing_key: secret.as_bytes().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_accept_any_fraction() {
        let base = parse_ots_date("2024-01-15T08:30:00Z").unwrap();
        assert_eq!(parse_ots_date("2024-01-15T08:30:00.000Z"), Some(base));
        assert_eq!(parse_ots_date("2024-01-15T08:30:00.1158Z"), Some(base));
        assert_eq!(parse_ots_date("2024-01-15T08:30:00.123456Z"), Some(base));
        assert_eq!(parse_ots_date("2024-01-15 08:30:00Z"), None);
        assert_eq!(parse_ots_date("2024-01-15T08:30:00.Z"), None);
        assert_eq!(base, 1_705_307_400_000);
    }

    fn signed_request(secret: &str) -> (Headers, Vec<u8>) {
        let body = b"\x0a\x06orders".to_vec();
        let mut headers: Headers = vec![
            ("x-ots-date".into(), "2024-01-15T08:30:00.000Z".into()),
            ("x-ots-apiversion".into(), API_VERSION.into()),
            ("x-ots-accesskeyid".into(), "id".into()),
            ("x-ots-contentmd5".into(), content_md5(&body)),
            ("x-ots-instancename".into(), "inst".into()),
        ];
        let sig = sign_v2(secret, &request_string_to_sign("ListStream", &headers));
        headers.push(("x-ots-signature".into(), sig));
        (headers, body)
    }

    fn expect(now_ms: i64) -> Expect<'static> {
        Expect {
            instance: "inst",
            now_ms,
            secret_of: &|id| (id == "id").then(|| "secret".to_owned()),
        }
    }

    #[test]
    fn verification_checks_signature_md5_skew_and_instance() {
        let now = 1_705_307_400_000;
        let (headers, body) = signed_request("secret");
        assert!(verify("ListStream", &headers, &body, &expect(now)).is_ok());
        let (bad, _) = signed_request("other");
        let err = verify("ListStream", &bad, &body, &expect(now)).unwrap_err();
        assert_eq!(
            (err.status, err.message.as_str()),
            (403, "Signature mismatch.")
        );
        let err = verify("ListStream", &headers, b"x", &expect(now)).unwrap_err();
        assert!(err.message.starts_with("Mismatch between MD5"));
        let err = verify(
            "ListStream",
            &headers,
            &body,
            &expect(now + MAX_SKEW_MS + 1),
        )
        .unwrap_err();
        assert!(err.message.starts_with("Mismatch between system time"));
        let err = verify("PutRow", &headers, &body, &expect(now)).unwrap_err();
        assert_eq!(err.message, "Signature mismatch.");
        let mut missing = headers.clone();
        missing.retain(|(n, _)| n != "x-ots-instancename");
        let err = verify("ListStream", &missing, &body, &expect(now)).unwrap_err();
        assert_eq!(
            (err.status, err.code.as_str()),
            (400, "OTSParameterInvalid")
        );
    }
}
