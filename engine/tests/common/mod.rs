//! Helpers of the engine's integration tests: the plugin binaries, job files in a
//! temporary directory, and running the engine with a deadline.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The engine binary; the plugins are built beside it.
pub fn engine_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_engine"))
}

/// Builds reader-stream, writer-stream and the misbehaving plugins once (they are other
/// packages' binaries, which `cargo test -p engine` does not build by itself).
pub fn plugins_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = engine_bin().parent().unwrap().to_path_buf();
        let names = [
            "reader-stream",
            "writer-stream",
            "reader-misbehave",
            "writer-misbehave",
        ];
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "-p",
            "reader-stream",
            "-p",
            "writer-stream",
            "-p",
            "plugin-misbehave",
        ]);
        if dir.ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo build of the plugins");
        assert!(status.success(), "building the test plugins failed");
        for n in names {
            assert!(dir.join(n).exists(), "{n} missing in {}", dir.display());
        }
    });
}

/// What a finished engine run showed.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "exit code; stderr:\n{}", self.stderr);
        self
    }

    pub fn assert_stderr_has(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}:\n{}",
            self.stderr
        );
        self
    }
}

/// A temporary directory with a job file in it.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        plugins_built();
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A DataX job with the given reader/writer names and parameters.
    pub fn job(
        &self,
        setting: serde_json::Value,
        reader: (&str, serde_json::Value),
        writer: (&str, serde_json::Value),
    ) -> PathBuf {
        let job = serde_json::json!({"job": {"setting": setting, "content": [{
            "reader": {"name": reader.0, "parameter": reader.1},
            "writer": {"name": writer.0, "parameter": writer.1},
        }]}});
        self.write("job.json", &serde_json::to_string_pretty(&job).unwrap())
    }

    pub fn engine(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(engine_bin());
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("MISBEHAVE_MODE");
        cmd
    }

    pub fn read_json(&self, name: &str) -> serde_json::Value {
        let text =
            std::fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        serde_json::from_str(&text).unwrap()
    }
}

/// Runs `cmd` and fails the test if it does not end within `deadline`.
pub fn run(mut cmd: Command, deadline: Duration) -> Outcome {
    let started = Instant::now();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish(child, started, deadline)
}

pub fn finish(mut child: Child, started: Instant, deadline: Duration) -> Outcome {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err_reader.join().unwrap_or_default();
            panic!("the engine did not end within {deadline:?}; stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    Outcome {
        code: status.code().unwrap_or(-1),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
        elapsed,
    }
}

/// Runs `engine run JOB extra…` in the workspace.
pub fn run_job(ws: &Workspace, job: &Path, extra: &[&str], deadline: Duration) -> Outcome {
    let mut args = vec!["run", job.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(ws.engine(&args), deadline)
}
