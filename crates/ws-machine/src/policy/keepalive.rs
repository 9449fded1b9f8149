//! Keep-alive pings and dead-peer detection, as pure deadline arithmetic.
//!
//! Only what *arrives* proves the peer is alive: outgoing traffic can sit in
//! a socket buffer towards a frozen server forever. So:
//! - when nothing has been received for `ping_interval`, send a ping;
//! - when, after a ping, nothing at all (a pong or any other frame) arrives
//!   within `pong_timeout`, the peer is dead.
//!
//! A server that freezes is therefore detected at most
//! `ping_interval + pong_timeout` after the last frame it sent.
//!
//! Receiving a frame only records the time ([`KeepAlive::received`]); the
//! driver's single timer is not reset per message (that would cost a timer
//! update on the hot path). When the timer fires, [`KeepAlive::on_timer`]
//! decides whether it was early (re-arm), a ping is due, or the peer is dead.

use std::time::Duration;

use tokio::time::Instant;

use super::after;

/// What the timer's expiry means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Nothing yet: re-arm the timer for this instant.
    Rearm(Instant),
    /// Send a keep-alive ping now (then call [`KeepAlive::ping_sent`]).
    Ping,
    /// No answer within the pong timeout: the peer is dead.
    Dead,
}

/// The keep-alive's two durations, given with each question (the
/// connection keeps only its instants; the settings hold the durations).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    /// Silence after which a ping is due.
    pub(crate) interval: Duration,
    /// How long an answer to a ping may take.
    pub(crate) timeout: Duration,
}

/// Keep-alive bookkeeping of one connection.
#[derive(Debug, Clone)]
pub(crate) struct KeepAlive {
    last_received: Instant,
    ping_outstanding_since: Option<Instant>,
}

impl KeepAlive {
    /// A fresh connection, established at `now`.
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            last_received: now,
            ping_outstanding_since: None,
        }
    }

    /// Something arrived from the peer. Returns true when that answered a
    /// ping: the deadline may then be earlier than the one the timer is set
    /// for (the next ping is due `interval` after the answer, which can come
    /// before `sent + timeout`), so the timer must be reset. Otherwise the
    /// deadline only moves later and the timer can stay as it is.
    pub(crate) fn received(&mut self, now: Instant) -> bool {
        self.last_received = now;
        self.ping_outstanding_since.take().is_some()
    }

    /// A ping went out (keep-alive or asked for by the caller). Only the first
    /// unanswered ping starts the pong timeout.
    pub(crate) fn ping_sent(&mut self, now: Instant) {
        if self.ping_outstanding_since.is_none() {
            self.ping_outstanding_since = Some(now);
        }
    }

    /// When the timer should next fire.
    pub(crate) fn deadline(&self, schedule: Schedule) -> Instant {
        match self.ping_outstanding_since {
            Some(sent) => after(sent, schedule.timeout),
            None => after(self.last_received, schedule.interval),
        }
    }

    /// The timer fired at `now`.
    pub(crate) fn on_timer(&self, now: Instant, schedule: Schedule) -> Due {
        let deadline = self.deadline(schedule);
        if now < deadline {
            Due::Rearm(deadline)
        } else if self.ping_outstanding_since.is_some() {
            Due::Dead
        } else {
            Due::Ping
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn pings_after_silence_then_declares_death() {
        let t0 = Instant::now();
        let s = Schedule {
            interval: 10 * SECOND,
            timeout: 3 * SECOND,
        };
        let mut ka = KeepAlive::new(t0);
        assert_eq!(ka.deadline(s), t0 + 10 * SECOND);
        assert_eq!(ka.on_timer(t0 + 10 * SECOND, s), Due::Ping);
        ka.ping_sent(t0 + 10 * SECOND);
        assert_eq!(ka.deadline(s), t0 + 13 * SECOND);
        assert_eq!(ka.on_timer(t0 + 13 * SECOND, s), Due::Dead);
    }

    #[test]
    fn any_frame_answers_a_ping() {
        let t0 = Instant::now();
        let s = Schedule {
            interval: 10 * SECOND,
            timeout: 3 * SECOND,
        };
        let mut ka = KeepAlive::new(t0);
        ka.ping_sent(t0 + 10 * SECOND);
        ka.received(t0 + 11 * SECOND);
        assert_eq!(
            ka.on_timer(t0 + 13 * SECOND, s),
            Due::Rearm(t0 + 21 * SECOND)
        );
    }

    #[test]
    fn traffic_postpones_the_ping_without_resetting_the_timer() {
        let t0 = Instant::now();
        let s = Schedule {
            interval: 10 * SECOND,
            timeout: 3 * SECOND,
        };
        let mut ka = KeepAlive::new(t0);
        ka.received(t0 + 4 * SECOND);
        assert_eq!(
            ka.on_timer(t0 + 10 * SECOND, s),
            Due::Rearm(t0 + 14 * SECOND)
        );
    }

    #[test]
    fn a_second_ping_does_not_extend_the_timeout() {
        let t0 = Instant::now();
        let s = Schedule {
            interval: 10 * SECOND,
            timeout: 3 * SECOND,
        };
        let mut ka = KeepAlive::new(t0);
        ka.ping_sent(t0 + SECOND);
        ka.ping_sent(t0 + 2 * SECOND);
        assert_eq!(ka.on_timer(t0 + 4 * SECOND, s), Due::Dead);
    }

    #[test]
    fn an_answer_to_a_ping_asks_for_a_timer_reset() {
        let t0 = Instant::now();
        let s = Schedule {
            interval: 10 * SECOND,
            timeout: 30 * SECOND,
        };
        let mut ka = KeepAlive::new(t0);
        assert!(!ka.received(t0 + SECOND), "no ping outstanding");
        ka.ping_sent(t0 + 11 * SECOND);
        assert_eq!(ka.deadline(s), t0 + 41 * SECOND);
        assert!(ka.received(t0 + 12 * SECOND));
        assert_eq!(ka.deadline(s), t0 + 22 * SECOND, "earlier than before");
    }

    #[test]
    fn huge_durations_mean_never() {
        let t0 = Instant::now();
        let s = Schedule {
            interval: Duration::MAX,
            timeout: Duration::MAX,
        };
        let mut ka = KeepAlive::new(t0);
        assert!(ka.deadline(s) > t0 + 100 * 365 * 24 * 3600 * SECOND / 10);
        ka.ping_sent(t0);
        assert!(matches!(ka.on_timer(t0 + 3600 * SECOND, s), Due::Rearm(_)));
    }

    #[test]
    fn detection_is_bounded_by_interval_plus_timeout() {
        let t0 = Instant::now();
        let interval = Duration::from_millis(100);
        let timeout = Duration::from_millis(200);
        let s = Schedule { interval, timeout };
        let mut ka = KeepAlive::new(t0);
        // The peer's last frame arrives at 50 ms, then it freezes.
        let frozen_at = t0 + Duration::from_millis(50);
        ka.received(frozen_at);
        // A timer armed at t0 fires at 100 ms: early, re-arm.
        let Due::Rearm(at) = ka.on_timer(t0 + interval, s) else {
            panic!("expected a re-arm");
        };
        assert_eq!(ka.on_timer(at, s), Due::Ping);
        ka.ping_sent(at);
        assert_eq!(ka.on_timer(ka.deadline(s), s), Due::Dead);
        assert_eq!(ka.deadline(s) - frozen_at, interval + timeout);
    }
}
