//! Checks of the connection parameters every service plugin takes, made when the
//! configuration is read: a malformed endpoint or a credential with a newline in it is a
//! permanent, local mistake, and must fail at once as a configuration error naming the
//! parameter instead of being retried as if the network had failed.
//!
//! Messages never show a credential's value.

use std::net::Ipv6Addr;

/// Checks `host[:port]` of an endpoint: a host name or IPv4 address of
/// `[A-Za-z0-9._-]`, or a bracketed IPv6 address, then an optional port in 1–65535.
pub fn check_authority(authority: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("the IPv6 address in {authority:?} lacks its closing ]"))?;
        v6.parse::<Ipv6Addr>()
            .map_err(|_| format!("{v6:?} is not an IPv6 address"))?;
        match after {
            "" => (v6, None),
            _ => (
                v6,
                Some(after.strip_prefix(':').ok_or_else(|| {
                    format!("{authority:?}: only :port may follow the IPv6 address")
                })?),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("it has no host".to_owned());
    }
    if !authority.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(format!(
            "the host {host:?} may hold only letters, digits, '.', '-' and '_' (an IPv6 \
             address goes in brackets: http://[::1]:8080)"
        ));
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => return Err(format!("the port {port:?} is not a number in 1-65535")),
        }
    }
    Ok(())
}

/// Checks an `http://` or `https://` endpoint whose path must be empty or `/` when
/// `path_allowed` is false. Returns nothing; the caller keeps its own normalised form.
pub fn check_http_url(url: &str, path_allowed: bool) -> Result<(), String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &url[7..]
    } else if lower.starts_with("https://") {
        &url[8..]
    } else {
        return Err("it must start with http:// or https://".to_owned());
    };
    if let Some(c) = url.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("it contains {}", describe(c)));
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.contains(['@', '?', '#']) {
        return Err("give only scheme://host[:port] (no user, query or fragment)".to_owned());
    }
    check_authority(authority)?;
    if !(path_allowed || path.is_empty() || path == "/") {
        return Err(format!(
            "it has a path ({path}): give only scheme://host[:port]"
        ));
    }
    if path.contains(['?', '#']) {
        return Err("it must not have a query or a fragment".to_owned());
    }
    Ok(())
}

/// Checks a value sent in an HTTP header or signed into one (an access id, a secret, a
/// security token, an instance name): printable ASCII only. The message says what is
/// wrong and where, never the value.
pub fn check_header_value(value: &str) -> Result<(), String> {
    match value
        .chars()
        .enumerate()
        .find(|(_, c)| !(' '..='~').contains(c))
    {
        None => Ok(()),
        Some((i, c)) => Err(format!(
            "it contains {} at character {} (only printable ASCII is allowed; the value is \
             not shown)",
            describe(c),
            i + 1
        )),
    }
}

fn describe(c: char) -> String {
    match c {
        '\n' => "a newline".to_owned(),
        '\r' => "a carriage return".to_owned(),
        '\t' => "a tab".to_owned(),
        ' ' => "a space".to_owned(),
        c if c.is_control() => format!("the control character U+{:04X}", c as u32),
        c => format!("the non-ASCII character U+{:04X}", c as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        for ok in [
            "http://127.0.0.1:8080",
            "https://inst.cn-hangzhou.ots.aliyuncs.com/",
            "http://[::1]:9000",
            "HTTP://[fe80::1]",
            "http://host_name",
        ] {
            assert!(check_http_url(ok, false).is_ok(), "{ok}");
        }
        assert!(check_http_url("http://service.odps.aliyun.com/api", true).is_ok());
        for (bad, needle) in [
            ("http://[::1", "lacks its closing ]"),
            ("http://[zz]:1", "is not an IPv6 address"),
            ("http://host:0", "not a number in 1-65535"),
            ("http://host:99999", "not a number in 1-65535"),
            ("http://host:", "not a number in 1-65535"),
            ("http://", "no host"),
            ("ftp://host", "http:// or https://"),
            ("http://ho st", "a space"),
            ("http://a\nb", "a newline"),
            ("http://u@host", "no user"),
            ("http://host/api", "it has a path"),
            ("http://hö.st", "may hold only"),
        ] {
            let err = check_http_url(bad, false).unwrap_err();
            assert!(err.contains(needle), "{bad:?}: {err}");
        }
    }

    #[test]
    fn header_values() {
        assert!(check_header_value("STS.abc+/=-_ x").is_ok());
        let err = check_header_value("a\nSECRET").unwrap_err();
        assert_eq!(
            err,
            "it contains a newline at character 2 (only printable ASCII is allowed; the value is not shown)"
        );
        assert!(check_header_value("é").unwrap_err().contains("non-ASCII"));
    }
}
