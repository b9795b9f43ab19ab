//! The two loops of a task: reader → writer forwarding, and the writer's reports.
//!
//! Forwarding reads the reader's frames whole ([`FrameSource`]) and decodes only what it
//! must: a `batch` is throttled by the job's speed limiter and passed on to the writer
//! byte for byte; `checkpoint` is kept for the reader's `post` and passed on; `dirty`
//! counts against the error limit; `eos` is checked against what was forwarded and
//! passed on. Frames wait for the writer in a queue bounded to [`QUEUE_BYTES`] (the
//! engine's channel buffer), so memory stays flat whatever the job's size. The writer's loop handles `dirty`, `progress`, `log`, `output` (printed on
//! the engine's stdout) and finally `done`.
//!
//! The progress accounting happens here too: a reader's `progress` may carry its
//! estimate of the task's records (for the ETA), a writer's `progress` and `done` give
//! the written records, and the time spent waiting is measured where DataX measures it
//! (around its channel's blocking pull and push): the writer's side waiting on an empty
//! queue is time waited on the reader, the reader's side waiting on a full one is time
//! waited on the writer; the speed limit's holds are counted apart.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::message::{Cancel, Done, Hello, Message};
use protocol::FrameError;
use protocol::Role;
use tokio::io::AsyncWriteExt;
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::frames::{peek, FrameBuffers, FrameSource, Peek, RawFrame};
use crate::shared::JobStats;
use crate::task::{frame_of, SideFailure, TaskCtx, TaskResult, WRITER_END_WAIT};

/// Sends `cancel` (best effort, briefly) and closes the pipe.
async fn send_cancel(pipe: Option<ChildStdin>, reason: &str) {
    if let Some(mut pipe) = pipe {
        let frame = frame_of(&Message::Cancel(Cancel {
            reason: reason.to_owned(),
        }));
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            let _ = pipe.write_all(&frame).await;
            let _ = pipe.flush().await;
        })
        .await;
    }
}

/// How many bytes of frames may wait between the reader and the writer of a task. The
/// queue lets the engine drain the reader while the writer is busy (and the other way
/// round), so neither waits for the engine to be scheduled between two frames.
pub const QUEUE_BYTES: usize = 4 * 1024 * 1024;

/// A frame on its way to the writer, holding its share of the queue's byte budget.
struct Queued {
    frame: RawFrame,
    eos: bool,
    _budget: OwnedSemaphorePermit,
}

/// The reader's side of the queue.
struct Queue {
    tx: mpsc::Sender<Queued>,
    budget: Arc<Semaphore>,
}

pub(crate) async fn forward(
    ctx: &TaskCtx<'_>,
    r_out: ChildStdout,
    r_in: ChildStdin,
    w_in: ChildStdin,
    out: &mut TaskResult,
) {
    let (tx, rx) = mpsc::channel(1024);
    let queue = Queue {
        tx,
        budget: Arc::new(Semaphore::new(QUEUE_BYTES)),
    };
    let mut w_in = Some(w_in);
    // Large frames' allocations go back to the reader's side once written.
    let buffers = FrameBuffers::default();
    let (read, written) = tokio::join!(
        forward_frames(ctx, r_out, queue, buffers.clone(), out),
        drain_queue(ctx, rx, &mut w_in, &buffers)
    );
    if read && written {
        // The reader has sent eos; closing its stdin now is harmless.
        drop(w_in);
        drop(r_in);
    } else {
        ctx.cancel.cancel();
        let reason = match ctx.shared.failure() {
            Some(e) => e.to_string(),
            None => "the task failed".to_owned(),
        };
        tokio::join!(send_cancel(w_in, &reason), send_cancel(Some(r_in), &reason));
    }
}

