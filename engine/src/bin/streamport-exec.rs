//! `streamport-exec PARENT_PID PATH ARGS…`: the engine's plugin launcher (see
//! `src/launcher.rs`). Built from that one file, without the engine library, so that it
//! starts in a fraction of the engine's time.

#[path = "../launcher.rs"]
mod launcher;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.len() == 1 && args[0] == "--version" {
        use std::io::Write;
        let line = format!("streamport-exec {}", protocol::VERSION);
        let ok = writeln!(std::io::stdout().lock(), "{line}").is_ok();
        std::process::exit(if ok { 0 } else { 1 });
    }
    std::process::exit(launcher::exec_plugin("streamport-exec", &args));
}
