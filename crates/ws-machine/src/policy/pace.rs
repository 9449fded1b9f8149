//! The outgoing rate limit: at most `count` messages in any window of
//! `per`, because exchanges disconnect clients that send faster than their
//! limit.
//!
//! A sliding-window log: the times of the last `count` messages. A message
//! may go when fewer than `count` went out in the last `per`. This is exact
//! against servers that count in fixed windows and in sliding ones alike
//! (a token bucket of `count` per `per` is not: a full burst followed by
//! the steady rate puts nearly twice `count` into one window), and it lets
//! a burst of up to `count` go at once. Its memory is `count` instants,
//! held only by machines with a limit. Messages the machine must send
//! whatever the rate (the `on_connect` messages, the heartbeat) are logged
//! without waiting, so they delay the caller's messages instead of pushing
//! the connection further over the limit.

use std::{collections::VecDeque, time::Duration};

use tokio::time::Instant;

use super::after;

/// The rate limit's state (one per machine: the limit holds across
/// reconnects).
#[derive(Debug, Clone)]
pub(crate) struct Pace {
    count: usize,
    per: Duration,
    /// When the last (at most `count`) messages went out, oldest first.
    sent: VecDeque<Instant>,
}

impl Pace {
    /// At most `count` (at least 1) messages in any `per`.
    pub(crate) fn new(count: u32, per: Duration) -> Self {
        Self {
            count: usize::try_from(count).unwrap_or(usize::MAX).max(1),
            per,
            sent: VecDeque::new(),
        }
    }

    /// When the next message may go, if not at any time: `count` messages
    /// went out within `per` of this instant.
    pub(crate) fn ready_at(&self) -> Option<Instant> {
        if self.sent.len() < self.count {
            return None;
        }
        self.sent.front().map(|&oldest| after(oldest, self.per))
    }

    /// Whether a message may go at `now`.
    pub(crate) fn allows(&self, now: Instant) -> bool {
        self.ready_at().is_none_or(|at| now >= at)
    }

    /// A message went out at `now` (allowed or not: a message that had to
    /// go is counted all the same).
    pub(crate) fn sent(&mut self, now: Instant) {
        if self.sent.len() >= self.count {
            self.sent.pop_front();
        }
        self.sent.push_back(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Sends whenever allowed, checking every millisecond for `for_ms`;
    /// returns the send times in ms after `t0`.
    fn run(pace: &mut Pace, t0: Instant, for_ms: u32) -> Vec<u32> {
        let mut sent = Vec::new();
        for ms in 0..for_ms {
            let now = t0 + MS * ms;
            while pace.allows(now) {
                pace.sent(now);
                sent.push(ms);
            }
        }
        sent
    }

    /// The largest number of sends within any window of `per_ms`.
    fn busiest_window(sent: &[u32], per_ms: u32) -> usize {
        sent.iter()
            .map(|&start| {
                sent.iter()
                    .filter(|&&t| t >= start && t < start + per_ms)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn a_burst_of_count_then_a_burst_per_window() {
        let t0 = Instant::now();
        let mut pace = Pace::new(4, Duration::from_secs(1));
        let sent = run(&mut pace, t0, 2001);
        assert_eq!(
            sent,
            [0, 0, 0, 0, 1000, 1000, 1000, 1000, 2000, 2000, 2000, 2000]
        );
        assert_eq!(busiest_window(&sent, 1000), 4);
    }

    /// Sends spread out keep every window at the limit, never over.
    #[test]
    fn no_window_ever_holds_more_than_count() {
        let t0 = Instant::now();
        let mut pace = Pace::new(3, Duration::from_millis(100));
        let mut sent = Vec::new();
        for ms in (0..1000).step_by(7) {
            let now = t0 + MS * ms;
            if pace.allows(now) {
                pace.sent(now);
                sent.push(ms);
            }
        }
        assert_eq!(busiest_window(&sent, 100), 3);
        assert!(sent.len() >= 27, "{} sent", sent.len());
    }

    /// A message that had to go (a heartbeat) uses up the room of one of
    /// the caller's.
    #[test]
    fn forced_messages_are_counted() {
        let t0 = Instant::now();
        let mut pace = Pace::new(2, Duration::from_millis(100));
        pace.sent(t0);
        pace.sent(t0 + 10 * MS);
        pace.sent(t0 + 20 * MS);
        assert!(!pace.allows(t0 + 109 * MS));
        assert_eq!(pace.ready_at(), Some(t0 + 110 * MS));
    }
}
