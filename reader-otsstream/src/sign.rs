//! Request signing (V2, optionally V4) and response-signature verification (spec
//! `tablestore.md` §1.3–§1.5).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

type HmacSha1 = Hmac<sha1::Sha1>;
type HmacSha256 = Hmac<sha2::Sha256>;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Which request signature to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureVersion {
    V2,
    /// V4 with this region (e.g. `cn-hangzhou`).
    V4 {
        region: String,
    },
}

/// Signs requests and checks responses with one access key.
#[derive(Clone)]
pub struct Signer {
    pub access_key_id: String,
    secret: String,
    pub security_token: Option<String>,
    pub instance_name: String,
    pub version: SignatureVersion,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key_id", &self.access_key_id)
            .field("secret", &"<hidden>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<hidden>"),
            )
            .field("instance_name", &self.instance_name)
            .field("version", &self.version)
            .finish()
    }
}

fn hmac_sha1(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha1::new_from_slice(key).unwrap_or_else(|_| unreachable_hmac());
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable_hmac());
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// HMAC accepts keys of every length; this is never reached.
fn unreachable_hmac<T>() -> T {
    panic!("HMAC rejected a key")
}

/// base64 of the MD5 of `body` (the `x-ots-contentmd5` value).
pub fn content_md5(body: &[u8]) -> String {
    B64.encode(Md5::digest(body))
}

/// The V2 string to sign: `/Action`, method, empty query, then every `x-ots-*` header
/// (lower-case names, trimmed values, sorted by name) except the signatures.
pub fn request_string_to_sign(action: &str, headers: &[(String, String)]) -> String {
    let mut signed: Vec<(String, &str)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim()))
        .filter(|(n, _)| {
            n.starts_with("x-ots-") && n != "x-ots-signature" && n != "x-ots-signaturev4"
        })
        .collect();
    signed.sort();
    let mut s = format!("/{action}\nPOST\n\n");
    for (n, v) in signed {
        s.push_str(&n);
        s.push(':');
        s.push_str(v);
        s.push('\n');
    }
    s
}

/// The V4 signing key: the base64 text of the HMAC-SHA256 chain (spec §1.4).
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

impl Signer {
    pub fn new(
        access_key_id: &str,
        secret: &str,
        security_token: Option<String>,
        instance_name: &str,
        version: SignatureVersion,
    ) -> Self {
        Self {
            access_key_id: access_key_id.to_owned(),
            secret: secret.to_owned(),
            security_token,
            instance_name: instance_name.to_owned(),
            version,
        }
    }

    /// Every header of a request for `action` with `body`, at UTC `now`.
    pub fn request_headers(
        &self,
        action: &str,
        body: &[u8],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<(String, String)> {
        let mut headers = vec![
            (
                "x-ots-date".to_owned(),
                now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            ),
            ("x-ots-apiversion".to_owned(), "2015-12-31".to_owned()),
            ("x-ots-accesskeyid".to_owned(), self.access_key_id.clone()),
            ("x-ots-contentmd5".to_owned(), content_md5(body)),
            ("x-ots-instancename".to_owned(), self.instance_name.clone()),
        ];
        if let Some(token) = &self.security_token {
            headers.push(("x-ots-ststoken".to_owned(), token.clone()));
        }
        match &self.version {
            SignatureVersion::V2 => {
                let s = request_string_to_sign(action, &headers);
                let sig = B64.encode(hmac_sha1(self.secret.as_bytes(), s.as_bytes()));
                headers.push(("x-ots-signature".to_owned(), sig));
            }
            SignatureVersion::V4 { region } => {
                let date = now.format("%Y%m%d").to_string();
                headers.push(("x-ots-signdate".to_owned(), date.clone()));
                headers.push(("x-ots-signregion".to_owned(), region.clone()));
                let key = v4_signing_key(&self.secret, &date, region);
                let mut s = request_string_to_sign(action, &headers);
                s.push_str("ots");
                let sig = B64.encode(hmac_sha256(key.as_bytes(), s.as_bytes()));
                headers.push(("x-ots-signaturev4".to_owned(), sig));
            }
        }
        headers
    }

    /// The key response signatures are made with (V4: the derived key text).
    fn response_key(&self, headers: &[(String, String)]) -> Vec<u8> {
        match &self.version {
            SignatureVersion::V2 => self.secret.as_bytes().to_vec(),
            SignatureVersion::V4 { region } => {
                let date = headers
                    .iter()
                    .find(|(n, _)| n == "x-ots-signdate")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                v4_signing_key(&self.secret, &date, region).into_bytes()
            }
        }
    }

    /// Checks a response's `authorization` header (`OTS <id>:<signature>`). `request`
    /// is what was sent (V4 needs its sign date).
    pub fn verify_response(
        &self,
        action: &str,
        request: &[(String, String)],
        response_headers: &[(String, String)],
    ) -> Result<(), String> {
        let auth = response_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.as_str())
            .ok_or("the response has no authorization header")?;
        let rest = auth
            .strip_prefix("OTS ")
            .ok_or("the response authorization header does not start with \"OTS \"")?;
        let (id, sig) = rest
            .split_once(':')
            .ok_or("the response authorization header has no signature")?;
        if id != self.access_key_id {
            return Err(format!(
                "the response is signed for access key {id:?}, not ours"
            ));
        }
        let s = response_string_to_sign(action, response_headers);
        let expected = B64.encode(hmac_sha1(&self.response_key(request), s.as_bytes()));
        if expected != sig {
            return Err("the response signature does not match (wrong accessKey, or a proxy changed the response)".into());
        }
        Ok(())
    }
}

