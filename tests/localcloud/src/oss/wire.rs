//! OSS XML: writing response bodies and error bodies, reading request bodies
//! (`<Delete>`, `<CompleteMultipartUpload>`), plus the time formats OSS uses.

use quick_xml::events::Event;
use quick_xml::Reader;

use super::error::{OssError, OssResult};

/// The declaration every OSS XML body starts with.
pub const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// A small XML writer: elements and escaped text, no attributes (OSS uses none).
pub struct XmlWriter {
    out: String,
    open: Vec<String>,
}

impl XmlWriter {
    /// Starts a document with the declaration and the root element.
    pub fn new(root: &str) -> Self {
        let mut writer = Self {
            out: XML_DECLARATION.to_owned(),
            open: Vec::new(),
        };
        writer.open(root);
        writer
    }

    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.open.push(name.to_owned());
        self
    }

    pub fn close(&mut self) -> &mut Self {
        if let Some(name) = self.open.pop() {
            self.out.push_str("</");
            self.out.push_str(&name);
            self.out.push('>');
        }
        self
    }

    /// `<name>text</name>` with `text` escaped.
    pub fn elem(&mut self, name: &str, text: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.out.push_str(&escape(text));
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// Closes every open element and returns the document.
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.close();
        }
        self.out
    }
}

/// Escapes `& < > " '` for XML text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The `<Error>` body of an error response.
pub fn error_xml(error: &OssError, request_id: &str, host_id: &str) -> String {
    let mut xml = XmlWriter::new("Error");
    xml.elem("Code", &error.code)
        .elem("Message", &error.message)
        .elem("RequestId", request_id)
        .elem("HostId", host_id);
    for (name, value) in &error.details {
        xml.elem(name, value);
    }
    if let Some(ec) = error.ec {
        xml.elem("EC", ec);
    }
    xml.finish()
}

/// ISO 8601 UTC as in OSS XML: `2024-01-02T03:04:05.000Z`. OSS times have whole
/// seconds, and oss2 (`utils._ISO8601_RE`) only accepts a literal `.000` fraction.
pub fn iso8601(ms: i64) -> String {
    chrono::DateTime::from_timestamp(ms.div_euclid(1000), 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S.000Z")
        .to_string()
}

/// RFC 1123 GMT, as in the `Date` and `Last-Modified` headers.
pub fn http_date(ms: i64) -> String {
    let secs = u64::try_from(ms.max(0) / 1000).unwrap_or(0);
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// A parsed XML element: name, text content and child elements.
#[derive(Debug, Default)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }
}

/// Parses a whole document into its root element; any syntax error is `MalformedXML`.
pub fn parse(body: &[u8]) -> OssResult<Element> {
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| OssError::malformed_xml(&e.to_string()))?;
        match event {
            Event::Start(start) => stack.push(Element {
                name: String::from_utf8_lossy(start.name().as_ref()).into_owned(),
                ..Element::default()
            }),
            Event::Empty(start) => {
                let element = Element {
                    name: String::from_utf8_lossy(start.name().as_ref()).into_owned(),
                    ..Element::default()
                };
                attach(&mut stack, &mut root, element)?;
            }
            Event::End(_) => {
                let element = stack
                    .pop()
                    .ok_or_else(|| OssError::malformed_xml("unbalanced end tag"))?;
                attach(&mut stack, &mut root, element)?;
            }
            Event::Text(text) => {
                let text = text
                    .unescape()
                    .map_err(|e| OssError::malformed_xml(&e.to_string()))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            Event::CData(data) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&data));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(OssError::malformed_xml("unclosed element"));
    }
    root.ok_or_else(|| OssError::malformed_xml("empty document"))
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, element: Element) -> OssResult<()> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None if root.is_none() => *root = Some(element),
        None => return Err(OssError::malformed_xml("more than one root element")),
    }
    Ok(())
}

/// A `<Delete>` request body.
#[derive(Debug, PartialEq)]
pub struct DeleteRequest {
    pub quiet: bool,
    pub keys: Vec<String>,
}

