//! Running the plugin under test: one-shot commands (steps, `--version`, `spec`) and
//! interactive task sessions over stdio frames.
//!
//! Everything is blocking with threads: a thread feeds the child's stdin, another
//! reads its stdout frame by frame, a third keeps its stderr; the suite waits on a
//! channel with a deadline, so a plugin that hangs or never reads its input cannot
//! hang the suite.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use protocol::frame::{encode_frame, encode_message, FrameDecoder, StreamPart, PREAMBLE};
use protocol::{FrameError, Message};

/// How a one-shot command ended.
#[derive(Debug)]
pub struct Ran {
    /// `None` when it did not exit within the deadline (it was killed).
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Ran {
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// "exited 0", "was killed by signal 6 (SIGABRT)", "did not exit within 60 s".
    pub fn ended(&self, timeout: Duration) -> String {
        match &self.status {
            Some(s) => ended(s),
            None => format!("did not exit within {} s (killed)", timeout.as_secs_f64()),
        }
    }
}

/// "exited 3" or "was killed by signal 6 (SIGABRT)".
pub fn ended(status: &ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exited {code}"),
        None => format!("was killed by {}", crate::plugins::describe_exit(status)),
    }
}

fn spawn(path: &Path, args: &[&str], stdin: Stdio) -> std::io::Result<Child> {
    Command::new(path)
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

/// A pipe read to its end by a thread.
struct Drain {
    buf: Arc<Mutex<Vec<u8>>>,
    thread: std::thread::JoinHandle<()>,
}

impl Drain {
    /// Everything read, once the pipe ended (or `deadline` passed: a grandchild may
    /// hold the pipe open).
    fn finish(self, deadline: Instant) -> Vec<u8> {
        while !self.thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        take(&self.buf)
    }
}

fn drain_thread<R: Read + Send + 'static>(r: R) -> Drain {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let thread = drain_into(r, buf.clone());
    Drain { buf, thread }
}

fn drain_into<R: Read + Send + 'static>(
    mut r: R,
    out: Arc<Mutex<Vec<u8>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            out.lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(&chunk[..n]);
        }
    })
}

