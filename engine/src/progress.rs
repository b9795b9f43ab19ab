//! The job monitor: a progress line on stderr every few seconds, a live line when
//! stderr is a terminal, and the watchdog that fails a job making no progress.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::EngineError;
use crate::shared::JobShared;

const TICK: Duration = Duration::from_millis(250);

/// How the monitor behaves.
#[derive(Clone, Copy, Debug)]
pub struct MonitorOptions {
    /// Between two progress lines.
    pub interval: Duration,
    /// No progress for this long fails the job.
    pub stall_timeout: Duration,
    /// Show a live progress line (stderr is a terminal).
    pub live: bool,
}

/// A snapshot of the job's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub elapsed: Duration,
    pub records: u64,
    pub bytes: u64,
    pub dirty: u64,
    pub running: u64,
    pub done: u64,
    pub total: u64,
}

impl Snapshot {
    pub fn take(shared: &JobShared) -> Self {
        let s = &shared.stats;
        Self {
            elapsed: Duration::from_millis(shared.elapsed_ms()),
            records: s.records.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
            dirty: s.dirty(),
            running: s.tasks_running.load(Ordering::Relaxed),
            done: s.tasks_done.load(Ordering::Relaxed),
            total: s.tasks_total.load(Ordering::Relaxed),
        }
    }

    /// `elapsed 12.0s | 1,234,567 records, 117.7 MiB | 102,880 records/s, 9.81 MiB/s | dirty 0 | tasks 2 running, 3 done of 8`,
    /// speeds measured since `previous`.
    pub fn line(&self, previous: &Snapshot) -> String {
        let secs = (self.elapsed.as_secs_f64() - previous.elapsed.as_secs_f64()).max(0.001);
        let rps = (self.records.saturating_sub(previous.records)) as f64 / secs;
        let mibps = (self.bytes.saturating_sub(previous.bytes)) as f64 / secs / MIB;
        format!(
            "elapsed {:.1}s | {} records, {:.1} MiB | {} records/s, {:.2} MiB/s | dirty {} | tasks {} running, {} done of {}",
            self.elapsed.as_secs_f64(),
            thousands(self.records),
            self.bytes as f64 / MIB,
            thousands(rps as u64),
            mibps,
            self.dirty,
            self.running,
            self.done,
            self.total
        )
    }
}

pub const MIB: f64 = 1024.0 * 1024.0;

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Runs until `stop` is cancelled.
pub async fn monitor(shared: Arc<JobShared>, options: MonitorOptions, stop: CancellationToken) {
    let mut last_line = Snapshot::take(&shared);
    let mut last_live = last_line;
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.cancelled() => break,
        }
        let now = Snapshot::take(&shared);
        if now.elapsed.saturating_sub(last_line.elapsed) >= options.interval {
            crate::info!("{}", now.line(&last_line));
            last_line = now;
        }
        if options.live
            && now.elapsed.saturating_sub(last_live.elapsed) >= Duration::from_millis(500)
        {
            crate::log::live(&now.line(&last_live));
            last_live = now;
        }
        check_stall(&shared, options.stall_timeout);
    }
    crate::log::clear_live();
}

/// Fails the job when an activity made no progress for `timeout`.
pub fn check_stall(shared: &JobShared, timeout: Duration) {
    if shared.cancel.is_cancelled() {
        return;
    }
    let now_ms = shared.elapsed_ms();
    for activity in shared.activities() {
        let idle = activity.idle_ms(now_ms);
        if idle >= timeout.as_millis() as u64 {
            let waiting = activity.describe_wait();
            let waiting = if waiting.is_empty() {
                String::new()
            } else {
                format!(" (waiting for {waiting})")
            };
            shared.fail(EngineError::failed(format!(
                "{} stalled: no progress for {:.1} s{waiting}; the stall timeout is {} s (--stall-timeout)",
                activity.name,
                idle as f64 / 1000.0,
                timeout.as_secs_f64()
            )));
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{ErrorLimit, ManualClock, SpeedLimiter};

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        let a = Snapshot::default();
        let b = Snapshot {
            elapsed: Duration::from_secs(2),
            records: 200_000,
            bytes: 20 * 1024 * 1024,
            dirty: 1,
            running: 2,
            done: 1,
            total: 4,
        };
        let line = b.line(&a);
        assert!(line.contains("200,000 records, 20.0 MiB"), "{line}");
        assert!(line.contains("100,000 records/s, 10.00 MiB/s"), "{line}");
        assert!(line.contains("tasks 2 running, 1 done of 4"), "{line}");
    }

    #[tokio::test]
    async fn a_silent_activity_fails_the_job_naming_it() {
        let shared = JobShared::new(
            SpeedLimiter::new(None, None, Arc::new(ManualClock::default())),
            ErrorLimit::default(),
            std::env::temp_dir().join("unused.dirty.jsonl"),
        );
        let a = shared.register("task 3 (reader-x → writer-y)".into());
        a.waiting_on("reader-x to send data");
        check_stall(&shared, Duration::from_secs(60));
        assert!(shared.failure().is_none());
        tokio::time::sleep(Duration::from_millis(30)).await;
        check_stall(&shared, Duration::from_millis(10));
        let err = shared.failure().unwrap().to_string();
        assert!(
            err.contains("task 3 (reader-x → writer-y) stalled"),
            "{err}"
        );
        assert!(err.contains("waiting for reader-x to send data"), "{err}");
        assert!(shared.cancel.is_cancelled());
    }
}
