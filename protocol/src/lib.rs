//! The wire contract between the engine and its plugins, and the plugin-side runtime.
//!
//! This crate is the normative description of the protocol:
//!
//! * [`value`]: the record and column model, DataX byte sizes, conversions.
//! * [`records`]: the MessagePack encoding of records.
//! * [`message`]: every message, its direction and contract, and the order of a stream.
//! * [`frame`]: the preamble and frames (length, body, CRC-32), decoders and writers,
//!   the `hello` compatibility rule.
//! * [`jsonl`]: the JSON-lines form of records (`--format jsonl`).
//! * [`connection`]: checks of endpoints and credentials every service plugin makes
//!   when it reads its configuration.
//! * [`jobfile`]: reading `--config` job files as the vendor documentation writes them.
//! * [`placeholders`]: `${name}` and `$[expression]` in job files, substituted without
//!   letting a value change the document's structure.
//! * [`runtime`]: the command line and modes every plugin shares.
//! * [`logfmt`]: the log lines' timestamp format, and how much of a record they show.
//! * [`timefmt`]: time zones and Java date patterns (`dateFormat`, `timeZone`).
//!
//! Golden frames of every message type are in `testdata/golden/` (see `tests/golden.rs`).

pub mod connection;
pub mod frame;
pub mod jobfile;
pub mod jsonl;
pub mod logfmt;
pub mod message;
pub mod parent_death;
pub mod placeholders;
pub mod records;
pub mod runtime;
pub mod timefmt;
pub mod value;

/// The git commit this build was made from (`git rev-parse --short=12 HEAD`, or the
/// `STREAMPORT_GIT_COMMIT` variable at build time), `unknown` for a build outside git.
pub const BUILD_COMMIT: &str = env!("STREAMPORT_BUILD_COMMIT");

/// The version every `--version` of the project prints: the release and the commit,
/// e.g. `0.1.0 (commit 0123456789ab)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("STREAMPORT_BUILD_COMMIT"),
    ")"
);

pub use frame::{FrameDecoder, FrameError, FrameReader, FrameWriter};
pub use message::{Message, Role};
pub use value::{Record, Value};
