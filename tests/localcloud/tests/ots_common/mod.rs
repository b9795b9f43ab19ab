//! Shared by the Tablestore HTTP tests: a minimal signed client written from the spec.

#![allow(dead_code, clippy::unwrap_used)] // not every test uses every helper

use localcloud::ots::{self, pb};
use localcloud::{Credentials, ServiceHandle, ServiceOptions};
use prost::Message;

pub struct Client {
    pub handle: ServiceHandle,
    pub http: reqwest::Client,
    pub endpoint: String,
    pub creds: Credentials,
}

impl Client {
    pub async fn call(&self, action: &str, body: Vec<u8>) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut headers: Vec<(String, String)> = vec![
            (
                "x-ots-date".into(),
                chrono::Utc::now()
                    .format("%Y-%m-%dT%H:%M:%S.000Z")
                    .to_string(),
            ),
            ("x-ots-apiversion".into(), "2015-12-31".into()),
            ("x-ots-accesskeyid".into(), self.creds.access_key_id.clone()),
            ("x-ots-contentmd5".into(), ots::content_md5(&body)),
            ("x-ots-instancename".into(), ots::INSTANCE.into()),
        ];
        let sig = ots::sign_v2(
            &self.creds.access_key_secret,
            &ots::request_string_to_sign(action, &headers),
        );
        headers.push(("x-ots-signature".into(), sig));
        let mut req = self
            .http
            .post(format!("{}/{action}", self.endpoint))
            .body(body);
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        (status, headers, resp.bytes().await.unwrap().to_vec())
    }
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    &headers.iter().find(|(k, _)| k == name).unwrap().1
}

impl Client {
    /// Starts an emulator with `options` and a client for it.
    pub async fn start(options: ServiceOptions) -> Self {
        let creds = options.credentials[0].clone();
        let handle = ots::start(options).await.unwrap();
        Self {
            http: reqwest::Client::new(),
            endpoint: handle.endpoint(),
            creds,
            handle,
        }
    }

    /// Calls an action that must succeed and decodes its response.
    pub async fn ok<M: Message + Default>(&self, action: &str, request: impl Message) -> M {
        let (status, _, body) = self.call(action, request.encode_to_vec()).await;
        if status != 200 {
            panic!(
                "{action}: {status} {:?}",
                pb::Error::decode(body.as_slice())
            );
        }
        M::decode(body.as_slice()).unwrap()
    }

    /// Calls an action that must fail and returns its status and error.
    pub async fn err(&self, action: &str, request: impl Message) -> (u16, pb::Error) {
        let (status, _, body) = self.call(action, request.encode_to_vec()).await;
        assert_ne!(status, 200, "{action} succeeded");
        (status, pb::Error::decode(body.as_slice()).unwrap())
    }
}
