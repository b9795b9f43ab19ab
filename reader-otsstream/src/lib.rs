//! reader-otsstream (see the project's issues).
