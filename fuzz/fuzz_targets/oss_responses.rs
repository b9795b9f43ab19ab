//! Fuzzes what writer-oss reads from OSS answers: ListObjectsV2 and
//! ListMultipartUploads pages, InitiateMultipartUpload's `UploadId`, the failures of
//! DeleteMultipleObjects and error bodies (`writer_oss::xml`).
//!
//! Invariants beyond "no panic": every text read from an element writes back (escaped,
//! and URL-encoded for keys) as XML that reads to the same text; a truncated uploads
//! page has as many keys as upload ids.
#![no_main]

use libfuzzer_sys::fuzz_target;
use writer_oss::xml;

/// `%XX` for every byte that is not unreserved (what OSS does with `encoding-type=url`).
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn rewritten(tag: &str, values: &[String], encode: bool) -> Vec<u8> {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><R>");
    for v in values {
        let v = if encode { url_encode(v) } else { v.clone() };
        out.push_str(&format!("<{tag}>{}</{tag}>", xml::escape(&v)));
    }
    out.push_str("</R>");
    out.into_bytes()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(page) = xml::objects_page(data) {
        let again = xml::objects_page(&rewritten("Key", &page.keys, true)).expect("our XML");
        assert_eq!(again.keys, page.keys);
        if let Some(token) = &page.next_token {
            let body = rewritten("NextContinuationToken", std::slice::from_ref(token), true);
            assert_eq!(
                xml::objects_page(&body)
                    .expect("our XML")
                    .next_token
                    .as_ref(),
                Some(token)
            );
        }
    }
    match xml::uploads_page(data) {
        Ok(page) => {
            let (keys, ids): (Vec<String>, Vec<String>) = page.uploads.iter().cloned().unzip();
            let again = xml::objects_page(&rewritten("Key", &keys, true)).expect("our XML");
            assert_eq!(again.keys, keys);
            assert_eq!(
                xml::texts(&rewritten("UploadId", &ids, false), "UploadId").expect("our XML"),
                ids
            );
        }
        Err(e) => assert!(!e.is_empty()),
    }
    let _ = xml::text(data, "UploadId");
    let _ = xml::texts(data, "Key");
    let (code, message, request_id) = xml::error_fields(data);
    for (tag, value) in [
        ("Code", code),
        ("Message", message),
        ("RequestId", request_id),
    ] {
        let body = rewritten(tag, std::slice::from_ref(&value), false);
        assert_eq!(
            xml::text(&body, tag).expect("our XML").unwrap_or_default(),
            value
        );
    }
    let text = String::from_utf8_lossy(data);
    assert_eq!(xml::url_decode(&url_encode(&text)), text);
});
