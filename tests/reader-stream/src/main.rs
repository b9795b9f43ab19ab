//! `reader-stream`: DataX's streamreader as a plugin of this project.

fn main() {
    protocol::runtime::run_reader(reader_stream::StreamReader);
}
