//! The plugin launcher: `streamport-exec PARENT_PID PATH ARGS…` (or the engine binary
//! under `__exec-plugin`) asks the system for SIGKILL when the engine (PARENT_PID) dies,
//! then executes the plugin in its own process (the signal survives the exec), so no
//! step or task outlives a killed engine: an orphan `post` could otherwise commit while
//! a re-run of the window runs. When the engine died before the signal was set, the
//! signal would never come: it exits at once instead.
//!
//! This file is compiled into the engine library and, on its own, into the
//! `streamport-exec` binary (`src/bin/streamport-exec.rs`), which starts several times
//! faster than the engine: every step and task of a plugin that does not guard itself
//! starts through it ([`crate::plugins::spawn`]). It must use nothing but `std`,
//! `rustix` and `protocol::parent_death` (which uses nothing else).

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;

/// Exit codes, as the engine's (`error::EXIT_*`): usage, failure, not executable.
const EXIT_USAGE: i32 = 2;
const EXIT_FAILED: i32 = 1;
const EXIT_CANNOT_EXEC: i32 = 127;

/// Runs the launcher with its arguments (after the program name, or after
/// `__exec-plugin`); `name` prefixes its messages. Returns only on failure (the exit
/// code).
pub fn exec_plugin(name: &str, args: &[OsString]) -> i32 {
    let say = |line: &str| {
        let _ = writeln!(std::io::stderr().lock(), "{name}: {line}");
    };
    let (Some(parent), Some(path)) = (args.first(), args.get(1)) else {
        say("needs PARENT_PID PATH ARGS… (the engine starts its plugins through it)");
        return EXIT_USAGE;
    };
    let Some(parent) = parent.to_str().and_then(|p| p.parse().ok()) else {
        say("PARENT_PID is not a process id");
        return EXIT_USAGE;
    };
    if let Err(e) = protocol::parent_death::guard(parent) {
        say(&e);
        return EXIT_FAILED;
    }
    let e = std::process::Command::new(path).args(&args[2..]).exec();
    say(&format!(
        "cannot start {}: {e}",
        std::path::Path::new(path).display()
    ));
    EXIT_CANNOT_EXEC
}
