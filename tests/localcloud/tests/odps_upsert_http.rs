//! Upsert sessions on a Delta table over HTTP, with requests signed here by hand
//! (v2 scheme) and blocks built with the emulator's encoder: what the service
//! refuses (wrong bucket, slot or worker, record count, operation, NULL key,
//! checksum, partial update where the table does not enable it, a non-Delta table,
//! closed or expired sessions) and what it applies (upserts, deletes, partial
//! updates, idempotent commit, abort).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use base64::Engine;
use hmac::{Hmac, Mac};
use localcloud::odps::delta;
use localcloud::odps::types::{OdpsType, Row, Value};
use localcloud::odps::wire::encode_block;
use localcloud::{odps, ServiceOptions};
use reqwest::Method;
use serde_json::Value as Json;

struct Client {
    http: reqwest::Client,
    base: String,
    id: String,
    secret: String,
}

impl Client {
    /// Sends a v2-signed request to the tunnel (`mount` "") or the service ("/api").
    async fn send(
        &self,
        method: Method,
        mount: &str,
        resource: &str,
        query: &[(&str, &str)],
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let content_type = if mount == "/api" && !body.is_empty() {
            "application/xml"
        } else {
            ""
        };
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
        let query_text = if params.is_empty() {
            String::new()
        } else {
            format!("?{}", params.join("&"))
        };
        let canonical = format!(
            "{}\n\n{content_type}\n{date}\n{resource}{query_text}",
            method.as_str()
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

    async fn sql(&self, query: &str) {
        let body = format!(
            "<?xml version=\"1.0\"?><Instance><Job><Priority>9</Priority><Tasks><SQL><Name>t1</Name>\
             <Query><![CDATA[{query}]]></Query></SQL></Tasks></Job></Instance>"
        );
        let r = self
            .send(
                Method::POST,
                "/api",
                "/projects/localcloud/instances",
                &[],
                body.into_bytes(),
                &[],
            )
            .await;
        assert_eq!(r.status(), 201);
        let id = r.headers()["location"]
            .to_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        let status = self
            .send(
                Method::GET,
                "/api",
                &format!("/projects/localcloud/instances/{id}"),
                &[("taskstatus", "")],
                vec![],
                &[],
            )
            .await
            .text()
            .await
            .unwrap();
        assert!(
            status.contains("<Status>Success</Status>"),
            "{query}: {status}"
        );
    }
}

/// Table `(k bigint, v string, n bigint)`, key `k`, 4 buckets.
const COLUMNS: [OdpsType; 3] = [OdpsType::Bigint, OdpsType::String, OdpsType::Bigint];

fn upsert_types() -> Vec<OdpsType> {
    let array = || OdpsType::Array(Box::new(OdpsType::Bigint));
    let mut t = COLUMNS.to_vec();
    t.extend([
        OdpsType::Bigint,
        OdpsType::Bigint,
        OdpsType::Tinyint,
        array(),
        array(),
    ]);
    t
}

fn s(text: &str) -> Option<Value> {
    Some(Value::Bytes(text.as_bytes().to_vec().into()))
}

/// One upsert record: data columns, then the five meta columns.
fn record(k: Option<i64>, v: &str, n: Option<i64>, op: u8, value_cols: &[i64]) -> Row {
    vec![
        k.map(Value::Int),
        s(v),
        n.map(Value::Int),
        None,
        None,
        Some(Value::Int(i64::from(op))),
        None,
        Some(Value::Array(
            value_cols.iter().map(|c| Some(Value::Int(*c))).collect(),
        )),
    ]
}

fn bucket(k: i64) -> u32 {
    let key = Value::Int(k);
    delta::bucket_of(
        delta::record_hash(&[&OdpsType::Bigint], &[Some(&key)]).unwrap(),
        4,
    )
}

struct Session<'a> {
    c: &'a Client,
    path: String,
    id: String,
    doc: Json,
}

impl Session<'_> {
    fn slot_of(&self, bucket: u32) -> (String, String) {
        let slot = self.doc["slots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["buckets"].as_array().unwrap().contains(&bucket.into()))
            .unwrap();
        (
            slot["slot_id"].as_str().unwrap().to_owned(),
            slot["worker_addr"].as_str().unwrap().to_owned(),
        )
    }

    /// PUTs `rows` to `bucket` with the right slot and worker unless overridden.
    async fn put(&self, bucket: u32, rows: &[Row], tweak: &[(&str, &str)]) -> reqwest::Response {
        let (slot, worker) = self.slot_of(bucket);
        let body = encode_block(rows, &upsert_types());
        let (b, n) = (bucket.to_string(), rows.len().to_string());
        let mut query = vec![
            ("upsertid", self.id.as_str()),
            ("bucketid", b.as_str()),
            ("slotid", slot.as_str()),
            ("record_count", n.as_str()),
        ];
        let mut headers = vec![("odps-tunnel-routed-server", worker.as_str())];
        for (k, v) in tweak {
            query.retain(|(q, _)| q != k);
            headers.retain(|(h, _)| h != k);
            if k.starts_with("odps-") {
                if !v.is_empty() {
                    headers.push((k, v));
                }
            } else {
                query.push((k, v));
            }
        }
        self.c
            .send(Method::PUT, "", &self.path, &query, body, &headers)
            .await
    }

    async fn call(&self, method: Method) -> reqwest::Response {
        let (_, worker) = self.slot_of(0);
        self.c
            .send(
                method,
                "",
                &self.path,
                &[("upsertid", &self.id)],
                vec![],
                &[("odps-tunnel-routed-server", &worker)],
            )
            .await
    }
}

async fn create<'a>(c: &'a Client, table: &str, slots: &str) -> Session<'a> {
    let path = format!("/projects/localcloud/tables/{table}/upserts");
    let r = c
        .send(Method::POST, "", &path, &[("slotnum", slots)], vec![], &[])
        .await;
    assert_eq!(r.status(), 200);
    let doc: Json = r.json().await.unwrap();
    Session {
        c,
        path,
        id: doc["id"].as_str().unwrap().to_owned(),
        doc,
    }
}

