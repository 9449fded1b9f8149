//! The token bucket that paces one direction of the proxy, as pure
//! arithmetic on instants (no clock is read here, so it is tested without
//! waiting).
//!
//! Bytes pass at `rate` per second. Unused allowance piles up to a burst of
//! a twentieth of a second's worth (at least one byte, at most one read), so
//! the link never sends in big gulps after an idle moment, yet a pump wakes
//! at most about twenty times a second.

use std::time::Duration;

use tokio::time::Instant;

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Tokens (bytes allowed to pass) of one direction.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    tokens: u64,
    /// When `tokens` was last brought up to date.
    since: Instant,
    /// Most bytes one read may take.
    max_read: u64,
}

impl Bucket {
    /// A full bucket at `now`, for reads of at most `max_read` bytes.
    pub(crate) fn new(now: Instant, max_read: usize) -> Self {
        let max_read = u64::try_from(max_read).unwrap_or(u64::MAX).max(1);
        Self {
            tokens: max_read,
            since: now,
            max_read,
        }
    }

    /// The most bytes that may pass at once at `rate` bytes per second.
    pub(crate) fn burst(&self, rate: u64) -> u64 {
        (rate / 20).clamp(1, self.max_read)
    }

    /// Adds the tokens earned since the last update, at `rate`.
    fn refill(&mut self, now: Instant, rate: u64) {
        let burst = self.burst(rate);
        let elapsed = now.saturating_duration_since(self.since).as_nanos();
        let earned = elapsed.saturating_mul(u128::from(rate)) / NANOS_PER_SECOND;
        let tokens = u128::from(self.tokens).saturating_add(earned);
        if tokens >= u128::from(burst) {
            self.tokens = burst;
            self.since = now;
        } else {
            // Advance only by the time the whole tokens took, so that
            // fractions of a token are not lost between updates.
            let spent = earned * NANOS_PER_SECOND / u128::from(rate.max(1));
            self.tokens = u64::try_from(tokens).unwrap_or(burst);
            self.since += nanos(spent);
        }
    }

    /// Bytes that may pass at `now` at `rate` (0: wait for
    /// [`Bucket::ready_at`]).
    pub(crate) fn available(&mut self, now: Instant, rate: u64) -> usize {
        self.refill(now, rate);
        usize::try_from(self.tokens).unwrap_or(usize::MAX)
    }

    /// When a full burst may pass at `rate`: the pump waits for a burst,
    /// not a byte, so that a slow link is not polled per byte.
    pub(crate) fn ready_at(&mut self, now: Instant, rate: u64) -> Instant {
        self.refill(now, rate);
        let missing = self.burst(rate).saturating_sub(self.tokens);
        let wait = (u128::from(missing) * NANOS_PER_SECOND).div_ceil(u128::from(rate.max(1)));
        self.since + nanos(wait)
    }

    /// `bytes` passed at `now`.
    pub(crate) fn take(&mut self, now: Instant, rate: u64, bytes: usize) {
        self.refill(now, rate);
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        self.tokens = self.tokens.saturating_sub(bytes);
    }
}

fn nanos(n: u128) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn bytes_pass_at_the_rate_in_bursts_of_a_twentieth_of_a_second() {
        let t0 = Instant::now();
        let rate = 20_000;
        let mut bucket = Bucket::new(t0, 16 * 1024);
        assert_eq!(bucket.burst(rate), 1_000);
        // It starts full, but never with more than a burst.
        assert_eq!(bucket.available(t0, rate), 1_000);
        bucket.take(t0, rate, 1_000);
        assert_eq!(bucket.available(t0, rate), 0);
        // 1,000 bytes take 50 ms at 20,000 per second.
        assert_eq!(bucket.ready_at(t0, rate), t0 + 50 * MS);
        assert_eq!(bucket.available(t0 + 10 * MS, rate), 200);
        assert_eq!(bucket.available(t0 + 50 * MS, rate), 1_000);
        // An idle second earns no more than a burst.
        assert_eq!(bucket.available(t0 + 1_000 * MS, rate), 1_000);
    }

    #[test]
    fn a_second_of_steady_reads_passes_one_second_of_bytes() {
        let t0 = Instant::now();
        let rate = 3_000; // bursts of 150 bytes
        let mut bucket = Bucket::new(t0, 16 * 1024);
        bucket.take(t0, rate, bucket.burst(rate) as usize);
        let mut now = t0;
        let mut passed = 0;
        // Reads of odd sizes, as the socket hands them out.
        for read in [7, 150, 149, 13, 150, 1].into_iter().cycle() {
            now = bucket.ready_at(now, rate).max(now);
            let n = bucket.available(now, rate).min(read);
            assert!(n > 0, "woken with nothing to pass");
            bucket.take(now, rate, n);
            passed += n;
            if now >= t0 + 1_000 * MS {
                break;
            }
        }
        // One second passes the rate, give or take a burst (what is left in
        // the bucket, or taken past the second).
        assert!((2_850..=3_150).contains(&passed), "{passed} bytes");
    }

    #[test]
    fn fractions_of_a_token_are_kept() {
        let t0 = Instant::now();
        let rate = 60; // a token every 16.7 ms, bursts of 3
        let mut bucket = Bucket::new(t0, 1_024);
        bucket.take(t0, rate, 3);
        assert_eq!(bucket.available(t0 + 10 * MS, rate), 0);
        assert_eq!(bucket.available(t0 + 20 * MS, rate), 1);
        bucket.take(t0 + 20 * MS, rate, 1);
        // The next token is due at 33.3 ms (two tokens' time after t0), not
        // 16.7 ms after the read.
        assert_eq!(bucket.available(t0 + 34 * MS, rate), 1);
    }

    #[test]
    fn a_burst_is_at_most_one_read_and_at_least_one_byte() {
        let bucket = Bucket::new(Instant::now(), 4_096);
        assert_eq!(bucket.burst(10_000_000), 4_096);
        assert_eq!(bucket.burst(5), 1);
    }
}
