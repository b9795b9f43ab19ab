//! From a request's Host, raw path and raw query to bucket, key and parameters.
//!
//! * **Path style** (loopback, IP literals, `localhost`, any host not named below):
//!   the first path segment is the bucket, everything after the next `/` is the key.
//! * **Virtual-hosted style**: a Host of the form `<bucket>.<base>[:port]` where
//!   `<base>` is `localhost` or a host whose first label starts with `oss` (a region
//!   endpoint such as `oss-cn-hangzhou.aliyuncs.com`, or `oss.test`): the bucket comes
//!   from the Host and the whole path is the key.
//!
//! The key is percent-decoded once as a path (`+` stays `+`, `%2F` becomes `/`). Query
//! names and values are form-decoded (`+` is a space), as OSS does.

use std::net::IpAddr;

use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::error::{OssError, OssResult};

/// Every byte except `A–Z a–z 0–9 - _ . ~` is encoded.
pub const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// As [`UNRESERVED`], but `/` is kept (V4 canonical URI).
const UNRESERVED_AND_SLASH: &AsciiSet = &UNRESERVED.remove(b'/');

/// What a request addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    /// `None` for service-level requests (`GET /`).
    pub bucket: Option<String>,
    /// Empty for bucket-level requests.
    pub key: String,
}

/// Resolves bucket and key from the Host header and the raw (still encoded) path.
pub fn resolve(host: Option<&str>, raw_path: &str) -> OssResult<Target> {
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    if let Some(bucket) = host.and_then(virtual_host_bucket) {
        return Ok(Target {
            bucket: Some(bucket.to_owned()),
            key: decode_path(path)?,
        });
    }
    if path.is_empty() {
        return Ok(Target::default());
    }
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    Ok(Target {
        bucket: Some(decode_path(bucket)?),
        key: decode_path(key)?,
    })
}

/// The bucket named by a virtual-hosted Host, if the Host is of that form.
pub fn virtual_host_bucket(host: &str) -> Option<&str> {
    let name = strip_port(host);
    if name.parse::<IpAddr>().is_ok() || name.starts_with('[') {
        return None;
    }
    let (bucket, base) = name.split_once('.')?;
    let base_is_endpoint = base.eq_ignore_ascii_case("localhost") || base.starts_with("oss");
    (base_is_endpoint && !bucket.is_empty()).then_some(bucket)
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
}

/// Percent-decodes a path component (`+` stays `+`).
pub fn decode_path(raw: &str) -> OssResult<String> {
    String::from_utf8(percent_decode(raw.as_bytes()).collect())
        .map_err(|_| OssError::invalid_object_name("the key is not valid UTF-8"))
}

/// Parses a raw query string into form-decoded `(name, value)` pairs, in wire order.
/// `name` and `name=` both give an empty value.
pub fn parse_query(raw: Option<&str>) -> OssResult<Vec<(String, String)>> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            Ok((form_decode(name)?, form_decode(value)?))
        })
        .collect()
}

fn form_decode(raw: &str) -> OssResult<String> {
    let plus_as_space = raw.replace('+', " ");
    String::from_utf8(percent_decode(plus_as_space.as_bytes()).collect())
        .map_err(|_| OssError::invalid_argument("a query parameter is not valid UTF-8"))
}

/// RFC 3986 encoding: every byte outside `A–Z a–z 0–9 - _ . ~`, uppercase hex.
pub fn encode_component(value: &str) -> String {
    percent_encode(value.as_bytes(), UNRESERVED).to_string()
}

/// As [`encode_component`] but keeps `/`.
pub fn encode_path(value: &str) -> String {
    percent_encode(value.as_bytes(), UNRESERVED_AND_SLASH).to_string()
}

/// A view of the decoded query parameters.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub pairs: Vec<(String, String)>,
}

impl Query {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// The value of `name` (empty if present without a value).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The value of `name`, with an empty value meaning "not set".
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(bucket: &str, key: &str) -> Target {
        Target {
            bucket: Some(bucket.into()),
            key: key.into(),
        }
    }

    #[test]
    fn path_style_on_loopback() {
        let t = resolve(Some("127.0.0.1:9000"), "/examplebucket/datax%2Fa%20b+c.csv").unwrap();
        assert_eq!(t, target("examplebucket", "datax/a b+c.csv"));
        assert_eq!(
            resolve(Some("localhost:1"), "/b1/").unwrap(),
            target("b1", "")
        );
        assert_eq!(
            resolve(Some("localhost:1"), "/b1").unwrap(),
            target("b1", "")
        );
        assert_eq!(resolve(Some("[::1]:1"), "/").unwrap(), Target::default());
    }

    #[test]
    fn virtual_hosted_when_host_names_a_bucket() {
        let t = resolve(
            Some("examplebucket.oss-cn-hangzhou.aliyuncs.com"),
            "/datax/result.csv",
        )
        .unwrap();
        assert_eq!(t, target("examplebucket", "datax/result.csv"));
        let t = resolve(Some("b2.localhost:8080"), "/").unwrap();
        assert_eq!(t, target("b2", ""));
        assert_eq!(virtual_host_bucket("oss-cn-hangzhou.aliyuncs.com"), None);
        assert_eq!(virtual_host_bucket("10.0.0.1:80"), None);
    }

    #[test]
    fn query_is_form_decoded_and_empty_values_are_present() {
        let q = Query::new(parse_query(Some("prefix=datax%2Fa+b&uploads&delete=")).unwrap());
        assert_eq!(q.get("prefix"), Some("datax/a b"));
        assert_eq!(q.get("uploads"), Some(""));
        assert_eq!(q.get("delete"), Some(""));
        assert!(q.non_empty("delete").is_none());
        assert!(!q.has("marker"));
    }

    #[test]
    fn encodings_use_uppercase_hex_and_keep_unreserved() {
        assert_eq!(encode_component("a b+/~é"), "a%20b%2B%2F~%C3%A9");
        assert_eq!(encode_path("a b/c"), "a%20b/c");
    }
}
