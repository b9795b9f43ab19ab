//! The little XML the writer reads (OSS answers) and writes (Complete, Delete bodies).

use quick_xml::events::Event;
use quick_xml::Reader;

/// The text of every element named `tag`, in document order (empty elements give "").
pub fn texts(body: &[u8], tag: &str) -> Result<Vec<String>, String> {
    let mut reader = Reader::from_reader(body);
    let mut out = Vec::new();
    let mut inside = false;
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                inside = e.local_name().as_ref() == tag.as_bytes();
                if inside {
                    out.push(String::new());
                }
            }
            Ok(Event::Empty(e)) => {
                if e.local_name().as_ref() == tag.as_bytes() {
                    out.push(String::new());
                }
                inside = false;
            }
            Ok(Event::Text(t)) if inside => {
                let text = t.unescape().map_err(|e| e.to_string())?;
                if let Some(last) = out.last_mut() {
                    last.push_str(&text);
                }
            }
            Ok(Event::CData(c)) if inside => {
                if let Some(last) = out.last_mut() {
                    last.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Ok(Event::End(_)) => inside = false,
            Ok(Event::Eof) => break,
            Err(e) => return Err(format!("unreadable XML: {e}")),
            Ok(_) => {}
        }
        buf.clear();
    }
    Ok(out)
}

/// The first text of `tag`.
pub fn text(body: &[u8], tag: &str) -> Result<Option<String>, String> {
    Ok(texts(body, tag)?.into_iter().next())
}

/// One page of a ListObjectsV2 answer (`encoding-type=url`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectsPage {
    /// The keys, URL-decoded.
    pub keys: Vec<String>,
    pub truncated: bool,
    /// `NextContinuationToken`, URL-decoded; `None` when absent or empty.
    pub next_token: Option<String>,
}

/// Reads a ListObjectsV2 answer.
pub fn objects_page(body: &[u8]) -> Result<ObjectsPage, String> {
    let keys = texts(body, "Key")?.iter().map(|k| url_decode(k)).collect();
    let truncated = text(body, "IsTruncated")?.as_deref() == Some("true");
    let next_token = text(body, "NextContinuationToken")?
        .filter(|t| !t.is_empty())
        .map(|t| url_decode(&t));
    Ok(ObjectsPage {
        keys,
        truncated,
        next_token,
    })
}

/// One page of a ListMultipartUploads answer (`encoding-type=url`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UploadsPage {
    /// (key URL-decoded, upload id).
    pub uploads: Vec<(String, String)>,
    pub truncated: bool,
    /// `NextKeyMarker` (URL-decoded) and `NextUploadIdMarker`, empty when absent.
    pub next_key: String,
    pub next_upload_id: String,
}

/// Reads a ListMultipartUploads answer; as many keys as upload ids, or an error.
pub fn uploads_page(body: &[u8]) -> Result<UploadsPage, String> {
    let keys = texts(body, "Key")?;
    let ids = texts(body, "UploadId")?;
    if keys.len() != ids.len() {
        return Err(format!("{} keys but {} upload ids", keys.len(), ids.len()));
    }
    Ok(UploadsPage {
        uploads: keys.iter().map(|k| url_decode(k)).zip(ids).collect(),
        truncated: text(body, "IsTruncated")?.as_deref() == Some("true"),
        next_key: url_decode(&text(body, "NextKeyMarker")?.unwrap_or_default()),
        next_upload_id: text(body, "NextUploadIdMarker")?.unwrap_or_default(),
    })
}

/// The `Code`, `Message` and `RequestId` of an error answer; empty when absent or
/// when the body is not XML.
pub fn error_fields(body: &[u8]) -> (String, String, String) {
    let field = |tag| text(body, tag).ok().flatten().unwrap_or_default();
    (field("Code"), field("Message"), field("RequestId"))
}

/// Escapes text for an XML element.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// Decodes `%XX` (the `encoding-type=url` form of keys in listings).
pub fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_texts_and_decodes_keys() {
        let body = br#"<?xml version="1.0"?><R><Contents><Key>a%2Fb%20c</Key></Contents><Contents><Key>x&amp;y</Key></Contents><Empty/><IsTruncated>false</IsTruncated></R>"#;
        assert_eq!(texts(body, "Key").unwrap(), vec!["a%2Fb%20c", "x&y"]);
        assert_eq!(url_decode("a%2Fb%20c%E6%B5%8B"), "a/b c测");
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(text(body, "IsTruncated").unwrap().as_deref(), Some("false"));
        assert_eq!(texts(body, "Empty").unwrap(), vec![""]);
        assert_eq!(escape("a<b&\"c"), "a&lt;b&amp;&quot;c");
    }

    #[test]
    fn pages_of_listings() {
        let page = objects_page(br#"<R><IsTruncated>true</IsTruncated><Contents><Key>a%2Fb</Key></Contents><NextContinuationToken>t%3D</NextContinuationToken></R>"#).unwrap();
        assert_eq!(page.keys, vec!["a/b"]);
        assert!(page.truncated);
        assert_eq!(page.next_token.as_deref(), Some("t="));
        let last = objects_page(b"<R><NextContinuationToken></NextContinuationToken></R>").unwrap();
        assert_eq!(last, ObjectsPage::default());
        let uploads = uploads_page(br#"<R><Upload><Key>k%20</Key><UploadId>u1</UploadId></Upload><IsTruncated>true</IsTruncated><NextKeyMarker>k%20</NextKeyMarker><NextUploadIdMarker>u1</NextUploadIdMarker></R>"#).unwrap();
        assert_eq!(uploads.uploads, vec![("k ".to_owned(), "u1".to_owned())]);
        assert!(uploads.truncated);
        assert_eq!(
            (uploads.next_key.as_str(), uploads.next_upload_id.as_str()),
            ("k ", "u1")
        );
        let err =
            uploads_page(b"<R><Key>a</Key><Key>b</Key><UploadId>u</UploadId></R>").unwrap_err();
        assert!(err.contains("2 keys but 1 upload ids"), "{err}");
        assert!(objects_page(b"<R><Key>&bogus;</Key></R>").is_err());
        let (code, message, request_id) = error_fields(
            b"<Error><Code>C</Code><Message>M</Message><RequestId>R</RequestId></Error>",
        );
        assert_eq!(
            (code.as_str(), message.as_str(), request_id.as_str()),
            ("C", "M", "R")
        );
        assert_eq!(error_fields(b"not xml <"), Default::default());
    }
}
