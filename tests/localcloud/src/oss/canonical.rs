//! How OSS canonicalizes a request for signing: the V1 string to sign (§2.1 of the
//! spec) and the V4 canonical request and signing key (§2.2). [`super::auth`] uses
//! these to verify; they are public so the signature vectors can be checked piece by
//! piece.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use super::addressing::{encode_component, encode_path, Target};

/// Query parameters that are V1 sub-resources: the union of the oss2 2.19.1 and
/// alibabacloud-oss-v2 1.4.1 whitelists (`ProviderAuth._subresource_key_set`,
/// `SignerV1._subresource_key_set`). Everything else in the query is not signed in V1.
const SUBRESOURCES: &[&str] = &[
    "accessPoint",
    "accessPointPolicy",
    "acl",
    "append",
    "asyncFetch",
    "bucketArchiveDirectRead",
    "bucketInfo",
    "callback",
    "callback-var",
    "cloudboxes",
    "cname",
    "comp",
    "continuation-token",
    "cors",
    "delete",
    "encryption",
    "endTime",
    "group",
    "httpsConfig",
    "inventory",
    "inventoryId",
    "lifecycle",
    "link",
    "live",
    "location",
    "logging",
    "metaQuery",
    "objectInfo",
    "objectMeta",
    "partNumber",
    "policy",
    "position",
    "publicAccessBlock",
    "qos",
    "qosInfo",
    "qosRequester",
    "redundancyTransition",
    "referer",
    "regionList",
    "replication",
    "replicationLocation",
    "replicationProgress",
    "requestPayment",
    "requesterQosInfo",
    "resourceGroup",
    "resourcePool",
    "resourcePoolBuckets",
    "resourcePoolInfo",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "security-token",
    "sequential",
    "startTime",
    "stat",
    "status",
    "style",
    "styleName",
    "symlink",
    "tagging",
    "transferAcceleration",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "vod",
    "website",
    "worm",
    "wormExtend",
    "wormId",
    "x-oss-ac-forward-allow",
    "x-oss-ac-source-ip",
    "x-oss-ac-subnet-mask",
    "x-oss-ac-vpc-id",
    "x-oss-access-point-name",
    "x-oss-async-process",
    "x-oss-process",
    "x-oss-redundancy-transition-taskid",
    "x-oss-request-payer",
    "x-oss-target-redundancy-type",
    "x-oss-traffic-limit",
    "x-oss-write-get-object-response",
];

/// The parts of a request that enter the signature.
#[derive(Clone, Copy, Debug)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub target: &'a Target,
    /// Decoded query parameters in wire order.
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
}

/// The V1 string to sign (spec §2.1); `date` is `x-oss-date` or `Date`.
pub fn v1_string_to_sign(request: &SignedRequest<'_>, date: &str) -> String {
    let mut out = format!(
        "{}\n{}\n{}\n{}\n",
        request.method,
        header(request.headers, "content-md5").unwrap_or_default(),
        header(request.headers, "content-type").unwrap_or_default(),
        date
    );
    for (name, value) in sorted_headers(request.headers, |name| name.starts_with("x-oss-")) {
        out.push_str(&format!("{name}:{value}\n"));
    }
    out.push_str(&v1_resource(request));
    out
}

fn v1_resource(request: &SignedRequest<'_>) -> String {
    let mut resource = match &request.target.bucket {
        None => "/".to_owned(),
        Some(bucket) => format!("/{bucket}/{}", request.target.key),
    };
    let mut params: Vec<&(String, String)> = request
        .query
        .iter()
        .filter(|(name, _)| SUBRESOURCES.contains(&name.as_str()))
        .collect();
    params.sort();
    if !params.is_empty() {
        let rendered: Vec<String> = params
            .iter()
            .map(|(n, v)| {
                if v.is_empty() {
                    n.clone()
                } else {
                    format!("{n}={v}")
                }
            })
            .collect();
        resource.push('?');
        resource.push_str(&rendered.join("&"));
    }
    resource
}

pub(super) fn is_default_signed_v4(name: &str) -> bool {
    name.starts_with("x-oss-") || name == "content-type" || name == "content-md5"
}

