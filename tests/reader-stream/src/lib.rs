//! reader-stream (see the project's issues).
