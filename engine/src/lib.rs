//! The engine: runs a job file end to end.
//!
//! It reads a job ([`job`]), finds the reader and writer executables ([`plugins`]),
//! runs the job-level steps ([`steps`]) and the tasks ([`task`]) in the order of
//! [`lifecycle`] (the commit and signals in [`commit`]), forwards framed records between each task's reader and writer without
//! re-encoding them ([`frames`]), and enforces the job's speed and error limits
//! ([`limits`]) centrally. [`progress`] shows progress and runs the watchdog;
//! [`summary`] reports the outcome. Exit codes are in [`error`].

pub mod check;
pub mod cli;
pub mod commit;
pub mod error;
pub mod follow;
pub mod forwarding;
pub mod frames;
pub mod job;
pub mod launcher;
pub mod lifecycle;
pub mod limits;
pub mod manuals;
#[macro_use]
pub mod log;
pub mod plan;
pub mod plugin_test;
pub mod plugins;
pub mod progress;
pub mod secrets;
pub mod shared;
pub mod steps;
pub mod summary;
pub mod task;

/// The program's entry, shared by the `streamport` and `engine` binaries: the internal
/// plugin launcher ([`launcher::exec_plugin`]) or the command line ([`cli::main`]).
/// Returns the process exit code.
pub fn entry() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == plugins::EXEC_PLUGIN_ARG) {
        return launcher::exec_plugin("engine", &args[1..]);
    }
    cli::main()
}
