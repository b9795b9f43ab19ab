//! writer-stream (see the project's issues).
