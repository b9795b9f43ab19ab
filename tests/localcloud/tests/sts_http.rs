//! The STS and ECS metadata emulator over HTTP: the metadata session-token rules, role
//! credential rotation, and AssumeRole's checks (signature, nonce, expired caller
//! token, parameters).

#![allow(clippy::unwrap_used)] // tests unwrap freely

use std::collections::BTreeMap;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use localcloud::{sts, Credentials, ServiceHandle, ServiceOptions};
use serde_json::Value;

async fn start(ttl_ms: Option<i64>) -> ServiceHandle {
    sts::start(
        ServiceOptions::loopback(),
        sts::StsOptions {
            role_name: "Role".into(),
            ttl_ms,
        },
    )
    .await
    .unwrap()
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A signed AssumeRole URL (the test's own signer, written from the documentation).
fn assume_url(
    endpoint: &str,
    id: &str,
    secret: &str,
    extra: &[(&str, &str)],
    nonce: &str,
) -> String {
    let mut p: BTreeMap<String, String> = BTreeMap::new();
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    for (k, v) in [
        ("Action", "AssumeRole"),
        ("Version", "2015-04-01"),
        ("Format", "JSON"),
        ("AccessKeyId", id),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce),
        ("Timestamp", now.as_str()),
        ("RoleArn", "acs:ram::1234567890123456:role/Exporter"),
        ("RoleSessionName", "test"),
    ] {
        p.insert(k.into(), v.into());
    }
    for (k, v) in extra {
        p.insert((*k).into(), (*v).into());
    }
    let query: Vec<String> = p
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    let to_sign = format!("GET&%2F&{}", enc(&query.join("&")));
    let mut mac =
        <Hmac<sha1::Sha1> as Mac>::new_from_slice(format!("{secret}&").as_bytes()).unwrap();
    mac.update(to_sign.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("{endpoint}/?{}&Signature={}", query.join("&"), enc(&sig))
}

async fn get_json(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn metadata_tokens_and_rotation() {
    let handle = start(Some(3000)).await;
    let ep = handle.endpoint();
    let http = reqwest::Client::new();
    let put = http
        .put(format!("{ep}/latest/api/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 400, "the ttl header is required");
    let token = http
        .put(format!("{ep}/latest/api/token"))
        .header("X-aliyun-ecs-metadata-token-ttl-seconds", "60")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let creds_url = format!("{ep}/latest/meta-data/ram/security-credentials/");
    let bad = http
        .get(&creds_url)
        .header("X-aliyun-ecs-metadata-token", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 401);
    http.post(format!("{ep}/-/sts/settings"))
        .body(r#"{"imds_v2_required": true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        http.get(&creds_url).send().await.unwrap().status().as_u16(),
        401
    );
    let get = |path: String| {
        let http = http.clone();
        let token = token.clone();
        async move {
            http.get(path)
                .header("X-aliyun-ecs-metadata-token", token)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(get(creds_url.clone()).await.text().await.unwrap(), "Role");
    assert_eq!(
        get(format!("{creds_url}Other")).await.status().as_u16(),
        404
    );
    let a: Value = get(format!("{creds_url}Role")).await.json().await.unwrap();
    let b: Value = get(format!("{creds_url}Role")).await.json().await.unwrap();
    assert_eq!(a["Code"], "Success");
    assert_eq!(
        a["AccessKeyId"], b["AccessKeyId"],
        "fresh credentials are handed out again"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let c: Value = get(format!("{creds_url}Role")).await.json().await.unwrap();
    assert_ne!(
        a["AccessKeyId"], c["AccessKeyId"],
        "a third of the life gone: new ones"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn assume_role_checks() {
    let handle = start(None).await;
    let ep = handle.endpoint();
    let key = Credentials::test_default();
    let (id, secret) = (key.access_key_id.as_str(), key.access_key_secret.as_str());

    let (status, ok) = get_json(&assume_url(
        &ep,
        id,
        secret,
        &[("DurationSeconds", "900")],
        "n1",
    ))
    .await;
    assert_eq!(status, 200, "{ok}");
    let c = &ok["Credentials"];
    assert_eq!(
        ok["AssumedRoleUser"]["Arn"],
        "acs:ram::1234567890123456:role/exporter/test"
    );

    let (status, e) = get_json(&assume_url(&ep, id, secret, &[], "n1")).await;
    assert_eq!(
        (status, e["Code"].as_str()),
        (400, Some("SignatureNonceUsed"))
    );
    let (status, e) = get_json(&assume_url(&ep, id, "wrong", &[], "n2")).await;
    assert_eq!(
        (status, e["Code"].as_str()),
        (400, Some("SignatureDoesNotMatch"))
    );
    let (status, e) = get_json(&assume_url(&ep, "LTAIunknown", secret, &[], "n3")).await;
    assert_eq!(
        (status, e["Code"].as_str()),
        (404, Some("InvalidAccessKeyId.NotFound"))
    );
    let (_, e) = get_json(&assume_url(
        &ep,
        id,
        secret,
        &[("DurationSeconds", "60")],
        "n4",
    ))
    .await;
    assert_eq!(e["Code"], "InvalidParameter.DurationSeconds");
    let (_, e) = get_json(&assume_url(&ep, id, secret, &[("RoleArn", "role/x")], "n5")).await;
    assert_eq!(e["Code"], "InvalidParameter.RoleArn");
    let (_, e) = get_json(&format!("{ep}/?Action=AssumeRole")).await;
    assert_eq!(e["Code"], "MissingAccessKeyId");

    // Issued credentials sign AssumeRole with their token; expired, they are refused.
    let sts_id = c["AccessKeyId"].as_str().unwrap();
    let sts_secret = c["AccessKeySecret"].as_str().unwrap();
    let token = c["SecurityToken"].as_str().unwrap();
    let (status, _) = get_json(&assume_url(
        &ep,
        sts_id,
        sts_secret,
        &[("SecurityToken", token)],
        "n6",
    ))
    .await;
    assert_eq!(status, 200);
    let (_, e) = get_json(&assume_url(
        &ep,
        sts_id,
        sts_secret,
        &[("SecurityToken", "CAISx")],
        "n7",
    ))
    .await;
    assert_eq!(e["Code"], "InvalidSecurityToken.MismatchWithAccessKey");
    reqwest::Client::new()
        .post(format!("{ep}/-/sts/settings"))
        .body(r#"{"ttl_ms": 1}"#)
        .send()
        .await
        .unwrap();
    let (_, short) = get_json(&assume_url(&ep, id, secret, &[], "n8")).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let s = &short["Credentials"];
    let (_, e) = get_json(&assume_url(
        &ep,
        s["AccessKeyId"].as_str().unwrap(),
        s["AccessKeySecret"].as_str().unwrap(),
        &[("SecurityToken", s["SecurityToken"].as_str().unwrap())],
        "n9",
    ))
    .await;
    assert_eq!(e["Code"], "InvalidSecurityToken.Expired");
    handle.shutdown().await;
}
