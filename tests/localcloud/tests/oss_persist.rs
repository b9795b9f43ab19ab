//! With a data directory, the OSS emulator's buckets, objects, open multipart uploads
//! and STS credentials survive a restart.

// Helper functions outside #[test] bodies unwrap too; this file is test code.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use hmac::{Hmac, Mac};
use localcloud::{oss, Credentials, ServiceHandle, ServiceOptions};
use sha1::Sha1;

async fn start(dir: &std::path::Path) -> ServiceHandle {
    oss::start(ServiceOptions {
        data_dir: Some(dir.to_path_buf()),
        ..ServiceOptions::loopback()
    })
    .await
    .unwrap()
}

/// A V1-signed request (written here from the spec, independently of the emulator).
fn signed(
    handle: &ServiceHandle,
    method: reqwest::Method,
    key: &str,
    sub_resource: &str,
) -> reqwest::RequestBuilder {
    let credentials = Credentials::test_default();
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let resource = format!("/localcloud/{key}{sub_resource}");
    let string_to_sign = format!("{method}\n\n\n{date}\n{resource}");
    let mut mac =
        <Hmac<Sha1> as Mac>::new_from_slice(credentials.access_key_secret.as_bytes()).unwrap();
    mac.update(string_to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let url = format!("{}/localcloud/{key}{sub_resource}", handle.endpoint());
    reqwest::Client::new()
        .request(method, url)
        .header("date", date)
        .header(
            "authorization",
            format!("OSS {}:{signature}", credentials.access_key_id),
        )
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).unwrap() + open.len();
    let end = start + text[start..].find(close).unwrap();
    &text[start..end]
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(dir.path()).await;
    let put = signed(&first, reqwest::Method::PUT, "a/b.txt", "")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let crc = put.headers()["x-oss-hash-crc64ecma"].clone();
    let append = signed(&first, reqwest::Method::POST, "log", "?append&position=0")
        .body("line\n")
        .send()
        .await
        .unwrap();
    assert_eq!(append.status(), 200);
    let initiated = signed(&first, reqwest::Method::POST, "mp", "?uploads")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let upload_id = between(&initiated, "<UploadId>", "</UploadId>").to_owned();
    let part = signed(
        &first,
        reqwest::Method::PUT,
        "mp",
        &format!("?partNumber=1&uploadId={upload_id}"),
    )
    .body("only part")
    .send()
    .await
    .unwrap();
    assert_eq!(part.status(), 200);
    let etag = part.headers()["etag"].to_str().unwrap().to_owned();
    first.shutdown().await;

    let second = start(dir.path()).await;
    let got = signed(&second, reqwest::Method::GET, "a/b.txt", "")
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["x-oss-hash-crc64ecma"], crc);
    assert_eq!(got.text().await.unwrap(), "hello");
    let next = signed(&second, reqwest::Method::POST, "log", "?append&position=5")
        .body("more\n")
        .send()
        .await
        .unwrap();
    assert_eq!(next.status(), 200, "the appendable object kept its length");
    let complete = signed(
        &second,
        reqwest::Method::POST,
        "mp",
        &format!("?uploadId={upload_id}"),
    )
    .body(format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    ))
    .send()
    .await
    .unwrap();
    assert_eq!(
        complete.status(),
        200,
        "the open upload and its part survived"
    );
    let deleted = signed(&second, reqwest::Method::DELETE, "a/b.txt", "")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    second.shutdown().await;

    let third = start(dir.path()).await;
    let gone = signed(&third, reqwest::Method::GET, "a/b.txt", "")
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let mp = signed(&third, reqwest::Method::GET, "mp", "")
        .send()
        .await
        .unwrap();
    assert_eq!(mp.headers()["x-oss-object-type"], "Multipart");
    assert_eq!(mp.text().await.unwrap(), "only part");
    let log = signed(&third, reqwest::Method::GET, "log", "")
        .send()
        .await
        .unwrap();
    assert_eq!(log.text().await.unwrap(), "line\nmore\n");
    let uploads: serde_json::Value = reqwest::get(format!("{}/-/oss/uploads", third.endpoint()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(uploads["uploads"].as_array().unwrap().len(), 0);
    third.shutdown().await;
}

#[tokio::test]
async fn sts_credentials_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(dir.path()).await;
    let issued: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/-/oss/sts", first.endpoint()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    first.shutdown().await;
    let saved = std::fs::read_to_string(dir.path().join("sts.json")).unwrap();
    assert!(saved.contains(issued["access_key_id"].as_str().unwrap()));
    let second = start(dir.path()).await;
    // The temporary key and token are known again: only the (bogus) signature fails.
    // An unknown key would be InvalidAccessKeyId.
    let refused = reqwest::Client::new()
        .get(format!("{}/localcloud/k", second.endpoint()))
        .header(
            "date",
            httpdate::fmt_http_date(std::time::SystemTime::now()),
        )
        .header(
            "x-oss-security-token",
            issued["security_token"].as_str().unwrap(),
        )
        .header(
            "authorization",
            format!("OSS {}:c2ln", issued["access_key_id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        refused.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{refused}"
    );
    second.shutdown().await;
}
