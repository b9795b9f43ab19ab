//! Records the git commit the binaries are built from, for every `--version`.
//!
//! `STREAMPORT_GIT_COMMIT`, when set, wins (`scripts/package` passes it, so a tarball
//! names its commit even when built from an exported tree); otherwise `git rev-parse`
//! in the source tree; outside a git checkout (or without git) the commit is `unknown`.
//! The script reruns only when that variable or the checked-out commit changes (the
//! files of `HEAD` and the branch it points to), not on every source change.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// A git-internal path (`--git-path`), made absolute.
fn git_path(dir: &Path, name: &str) -> Option<PathBuf> {
    let path = PathBuf::from(git(dir, &["rev-parse", "--git-path", name])?);
    Some(if path.is_absolute() {
        path
    } else {
        dir.join(path)
    })
}

fn watch(path: Option<PathBuf>) {
    // A path that does not exist would make cargo rerun this script on every build.
    if let Some(path) = path.filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=STREAMPORT_GIT_COMMIT");
    let given = std::env::var("STREAMPORT_GIT_COMMIT")
        .ok()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    let commit = match given {
        Some(commit) => commit,
        None => {
            let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
            let commit = git(&dir, &["rev-parse", "--short=12", "HEAD"]);
            if commit.is_some() {
                watch(git_path(&dir, "HEAD"));
                if let Some(branch) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
                    watch(git_path(&dir, &branch));
                }
                watch(git_path(&dir, "packed-refs"));
            }
            commit.unwrap_or_else(|| "unknown".to_owned())
        }
    };
    println!("cargo:rustc-env=STREAMPORT_BUILD_COMMIT={commit}");
}
