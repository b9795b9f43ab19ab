//! Issue 14 item 9: permanent local mistakes in the parameter fail at once (no retry),
//! exit 2, naming the parameter and never showing a credential. Before, a malformed
//! endpoint or a security token with a newline was retried as a network error (a token
//! with a newline for up to 137 s).

#![allow(clippy::unwrap_used)] // tests unwrap freely

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

#[test]
fn permanent_local_mistakes_fail_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let base = json!({"endpoint": "http://127.0.0.1:1", "accessId": "id",
                      "accessKey": "never-shown-secret", "bucket": "b", "object": "o",
                      "writeMode": "append", "fileFormat": "csv"});
    for (key, value, needle) in [
        (
            "endpoint",
            "http://[::1",
            "endpoint: the IPv6 address in \"[::1\" lacks its closing ]",
        ),
        ("endpoint", "http://host:0", "endpoint: the port \"0\""),
        (
            "securityToken",
            "STS.a\nb",
            "securityToken: it contains a newline",
        ),
        (
            "accessKey",
            "never-shown\tsecret",
            "accessKey: it contains a tab",
        ),
    ] {
        let mut p = base.clone();
        p[key] = json!(value);
        let config = dir.path().join("w.json");
        std::fs::write(&config, p.to_string()).unwrap();
        let started = Instant::now();
        let out = Command::new(test_support::workspace_binary("writer-oss"))
            .args(["check", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}: {stderr}");
        assert!(stderr.contains(needle), "{needle}: {stderr}");
        assert!(!stderr.contains("never-shown"), "{stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
