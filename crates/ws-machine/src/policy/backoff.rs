//! How long to wait between failed connection attempts.
//!
//! Exponential growth with full jitter, bounded by how long the machine has
//! been disconnected: after the `n`-th failed attempt in a row, disconnected
//! for `down` (since the last healthy connection was lost, or since the
//! machine started), the machine waits a random time between `initial` and
//!
//! ```text
//! min(max, initial * 2^n, max(2 * initial, down))
//! ```
//!
//! The exponential ceiling alone counts failures, and a server that refuses
//! connections fails them at once: a machine piled up 4 to 7 failures in a
//! 2 s outage and could then wait 12.8 s after the server was back. Bounded
//! by `down`, no wait is longer than the outage so far, so a machine is
//! back within about twice the outage, however quickly its attempts
//! failed; slow failures (timeouts) leave `down` ahead of the exponential
//! ceiling, which then rules as before. The bound never goes below the first
//! failure's ceiling (`2 * initial`), so the randomness still starts with
//! the first failure and clients that lost the same server at the same
//! moment do not come back in lockstep.
//!
//! The schedule is pure (the random generator is seeded and owned here, the
//! time disconnected is an argument), so it is tested without clocks or
//! sockets.

use std::time::Duration;

use crate::settings::Span;

/// The backoff schedule of one machine.
#[derive(Debug)]
pub(crate) struct Backoff {
    /// Durations in 8 bytes each: every idle machine holds its schedule.
    initial: Span,
    max: Span,
    rng: fastrand::Rng,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration, rng: fastrand::Rng) -> Self {
        Self {
            initial: initial.into(),
            max: max.into(),
            rng,
        }
    }

    /// The largest delay the schedule can pick after `failures` failed
    /// attempts in a row (`failures >= 1`), disconnected for `down`.
    pub(crate) fn ceiling(&self, failures: u32, down: Duration) -> Duration {
        let (initial, max) = (self.initial.get(), self.max.get());
        let growth = initial.saturating_mul(1u32 << failures.min(31));
        let outage = down.max(initial.saturating_mul(2));
        growth.min(outage).min(max).max(initial.min(max))
    }

    /// The delay before the next attempt after `failures` failed attempts in
    /// a row, disconnected for `down`; never shorter than what the server
    /// asked for (`Retry-After`).
    pub(crate) fn delay(
        &mut self,
        failures: u32,
        down: Duration,
        retry_after: Option<Duration>,
    ) -> Duration {
        let floor = self.initial.get().min(self.max.get());
        let ceiling = self.ceiling(failures, down);
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

    /// Disconnected long enough for the outage not to bound the wait.
    const LONG: Duration = Duration::from_secs(3600);

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
        for down in [Duration::ZERO, LONG] {
            let delays: Vec<Duration> = (0..100).map(|_| b.delay(1, down, None)).collect();
            assert!(delays.iter().all(|d| (100..=200).contains(&d.as_millis())));
            let distinct: std::collections::HashSet<_> = delays.iter().collect();
            assert!(distinct.len() > 50, "{} distinct delays", distinct.len());
        }
    }

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let b = schedule();
        let ceilings: Vec<u128> = (1..=7).map(|n| b.ceiling(n, LONG).as_millis()).collect();
        assert_eq!(ceilings, [200, 400, 800, 1600, 2000, 2000, 2000]);
        assert_eq!(b.ceiling(u32::MAX, LONG), Duration::from_secs(2));
    }

    /// Quick failures pile up, but the ceiling is the time disconnected
    /// (and never less than the first failure's ceiling).
    #[test]
    fn the_ceiling_is_the_time_disconnected() {
        let b = schedule();
        let ms = Duration::from_millis;
        let cases = [
            // (failures, disconnected for, ceiling)
            (1, 0, 200),
            (2, 0, 200),
            (7, 0, 200),
            (7, 150, 200),
            (7, 350, 350),
            (7, 1234, 1234),
            (7, 5000, 2000),
            (3, 5000, 800),
            (3, 600, 600),
        ];
        for (failures, down, ceiling) in cases {
            assert_eq!(
                b.ceiling(failures, ms(down)),
                ms(ceiling),
                "{failures} failures, {down} ms"
            );
        }
    }

    /// A machine whose attempts all fail at once is back within twice the
    /// outage: each wait is at most the time disconnected so far (past the
    /// first few hundred milliseconds).
    #[test]
    fn waits_never_exceed_the_time_disconnected() {
        let mut b = Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(30),
            fastrand::Rng::with_seed(11),
        );
        let mut down = Duration::ZERO;
        for failures in 1..=40 {
            let delay = b.delay(failures, down, None);
            assert!(delay >= Duration::from_millis(100));
            assert!(
                delay <= down.max(Duration::from_millis(200)),
                "failure {failures}, down {down:?}: {delay:?}"
            );
            down += delay;
        }
        // Forty waits, none longer than the cap, and the cap is reached.
        assert!(down > Duration::from_secs(30), "{down:?}");
        assert!(b.delay(41, down, None) <= Duration::from_secs(30));
    }

    #[test]
    fn delays_stay_between_initial_and_ceiling_and_are_spread() {
        let mut b = schedule();
        let delays: Vec<Duration> = (0..200).map(|_| b.delay(6, LONG, None)).collect();
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
        // Even beyond the time disconnected: the server asked.
        assert_eq!(
            b.delay(1, Duration::ZERO, Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        let floor_is_the_schedule = b.delay(1, LONG, Some(Duration::from_millis(1)));
        assert!((100..=200).contains(&floor_is_the_schedule.as_millis()));
    }

    #[test]
    fn zero_initial_delay_reconnects_at_once() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO, fastrand::Rng::with_seed(1));
        assert_eq!(b.delay(10, LONG, None), Duration::ZERO);
        let mut b = Backoff::new(
            Duration::ZERO,
            Duration::from_secs(1),
            fastrand::Rng::with_seed(1),
        );
        assert_eq!(b.delay(10, LONG, None), Duration::ZERO);
    }
}
