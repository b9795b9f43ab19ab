//! Signed HTTP calls to the service and Tunnel endpoints, with retries of temporary
//! failures only.

use std::time::Duration;

use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use protocol::runtime::retry::Backoff;
use reqwest::header::HeaderMap;
use reqwest::Method;

use crate::error::OdpsError;
use crate::sign::{authorization, canonical_string, AccessKey, CanonicalRequest, SignatureVersion};
use crate::xml;

/// Characters left as they are in path segments and query values (RFC 3986 unreserved).
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// First wait between retries, and the ceiling of one wait.
const RETRY_BASE_MS: u64 = 1_000;
const RETRY_MAX_MS: u64 = 32_000;

/// A base URL: `http://host[:port]` plus an optional path such as `/api`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Scheme and authority, e.g. `http://127.0.0.1:8080`.
    pub origin: String,
    /// The path every resource is appended to, without a trailing `/` (may be empty).
    pub path: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        protocol::connection::check_http_url(url, true).map_err(|e| format!("{url:?}: {e}"))?;
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{url:?} is not a URL (expected http://host[:port][/path])"))?;
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(format!("{url:?}: the scheme must be http or https"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains(['?', '#', ' ']) {
            return Err(format!("{url:?} has no valid host"));
        }
        Ok(Self {
            origin: format!("{}://{authority}", scheme.to_ascii_lowercase()),
            path: path.to_owned(),
        })
    }

    pub fn scheme(&self) -> &str {
        self.origin.split("://").next().unwrap_or("http")
    }

    pub fn host(&self) -> &str {
        let authority = self.origin.split("://").nth(1).unwrap_or_default();
        authority.split(':').next().unwrap_or_default()
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.origin, self.path)
    }
}

/// How the client signs and retries.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Where the keys come from; asked before every request.
    pub credentials: credentials::Provider,
    pub signature: SignatureVersion,
    /// Sent as `curr_project` on every request.
    pub project: String,
    /// Attempts per call (1 = no retry).
    pub max_attempts: u32,
    pub request_timeout: Duration,
}

/// One request, before signing.
pub struct Request {
    /// For errors and logs, e.g. `GetTable localcloud.person`.
    pub operation: String,
    pub method: Method,
    /// Decoded path relative to the endpoint, e.g. `/projects/p/tables/t`.
    pub path: String,
    /// Decoded query parameters; an empty value is sent as a bare name.
    pub params: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub content_type: Option<&'static str>,
}

impl Request {
    pub fn new(operation: impl Into<String>, method: Method, path: impl Into<String>) -> Self {
        Self {
            operation: operation.into(),
            method,
            path: path.into(),
            params: Vec::new(),
            headers: Vec::new(),
            content_type: None,
        }
    }

    pub fn param(mut self, name: &str, value: impl Into<String>) -> Self {
        self.params.push((name.to_owned(), value.into()));
        self
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// A successful answer.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The signed-request transport shared by the service and Tunnel calls.
#[derive(Clone, Debug)]
pub struct Http {
    client: reqwest::Client,
    pub options: HttpOptions,
}

impl Http {
    pub fn new(options: HttpOptions) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(50))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(Self { client, options })
    }

