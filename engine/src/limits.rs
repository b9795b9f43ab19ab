//! Speed and error limits for the whole job.
//!
//! [`SpeedLimiter`] is a pair of shared token buckets (bytes/s, records/s) that every
//! channel draws from before forwarding a batch, so the limits hold for the job, not per
//! channel. A batch larger than the bucket may overdraw it: the caller then waits until
//! the debt is repaid, which keeps the long-run rate exact whatever the batch size. The
//! buckets read time from a [`Clock`], so tests drive them with a [`ManualClock`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A monotonic clock: time since an arbitrary origin.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Duration;
}

/// The real clock.
#[derive(Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// A token bucket that may go into debt.
#[derive(Debug)]
pub struct TokenBucket {
    rate_per_sec: f64,
    capacity: f64,
    /// (tokens, time of the last refill)
    state: Mutex<(f64, Duration)>,
}

impl TokenBucket {
    /// A bucket refilled at `rate_per_sec` that holds at most a tenth of a second's
    /// worth; it starts empty, so a job cannot burst at start.
    pub fn new(rate_per_sec: u64, now: Duration) -> Self {
        let rate = rate_per_sec.max(1) as f64;
        Self {
            rate_per_sec: rate,
            capacity: rate / 10.0,
            state: Mutex::new((0.0, now)),
        }
    }

    /// Takes `amount` tokens at time `now`; returns how long the caller must wait before
    /// using them.
    pub fn reserve(&self, amount: u64, now: Duration) -> Duration {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = &mut *state;
        if now > *last {
            *tokens =
                (*tokens + (now - *last).as_secs_f64() * self.rate_per_sec).min(self.capacity);
            *last = now;
        }
        *tokens -= amount as f64;
        if *tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-*tokens / self.rate_per_sec)
        }
    }
}

/// The job's speed limits.
#[derive(Debug)]
pub struct SpeedLimiter {
    clock: Arc<dyn Clock>,
    bytes: Option<TokenBucket>,
    records: Option<TokenBucket>,
}

impl SpeedLimiter {
    pub fn new(
        bytes_per_sec: Option<u64>,
        records_per_sec: Option<u64>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let now = clock.now();
        Self {
            bytes: bytes_per_sec.map(|r| TokenBucket::new(r, now)),
            records: records_per_sec.map(|r| TokenBucket::new(r, now)),
            clock,
        }
    }

    pub fn is_limited(&self) -> bool {
        self.bytes.is_some() || self.records.is_some()
    }

    /// How long to wait before forwarding a batch of `records` records and `bytes` bytes.
    pub fn reserve(&self, records: u64, bytes: u64) -> Duration {
        let now = self.clock.now();
        let by_bytes = self
            .bytes
            .as_ref()
            .map_or(Duration::ZERO, |b| b.reserve(bytes, now));
        let by_records = self
            .records
            .as_ref()
            .map_or(Duration::ZERO, |b| b.reserve(records, now));
        by_bytes.max(by_records)
    }

    /// Waits as [`reserve`](Self::reserve) says (on the real clock).
    pub async fn acquire(&self, records: u64, bytes: u64) {
        if !self.is_limited() {
            return;
        }
        let wait = self.reserve(records, bytes);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// `errorLimit`: `record` (strictly more dirty records fail; `0` = none allowed) wins
/// over `percentage` (dirty ÷ records read, checked at the end).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ErrorLimit {
    pub record: Option<u64>,
    pub percentage: Option<f64>,
}

impl ErrorLimit {
    /// Checked at every dirty record.
    pub fn check_record(&self, dirty: u64) -> Result<(), String> {
        match self.record {
            Some(limit) if dirty > limit => Err(format!(
                "error limit exceeded: {dirty} dirty records, the limit (errorLimit.record) is {limit}"
            )),
            _ => Ok(()),
        }
    }

