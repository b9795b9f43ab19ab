//! The plugin launcher: `streamport-exec PARENT_PID PATH ARGS…` (or the engine binary
//! under `__exec-plugin`) asks the system for SIGKILL when the engine (PARENT_PID) dies,
//! then executes the plugin in its own process (the signal survives the exec), so no
//! step or task outlives a killed engine: an orphan `post` could otherwise commit while
//! a re-run of the window runs. When the engine died before the signal was set, the
//! signal would never come: it exits at once instead.
//!
//! This file is compiled into the engine library and, on its own, into the
//! `streamport-exec` binary (`src/bin/streamport-exec.rs`), which starts several times
//! faster than the engine: every step and task of a job starts through it. It must use
//! nothing but `std` and `rustix`.

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
    let parent: Option<i32> = parent.to_str().and_then(|p| p.parse().ok());
    if let Err(e) =
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
    {
        say(&format!("cannot set the parent-death signal: {e}"));
        return EXIT_FAILED;
    }
    let ppid = rustix::process::getppid().map(|p| p.as_raw_nonzero().get());
    if ppid.is_none() || ppid != parent {
        say("the engine ended before the plugin started");
        return EXIT_FAILED;
    }
    let e = std::process::Command::new(path).args(&args[2..]).exec();
    say(&format!(
        "cannot start {}: {e}",
        std::path::Path::new(path).display()
    ));
    EXIT_CANNOT_EXEC
}
