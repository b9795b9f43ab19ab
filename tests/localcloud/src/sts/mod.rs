//! Emulated Security Token Service and ECS instance metadata service, on one port.
//!
//! Both issue temporary credentials into the [`StsRegistry`](crate::common::StsRegistry)
//! shared with the Tablestore, OSS and MaxCompute emulators, which then accept them with
//! their security token until they expire, and refuse them afterwards with the
//! service's expired-token error.
//!
//! **Metadata service** (what the official providers call, see the `credentials`
//! crate): `PUT /latest/api/token` (header `X-aliyun-ecs-metadata-token-ttl-seconds`,
//! 1–21600) answers a session token; `GET /latest/meta-data/ram/security-credentials/`
//! the role name; `GET /latest/meta-data/ram/security-credentials/<role>`
//! `{"Code": "Success", "LastUpdated", "Expiration", "AccessKeyId", "AccessKeySecret",
//! "SecurityToken"}`. A request with an unknown `X-aliyun-ecs-metadata-token` is 401;
//! one without a token is served unless IMDSv2 is required (then 401). The role's
//! credentials are issued again once less than two thirds of their lifetime is left.
//!
//! **STS** `GET` or `POST /` with the RPC parameters of AssumeRole (`Action`,
//! `Version=2015-04-01`, `Format`, `AccessKeyId`, `SignatureMethod=HMAC-SHA1`,
//! `SignatureVersion=1.0`, `SignatureNonce`, `Timestamp`, `Signature`, `RoleArn`,
//! `RoleSessionName`, `DurationSeconds` 900–3600, optional `Policy`, `ExternalId`,
//! `SecurityToken`): the signature is verified (HMAC-SHA1 with `secret&` over
//! `GET&%2F&<encoded sorted parameters>`), with a permanent key or an issued one.
//! Errors answer `{"RequestId", "HostId", "Code", "Message"}`.
//!
//! **Lifetime.** Issued credentials live `DurationSeconds` (AssumeRole) or 6 hours
//! (metadata), unless the emulator is given a fixed lifetime (`localcloud serve
//! --sts-ttl-ms`, or `POST /-/sts/settings {"ttl_ms": n}`): tests use a few seconds
//! to make tokens expire during a job.
//!
//! | control request | effect |
//! |---|---|
//! | `GET /-/sts/stats` | `{"issued", "assume_role_calls", "metadata_calls", "role_name"}` |
//! | `POST /-/sts/settings` | `{"ttl_ms": n or null, "imds_v2_required": bool}` |

mod server;

pub use server::StsOptions;

use std::sync::Arc;

use crate::common::{
    admin as common_admin, server as common_server, ServiceHandle, ServiceOptions,
};

/// Starts the STS and metadata emulator on `options.bind`, issuing into `options.sts`.
pub async fn start(options: ServiceOptions, sts: StsOptions) -> std::io::Result<ServiceHandle> {
    let role_name = sts.role_name.clone();
    let state = Arc::new(server::Sts::new(&options, sts));
    let router = server::router(state).merge(common_admin::router(
        options.faults.clone(),
        options.clock.clone(),
    ));
    let mut handle = common_server::serve(&options, router).await?;
    handle.info.insert("role_name".into(), role_name.into());
    Ok(handle)
}
