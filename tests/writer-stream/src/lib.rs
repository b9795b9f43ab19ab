//! `writer-stream`, the equivalent of DataX's `streamwriter`: prints every record as a
//! line of text (columns joined by `fieldDelimiter`, null as `null`) or as JSON lines,
//! writes them to a file, or discards them (`print: false`). See `README.md`.

pub mod config;
pub mod writer;

pub use writer::StreamWriter;
