//! The signature vectors sent over HTTP to a running OSS emulator whose clock is set to
//! the vectors' signing time: each is accepted (virtual-hosted and path style), and a
//! copy with one signature character flipped is refused with `SignatureDoesNotMatch`.

// Helper functions outside #[test] bodies unwrap too; this file is test code.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use localcloud::{oss, Credentials, ServiceHandle, ServiceOptions};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/oss")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn signing_time_ms(file: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(file["signing_time_utc"].as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

/// An emulator at the vectors' time, knowing `credentials`, with `examplebucket`.
async fn start_at(file: &Value, credentials: Vec<Credentials>) -> ServiceHandle {
    let options = ServiceOptions {
        credentials,
        ..ServiceOptions::loopback()
    };
    options
        .clock
        .set_offset_ms(signing_time_ms(file) - options.clock.now_ms());
    let handle = oss::start(options).await.unwrap();
    let created = reqwest::Client::new()
        .post(format!("{}/-/oss/buckets/examplebucket", handle.endpoint()))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());
    handle
}

fn vector_credentials(file: &Value) -> Credentials {
    Credentials {
        access_key_id: file["credentials"]["access_key_id"]
            .as_str()
            .unwrap()
            .into(),
        access_key_secret: file["credentials"]["access_key_secret"]
            .as_str()
            .unwrap()
            .into(),
    }
}

/// Sends one vector to `endpoint`, keeping its Host, path, query, headers and body.
async fn send(endpoint: &str, vector: &Value, flip_signature: bool) -> (u16, String) {
    let request = &vector["request"];
    let url = reqwest::Url::parse(request["url"].as_str().unwrap()).unwrap();
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap()),
        None => url.host_str().unwrap().to_owned(),
    };
    let mut target = format!("{endpoint}{}", url.path());
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    let body = match request.get("body_utf8").and_then(Value::as_str) {
        Some(text) => text.as_bytes().to_vec(),
        None => request
            .get("body_base64")
            .and_then(Value::as_str)
            .map(|b| base64::engine::general_purpose::STANDARD.decode(b).unwrap())
            .unwrap_or_default(),
    };
    let method =
        reqwest::Method::from_bytes(request["method"].as_str().unwrap().as_bytes()).unwrap();
    let mut builder = reqwest::Client::new()
        .request(method, target)
        .header("host", host)
        .body(body);
    for (name, value) in request["headers"].as_object().unwrap() {
        let mut value = value.as_str().unwrap().to_owned();
        if flip_signature && name.eq_ignore_ascii_case("authorization") {
            let at = value.len() - 3;
            let replacement = if value.as_bytes()[at] == b'a' {
                "b"
            } else {
                "a"
            };
            value.replace_range(at..=at, replacement);
        }
        builder = builder.header(name.as_str(), value);
    }
    let response = builder.send().await.unwrap();
    let status = response.status().as_u16();
    // HEAD errors carry the error XML base64-encoded in x-oss-err instead of a body.
    let header_error = response.headers().get("x-oss-err").map(|v| {
        let xml = base64::engine::general_purpose::STANDARD
            .decode(v.as_bytes())
            .unwrap();
        String::from_utf8(xml).unwrap()
    });
    let text = response.text().await.unwrap();
    (status, header_error.unwrap_or(text))
}

fn is_sts(vector: &Value) -> bool {
    !vector["security_token"].is_null()
}

async fn run(file_name: &str) -> usize {
    let file = load(file_name);
    let vectors = file["vectors"].as_array().unwrap();
    let permanent = start_at(&file, vec![vector_credentials(&file)]).await;
    // The STS vectors sign with the same key id, registered here as a temporary key.
    let temporary = start_at(&file, Vec::new()).await;
    let credentials = vector_credentials(&file);
    let registered = reqwest::Client::new()
        .post(format!("{}/-/oss/sts", temporary.endpoint()))
        .json(&serde_json::json!({
            "access_key_id": credentials.access_key_id,
            "access_key_secret": credentials.access_key_secret,
            "security_token": file["credentials"]["security_token_when_sts"],
        }))
        .send()
        .await
        .unwrap();
    assert!(registered.status().is_success());

    let mut checked = 0;
    for vector in vectors {
        let id = vector["id"].as_str().unwrap();
        let endpoint = if is_sts(vector) {
            temporary.endpoint()
        } else {
            permanent.endpoint()
        };
        let (status, body) = send(&endpoint, vector, false).await;
        assert_ne!(status, 403, "{id} was refused: {body}");
        assert!(
            !body.contains("<Code>InvalidArgument</Code>"),
            "{id}: {body}"
        );
        let (status, body) = send(&endpoint, vector, true).await;
        assert_eq!(status, 403, "{id} tampered: {body}");
        assert!(
            body.contains("<Code>SignatureDoesNotMatch</Code>"),
            "{id} tampered: {body}"
        );
        if is_sts(vector) {
            // A permanent key presented with a token is treated as STS: unknown key.
            let (status, body) = send(&permanent.endpoint(), vector, false).await;
            assert_eq!(status, 403, "{id}");
            assert!(
                body.contains("<Code>InvalidAccessKeyId</Code>"),
                "{id}: {body}"
            );
        }
        checked += 1;
    }
    permanent.shutdown().await;
    temporary.shutdown().await;
    checked
}

#[tokio::test]
async fn v1_vectors_over_http() {
    assert_eq!(run("signatures_v1.json").await, 29);
}

#[tokio::test]
async fn v4_vectors_over_http() {
    assert_eq!(run("signatures_v4.json").await, 15);
}
