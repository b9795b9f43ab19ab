//! `reader-stream`, the equivalent of DataX's `streamreader`: every task emits
//! `sliceRecordCount` records built from the `column` list. Beyond DataX it generates
//! sequences and random values of a chosen width (for benchmarks), and `seed` makes
//! random output reproducible. See `README.md` for every parameter.

pub mod config;
pub mod reader;

pub use reader::StreamReader;
