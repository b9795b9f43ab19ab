//! `engine`: see `engine --help` and the crate's README.

fn main() {
    std::process::exit(engine::cli::main());
}
