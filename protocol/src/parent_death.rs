//! The parent-death guard of every process the engine starts.
//!
//! A step or task must not outlive a killed engine: an orphan `post` could commit
//! while a re-run of the same window runs. The process asks the system for SIGKILL
//! when its parent (the engine) dies; the request survives `exec`. If the engine died
//! before the request was made, the signal would never come, so the process checks
//! that its parent is still the engine and ends at once otherwise.
//!
//! Two callers: the engine's launcher (`streamport-exec`, which then executes a plugin)
//! and a plugin built on this runtime that the engine starts directly with
//! `--engine-pid PID` (it said so in an earlier step's answer, see
//! [`crate::runtime::StepResponse::parent_death_guard`]): one `exec` fewer per step.
//! A plugin started so whose parent is not the engine (a wrapper script forked it)
//! refuses to run: it could outlive the engine.
//! This module uses nothing but `std` and `rustix`: the launcher stays small.

/// Asks for SIGKILL when the parent dies, then checks that the parent is `engine_pid`.
/// `Err`: a message for the process to print before it exits.
pub fn guard(engine_pid: i32) -> Result<(), String> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| format!("cannot set the parent-death signal: {e}"))?;
    let parent = rustix::process::getppid().map(|p| p.as_raw_nonzero().get());
    if parent == Some(engine_pid) {
        Ok(())
    } else {
        Err(format!(
            "the engine ended before the plugin started (its parent is process {}, not the \
             engine's {engine_pid}; or a wrapper script forked it)",
            parent.unwrap_or(0)
        ))
    }
}