/// The response string to sign: sorted `x-ots-*` headers, then `/Action`.
pub fn response_string_to_sign(action: &str, headers: &[(String, String)]) -> String {
    let mut signed: Vec<(String, &str)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim()))
        .filter(|(n, _)| n.starts_with("x-ots-"))
        .collect();
    signed.sort();
    let mut s = String::new();
    for (n, v) in signed {
        s.push_str(&n);
        s.push(':');
        s.push_str(v);
        s.push('\n');
    }
    s.push('/');
    s.push_str(action);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors() -> Vec<serde_json::Value> {
        let d: serde_json::Value =
            serde_json::from_str(include_str!("../testdata/signature.json")).unwrap();
        d["vectors"].as_array().unwrap().clone()
    }

    fn headers(v: &serde_json::Value) -> Vec<(String, String)> {
        v["headers_signed"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn request_signatures_match_the_sdk() {
        let now = chrono::DateTime::parse_from_rfc3339("2024-01-15T08:30:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        for v in vectors().iter().filter(|v| v["kind"] == "request") {
            let name = v["name"].as_str().unwrap();
            let body = hex::decode(v["body_hex"].as_str().unwrap()).unwrap();
            assert_eq!(content_md5(&body), v["body_md5_base64"].as_str().unwrap());
            let action = v["path"].as_str().unwrap().trim_start_matches('/');
            let version = match v["v4_region"].as_str() {
                Some(r) => SignatureVersion::V4 { region: r.into() },
                None => SignatureVersion::V2,
            };
            let signer = Signer::new(
                v["access_key_id"].as_str().unwrap(),
                v["access_key_secret"].as_str().unwrap(),
                v["security_token"].as_str().map(str::to_owned),
                v["instance_name"].as_str().unwrap(),
                version,
            );
            let sent = signer.request_headers(action, &body, now);
            let sig_name = v["signature_header"].as_str().unwrap();
            let sig = sent.iter().find(|(n, _)| n == sig_name).unwrap();
            assert_eq!(sig.1, v["expected_signature"].as_str().unwrap(), "{name}");
            let mut expected = headers(v);
            expected.sort();
            let mut ours: Vec<_> = sent.into_iter().filter(|(n, _)| n != sig_name).collect();
            ours.sort();
            assert_eq!(ours, expected, "{name}");
            if let Some(key) = v["v4_signing_key_base64"].as_str() {
                assert_eq!(
                    v4_signing_key(
                        "testAccessKeySecret",
                        v["v4_sign_date"].as_str().unwrap(),
                        v["v4_region"].as_str().unwrap()
                    ),
                    key
                );
            }
        }
    }

    #[test]
    fn response_signatures_are_verified() {
        for v in vectors().iter().filter(|v| v["kind"] == "response") {
            let action = v["path"].as_str().unwrap().trim_start_matches('/');
            let signer = Signer::new(
                "testAccessKeyId",
                "testAccessKeySecret",
                None,
                "i",
                SignatureVersion::V2,
            );
            let mut h = headers(v);
            h.push((
                "authorization".into(),
                v["expected_authorization"].as_str().unwrap().into(),
            ));
            signer.verify_response(action, &[], &h).unwrap();
            let wrong = Signer::new("testAccessKeyId", "other", None, "i", SignatureVersion::V2);
            assert!(wrong.verify_response(action, &[], &h).is_err());
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let s = Signer::new(
            "id",
            "very-secret",
            Some("tok".into()),
            "i",
            SignatureVersion::V2,
        );
        let text = format!("{s:?}");
        assert!(!text.contains("very-secret") && !text.contains("tok\""));
    }
}
