//! Bucket operations: ListBuckets, PutBucket, DeleteBucket, GetBucketInfo,
//! GetBucketLocation, GetBucketAcl, ListObjects (v1) and ListObjectsV2.

use axum::http::StatusCode;
use base64::Engine;

use super::addressing::encode_component;
use super::error::{OssError, OssResult};
use super::listing::{self, Entry};
use super::objects::{bucket_mut, quoted};
use super::server::{Ctx, Oss, Reply};
use super::wire::{iso8601, XmlWriter};

/// The owner id the emulator reports (one account owns everything).
pub const OWNER_ID: &str = "1000000000000000";

/// Bucket naming rule (spec §6.1): 3–63 characters of `[a-z0-9-]`, starting and ending
/// with a letter or digit.
pub fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(|b| *b != b'-')
        && bytes.last().is_some_and(|b| *b != b'-')
}

fn owner(xml: &mut XmlWriter) {
    xml.open("Owner")
        .elem("ID", OWNER_ID)
        .elem("DisplayName", OWNER_ID)
        .close();
}

pub fn list_buckets(oss: &Oss, _ctx: &Ctx) -> OssResult<Reply> {
    let store = oss.store.lock();
    let mut xml = XmlWriter::new("ListAllMyBucketsResult");
    owner(&mut xml);
    xml.open("Buckets");
    for (name, bucket) in &store.buckets {
        xml.open("Bucket")
            .elem("CreationDate", &iso8601(bucket.created_ms))
            .elem("ExtranetEndpoint", "127.0.0.1")
            .elem("IntranetEndpoint", "127.0.0.1")
            .elem("Location", &format!("oss-{}", oss.region))
            .elem("Name", name)
            .elem("Region", &oss.region)
            .elem("StorageClass", "Standard")
            .close();
    }
    Ok(Reply::xml(xml.finish()))
}

/// PutBucket. Re-creating a bucket the (single) account already owns succeeds, as OSS
/// documents `BucketAlreadyExists` only for names owned by others or for changed
/// settings (inferred).
pub fn put_bucket(oss: &Oss, ctx: &Ctx) -> OssResult<Reply> {
    let name = ctx.bucket();
    if !valid_bucket_name(name) {
        return Err(OssError::invalid_bucket_name(name));
    }
    oss.store.lock().create_bucket(name, ctx.now_ms)?;
    Ok(Reply::empty(StatusCode::OK).header("location", format!("/{name}")))
}

pub fn delete_bucket(oss: &Oss, ctx: &Ctx) -> OssResult<Reply> {
    let mut store = oss.store.lock();
    let name = ctx.bucket();
    let has_uploads = store.uploads.values().any(|u| u.bucket == name);
    let bucket = bucket_mut(&mut store, name)?;
    if !bucket.objects.is_empty() || has_uploads {
        return Err(OssError::new(
            StatusCode::CONFLICT,
            "BucketNotEmpty",
            "The bucket you tried to delete is not empty.",
        )
        .detail("BucketName", name));
    }
    store.remove_bucket(name)?;
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

pub fn get_bucket_info(oss: &Oss, ctx: &Ctx) -> OssResult<Reply> {
    let mut store = oss.store.lock();
    let bucket = bucket_mut(&mut store, ctx.bucket())?;
    let mut xml = XmlWriter::new("BucketInfo");
    xml.open("Bucket")
        .elem("AccessMonitor", "Disabled")
        .elem("CreationDate", &iso8601(bucket.created_ms))
        .elem("CrossRegionReplication", "Disabled")
        .elem("DataRedundancyType", "LRS")
        .elem("ExtranetEndpoint", "127.0.0.1")
        .elem("IntranetEndpoint", "127.0.0.1")
        .elem("Location", &format!("oss-{}", oss.region))
        .elem("Name", ctx.bucket())
        .elem("ResourceGroupId", "rg-default")
        .elem("StorageClass", "Standard")
        .elem("TransferAcceleration", "Disabled");
    owner(&mut xml);
    xml.open("AccessControlList")
        .elem("Grant", "private")
        .close();
    xml.open("ServerSideEncryptionRule")
        .elem("SSEAlgorithm", "None")
        .close();
    xml.open("BucketPolicy")
        .elem("LogBucket", "")
        .elem("LogPrefix", "")
        .close();
    Ok(Reply::xml(xml.finish()))
}

pub fn get_bucket_location(oss: &Oss, ctx: &Ctx) -> OssResult<Reply> {
    let mut store = oss.store.lock();
    bucket_mut(&mut store, ctx.bucket())?;
    let mut xml = String::from(super::wire::XML_DECLARATION);
    xml.push_str(&format!(
        "<LocationConstraint>oss-{}</LocationConstraint>",
        oss.region
    ));
    Ok(Reply::xml(xml))
}

pub fn get_bucket_acl(oss: &Oss, ctx: &Ctx) -> OssResult<Reply> {
    let mut store = oss.store.lock();
    bucket_mut(&mut store, ctx.bucket())?;
    let mut xml = XmlWriter::new("AccessControlPolicy");
    owner(&mut xml);
    xml.open("AccessControlList")
        .elem("Grant", "private")
        .close();
    Ok(Reply::xml(xml.finish()))
}

/// `max-keys`: 1–1000, default 100.
pub fn max_keys(ctx: &Ctx, name: &str, default: usize) -> OssResult<usize> {
    match ctx.query.non_empty(name) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                OssError::invalid_argument(format!("{name} must be an integer from 1 to 1000"))
            }),
    }
}

