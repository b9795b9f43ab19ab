//! Request signing: the canonical string and the `ODPS` authorization header, v2 and
//! v4 (spec `odps.md` §2).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// Which signature the client sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureVersion {
    /// `ODPS <id>:<HMAC-SHA1(secret, canonical)>` — what DataX sends.
    V2,
    /// The v4 derived key for `region`.
    V4 { region: String },
}

/// An access key (and an STS token). The secret never appears in `Debug`.
#[derive(Clone)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
    pub security_token: Option<String>,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<hidden>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

/// What the canonical string is built from. `resource_path` is the decoded path
/// relative to the endpoint's own path; `params` are decoded (name, value) pairs.
pub struct CanonicalRequest<'a> {
    pub method: &'a str,
    pub content_md5: &'a str,
    pub content_type: &'a str,
    pub date: &'a str,
    /// Every request header (only `x-odps-*` ones are signed).
    pub headers: &'a [(String, String)],
    pub resource_path: &'a str,
    pub params: &'a [(String, String)],
}

/// The canonical string of spec §2.2.
pub fn canonical_string(r: &CanonicalRequest<'_>) -> String {
    let mut out = format!(
        "{}\n{}\n{}\n{}\n",
        r.method, r.content_md5, r.content_type, r.date
    );
    let mut signed: Vec<(String, &str)> = r
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
        .filter(|(k, _)| k.starts_with("x-odps-"))
        .collect();
    // Query parameters named x-odps-* also get a line (JAVA, pyodps).
    signed.extend(
        r.params
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-odps-"))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str())),
    );
    signed.sort();
    for (k, v) in signed {
        out.push_str(&k);
        out.push(':');
        out.push_str(v);
        out.push('\n');
    }
    out.push_str(r.resource_path);
    if !r.params.is_empty() {
        let mut params: Vec<&(String, String)> = r.params.iter().collect();
        params.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        out.push('?');
        for (i, (k, v)) in params.into_iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(k);
            if !v.is_empty() {
                out.push('=');
                out.push_str(v);
            }
        }
    }
    out
}

fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length: new_from_slice cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// The `Authorization` header value. `utc_date` is `yyyyMMdd` (v4 only).
pub fn authorization(
    key: &AccessKey,
    version: &SignatureVersion,
    canonical: &str,
    utc_date: &str,
) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    match version {
        SignatureVersion::V2 => {
            let sig = hmac_sha1(key.secret.as_bytes(), canonical.as_bytes());
            format!("ODPS {}:{}", key.id, b64.encode(sig))
        }
        SignatureVersion::V4 { region } => {
            let k_secret = format!("aliyun_v4{}", key.secret);
            let k_date = hmac_sha256(k_secret.as_bytes(), utc_date.as_bytes());
            let k_region = hmac_sha256(&k_date, region.as_bytes());
            let k_service = hmac_sha256(&k_region, b"odps");
            let k_sign = hmac_sha256(&k_service, b"aliyun_v4_request");
            let sig = hmac_sha1(&k_sign, canonical.as_bytes());
            format!(
                "ODPS {}/{utc_date}/{region}/odps/aliyun_v4_request:{}",
                key.id,
                b64.encode(sig)
            )
        }
    }
}

/// The region in a host such as `service.cn-hangzhou.maxcompute.aliyun.com`.
pub fn region_of_host(host: &str) -> Option<String> {
    let rest = host.strip_prefix("service.")?;
    let (region, tail) = rest.split_once('.')?;
    (tail.starts_with("maxcompute.aliyun") && !region.is_empty()).then(|| region.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_from_hosts() {
        assert_eq!(
            region_of_host("service.cn-hangzhou.maxcompute.aliyun.com").as_deref(),
            Some("cn-hangzhou")
        );
        assert_eq!(
            region_of_host("service.cn-shanghai.maxcompute.aliyun-inc.com").as_deref(),
            Some("cn-shanghai")
        );
        assert_eq!(region_of_host("127.0.0.1"), None);
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let key = AccessKey {
            id: "id".into(),
            secret: "s3cr3t".into(),
            security_token: Some("t0ken".into()),
        };
        let shown = format!("{key:?}");
        assert!(!shown.contains("s3cr3t") && !shown.contains("t0ken"));
    }
}
