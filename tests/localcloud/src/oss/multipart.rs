//! Multipart uploads: InitiateMultipartUpload, UploadPart, CompleteMultipartUpload,
//! AbortMultipartUpload, ListParts and ListMultipartUploads. An upload is invisible to
//! GetObject, HeadObject and listings until it is completed.

use axum::http::StatusCode;
use bytes::BytesMut;

use super::addressing::encode_component;
use super::buckets::max_keys;
use super::crc64;
use super::error::{OssError, OssResult};
use super::objects::{bucket_mut, check_key, meta_from, quoted};
use super::server::{Ctx, Oss, Reply};
use super::state::{multipart_etag, Object, ObjectKind, Part, Store, Upload};
use super::wire::{self, iso8601, XmlWriter};

/// The smallest size of every part but the last, checked at Complete.
const MIN_PART_BYTES: usize = 102_400;

fn shown(ctx: &Ctx, text: &str) -> String {
    if ctx.url_encoding() {
        encode_component(text)
    } else {
        text.to_owned()
    }
}

/// The open upload a request names by `uploadId`, for this bucket and key.
fn upload_mut<'a>(store: &'a mut Store, ctx: &Ctx) -> OssResult<&'a mut Upload> {
    bucket_mut(store, ctx.bucket())?;
    let id = ctx.query.get("uploadId").unwrap_or_default();
    store
        .uploads
        .get_mut(id)
        .filter(|u| u.bucket == ctx.bucket() && u.key == ctx.target.key)
        .ok_or_else(|| OssError::no_such_upload(id))
}

pub fn initiate(oss: &Oss, ctx: &Ctx) -> OssResult<Reply> {
    check_key(&ctx.target.key)?;
    let mut store = oss.store.lock();
    bucket_mut(&mut store, ctx.bucket())?;
    let upload_id = hex::encode_upper(rand::random::<[u8; 16]>());
    store.put_upload(
        &upload_id,
        Upload {
            bucket: ctx.bucket().to_owned(),
            key: ctx.target.key.clone(),
            initiated_ms: ctx.now_ms,
            meta: meta_from(ctx),
            forbid_overwrite: ctx.forbid_overwrite(),
            parts: Default::default(),
        },
    )?;
    let mut xml = XmlWriter::new("InitiateMultipartUploadResult");
    if ctx.url_encoding() {
        xml.elem("EncodingType", "url");
    }
    xml.elem("Bucket", ctx.bucket())
        .elem("Key", &shown(ctx, &ctx.target.key))
        .elem("UploadId", &upload_id);
    Ok(Reply::xml(xml.finish()))
}

pub fn upload_part(oss: &Oss, ctx: &Ctx) -> OssResult<Reply> {
    let number = ctx
        .query
        .get("partNumber")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| {
            OssError::invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive.",
            )
        })?;
    let mut store = oss.store.lock();
    upload_mut(&mut store, ctx)?;
    ctx.check_content_md5()?;
    let part = Part::new(ctx.body.clone(), ctx.now_ms);
    let reply = Reply::empty(StatusCode::OK)
        .header("etag", quoted(&part.etag))
        .header("x-oss-hash-crc64ecma", part.crc64.to_string());
    let upload_id = ctx.query.get("uploadId").unwrap_or_default();
    store.put_part(upload_id, number, part)?;
    Ok(reply)
}

/// The parts a Complete request lists, checked in the spec's order (§5.10).
fn listed_parts(ctx: &Ctx, upload: &Upload) -> OssResult<Vec<u32>> {
    let complete_all = ctx
        .header("x-oss-complete-all")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("yes"));
    if complete_all {
        if !ctx.body.is_empty() {
            return Err(OssError::invalid_argument(
                "x-oss-complete-all is given, so the body must be empty.",
            ));
        }
        return Ok(upload.parts.keys().copied().collect());
    }
    let listed = wire::parse_complete(&ctx.body)?;
    if listed.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(OssError::new(
            StatusCode::BAD_REQUEST,
            "InvalidPartOrder",
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
        ));
    }
    for (number, etag) in &listed {
        let matches = upload
            .parts
            .get(number)
            .is_some_and(|part| etag.trim_matches('"').eq_ignore_ascii_case(&part.etag));
        if !matches {
            return Err(OssError::new(
                StatusCode::BAD_REQUEST,
                "InvalidPart",
                "One or more of the specified parts could not be found or the specified entity tag might not have matched the part's entity tag.",
            )
            .detail("PartNumber", number.to_string())
            .detail("ETag", etag.clone()));
        }
    }
    let numbers: Vec<u32> = listed.iter().map(|(n, _)| *n).collect();
    if let Some((_, small)) = numbers.split_last() {
        for number in small {
            let size = upload.parts.get(number).map_or(0, |p| p.data.len());
            if size < MIN_PART_BYTES {
                return Err(OssError::new(
                    StatusCode::BAD_REQUEST,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed size.",
                )
                .detail("PartNumber", number.to_string())
                .detail("ProposedSize", size.to_string())
                .detail("MinSizeAllowed", MIN_PART_BYTES.to_string()));
            }
        }
    }
    Ok(numbers)
}

