//! The application-level heartbeat, as pure deadline arithmetic.
//!
//! Many servers ignore control pings and expect a data message instead
//! (`{"op":"ping"}`), and many count only what the *client* sends towards
//! their own idle timeout. So, unlike the keep-alive ping (sent after
//! silence), the heartbeat goes out on a fixed period, whatever arrives:
//! every `every`, counted from the connection's start.
//!
//! After a heartbeat, its reply must arrive within the pong timeout, or the
//! connection is dead. What counts as a reply is decided by the caller's
//! matcher; without one, anything that arrives does (as for pings). Only
//! the oldest unanswered heartbeat starts the timeout: a reply answers all
//! of them.

use std::time::Duration;

use tokio::time::Instant;

use super::after;

/// What the timer's expiry means for the heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beat {
    /// Nothing yet: fire again at this instant.
    Rearm(Instant),
    /// Send the heartbeat now (then call [`Heartbeat::sent`]).
    Send,
    /// No reply within the timeout: the connection is dead.
    Dead,
}

/// The heartbeat's two durations, given with each question (the
/// connection keeps only its instants).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Period {
    /// Time between two heartbeats.
    pub(crate) every: Duration,
    /// How long a reply may take.
    pub(crate) timeout: Duration,
}

/// Heartbeat bookkeeping of one connection.
#[derive(Debug, Clone)]
pub(crate) struct Heartbeat {
    next: Instant,
    unanswered_since: Option<Instant>,
}

impl Heartbeat {
    /// A connection established at `now`: the first heartbeat is due one
    /// period later.
    pub(crate) fn new(now: Instant, period: Period) -> Self {
        Self {
            next: after(now, period.every),
            unanswered_since: None,
        }
    }

    /// A heartbeat went out at `now`; the next is due one period later.
    pub(crate) fn sent(&mut self, now: Instant, period: Period) {
        self.next = after(now, period.every);
        self.unanswered_since.get_or_insert(now);
    }

    /// A reply arrived. Returns when the oldest heartbeat it answers was
    /// sent, if one was awaited (the round trip is measured from it). The
    /// deadline may then be later than the timer's, which is harmless (the
    /// timer fires, finds nothing due and re-arms), so the caller need not
    /// reset it.
    pub(crate) fn answered(&mut self) -> Option<Instant> {
        self.unanswered_since.take()
    }

    /// When the timer should next fire for the heartbeat.
    pub(crate) fn deadline(&self, period: Period) -> Instant {
        match self.unanswered_since {
            Some(sent) => after(sent, period.timeout).min(self.next),
            None => self.next,
        }
    }

    /// The timer fired at `now`.
    pub(crate) fn on_timer(&self, now: Instant, period: Period) -> Beat {
        if self
            .unanswered_since
            .is_some_and(|sent| now >= after(sent, period.timeout))
        {
            Beat::Dead
        } else if now >= self.next {
            Beat::Send
        } else {
            Beat::Rearm(self.deadline(period))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);
    const PERIOD: Period = Period {
        every: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
    };

    #[test]
    fn beats_on_a_fixed_period_while_answered() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(t0, PERIOD);
        assert_eq!(hb.deadline(PERIOD), t0 + 5 * SECOND);
        assert_eq!(
            hb.on_timer(t0 + 4 * SECOND, PERIOD),
            Beat::Rearm(t0 + 5 * SECOND)
        );
        assert_eq!(hb.on_timer(t0 + 5 * SECOND, PERIOD), Beat::Send);
        hb.sent(t0 + 5 * SECOND, PERIOD);
        // The reply's deadline comes first.
        assert_eq!(hb.deadline(PERIOD), t0 + 7 * SECOND);
        assert_eq!(hb.answered(), Some(t0 + 5 * SECOND), "sent then");
        assert_eq!(hb.answered(), None, "only an awaited reply counts");
        assert_eq!(hb.deadline(PERIOD), t0 + 10 * SECOND);
        assert_eq!(hb.on_timer(t0 + 10 * SECOND, PERIOD), Beat::Send);
    }

    #[test]
    fn no_reply_within_the_timeout_is_death() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(t0, PERIOD);
        hb.sent(t0 + 5 * SECOND, PERIOD);
        assert_eq!(
            hb.on_timer(t0 + 6 * SECOND, PERIOD),
            Beat::Rearm(t0 + 7 * SECOND)
        );
        assert_eq!(hb.on_timer(t0 + 7 * SECOND, PERIOD), Beat::Dead);
    }

    /// With a timeout longer than the period, beats go on meanwhile; the
    /// oldest unanswered one still sets the deadline.
    #[test]
    fn the_oldest_unanswered_beat_sets_the_deadline() {
        let slow = Period {
            every: 2 * SECOND,
            timeout: 5 * SECOND,
        };
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(t0, slow);
        hb.sent(t0 + 2 * SECOND, slow);
        assert_eq!(hb.deadline(slow), t0 + 4 * SECOND);
        assert_eq!(hb.on_timer(t0 + 4 * SECOND, slow), Beat::Send);
        hb.sent(t0 + 4 * SECOND, slow);
        assert_eq!(hb.deadline(slow), t0 + 6 * SECOND);
        hb.sent(t0 + 6 * SECOND, slow);
        assert_eq!(hb.deadline(slow), t0 + 7 * SECOND);
        assert_eq!(hb.on_timer(t0 + 7 * SECOND, slow), Beat::Dead);
    }

    #[test]
    fn a_huge_period_never_beats() {
        let never = Period {
            every: Duration::MAX,
            timeout: Duration::MAX,
        };
        let t0 = Instant::now();
        let hb = Heartbeat::new(t0, never);
        let year = Duration::from_secs(365 * 24 * 3600);
        assert!(matches!(hb.on_timer(t0 + year, never), Beat::Rearm(_)));
    }
}
