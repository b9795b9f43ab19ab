//! `writer-stream`: DataX's streamwriter as a plugin of this project.

fn main() {
    protocol::runtime::run_writer(writer_stream::StreamWriter);
}
