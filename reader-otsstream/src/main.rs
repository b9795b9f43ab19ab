//! `reader-otsstream`: Tablestore Stream change logs with DataX's semantics.

fn main() {
    protocol::runtime::run_reader(reader_otsstream::OtsStreamReader);
}
