//! Multipart uploads (spec oss.md §4): initiate, upload a part, complete, abort, and
//! list the uploads in progress.

use bytes::Bytes;
use reqwest::Method;

use super::{content_md5, query, OssClient, UploadedPart};
use crate::crc64;
use crate::error::OssError;
use crate::xml;

impl OssClient {
    /// InitiateMultipartUpload; returns the upload id.
    pub async fn initiate(
        &self,
        key: &str,
        content_type: &str,
        encrypt: bool,
    ) -> Result<String, OssError> {
        self.initiate_with_window(key, content_type, encrypt, None)
            .await
    }

    /// InitiateMultipartUpload, the object marked with the job's window (24 hex) in
    /// [`WINDOW_META`](super::WINDOW_META) when `window` is given.
    pub async fn initiate_with_window(
        &self,
        key: &str,
        content_type: &str,
        encrypt: bool,
        window: Option<&str>,
    ) -> Result<String, OssError> {
        let mut req = self.request("InitiateMultipartUpload", Method::POST, key);
        if let Some(window) = window {
            req.headers
                .push((super::WINDOW_META.into(), window.to_owned()));
        }
        req.query = query(&[("uploads", "")]);
        req.headers
            .push(("Content-Type".into(), content_type.to_owned()));
        if encrypt {
            req.headers
                .push(("x-oss-server-side-encryption".into(), "AES256".into()));
        }
        let r = self.send(&req).await?;
        match xml::text(&r.body, "UploadId") {
            Ok(Some(id)) if !id.is_empty() => Ok(id),
            other => Err(OssError::Integrity {
                operation: "InitiateMultipartUpload",
                target: self.target(key),
                message: format!("no UploadId in the answer ({other:?})"),
            }),
        }
    }

    /// UploadPart, checking the part's CRC-64 against OSS's.
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
    ) -> Result<UploadedPart, OssError> {
        let crc = crc64::checksum(&body);
        let mut req = self.request("UploadPart", Method::PUT, key);
        req.query = vec![
            ("partNumber".into(), number.to_string()),
            ("uploadId".into(), upload_id.to_owned()),
        ];
        // No Content-MD5: software MD5 cost more CPU than everything else together, and
        // OSS's CRC-64 of the received part, compared below with ours, catches the same
        // corruption (the part is then uploaded again).
        let size = body.len() as u64;
        req.body = body;
        let mut backoff = self.backoff();
        loop {
            let outcome = self.send(&req).await.and_then(|r| {
                let server = r.crc64();
                if server != Some(crc) {
                    return Err(OssError::Integrity {
                        operation: "UploadPart",
                        target: format!("{} part {number}", self.target(key)),
                        message: format!("CRC-64 mismatch: ours {crc}, OSS {server:?}"),
                    });
                }
                Ok(UploadedPart {
                    number,
                    etag: r.header("etag").unwrap_or("").to_owned(),
                    size,
                    crc64: crc,
                })
            });
            match outcome {
                Err(e @ OssError::Integrity { .. }) => match backoff.next_delay() {
                    Some(wait) => {
                        tracing::warn!("{e}; uploading again in {wait:?}");
                        tokio::time::sleep(wait).await;
                    }
                    None => return Err(e),
                },
                other => return other,
            }
        }
    }

    /// CompleteMultipartUpload, checking the object's CRC-64. A retry answered with
    /// `NoSuchUpload` (the first attempt succeeded but its answer was lost) is checked
    /// with a HEAD: a multipart object of the expected size and CRC is success.
    pub async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[UploadedPart],
    ) -> Result<(), OssError> {
        let mut body =
            String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><CompleteMultipartUpload>");
        let mut crc = 0u64;
        let mut size = 0u64;
        for part in parts {
            body.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                part.number,
                xml::escape(&part.etag)
            ));
            crc = crc64::combine(crc, part.crc64, part.size);
            size += part.size;
        }
        body.push_str("</CompleteMultipartUpload>");
        let mut req = self.request("CompleteMultipartUpload", Method::POST, key);
        req.query = vec![("uploadId".into(), upload_id.to_owned())];
        req.headers = vec![
            ("Content-MD5".into(), content_md5(body.as_bytes())),
            ("Content-Type".into(), "application/xml".into()),
        ];
        req.body = Bytes::from(body);
        let mut backoff = self.backoff();
        let mut attempted = false;
        loop {
            let result = self.send_once(&req).await;
            let error = match result {
                Ok(r) => {
                    return match r.crc64() {
                        Some(server) if server != crc => Err(OssError::Integrity {
                            operation: "CompleteMultipartUpload",
                            target: self.target(key),
                            message: format!("CRC-64 mismatch: ours {crc}, OSS {server}"),
                        }),
                        _ => Ok(()),
                    }
                }
                Err(e) if attempted && e.code() == Some("NoSuchUpload") => {
                    return match self.head(key).await? {
                        Some(meta)
                            if meta.object_type == "Multipart"
                                && meta.size == size
                                && meta.crc64.is_none_or(|c| c == crc) =>
                        {
                            tracing::info!(
                                "CompleteMultipartUpload {}: an earlier attempt succeeded (checked by HEAD)",
                                self.target(key)
                            );
                            Ok(())
                        }
                        _ => Err(e),
                    };
                }
                Err(e) => e,
            };
            if !error.is_retryable() {
                return Err(error);
            }
            attempted = true;
            match backoff.next_delay() {
                Some(wait) => {
                    tracing::warn!("{error}; retry {} in {wait:?}", backoff.attempts());
                    tokio::time::sleep(wait).await;
                }
                None => return Err(error),
            }
        }
    }

    /// AbortMultipartUpload; an upload that is already gone is fine.
    pub async fn abort(&self, key: &str, upload_id: &str) -> Result<(), OssError> {
        let mut req = self.request("AbortMultipartUpload", Method::DELETE, key);
        req.query = vec![("uploadId".into(), upload_id.to_owned())];
        match self.send(&req).await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("NoSuchUpload") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Open multipart uploads whose key starts with `prefix`: (key, upload id).
    pub async fn list_uploads(&self, prefix: &str) -> Result<Vec<(String, String)>, OssError> {
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut req = self.request("ListMultipartUploads", Method::GET, "");
            req.query = query(&[
                ("uploads", ""),
                ("prefix", prefix),
                ("max-uploads", "1000"),
                ("encoding-type", "url"),
            ]);
            if let Some((k, u)) = &markers {
                req.query.push(("key-marker".into(), k.clone()));
                req.query.push(("upload-id-marker".into(), u.clone()));
            }
            let r = self.send(&req).await?;
            let bad = |m: String| OssError::Integrity {
                operation: "ListMultipartUploads",
                target: self.target(prefix),
                message: m,
            };
            let page = xml::uploads_page(&r.body).map_err(bad)?;
            out.extend(page.uploads);
            if !page.truncated {
                return Ok(out);
            }
            if page.next_key.is_empty() {
                return Err(bad("a truncated listing has no NextKeyMarker".into()));
            }
            let next = (page.next_key, page.next_upload_id);
            if markers.as_ref() == Some(&next) {
                return Err(bad("a truncated listing repeats its markers".into()));
            }
            markers = Some(next);
        }
    }
}
