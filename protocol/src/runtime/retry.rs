//! Retry timing shared by every plugin: exponential backoff with full jitter, bounded
//! by a number of retries and a ceiling per wait.
//!
//! Which errors are worth retrying is each service's business (its `error.rs`
//! classifies them once); this module only says how long to wait.
//!
//! ```
//! use protocol::runtime::retry::Backoff;
//! let mut backoff = Backoff::new(3, 100, 5_000);
//! while let Some(wait) = backoff.next_delay() {
//!     // ... try again after `wait`
//!     # let _ = wait;
//! }
//! assert_eq!(backoff.attempts(), 3);
//! ```

use std::time::Duration;

use rand::Rng;

/// Backoff state for one operation.
#[derive(Clone, Debug)]
pub struct Backoff {
    max_retries: u32,
    base_ms: u64,
    max_ms: u64,
    attempts: u32,
}

impl Backoff {
    /// Up to `max_retries` retries; the n-th wait is uniform in
    /// `[0, min(max_ms, base_ms × 2^n)]`.
    pub fn new(max_retries: u32, base_ms: u64, max_ms: u64) -> Self {
        Self {
            max_retries,
            base_ms,
            max_ms,
            attempts: 0,
        }
    }

    /// How long to wait before the next retry, or `None` when retries are used up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.attempts >= self.max_retries {
            return None;
        }
        let ceiling = self
            .base_ms
            .saturating_mul(1u64 << self.attempts.min(30))
            .min(self.max_ms);
        self.attempts += 1;
        let ms = if ceiling == 0 {
            0
        } else {
            rand::thread_rng().gen_range(0..=ceiling)
        };
        Some(Duration::from_millis(ms))
    }

    /// Retries granted so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_within_the_ceiling_and_stop() {
        let mut b = Backoff::new(5, 100, 1_000);
        let ceilings = [100, 200, 400, 800, 1_000];
        for ceiling in ceilings {
            let wait = b.next_delay().unwrap();
            assert!(
                wait <= Duration::from_millis(ceiling),
                "{wait:?} > {ceiling} ms"
            );
        }
        assert!(b.next_delay().is_none());
        assert_eq!(b.attempts(), 5);
        assert!(Backoff::new(0, 100, 1_000).next_delay().is_none());
    }
}
