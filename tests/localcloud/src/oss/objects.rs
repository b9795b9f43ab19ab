//! Object operations: PutObject, GetObject (with a byte range), HeadObject /
//! GetObjectMeta, DeleteObject, AppendObject and DeleteMultipleObjects.

use axum::http::StatusCode;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use md5::{Digest, Md5};

use super::addressing::encode_component;
use super::error::{OssError, OssResult};
use super::server::{Ctx, Oss, Reply};
use super::state::{md5_hex_upper, Bucket, Object, ObjectKind, ObjectMeta, Store};
use super::{crc64, wire};

/// Standard headers stored with an object and returned on GET/HEAD.
const STORED_HEADERS: &[&str] = &[
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];

/// Checks an object key (spec §6.1): 1–1023 UTF-8 bytes, not starting with `/` or `\`.
pub fn check_key(key: &str) -> OssResult<()> {
    if key.is_empty() || key.len() > 1023 {
        return Err(OssError::invalid_object_name(
            "the key must be 1 to 1023 bytes long",
        ));
    }
    if key.starts_with('/') || key.starts_with('\\') {
        return Err(OssError::invalid_object_name(
            "the key must not start with / or \\",
        ));
    }
    Ok(())
}

/// The bucket a request names, or `NoSuchBucket`.
pub fn bucket_mut<'a>(store: &'a mut Store, name: &str) -> OssResult<&'a mut Bucket> {
    store
        .buckets
        .get_mut(name)
        .ok_or_else(|| OssError::no_such_bucket(name))
}

/// Content type and stored headers from a write request.
pub fn meta_from(ctx: &Ctx) -> ObjectMeta {
    let content_type = ctx
        .header("content-type")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let headers = ctx
        .headers
        .iter()
        .filter(|(name, _)| {
            STORED_HEADERS.contains(&name.as_str()) || name.as_str().starts_with("x-oss-meta-")
        })
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    ObjectMeta {
        content_type,
        headers,
    }
}

fn content_md5(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}

pub fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

pub fn put(oss: &Oss, ctx: &Ctx) -> OssResult<Reply> {
    check_key(&ctx.target.key)?;
    let mut store = oss.store.lock();
    let exists = bucket_mut(&mut store, ctx.bucket())?
        .objects
        .contains_key(&ctx.target.key);
    ctx.check_content_md5()?;
    if ctx.forbid_overwrite() && exists {
        return Err(OssError::file_already_exists(&ctx.target.key));
    }
    let object = Object::normal(ctx.body.clone(), meta_from(ctx), ctx.now_ms);
    let reply = Reply::empty(StatusCode::OK)
        .header("etag", quoted(&object.etag))
        .header("x-oss-hash-crc64ecma", object.crc64.to_string())
        .header("content-md5", content_md5(&ctx.body));
    store.put_object(ctx.bucket(), &ctx.target.key, object)?;
    Ok(reply)
}

/// GetObject (`with_body`) or HeadObject / GetObjectMeta.
pub fn get(oss: &Oss, ctx: &Ctx, with_body: bool) -> OssResult<Reply> {
    let mut store = oss.store.lock();
    let bucket = bucket_mut(&mut store, ctx.bucket())?;
    let object = bucket
        .objects
        .get(&ctx.target.key)
        .ok_or_else(|| OssError::no_such_key(&ctx.target.key))?;
    let total = object.data.len() as u64;
    let range = if with_body {
        ctx.header("range")
            .map(|r| parse_range(&r, total))
            .transpose()?
            .flatten()
    } else {
        None
    };
    let mut reply = Reply::empty(StatusCode::OK)
        .header("content-type", object.meta.content_type.clone())
        .header("etag", quoted(&object.etag))
        .header("last-modified", wire::http_date(object.last_modified_ms))
        .header("x-oss-object-type", object.kind.as_str())
        .header("x-oss-hash-crc64ecma", object.crc64.to_string())
        .header("x-oss-storage-class", "Standard")
        .header("accept-ranges", "bytes");
    for (name, value) in &object.meta.headers {
        reply = reply.header(name, value.clone());
    }
    if object.kind == ObjectKind::Appendable {
        reply = reply.header("x-oss-next-append-position", total.to_string());
    }
    for (param, header) in [
        ("response-content-type", "content-type"),
        ("response-content-language", "content-language"),
        ("response-expires", "expires"),
        ("response-cache-control", "cache-control"),
        ("response-content-disposition", "content-disposition"),
        ("response-content-encoding", "content-encoding"),
    ] {
        if let Some(value) = ctx.query.non_empty(param) {
            reply.headers.retain(|(n, _)| n != header);
            reply = reply.header(header, value);
        }
    }
    if !with_body {
        return Ok(reply.header("content-length", total.to_string()));
    }
    match range {
        Some((start, end)) => {
            reply.status = StatusCode::PARTIAL_CONTENT;
            reply.body = object.data.slice(start as usize..=end as usize);
            Ok(reply.header("content-range", format!("bytes {start}-{end}/{total}")))
        }
        None => {
            reply.body = object.data.clone();
            Ok(reply)
        }
    }
}