async fn code(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let body: Json = r.json().await.unwrap();
    (
        status,
        body["Code"].as_str().unwrap_or("").to_owned(),
        body["Message"].as_str().unwrap_or("").to_owned(),
    )
}

async fn rows(base: &str, table: &str) -> Vec<Json> {
    let url = format!("{base}/-/odps/projects/localcloud/tables/{table}");
    let dump: Json = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(dump["primary_key"], serde_json::json!(["k"]));
    assert_eq!(dump["properties"]["transactional"], "true");
    let mut rows = dump["partitions"][0]["rows"].as_array().unwrap().clone();
    rows.sort_by_key(|r| r[0].as_i64());
    rows
}

#[tokio::test]
async fn upsert_sessions_over_http() {
    let options = ServiceOptions::loopback();
    let creds = options.credentials[0].clone();
    let handle = odps::start(options).await.unwrap();
    let c = Client {
        http: reqwest::Client::new(),
        base: handle.endpoint(),
        id: creds.access_key_id.clone(),
        secret: creds.access_key_secret.clone(),
    };
    c.sql("CREATE TABLE d (k bigint, v string, n bigint, PRIMARY KEY (k)) TBLPROPERTIES ('transactional'='true', 'write.bucket.num'='4', 'acid.partial.fields.update.enable'='true')").await;
    c.sql("CREATE TABLE full_only (k bigint PRIMARY KEY, v string, n bigint) TBLPROPERTIES ('transactional'='true', 'write.bucket.num'='4')").await;
    c.sql("CREATE TABLE plain (k bigint, v string, n bigint)")
        .await;

    // Only Delta tables have upsert sessions; slotnum is required.
    let r = c
        .send(
            Method::POST,
            "",
            "/projects/localcloud/tables/plain/upserts",
            &[("slotnum", "1")],
            vec![],
            &[],
        )
        .await;
    assert_eq!(code(r).await.1, "InvalidArgument");
    let r = c
        .send(
            Method::POST,
            "",
            "/projects/localcloud/tables/d/upserts",
            &[],
            vec![],
            &[],
        )
        .await;
    assert_eq!(code(r).await.0, 400);

    let sess = create(&c, "d", "2").await;
    assert_eq!(sess.doc["hash_key"], serde_json::json!(["k"]));
    assert_eq!(sess.doc["enable_partial_update"], true);
    assert_eq!(sess.doc["slots"].as_array().unwrap().len(), 2);
    let keys: Vec<i64> = (0..40).collect();
    let (k0, k1) = (
        keys[0],
        *keys.iter().find(|&&k| bucket(k) != bucket(0)).unwrap(),
    );
    let b0 = bucket(k0);

    // Refusals; none of them changes anything.
    let good = [record(Some(k0), "a", Some(1), b'U', &[])];
    let wrong = bucket(k1);
    let (st, cd, msg) = code(sess.put(wrong, &good, &[]).await).await;
    assert_eq!((st, cd.as_str()), (400, "InvalidArgument"), "{msg}");
    assert!(msg.contains(&format!("hashes to bucket {b0}")), "{msg}");
    let (st, _, msg) = code(sess.put(b0, &good, &[("record_count", "2")]).await).await;
    assert_eq!(st, 400, "{msg}");
    let other_slot = if sess.slot_of(b0).0 == "0" { "1" } else { "0" };
    let (st, _, msg) = code(sess.put(b0, &good, &[("slotid", other_slot)]).await).await;
    assert!(st == 400 && msg.contains("slotid"), "{msg}");
    let r = sess
        .put(b0, &good, &[("odps-tunnel-routed-server", "10.0.0.1:1")])
        .await;
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers()["odps-tunnel-routed-server"].to_str().unwrap(),
        sess.slot_of(b0).1
    );
    let (st, _, msg) = code(
        sess.put(b0, &good, &[("odps-tunnel-routed-server", "")])
            .await,
    )
    .await;
    assert!(
        st == 400 && msg.contains("odps-tunnel-routed-server"),
        "{msg}"
    );
    let bad_op = [record(Some(k0), "a", Some(1), b'X', &[])];
    assert_eq!(
        code(sess.put(b0, &bad_op, &[]).await).await.1,
        "MalformedDataStream"
    );
    let null_key = [record(None, "a", Some(1), b'U', &[])];
    let (_, _, msg) = code(sess.put(0, &null_key, &[]).await).await;
    assert!(msg.contains("primary key column k is NULL"), "{msg}");
    let mut corrupt = encode_block(&good, &upsert_types());
    corrupt[3] ^= 1;
    let (slot, worker) = sess.slot_of(b0);
    let b = b0.to_string();
    let r = c
        .send(
            Method::PUT,
            "",
            &sess.path,
            &[
                ("upsertid", &sess.id),
                ("bucketid", &b),
                ("slotid", &slot),
                ("record_count", "1"),
            ],
            corrupt,
            &[("odps-tunnel-routed-server", &worker)],
        )
        .await;
    assert_eq!(code(r).await.1, "MalformedDataStream");
    // A key column sent with another type's encoding (a string where k is bigint).
    let mut string_key_types = upsert_types();
    string_key_types[0] = OdpsType::String;
    let wrong_type = encode_block(
        &[vec![
            s("1"),
            s("a"),
            None,
            None,
            None,
            Some(Value::Int(85)),
            None,
            None,
        ]],
        &string_key_types,
    );
    let r = c
        .send(
            Method::PUT,
            "",
            &sess.path,
            &[
                ("upsertid", &sess.id),
                ("bucketid", &b),
                ("slotid", &slot),
                ("record_count", "1"),
            ],
            wrong_type,
            &[("odps-tunnel-routed-server", &worker)],
        )
        .await;
    let (_, cd, msg) = code(r).await;
    assert!(
        cd == "MalformedDataStream" && msg.contains("wire type"),
        "{msg}"
    );
    let listed: Json = reqwest::get(format!("{}/-/odps/upserts", c.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["upserts"][0]["pending_changes"], 0);

    // Upserts, deletes and a partial update (column_id 2 = n), in order per key.
    for &k in &keys {
        let r = sess
            .put(
                bucket(k),
                &[record(Some(k), &format!("v{k}"), Some(k), b'U', &[])],
                &[],
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let later = [
        record(Some(k0), "ignored", Some(100), b'U', &[2]),
        record(Some(k0), "", None, b'D', &[]),
        record(Some(k0), "back", Some(7), b'U', &[]),
        record(Some(k0), "partial", Some(8), b'U', &[1]),
    ];
    assert_eq!(sess.put(b0, &later, &[]).await.status(), 200);
    assert_eq!(
        sess.put(bucket(k1), &[record(Some(k1), "", None, b'D', &[])], &[])
            .await
            .status(),
        200
    );
    assert!(
        rows(&c.base, "d").await.is_empty(),
        "nothing is visible before the commit"
    );
    let r = sess.call(Method::POST).await;
    assert_eq!(r.json::<Json>().await.unwrap()["status"], "committed");
    let got = rows(&c.base, "d").await;
    assert_eq!(got.len(), keys.len() - 1);
    assert_eq!(got[0], serde_json::json!([k0, "partial", 7]));
    assert!(got.iter().all(|r| r[0] != k1));
    // Commit again: committed, nothing applied twice. Data afterwards: StatusConflict.
    let r = sess.call(Method::POST).await;
    assert_eq!(r.json::<Json>().await.unwrap()["status"], "committed");
    assert_eq!(rows(&c.base, "d").await, got);
    assert_eq!(
        code(sess.put(b0, &good, &[]).await).await.1,
        "StatusConflict"
    );
    assert_eq!(
        code(sess.call(Method::DELETE).await).await.1,
        "StatusConflict"
    );

    // A table without the partial-update property refuses __value_cols.
    let full = create(&c, "full_only", "1").await;
    assert_eq!(full.doc["enable_partial_update"], false);
    let partial = [record(Some(k0), "x", None, b'U', &[1])];
    let (_, _, msg) = code(full.put(b0, &partial, &[]).await).await;
    assert!(msg.contains("acid.partial.fields.update.enable"), "{msg}");

    // Abort: nothing becomes visible, a commit afterwards is refused.
    assert_eq!(full.put(b0, &good, &[]).await.status(), 200);
    let r = full.call(Method::DELETE).await;
    assert_eq!(r.json::<Json>().await.unwrap()["status"], "aborted");
    assert_eq!(
        code(full.call(Method::POST).await).await.1,
        "StatusConflict"
    );
    assert!(rows(&c.base, "full_only").await.is_empty());

    // Expiry (the session is aged through the control route) and unknown ids.
    let old = create(&c, "full_only", "1").await;
    let aged = reqwest::Client::new()
        .post(format!("{}/-/odps/upserts/{}/age", c.base, old.id))
        .body(r#"{"age_ms": 86400000}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(aged.status(), 200);
    let r = old.call(Method::GET).await;
    assert_eq!(r.json::<Json>().await.unwrap()["status"], "expired");
    assert_eq!(
        code(old.put(b0, &good, &[]).await).await.1,
        "StatusConflict"
    );
    let r = c
        .send(
            Method::GET,
            "",
            &old.path,
            &[("upsertid", "nope")],
            vec![],
            &[],
        )
        .await;
    assert_eq!(
        code(r).await,
        (
            404,
            "UpsertSessionNotFound".into(),
            "upsert session nope does not exist".into()
        )
    );
}
