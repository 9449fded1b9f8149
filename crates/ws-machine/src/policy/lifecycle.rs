//! The connection states and every transition between them, in one place.
//!
//! [`Lifecycle`] is the machine's state machine without any I/O: the driver
//! tells it what happened ([`Lifecycle::connected`],
//! [`Lifecycle::attempt_failed`], [`Lifecycle::connection_lost`], ...) and it
//! answers with what to do [`Next`], reporting each change of state as a
//! [`Status`]. Because nothing here touches a socket or a clock, the whole
//! policy (status order, backoff, attempt counting, `min_uptime`,
//! `max_attempts`, the turns of a reconnect budget) is unit-tested below.
//! The instants it needs (when the machine started, when an attempt failed,
//! when a connection began and ended) are passed in.
//!
//! The state diagram and the table of every transition are in
//! `docs/design.md` ("One task, one state machine").

use std::{num::NonZeroU32, time::Duration};

use tokio::time::Instant;

use super::backoff::Backoff;
use crate::{
    settings::{CloseCodes, Reconnect, ReconnectBudget, Span},
    types::{Error, State, Status},
};

/// Whether a retry waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// At once (the only such failure: a first 401/403 with fresh headers).
    None,
    /// The backoff schedule's delay.
    Backoff,
}

/// How an established connection ended, for the health rule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ended {
    pub(crate) at: Instant,
    /// Data messages the server sent on it.
    pub(crate) messages: u32,
    /// Whether it became ready (always, without a ready gate).
    pub(crate) ready: bool,
}

/// A connection that brought data counts as healthy after this fraction of
/// `min_uptime` (see [`Lifecycle::is_healthy`]).
const DATA_UPTIME_DIVISOR: u32 = 10;

/// Data messages a connection must bring to count as healthy before
/// `min_uptime`: more than one, so that a server that answers with one
/// error and closes still meets growing waits.
const DATA_MESSAGES: u32 = 2;

/// Rejections with 401 or 403 in a row, with headers from `headers_fn`,
/// after which the next is final: the first is retried at once (the headers
/// are computed again), the second after the usual wait.
const AUTH_REJECTIONS_FINAL: u32 = 3;

/// What the driver must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Start a connection attempt now.
    Connect,
    /// Wait this long, then call [`Lifecycle::wait_over`].
    Wait(Duration),
    /// Stop the machine.
    Stop,
}

/// The machine's state machine, free of I/O.
///
/// Every idle machine holds one, so it is kept small: durations in 8
/// bytes ([`Span`]), the budget one pointer.
pub(crate) struct Lifecycle {
    state: State,
    /// Failed attempts in a row (a too-short connection counts as one).
    failures: u32,
    /// The number of the current (or last) attempt in its series.
    attempt: u32,
    /// When the current connection was established.
    connected_at: Option<Instant>,
    /// Since when the machine is disconnected, for the backoff's bound:
    /// when the last healthy connection was lost (or the caller asked for a
    /// reconnect), or when the machine started. A connection that was not
    /// healthy does not end the outage. `None` before the start.
    down_since: Option<Instant>,
    /// The reconnect budget shared with other machines, if any.
    budget: Option<ReconnectBudget>,
    /// The current wait is for the budget's turn (taken already): when it
    /// is over, the attempt starts.
    turn_held: bool,
    /// False: a lost connection or a failed attempt is final.
    reconnect: bool,
    /// The request headers are computed for each attempt (`headers_fn`):
    /// a 401 or 403 may mean an expired token, not wrong credentials.
    fresh_credentials: bool,
    /// 401 or 403 rejections in a row.
    auth_rejections: u32,
    /// Which close codes from the server are final.
    final_close: Option<CloseCodes>,
    /// Whether connections must become ready before they count as
    /// successful.
    gated: bool,
    min_uptime: Span,
    /// Never zero (the builder refuses it).
    max_attempts: Option<NonZeroU32>,
    backoff: Backoff,
}

impl Lifecycle {
    pub(crate) fn new(reconnect: &Reconnect, fresh_credentials: bool) -> Self {
        let rng = reconnect
            .jitter_seed
            .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        Self {
            state: State::Disconnected,
            failures: 0,
            attempt: 0,
            connected_at: None,
            down_since: None,
            budget: None,
            turn_held: false,
            reconnect: reconnect.enabled,
            fresh_credentials,
            auth_rejections: 0,
            final_close: None,
            gated: false,
            min_uptime: reconnect.min_uptime.into(),
            max_attempts: reconnect.max_attempts.and_then(NonZeroU32::new),
            backoff: Backoff::new(reconnect.backoff_initial, reconnect.backoff_max, rng),
        }
    }

