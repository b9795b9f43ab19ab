//! Finding plugin executables, starting them, and draining their stderr.
//!
//! A plugin named `x` in the reader slot is the executable `reader-x` (`xreader` is
//! `x` too: `otsstreamreader` → `reader-otsstream`); in the writer slot, `writer-x`.
//! A name with a `/` is a path. Executables are looked for in `--plugin-dir`, then
//! beside the engine binary, then on `PATH`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use protocol::Role;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};

use crate::error::EngineError;

/// How many stderr lines of a child are kept for error reports.
pub const STDERR_TAIL_LINES: usize = 20;

/// Where plugins are looked for.
#[derive(Clone, Debug, Default)]
pub struct PluginDirs {
    pub plugin_dir: Option<PathBuf>,
    /// The directory of the engine binary.
    pub engine_dir: Option<PathBuf>,
}

impl PluginDirs {
    pub fn new(plugin_dir: Option<PathBuf>) -> Self {
        Self {
            plugin_dir,
            engine_dir: std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf)),
        }
    }

    /// The directories searched, in order (`PATH` last).
    pub fn search_path(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .plugin_dir
            .iter()
            .chain(self.engine_dir.iter())
            .cloned()
            .collect();
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path));
        }
        dirs
    }
}

/// A plugin executable found for a slot.
#[derive(Clone, Debug, PartialEq)]
pub struct Plugin {
    /// The executable's name, e.g. `reader-otsstream`.
    pub name: String,
    pub path: PathBuf,
    pub role: Role,
}

/// The executable name for a plugin name in a slot.
pub fn executable_name(role: Role, name: &str) -> Result<String, EngineError> {
    let (own, other) = match role {
        Role::Writer => ("writer", "reader"),
        _ => ("reader", "writer"),
    };
    let name = name.trim();
    if name.starts_with(&format!("{own}-")) {
        return Ok(name.to_owned());
    }
    if name.starts_with(&format!("{other}-")) || (name.ends_with(other) && name.len() > other.len())
    {
        return Err(EngineError::config(format!(
            "plugin {name:?} is a {other}, but it is in the {own} slot"
        )));
    }
    let base = name
        .strip_suffix(own)
        .filter(|b| !b.is_empty())
        .unwrap_or(name);
    if base.is_empty()
        || !base
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return Err(EngineError::config(format!(
            "{name:?} is not a plugin name"
        )));
    }
    Ok(format!("{own}-{base}"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Finds the executable for `name` in the `role` slot.
pub fn resolve(role: Role, name: &str, dirs: &PluginDirs) -> Result<Plugin, EngineError> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        if !is_executable(&path) {
            return Err(EngineError::config(format!(
                "{} plugin {name}: no executable file there",
                role.name()
            )));
        }
        let exe = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.to_owned());
        return Ok(Plugin {
            name: exe,
            path,
            role,
        });
    }
    let exe = executable_name(role, name)?;
    let searched = dirs.search_path();
    for dir in &searched {
        let candidate = dir.join(&exe);
        if is_executable(&candidate) {
            return Ok(Plugin {
                name: exe,
                path: candidate,
                role,
            });
        }
    }
    let mut where_ = Vec::new();
    if let Some(d) = &dirs.plugin_dir {
        where_.push(format!("--plugin-dir {}", d.display()));
    }
    if let Some(d) = &dirs.engine_dir {
        where_.push(format!("beside the engine ({})", d.display()));
    }
    where_.push("PATH".to_owned());
    let known: Vec<String> = list(dirs)
        .into_iter()
        .filter(|p| p.role == role)
        .map(|p| p.name)
        .collect();
    Err(EngineError::config(format!(
        "{} plugin {name:?}: executable {exe} not found in {}; {}s found: {}",
        role.name(),
        where_.join(", "),
        role.name(),
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )))
}

/// Every plugin executable found, first occurrence of each name.
pub fn list(dirs: &PluginDirs) -> Vec<Plugin> {
    let mut found: Vec<Plugin> = Vec::new();
    for dir in dirs.search_path() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut here: Vec<Plugin> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let role = if name.starts_with("reader-") {
                    Role::Reader
                } else if name.starts_with("writer-") {
                    Role::Writer
                } else {
                    return None;
                };
                // Build artefacts such as `reader-x.d` are not plugins.
                if name.contains('.') || !is_executable(&e.path()) {
                    return None;
                }
                Some(Plugin {
                    name,
                    path: e.path(),
                    role,
                })
            })
            .collect();
        here.sort_by(|a, b| a.name.cmp(&b.name));
        for p in here {
            if !found.iter().any(|f| f.name == p.name) {
                found.push(p);
            }
        }
    }
    found
}

