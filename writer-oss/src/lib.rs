//! writer-oss (see the project's issues).