/// A single `bytes=` range resolved against `total`: `Ok(None)` means "ignore the
/// header and send the whole object" (syntax OSS does not honour); an unsatisfiable
/// range is `InvalidRange` (416).
fn parse_range(header: &str, total: u64) -> OssResult<Option<(u64, u64)>> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let unsatisfiable = || {
        OssError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "The requested range cannot be satisfied",
        )
        .header("content-range", format!("bytes */{total}"))
    };
    let range = match (first.parse::<u64>(), last.parse::<u64>()) {
        (Ok(start), Ok(end)) if start <= end => {
            if start >= total {
                return Err(unsatisfiable());
            }
            (start, end.min(total - 1))
        }
        (Ok(start), Err(_)) if last.is_empty() => {
            if start >= total {
                return Err(unsatisfiable());
            }
            (start, total - 1)
        }
        (Err(_), Ok(suffix)) if first.is_empty() => {
            if suffix == 0 || total == 0 {
                return Err(unsatisfiable());
            }
            (total - suffix.min(total), total - 1)
        }
        _ => return Ok(None),
    };
    Ok(Some(range))
}

pub fn delete(oss: &Oss, ctx: &Ctx) -> OssResult<Reply> {
    let mut store = oss.store.lock();
    bucket_mut(&mut store, ctx.bucket())?;
    store.remove_object(ctx.bucket(), &ctx.target.key)?;
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

pub fn append(oss: &Oss, ctx: &Ctx) -> OssResult<Reply> {
    check_key(&ctx.target.key)?;
    let position = ctx
        .query
        .get("position")
        .ok_or_else(|| OssError::missing_argument("position"))?;
    let position: u64 = position
        .parse()
        .map_err(|_| OssError::invalid_argument("position must be a non-negative integer"))?;
    let mut store = oss.store.lock();
    let bucket = bucket_mut(&mut store, ctx.bucket())?;
    ctx.check_content_md5()?;
    let not_equal = |length: u64| {
        OssError::new(
            StatusCode::CONFLICT,
            "PositionNotEqualToLength",
            "Position is not equal to file length",
        )
        .header("x-oss-next-append-position", length.to_string())
        .ec("0026-00000016")
    };
    let object = match bucket.objects.get(&ctx.target.key) {
        None if position != 0 => return Err(not_equal(0)),
        None => Object {
            data: Bytes::new(),
            kind: ObjectKind::Appendable,
            etag: String::new(),
            crc64: 0,
            meta: meta_from(ctx),
            last_modified_ms: ctx.now_ms,
        },
        Some(existing) if existing.kind != ObjectKind::Appendable => {
            return Err(OssError::new(
                StatusCode::CONFLICT,
                "ObjectNotAppendable",
                "The object is not appendable",
            ))
        }
        Some(existing) if existing.data.len() as u64 != position => {
            return Err(not_equal(existing.data.len() as u64))
        }
        Some(existing) => existing.clone(),
    };
    let mut data = BytesMut::with_capacity(object.data.len() + ctx.body.len());
    data.extend_from_slice(&object.data);
    data.extend_from_slice(&ctx.body);
    let data = data.freeze();
    let updated = Object {
        etag: md5_hex_upper(&data),
        crc64: crc64::update(object.crc64, &ctx.body),
        data,
        last_modified_ms: ctx.now_ms,
        ..object
    };
    let reply = Reply::empty(StatusCode::OK)
        .header("etag", quoted(&updated.etag))
        .header("x-oss-next-append-position", updated.data.len().to_string())
        .header("x-oss-hash-crc64ecma", updated.crc64.to_string())
        .header("content-md5", content_md5(&ctx.body));
    store.put_object(ctx.bucket(), &ctx.target.key, updated)?;
    Ok(reply)
}

pub fn delete_multiple(oss: &Oss, ctx: &Ctx) -> OssResult<Reply> {
    let mut store = oss.store.lock();
    bucket_mut(&mut store, ctx.bucket())?;
    if ctx.header("content-md5").is_none() {
        return Err(OssError::missing_argument("Content-MD5"));
    }
    ctx.check_content_md5()?;
    let request = wire::parse_delete(&ctx.body)?;
    let encode = ctx.url_encoding();
    let mut xml = wire::XmlWriter::new("DeleteResult");
    if encode {
        xml.elem("EncodingType", "url");
    }
    for key in &request.keys {
        store.remove_object(ctx.bucket(), key)?;
        if !request.quiet {
            let shown = if encode {
                encode_component(key)
            } else {
                key.clone()
            };
            xml.open("Deleted").elem("Key", &shown).close();
        }
    }
    Ok(Reply::xml(xml.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-200", 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range("bytes=95-", 100).unwrap(), Some((95, 99)));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range("bytes=-1000", 100).unwrap(), Some((0, 99)));
        assert_eq!(parse_range("bytes=5-2", 100).unwrap(), None);
        assert_eq!(parse_range("bytes=0-1,3-4", 100).unwrap(), None);
        assert_eq!(
            parse_range("bytes=100-", 100).unwrap_err().code,
            "InvalidRange"
        );
    }

    #[test]
    fn keys() {
        assert!(check_key("a/b").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("/a").is_err());
        assert!(check_key("\\a").is_err());
        assert!(check_key(&"k".repeat(1024)).is_err());
    }
}
