//! Fuzzes what writer-odps reads from MaxCompute: the table metadata (XML with the
//! schema JSON), partition pages, instance and task status XML, Tunnel upload sessions
//! (JSON), error bodies (JSON or XML), the discovered Tunnel endpoint, and the
//! column types.
//!
//! Invariants beyond "no panic": a session's block ids are exactly the `BlockID`s of
//! its `UploadedBlockList` that are block ids (never a wrapped one); a parsed column
//! type writes back to a type string that parses to the same type; an error always
//! has a code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;
use writer_odps::client::{parse_session, partition_page, table_info};
use writer_odps::http::{service_error, Endpoint, Request};
use writer_odps::schema::OdpsType;
use writer_odps::xml;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = table_info("GetTable", &text);
    let _ = partition_page("ListPartitions", &text);
    if let Ok(doc) = xml::parse(&text) {
        let _ = doc.child_text("Status");
        let _ = doc.child("Tasks").map(|t| t.children.len());
    }
    match parse_session("CreateUploadSession", data) {
        Ok(session) => {
            let json: Value = serde_json::from_slice(data).expect("parsed once");
            let expected: Vec<u32> = json["UploadedBlockList"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|b| b.get("BlockID").and_then(Value::as_u64))
                .filter_map(|b| u32::try_from(b).ok())
                .collect();
            assert_eq!(session.blocks, expected);
            assert_eq!(session.status, session.status.to_ascii_lowercase());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    let request = Request::new("Op", Method::GET, "/projects/p");
    let error = service_error(&request, 500, &HeaderMap::new(), data);
    assert!(error.code().is_some_and(|c| !c.is_empty()), "{error}");
    let _ = Endpoint::parse(&format!("http://{}", text.trim()));
    if let Some(first_line) = text.lines().next() {
        let parsed = OdpsType::parse(first_line);
        assert_eq!(
            OdpsType::parse(&type_string(&parsed)),
            parsed,
            "{first_line:?}"
        );
    }
});

/// The type as MaxCompute writes it.
fn type_string(t: &OdpsType) -> String {
    match t {
        OdpsType::Varchar(n) => format!("varchar({n})"),
        OdpsType::Char(n) => format!("char({n})"),
        OdpsType::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
        OdpsType::Other(name) => name.clone(),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}
