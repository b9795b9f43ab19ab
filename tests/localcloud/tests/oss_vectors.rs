//! The OSS test vectors (`testdata/oss/`, produced by the official SDKs): every
//! signature verifies and a tampered copy of each fails; CRC-64 and hash vectors hold.

// Helper functions outside #[test] bodies unwrap too; this file is test code.
#![allow(clippy::unwrap_used)]

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine;
use bytes::Bytes;
use localcloud::oss::addressing::{parse_query, resolve};
use localcloud::oss::auth::{self, KeyStore, SignatureVersion, SignedRequest};
use localcloud::oss::crc64;
use localcloud::oss::error::{OssError, OssResult};
use localcloud::oss::state::{md5_hex_upper, multipart_etag, Part};
use md5::{Digest, Md5};
use serde_json::Value;

const MAX_SKEW_MS: i64 = 15 * 60 * 1000;

fn load(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/oss")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Accepts the vectors' key id, with or without their STS token, using `secret`.
struct VectorKeys {
    id: String,
    secret: String,
}

impl KeyStore for VectorKeys {
    fn secret_for(&self, id: &str, _token: Option<&str>, _now_ms: i64) -> OssResult<String> {
        if id == self.id {
            Ok(self.secret.clone())
        } else {
            Err(OssError::invalid_access_key_id(id))
        }
    }
}

/// One vector's request as the emulator receives it.
struct WireRequest {
    method: String,
    host: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
}

fn wire_request(vector: &Value) -> WireRequest {
    let request = &vector["request"];
    let url = reqwest::Url::parse(request["url"].as_str().unwrap()).unwrap();
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap()),
        None => url.host_str().unwrap().to_owned(),
    };
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_str(&host).unwrap());
    for (name, value) in request["headers"].as_object().unwrap() {
        headers.insert(
            HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).unwrap(),
            HeaderValue::from_str(value.as_str().unwrap()).unwrap(),
        );
    }
    WireRequest {
        method: request["method"].as_str().unwrap().to_owned(),
        host,
        path: url.path().to_owned(),
        query: url.query().map(str::to_owned),
        headers,
    }
}

