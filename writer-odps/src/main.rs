//! `writer-odps`: DataX's odpswriter as a plugin of this project.

fn main() {
    protocol::runtime::run_writer(writer_odps::OdpsWriter);
}
