//! engine (see the project's issues).