/// Puts a frame in the queue; false when the task was cancelled or the writer's side
/// stopped.
async fn enqueue(ctx: &TaskCtx<'_>, queue: &Queue, frame: RawFrame, eos: bool) -> bool {
    let need = frame.bytes.len().min(QUEUE_BYTES) as u32;
    let stats = &ctx.shared.stats;
    let budget = match queue.budget.clone().try_acquire_many_owned(need) {
        Ok(permit) => permit,
        Err(_) => {
            ctx.activity
                .waiting_on(format!("{} to take data", ctx.plugin(Role::Writer)));
            // The queue is full: the reader's side waits for the writer (DataX's
            // WaitWriterTime, measured around its channel's blocking push).
            let since = Instant::now();
            let permit = tokio::select! {
                p = queue.budget.clone().acquire_many_owned(need) => match p {
                    Ok(permit) => permit,
                    Err(_) => return false,
                },
                _ = ctx.cancel.cancelled() => return false,
            };
            JobStats::add_wait(&stats.wait_writer_ns, since.elapsed());
            permit
        }
    };
    let item = Queued {
        frame: frame.detach(),
        eos,
        _budget: budget,
    };
    let since = Instant::now();
    let sent = tokio::select! {
        sent = queue.tx.send(item) => sent.is_ok(),
        _ = ctx.cancel.cancelled() => false,
    };
    JobStats::add_wait(&stats.wait_writer_ns, since.elapsed());
    sent
}

/// The writer's side of the queue; true when `eos` was written.
async fn drain_queue(
    ctx: &TaskCtx<'_>,
    mut rx: mpsc::Receiver<Queued>,
    w_in: &mut Option<ChildStdin>,
    buffers: &FrameBuffers,
) -> bool {
    let stats = &ctx.shared.stats;
    loop {
        // Nothing queued: the writer's side waits for the reader (DataX's
        // WaitReaderTime, measured around its channel's blocking pull).
        let item = match rx.try_recv() {
            Ok(item) => Some(item),
            Err(mpsc::error::TryRecvError::Disconnected) => None,
            Err(mpsc::error::TryRecvError::Empty) => {
                let since = Instant::now();
                let item = tokio::select! {
                    item = rx.recv() => item,
                    _ = ctx.cancel.cancelled() => return false,
                };
                JobStats::add_wait(&stats.wait_reader_ns, since.elapsed());
                item
            }
        };
        // The reader's side ended without eos: it says why.
        let Some(item) = item else { return false };
        if !write_to_writer(ctx, w_in, &item.frame.bytes).await {
            if !ctx.cancel.is_cancelled() {
                // The writer stopped taking records: give its own end (seen by the
                // collecting loop) a moment to show before the task is cancelled.
                let _ = tokio::time::timeout(WRITER_END_WAIT, ctx.cancel.cancelled()).await;
                ctx.cancel.cancel();
            }
            return false;
        }
        if item.eos {
            if let Some(pipe) = w_in.as_mut() {
                let _ = pipe.flush().await;
            }
            return true;
        }
        buffers.give(item.frame);
    }
}