    #[cfg(test)]
    pub(crate) fn state(&self) -> State {
        self.state
    }

    fn enter(&mut self, state: State, error: Option<Error>, delay: Option<Duration>) -> Status {
        if state == State::Connecting {
            self.attempt = self.failures + 1;
        }
        self.state = state;
        Status::new(state, error, self.attempt, delay)
    }

    /// The machine starts at `now`: first attempt (after its turn, with a
    /// reconnect budget).
    pub(crate) fn start(&mut self, now: Instant, out: &mut impl FnMut(Status)) -> Next {
        self.down_since = Some(now);
        self.go(now, out)
    }

    /// An attempt may start at `now`: it does, or, with a reconnect budget
    /// whose next turn is later, the machine waits for its turn (reported
    /// as `Waiting` with the time to it).
    fn go(&mut self, now: Instant, out: &mut impl FnMut(Status)) -> Next {
        let turn = self.budget.as_ref().map_or(now, |budget| budget.take(now));
        let delay = turn.saturating_duration_since(now);
        if delay.is_zero() {
            out(self.enter(State::Connecting, None, None));
            return Next::Connect;
        }
        self.turn_held = true;
        out(self.enter(State::Waiting, None, Some(delay)));
        Next::Wait(delay)
    }

    /// How long the machine has been disconnected at `now` (see
    /// `down_since`).
    fn down_for(&self, now: Instant) -> Duration {
        self.down_since
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }

    /// Whether the current wait is for the reconnect budget's turn, not a
    /// backoff: a `Reconnect` command does not end it.
    pub(crate) fn waits_for_turn(&self) -> bool {
        self.turn_held
    }

    /// The attempt succeeded.
    pub(crate) fn connected(&mut self, now: Instant, out: &mut impl FnMut(Status)) {
        self.connected_at = Some(now);
        self.auth_rejections = 0;
        if self.min_uptime.get().is_zero() && !self.gated {
            self.failures = 0;
        }
        out(self.enter(State::Connected, None, None));
    }

    /// Whether the last attempt or connection counted as a failure: a
    /// failed attempt, or a connection that was not healthy.
    pub(crate) fn failing(&self) -> bool {
        self.failures > 0
    }

    /// The server said the connection is ready (with a ready gate only).
    pub(crate) fn ready(&mut self, out: &mut impl FnMut(Status)) {
        if self.min_uptime.get().is_zero() {
            self.failures = 0;
        }
        out(self.enter(State::Ready, None, None));
    }

    /// The attempt failed with `error`, at `now`.
    pub(crate) fn attempt_failed(
        &mut self,
        error: Error,
        now: Instant,
        out: &mut impl FnMut(Status),
    ) -> Next {
        self.failures = self.failures.saturating_add(1);
        match error {
            Error::HandshakeRejected {
                status: status @ (401 | 403),
                retry_after,
                retryable: false,
                body,
            } if self.fresh_credentials => {
                self.auth_rejections = self.auth_rejections.saturating_add(1);
                let retried = self.auth_rejections < AUTH_REJECTIONS_FINAL;
                let error = Error::HandshakeRejected {
                    status,
                    retry_after,
                    retryable: retried,
                    body,
                };
                let wait = if self.auth_rejections == 1 {
                    Wait::None
                } else {
                    Wait::Backoff
                };
                self.after_failure(error, wait, now, out)
            }
            other => {
                self.auth_rejections = 0;
                self.after_failure(other, Wait::Backoff, now, out)
            }
        }
    }

    /// With a ready gate: a connection counts as successful only once it
    /// is ready.
    pub(crate) fn with_ready_gate(self, gated: bool) -> Self {
        Self { gated, ..self }
    }

    /// With a reconnect budget shared with other machines: every attempt
    /// waits for its turn.
    pub(crate) fn with_budget(self, budget: Option<ReconnectBudget>) -> Self {
        Self { budget, ..self }
    }

    /// With the close codes that are final.
    pub(crate) fn with_final_close(self, final_close: Option<CloseCodes>) -> Self {
        Self {
            final_close,
            ..self
        }
    }

    /// A close from the server whose code the policy makes final, marked so.
    fn judge_close(&self, error: Error) -> Error {
        match (error, &self.final_close) {
            (
                Error::Closed {
                    code,
                    reason,
                    retryable: true,
                },
                Some(is_final),
            ) if is_final(code) => Error::Closed {
                code,
                reason,
                retryable: false,
            },
            (error, _) => error,
        }
    }

