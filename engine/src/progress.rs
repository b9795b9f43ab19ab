//! The job monitor: a progress line on stderr every few seconds, a live line when
//! stderr is a terminal, and the watchdog that fails a job making no progress.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::EngineError;
use crate::shared::JobShared;

const TICK: Duration = Duration::from_millis(250);

/// How many live refreshes (every 0.5 s) the live speeds are measured over.
const LIVE_SPEED_WINDOW: usize = 6;

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
    /// Records and bytes read (forwarded from the readers).
    pub records: u64,
    pub bytes: u64,
    /// Records the writers say they wrote.
    pub written: u64,
    pub dirty: u64,
    pub running: u64,
    pub done: u64,
    pub total: u64,
    /// Summed over tasks (see [`crate::shared::JobStats`]).
    pub wait_reader: Duration,
    pub wait_writer: Duration,
    pub wait_limit: Duration,
    /// The readers' estimate of the job's records, when every task gave one.
    pub estimated_total: Option<u64>,
    /// Follow mode: the lag at the last commit.
    pub lag_ms: Option<u64>,
}

impl Snapshot {
    pub fn take(shared: &JobShared) -> Self {
        let s = &shared.stats;
        let nanos =
            |c: &std::sync::atomic::AtomicU64| Duration::from_nanos(c.load(Ordering::Relaxed));
        Self {
            elapsed: Duration::from_millis(shared.elapsed_ms()),
            records: s.records.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
            written: s.written_records.load(Ordering::Relaxed),
            dirty: s.dirty(),
            running: s.tasks_running.load(Ordering::Relaxed),
            done: s.tasks_done.load(Ordering::Relaxed),
            total: s.tasks_total.load(Ordering::Relaxed),
            wait_reader: nanos(&s.wait_reader_ns),
            wait_writer: nanos(&s.wait_writer_ns),
            wait_limit: nanos(&s.wait_limit_ns),
            estimated_total: s.estimated_total(),
            lag_ms: *s.follow_lag_ms.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Records/s and MiB/s since `previous`.
    fn speeds(&self, previous: &Snapshot) -> (f64, f64) {
        let secs = (self.elapsed.as_secs_f64() - previous.elapsed.as_secs_f64()).max(0.001);
        let rps = (self.records.saturating_sub(previous.records)) as f64 / secs;
        let mibps = (self.bytes.saturating_sub(previous.bytes)) as f64 / secs / MIB;
        (rps, mibps)
    }

    /// The time left at `records_per_sec`, when the readers estimated the total.
    pub fn eta(&self, records_per_sec: f64) -> Option<Duration> {
        let total = self.estimated_total?;
        let left = total.saturating_sub(self.records + self.dirty);
        if left == 0 {
            return Some(Duration::ZERO);
        }
        (records_per_sec >= 1.0).then(|| Duration::from_secs_f64(left as f64 / records_per_sec))
    }

    /// The log's progress line, speeds measured since `previous`:
    /// `elapsed 12.0s | read 1,234,567 records, 117.7 MiB | written 1,200,000 records | 102,880 records/s, 9.81 MiB/s | waited on reader 0.5s, writer 3.2s, speed limit 0.0s | dirty 0 | tasks 2 running, 3 done of 8 | ETA 0:42`.
    pub fn line(&self, previous: &Snapshot) -> String {
        let (rps, mibps) = self.speeds(previous);
        let mut line = format!(
            "elapsed {:.1}s | read {} records, {:.1} MiB | written {} records | {} records/s, {:.2} MiB/s | waited on reader {}, writer {}, speed limit {} | dirty {} | tasks {} running, {} done of {}",
            self.elapsed.as_secs_f64(),
            thousands(self.records),
            self.bytes as f64 / MIB,
            thousands(self.written),
            thousands(rps as u64),
            mibps,
            secs(self.wait_reader),
            secs(self.wait_writer),
            secs(self.wait_limit),
            self.dirty,
            self.running,
            self.done,
            self.total
        );
        if let Some(eta) = self.eta(rps) {
            line.push_str(&format!(" | ETA {}", clock(eta)));
        }
        if let Some(lag) = self.lag_ms {
            line.push_str(&format!(" | lag {:.1}s", lag as f64 / 1000.0));
        }
        line
    }

    /// The live display's lines (each is cut to the terminal's width when drawn, so
    /// the most telling fields come first):
    /// `read 1,234,567 rec 117.7 MiB · written 1,200,000 · 102,880 rec/s 9.81 MiB/s`,
    /// `waited on reader 0.5s, writer 3.2s, speed limit 0.0s · dirty 0`,
    /// `tasks 2 running, 3/8 done · elapsed 12.0s · ETA 0:42`.
    pub fn live_lines(&self, previous: &Snapshot) -> Vec<String> {
        let (rps, mibps) = self.speeds(previous);
        let eta = match (self.estimated_total, self.eta(rps)) {
            (_, Some(eta)) => format!(" · ETA {}", clock(eta)),
            (Some(_), None) => " · ETA ?".to_owned(),
            (None, None) => String::new(),
        };
        let eta = match self.lag_ms {
            Some(lag) => format!("{eta} · lag {:.1}s", lag as f64 / 1000.0),
            None => eta,
        };
        vec![
            format!(
                "read {} rec {:.1} MiB · written {} · {} rec/s {:.2} MiB/s",
                thousands(self.records),
                self.bytes as f64 / MIB,
                thousands(self.written),
                thousands(rps as u64),
                mibps,
            ),
            format!(
                "waited on reader {}, writer {}, speed limit {} · dirty {}",
                secs(self.wait_reader),
                secs(self.wait_writer),
                secs(self.wait_limit),
                self.dirty,
            ),
            format!(
                "tasks {} running, {}/{} done · elapsed {}{eta}",
                self.running,
                self.done,
                self.total,
                secs(self.elapsed)
            ),
        ]
    }
}

/// `3.2s` under a minute, else `1:02:03`.
fn secs(d: Duration) -> String {
    if d < Duration::from_secs(60) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        clock(d)
    }
}

/// `0:42`, `12:05`, `1:02:03`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs_f64().ceil() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
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
    // The live display's speeds and ETA are over the last few seconds, not jumpy.
    let mut recent: std::collections::VecDeque<Snapshot> = [last_line].into();
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
            let base = recent.front().copied().unwrap_or(last_live);
            crate::log::live(&now.live_lines(&base));
            recent.push_back(now);
            if recent.len() > LIVE_SPEED_WINDOW {
                recent.pop_front();
            }
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
        assert_eq!(clock(Duration::from_secs(42)), "0:42");
        assert_eq!(clock(Duration::from_millis(725_100)), "12:06");
        assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
        let a = Snapshot::default();
        let b = Snapshot {
            elapsed: Duration::from_secs(2),
            records: 200_000,
            bytes: 20 * 1024 * 1024,
            written: 150_000,
            dirty: 1,
            running: 2,
            done: 1,
            total: 4,
            wait_reader: Duration::from_millis(500),
            wait_writer: Duration::from_millis(3200),
            wait_limit: Duration::ZERO,
            estimated_total: None,
            lag_ms: None,
        };
        let line = b.line(&a);
        assert!(line.contains("read 200,000 records, 20.0 MiB"), "{line}");
        assert!(line.contains("written 150,000 records"), "{line}");
        assert!(line.contains("100,000 records/s, 10.00 MiB/s"), "{line}");
        assert!(
            line.contains("waited on reader 0.5s, writer 3.2s, speed limit 0.0s"),
            "{line}"
        );
        assert!(line.contains("tasks 2 running, 1 done of 4"), "{line}");
        assert!(!line.contains("ETA"), "no estimate, no ETA: {line}");
        let live = b.live_lines(&a);
        assert_eq!(
            live,
            [
                "read 200,000 rec 20.0 MiB · written 150,000 · 100,000 rec/s 10.00 MiB/s",
                "waited on reader 0.5s, writer 3.2s, speed limit 0.0s · dirty 1",
                "tasks 2 running, 1/4 done · elapsed 2.0s"
            ]
        );
        // A billion records at 100 MiB/s after hours of waiting: still short lines.
        let big = Snapshot {
            elapsed: Duration::from_secs(9999),
            records: 1_000_000_000,
            bytes: 999_000 * 1024 * 1024,
            written: 999_999_999,
            wait_reader: Duration::from_secs(99_999),
            wait_writer: Duration::from_secs(99_999),
            wait_limit: Duration::from_secs(99_999),
            estimated_total: Some(2_000_000_000),
            ..b
        };
        let base = Snapshot {
            elapsed: Duration::from_secs(9998),
            records: 999_000_000,
            bytes: 998_900 * 1024 * 1024,
            ..big
        };
        for l in big.live_lines(&base) {
            assert!(
                l.chars().count() <= 110,
                "{} columns: {l}",
                l.chars().count()
            );
        }
        // A usual job's lines fit 80 columns whole (the display cuts longer ones).
        for l in live {
            assert!(
                l.chars().count() <= 80,
                "{} columns: {l}",
                l.chars().count()
            );
        }
    }

    #[test]
    fn a_follow_run_shows_its_lag() {
        let s = Snapshot {
            lag_ms: Some(2_340),
            ..Snapshot::default()
        };
        assert!(s.line(&Snapshot::default()).ends_with(" | lag 2.3s"));
        assert!(s.live_lines(&Snapshot::default())[2].ends_with(" · lag 2.3s"));
        assert!(!Snapshot::default()
            .line(&Snapshot::default())
            .contains("lag"));
    }

    #[test]
    fn the_eta_comes_from_the_readers_estimate_and_the_speed() {
        let s = Snapshot {
            records: 600,
            dirty: 100,
            estimated_total: Some(1_000),
            ..Snapshot::default()
        };
        // 300 records left at 100 records/s.
        assert_eq!(s.eta(100.0), Some(Duration::from_secs(3)));
        assert_eq!(s.eta(0.0), None, "no speed, no ETA");
        let done = Snapshot {
            records: 1_000,
            ..s
        };
        assert_eq!(done.eta(0.0), Some(Duration::ZERO));
        assert_eq!(Snapshot::default().eta(100.0), None, "no estimate, no ETA");
        let previous = Snapshot::default();
        let now = Snapshot {
            elapsed: Duration::from_secs(6),
            records: 600,
            estimated_total: Some(1_200),
            ..Snapshot::default()
        };
        assert!(
            now.line(&previous).ends_with(" | ETA 0:06"),
            "{}",
            now.line(&previous)
        );
        assert!(now.live_lines(&previous)[2].ends_with(" · ETA 0:06"));
    }

    #[test]
    fn the_jobs_estimate_needs_every_tasks() {
        let stats = crate::shared::JobStats::default();
        stats.tasks_total.store(2, Ordering::Relaxed);
        assert_eq!(stats.estimated_total(), None);
        stats.set_estimate(0, 100);
        assert_eq!(stats.estimated_total(), None, "task 1 has not said");
        stats.set_estimate(1, 50);
        assert_eq!(stats.estimated_total(), Some(150));
        stats.set_estimate(1, 70);
        assert_eq!(
            stats.estimated_total(),
            Some(170),
            "a later estimate replaces"
        );
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
