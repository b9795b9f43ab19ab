//! `engine`: the `streamport` command under its wave-1 name.

fn main() {
    std::process::exit(engine::entry());
}
