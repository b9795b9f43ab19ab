//! Helpers shared by the workspace's integration tests (a dev-dependency only).

use std::path::PathBuf;
use std::process::Command;

/// The directory cargo puts this test run's binaries in (`target/debug`).
pub fn target_binaries_dir() -> PathBuf {
    // A test executable lives in `target/<profile>/deps/`.
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// A workspace binary, built with `cargo build -p <name>` if the test run has not built
/// it (cargo builds only the tested package's own binaries).
///
/// # Panics
/// When the build fails: the test cannot run without the binary.
pub fn workspace_binary(name: &str) -> PathBuf {
    let path = target_binaries_dir().join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let built = Command::new(cargo)
            .args(["build", "-p", name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(built, "cargo build -p {name} failed");
    }
    path
}
