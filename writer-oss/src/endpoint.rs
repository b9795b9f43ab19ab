//! OSS endpoints and addressing: normalizing the configured endpoint, virtual-host or
//! path style, and the region an endpoint names (spec oss.md §1).

use std::net::{Ipv4Addr, Ipv6Addr};

/// Splits a normalized endpoint into scheme and `host[:port]`, adding `http://` when
/// there is no scheme (as DataX and the Java SDK do). A path other than `/` is refused.
pub fn normalize_endpoint(endpoint: &str) -> Result<(String, String), String> {
    let trimmed = endpoint.trim();
    let (scheme, rest) = match trimmed.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => ("http".to_owned(), trimmed),
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "endpoint {endpoint:?}: the scheme must be http or https"
        ));
    }
    let (host_port, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if !(path.is_empty() || path == "/") {
        return Err(format!(
            "endpoint {endpoint:?} has a path ({path}): give only scheme://host[:port]"
        ));
    }
    if host_port.is_empty() || host_port.contains(['?', '#', '@', ' ']) {
        return Err(format!("endpoint {endpoint:?} has no valid host"));
    }
    Ok((scheme, host_port.to_owned()))
}

/// The host of `host[:port]` (brackets kept for IPv6).
pub(crate) fn host_of(host_port: &str) -> &str {
    if host_port.starts_with('[') {
        return host_port.split_inclusive(']').next().unwrap_or(host_port);
    }
    host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
}

/// Valid OSS bucket names: 3–63 of `[a-z0-9-]`, starting and ending alphanumeric.
pub fn is_valid_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Path style for IP literals and `localhost` (the oss2 rule) and invalid bucket names.
pub fn uses_path_style(host_port: &str, bucket: &str) -> bool {
    let host = host_of(host_port);
    host.parse::<Ipv4Addr>().is_ok()
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|h| h.parse::<Ipv6Addr>().is_ok())
        || host.eq_ignore_ascii_case("localhost")
        || !is_valid_bucket_name(bucket)
}

/// The region of an `oss-<region>[-internal].aliyuncs.com` endpoint.
pub fn region_of_endpoint(host_port: &str) -> Option<String> {
    let host = host_of(host_port);
    let first = host.split('.').next()?;
    let region = first.strip_prefix("oss-")?;
    let region = region.strip_suffix("-internal").unwrap_or(region);
    (!region.is_empty() && host.contains("aliyuncs.com")).then(|| region.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_normalized_like_datax() {
        assert_eq!(
            normalize_endpoint(" oss-cn-hangzhou.aliyuncs.com ").unwrap(),
            ("http".into(), "oss-cn-hangzhou.aliyuncs.com".into())
        );
        assert_eq!(
            normalize_endpoint("https://127.0.0.1:9000/").unwrap(),
            ("https".into(), "127.0.0.1:9000".into())
        );
        assert!(normalize_endpoint("http://h/x").is_err());
        assert!(normalize_endpoint("ftp://h").is_err());
    }

    #[test]
    fn path_style_for_ips_localhost_and_invalid_buckets() {
        assert!(uses_path_style("127.0.0.1:9000", "bucket"));
        assert!(uses_path_style("[::1]:9000", "bucket"));
        assert!(uses_path_style("localhost:9000", "bucket"));
        assert!(uses_path_style(
            "oss-cn-hangzhou.aliyuncs.com",
            "Bad_Bucket"
        ));
        assert!(!uses_path_style("oss-cn-hangzhou.aliyuncs.com", "bucket"));
        assert_eq!(
            region_of_endpoint("oss-cn-hangzhou-internal.aliyuncs.com").as_deref(),
            Some("cn-hangzhou")
        );
        assert_eq!(region_of_endpoint("127.0.0.1:9000"), None);
    }
}
