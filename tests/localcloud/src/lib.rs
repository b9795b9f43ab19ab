//! `localcloud`: protocol-faithful emulators of Alibaba Cloud Tablestore, OSS and
//! MaxCompute, for tests.
//!
//! Each service lives in its own module (`ots`, `oss`, `odps`) with the same files:
//! `server` (HTTP routing and request checks), `state` (tables, buckets, projects),
//! `wire` (the service's encodings) and `faults` (how injected faults look on that
//! service's wire). What the three share is in [`common`]: the fault plan, the
//! emulator clock, credentials and the running-server handle.
//!
//! Every service also answers a test-control interface under the reserved path
//! prefix `/-/` on its own port (no Tablestore action, OSS bucket or MaxCompute
//! resource path can start with `-`). See [`common::admin`].
//!
//! The emulators share no code with the plugins under test: a bug shared by both
//! sides would pass every test. The official SDKs are the independent check.

pub mod common;
pub mod odps;
pub mod oss;
pub mod ots;
pub mod sts;

pub use common::{Credentials, ServiceHandle, ServiceOptions};
