//! The OSS emulator: the OSS REST protocol, checked the way OSS checks it.
//!
//! # What it serves
//!
//! * **Addressing** ([`addressing`]): path style (`/<bucket>/<key>`) on loopback, IP
//!   literals and `localhost`; virtual-hosted style when the Host is
//!   `<bucket>.localhost[:port]` or `<bucket>.oss…` (a region endpoint). A key starting
//!   with `-/` cannot be addressed in virtual-hosted style: `/-/…` paths are the
//!   control routes.
//! * **Authentication** ([`auth`], [`canonical`], [`presign`]): V1 (`OSS id:sig`) and
//!   V4 (`OSS4-HMAC-SHA256`) in the Authorization header or as a presigned URL,
//!   verified against the credentials of [`ServiceOptions`] and the STS tokens
//!   registered through `POST /-/oss/sts`; `RequestTimeTooSkewed` outside ±15 minutes of
//!   the emulator [`Clock`](crate::common::Clock) (presigned URLs: expiry instead).
//!   Errors carry `StringToSign`.
//! * **Buckets**: PutBucket, DeleteBucket, ListBuckets, GetBucketInfo, GetBucketLocation,
//!   GetBucketAcl.
//! * **Objects**: PutObject, GetObject (single byte range), HeadObject, GetObjectMeta,
//!   DeleteObject, DeleteMultipleObjects (Content-MD5 required), ListObjects,
//!   ListObjectsV2 (prefix, delimiter, marker / start-after / continuation token,
//!   max-keys, `encoding-type=url`), AppendObject.
//! * **Multipart**: InitiateMultipartUpload, UploadPart, CompleteMultipartUpload (also
//!   `x-oss-complete-all: yes`), AbortMultipartUpload, ListParts, ListMultipartUploads.
//!   An uncompleted upload is invisible to GetObject, HeadObject and listings.
//! * **Integrity**: ETags (uppercase hex MD5; multipart: MD5 of the part MD5s + `-N`),
//!   `Content-MD5` verified (`InvalidDigest`), `x-oss-hash-crc64ecma` ([`crc64`]) on every
//!   write response (combined over parts, chained over appends) and on GET/HEAD,
//!   `x-oss-forbid-overwrite` (`FileAlreadyExists`, checked at Complete time for uploads
//!   if given on Initiate or Complete).
//!
//! Anything else answers OSS `NotImplemented` (501). State lives in memory and, when
//! `ServiceOptions::data_dir` is set, is written through to that directory and read
//! back at start ([`persist`]).
//!
//! # Fault injection
//!
//! Fault rules (`POST /-/faults`, see [`crate::common::admin`]) select operations by
//! their OSS API name ([`operation::Operation::name`]: `PutObject`, `UploadPart`,
//! `CompleteMultipartUpload`, `ListObjectsV2`, …). They apply to requests whose
//! signature verified, after latency; an injected error is rendered as OSS error XML
//! (or `x-oss-err` for HEAD), a drop closes the connection without a response, and
//! `after_apply` performs the operation before faulting its response.
//!
//! # Test-control routes (besides the shared `/-/health`, `/-/faults`, `/-/clock`)
//!
//! | request | effect |
//! |---|---|
//! | `POST /-/oss/buckets/<name>` | create a bucket without signing: `{"ok", "created"}` |
//! | `GET /-/oss/buckets/<name>` | `{"name", "objects": [{"key", "size", "etag", "crc64" (decimal string), "type", "content_type", "last_modified"}]}` |
//! | `GET /-/oss/uploads` | open multipart uploads: `{"uploads": [{"bucket", "key", "upload_id", "initiated", "parts": [{"part_number", "size", "etag", "crc64"}]}]}` |
//! | `POST /-/oss/sts` | register temporary credentials; optional JSON body `{"access_key_id", "access_key_secret", "security_token", "duration_secs"}` (defaults: random, 3600 s); answers `{"access_key_id", "access_key_secret", "security_token", "expiration"}` |
//! | `GET /-/oss/requests`, `DELETE /-/oss/requests` | the request log (last 2000: method, path, query with signature and token values redacted, operation, body bytes, status (0: dropped), error code; no headers), or clear it |
//! | `GET /-/oss/settings`, `POST /-/oss/settings` | `{"max_skew_secs": n}`: the allowed clock skew (default 900) |
//!
//! # STS
//!
//! A temporary key id must come with its security token (header `x-oss-security-token`,
//! the v2 SDK's unsigned `security-token` header, or the `security-token` query
//! parameter). Missing token: `InvalidAccessKeyId`; a different token:
//! `InvalidSecurityToken` (code inferred from EC 0002-00000006); past its expiration on
//! the emulator clock: `SecurityTokenExpired`. A permanent key sent with a token is
//! `InvalidAccessKeyId`, as OSS then treats the request as STS.
//!
//! [`ServiceHandle::info`] carries `bucket` (the default bucket `localcloud`, created at
//! start) and `region` (`cn-hangzhou`).

pub mod addressing;
pub mod auth;
pub mod buckets;
pub mod canonical;
pub mod control;
pub mod crc64;
pub mod error;
pub mod faults;
pub mod listing;
pub mod multipart;
pub mod objects;
pub mod operation;
pub mod persist;
pub mod presign;
pub mod server;
pub mod state;
pub mod wire;

use std::collections::VecDeque;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};

use axum::Router;

use crate::common::{admin, server as common_server, ServiceHandle, ServiceOptions};

/// The bucket created at start and advertised in `info["bucket"]`.
pub const DEFAULT_BUCKET: &str = "localcloud";
/// The region advertised in `info["region"]` (V4 scopes may name any region).
pub const DEFAULT_REGION: &str = "cn-hangzhou";
/// Default allowed clock skew.
pub const DEFAULT_MAX_SKEW_MS: i64 = 15 * 60 * 1000;

/// Starts the service on `options.bind`.
pub async fn start(options: ServiceOptions) -> std::io::Result<ServiceHandle> {
    let oss = Arc::new(server::Oss {
        store: state::SharedStore::default(),
        credentials: options.credentials.clone(),
        clock: options.clock.clone(),
        faults: options.faults.clone(),
        region: DEFAULT_REGION.to_owned(),
        max_skew_ms: AtomicI64::new(DEFAULT_MAX_SKEW_MS),
        log: Mutex::new(VecDeque::new()),
        sts: options.sts.clone(),
    });
    if let Some(dir) = &options.data_dir {
        let disk = persist::Disk::new(dir.clone());
        let mut store = oss.store.lock();
        disk.load(&mut store)?;
        store.disk = Some(disk);
    }
    oss.store
        .lock()
        .create_bucket(DEFAULT_BUCKET, options.clock.now_ms())?;
    let router = admin::router(options.faults.clone(), options.clock.clone())
        .merge(control::router(oss.clone()))
        .merge(Router::new().fallback(server::handle).with_state(oss));
    let mut handle = common_server::serve(&options, router).await?;
    handle.info.insert("bucket".into(), DEFAULT_BUCKET.into());
    handle.info.insert("region".into(), DEFAULT_REGION.into());
    Ok(handle)
}
