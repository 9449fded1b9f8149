//! How long to wait between failed connection attempts.
//!
//! Exponential growth with full jitter: after the `n`-th failed attempt in a
//! row the machine waits a random time between `initial` and
//! `min(max, initial * 2^n)`. The ceiling doubles with every failure until it
//! reaches `max`; the randomness starts with the first failure, so clients
//! that lost the same server at the same moment do not come back in
//! lockstep.
//!
//! The schedule is pure (the random generator is seeded and owned here), so it
//! is tested without clocks or sockets.

use std::time::Duration;

/// The backoff schedule of one machine.
#[derive(Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    rng: fastrand::Rng,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration, rng: fastrand::Rng) -> Self {
        Self { initial, max, rng }
    }

    /// The largest delay the schedule can pick after `failures` failed
    /// attempts in a row (`failures >= 1`).
    pub(crate) fn ceiling(&self, failures: u32) -> Duration {
        self.initial
            .saturating_mul(1u32 << failures.min(31))
            .min(self.max)
            .max(self.initial.min(self.max))
    }

    /// The delay before the next attempt after `failures` failed attempts in
    /// a row, never shorter than what the server asked for (`Retry-After`).
    pub(crate) fn delay(&mut self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let floor = self.initial.min(self.max);
        let ceiling = self.ceiling(failures);
        // Whole milliseconds: the timer's resolution, and readable statuses.
        let span = u64::try_from(ceiling.saturating_sub(floor).as_millis()).unwrap_or(u64::MAX);
        let jitter = Duration::from_millis(self.rng.u64(0..=span));
        let delay = floor + jitter;
        retry_after.map_or(delay, |asked| delay.max(asked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Backoff {
        Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(2),
            fastrand::Rng::with_seed(7),
        )
    }

    #[test]
    fn the_first_failure_is_already_jittered() {
        let mut b = schedule();
        let delays: Vec<Duration> = (0..100).map(|_| b.delay(1, None)).collect();
        assert!(delays.iter().all(|d| (100..=200).contains(&d.as_millis())));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 50, "{} distinct delays", distinct.len());
    }

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let b = schedule();
        let ceilings: Vec<u128> = (1..=7).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [200, 400, 800, 1600, 2000, 2000, 2000]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn delays_stay_between_initial_and_ceiling_and_are_spread() {
        let mut b = schedule();
        let delays: Vec<Duration> = (0..200).map(|_| b.delay(6, None)).collect();
        assert!(delays.iter().all(|d| *d >= Duration::from_millis(100)));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(2)));
        let below_half = delays
            .iter()
            .filter(|d| **d < Duration::from_millis(1050))
            .count();
        // Full jitter: roughly half fall in each half of the range.
        assert!((60..140).contains(&below_half), "{below_half} of 200");
    }

    #[test]
    fn retry_after_is_a_floor() {
        let mut b = schedule();
        assert_eq!(
            b.delay(1, Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        let floor_is_the_schedule = b.delay(1, Some(Duration::from_millis(1)));
        assert!((100..=200).contains(&floor_is_the_schedule.as_millis()));
    }

    #[test]
    fn zero_initial_delay_reconnects_at_once() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO, fastrand::Rng::with_seed(1));
        assert_eq!(b.delay(10, None), Duration::ZERO);
    }
}