fn take(buf: &Arc<Mutex<Vec<u8>>>) -> Vec<u8> {
    buf.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Waits for `child` until `deadline`; kills it after that. `None` if it had to be
/// killed.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Runs `path args…` with `input` on stdin and waits at most `timeout`.
pub fn run_once(
    path: &Path,
    args: &[&str],
    input: &[u8],
    timeout: Duration,
) -> std::io::Result<Ran> {
    let mut child = spawn(path, args, Stdio::piped())?;
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let out = child.stdout.take().map(drain_thread);
    let err = child.stderr.take().map(drain_thread);
    let status = wait_until(&mut child, Instant::now() + timeout);
    // The pipes end when the child has exited (unless a process it started holds them).
    let deadline = Instant::now() + Duration::from_secs(2);
    Ok(Ran {
        status,
        stdout: out.map(|d| d.finish(deadline)).unwrap_or_default(),
        stderr: err.map(|d| d.finish(deadline)).unwrap_or_default(),
    })
}

/// What the plugin's stdout produced next.
#[derive(Debug)]
pub enum Next {
    /// One frame body (length and CRC-32 verified).
    Frame(BytesMut),
    /// The stream broke (not our preamble, bad checksum, too large, cut short).
    Broken(String),
    /// A clean end of stream between frames.
    End,
    /// Nothing within the deadline.
    Timeout,
}

enum Input {
    Bytes(Vec<u8>),
    Close,
}

/// A plugin running a task: frames in, frames out.
pub struct Session {
    child: Child,
    input: Option<Sender<Input>>,
    frames: Receiver<Next>,
    stderr: Option<Drain>,
    ended: bool,
}

impl Session {
    /// Starts `path args…` and writes our preamble to its stdin.
    pub fn start(path: &Path, args: &[&str], max_frame_bytes: usize) -> std::io::Result<Self> {
        let mut child = spawn(path, args, Stdio::piped())?;
        let stdin = child.stdin.take();
        let (tx, rx) = channel::<Input>();
        if let Some(stdin) = stdin {
            std::thread::spawn(move || feed(stdin, rx));
        }
        let (ftx, frames) = channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || read_frames(stdout, max_frame_bytes, ftx));
        }
        let stderr = child.stderr.take().map(drain_thread);
        let session = Self {
            child,
            input: Some(tx),
            frames,
            stderr,
            ended: false,
        };
        session.send_raw(PREAMBLE.to_vec());
        Ok(session)
    }

    pub fn send(&self, message: &Message) {
        if let Ok(body) = encode_message(message) {
            self.send_body(&body);
        }
    }

    /// Sends one frame around `body` (which may be a deliberately bad message).
    pub fn send_body(&self, body: &[u8]) {
        let mut frame = Vec::with_capacity(body.len() + 8);
        encode_frame(body, &mut frame);
        self.send_raw(frame);
    }

    fn send_raw(&self, bytes: Vec<u8>) {
        if let Some(tx) = &self.input {
            let _ = tx.send(Input::Bytes(bytes));
        }
    }

    /// Closes the plugin's stdin (after what was sent has been written).
    pub fn close_input(&mut self) {
        if let Some(tx) = self.input.take() {
            let _ = tx.send(Input::Close);
        }
    }

    /// The next thing on stdout, waiting at most `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Next {
        if self.ended {
            return Next::End;
        }
        match self.frames.recv_timeout(timeout) {
            Ok(next) => {
                if !matches!(next, Next::Frame(_)) {
                    self.ended = true;
                }
                next
            }
            Err(RecvTimeoutError::Timeout) => Next::Timeout,
            Err(RecvTimeoutError::Disconnected) => {
                self.ended = true;
                Next::End
            }
        }
    }

    /// Waits for the plugin to exit; `None` if it was still running after `timeout`
    /// (it is killed then).
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(&mut self.child, Instant::now() + timeout)
    }

    /// The last lines the plugin wrote on stderr, for failure messages.
    /// Called after the plugin ended: waits a moment for the rest of its stderr.
    pub fn stderr_tail(&self) -> String {
        let Some(d) = &self.stderr else {
            return String::new();
        };
        let deadline = Instant::now() + Duration::from_millis(500);
        while !d.thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        tail(&take(&d.buf), 3)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn feed(mut stdin: ChildStdin, rx: Receiver<Input>) {
    while let Ok(input) = rx.recv() {
        match input {
            Input::Bytes(b) => {
                if stdin.write_all(&b).and_then(|()| stdin.flush()).is_err() {
                    return;
                }
            }
            Input::Close => return,
        }
    }
}

/// The last `n` non-empty lines of `bytes`, joined with " | ".
pub fn tail(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// How a stream error that is an empty stdout starts.
pub const WROTE_NOTHING: &str = "it wrote nothing on stdout";

fn describe_stream_error(e: &FrameError) -> String {
    match e {
        FrameError::UnexpectedEof {
            part: StreamPart::Preamble,
            have: 0,
            ..
        } => format!(
            "{WROTE_NOTHING} (expected the preamble \"SPRT\\x07msgpack\", then a hello frame)"
        ),
        FrameError::NotOurProtocol { .. } => format!(
            "stdout is not a frame stream: {e} (stdout belongs to the protocol: logs go to stderr)"
        ),
        other => other.to_string(),
    }
}

/// Reads frames from the plugin's stdout into `tx`; after the stream ended or broke,
/// drains the rest so the plugin never blocks on a full pipe.
fn read_frames(mut stdout: impl Read, max_frame_bytes: usize, tx: Sender<Next>) {
    let mut decoder = FrameDecoder::new(max_frame_bytes);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut eof = false;
    loop {
        let next = if eof {
            match decoder.decode_frame_eof(&mut buf) {
                Ok(Some(body)) => Next::Frame(body),
                Ok(None) => Next::End,
                Err(e) => Next::Broken(describe_stream_error(&e)),
            }
        } else {
            match decoder.decode_frame(&mut buf) {
                Ok(Some(body)) => Next::Frame(body),
                Ok(None) => {
                    match stdout.read(&mut chunk) {
                        Ok(0) | Err(_) => eof = true,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    continue;
                }
                Err(e) => Next::Broken(describe_stream_error(&e)),
            }
        };
        let last = !matches!(next, Next::Frame(_));
        if tx.send(next).is_err() || last {
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
            return;
        }
    }
}
