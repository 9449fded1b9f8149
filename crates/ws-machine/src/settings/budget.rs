//! The reconnect budget: a rate of connection attempts shared by many
//! machines, so that a fleet that lost its server comes back at a pace the
//! server can take.
//!
//! The machines share one ledger ([`Turns`]) behind a `std` mutex, taken
//! once per connection attempt (never per message). The ledger is the
//! generic cell rate algorithm in its virtual-scheduling form: it keeps the
//! instant at which the next turn would be given on the steady schedule,
//! one turn every `1 / rate` seconds, and gives a turn up to
//! `(burst - 1) / rate` seconds ahead of it. So any window of `w` seconds
//! holds at most `burst + rate * w` turns, a fleet that waited long enough
//! may start `burst` attempts at once, and machines that ask while others
//! are queued get the turns after theirs, in the order they asked. The
//! arithmetic takes the instant as an argument and is unit-tested without a
//! clock.

use std::{
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::time::Instant;

use crate::types::Error;

/// A budget of connection attempts shared by every machine built with it:
/// attempts start at most at `rate` per second, after a burst of `burst`.
///
/// A fleet of machines that lose one server at the same moment would
/// otherwise all reconnect at once when it returns (each still spreads its
/// own retries with backoff and jitter, but 10,000 machines retrying within
/// a second is 10,000 handshakes a second). With a budget, each machine
/// waits for its turn before every attempt, in the order they asked,
/// reporting [`State::Waiting`](crate::State::Waiting) with the time to its
/// turn (before a machine's first attempt, with
/// [`Status::attempt`](crate::Status::attempt) 0); commands are served
/// meanwhile ([`Command::Quit`](crate::Command::Quit)
/// stops it at once). The budget adds to a machine's own backoff, never
/// replaces it: a machine that failed waits its backoff first, then its
/// turn.
///
/// Every attempt takes a turn: a machine's first one (so that 10,000
/// machines started together connect at the budget's pace too), the
/// immediate retry after a healthy connection is lost, retries after a
/// backoff, and the attempt after a
/// [`Command::Reconnect`](crate::Command::Reconnect). A `Reconnect` sent
/// while the machine waits out a backoff ends the backoff, not the wait for
/// its turn.
///
/// Cloning it shares it: give clones to the builders of every machine that
/// should share the budget (typically all machines of one server). One
/// budget is one `Arc`; a machine without a budget pays nothing for the
/// feature.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ws_machine::Error> {
/// use ws_machine::{Machine, ReconnectBudget};
///
/// // The server takes 200 handshakes a second; 50 may come at once.
/// let budget = ReconnectBudget::new(200.0, 50)?;
/// let machines = (0..100)
///     .map(|i| {
///         Machine::builder(format!("ws://127.0.0.1:9/feed/{i}"))
///             .reconnect_budget(budget.clone())
///             .spawn()
///     })
///     .collect::<Result<Vec<_>, _>>()?;
/// # drop(machines);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ReconnectBudget {
    shared: Arc<Shared>,
}

/// What the machines of one budget share.
struct Shared {
    /// As given, for `Debug`.
    rate: f64,
    burst: u32,
    /// The ledger; the lock is held only for [`Turns::take`].
    turns: Mutex<Turns>,
}