fn token_of(entry: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(entry.as_bytes())
}

fn key_of_token(token: &str) -> OssResult<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| OssError::invalid_argument("The continuation token is not valid."))
}

/// ListObjects (`v2 == false`) and ListObjectsV2.
pub fn list_objects(oss: &Oss, ctx: &Ctx, v2: bool) -> OssResult<Reply> {
    let prefix = ctx.query.non_empty("prefix").unwrap_or_default();
    let delimiter = ctx.query.non_empty("delimiter").unwrap_or_default();
    let max = max_keys(ctx, "max-keys", 100)?;
    let token = if v2 {
        ctx.query.non_empty("continuation-token")
    } else {
        None
    };
    let after = match (v2, token) {
        (true, Some(token)) => key_of_token(token)?,
        (true, None) => ctx
            .query
            .non_empty("start-after")
            .unwrap_or_default()
            .to_owned(),
        (false, _) => ctx.query.non_empty("marker").unwrap_or_default().to_owned(),
    };
    let encode = ctx.url_encoding();
    let shown = |text: &str| {
        if encode {
            encode_component(text)
        } else {
            text.to_owned()
        }
    };
    let fetch_owner = !v2 || ctx.query.get("fetch-owner") == Some("true");

    let mut store = oss.store.lock();
    let bucket = bucket_mut(&mut store, ctx.bucket())?;
    let page = listing::page(&bucket.objects, prefix, delimiter, &after, max);

    let mut xml = XmlWriter::new("ListBucketResult");
    xml.elem("Name", ctx.bucket())
        .elem("Prefix", &shown(prefix));
    if v2 {
        if let Some(start_after) = ctx.query.non_empty("start-after") {
            xml.elem("StartAfter", &shown(start_after));
        }
        if let Some(token) = token {
            xml.elem("ContinuationToken", token);
        }
    } else {
        xml.elem("Marker", &shown(&after));
    }
    xml.elem("MaxKeys", &max.to_string())
        .elem("Delimiter", &shown(delimiter));
    if encode {
        xml.elem("EncodingType", "url");
    }
    xml.elem("IsTruncated", if page.truncated { "true" } else { "false" });
    if let Some(next) = page.next.as_deref() {
        if v2 {
            xml.elem("NextContinuationToken", &token_of(next));
        } else {
            xml.elem("NextMarker", &shown(next));
        }
    }
    if v2 {
        xml.elem("KeyCount", &page.entries.len().to_string());
    }
    for entry in &page.entries {
        if let Entry::Object(key, object) = entry {
            xml.open("Contents")
                .elem("Key", &shown(key))
                .elem("LastModified", &iso8601(object.last_modified_ms))
                .elem("ETag", &quoted(&object.etag))
                .elem("Type", object.kind.as_str())
                .elem("Size", &object.data.len().to_string())
                .elem("StorageClass", "Standard");
            if fetch_owner {
                owner(&mut xml);
            }
            xml.close();
        }
    }
    for entry in &page.entries {
        if let Entry::Prefix(common) = entry {
            xml.open("CommonPrefixes")
                .elem("Prefix", &shown(common))
                .close();
        }
    }
    Ok(Reply::xml(xml.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        assert!(valid_bucket_name("localcloud"));
        assert!(valid_bucket_name("a-1"));
        assert!(!valid_bucket_name("ab"));
        assert!(!valid_bucket_name("-ab"));
        assert!(!valid_bucket_name("ab-"));
        assert!(!valid_bucket_name("Abc"));
        assert!(!valid_bucket_name(&"a".repeat(64)));
    }

    #[test]
    fn continuation_tokens_are_unreserved_and_round_trip() {
        let token = token_of("datax/测试 a+b");
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(key_of_token(&token).unwrap(), "datax/测试 a+b");
        assert!(key_of_token("%%%").is_err());
    }
}