/// The reader → writer loop; true when `eos` was forwarded.
async fn forward_frames(
    ctx: &TaskCtx<'_>,
    r_out: ChildStdout,
    queue: Queue,
    buffers: FrameBuffers,
    out: &mut TaskResult,
) -> bool {
    let reader = Role::Reader;
    let mut src = FrameSource::with_buffers(r_out, buffers);
    ctx.activity
        .waiting_on(format!("the hello of {}", ctx.plugin(reader)));
    let hello = tokio::select! {
        h = src.hello() => h,
        _ = ctx.cancel.cancelled() => return false,
    };
    if !hello_ok(ctx, reader, hello) {
        return false;
    }
    ctx.activity.touch(ctx.shared);
    loop {
        ctx.activity
            .waiting_on(format!("{} to send data", ctx.plugin(reader)));
        let frame = tokio::select! {
            f = src.next_raw() => f,
            _ = ctx.cancel.cancelled() => return false,
        };
        let frame = match frame {
            Ok(Some(f)) => f,
            Ok(None) => {
                ctx.fail(
                    reader,
                    1,
                    format!("its stream ended without eos after {} records", out.records),
                );
                return false;
            }
            Err(e) => {
                ctx.frame_error(reader, e, &format!("after {} records", out.records));
                return false;
            }
        };
        ctx.activity.touch(ctx.shared);
        let forward_raw = match peek(frame.body()) {
            Peek::Batch { count, bytes } => {
                if !throttle(ctx, count, bytes).await {
                    return false;
                }
                out.records += count;
                out.bytes += bytes;
                ctx.shared.stats.records.fetch_add(count, Ordering::Relaxed);
                ctx.shared.stats.bytes.fetch_add(bytes, Ordering::Relaxed);
                true
            }
            Peek::Other => match frame.decode() {
                Ok(Message::Checkpoint(c)) => {
                    out.checkpoints.push(c.state);
                    true
                }
                Ok(Message::Dirty(d)) => {
                    ctx.shared
                        .report_dirty(ctx.plan.index, reader, ctx.plugin(reader), &d);
                    false
                }
                Ok(Message::Progress(p)) => {
                    // The engine counts what a reader sends itself; its estimate of
                    // the task's total gives the ETA.
                    if let Some(total) = p.total_records {
                        ctx.shared.stats.set_estimate(ctx.plan.index, total);
                    }
                    false
                }
                Ok(Message::Log(l)) => {
                    crate::log::plugin_message(
                        &crate::log::task_label(ctx.plan.index, reader, ctx.plugin(reader)),
                        &l.level,
                        &l.message,
                    );
                    false
                }
                Ok(Message::Eos(eos)) => {
                    if eos.records != out.records {
                        ctx.fail(
                            reader,
                            1,
                            format!(
                                "eos says {} records but {} arrived",
                                eos.records, out.records
                            ),
                        );
                        return false;
                    }
                    return enqueue(ctx, &queue, frame, true).await;
                }
                Ok(Message::Error(e)) => {
                    ctx.plugin_error(reader, e);
                    return false;
                }
                Ok(Message::Batch(b)) => {
                    // A batch the fast path could not read (unusual field order): count it.
                    out.records += u64::from(b.count);
                    out.bytes += b.bytes;
                    ctx.shared
                        .stats
                        .records
                        .fetch_add(u64::from(b.count), Ordering::Relaxed);
                    ctx.shared.stats.bytes.fetch_add(b.bytes, Ordering::Relaxed);
                    true
                }
                Ok(other) => {
                    ctx.fail(
                        reader,
                        1,
                        format!("sent an unexpected {} message", other.type_name()),
                    );
                    return false;
                }
                Err(e) => {
                    ctx.frame_error(reader, e, &format!("after {} records", out.records));
                    return false;
                }
            },
        };
        if forward_raw && !enqueue(ctx, &queue, frame, false).await {
            return false;
        }
    }
}

/// Checks the plugin's `hello`: readable, compatible, and from a plugin of this role.
fn hello_ok(ctx: &TaskCtx<'_>, side: Role, hello: Result<Hello, FrameError>) -> bool {
    match hello {
        Err(e) => {
            ctx.frame_error(side, e, "before its hello");
            false
        }
        Ok(h) if h.role != side => {
            ctx.fail(
                side,
                1,
                format!(
                    "its hello says it is a {} ({}), not a {}",
                    h.role.name(),
                    h.name,
                    side.name()
                ),
            );
            false
        }
        Ok(h) => {
            ctx.shared.note_plugin(side, &h.name, &h.program_version);
            true
        }
    }
}

/// Waits as the job's speed limits say. Waiting here is not a stall: the activity is
/// touched every second. False when the task was cancelled meanwhile.
async fn throttle(ctx: &TaskCtx<'_>, records: u64, bytes: u64) -> bool {
    let limiter = &ctx.shared.limiter;
    if !limiter.is_limited() {
        return true;
    }
    let mut wait = limiter.reserve(records, bytes);
    if !wait.is_zero() {
        ctx.activity.waiting_on("the job's speed limit");
        JobStats::add_wait(&ctx.shared.stats.wait_limit_ns, wait);
    }
    while !wait.is_zero() {
        let step = wait.min(Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep(step) => {}
            _ = ctx.cancel.cancelled() => return false,
        }
        ctx.activity.touch(ctx.shared);
        wait -= step;
    }
    true
}