impl ReconnectBudget {
    /// A budget of `rate` connection attempts per second (any positive
    /// number: `0.5` is one every two seconds) after a burst of `burst`
    /// (at least 1) at once.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] (option `reconnect_budget`) when `rate` is
    /// not a finite number above zero (zero, negative, NaN, infinite), is so
    /// small that one attempt every `1 / rate` seconds cannot be counted,
    /// or when `burst` is zero.
    ///
    /// ```
    /// use ws_machine::{Error, ReconnectBudget};
    ///
    /// assert!(ReconnectBudget::new(500.0, 100).is_ok());
    /// for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
    ///     assert!(matches!(
    ///         ReconnectBudget::new(rate, 10),
    ///         Err(Error::InvalidConfig { option: "reconnect_budget", .. })
    ///     ));
    /// }
    /// assert!(ReconnectBudget::new(10.0, 0).is_err());
    /// ```
    pub fn new(rate: f64, burst: u32) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidConfig {
            option: "reconnect_budget",
            reason,
        };
        if !(rate.is_finite() && rate > 0.0) {
            return Err(invalid(format!(
                "the rate ({rate}) must be a finite number of attempts per second above zero"
            )));
        }
        if burst == 0 {
            return Err(invalid(
                "the burst must be at least 1 (the attempts that may start at once)".into(),
            ));
        }
        let interval = Duration::try_from_secs_f64(rate.recip())
            .map_err(|_| invalid(format!("the rate ({rate}) is too small to count")))?;
        let tolerance = interval.checked_mul(burst - 1).ok_or_else(|| {
            invalid(format!(
                "a burst of {burst} at {rate} per second is too long to count"
            ))
        })?;
        Ok(Self {
            shared: Arc::new(Shared {
                rate,
                burst,
                turns: Mutex::new(Turns::new(interval, tolerance)),
            }),
        })
    }

    /// Attempts per second, as given to [`ReconnectBudget::new`].
    ///
    /// ```
    /// let budget = ws_machine::ReconnectBudget::new(0.5, 3)?;
    /// assert_eq!((budget.rate(), budget.burst()), (0.5, 3));
    /// # Ok::<(), ws_machine::Error>(())
    /// ```
    #[must_use]
    pub fn rate(&self) -> f64 {
        self.shared.rate
    }

    /// Attempts that may start at once, as given to
    /// [`ReconnectBudget::new`] (see [`ReconnectBudget::rate`]).
    #[must_use]
    pub fn burst(&self) -> u32 {
        self.shared.burst
    }

    /// Takes the next turn for an attempt that could start at `now`:
    /// returns when it may start (`now` or later). The turn is spent
    /// whether or not the attempt is made.
    pub(crate) fn take(&self, now: Instant) -> Instant {
        // The ledger is one instant, consistent after any panic: a
        // poisoned lock is used as it is.
        let mut turns = self
            .shared
            .turns
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        turns.take(now)
    }
}

impl fmt::Debug for ReconnectBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconnectBudget")
            .field("rate", &self.shared.rate)
            .field("burst", &self.shared.burst)
            .finish()
    }
}

/// The ledger of turns: the generic cell rate algorithm, virtual
/// scheduling.
#[derive(Debug)]
struct Turns {
    /// Between two turns on the steady schedule: `1 / rate`.
    interval: Duration,
    /// How far ahead of the steady schedule a turn may be given:
    /// `(burst - 1) * interval`.
    tolerance: Duration,
    /// When the next turn is due on the steady schedule (the algorithm's
    /// "theoretical arrival time"); `None` before the first.
    due: Option<Instant>,
}

/// Far enough to mean "never", for a schedule that would pass the end of
/// the clock.
const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

impl Turns {
    fn new(interval: Duration, tolerance: Duration) -> Self {
        Self {
            interval,
            tolerance,
            due: None,
        }
    }