/// The hidden first argument under which the engine binary starts a plugin for itself
/// (see [`crate::launcher`]).
pub const EXEC_PLUGIN_ARG: &str = "__exec-plugin";

/// The launcher's program name, looked for beside the engine binary.
pub const LAUNCHER_PROGRAM: &str = "streamport-exec";

/// How plugins are started: through `program`, after `prefix` (the engine binary
/// itself takes [`EXEC_PLUGIN_ARG`] first).
struct Launcher {
    program: PathBuf,
    prefix: Option<&'static str>,
}

static LAUNCHER: std::sync::OnceLock<Launcher> = std::sync::OnceLock::new();

/// Makes [`spawn`] start plugins through the launcher ([`crate::launcher`]), which
/// sets the parent-death signal and then becomes the plugin: `streamport-exec` beside
/// `engine` when it is there (it starts several times faster), else `engine` itself
/// under [`EXEC_PLUGIN_ARG`]. Without it (the library in tests), plugins are started
/// directly.
pub fn use_launcher(engine: PathBuf) {
    let small = engine.with_file_name(LAUNCHER_PROGRAM);
    let launcher = if small.is_file() {
        Launcher {
            program: small,
            prefix: None,
        }
    } else {
        Launcher {
            program: engine,
            prefix: Some(EXEC_PLUGIN_ARG),
        }
    };
    let _ = LAUNCHER.set(launcher);
}

/// Plugins (by path) whose step answer came from the process the engine started and
/// said it honours `--engine-pid` (`parent_death_guard`): they set the parent-death
/// signal themselves, so the engine starts their steps without the launcher, one
/// `exec` fewer each.
static GUARDS_ITSELF: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Records that the plugin at `path` guards itself (a step answer said so).
pub fn note_guards_itself(path: &Path) {
    let mut known = GUARDS_ITSELF.lock().unwrap_or_else(|e| e.into_inner());
    if !known.iter().any(|p| p == path) {
        known.push(path.to_owned());
    }
}

/// Plugins (by path) whose step answer said they serve `session` (several steps in
/// one process, [`crate::steps::StepSession`]).
static SERVES_SESSIONS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Records that the plugin at `path` serves step sessions (a step answer said so).
pub fn note_serves_sessions(path: &Path) {
    let mut known = SERVES_SESSIONS.lock().unwrap_or_else(|e| e.into_inner());
    if !known.iter().any(|p| p == path) {
        known.push(path.to_owned());
    }
}

pub fn serves_sessions(path: &Path) -> bool {
    let known = SERVES_SESSIONS.lock().unwrap_or_else(|e| e.into_inner());
    known.iter().any(|p| p == path)
}

fn guards_itself(path: &Path) -> bool {
    let known = GUARDS_ITSELF.lock().unwrap_or_else(|e| e.into_inner());
    known.iter().any(|p| p == path)
}

/// Starts `plugin` with `args` (a task: `read` or `write`), stdin, stdout and stderr
/// piped, killed if dropped, and killed by the system when the engine dies (through the
/// launcher, [`use_launcher`]).
///
/// Must be called from the thread running the engine's future or from a runtime
/// worker, never from a `spawn_blocking` thread: the parent-death signal fires when the
/// *thread* that started the child ends, and blocking-pool threads retire when idle.
pub fn spawn(plugin: &Plugin, args: &[&str]) -> Result<Child, EngineError> {
    start(plugin, args, false)
}

/// [`spawn`] for a step. Once one of the plugin's step answers came from the process
/// the engine started and said it guards itself, the step is started directly with
/// `--engine-pid` (it then sets the signal itself, `protocol::parent_death`). Tasks
/// keep the launcher: a wrapper script may `exec` the plugin for its steps and fork it
/// for a task, and a forked plugin's parent is not the engine.
pub fn spawn_step(plugin: &Plugin, args: &[&str]) -> Result<Child, EngineError> {
    start(plugin, args, guards_itself(&plugin.path))
}

fn start(plugin: &Plugin, args: &[&str], direct: bool) -> Result<Child, EngineError> {
    let engine_pid = std::process::id().to_string();
    // Without a launcher (the library in tests) nothing sets the signal, as before.
    let guards_itself = LAUNCHER.get().is_some() && direct;
    let mut command = match LAUNCHER.get() {
        Some(_) if guards_itself => Command::new(&plugin.path),
        Some(launcher) => {
            let mut c = Command::new(&launcher.program);
            c.args(launcher.prefix).arg(&engine_pid).arg(&plugin.path);
            c
        }
        None => Command::new(&plugin.path),
    };
    // The plugin logs at the engine's level (-v, -q, --log-level, STREAMPORT_LOG).
    if let Some(directive) = crate::log::plugin_directive() {
        command.env(crate::log::LOG_ENV, directive);
    }
    command.args(args);
    if guards_itself {
        command.args(["--engine-pid", engine_pid.as_str()]);
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a Ctrl-C on the terminal reaches only the engine, which
        // then cancels the plugins in order (cancel, abort) instead of racing them.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            let through = LAUNCHER
                .get()
                .filter(|_| !guards_itself)
                .map(|l| format!(" through the launcher {}", l.program.display()))
                .unwrap_or_default();
            EngineError::failed(format!(
                "cannot start {} ({}){through}: {e}",
                plugin.name,
                plugin.path.display()
            ))
        })
}

