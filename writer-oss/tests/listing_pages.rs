//! A listing that never advances (the same continuation token or markers on every
//! truncated page) is an error, not an endless loop. Found while writing the fuzz target
//! for the listing decoders (issue 21): the loops around them trusted the service to
//! make progress.

#![allow(clippy::unwrap_used)] // tests unwrap freely

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use writer_oss::client::{ClientOptions, OssClient, SignVersion};

/// Answers every request with `body`; after 20 requests with a 500, so a client that
/// loops fails instead of hanging.
fn serve(body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut request_body = vec![0; length];
            let _ = reader.read_exact(&mut request_body);
            let (status, body) = if n < 20 {
                ("200 OK", body)
            } else {
                ("500 Internal Server Error", "")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\nx-oss-request-id: r{n}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

fn client(endpoint: String) -> OssClient {
    OssClient::new(ClientOptions {
        endpoint,
        credentials: credentials::Provider::fixed(credentials::Credentials::fixed(
            "LTAI5tTestKey",
            "test-secret",
            None,
        )),
        bucket: "b".into(),
        sign_version: SignVersion::V4,
        region: "cn-hangzhou".into(),
        path_style: Some(true),
        request_timeout: Duration::from_secs(10),
        max_retries: 0,
    })
    .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_repeated_continuation_token_is_an_error() {
    let endpoint = serve(
        "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>p%2Fa</Key></Contents>\
         <NextContinuationToken>same</NextContinuationToken></ListBucketResult>",
    );
    let err = runtime()
        .block_on(client(endpoint).list_keys("p/", None))
        .unwrap_err();
    assert!(
        err.to_string().contains("repeats its continuation token"),
        "{err}"
    );
}

#[test]
fn repeated_upload_markers_are_an_error() {
    let endpoint = serve(
        "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>\
         <Upload><Key>p%2Fa</Key><UploadId>u1</UploadId></Upload>\
         <NextKeyMarker>p%2Fa</NextKeyMarker><NextUploadIdMarker>u1</NextUploadIdMarker>\
         </ListMultipartUploadsResult>",
    );
    let err = runtime()
        .block_on(client(endpoint).list_uploads("p/"))
        .unwrap_err();
    assert!(err.to_string().contains("repeats its markers"), "{err}");
}
