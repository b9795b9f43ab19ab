//! `streamport test-plugin PATH`: a contract suite for any plugin executable.
//!
//! It runs the plugin the way the engine does (job steps with `--engine`, tasks over
//! stdio frames) and judges every answer against the protocol (`protocol` crate docs,
//! `docs/plugins.md`): `--version`, `spec`, the steps and their answers, the task's
//! hello, frames, batches (records as a bin holding the encoded array, counts, DataX
//! byte sizes), `eos`/`done`, `cancel`, `error` frames for a bad configuration and bad
//! input, exit codes, and that stdout holds nothing but the protocol. Each check prints
//! `PASS` or `FAIL` with what was wrong; the command exits 0 only if every check passed.
//!
//! A reader runs one job: check, prepare, split, its tasks, post; and the failure
//! paths (bad task config, cancel before and during the task) in an aborted job. A
//! writer gets records from the suite (`--records` generated rows, or `--records-file`
//! JSON lines) in the same two jobs.

mod failures;
mod observe;
mod process;
mod steps;
mod tasks;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use protocol::message::JobContext;
use protocol::{Role, Value};
use serde_json::Value as Json;

use crate::error::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

/// The options of `streamport test-plugin`.
#[derive(Args, Debug)]
pub struct TestPluginArgs {
    /// The plugin executable (a path, or a name found on PATH).
    pub plugin: PathBuf,
    /// The plugin's configuration: a parameter object as JSON text, or a file holding one
    /// (a whole job file works too: the plugin's section is taken). Default: {}.
    #[arg(long, short, value_name = "JSON|FILE")]
    pub config: Option<String>,
    /// Test it as this role. Default: from its file name (reader-… / writer-…).
    #[arg(long, value_enum)]
    pub role: Option<RoleArg>,
    /// Writers: how many generated records ([long i, string "row-i"]) to send.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub records: u64,
    /// Writers: send these records instead (JSON lines, as `--format jsonl` prints them).
    #[arg(long, value_name = "FILE")]
    pub records_file: Option<PathBuf>,
    /// Seconds a step may take, and a task may stay silent, before it counts as hung.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub timeout: f64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RoleArg {
    Reader,
    Writer,
}

/// One check's outcome.
#[derive(Debug)]
enum Outcome {
    Pass(String),
    Fail(String),
    Skip(String),
}

/// The checks run so far, printed as they finish.
pub(crate) struct Report {
    passed: usize,
    failed: usize,
    skipped: usize,
}

impl Report {
    fn print(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn record(&mut self, name: &str, outcome: Outcome) -> bool {
        let (tag, text, ok) = match outcome {
            Outcome::Pass(t) => {
                self.passed += 1;
                ("PASS", t, true)
            }
            Outcome::Fail(t) => {
                self.failed += 1;
                ("FAIL", t, false)
            }
            Outcome::Skip(t) => {
                self.skipped += 1;
                ("SKIP", t, false)
            }
        };
        self.print(&format!("{tag}  {name}: {text}"));
        ok
    }

    pub(crate) fn pass(&mut self, name: &str, detail: impl Into<String>) -> bool {
        self.record(name, Outcome::Pass(detail.into()))
    }

    pub(crate) fn fail(&mut self, name: &str, message: impl Into<String>) -> bool {
        self.record(name, Outcome::Fail(message.into()))
    }

    pub(crate) fn skip(&mut self, name: &str, why: impl Into<String>) -> bool {
        self.record(name, Outcome::Skip(why.into()))
    }

    /// Records `result` as a pass (its detail) or a failure (its message).
    pub(crate) fn check(&mut self, name: &str, result: Result<String, String>) -> bool {
        match result {
            Ok(d) => self.pass(name, d),
            Err(m) => self.fail(name, m),
        }
    }
}

/// What the checks share.
pub(crate) struct Suite {
    pub plugin: PathBuf,
    pub role: Role,
    pub parameter: Json,
    pub records: Vec<Vec<Value>>,
    pub timeout: Duration,
    pub report: Report,
    jobs: u32,
}

impl Suite {
    /// The context of a new job run (its own job id; the fingerprint of the parameter).
    pub fn job(&mut self, task_index: u32, task_count: u32) -> JobContext {
        self.jobs += 1;
        use md5::Digest;
        let fingerprint = hex::encode(md5::Md5::digest(self.parameter.to_string().as_bytes()));
        JobContext {
            job_id: format!("test-plugin-{}-{}", std::process::id(), self.jobs),
            fingerprint,
            time_zone: "UTC".to_owned(),
            task_index,
            task_count,
        }
    }
}

/// Runs the suite; returns the exit code (0 all passed, 1 a check failed, 2 usage).
pub fn run(args: &TestPluginArgs) -> i32 {
    let suite = match setup(args) {
        Ok(s) => s,
        Err(e) => {
            crate::error!("test-plugin: {e}");
            return EXIT_USAGE;
        }
    };
    let mut suite = suite;
    suite.report.print(&format!(
        "testing {} as a {} (timeout {} s)",
        suite.plugin.display(),
        suite.role.name(),
        suite.timeout.as_secs_f64()
    ));
    steps::version_and_spec(&mut suite);
    steps::session(&mut suite);
    match suite.role {
        Role::Reader => tasks::reader_suite(&mut suite),
        _ => tasks::writer_suite(&mut suite),
    }
    let r = &suite.report;
    r.print(&format!(
        "{} checks: {} passed, {} failed, {} skipped",
        r.passed + r.failed + r.skipped,
        r.passed,
        r.failed,
        r.skipped
    ));
    if r.failed == 0 && r.skipped == 0 {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

fn setup(args: &TestPluginArgs) -> Result<Suite, String> {
    let role = match args.role {
        Some(RoleArg::Reader) => Role::Reader,
        Some(RoleArg::Writer) => Role::Writer,
        None => {
            let name = args
                .plugin
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with("reader-") || name.ends_with("reader") {
                Role::Reader
            } else if name.starts_with("writer-") || name.ends_with("writer") {
                Role::Writer
            } else {
                return Err(format!(
                    "cannot tell from the name {name:?} whether it is a reader or a writer: \
                     give --role reader or --role writer"
                ));
            }
        }
    };
    let parameter = match &args.config {
        None => Json::Object(Default::default()),
        Some(text) => {
            let (text, source) = if text.trim_start().starts_with('{') {
                (text.clone(), "--config".to_owned())
            } else {
                let t =
                    std::fs::read_to_string(text).map_err(|e| format!("--config {text}: {e}"))?;
                (t, text.clone())
            };
            let doc =
                protocol::jobfile::parse_lenient(&text, &source).map_err(|e| e.to_string())?;
            protocol::jobfile::plugin_parameter(&doc, role, &source).map_err(|e| e.to_string())?
        }
    };
    let records = match &args.records_file {
        Some(path) => read_records(path)?,
        None => (0..args.records)
            .map(|i| vec![Value::Long(i as i64), Value::String(format!("row-{i}"))])
            .collect(),
    };
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err("--timeout must be a positive number of seconds".to_owned());
    }
    Ok(Suite {
        plugin: args.plugin.clone(),
        role,
        parameter,
        records,
        timeout: Duration::from_secs_f64(args.timeout),
        report: Report {
            passed: 0,
            failed: 0,
            skipped: 0,
        },
        jobs: 0,
    })
}

fn read_records(path: &PathBuf) -> Result<Vec<Vec<Value>>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--records-file {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            protocol::jsonl::line_to_record(l)
                .map_err(|e| format!("--records-file {} line {}: {e}", path.display(), i + 1))
        })
        .collect()
}