/// Parses `<Delete><Quiet/><Object><Key/></Object>…</Delete>` (at most 1000 objects).
pub fn parse_delete(body: &[u8]) -> OssResult<DeleteRequest> {
    let root = parse(body)?;
    if root.name != "Delete" {
        return Err(OssError::malformed_xml("the root element must be Delete"));
    }
    let quiet = match root.child("Quiet").map(|q| q.text.trim()) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(OssError::malformed_xml("Quiet must be true or false")),
    };
    let keys = root
        .children_named("Object")
        .map(|object| {
            object
                .child("Key")
                .map(|k| k.text.clone())
                .ok_or_else(|| OssError::malformed_xml("an Object has no Key"))
        })
        .collect::<OssResult<Vec<_>>>()?;
    if keys.len() > 1000 {
        return Err(OssError::malformed_xml("more than 1000 objects"));
    }
    Ok(DeleteRequest { quiet, keys })
}

/// Parses `<CompleteMultipartUpload><Part><PartNumber/><ETag/></Part>…` into
/// `(part number, etag as sent)` in request order.
pub fn parse_complete(body: &[u8]) -> OssResult<Vec<(u32, String)>> {
    let root = parse(body)?;
    if root.name != "CompleteMultipartUpload" {
        return Err(OssError::malformed_xml(
            "the root element must be CompleteMultipartUpload",
        ));
    }
    root.children_named("Part")
        .map(|part| {
            let number = part
                .child("PartNumber")
                .and_then(|n| n.text.trim().parse::<u32>().ok())
                .ok_or_else(|| OssError::malformed_xml("a Part has no valid PartNumber"))?;
            let etag = part
                .child("ETag")
                .map(|e| e.text.trim().to_owned())
                .ok_or_else(|| OssError::malformed_xml("a Part has no ETag"))?;
            Ok((number, etag))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_escapes_and_closes() {
        let mut xml = XmlWriter::new("R");
        xml.open("A").elem("K", "a<b&'c'");
        assert_eq!(
            xml.finish(),
            format!("{XML_DECLARATION}<R><A><K>a&lt;b&amp;&apos;c&apos;</K></A></R>")
        );
    }

    #[test]
    fn delete_body_parses_with_and_without_declaration() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object><Object><Key>c</Key></Object></Delete>"#;
        let parsed = parse_delete(body).unwrap();
        assert!(parsed.quiet);
        assert_eq!(parsed.keys, vec!["a&b".to_owned(), "c".to_owned()]);
        let parsed = parse_delete(b"<Delete><Object><Key>x</Key></Object></Delete>").unwrap();
        assert!(!parsed.quiet);
    }

    #[test]
    fn malformed_bodies_are_malformed_xml() {
        for body in [
            &b"<Delete><Object>"[..],
            b"",
            b"<Delete></Other>",
            b"<A/><B/>",
        ] {
            let err = parse_delete(body).unwrap_err();
            assert_eq!(
                err.code,
                "MalformedXML",
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let many: String = (0..1001)
            .map(|i| format!("<Object><Key>{i}</Key></Object>"))
            .collect();
        let err = parse_delete(format!("<Delete>{many}</Delete>").as_bytes()).unwrap_err();
        assert_eq!(err.code, "MalformedXML");
    }

    #[test]
    fn complete_body_keeps_order_and_quotes() {
        let body = br#"<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>"AB"</ETag></Part><Part><PartNumber>1</PartNumber><ETag>CD</ETag></Part></CompleteMultipartUpload>"#;
        assert_eq!(
            parse_complete(body).unwrap(),
            vec![(2, "\"AB\"".to_owned()), (1, "CD".to_owned())]
        );
    }

    #[test]
    fn time_formats() {
        assert_eq!(iso8601(1_704_164_645_999), "2024-01-02T03:04:05.000Z");
        assert_eq!(
            http_date(1_704_164_645_999),
            "Tue, 02 Jan 2024 03:04:05 GMT"
        );
    }
}
