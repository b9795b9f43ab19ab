fn main() {
    protocol::runtime::run_writer(writer_oss::OssWriter)
}
