//! The MaxCompute emulator over HTTP, with requests signed here by hand (v2 scheme):
//! discovery, auth failures in each endpoint's error format, a block upload from the
//! vectors (raw and deflate), commit visibility, and the control routes.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::Write;

use base64::Engine;
use hmac::{Hmac, Mac};
use localcloud::{odps, ServiceOptions};
use serde_json::Value as Json;

struct Client {
    http: reqwest::Client,
    base: String,
    id: String,
    secret: String,
}

impl Client {
    /// Signs `method path?query` with the v2 scheme. `resource` is the path relative
    /// to the endpoint (no `/api`); `query` pairs are already decoded.
    #[allow(clippy::too_many_arguments)] // a test helper mirroring one HTTP request
    async fn send(
        &self,
        method: reqwest::Method,
        mount: &str,
        resource: &str,
        query: &[(&str, &str)],
        content_type: &str,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let mut sorted: Vec<&(&str, &str)> = query.iter().collect();
        sorted.sort();
        let params: Vec<String> = sorted
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    (*k).to_owned()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        let canonical = format!(
            "{}\n\n{content_type}\n{date}\n{}{}",
            method.as_str(),
            resource,
            if params.is_empty() {
                String::new()
            } else {
                format!("?{}", params.join("&"))
            }
        );
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(self.secret.as_bytes()).unwrap();
        mac.update(canonical.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let mut req = self
            .http
            .request(method, format!("{}{mount}{resource}", self.base))
            .query(query)
            .header("Date", date)
            .header("Authorization", format!("ODPS {}:{sig}", self.id))
            .body(body);
        if !content_type.is_empty() {
            req = req.header("Content-Type", content_type);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }
}

async fn sql(c: &Client, query: &str) {
    let body = format!(
        "<?xml version=\"1.0\"?><Instance><Job><Priority>9</Priority><Tasks><SQL><Name>t1</Name>\
         <Query><![CDATA[{query}]]></Query></SQL></Tasks></Job></Instance>"
    );
    let r = c
        .send(
            reqwest::Method::POST,
            "/api",
            "/projects/localcloud/instances",
            &[],
            "application/xml",
            body.into_bytes(),
            &[],
        )
        .await;
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let id = location.rsplit('/').next().unwrap().to_owned();
    let status = c
        .send(
            reqwest::Method::GET,
            "/api",
            &format!("/projects/localcloud/instances/{id}"),
            &[("taskstatus", "")],
            "",
            vec![],
            &[],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        status.contains("<Name>t1</Name>") && status.contains("<Status>Success</Status>"),
        "{status}"
    );
}

fn vector_block(deflate: bool) -> Vec<u8> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/odps/block_basic.json");
    let v: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let raw = hex::decode(v["block_hex_pyodps_cython"].as_str().unwrap()).unwrap();
    if !deflate {
        return raw;
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&raw).unwrap();
    z.finish().unwrap()
}

#[tokio::test]
async fn upload_commit_and_errors_over_http() {
    let options = ServiceOptions::loopback();
    let creds = options.credentials[0].clone();
    let handle = odps::start(options).await.unwrap();
    assert_eq!(handle.info["project"], "localcloud");
    assert_eq!(handle.info["tunnel_endpoint"], handle.endpoint().as_str());
    let c = Client {
        http: reqwest::Client::new(),
        base: handle.endpoint(),
        id: creds.access_key_id.clone(),
        secret: creds.access_key_secret.clone(),
    };
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;

    // Discovery answers host:port of this very port.
    let r = c
        .send(
            get.clone(),
            "/api",
            "/projects/localcloud/tunnel",
            &[("service", "")],
            "",
            vec![],
            &[],
        )
        .await;
    assert_eq!(r.text().await.unwrap(), handle.addr().to_string());

    // A bad signature: XML on the service, JSON on the tunnel.
    let bad = Client {
        secret: "wrong".into(),
        http: reqwest::Client::new(),
        base: c.base.clone(),
        id: c.id.clone(),
    };
    let r = bad
        .send(
            get.clone(),
            "/api",
            "/projects/localcloud",
            &[],
            "",
            vec![],
            &[],
        )
        .await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("x-odps-request-id"));
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("<Code>SignatureNotMatch</Code>"));
    let r = bad
        .send(
            post.clone(),
            "",
            "/projects/localcloud/tables/t",
            &[("uploads", "")],
            "",
            vec![],
            &[],
        )
        .await;
    let body: Json = r.json().await.unwrap();
    assert_eq!(body["Code"], "SignatureNotMatch");

    sql(&c, "create table t (id bigint, name string, score double, ok boolean, ts datetime, amount decimal)").await;
    let r = c
        .send(
            post.clone(),
            "",
            "/projects/localcloud/tables/t",
            &[("uploads", "")],
            "",
            vec![],
            &[],
        )
        .await;
    assert_eq!(r.status(), 201);
    let session: Json = r.json().await.unwrap();
    assert_eq!(session["Status"], "normal");
    assert_eq!(session["Schema"]["columns"][5]["type"], "decimal");
    let id = session["UploadID"].as_str().unwrap().to_owned();
    let octets = "application/octet-stream";
    for (block, deflate) in [("0", false), ("1", true)] {
        let extra: &[(&str, &str)] = if deflate {
            &[("Content-Encoding", "deflate")]
        } else {
            &[]
        };
        let q = [("uploadid", id.as_str()), ("blockid", block)];
        let r = c
            .send(
                reqwest::Method::PUT,
                "",
                "/projects/localcloud/tables/t",
                &q,
                octets,
                vector_block(deflate),
                extra,
            )
            .await;
        assert_eq!(r.status(), 200, "block {block}");
    }
    let mut corrupt = vector_block(false);
    corrupt[3] ^= 0x20;
    let q = [("uploadid", id.as_str()), ("blockid", "2")];
    let r = c
        .send(
            reqwest::Method::PUT,
            "",
            "/projects/localcloud/tables/t",
            &q,
            octets,
            corrupt,
            &[],
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: Json = r.json().await.unwrap();
    assert_eq!(body["Code"], "MalformedDataStream");

    let dump_url = format!("{}/-/odps/projects/localcloud/tables/t", c.base);
    let rows = |d: &Json| d["partitions"][0]["rows"].as_array().unwrap().len();
    let before: Json = reqwest::get(&dump_url).await.unwrap().json().await.unwrap();
    assert_eq!(rows(&before), 0, "uncommitted blocks are invisible");
    let q = [("uploadid", id.as_str())];
    let r = c
        .send(
            post.clone(),
            "",
            "/projects/localcloud/tables/t",
            &q,
            "",
            vec![],
            &[],
        )
        .await;
    let committed: Json = r.json().await.unwrap();
    assert_eq!(committed["Status"], "closed");
    let listed = committed["UploadedBlockList"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    // The commit moves the rows into the table; the list still counts them.
    assert!(listed.iter().all(|b| b["RecordCount"] == 3), "{listed:?}");
    let after: Json = reqwest::get(&dump_url).await.unwrap().json().await.unwrap();
    assert_eq!(rows(&after), 6);
    assert_eq!(after["partitions"][0]["rows"][1][1], "bob 中文");
    let r = c
        .send(
            post,
            "",
            "/projects/localcloud/tables/t",
            &q,
            "",
            vec![],
            &[],
        )
        .await;
    assert_eq!(r.status(), 409);
    // A committed session answers `closed` until it expires (24 h after creation,
    // here by ageing it): then whether it committed can no longer be learned.
    let status = || async {
        let r = c
            .send(
                reqwest::Method::GET,
                "",
                "/projects/localcloud/tables/t",
                &q,
                "",
                vec![],
                &[],
            )
            .await;
        (r.status().as_u16(), r.json::<Json>().await.unwrap())
    };
    let (code, body) = status().await;
    assert_eq!((code, body["Status"].as_str()), (200, Some("closed")));
    let age = |id: String, body: &'static str| {
        let url = format!("{}/-/odps/uploads/{id}/age", c.base);
        async move {
            let r = reqwest::Client::new().post(url).body(body).send().await;
            r.unwrap().status().as_u16()
        }
    };
    assert_eq!(age(id.clone(), "{\"age_ms\": 86000000}").await, 200);
    assert_eq!(status().await.0, 200);
    assert_eq!(age(id.clone(), "{\"age_ms\": 400000}").await, 200);
    let (code, body) = status().await;
    assert_eq!((code, body["Code"].as_str()), (409, Some("StatusConflict")));
    assert!(
        body["Message"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    assert_eq!(age("nope".into(), "{\"age_ms\": 1}").await, 404);
    assert_eq!(age(id.clone(), "{}").await, 400);

    let log: Json = reqwest::get(format!("{}/-/odps/requests", c.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ops: Vec<&str> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["operation"].as_str().unwrap())
        .collect();
    assert!(
        ops.contains(&"UploadBlock") && ops.contains(&"CommitUpload"),
        "{ops:?}"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn skewed_dates_are_refused() {
    let options = ServiceOptions::loopback();
    let creds = options.credentials[0].clone();
    let handle = odps::start(options).await.unwrap();
    handle.clock.advance_ms(16 * 60 * 1000);
    let c = Client {
        http: reqwest::Client::new(),
        base: handle.endpoint(),
        id: creds.access_key_id.clone(),
        secret: creds.access_key_secret.clone(),
    };
    let r = c
        .send(
            reqwest::Method::GET,
            "/api",
            "/projects/localcloud",
            &[],
            "",
            vec![],
            &[],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("RequestTimeTooSkewed"));
    handle.clock.advance_ms(-16 * 60 * 1000);
    let r = c
        .send(
            reqwest::Method::GET,
            "/api",
            "/projects/localcloud",
            &[],
            "",
            vec![],
            &[],
        )
        .await;
    assert_eq!(r.status(), 200);
    handle.shutdown().await;
}
