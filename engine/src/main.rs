//! `streamport`: see `streamport --help` and the crate's README.

fn main() {
    std::process::exit(engine::entry());
}
