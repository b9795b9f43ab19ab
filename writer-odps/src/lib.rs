//! writer-odps (see the project's issues).