    /// Whether a connection that was up for `up_for` and brought `messages`
    /// data messages was healthy: it stayed up `min_uptime`, or it stayed up
    /// a tenth of that and brought at least two messages. A server that
    /// rotates connections that serve data is then reconnected to at once
    /// every time, while one that accepts and closes at once, or answers
    /// with one error and closes, meets growing waits. With a ready gate,
    /// a connection that never became ready was not healthy, however long
    /// it lasted.
    fn is_healthy(&self, up_for: Duration, ended: Ended) -> bool {
        let min_uptime = self.min_uptime.get();
        ended.ready
            && (up_for >= min_uptime
                || (ended.messages >= DATA_MESSAGES && up_for >= min_uptime / DATA_UPTIME_DIVISOR))
    }

    /// An established connection ended (at `ended.at`). `error` is `None`
    /// when the caller asked for a reconnect. A healthy connection (or one
    /// the caller ended) starts a new outage; one that was not healthy is
    /// part of the outage it interrupted.
    pub(crate) fn connection_lost(
        &mut self,
        error: Option<Error>,
        ended: Ended,
        out: &mut impl FnMut(Status),
    ) -> Next {
        let up_for = self
            .connected_at
            .take()
            .map_or(Duration::ZERO, |at| ended.at.saturating_duration_since(at));
        let healthy = self.is_healthy(up_for, ended);
        let error = error.map(|e| self.judge_close(e));
        if healthy || error.is_none() {
            self.down_since = Some(ended.at);
        }
        if healthy {
            self.failures = 0;
        }
        match error {
            None => {
                // Asked for by the caller: not a failure, a new series.
                self.failures = 0;
                out(self.enter(State::Disconnected, None, None));
                self.go(ended.at, out)
            }
            Some(error) if !self.reconnect => {
                out(self.stop(Some(error)));
                Next::Stop
            }
            Some(error) if healthy && error.is_retryable() => {
                out(self.enter(State::Disconnected, Some(error), None));
                self.go(ended.at, out)
            }
            Some(error) => {
                // Not healthy: it counts as a failed attempt, so a server that
                // accepts and closes at once is met with backoff rather than a
                // reconnect storm.
                self.failures = self.failures.saturating_add(1);
                self.after_failure(error, Wait::Backoff, ended.at, out)
            }
        }
    }

    fn after_failure(
        &mut self,
        error: Error,
        wait: Wait,
        now: Instant,
        out: &mut impl FnMut(Status),
    ) -> Next {
        if !error.is_retryable() || !self.reconnect {
            out(self.stop(Some(error)));
            return Next::Stop;
        }
        if self
            .max_attempts
            .is_some_and(|max| self.failures >= max.get())
        {
            let gave_up = Error::GaveUp {
                attempts: self.failures,
                last: Box::new(error),
            };
            out(self.stop(Some(gave_up)));
            return Next::Stop;
        }
        match wait {
            Wait::None => {
                out(self.enter(State::Disconnected, Some(error), None));
                self.go(now, out)
            }
            Wait::Backoff => {
                let delay =
                    self.backoff
                        .delay(self.failures, self.down_for(now), error.retry_after());
                out(self.enter(State::Disconnected, Some(error), None));
                out(self.enter(State::Waiting, None, Some(delay)));
                Next::Wait(delay)
            }
        }
    }

    /// The wait between attempts is over at `now`, or the caller asked to
    /// reconnect while waiting out a backoff. After a backoff, the attempt
    /// still takes its turn from the reconnect budget, if any; after the
    /// wait for that turn, it starts.
    pub(crate) fn wait_over(&mut self, now: Instant, out: &mut impl FnMut(Status)) -> Next {
        if std::mem::take(&mut self.turn_held) {
            out(self.enter(State::Connecting, None, None));
            return Next::Connect;
        }
        self.go(now, out)
    }

    /// The caller asked to stop. Returns the final status.
    pub(crate) fn quit(&mut self) -> Status {
        self.stop(None)
    }

    fn stop(&mut self, error: Option<Error>) -> Status {
        self.connected_at = None;
        self.enter(State::Disconnected, error, None).into_last()
    }

