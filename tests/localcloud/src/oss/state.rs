//! What the OSS emulator holds: buckets with their objects, open multipart uploads,
//! registered STS credentials. Everything is in memory behind one mutex; each request
//! does its work in one critical section, so operations are atomic.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use md5::{Digest, Md5};

use super::crc64;
use super::persist::Disk;

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
    /// Where changes are written through, if the service has a data directory.
    pub disk: Option<Disk>,
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

/// Every change goes through these methods, which also write it to the data
/// directory when there is one (see [`super::persist`]).
impl Store {
    /// Creates `name` if absent; returns whether it was created.
    pub fn create_bucket(&mut self, name: &str, now_ms: i64) -> io::Result<bool> {
        if self.buckets.contains_key(name) {
            return Ok(false);
        }
        let bucket = Bucket {
            created_ms: now_ms,
            objects: BTreeMap::new(),
        };
        if let Some(disk) = &self.disk {
            disk.save_bucket(name, &bucket)?;
        }
        self.buckets.insert(name.to_owned(), bucket);
        Ok(true)
    }

    pub fn remove_bucket(&mut self, name: &str) -> io::Result<()> {
        if let Some(disk) = &self.disk {
            disk.remove_bucket(name)?;
        }
        self.buckets.remove(name);
        Ok(())
    }

    /// Stores `object` under `key` in an existing `bucket`.
    pub fn put_object(&mut self, bucket: &str, key: &str, object: Object) -> io::Result<()> {
        if let Some(disk) = &self.disk {
            disk.save_object(bucket, key, &object)?;
        }
        if let Some(bucket) = self.buckets.get_mut(bucket) {
            bucket.objects.insert(key.to_owned(), object);
        }
        Ok(())
    }

    pub fn remove_object(&mut self, bucket: &str, key: &str) -> io::Result<()> {
        if let Some(disk) = &self.disk {
            disk.remove_object(bucket, key)?;
        }
        if let Some(bucket) = self.buckets.get_mut(bucket) {
            bucket.objects.remove(key);
        }
        Ok(())
    }

    pub fn put_upload(&mut self, upload_id: &str, upload: Upload) -> io::Result<()> {
        if let Some(disk) = &self.disk {
            disk.save_upload(upload_id, &upload)?;
        }
        self.uploads.insert(upload_id.to_owned(), upload);
        Ok(())
    }

    /// Stores `part` in an existing upload, replacing a part with the same number.
    pub fn put_part(&mut self, upload_id: &str, number: u32, part: Part) -> io::Result<()> {
        if let Some(disk) = &self.disk {
            disk.save_part(upload_id, number, &part)?;
        }
        if let Some(upload) = self.uploads.get_mut(upload_id) {
            upload.parts.insert(number, part);
        }
        Ok(())
    }

    pub fn remove_upload(&mut self, upload_id: &str) -> io::Result<()> {
        if let Some(disk) = &self.disk {
            disk.remove_upload(upload_id)?;
        }
        self.uploads.remove(upload_id);
        Ok(())
    }

    pub fn put_sts(&mut self, access_key_id: &str, credential: StsCredential) -> io::Result<()> {
        self.sts.insert(access_key_id.to_owned(), credential);
        if let Some(disk) = &self.disk {
            disk.save_sts(&self.sts)?;
        }
        Ok(())
    }
}

/// Uppercase hex MD5 (the ETag of a PutObject or UploadPart body).
pub fn md5_hex_upper(data: &[u8]) -> String {
    hex::encode_upper(Md5::digest(data))
}

/// The ETag of a completed multipart object (without quotes): uppercase hex of the MD5
/// of the parts' binary MD5s, then `-<part count>` (the S3 convention; OSS documents the
/// value only as opaque).
/// Each part's MD5 is the one its ETag holds (computed when the part arrived), so the
/// parts are not hashed a second time.
pub fn multipart_etag<'a>(parts: impl IntoIterator<Item = &'a Part>) -> String {
    let mut digests = Md5::new();
    let mut count = 0usize;
    for part in parts {
        let mut md5 = [0u8; 16];
        match hex::decode_to_slice(&part.etag, &mut md5) {
            Ok(()) => digests.update(md5),
            Err(_) => digests.update(Md5::digest(&part.data)),
        }
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
