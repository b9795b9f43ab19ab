//! `writer-odps`: DataX's odpswriter as a plugin of this project. Loads records into
//! one MaxCompute table (one partition) through the Tunnel: `prepare` checks the table
//! and partition, truncates when asked and opens one upload session; every task
//! streams its blocks into that session; `post` verifies the block list and commits
//! the session once per window (append loads keep commit markers, [`commit`]);
//! `abort` asks the Tunnel what was committed. See `README.md`.

pub mod block;
pub mod client;
pub mod commit;
pub mod config;
pub mod convert;
pub mod error;
pub mod follow;
pub mod http;
mod post;
pub mod schema;
pub mod sign;
mod task;
pub mod upload;
pub mod writer;
#[doc(hidden)]
pub mod xml;

pub use writer::OdpsWriter;