    /// Checked once every task has finished. `read` = records the readers produced,
    /// including their dirty ones.
    pub fn check_final(&self, dirty: u64, read: u64) -> Result<(), String> {
        self.check_record(dirty)?;
        if self.record.is_some() {
            return Ok(());
        }
        match self.percentage {
            Some(limit) if read > 0 && dirty as f64 / read as f64 > limit => Err(format!(
                "error limit exceeded: {dirty} dirty of {read} records is {:.6}, the limit (errorLimit.percentage) is {limit:.6}",
                dirty as f64 / read as f64
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_waits_for_debt_and_refills_with_time() {
        let clock = ManualClock::default();
        let bucket = TokenBucket::new(1000, clock.now());
        assert_eq!(bucket.reserve(500, clock.now()), Duration::from_millis(500));
        // A second caller at the same time queues behind the first.
        assert_eq!(
            bucket.reserve(500, clock.now()),
            Duration::from_millis(1000)
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(bucket.reserve(0, clock.now()), Duration::from_millis(0));
        clock.advance(Duration::from_secs(10));
        // Idle time refills at most a tenth of a second's worth.
        assert_eq!(bucket.reserve(100, clock.now()), Duration::ZERO);
        assert_eq!(bucket.reserve(100, clock.now()), Duration::from_millis(100));
    }

    /// Four channels drawing batches of different sizes as fast as the limiter lets them
    /// move exactly `rate × time`, whatever the batch size.
    #[test]
    fn shared_limit_holds_across_channels() {
        let clock = Arc::new(ManualClock::default());
        let limiter = SpeedLimiter::new(Some(2 * 1024 * 1024), Some(50_000), clock.clone());
        let mut ready_at = [Duration::ZERO; 4];
        let batch_bytes = [300_000u64, 1_000_000, 64_000, 700_000];
        let batch_records = [3000u64, 10_000, 640, 7000];
        let mut moved_bytes = 0u64;
        let mut moved_records = 0u64;
        let end = Duration::from_secs(10);
        loop {
            let (ch, at) = ready_at
                .iter()
                .enumerate()
                .min_by_key(|(_, t)| **t)
                .map(|(i, t)| (i, *t))
                .unwrap();
            if at >= end {
                break;
            }
            let now = clock.now();
            if at > now {
                clock.advance(at - now);
            }
            let wait = limiter.reserve(batch_records[ch], batch_bytes[ch]);
            ready_at[ch] = clock.now() + wait;
            if ready_at[ch] <= end {
                moved_bytes += batch_bytes[ch];
                moved_records += batch_records[ch];
            }
        }
        let secs = end.as_secs_f64();
        let byte_rate = moved_bytes as f64 / secs;
        let record_rate = moved_records as f64 / secs;
        // At 100 bytes per record the byte limit binds (50,000 records/s would be 5 MB/s).
        assert!(byte_rate <= 2.0 * 1024.0 * 1024.0 * 1.05, "{byte_rate}");
        assert!(record_rate <= 50_000.0 * 1.05, "{record_rate}");
        let byte_share = byte_rate / (2.0 * 1024.0 * 1024.0);
        let record_share = record_rate / 50_000.0;
        assert!(byte_share > 0.95, "{byte_share} {record_share}");
    }

    #[test]
    fn unlimited_never_waits() {
        let limiter = SpeedLimiter::new(None, None, Arc::new(ManualClock::default()));
        assert!(!limiter.is_limited());
        assert_eq!(limiter.reserve(1_000_000, 1 << 30), Duration::ZERO);
    }

    #[test]
    fn error_limits() {
        let zero = ErrorLimit {
            record: Some(0),
            percentage: None,
        };
        assert!(zero.check_record(0).is_ok());
        assert!(zero.check_record(1).is_err());
        let five = ErrorLimit {
            record: Some(5),
            percentage: Some(0.0),
        };
        assert!(
            five.check_final(5, 10).is_ok(),
            "record wins over percentage"
        );
        assert!(five.check_final(6, 10).is_err());
        let pct = ErrorLimit {
            record: None,
            percentage: Some(0.1),
        };
        assert!(
            pct.check_record(1_000).is_ok(),
            "percentage is checked only at the end"
        );
        assert!(pct.check_final(10, 100).is_ok());
        let err = pct.check_final(11, 100).unwrap_err();
        assert!(err.contains("0.110000"), "{err}");
        assert!(ErrorLimit::default().check_final(100, 100).is_ok());
    }
}
