//! The OSS client: addressing, signing, retries and the operations the writer needs
//! (spec oss.md §1–§6).

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use md5::{Digest, Md5};
use protocol::runtime::retry::Backoff;
use reqwest::Method;

use crate::crc64;
use crate::endpoint::host_of;
pub use crate::endpoint::{
    is_valid_bucket_name, normalize_endpoint, region_of_endpoint, uses_path_style,
};
use crate::error::OssError;
use crate::sign::{self, SignInput};
use crate::xml;

mod multipart;

/// Which signature the client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignVersion {
    V1,
    V4,
}

/// Everything needed to build a client.
#[derive(Clone)]
pub struct ClientOptions {
    /// `scheme://host[:port]`, already normalized.
    pub endpoint: String,
    /// Where the keys come from; asked before every request.
    pub credentials: credentials::Provider,
    pub bucket: String,
    pub sign_version: SignVersion,
    /// The region for V4 scopes (`cn-hangzhou`).
    pub region: String,
    /// Force path-style (true) or virtual-hosted (false) addressing; `None`: decide.
    pub path_style: Option<bool>,
    pub request_timeout: Duration,
    pub max_retries: u32,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .field("bucket", &self.bucket)
            .field("sign_version", &self.sign_version)
            .field("region", &self.region)
            .finish()
    }
}

/// An answer from OSS.
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn crc64(&self) -> Option<u64> {
        self.header("x-oss-hash-crc64ecma")?.parse().ok()
    }
}

/// One request before signing.
pub struct Request<'a> {
    pub operation: &'static str,
    pub method: Method,
    /// Empty for bucket-level requests.
    pub key: &'a str,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// An object's metadata from HEAD.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectMeta {
    pub size: u64,
    pub crc64: Option<u64>,
    pub object_type: String,
    /// The job window that wrote it ([`WINDOW_META`]), if it carries one.
    pub window: Option<String>,
}

/// User metadata naming the job window (24 hex, see `naming::job_hex`) that wrote a
/// `writeSingleObject` object, so `nonConflict` recognises the window's own object.
pub const WINDOW_META: &str = "x-oss-meta-streamport-window";

/// One uploaded part.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UploadedPart {
    pub number: u32,
    pub etag: String,
    pub size: u64,
    pub crc64: u64,
}

/// An OSS client bound to one bucket.
pub struct OssClient {
    http: reqwest::Client,
    options: ClientOptions,
    scheme: String,
    host_port: String,
    path_style: bool,
}

fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn content_md5(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(body))
}

