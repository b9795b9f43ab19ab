//! The build script that gives every `--version` its commit (`build.rs`): compiled on
//! its own and run as cargo would, inside and outside a git checkout.

// Tests may unwrap.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn build_script(dir: &Path) -> PathBuf {
    let exe = dir.join("build-script");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("build.rs");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let status = Command::new(rustc)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--edition", "2021", "-o"])
        .arg(&exe)
        .arg(&source)
        .status()
        .unwrap();
    assert!(status.success(), "compiling build.rs failed");
    exe
}

/// Runs the script with `manifest_dir` as its package directory; returns its output.
fn run(exe: &Path, manifest_dir: &Path, commit_var: Option<&str>) -> String {
    let mut cmd = Command::new(exe);
    cmd.env("CARGO_MANIFEST_DIR", manifest_dir)
        .env_remove("STREAMPORT_GIT_COMMIT")
        // git must not find a repository above a temporary directory.
        .env(
            "GIT_CEILING_DIRECTORIES",
            manifest_dir.parent().unwrap_or(manifest_dir),
        );
    if let Some(c) = commit_var {
        cmd.env("STREAMPORT_GIT_COMMIT", c);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn commit_of(output: &str) -> &str {
    output
        .lines()
        .find_map(|l| l.strip_prefix("cargo:rustc-env=STREAMPORT_BUILD_COMMIT="))
        .unwrap_or_else(|| panic!("no commit in {output}"))
}

#[test]
fn commit_from_git_from_the_variable_or_unknown() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_script(tmp.path());
    let outside = tmp.path().join("exported-tree");
    std::fs::create_dir(&outside).unwrap();

    // Outside git: unknown, and nothing to watch but the variable.
    let out = run(&exe, &outside, None);
    assert_eq!(commit_of(&out), "unknown", "{out}");
    assert!(!out.contains("HEAD"), "{out}");
    assert!(out.contains("cargo:rerun-if-env-changed=STREAMPORT_GIT_COMMIT"));

    // The variable wins (scripts/package passes it).
    let out = run(&exe, &outside, Some(" 0123456789ab \n"));
    assert_eq!(commit_of(&out), "0123456789ab", "{out}");
    let out = run(&exe, &outside, Some(""));
    assert_eq!(commit_of(&out), "unknown", "{out}");

    // Inside this checkout (when the tests run in one): the commit of HEAD, and the
    // script reruns when HEAD or its branch moves, watching only files that exist.
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(here)
        .output();
    let Some(head) = head.ok().filter(|o| o.status.success()) else {
        eprintln!("not in a git checkout: the git case is not tested");
        return;
    };
    let head = String::from_utf8(head.stdout).unwrap();
    let mut cmd = Command::new(&exe);
    cmd.env("CARGO_MANIFEST_DIR", here)
        .env_remove("STREAMPORT_GIT_COMMIT");
    let out = String::from_utf8(cmd.output().unwrap().stdout).unwrap();
    assert_eq!(commit_of(&out), head.trim(), "{out}");
    let watched: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("cargo:rerun-if-changed="))
        .filter(|p| *p != "build.rs")
        .collect();
    assert!(
        watched.iter().any(|p| p.ends_with("HEAD")),
        "HEAD is not watched: {out}"
    );
    for p in watched {
        assert!(Path::new(p).exists(), "watches a missing file {p}");
    }
}