fn signing_time_ms(file: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(file["signing_time_utc"].as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

/// Resolves and verifies `wire` the way the server does.
fn check(wire: &WireRequest, keys: &VectorKeys, now_ms: i64) -> OssResult<auth::Verified> {
    let target = resolve(Some(&wire.host), &wire.path)?;
    let query = parse_query(wire.query.as_deref())?;
    let request = SignedRequest {
        method: &wire.method,
        target: &target,
        query: &query,
        headers: &wire.headers,
    };
    auth::verify(&request, keys, now_ms, MAX_SKEW_MS)
}

fn keys(file: &Value, secret_suffix: &str) -> VectorKeys {
    VectorKeys {
        id: file["credentials"]["access_key_id"]
            .as_str()
            .unwrap()
            .to_owned(),
        secret: format!(
            "{}{secret_suffix}",
            file["credentials"]["access_key_secret"].as_str().unwrap()
        ),
    }
}

/// Flips one character of the signature inside the Authorization header.
fn tamper_signature(wire: &mut WireRequest) {
    let auth = wire.headers["authorization"].to_str().unwrap().to_owned();
    let at = auth.len() - 3; // inside the signature for both schemes (before V1 padding)
    let replacement = if auth.as_bytes()[at] == b'a' {
        'b'
    } else {
        'a'
    };
    let tampered = format!("{}{replacement}{}", &auth[..at], &auth[at + 1..]);
    assert_ne!(tampered, auth);
    wire.headers
        .insert("authorization", HeaderValue::from_str(&tampered).unwrap());
}

fn assert_signature_mismatch(result: OssResult<auth::Verified>, id: &str, what: &str) {
    let error = result.expect_err(what);
    assert_eq!(error.code, "SignatureDoesNotMatch", "{id}: {what}: {error}");
    assert_eq!(error.status.as_u16(), 403);
}

fn header_value(vector: &Value, name: &str) -> String {
    vector["request"]["headers"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str().unwrap().to_owned())
        .unwrap()
}

/// Checks every vector of one file; returns how many there were.
fn run_signature_file(name: &str, version: SignatureVersion) -> usize {
    let file = load(name);
    let now = signing_time_ms(&file);
    let vectors = file["vectors"].as_array().unwrap();
    for vector in vectors {
        let id = vector["id"].as_str().unwrap();
        let wire = wire_request(vector);

        // The emulator rebuilds exactly what the SDK signed.
        let target = resolve(Some(&wire.host), &wire.path).unwrap();
        assert_eq!(target.key, vector["key"].as_str().unwrap(), "{id}: key");
        assert_eq!(
            target.bucket.as_deref(),
            vector["bucket"].as_str(),
            "{id}: bucket"
        );
        let query = parse_query(wire.query.as_deref()).unwrap();
        let request = SignedRequest {
            method: &wire.method,
            target: &target,
            query: &query,
            headers: &wire.headers,
        };
        match version {
            SignatureVersion::V1 => assert_eq!(
                auth::v1_string_to_sign(&request, &header_value(vector, "date")),
                vector["string_to_sign"].as_str().unwrap(),
                "{id}: string to sign"
            ),
            SignatureVersion::V4 => {
                assert_eq!(
                    auth::v4_canonical_request(&request, &[]),
                    vector["canonical_request"].as_str().unwrap(),
                    "{id}: canonical request"
                );
                let scope: Vec<&str> = vector["scope"].as_str().unwrap().split('/').collect();
                let key = auth::v4_signing_key(
                    file["credentials"]["access_key_secret"].as_str().unwrap(),
                    scope[0],
                    scope[1],
                    scope[2],
                );
                assert_eq!(
                    hex::encode(key),
                    vector["signing_key_hex"].as_str().unwrap(),
                    "{id}: signing key"
                );
            }
        }

        // It verifies.
        let verified = check(&wire, &keys(&file, ""), now).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(verified.version, version, "{id}");

        // Tampered copies fail: a flipped signature character, a wrong secret, a changed path.
        let mut flipped = wire_request(vector);
        tamper_signature(&mut flipped);
        assert_signature_mismatch(
            check(&flipped, &keys(&file, ""), now),
            id,
            "flipped signature",
        );
        assert_signature_mismatch(check(&wire, &keys(&file, "x"), now), id, "wrong secret");
        let mut moved = wire_request(vector);
        moved.path.push('x');
        assert_signature_mismatch(check(&moved, &keys(&file, ""), now), id, "changed path");

        // Outside the skew window the request is refused.
        let skewed = check(&wire, &keys(&file, ""), now + MAX_SKEW_MS + 1000).unwrap_err();
        assert_eq!(skewed.code, "RequestTimeTooSkewed", "{id}");
    }
    vectors.len()
}

#[test]
fn every_v1_signature_vector_verifies_and_tampered_copies_fail() {
    assert_eq!(
        run_signature_file("signatures_v1.json", SignatureVersion::V1),
        29
    );
}

#[test]
fn every_v4_signature_vector_verifies_and_tampered_copies_fail() {
    assert_eq!(
        run_signature_file("signatures_v4.json", SignatureVersion::V4),
        15
    );
}

fn body_of(value: &Value) -> Vec<u8> {
    match value.get("body_utf8").and_then(Value::as_str) {
        Some(text) => text.as_bytes().to_vec(),
        None => base64::engine::general_purpose::STANDARD
            .decode(value["body_base64"].as_str().unwrap())
            .unwrap(),
    }
}

fn decimal(value: &Value) -> u64 {
    value.as_str().unwrap().parse().unwrap()
}

#[test]
fn crc64_vectors() {
    let file = load("crc64.json");
    let check_value = file["algorithm"]["check_123456789"].as_str().unwrap();
    assert_eq!(
        crc64::checksum(b"123456789"),
        u64::from_str_radix(check_value.trim_start_matches("0x"), 16).unwrap()
    );
    for single in file["single"].as_array().unwrap() {
        let body = body_of(single);
        assert_eq!(body.len() as u64, single["length"].as_u64().unwrap());
        assert_eq!(crc64::checksum(&body), decimal(&single["crc64_decimal"]));
        assert_eq!(
            format!("{:016x}", crc64::checksum(&body)),
            single["crc64_hex"].as_str().unwrap()
        );
    }
    let combines = file["combine"].as_array().unwrap();
    assert!(!combines.is_empty());
    for case in combines {
        let mut combined = 0u64;
        let mut all = Vec::new();
        for part in case["parts"].as_array().unwrap() {
            let body = body_of(part);
            assert_eq!(crc64::checksum(&body), decimal(&part["part_crc64_decimal"]));
            combined = crc64::combine(
                combined,
                decimal(&part["part_crc64_decimal"]),
                part["part_length"].as_u64().unwrap(),
            );
            all.extend_from_slice(&body);
        }
        assert_eq!(combined, decimal(&case["combined_crc64_decimal"]));
        assert_eq!(
            crc64::checksum(&all),
            decimal(&case["crc64_of_concatenation_decimal"])
        );
    }
    let chain = &file["append_chain"];
    let existing = crc64::checksum(chain["existing_object_utf8"].as_str().unwrap().as_bytes());
    assert_eq!(existing, decimal(&chain["existing_crc64_decimal"]));
    assert_eq!(
        crc64::update(
            existing,
            chain["appended_utf8"].as_str().unwrap().as_bytes()
        ),
        decimal(&chain["new_object_crc64_decimal"])
    );
}

#[test]
fn hash_vectors() {
    let file = load("hashes.json");
    for case in file["simple_put"].as_array().unwrap() {
        let body = body_of(case);
        let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body));
        assert_eq!(md5, case["content_md5"].as_str().unwrap());
        assert_eq!(
            format!("\"{}\"", md5_hex_upper(&body)),
            case["etag_header"].as_str().unwrap()
        );
    }
    let convention = &file["multipart_etag_convention"];
    let parts: Vec<&str> = convention["parts_utf8"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for (part, etag) in parts
        .iter()
        .zip(convention["part_etags"].as_array().unwrap())
    {
        assert_eq!(
            format!("\"{}\"", md5_hex_upper(part.as_bytes())),
            etag.as_str().unwrap()
        );
    }
    let stored: Vec<Part> = parts
        .iter()
        .map(|p| Part::new(Bytes::copy_from_slice(p.as_bytes()), 0))
        .collect();
    assert_eq!(
        format!("\"{}\"", multipart_etag(&stored)),
        convention["object_etag"].as_str().unwrap()
    );
    // A part whose stored ETag is not an MD5 (not written by this emulator) is hashed.
    let mut odd = stored.clone();
    odd[0].etag = "not-hex".into();
    assert_eq!(
        format!("\"{}\"", multipart_etag(&odd)),
        convention["object_etag"].as_str().unwrap()
    );
}