/// Writes a whole frame to the writer. When the task is cancelled in the middle of a
/// frame, the pipe is closed (a `cancel` after half a frame would read as garbage).
async fn write_to_writer(ctx: &TaskCtx<'_>, w_in: &mut Option<ChildStdin>, bytes: &[u8]) -> bool {
    let Some(pipe) = w_in.as_mut() else {
        return false;
    };
    ctx.activity
        .waiting_on(format!("{} to take data", ctx.plugin(Role::Writer)));
    let written = tokio::select! {
        r = pipe.write_all(bytes) => r,
        _ = ctx.cancel.cancelled() => {
            *w_in = None;
            return false;
        }
    };
    match written {
        Ok(()) => {
            ctx.activity.touch(ctx.shared);
            true
        }
        Err(e) => {
            // The writer went away; how it ended (seen by the collecting loop) says
            // more than the broken pipe, so the task is not cancelled here.
            ctx.failures.note(SideFailure {
                side: Role::Writer,
                message: format!("cannot send it records: {e}"),
                from_plugin: false,
                rank: 2,
            });
            false
        }
    }
}

/// A task's share of the job's written records: the writer's latest cumulative count.
#[derive(Default)]
struct WrittenCount(u64);

impl WrittenCount {
    /// Moves the job's count by the change of this task's (a count never goes back).
    fn update(&mut self, stats: &JobStats, records: u64) {
        if records > self.0 {
            stats
                .written_records
                .fetch_add(records - self.0, Ordering::Relaxed);
            self.0 = records;
        }
    }
}

/// The writer's loop; its `done` when it finished.
pub(crate) async fn collect(ctx: &TaskCtx<'_>, w_out: ChildStdout) -> Option<Done> {
    let writer = Role::Writer;
    let mut src = FrameSource::new(w_out);
    let hello = tokio::select! {
        h = src.hello() => h,
        _ = ctx.cancel.cancelled() => return None,
    };
    if !hello_ok(ctx, writer, hello) {
        return None;
    }
    ctx.activity.touch(ctx.shared);
    let mut written = WrittenCount::default();
    loop {
        let frame = tokio::select! {
            f = src.next_raw() => f,
            _ = ctx.cancel.cancelled() => return None,
        };
        let message = match frame.map(|f| f.map(|f| f.decode())) {
            Ok(Some(Ok(m))) => m,
            Ok(None) => {
                ctx.fail(writer, 1, "its stream ended without done");
                return None;
            }
            Ok(Some(Err(e))) | Err(e) => {
                ctx.frame_error(writer, e, "while writing");
                return None;
            }
        };
        ctx.activity.touch(ctx.shared);
        match message {
            Message::Dirty(d) => {
                ctx.shared
                    .report_dirty(ctx.plan.index, writer, ctx.plugin(writer), &d)
            }
            Message::Progress(p) => written.update(&ctx.shared.stats, p.records),
            Message::Checkpoint(_) => {}
            Message::Log(l) => crate::log::plugin_message(
                &crate::log::task_label(ctx.plan.index, writer, ctx.plugin(writer)),
                &l.level,
                &l.message,
            ),
            Message::Output(o) => {
                let mut stdout = std::io::stdout().lock();
                if let Err(e) = stdout.write_all(&o.data).and_then(|()| stdout.flush()) {
                    ctx.fail(
                        writer,
                        2,
                        format!("cannot print its output on the engine's stdout: {e}"),
                    );
                    return None;
                }
            }
            Message::Done(done) => {
                written.update(&ctx.shared.stats, done.records);
                return Some(done);
            }
            Message::Error(e) => {
                ctx.plugin_error(writer, e);
                return None;
            }
            other => {
                ctx.fail(
                    writer,
                    1,
                    format!("sent an unexpected {} message", other.type_name()),
                );
                return None;
            }
        }
    }
}
