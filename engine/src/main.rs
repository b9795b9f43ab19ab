//! `engine`: see `engine --help` and the crate's README.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args
        .first()
        .is_some_and(|a| a == engine::plugins::EXEC_PLUGIN_ARG)
    {
        std::process::exit(engine::plugins::exec_plugin(&args[1..]));
    }
    std::process::exit(engine::cli::main());
}
