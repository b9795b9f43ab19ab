//! protocol (see the project's issues).