    /// An outgoing message was refused; the state does not change.
    pub(crate) fn refused(&self, error: Error) -> Status {
        Status::new(self.state, Some(error), self.attempt, None)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::{io, sync::Arc};

    use super::*;

    pub(crate) fn lifecycle(min_uptime: Duration, max_attempts: Option<u32>) -> Lifecycle {
        Lifecycle::new(
            &Reconnect {
                enabled: true,
                backoff_initial: Duration::from_millis(100),
                backoff_max: Duration::from_secs(10),
                min_uptime,
                max_attempts,
                jitter_seed: Some(3),
            },
            false,
        )
    }

    /// A connection that ended at `at` without bringing any data.
    fn quiet(at: Instant) -> Ended {
        Ended {
            at,
            messages: 0,
            ready: true,
        }
    }

    fn refused() -> Error {
        Error::ConnectionLost(Arc::new(io::Error::from(io::ErrorKind::ConnectionReset)))
    }

    fn states(log: &[Status]) -> Vec<State> {
        log.iter().map(|s| s.state).collect()
    }

    #[test]
    fn failed_attempt_reports_disconnected_then_waiting() {
        let mut lc = lifecycle(Duration::from_secs(1), None);
        let mut log = Vec::new();
        let mut out = |s| log.push(s);
        assert_eq!(lc.start(Instant::now(), &mut out), Next::Connect);
        let Next::Wait(delay) = lc.attempt_failed(refused(), Instant::now(), &mut out) else {
            panic!("expected a wait");
        };
        assert!((100..=200).contains(&delay.as_millis()), "{delay:?}");
        assert_eq!(lc.wait_over(Instant::now(), &mut out), Next::Connect);
        assert_eq!(
            states(&log),
            [
                State::Connecting,
                State::Disconnected,
                State::Waiting,
                State::Connecting
            ]
        );
        assert_eq!(log[3].attempt, 2);
        assert_eq!(log[2].delay, Some(delay));
    }

    #[test]
    fn healthy_connection_lost_reconnects_at_once() {
        let mut lc = lifecycle(Duration::from_secs(1), None);
        let mut log = Vec::new();
        let mut out = |s| log.push(s);
        let t0 = Instant::now();
        lc.start(Instant::now(), &mut out);
        lc.connected(t0, &mut out);
        let next = lc.connection_lost(
            Some(refused()),
            quiet(t0 + Duration::from_secs(2)),
            &mut out,
        );
        assert_eq!(next, Next::Connect);
        assert_eq!(
            states(&log),
            [
                State::Connecting,
                State::Connected,
                State::Disconnected,
                State::Connecting
            ]
        );
        assert!(log[2].error.is_some());
        assert_eq!(log[3].attempt, 1);
    }

    #[test]
    fn short_connections_back_off_instead_of_storming() {
        let mut lc = lifecycle(Duration::from_secs(5), None);
        let mut out = |_| {};
        let t0 = Instant::now();
        lc.start(Instant::now(), &mut out);
        let mut delays = Vec::new();
        for i in 0..4 {
            let at = t0 + Duration::from_secs(i);
            lc.connected(at, &mut out);
            match lc.connection_lost(
                Some(refused()),
                quiet(at + Duration::from_millis(1)),
                &mut out,
            ) {
                Next::Wait(d) => delays.push(d),
                other => panic!("expected a wait, got {other:?}"),
            }
            lc.wait_over(Instant::now(), &mut out);
        }
        // Between the initial delay and ceilings doubling from 200 ms.
        for (delay, ceiling) in delays.iter().zip([200, 400, 800, 1600]) {
            assert!((100..=ceiling).contains(&delay.as_millis()), "{delay:?}");
        }
    }

    /// The health rule: a connection that brought data for a tenth of
    /// `min_uptime` is healthy; one that accepted and closed, or answered
    /// with one message and closed, is not.
    #[test]
    fn connections_that_brought_data_are_healthy_before_min_uptime() {
        let t0 = Instant::now();
        let cases = [
            // (up for, messages, reconnect at once)
            (Duration::from_secs(2), 40, true),
            (Duration::from_millis(500), 2, true),
            (Duration::from_millis(499), 40, false),
            (Duration::from_millis(5), 0, false),
            (Duration::from_secs(3), 1, false),
            (Duration::from_secs(5), 0, true),
        ];
        for (up_for, messages, healthy) in cases {
            let mut lc = lifecycle(Duration::from_secs(5), None);
            lc.start(Instant::now(), &mut |_| {});
            lc.connected(t0, &mut |_| {});
            let ended = Ended {
                at: t0 + up_for,
                messages,
                ready: true,
            };
            let next = lc.connection_lost(Some(refused()), ended, &mut |_| {});
            assert_eq!(
                next == Next::Connect,
                healthy,
                "{up_for:?}, {messages} messages: {next:?}"
            );
        }
    }

    /// A server that serves data and closes every 2 s is reconnected to at
    /// once, every time, and the series never grows; one that accepts and
    /// closes at once meets growing waits.
    #[test]
    fn rotations_reconnect_at_once_and_storms_back_off() {
        let t0 = Instant::now();
        let mut rotating = lifecycle(Duration::from_secs(5), None);
        let mut log = Vec::new();
        rotating.start(Instant::now(), &mut |s| log.push(s));
        for i in 0..10 {
            let at = t0 + Duration::from_secs(2 * i);
            rotating.connected(at, &mut |s| log.push(s));
            let ended = Ended {
                at: at + Duration::from_secs(2),
                messages: 20,
                ready: true,
            };
            let next = rotating.connection_lost(Some(refused()), ended, &mut |s| log.push(s));
            assert_eq!(next, Next::Connect);
        }
        assert!(
            log.iter()
                .all(|s| s.attempt == 1 && s.state != State::Waiting)
        );

        let mut storm = lifecycle(Duration::from_secs(5), None);
        storm.start(Instant::now(), &mut |_| {});
        let mut ceilings = Vec::new();
        for i in 0..4 {
            let at = t0 + Duration::from_secs(i);
            storm.connected(at, &mut |_| {});
            let ended = Ended {
                at: at + Duration::from_millis(3),
                messages: 1,
                ready: true,
            };
            match storm.connection_lost(Some(refused()), ended, &mut |_| {}) {
                Next::Wait(_) => ceilings.push(storm.failures),
                other => panic!("expected a wait, got {other:?}"),
            }
            storm.wait_over(Instant::now(), &mut |_| {});
        }
        assert_eq!(ceilings, [1, 2, 3, 4], "the series grows");
    }

    #[test]
    fn zero_min_uptime_resets_on_every_connection() {
        let mut lc = lifecycle(Duration::ZERO, None);
        let mut log = Vec::new();
        let mut out = |s| log.push(s);
        let t0 = Instant::now();
        lc.start(Instant::now(), &mut out);
        lc.attempt_failed(refused(), Instant::now(), &mut out);
        lc.wait_over(Instant::now(), &mut out);
        lc.connected(t0, &mut out);
        let next = lc.connection_lost(Some(refused()), quiet(t0), &mut out);
        assert_eq!(next, Next::Connect);
        assert_eq!(log.last().map(|s| s.attempt), Some(1));
    }

    #[test]
    fn max_attempts_gives_up_with_a_final_error() {
        let mut lc = lifecycle(Duration::from_secs(1), Some(3));
        let mut log = Vec::new();
        let mut out = |s| log.push(s);
        lc.start(Instant::now(), &mut out);
        assert!(matches!(
            lc.attempt_failed(refused(), Instant::now(), &mut out),
            Next::Wait(_)
        ));
        lc.wait_over(Instant::now(), &mut out);
        assert!(matches!(
            lc.attempt_failed(refused(), Instant::now(), &mut out),
            Next::Wait(_)
        ));
        lc.wait_over(Instant::now(), &mut out);
        assert_eq!(
            lc.attempt_failed(refused(), Instant::now(), &mut out),
            Next::Stop
        );
        let last = log.last().expect("a final status");
        assert_eq!(last.state, State::Disconnected);
        assert!(matches!(
            last.error,
            Some(Error::GaveUp { attempts: 3, .. })
        ));
        assert!(last.is_final());
    }

    #[test]
    fn final_errors_stop_at_once() {
        let mut lc = lifecycle(Duration::from_secs(1), None);
        let mut log = Vec::new();
        let mut out = |s| log.push(s);
        lc.start(Instant::now(), &mut out);
        let rejected = Error::HandshakeRejected {
            status: 401,
            retry_after: None,
            retryable: false,
            body: None,
        };
        assert_eq!(
            lc.attempt_failed(rejected, Instant::now(), &mut out),
            Next::Stop
        );
        assert_eq!(states(&log), [State::Connecting, State::Disconnected]);
    }

    #[test]
    fn retry_after_sets_the_wait() {
        let mut lc = lifecycle(Duration::from_secs(1), None);
        let mut out = |_| {};
        lc.start(Instant::now(), &mut out);
        let busy = Error::HandshakeRejected {
            status: 429,
            retry_after: Some(Duration::from_secs(3)),
            retryable: true,
            body: None,
        };
        assert_eq!(
            lc.attempt_failed(busy, Instant::now(), &mut out),
            Next::Wait(Duration::from_secs(3))
        );
    }

    #[test]
    fn requested_reconnect_has_no_error_and_no_wait() {
        let mut lc = lifecycle(Duration::from_secs(60), None);
        let mut log = Vec::new();
        let mut out = |s| log.push(s);
        let t0 = Instant::now();
        lc.start(Instant::now(), &mut out);
        lc.connected(t0, &mut out);
        assert_eq!(lc.connection_lost(None, quiet(t0), &mut out), Next::Connect);
        assert!(log[2].error.is_none());
        assert_eq!(log[3].state, State::Connecting);
    }

    #[test]
    fn without_reconnecting_a_loss_or_a_failed_attempt_is_final() {
        let once = || {
            Lifecycle::new(
                &Reconnect {
                    enabled: false,
                    backoff_initial: Duration::from_millis(100),
                    backoff_max: Duration::from_secs(10),
                    min_uptime: Duration::ZERO,
                    max_attempts: None,
                    jitter_seed: Some(3),
                },
                false,
            )
        };
        let mut lc = once();
        let mut log = Vec::new();
        let mut out = |s| log.push(s);
        lc.start(Instant::now(), &mut out);
        assert_eq!(
            lc.attempt_failed(refused(), Instant::now(), &mut out),
            Next::Stop
        );
        assert_eq!(states(&log), [State::Connecting, State::Disconnected]);
        assert!(log[1].is_final() && log[1].error.is_some());

        let mut lc = once();
        let mut log = Vec::new();
        let mut out = |s| log.push(s);
        let t0 = Instant::now();
        lc.start(Instant::now(), &mut out);
        lc.connected(t0, &mut out);
        let lost = lc.connection_lost(
            Some(refused()),
            quiet(t0 + Duration::from_secs(60)),
            &mut out,
        );
        assert_eq!(lost, Next::Stop, "even after a healthy connection");
        assert!(
            log.last()
                .is_some_and(|s| s.is_final() && s.error.is_some())
        );

        // A reconnect the caller asks for still happens.
        let mut lc = once();
        let t0 = Instant::now();
        lc.start(Instant::now(), &mut |_| {});
        lc.connected(t0, &mut |_| {});
        assert_eq!(
            lc.connection_lost(None, quiet(t0), &mut |_| {}),
            Next::Connect
        );
    }

    /// With headers from `headers_fn`, a 401 (or 403) is retried at once,
    /// then after a wait, and the third in a row is final; without, the
    /// first is final.
    #[test]
    fn rejected_credentials_from_headers_fn_are_retried_twice() {
        let unauthorized = || Error::HandshakeRejected {
            status: 401,
            retry_after: None,
            retryable: false,
            body: None,
        };
        let reconnect = Reconnect {
            enabled: true,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            min_uptime: Duration::from_secs(5),
            max_attempts: None,
            jitter_seed: Some(3),
        };
        let mut lc = Lifecycle::new(&reconnect, true);
        let mut log = Vec::new();
        let mut out = |s| log.push(s);
        lc.start(Instant::now(), &mut out);
        assert_eq!(
            lc.attempt_failed(unauthorized(), Instant::now(), &mut out),
            Next::Connect
        );
        assert!(matches!(
            lc.attempt_failed(unauthorized(), Instant::now(), &mut out),
            Next::Wait(_)
        ));
        lc.wait_over(Instant::now(), &mut out);
        assert_eq!(
            lc.attempt_failed(unauthorized(), Instant::now(), &mut out),
            Next::Stop
        );
        assert_eq!(
            states(&log),
            [
                State::Connecting,
                State::Disconnected,
                State::Connecting,
                State::Disconnected,
                State::Waiting,
                State::Connecting,
                State::Disconnected,
            ]
        );
        let retried: Vec<bool> = log
            .iter()
            .filter_map(|s| s.error.as_ref().map(Error::is_retryable))
            .collect();
        assert_eq!(retried, [true, true, false]);
        assert!(log.last().is_some_and(Status::is_final));

        // A successful connection starts the count again.
        let mut lc = Lifecycle::new(&reconnect, true);
        lc.start(Instant::now(), &mut |_| {});
        lc.attempt_failed(unauthorized(), Instant::now(), &mut |_| {});
        lc.connected(Instant::now(), &mut |_| {});
        lc.connection_lost(Some(refused()), quiet(Instant::now()), &mut |_| {});
        lc.wait_over(Instant::now(), &mut |_| {});
        assert_eq!(
            lc.attempt_failed(unauthorized(), Instant::now(), &mut |_| {}),
            Next::Connect
        );

        // Without headers_fn, a 401 is final at once.
        let mut lc = Lifecycle::new(&reconnect, false);
        lc.start(Instant::now(), &mut |_| {});
        assert_eq!(
            lc.attempt_failed(unauthorized(), Instant::now(), &mut |_| {}),
            Next::Stop
        );
    }

    /// A close code the policy makes final stops the machine, even after a
    /// healthy connection; other codes are retried as before.
    #[test]
    fn a_final_close_code_stops_the_machine() {
        let closed = |code| Error::Closed {
            code,
            reason: String::new(),
            retryable: true,
        };
        let policy: CloseCodes = Arc::new(|code| code == 4001);
        let healthy_loss = |lc: &mut Lifecycle, error, log: &mut Vec<Status>| {
            let t0 = Instant::now();
            lc.start(Instant::now(), &mut |s| log.push(s));
            lc.connected(t0, &mut |s| log.push(s));
            lc.connection_lost(Some(error), quiet(t0 + Duration::from_secs(60)), &mut |s| {
                log.push(s)
            })
        };

        let mut log = Vec::new();
        let mut lc = lifecycle(Duration::from_secs(1), None).with_final_close(Some(policy.clone()));
        assert_eq!(healthy_loss(&mut lc, closed(4001), &mut log), Next::Stop);
        let last = log.last().expect("a final status");
        assert!(last.is_final());
        assert!(matches!(
            last.error,
            Some(Error::Closed {
                code: 4001,
                retryable: false,
                ..
            })
        ));

        let mut log = Vec::new();
        let mut lc = lifecycle(Duration::from_secs(1), None).with_final_close(Some(policy));
        assert_eq!(healthy_loss(&mut lc, closed(1001), &mut log), Next::Connect);

        let mut log = Vec::new();
        let mut lc = lifecycle(Duration::from_secs(1), None);
        assert_eq!(
            healthy_loss(&mut lc, closed(4001), &mut log),
            Next::Connect,
            "without a policy every close is retried"
        );
    }

    /// With a ready gate, `Ready` follows `Connected`; a connection that
    /// never became ready counts as a failed attempt however long it
    /// lasted, and one that did is healthy as usual.
    #[test]
    fn a_connection_that_never_became_ready_is_a_failure() {
        let t0 = Instant::now();
        let hour = t0 + Duration::from_secs(3600);
        let mut lc = lifecycle(Duration::from_secs(5), None).with_ready_gate(true);
        let mut log = Vec::new();
        lc.start(Instant::now(), &mut |s| log.push(s));
        lc.connected(t0, &mut |s| log.push(s));
        let never_ready = Ended {
            at: hour,
            messages: 100,
            ready: false,
        };
        assert!(matches!(
            lc.connection_lost(Some(refused()), never_ready, &mut |s| log.push(s)),
            Next::Wait(_)
        ));
        lc.wait_over(Instant::now(), &mut |s| log.push(s));
        lc.connected(t0, &mut |s| log.push(s));
        lc.ready(&mut |s| log.push(s));
        let ready = Ended {
            at: hour,
            messages: 0,
            ready: true,
        };
        assert_eq!(
            lc.connection_lost(Some(refused()), ready, &mut |s| log.push(s)),
            Next::Connect
        );
        assert_eq!(
            states(&log),
            [
                State::Connecting,
                State::Connected,
                State::Disconnected,
                State::Waiting,
                State::Connecting,
                State::Connected,
                State::Ready,
                State::Disconnected,
                State::Connecting,
            ]
        );
        assert_eq!(log[6].attempt, 2, "Ready belongs to the attempt");
    }

    #[test]
    fn quit_reports_a_final_disconnect() {
        let mut lc = lifecycle(Duration::from_secs(1), None);
        lc.start(Instant::now(), &mut |_| {});
        let last = lc.quit();
        assert_eq!(last.state, State::Disconnected);
        assert!(last.is_final());
        assert_eq!(lc.state(), State::Disconnected);
    }

    /// Attempts that fail at once pile up failures, but each wait is at
    /// most the time disconnected since the start (past `2 * initial`), so
    /// the machine tries again within twice any outage.
    #[test]
    fn quick_failures_wait_no_longer_than_the_outage_so_far() {
        let mut lc = lifecycle(Duration::from_secs(5), None);
        let t0 = Instant::now();
        let mut now = t0;
        lc.start(now, &mut |_| {});
        let mut waits = Vec::new();
        for _ in 0..30 {
            let Next::Wait(delay) = lc.attempt_failed(refused(), now, &mut |_| {}) else {
                panic!("expected a wait");
            };
            let down = now - t0;
            assert!(
                delay <= down.max(Duration::from_millis(200)),
                "{delay:?} after {down:?} disconnected"
            );
            waits.push(delay);
            now += delay;
            lc.wait_over(now, &mut |_| {});
        }
        // Thirty failures: the exponential ceiling alone would be the cap
        // (10 s) since the seventh.
        assert!(lc.failures == 30 && now - t0 > Duration::from_secs(10));
        assert!(waits.iter().any(|w| *w > Duration::from_secs(2)));
    }

    /// A healthy connection lost starts a new outage; one that was not
    /// healthy is part of the outage it interrupted.
    #[test]
    fn only_a_healthy_connection_ends_the_outage() {
        let hour = Duration::from_secs(3600);
        let t0 = Instant::now();
        let wait_after = |healthy: bool| {
            let mut lc = lifecycle(Duration::from_secs(5), None);
            lc.start(t0, &mut |_| {});
            // An hour of failures: the exponential ceiling is the cap.
            for _ in 0..20 {
                lc.attempt_failed(refused(), t0 + hour, &mut |_| {});
                lc.wait_over(t0 + hour, &mut |_| {});
            }
            lc.connected(t0 + hour, &mut |_| {});
            let up_for = if healthy {
                Duration::from_secs(6)
            } else {
                Duration::from_millis(3)
            };
            let end = t0 + hour + up_for;
            let next = lc.connection_lost(Some(refused()), quiet(end), &mut |_| {});
            if healthy {
                assert_eq!(next, Next::Connect);
                // Refused at once, just after the loss.
                lc.attempt_failed(refused(), end + Duration::from_millis(1), &mut |_| {})
            } else {
                next
            }
        };
        for _ in 0..20 {
            let Next::Wait(after_healthy) = wait_after(true) else {
                panic!("expected a wait");
            };
            assert!(
                after_healthy <= Duration::from_millis(200),
                "{after_healthy:?}"
            );
        }
        let unhealthy: Vec<Duration> = (0..20)
            .map(|_| match wait_after(false) {
                Next::Wait(delay) => delay,
                other => panic!("expected a wait, got {other:?}"),
            })
            .collect();
        assert!(
            unhealthy.iter().any(|d| *d > Duration::from_secs(1)),
            "the outage goes on: {unhealthy:?}"
        );
    }

    /// With a reconnect budget, every attempt takes a turn: the first, the
    /// one after a healthy loss, and the one after a backoff; a machine
    /// whose turn is later reports `Waiting` with the time to it and then
    /// connects without taking another.
    #[test]
    fn attempts_wait_for_their_turn_in_the_budget() {
        let ms = Duration::from_millis;
        let budget = ReconnectBudget::new(10.0, 1).expect("valid");
        let with_budget =
            || lifecycle(Duration::from_secs(1), None).with_budget(Some(budget.clone()));
        let t0 = Instant::now();
        let (mut first, mut second) = (with_budget(), with_budget());
        let mut log = Vec::new();
        assert_eq!(first.start(t0, &mut |_| {}), Next::Connect);
        assert_eq!(second.start(t0, &mut |s| log.push(s)), Next::Wait(ms(100)));
        assert!(second.waits_for_turn());
        assert_eq!(
            second.wait_over(t0 + ms(100), &mut |s| log.push(s)),
            Next::Connect
        );
        assert!(!second.waits_for_turn());
        assert_eq!(states(&log), [State::Waiting, State::Connecting]);
        assert_eq!((log[0].attempt, log[0].delay), (0, Some(ms(100))));
        assert_eq!(log[1].attempt, 1);

        // Both healthy, both lost at the same moment: one goes at once,
        // the other waits for its turn.
        let lost = t0 + Duration::from_secs(10);
        for lc in [&mut first, &mut second] {
            lc.connected(t0 + ms(100), &mut |_| {});
        }
        assert_eq!(
            first.connection_lost(Some(refused()), quiet(lost), &mut |_| {}),
            Next::Connect
        );
        let mut log = Vec::new();
        assert_eq!(
            second.connection_lost(Some(refused()), quiet(lost), &mut |s| log.push(s)),
            Next::Wait(ms(100))
        );
        assert_eq!(states(&log), [State::Disconnected, State::Waiting]);

        // A failed attempt waits its backoff, then its turn: ten other
        // machines took the turns up to 1.2 s after the loss meanwhile.
        let failed = lost + ms(1);
        let Next::Wait(backoff) = first.attempt_failed(refused(), failed, &mut |_| {}) else {
            panic!("expected a backoff");
        };
        assert!(!first.waits_for_turn());
        assert!((ms(100)..=ms(200)).contains(&backoff), "{backoff:?}");
        for _ in 0..10 {
            budget.take(lost);
        }
        let over = failed + backoff;
        let mut log = Vec::new();
        let turn = lost + ms(1200) - over;
        assert_eq!(
            first.wait_over(over, &mut |s| log.push(s)),
            Next::Wait(turn)
        );
        assert!(first.waits_for_turn());
        assert_eq!(
            first.wait_over(over + turn, &mut |s| log.push(s)),
            Next::Connect
        );
        assert_eq!(states(&log), [State::Waiting, State::Connecting]);
        assert_eq!(log[1].attempt, 2);
    }
}
