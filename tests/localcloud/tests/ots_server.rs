//! The running Tablestore emulator over HTTP: the SDK-produced PutRow vector is
//! accepted, the same body with one flipped byte is refused with the service's error,
//! and every response is signed.

#![allow(clippy::unwrap_used)] // test helpers, like the tests themselves, may unwrap

use localcloud::ots::{self, pb};
use localcloud::ServiceOptions;

mod ots_common;
use ots_common::{header, Client};
use prost::Message;
use serde_json::Value as Json;

fn put_row_vector() -> Vec<u8> {
    let path = format!(
        "{}/testdata/ots/plainbuffer.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let file: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "put_row_request")
        .unwrap();
    hex::decode(v["hex"].as_str().unwrap()).unwrap()
}

fn put_row(row: Vec<u8>) -> Vec<u8> {
    pb::WriteRowRequest {
        table_name: Some("orders".into()),
        row: Some(row),
        condition: Some(pb::Condition {
            row_existence: Some(0),
            column_condition: None,
        }),
        return_content: None,
        transaction_id: None,
    }
    .encode_to_vec()
}

#[tokio::test]
async fn vector_row_is_accepted_and_a_flipped_byte_is_refused() {
    let client = Client::start(ServiceOptions::loopback()).await;
    let creds = client.creds.clone();
    let create = pb::CreateTableRequest {
        table_meta: Some(pb::TableMeta {
            table_name: Some("orders".into()),
            primary_key: vec![
                pb::PrimaryKeySchema {
                    name: Some("pk_str".into()),
                    r#type: Some(2),
                    option: None,
                },
                pb::PrimaryKeySchema {
                    name: Some("pk_int".into()),
                    r#type: Some(1),
                    option: None,
                },
            ],
            defined_column: vec![],
        }),
        reserved_throughput: Some(pb::ReservedThroughput {
            capacity_unit: Some(pb::CapacityUnit::default()),
        }),
        // The vector's cells are versioned January 2024: allow that far from now.
        table_options: Some(pb::TableOptions {
            deviation_cell_version_in_sec: Some(20 * 365 * 86_400),
            ..Default::default()
        }),
        ..Default::default()
    };
    let (status, headers, body) = client.call("CreateTable", create.encode_to_vec()).await;
    assert_eq!(status, 200);
    // The response signature covers every x-ots-* header and the action.
    let mut signed: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| k.starts_with("x-ots-"))
        .cloned()
        .collect();
    signed.sort();
    let signer = ots::Signer::v2(&creds.access_key_id, &creds.access_key_secret);
    assert_eq!(
        header(&headers, "authorization"),
        signer.authorization("CreateTable", &signed)
    );
    assert_eq!(
        header(&headers, "x-ots-contentmd5"),
        ots::content_md5(&body)
    );
    assert_eq!(header(&headers, "x-ots-contenttype"), "protocol buffer");

    let good = put_row_vector();
    let (status, _, _) = client.call("PutRow", put_row(good.clone())).await;
    assert_eq!(status, 200);

    let at = good.windows(8).position(|w| w == b"user-001").unwrap() + 2;
    let mut bad = good;
    bad[at] ^= 0x01;
    let (status, headers, body) = client.call("PutRow", put_row(bad)).await;
    assert_eq!(status, 400);
    let err = pb::Error::decode(body.as_slice()).unwrap();
    assert_eq!(err.code, "OTSParameterInvalid");
    assert_eq!(
        err.message.as_deref(),
        Some("Cell data broken, checksum is mismatch.")
    );
    assert!(!header(&headers, "x-ots-requestid").is_empty());

    let (status, _, body) = client.call("NoSuchAction", Vec::new()).await;
    assert_eq!(status, 400);
    assert_eq!(
        pb::Error::decode(body.as_slice()).unwrap().code,
        "OTSParameterInvalid"
    );
    let resp = reqwest::Client::new()
        .get(format!("{}/ListTable", client.endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(
        pb::Error::decode(resp.bytes().await.unwrap()).unwrap().code,
        "OTSMethodNotAllowed"
    );
    client.handle.shutdown().await;
}
