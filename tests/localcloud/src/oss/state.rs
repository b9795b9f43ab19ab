//! What the OSS emulator holds: buckets with their objects, open multipart uploads,
//! registered STS credentials. Everything is in memory behind one mutex; each request
//! does its work in one critical section, so operations are atomic.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use md5::{Digest, Md5};

use super::crc64;

/// How an object came to be (`x-oss-object-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    Normal,
    Multipart,
    Appendable,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Multipart => "Multipart",
            Self::Appendable => "Appendable",
        }
    }
}

/// Headers stored with an object and returned on GET/HEAD.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub content_type: String,
    /// `cache-control`, `content-disposition`, `content-encoding`, `content-language`,
    /// `expires`, and every `x-oss-meta-*` (lowercase names), in request order.
    pub headers: Vec<(String, String)>,
}

/// One stored object.
#[derive(Clone, Debug)]
pub struct Object {
    pub data: Bytes,
    pub kind: ObjectKind,
    /// Without quotes.
    pub etag: String,
    pub crc64: u64,
    pub meta: ObjectMeta,
    pub last_modified_ms: i64,
}

/// One bucket.
#[derive(Clone, Debug)]
pub struct Bucket {
    pub created_ms: i64,
    pub objects: BTreeMap<String, Object>,
}

/// One uploaded part of a multipart upload.
#[derive(Clone, Debug)]
pub struct Part {
    pub data: Bytes,
    /// Without quotes.
    pub etag: String,
    pub crc64: u64,
    pub last_modified_ms: i64,
}

/// An open multipart upload.
#[derive(Clone, Debug)]
pub struct Upload {
    pub bucket: String,
    pub key: String,
    pub initiated_ms: i64,
    pub meta: ObjectMeta,
    /// `x-oss-forbid-overwrite: true` was given on Initiate.
    pub forbid_overwrite: bool,
    pub parts: BTreeMap<u32, Part>,
}

/// A temporary key pair registered through `POST /-/oss/sts`.
#[derive(Clone, Debug)]
pub struct StsCredential {
    pub access_key_secret: String,
    pub security_token: String,
    pub expires_ms: i64,
}

/// The whole store.
#[derive(Debug, Default)]
pub struct Store {
    pub buckets: BTreeMap<String, Bucket>,
    /// By upload id.
    pub uploads: BTreeMap<String, Upload>,
    /// By temporary access key id.
    pub sts: HashMap<String, StsCredential>,
}

/// Shared handle on the store.
#[derive(Clone, Debug, Default)]
pub struct SharedStore(Arc<Mutex<Store>>);

impl SharedStore {
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        // Every mutation completes inside one critical section without panicking
        // paths that leave half-written state, so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store {
    /// Creates `name` if absent; returns whether it was created.
    pub fn create_bucket(&mut self, name: &str, now_ms: i64) -> bool {
        if self.buckets.contains_key(name) {
            return false;
        }
        self.buckets.insert(
            name.to_owned(),
            Bucket {
                created_ms: now_ms,
                objects: BTreeMap::new(),
            },
        );
        true
    }
}

/// Uppercase hex MD5 (the ETag of a PutObject or UploadPart body).
pub fn md5_hex_upper(data: &[u8]) -> String {
    hex::encode_upper(Md5::digest(data))
}

/// The ETag of a completed multipart object (without quotes): uppercase hex of the MD5
/// of the parts' binary MD5s, then `-<part count>` (the S3 convention; OSS documents the
/// value only as opaque).
pub fn multipart_etag<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut digests = Md5::new();
    let mut count = 0usize;
    for part in parts {
        digests.update(Md5::digest(part));
        count += 1;
    }
    format!("{}-{count}", hex::encode_upper(digests.finalize()))
}

impl Object {
    /// An object written in one request (PutObject).
    pub fn normal(data: Bytes, meta: ObjectMeta, now_ms: i64) -> Self {
        Self {
            etag: md5_hex_upper(&data),
            crc64: crc64::checksum(&data),
            data,
            kind: ObjectKind::Normal,
            meta,
            last_modified_ms: now_ms,
        }
    }
}

impl Part {
    pub fn new(data: Bytes, now_ms: i64) -> Self {
        Self {
            etag: md5_hex_upper(&data),
            crc64: crc64::checksum(&data),
            data,
            last_modified_ms: now_ms,
        }
    }
}
