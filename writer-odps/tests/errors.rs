//! Bad inputs get clear errors naming what is wrong, and never print the secret.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{stderr, unique, write_jsonl, Cloud};
use serde_json::{json, Value as Json};

/// Runs the writer and returns (exit code, stderr); asserts the secret is not shown.
fn fails(cloud: &Cloud, param: &Json) -> (i32, String) {
    let out = write_jsonl(param, "[1, \"a\"]\n");
    let err = stderr(&out);
    assert!(!out.status.success(), "expected a failure: {err}");
    assert!(
        !err.contains(&cloud.key_secret),
        "the secret was printed: {err}"
    );
    (out.status.code().unwrap(), err)
}

fn table(cloud: &Cloud) -> String {
    let t = unique("bad");
    cloud.sql(&format!(
        "create table {t} (id bigint, s string) partitioned by (pt string, region string)"
    ));
    t
}

#[test]
fn unknown_project_and_table() {
    let cloud = Cloud::start();
    let t = table(&cloud);
    let (code, err) = fails(
        &cloud,
        &cloud.param(
            &t,
            json!({"project": "no_such_project", "partition": "pt=1,region=a"}),
        ),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("GetTable no_such_project.") && err.contains("NoSuchProject"),
        "{err}"
    );
    let (code, err) = fails(
        &cloud,
        &cloud.param("no_such_table", json!({"partition": "pt=1,region=a"})),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("localcloud.no_such_table") && err.contains("Table not found"),
        "{err}"
    );
}

#[test]
fn partitions_must_name_the_last_level() {
    let cloud = Cloud::start();
    let t = table(&cloud);
    for partition in [json!("pt=1"), Json::Null, json!("region=a,pt=1")] {
        let (code, err) = fails(&cloud, &cloud.param(&t, json!({"partition": partition})));
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("every") && err.contains("(pt, region)"),
            "{err}"
        );
    }
    let (code, err) = fails(
        &cloud,
        &cloud.param(&t, json!({"partition": "pt=1,region"})),
    );
    assert_eq!(code, 2);
    assert!(err.contains("not key=value"), "{err}");
    let flat = unique("flat");
    cloud.sql(&format!("create table {flat} (id bigint, s string)"));
    let (code, err) = fails(&cloud, &cloud.param(&flat, json!({"partition": "pt=1"})));
    assert_eq!(code, 2);
    assert!(err.contains("is not partitioned"), "{err}");
}

#[test]
fn columns_must_exist() {
    let cloud = Cloud::start();
    let t = table(&cloud);
    let (code, err) = fails(
        &cloud,
        &cloud.param(
            &t,
            json!({"partition": "pt=1,region=a", "column": ["id", "nope"]}),
        ),
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("column \"nope\" does not exist") && err.contains("id, s"),
        "{err}"
    );
    let (code, err) = fails(
        &cloud,
        &cloud.param(
            &t,
            json!({"partition": "pt=1,region=a", "column": ["id", "pt"]}),
        ),
    );
    assert_eq!(code, 2);
    assert!(err.contains("partition key"), "{err}");
}

#[test]
fn wrong_keys() {
    let cloud = Cloud::start();
    let t = table(&cloud);
    let (code, err) = fails(
        &cloud,
        &cloud.param(
            &t,
            json!({"partition": "pt=1,region=a", "accessKey": "wrong-secret-value"}),
        ),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("401") && err.contains("ODPS-0410042"), "{err}");
    assert!(!err.contains("wrong-secret-value"), "{err}");
    let (code, err) = fails(
        &cloud,
        &cloud.param(
            &t,
            json!({"partition": "pt=1,region=a", "accessId": "LTAI-unknown"}),
        ),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ODPS-0410051"), "{err}");
}

#[test]
fn unreachable_tunnel_endpoint() {
    let cloud = Cloud::start();
    let t = table(&cloud);
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tunnel = format!("http://127.0.0.1:{port}");
    let param = cloud.param(
        &t,
        json!({"partition": "pt=1,region=a", "tunnelServer": tunnel, "maxRetryTime": 2}),
    );
    let (_, err) = fails(&cloud, &param);
    assert!(
        err.contains(&format!("tunnel endpoint {tunnel}")) && err.contains("CreateUploadSession"),
        "{err}"
    );
    // `check` says so too, as a configuration error.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("w.json");
    std::fs::write(&config, param.to_string()).unwrap();
    let out = Command::new(common::binary("writer-odps"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("is unreachable"), "{}", stderr(&out));
}

/// Issue 14 item 9: permanent local mistakes fail at once (no retry), exit 2, naming
/// the parameter; before, `http://[::1` and a token with a newline were retried for
/// minutes as network errors.
#[test]
fn permanent_local_mistakes_fail_at_once() {
    let cloud = Cloud::start();
    let t = table(&cloud);
    for (extra, needle) in [
        (
            json!({"odpsServer": "http://[::1/api"}),
            "odpsServer: \"http://[::1/api\": the IPv6 address",
        ),
        (
            json!({"tunnelServer": "http://[::1"}),
            "tunnelServer: \"http://[::1\": the IPv6 address",
        ),
        (
            json!({"securityToken": "STS.a\nb"}),
            "securityToken: it contains a newline",
        ),
    ] {
        let mut param = cloud.param(&t, json!({"partition": "pt=1,region=a"}));
        for (k, v) in extra.as_object().unwrap() {
            param[k] = v.clone();
        }
        let started = std::time::Instant::now();
        let (code, err) = fails(&cloud, &param);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(needle), "{needle}: {err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}

#[test]
fn unresolved_datasource_and_unknown_keys() {
    let cloud = Cloud::start();
    let t = table(&cloud);
    let (code, err) = fails(&cloud, &cloud.param(&t, json!({"datasource": "odps_prod"})));
    assert_eq!(code, 2);
    assert!(
        err.contains("datasource \"odps_prod\" was not resolved"),
        "{err}"
    );
    let (code, err) = fails(&cloud, &cloud.param(&t, json!({"partiton": "pt=1"})));
    assert_eq!(code, 2);
    assert!(err.contains("unknown parameter \"partiton\""), "{err}");
}

#[test]
fn check_passes_on_a_good_configuration() {
    let cloud = Cloud::start();
    let t = table(&cloud);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("w.json");
    std::fs::write(
        &config,
        cloud
            .param(&t, json!({"partition": "pt=1,region=a"}))
            .to_string(),
    )
    .unwrap();
    let out = Command::new(common::binary("writer-odps"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}