/// The V4 canonical request (spec §2.2).
pub fn v4_canonical_request(request: &SignedRequest<'_>, additional_headers: &[String]) -> String {
    let uri = match &request.target.bucket {
        None => "/".to_owned(),
        Some(bucket) => format!(
            "/{}/{}",
            encode_path(bucket),
            encode_path(&request.target.key)
        ),
    };
    let mut query: Vec<(String, String)> = request
        .query
        .iter()
        .map(|(n, v)| (encode_component(n), encode_component(v)))
        .collect();
    query.sort();
    let query: Vec<String> = query
        .into_iter()
        .map(|(n, v)| if v.is_empty() { n } else { format!("{n}={v}") })
        .collect();
    let mut additional: Vec<String> = additional_headers.to_vec();
    additional.sort();
    additional.dedup();
    let signed = sorted_headers(request.headers, |name| {
        is_default_signed_v4(name) || additional.iter().any(|a| a == name)
    });
    let headers: String = signed.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let payload = header(request.headers, "x-oss-content-sha256")
        .unwrap_or_else(|| "UNSIGNED-PAYLOAD".to_owned());
    format!(
        "{}\n{uri}\n{}\n{headers}\n{}\n{payload}",
        request.method,
        query.join("&"),
        additional.join(";")
    )
}

/// `HMAC256(HMAC256(HMAC256(HMAC256("aliyun_v4" + secret, date), region), product), "aliyun_v4_request")`.
pub fn v4_signing_key(secret: &str, date: &str, region: &str, product: &str) -> Vec<u8> {
    let mut key = format!("aliyun_v4{secret}").into_bytes();
    for part in [date, region, product, "aliyun_v4_request"] {
        let mut mac = hmac_sha256(&key);
        mac.update(part.as_bytes());
        key = mac.finalize().into_bytes().to_vec();
    }
    key
}

pub(super) fn hmac_sha1(key: &[u8]) -> Hmac<Sha1> {
    // HMAC accepts keys of any length, so this cannot fail.
    <Hmac<Sha1> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

pub(super) fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// A header's value as text (bytes outside UTF-8 are replaced), trimmed.
pub(super) fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
}

/// `(lowercase name, trimmed value)` of the headers `keep` selects, sorted by name.
pub(super) fn sorted_headers(
    headers: &HeaderMap,
    keep: impl Fn(&str) -> bool,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| keep(name))
        .filter_map(|name| header(headers, name).map(|v| (name.to_owned(), v)))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn request_parts(query: &[(&str, &str)]) -> (Target, Vec<(String, String)>, HeaderMap) {
        let target = Target {
            bucket: Some("b".into()),
            key: "a b/c".into(),
        };
        let query = query
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        let mut headers = HeaderMap::new();
        headers.insert("x-oss-meta-b", HeaderValue::from_static("  two "));
        headers.insert("x-oss-date", HeaderValue::from_static("20240102T030405Z"));
        headers.insert("content-type", HeaderValue::from_static("text/csv"));
        headers.insert("user-agent", HeaderValue::from_static("not signed"));
        (target, query, headers)
    }

    #[test]
    fn v1_keeps_only_sorted_sub_resources_with_raw_values() {
        let (target, query, headers) = request_parts(&[
            ("uploadId", "u/1"),
            ("max-parts", "10"),
            ("partNumber", "2"),
            ("uploads", ""),
        ]);
        let request = SignedRequest {
            method: "PUT",
            target: &target,
            query: &query,
            headers: &headers,
        };
        assert_eq!(
            v1_string_to_sign(&request, "D"),
            "PUT\n\ntext/csv\nD\nx-oss-date:20240102T030405Z\nx-oss-meta-b:two\n/b/a b/c?partNumber=2&uploadId=u/1&uploads"
        );
    }

    #[test]
    fn v4_encodes_and_sorts_every_parameter() {
        let (target, query, headers) =
            request_parts(&[("prefix", "a b+c/"), ("list-type", "2"), ("z", "")]);
        let request = SignedRequest {
            method: "GET",
            target: &target,
            query: &query,
            headers: &headers,
        };
        let canonical = v4_canonical_request(&request, &["user-agent".to_owned()]);
        assert_eq!(
            canonical,
            "GET\n/b/a%20b/c\nlist-type=2&prefix=a%20b%2Bc%2F&z\n\
             content-type:text/csv\nuser-agent:not signed\nx-oss-date:20240102T030405Z\nx-oss-meta-b:two\n\n\
             user-agent\nUNSIGNED-PAYLOAD"
        );
    }
}