    /// The full URL of a request at `endpoint` (with `curr_project`).
    fn url(&self, endpoint: &Endpoint, req: &Request) -> String {
        let mut url = endpoint.origin.clone();
        url.push_str(&endpoint.path);
        for part in req.path.split('/').filter(|p| !p.is_empty()) {
            url.push('/');
            url.extend(utf8_percent_encode(part, ENCODE));
        }
        for (i, (k, v)) in self.all_params(req).iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.extend(utf8_percent_encode(k, ENCODE));
            if !v.is_empty() {
                url.push('=');
                url.extend(utf8_percent_encode(v, ENCODE));
            }
        }
        url
    }

    fn all_params(&self, req: &Request) -> Vec<(String, String)> {
        let mut params = req.params.clone();
        params.push(("curr_project".to_owned(), self.options.project.clone()));
        params
    }

    /// Builds the signed request.
    fn build(
        &self,
        endpoint: &Endpoint,
        req: &Request,
        body: reqwest::Body,
        key: &AccessKey,
    ) -> reqwest::RequestBuilder {
        let now = std::time::SystemTime::now();
        let date = httpdate::fmt_http_date(now);
        let utc_date = chrono::Utc::now().format("%Y%m%d").to_string();
        let user_agent = format!("streamport-writer-odps/{}", env!("CARGO_PKG_VERSION"));
        let mut headers = req.headers.clone();
        headers.push(("x-odps-user-agent".to_owned(), user_agent.clone()));
        let params = self.all_params(req);
        let canonical = canonical_string(&CanonicalRequest {
            method: req.method.as_str(),
            content_md5: "",
            content_type: req.content_type.unwrap_or(""),
            date: &date,
            headers: &headers,
            resource_path: &req.path,
            params: &params,
        });
        let auth = authorization(key, &self.options.signature, &canonical, &utc_date);
        let mut builder = self
            .client
            .request(req.method.clone(), self.url(endpoint, req))
            .header("Date", date)
            .header("User-Agent", user_agent)
            .header("Authorization", auth)
            .body(body);
        for (k, v) in &headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        if let Some(ct) = req.content_type {
            builder = builder.header("Content-Type", ct);
        }
        if let Some(token) = &key.security_token {
            builder = builder.header("authorization-sts-token", token.as_str());
        }
        builder
    }

    /// Sends once with the given body; no retry, no timeout beyond `timeout`.
    pub async fn send_once(
        &self,
        endpoint: &Endpoint,
        req: &Request,
        body: reqwest::Body,
        timeout: Option<Duration>,
    ) -> Result<Answer, OdpsError> {
        let keys = self.options.credentials.get().await.map_err(|e| {
            let message = format!("credentials: {e}");
            if e.is_temporary() {
                OdpsError::Transport {
                    operation: req.operation.clone(),
                    message,
                }
            } else {
                OdpsError::Credentials {
                    operation: req.operation.clone(),
                    message: e.to_string(),
                }
            }
        })?;
        let key = AccessKey {
            id: keys.access_key_id,
            secret: keys.access_key_secret,
            security_token: keys.security_token,
        };
        let mut builder = self.build(endpoint, req, body, &key);
        if let Some(t) = timeout {
            builder = builder.timeout(t);
        }
        let response = builder.send().await.map_err(|e| transport(req, &e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| transport(req, &e))?;
        if (200..300).contains(&status) {
            return Ok(Answer {
                status,
                headers,
                body,
            });
        }
        Err(service_error(req, status, &headers, &body))
    }

    /// Sends with an in-memory body, retrying temporary failures with backoff.
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        req: &Request,
        body: Bytes,
    ) -> Result<Answer, OdpsError> {
        let mut backoff = self.backoff();
        loop {
            match self
                .send_once(
                    endpoint,
                    req,
                    reqwest::Body::from(body.clone()),
                    Some(self.options.request_timeout),
                )
                .await
            {
                Ok(answer) => return Ok(answer),
                Err(e) if e.is_retryable() => match backoff.next_delay() {
                    Some(wait) => {
                        tracing::warn!("{e}; retrying in {} ms", wait.as_millis());
                        tokio::time::sleep(wait).await;
                    }
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }

    pub fn backoff(&self) -> Backoff {
        Backoff::new(
            self.options.max_attempts.saturating_sub(1),
            RETRY_BASE_MS,
            RETRY_MAX_MS,
        )
    }
}

fn transport(req: &Request, e: &reqwest::Error) -> OdpsError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_builder() {
        return OdpsError::Local {
            operation: req.operation.clone(),
            message,
        };
    }
    if e.is_timeout() {
        message.push_str(" (timed out)");
    }
    OdpsError::Transport {
        operation: req.operation.clone(),
        message,
    }
}

/// Reads a service error: the JSON (Tunnel) or XML (service) error body.
#[doc(hidden)]
pub fn service_error(req: &Request, status: u16, headers: &HeaderMap, body: &[u8]) -> OdpsError {
    let text = String::from_utf8_lossy(body);
    let mut code = String::new();
    let mut message = String::new();
    let mut request_id = headers
        .get("x-odps-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
        let field = |k: &str| {
            json.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        code = field("Code");
        message = field("Message");
        if request_id.is_empty() {
            request_id = field("RequestId");
        }
    } else if let Ok(doc) = xml::parse(&text) {
        code = doc.child_text("Code").unwrap_or_default().to_owned();
        message = doc.child_text("Message").unwrap_or_default().to_owned();
        if request_id.is_empty() {
            request_id = doc.child_text("RequestId").unwrap_or_default().to_owned();
        }
    }
    if code.is_empty() {
        code = format!("HTTP{status}");
    }
    if message.is_empty() {
        message = text.chars().take(200).collect();
    }
    OdpsError::Service {
        operation: req.operation.clone(),
        status,
        code,
        message,
        request_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:8080/api/").unwrap();
        assert_eq!(e.origin, "http://127.0.0.1:8080");
        assert_eq!(e.path, "/api");
        assert_eq!(e.host(), "127.0.0.1");
        assert_eq!(e.to_string(), "http://127.0.0.1:8080/api");
        let t = Endpoint::parse("https://dt.cn-hangzhou.maxcompute.aliyun.com").unwrap();
        assert_eq!(t.path, "");
        assert_eq!(t.scheme(), "https");
        assert!(Endpoint::parse("dt.example.com").is_err());
        assert!(Endpoint::parse("ftp://x").is_err());
    }

    #[test]
    fn urls_encode_values_and_bare_flags() {
        let http = Http::new(HttpOptions {
            credentials: credentials::Provider::fixed(credentials::Credentials::fixed(
                "a", "b", None,
            )),
            signature: SignatureVersion::V2,
            project: "p".into(),
            max_attempts: 1,
            request_timeout: Duration::from_secs(1),
        })
        .unwrap();
        let req = Request::new("x", Method::POST, "/projects/p/tables/t")
            .param("uploads", "")
            .param("partition", "pt=1,r=a b");
        let url = http.url(&Endpoint::parse("http://h").unwrap(), &req);
        assert_eq!(
            url,
            "http://h/projects/p/tables/t?uploads&partition=pt%3D1%2Cr%3Da%20b&curr_project=p"
        );
    }
}