pub fn complete(oss: &Oss, ctx: &Ctx) -> OssResult<Reply> {
    let mut store = oss.store.lock();
    let upload_id = ctx.query.get("uploadId").unwrap_or_default().to_owned();
    let upload = upload_mut(&mut store, ctx)?;
    ctx.check_content_md5()?;
    let numbers = listed_parts(ctx, upload)?;
    let forbid_overwrite = upload.forbid_overwrite || ctx.forbid_overwrite();

    let listed: Vec<&Part> = numbers.iter().filter_map(|n| upload.parts.get(n)).collect();
    let mut data = BytesMut::with_capacity(listed.iter().map(|p| p.data.len()).sum::<usize>());
    let mut crc = 0u64;
    for part in &listed {
        data.extend_from_slice(&part.data);
        crc = crc64::combine(crc, part.crc64, part.data.len() as u64);
    }
    let etag = multipart_etag(listed.iter().copied());
    let object = Object {
        data: data.freeze(),
        kind: ObjectKind::Multipart,
        etag,
        crc64: crc,
        meta: upload.meta.clone(),
        last_modified_ms: ctx.now_ms,
    };
    let exists = bucket_mut(&mut store, ctx.bucket())?
        .objects
        .contains_key(&ctx.target.key);
    if forbid_overwrite && exists {
        return Err(OssError::file_already_exists(&ctx.target.key));
    }
    let mut xml = XmlWriter::new("CompleteMultipartUploadResult");
    if ctx.url_encoding() {
        xml.elem("EncodingType", "url");
    }
    let host = ctx.header("host").unwrap_or_else(|| "127.0.0.1".into());
    xml.elem(
        "Location",
        &format!("http://{host}/{}/{}", ctx.bucket(), ctx.target.key),
    )
    .elem("Bucket", ctx.bucket())
    .elem("Key", &shown(ctx, &ctx.target.key))
    .elem("ETag", &quoted(&object.etag));
    let reply = Reply::xml(xml.finish())
        .header("etag", quoted(&object.etag))
        .header("x-oss-hash-crc64ecma", object.crc64.to_string());
    store.put_object(ctx.bucket(), &ctx.target.key, object)?;
    store.remove_upload(&upload_id)?;
    Ok(reply)
}