    /// The turn of an attempt that could start at `now`: `now` if the
    /// schedule allows it, else the earliest instant it does. Every call
    /// takes a turn.
    fn take(&mut self, now: Instant) -> Instant {
        // A schedule that fell behind `now` has turns to spare: at most a
        // burst of them, through the tolerance.
        let due = self.due.map_or(now, |due| due.max(now));
        let start = due
            .checked_sub(self.tolerance)
            .map_or(now, |earliest| earliest.max(now));
        self.due = Some(
            due.checked_add(self.interval)
                .or_else(|| due.checked_add(FAR))
                .unwrap_or(due),
        );
        start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// 10 a second (one every 100 ms), 3 at once.
    fn turns() -> Turns {
        Turns::new(ms(100), ms(200))
    }

    #[test]
    fn a_burst_goes_at_once_then_one_turn_per_interval() {
        let t0 = Instant::now();
        let mut turns = turns();
        let starts: Vec<Duration> = (0..7).map(|_| turns.take(t0) - t0).collect();
        assert_eq!(starts, [0, 0, 0, 100, 200, 300, 400].map(ms));
    }

    #[test]
    fn turns_left_unused_come_back_up_to_the_burst() {
        let t0 = Instant::now();
        let mut turns = turns();
        for _ in 0..6 {
            turns.take(t0);
        }
        // The steady schedule is 600 ms ahead; 250 ms later the next turn
        // is 350 ms ahead, less the tolerance.
        let t1 = t0 + ms(250);
        assert_eq!(turns.take(t1) - t1, ms(150));
        // Long after, a whole burst again, and no more.
        let t2 = t0 + Duration::from_secs(10);
        let starts: Vec<Duration> = (0..4).map(|_| turns.take(t2) - t2).collect();
        assert_eq!(starts, [0, 0, 0, 100].map(ms));
    }

    /// Whatever the instants of the requests, a window shorter than `w`
    /// holds at most `burst + ceil(w * rate) - 1` turns (so fewer than
    /// `burst + rate * w`), and no turn is given before it was asked for.
    #[test]
    fn no_window_holds_more_than_the_budget() {
        let t0 = Instant::now();
        let mut turns = turns();
        let mut rng = fastrand::Rng::with_seed(5);
        let mut now = t0;
        let mut starts = Vec::new();
        for _ in 0..2_000 {
            now += ms(rng.u64(0..=60));
            let start = turns.take(now);
            assert!(start >= now);
            starts.push(start);
        }
        starts.sort();
        for (i, first) in starts.iter().enumerate() {
            for window in [ms(1), ms(100), ms(1000), ms(5000)] {
                let within = starts[i..]
                    .iter()
                    .take_while(|s| **s < *first + window)
                    .count();
                let allowed =
                    2 + usize::try_from(window.as_millis().div_ceil(100)).expect("a small number");
                assert!(within <= allowed, "{within} turns within {window:?}");
            }
        }
    }

    #[test]
    fn a_burst_of_one_spaces_every_turn() {
        let t0 = Instant::now();
        let mut turns = Turns::new(ms(50), Duration::ZERO);
        let starts: Vec<Duration> = (0..3).map(|_| turns.take(t0) - t0).collect();
        assert_eq!(starts, [0, 50, 100].map(ms));
    }

    #[test]
    fn invalid_budgets_are_refused_with_the_option_named() {
        for (rate, burst) in [
            (0.0, 5),
            (-3.0, 5),
            (f64::NAN, 5),
            (f64::INFINITY, 5),
            (1e-30, 5),
            (10.0, 0),
        ] {
            match ReconnectBudget::new(rate, burst) {
                Err(Error::InvalidConfig {
                    option: "reconnect_budget",
                    reason,
                }) => assert!(!reason.is_empty()),
                other => panic!("{rate}/s, burst {burst}: {other:?}"),
            }
        }
        let budget = ReconnectBudget::new(0.5, 1).expect("valid");
        assert_eq!((budget.rate(), budget.burst()), (0.5, 1));
        assert_eq!(
            format!("{budget:?}"),
            "ReconnectBudget { rate: 0.5, burst: 1 }"
        );
    }

    /// Clones share one ledger.
    #[test]
    fn clones_share_the_turns() {
        let budget = ReconnectBudget::new(10.0, 1).expect("valid");
        let other = budget.clone();
        let t0 = Instant::now();
        assert_eq!(budget.take(t0), t0);
        assert_eq!(other.take(t0), t0 + ms(100));
        assert_eq!(budget.take(t0), t0 + ms(200));
    }
}