/// The pipe size asked for a task's data pipes: a whole batch (up to 1 MiB) moves in
/// one system call instead of sixteen 64 KiB ones.
pub const DATA_PIPE_BYTES: usize = 1024 * 1024;

/// Enlarges the pipes records travel through (best effort: the system's
/// `/proc/sys/fs/pipe-max-size` may refuse).
pub fn enlarge_data_pipes(child: &Child) {
    if let Some(out) = &child.stdout {
        let _ = rustix::pipe::fcntl_setpipe_size(out, DATA_PIPE_BYTES);
    }
    if let Some(input) = &child.stdin {
        let _ = rustix::pipe::fcntl_setpipe_size(input, DATA_PIPE_BYTES);
    }
}

/// The last lines a child wrote on stderr.
#[derive(Clone, Debug, Default)]
pub struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == STDERR_TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// Forgets the lines so far (a session's next step).
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// `; last stderr lines: …` for error messages, or nothing.
    pub fn for_error(&self) -> String {
        let lines = self.lines();
        if lines.is_empty() {
            return String::new();
        }
        let shown: Vec<String> = lines.iter().rev().take(5).rev().cloned().collect();
        format!("; its last stderr lines:\n    {}", shown.join("\n    "))
    }
}

/// Drains `stderr` on its own task: every line is logged with `label` naming the task
/// or step and the plugin (redacted) and kept in the returned tail. The task ends at EOF.
pub fn drain_stderr(
    stderr: ChildStderr,
    label: String,
) -> (StderrTail, tokio::task::JoinHandle<()>) {
    drain_stderr_under(stderr, Arc::new(Mutex::new(label)))
}

/// [`drain_stderr`] under a label that may change (a session's current step).
pub fn drain_stderr_under(
    stderr: ChildStderr,
    label: Arc<Mutex<String>>,
) -> (StderrTail, tokio::task::JoinHandle<()>) {
    let tail = StderrTail::default();
    let keep = tail.clone();
    let handle = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match lines.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']);
                    let line = crate::secrets::global().redact(line);
                    let label = label.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    crate::log::plugin_line(&label, &line);
                    keep.push(line);
                }
            }
        }
    });
    (tail, handle)
}

/// Describes how a child ended, for error messages.
pub fn describe_exit(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}{}", signal_name(signal)),
        _ => "an unknown status".to_owned(),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        6 => " (SIGABRT)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_executables() {
        let cases = [
            (Role::Reader, "otsstreamreader", "reader-otsstream"),
            (Role::Reader, "otsstream", "reader-otsstream"),
            (Role::Writer, "osswriter", "writer-oss"),
            (Role::Writer, "oss", "writer-oss"),
            (Role::Writer, "odpswriter", "writer-odps"),
            (Role::Writer, "odps", "writer-odps"),
            (Role::Reader, "streamreader", "reader-stream"),
            (Role::Reader, "stream", "reader-stream"),
            (Role::Writer, "writer-stream", "writer-stream"),
        ];
        for (role, name, exe) in cases {
            assert_eq!(executable_name(role, name).unwrap(), exe, "{name}");
        }
        assert!(executable_name(Role::Reader, "osswriter").is_err());
        assert!(executable_name(Role::Writer, "reader-stream").is_err());
        assert!(executable_name(Role::Reader, "a b").is_err());
    }

    #[test]
    fn resolution_order_and_errors() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("reader-fake");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let dirs = PluginDirs {
            plugin_dir: Some(dir.path().to_path_buf()),
            engine_dir: None,
        };
        let p = resolve(Role::Reader, "fakereader", &dirs).unwrap();
        assert_eq!(p.path, exe);
        assert!(list(&dirs).iter().any(|p| p.name == "reader-fake"));
        let err = resolve(Role::Reader, "missing", &dirs).unwrap_err();
        assert!(err.to_string().contains("reader-missing"), "{err}");
        assert!(err.to_string().contains("reader-fake"), "{err}");
        let by_path = resolve(Role::Reader, exe.to_str().unwrap(), &dirs).unwrap();
        assert_eq!(by_path.name, "reader-fake");
    }
}
