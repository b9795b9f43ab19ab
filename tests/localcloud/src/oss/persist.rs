//! Keeping the OSS emulator's state in `ServiceOptions::data_dir`, so that it survives a
//! restart. Every change is written through when it happens (data first, then a small
//! JSON record, each via a temporary file and a rename), and everything is read back at
//! start.
//!
//! Layout under the data directory:
//!
//! ```text
//! buckets/<bucket>/bucket.json               {"created_ms"}
//! buckets/<bucket>/objects/<sha256(key)>.json  key, type, ETag, CRC-64, metadata, time
//! buckets/<bucket>/objects/<sha256(key)>.data  the object's bytes
//! uploads/<upload id>/upload.json            bucket, key, metadata, forbid-overwrite
//! uploads/<upload id>/<part>.json, <part>.data
//! sts.json                                   the registered temporary credentials
//! ```

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::state::{Bucket, Object, ObjectKind, ObjectMeta, Part, Store, StsCredential, Upload};

/// The on-disk side of a [`Store`].
#[derive(Clone, Debug)]
pub struct Disk {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct BucketRecord {
    created_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct MetaRecord {
    content_type: String,
    headers: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize)]
struct ObjectRecord {
    key: String,
    kind: String,
    etag: String,
    crc64: u64,
    meta: MetaRecord,
    last_modified_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct UploadRecord {
    bucket: String,
    key: String,
    initiated_ms: i64,
    meta: MetaRecord,
    forbid_overwrite: bool,
}

#[derive(Serialize, Deserialize)]
struct PartRecord {
    etag: String,
    crc64: u64,
    last_modified_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct StsRecord {
    access_key_secret: String,
    security_token: String,
    expires_ms: i64,
}

impl From<&ObjectMeta> for MetaRecord {
    fn from(meta: &ObjectMeta) -> Self {
        Self {
            content_type: meta.content_type.clone(),
            headers: meta.headers.clone(),
        }
    }
}

impl From<MetaRecord> for ObjectMeta {
    fn from(record: MetaRecord) -> Self {
        Self {
            content_type: record.content_type,
            headers: record.headers,
        }
    }
}

fn kind_from(name: &str) -> io::Result<ObjectKind> {
    match name {
        "Normal" => Ok(ObjectKind::Normal),
        "Multipart" => Ok(ObjectKind::Multipart),
        "Appendable" => Ok(ObjectKind::Appendable),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unknown object type {other:?}"),
        )),
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temporary = path.with_extension("tmp");
    fs::write(&temporary, bytes)?;
    fs::rename(&temporary, path)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_atomically(path, &bytes)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<T> {
    serde_json::from_slice(&fs::read(path)?).map_err(io::Error::other)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Entries of a directory that may not exist yet.
fn entries(dir: &Path) -> io::Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(read) => read.map(|e| e.map(|e| e.path())).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

impl Disk {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.root.join("buckets").join(bucket)
    }

    fn object_path(&self, bucket: &str, key: &str, extension: &str) -> PathBuf {
        let name = hex::encode(Sha256::digest(key.as_bytes()));
        self.bucket_dir(bucket)
            .join("objects")
            .join(format!("{name}.{extension}"))
    }

    fn upload_dir(&self, upload_id: &str) -> PathBuf {
        self.root.join("uploads").join(upload_id)
    }

    pub fn save_bucket(&self, name: &str, bucket: &Bucket) -> io::Result<()> {
        let dir = self.bucket_dir(name);
        fs::create_dir_all(dir.join("objects"))?;
        write_json(
            &dir.join("bucket.json"),
            &BucketRecord {
                created_ms: bucket.created_ms,
            },
        )
    }

    pub fn remove_bucket(&self, name: &str) -> io::Result<()> {
        fs::remove_dir_all(self.bucket_dir(name))
    }

    pub fn save_object(&self, bucket: &str, key: &str, object: &Object) -> io::Result<()> {
        write_atomically(&self.object_path(bucket, key, "data"), &object.data)?;
        write_json(
            &self.object_path(bucket, key, "json"),
            &ObjectRecord {
                key: key.to_owned(),
                kind: object.kind.as_str().to_owned(),
                etag: object.etag.clone(),
                crc64: object.crc64,
                meta: (&object.meta).into(),
                last_modified_ms: object.last_modified_ms,
            },
        )
    }

    pub fn remove_object(&self, bucket: &str, key: &str) -> io::Result<()> {
        remove_if_present(&self.object_path(bucket, key, "json"))?;
        remove_if_present(&self.object_path(bucket, key, "data"))
    }

    pub fn save_upload(&self, upload_id: &str, upload: &Upload) -> io::Result<()> {
        let dir = self.upload_dir(upload_id);
        fs::create_dir_all(&dir)?;
        write_json(
            &dir.join("upload.json"),
            &UploadRecord {
                bucket: upload.bucket.clone(),
                key: upload.key.clone(),
                initiated_ms: upload.initiated_ms,
                meta: (&upload.meta).into(),
                forbid_overwrite: upload.forbid_overwrite,
            },
        )
    }

    pub fn save_part(&self, upload_id: &str, number: u32, part: &Part) -> io::Result<()> {
        let dir = self.upload_dir(upload_id);
        write_atomically(&dir.join(format!("{number}.data")), &part.data)?;
        write_json(
            &dir.join(format!("{number}.json")),
            &PartRecord {
                etag: part.etag.clone(),
                crc64: part.crc64,
                last_modified_ms: part.last_modified_ms,
            },
        )
    }

    pub fn remove_upload(&self, upload_id: &str) -> io::Result<()> {
        match fs::remove_dir_all(self.upload_dir(upload_id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn save_sts(&self, sts: &HashMap<String, StsCredential>) -> io::Result<()> {
        fs::create_dir_all(&self.root)?;
        let records: HashMap<&String, StsRecord> = sts
            .iter()
            .map(|(id, c)| {
                let record = StsRecord {
                    access_key_secret: c.access_key_secret.clone(),
                    security_token: c.security_token.clone(),
                    expires_ms: c.expires_ms,
                };
                (id, record)
            })
            .collect();
        write_json(&self.root.join("sts.json"), &records)
    }

    /// Reads everything saved under the data directory into `store`.
    pub fn load(&self, store: &mut Store) -> io::Result<()> {
        for dir in entries(&self.root.join("buckets"))? {
            let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            let record: BucketRecord = read_json(&dir.join("bucket.json"))?;
            let mut bucket = Bucket {
                created_ms: record.created_ms,
                objects: Default::default(),
            };
            for path in entries(&dir.join("objects"))? {
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                let record: ObjectRecord = read_json(&path)?;
                let data = Bytes::from(fs::read(path.with_extension("data"))?);
                let object = Object {
                    data,
                    kind: kind_from(&record.kind)?,
                    etag: record.etag,
                    crc64: record.crc64,
                    meta: record.meta.into(),
                    last_modified_ms: record.last_modified_ms,
                };
                bucket.objects.insert(record.key, object);
            }
            store.buckets.insert(name, bucket);
        }
        for dir in entries(&self.root.join("uploads"))? {
            let Some(id) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            let record: UploadRecord = read_json(&dir.join("upload.json"))?;
            let mut upload = Upload {
                bucket: record.bucket,
                key: record.key,
                initiated_ms: record.initiated_ms,
                meta: record.meta.into(),
                forbid_overwrite: record.forbid_overwrite,
                parts: Default::default(),
            };
            for path in entries(&dir)? {
                let number = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.parse::<u32>().ok());
                let is_json = path.extension().and_then(|e| e.to_str()) == Some("json");
                let (Some(number), true) = (number, is_json) else {
                    continue;
                };
                let record: PartRecord = read_json(&path)?;
                let part = Part {
                    data: Bytes::from(fs::read(path.with_extension("data"))?),
                    etag: record.etag,
                    crc64: record.crc64,
                    last_modified_ms: record.last_modified_ms,
                };
                upload.parts.insert(number, part);
            }
            store.uploads.insert(id, upload);
        }
        let sts_path = self.root.join("sts.json");
        if sts_path.exists() {
            let records: HashMap<String, StsRecord> = read_json(&sts_path)?;
            for (id, r) in records {
                let credential = StsCredential {
                    access_key_secret: r.access_key_secret,
                    security_token: r.security_token,
                    expires_ms: r.expires_ms,
                };
                store.sts.insert(id, credential);
            }
        }
        Ok(())
    }
}