impl OssClient {
    pub fn new(options: ClientOptions) -> Result<Self, String> {
        let (scheme, host_port) = normalize_endpoint(&options.endpoint)?;
        if host_of(&host_port).starts_with(&format!("{}.", options.bucket)) {
            tracing::warn!(
                "endpoint {host_port} starts with the bucket name: give the region endpoint \
                 (oss-<region>.aliyuncs.com), or signatures will not match"
            );
        }
        let path_style = options
            .path_style
            .unwrap_or_else(|| uses_path_style(&host_port, &options.bucket));
        let http = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            http,
            options,
            scheme,
            host_port,
            path_style,
        })
    }

    pub fn bucket(&self) -> &str {
        &self.options.bucket
    }

    fn target(&self, key: &str) -> String {
        format!("{}/{key}", self.options.bucket)
    }

    fn url(&self, key: &str, query: &[(String, String)]) -> String {
        let path = sign::percent_encode(key, false);
        let mut url = if self.path_style {
            format!(
                "{}://{}/{}/{path}",
                self.scheme, self.host_port, self.options.bucket
            )
        } else {
            format!(
                "{}://{}.{}/{path}",
                self.scheme, self.options.bucket, self.host_port
            )
        };
        for (i, (n, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&sign::percent_encode(n, false));
            if !v.is_empty() {
                url.push('=');
                url.push_str(&sign::percent_encode(v, false));
            }
        }
        url
    }

    /// Signs and sends once.
    async fn send_once(&self, req: &Request<'_>) -> Result<Response, OssError> {
        let mut headers = req.headers.clone();
        let keys = self
            .options
            .credentials
            .get()
            .await
            .map_err(|e| OssError::Credentials {
                operation: req.operation,
                target: self.target(req.key),
                message: e.to_string(),
                temporary: e.is_temporary(),
            })?;
        let now = SystemTime::now();
        if let Some(token) = &keys.security_token {
            headers.push(("x-oss-security-token".into(), token.clone()));
        }
        let method = req.method.as_str();
        let input_headers;
        let authorization = match self.options.sign_version {
            SignVersion::V1 => {
                headers.push(("Date".into(), httpdate::fmt_http_date(now)));
                input_headers = headers.clone();
                let sts = sign::v1_string_to_sign(&SignInput {
                    method,
                    bucket: &self.options.bucket,
                    key: req.key,
                    query: &req.query,
                    headers: &input_headers,
                });
                sign::v1_authorization(&keys.access_key_id, &keys.access_key_secret, &sts)
            }
            SignVersion::V4 => {
                let date = chrono::DateTime::<chrono::Utc>::from(now)
                    .format("%Y%m%dT%H%M%SZ")
                    .to_string();
                headers.push(("x-oss-date".into(), date.clone()));
                headers.push(("x-oss-content-sha256".into(), "UNSIGNED-PAYLOAD".into()));
                input_headers = headers.clone();
                let canonical = sign::v4_canonical_request(&SignInput {
                    method,
                    bucket: &self.options.bucket,
                    key: req.key,
                    query: &req.query,
                    headers: &input_headers,
                });
                let sts = sign::v4_string_to_sign(&canonical, &date, &self.options.region);
                sign::v4_authorization(
                    &keys.access_key_id,
                    &keys.access_key_secret,
                    &self.options.region,
                    &date,
                    &sts,
                )
            }
        };
        let mut builder = self
            .http
            .request(req.method.clone(), self.url(req.key, &req.query))
            .header("Authorization", authorization)
            .header("Content-Length", req.body.len().to_string());
        for (n, v) in &headers {
            builder = builder.header(n.as_str(), v.as_str());
        }
        let target = self.target(req.key);
        let transport = |e: reqwest::Error| {
            if e.is_builder() {
                return OssError::Local {
                    operation: req.operation,
                    target: target.clone(),
                    message: error_chain(&e),
                };
            }
            OssError::Transport {
                operation: req.operation,
                target: target.clone(),
                message: if e.is_timeout() {
                    format!("timed out after {:?}", self.options.request_timeout)
                } else {
                    format!("{e} ({})", error_chain(&e))
                },
            }
        };
        let response = builder
            .body(req.body.clone())
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let response_headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport)?;
        let response = Response {
            status,
            headers: response_headers,
            body,
        };
        if status < 300 {
            return Ok(response);
        }
        Err(self.service_error(req, &response))
    }

    fn service_error(&self, req: &Request<'_>, response: &Response) -> OssError {
        let mut body = response.body.to_vec();
        if body.is_empty() {
            if let Some(encoded) = response.header("x-oss-err") {
                body = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .unwrap_or_default();
            }
        }
        let (mut code, message, mut request_id) = xml::error_fields(&body);
        if code.is_empty() {
            code = match response.status {
                404 if req.key.is_empty() => "NoSuchBucket".into(),
                404 => "NoSuchKey".into(),
                403 => "AccessDenied".into(),
                s => format!("HTTP{s}"),
            };
        }
        if request_id.is_empty() {
            request_id = response
                .header("x-oss-request-id")
                .unwrap_or_default()
                .to_owned();
        }
        OssError::Service {
            operation: req.operation,
            target: self.target(req.key),
            status: response.status,
            code,
            message,
            request_id,
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(self.options.max_retries, 200, 20_000)
    }

    /// Sends with retries on temporary errors.
    pub async fn send(&self, req: &Request<'_>) -> Result<Response, OssError> {
        let mut backoff = self.backoff();
        loop {
            match self.send_once(req).await {
                Ok(r) => return Ok(r),
                Err(e) if e.is_retryable() => match backoff.next_delay() {
                    Some(wait) => {
                        tracing::warn!("{e}; retry {} in {wait:?}", backoff.attempts());
                        tokio::time::sleep(wait).await;
                    }
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }

    pub fn request<'a>(
        &self,
        operation: &'static str,
        method: Method,
        key: &'a str,
    ) -> Request<'a> {
        Request {
            operation,
            method,
            key,
            query: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// GetBucketInfo: fails with `NoSuchBucket`, bad credentials, or no access.
    pub async fn check_bucket(&self) -> Result<(), OssError> {
        let mut req = self.request("GetBucketInfo", Method::GET, "");
        req.query = query(&[("bucketInfo", "")]);
        self.send(&req).await.map(drop)
    }

    /// Every key starting with `prefix` (ListObjectsV2, all pages).
    pub async fn list_keys(
        &self,
        prefix: &str,
        limit: Option<usize>,
    ) -> Result<Vec<String>, OssError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = self.request("ListObjectsV2", Method::GET, "");
            req.query = query(&[
                ("list-type", "2"),
                ("prefix", prefix),
                ("max-keys", "1000"),
                ("encoding-type", "url"),
            ]);
            if let Some(t) = &token {
                req.query.push(("continuation-token".into(), t.clone()));
            }
            let r = self.send(&req).await?;
            let bad = |m: String| OssError::Integrity {
                operation: "ListObjectsV2",
                target: self.target(prefix),
                message: m,
            };
            let page = xml::objects_page(&r.body).map_err(bad)?;
            keys.extend(page.keys);
            if limit.is_some_and(|n| keys.len() >= n) || !page.truncated {
                return Ok(keys);
            }
            match page.next_token {
                Some(t) if token.as_ref() != Some(&t) => token = Some(t),
                Some(_) => {
                    return Err(bad(
                        "a truncated listing repeats its continuation token".into()
                    ))
                }
                None => {
                    return Err(bad(
                        "a truncated listing has no NextContinuationToken".into()
                    ))
                }
            }
        }
    }

    /// DeleteMultipleObjects in batches of 1000 (quiet mode).
    pub async fn delete_keys(&self, keys: &[String]) -> Result<(), OssError> {
        for batch in keys.chunks(1000) {
            let mut body = String::from(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete><Quiet>true</Quiet>",
            );
            for key in batch {
                body.push_str("<Object><Key>");
                body.push_str(&xml::escape(key));
                body.push_str("</Key></Object>");
            }
            body.push_str("</Delete>");
            let mut req = self.request("DeleteMultipleObjects", Method::POST, "");
            req.query = query(&[("delete", "")]);
            req.headers = vec![
                ("Content-MD5".into(), content_md5(body.as_bytes())),
                ("Content-Type".into(), "application/xml".into()),
            ];
            req.body = Bytes::from(body);
            let r = self.send(&req).await?;
            let failed = xml::texts(&r.body, "Key").unwrap_or_default();
            if !failed.is_empty() {
                return Err(OssError::Integrity {
                    operation: "DeleteMultipleObjects",
                    target: self.target(""),
                    message: format!("could not delete {failed:?}"),
                });
            }
        }
        Ok(())
    }

    /// HeadObject; `None` if the key does not exist.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, OssError> {
        let req = self.request("HeadObject", Method::HEAD, key);
        match self.send(&req).await {
            Ok(r) => Ok(Some(ObjectMeta {
                size: r
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                crc64: r.crc64(),
                object_type: r.header("x-oss-object-type").unwrap_or("").to_owned(),
                window: r.header(WINDOW_META).map(str::to_owned),
            })),
            Err(e) if e.code() == Some("NoSuchKey") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// GetObject, checking the body against the object's CRC-64 (for verification).
    pub async fn get(&self, key: &str) -> Result<Bytes, OssError> {
        let r = self
            .send(&self.request("GetObject", Method::GET, key))
            .await?;
        let crc = crc64::checksum(&r.body);
        match r.crc64() {
            Some(server) if server != crc => Err(OssError::Integrity {
                operation: "GetObject",
                target: self.target(key),
                message: format!("CRC-64 mismatch: ours {crc}, OSS {server}"),
            }),
            _ => Ok(r.body),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), OssError> {
        self.send(&self.request("DeleteObject", Method::DELETE, key))
            .await
            .map(drop)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_the_key_including_slashes() {
        let options = |endpoint: &str| ClientOptions {
            endpoint: endpoint.into(),
            credentials: credentials::Provider::fixed(credentials::Credentials::fixed(
                "id", "secret", None,
            )),
            bucket: "examplebucket".into(),
            sign_version: SignVersion::V1,
            region: "cn-hangzhou".into(),
            path_style: None,
            request_timeout: Duration::from_secs(5),
            max_retries: 0,
        };
        let c = OssClient::new(options("http://oss-cn-hangzhou.aliyuncs.com")).unwrap();
        assert_eq!(
            c.url("datax/a b.csv", &[("uploads".into(), String::new())]),
            "http://examplebucket.oss-cn-hangzhou.aliyuncs.com/datax%2Fa%20b.csv?uploads"
        );
        let c = OssClient::new(options("127.0.0.1:9000")).unwrap();
        assert_eq!(
            c.url("k", &[("partNumber".into(), "1".into())]),
            "http://127.0.0.1:9000/examplebucket/k?partNumber=1"
        );
        assert!(!format!("{:?}", options("x")).contains("secret"));
    }
}