pub fn abort(oss: &Oss, ctx: &Ctx) -> OssResult<Reply> {
    let mut store = oss.store.lock();
    upload_mut(&mut store, ctx)?;
    let upload_id = ctx.query.get("uploadId").unwrap_or_default();
    store.remove_upload(upload_id)?;
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

pub fn list_parts(oss: &Oss, ctx: &Ctx) -> OssResult<Reply> {
    let max = max_keys(ctx, "max-parts", 1000)?;
    let marker: u32 = match ctx.query.non_empty("part-number-marker") {
        None => 0,
        Some(raw) => raw
            .parse()
            .map_err(|_| OssError::invalid_argument("part-number-marker must be an integer"))?,
    };
    let mut store = oss.store.lock();
    let upload = upload_mut(&mut store, ctx)?;
    let mut remaining = upload.parts.range(marker.saturating_add(1)..);
    let page: Vec<(&u32, &Part)> = remaining.by_ref().take(max).collect();
    let truncated = remaining.next().is_some();
    let mut xml = XmlWriter::new("ListPartsResult");
    if ctx.url_encoding() {
        xml.elem("EncodingType", "url");
    }
    xml.elem("Bucket", ctx.bucket())
        .elem("Key", &shown(ctx, &ctx.target.key))
        .elem("UploadId", ctx.query.get("uploadId").unwrap_or_default())
        .elem("PartNumberMarker", &marker.to_string())
        .elem(
            "NextPartNumberMarker",
            &page.last().map_or(marker, |(n, _)| **n).to_string(),
        )
        .elem("MaxParts", &max.to_string())
        .elem("IsTruncated", if truncated { "true" } else { "false" });
    for (number, part) in page {
        xml.open("Part")
            .elem("PartNumber", &number.to_string())
            .elem("LastModified", &iso8601(part.last_modified_ms))
            .elem("ETag", &quoted(&part.etag))
            .elem("HashCrc64ecma", &part.crc64.to_string())
            .elem("Size", &part.data.len().to_string())
            .close();
    }
    Ok(Reply::xml(xml.finish()))
}

/// ListMultipartUploads: uploads sorted by key, then upload id; `key-marker` and
/// `upload-id-marker` are exclusive; `delimiter` rolls keys up into common prefixes.
pub fn list_uploads(oss: &Oss, ctx: &Ctx) -> OssResult<Reply> {
    let prefix = ctx.query.non_empty("prefix").unwrap_or_default();
    let delimiter = ctx.query.non_empty("delimiter").unwrap_or_default();
    let key_marker = ctx.query.non_empty("key-marker").unwrap_or_default();
    let id_marker = ctx.query.non_empty("upload-id-marker").unwrap_or_default();
    let max = max_keys(ctx, "max-uploads", 1000)?;
    let mut store = oss.store.lock();
    bucket_mut(&mut store, ctx.bucket())?;
    let mut uploads: Vec<(&str, &str, &Upload)> = store
        .uploads
        .iter()
        .filter(|(_, u)| u.bucket == ctx.bucket() && u.key.starts_with(prefix))
        .map(|(id, u)| (u.key.as_str(), id.as_str(), u))
        .filter(|(key, id, _)| {
            *key > key_marker || (!id_marker.is_empty() && *key == key_marker && *id > id_marker)
        })
        .collect();
    uploads.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));

    let mut listed: Vec<(&str, &str, &Upload)> = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    let mut truncated = false;
    let mut next = (String::new(), String::new());
    for (key, id, upload) in uploads {
        let rolled_up = (!delimiter.is_empty())
            .then(|| key[prefix.len()..].find(delimiter))
            .flatten()
            .map(|at| key[..prefix.len() + at + delimiter.len()].to_owned());
        if let Some(common) = &rolled_up {
            let seen_before = !key_marker.is_empty() && common.as_str() <= key_marker;
            if prefixes.last() == Some(common) || seen_before {
                continue;
            }
        }
        if listed.len() + prefixes.len() == max {
            truncated = true;
            break;
        }
        match rolled_up {
            Some(common) => {
                next = (common.clone(), String::new());
                prefixes.push(common);
            }
            None => {
                next = (key.to_owned(), id.to_owned());
                listed.push((key, id, upload));
            }
        }
    }
    let mut xml = XmlWriter::new("ListMultipartUploadsResult");
    if ctx.url_encoding() {
        xml.elem("EncodingType", "url");
    }
    xml.elem("Bucket", ctx.bucket())
        .elem("KeyMarker", &shown(ctx, key_marker))
        .elem("UploadIdMarker", id_marker)
        .elem(
            "NextKeyMarker",
            &shown(ctx, if truncated { &next.0 } else { "" }),
        )
        .elem("NextUploadIdMarker", if truncated { &next.1 } else { "" })
        .elem("Delimiter", &shown(ctx, delimiter))
        .elem("Prefix", &shown(ctx, prefix))
        .elem("MaxUploads", &max.to_string())
        .elem("IsTruncated", if truncated { "true" } else { "false" });
    for (key, id, upload) in listed {
        xml.open("Upload")
            .elem("Key", &shown(ctx, key))
            .elem("UploadId", id)
            .elem("StorageClass", "Standard")
            .elem("Initiated", &iso8601(upload.initiated_ms))
            .close();
    }
    for common in prefixes {
        xml.open("CommonPrefixes")
            .elem("Prefix", &shown(ctx, &common))
            .close();
    }
    Ok(Reply::xml(xml.finish()))
}
