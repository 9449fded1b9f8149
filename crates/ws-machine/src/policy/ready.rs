//! The ready gate: after the `on_connect` messages (an auth or a subscribe),
//! many servers must answer before anything else may be sent. Until a
//! received message says the connection is ready, the caller's messages
//! (queued and replayed) wait; if none says so within the ready timeout,
//! the connection is of no use and is replaced.

use std::time::Duration;

use tokio::time::Instant;

use super::after;

/// Whether the caller's messages may go out on this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Not yet: waiting for the message that opens it, until this instant.
    Closed { until: Instant },
    /// Ready: everything flows.
    Open,
}

impl Gate {
    /// A connection established at `now` that must be ready within
    /// `timeout`.
    pub(crate) fn closed(now: Instant, timeout: Duration) -> Self {
        Self::Closed {
            until: after(now, timeout),
        }
    }

    pub(crate) fn is_open(self) -> bool {
        match self {
            Self::Open => true,
            Self::Closed { .. } => false,
        }
    }

    /// When the timer must fire for the gate, if it is closed.
    pub(crate) fn deadline(self) -> Option<Instant> {
        match self {
            Self::Closed { until } => Some(until),
            Self::Open => None,
        }
    }

    /// Whether, at `now`, the connection has waited too long to be ready.
    pub(crate) fn expired(self, now: Instant) -> bool {
        match self {
            Self::Closed { until } => now >= until,
            Self::Open => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_gate_expires_at_its_deadline_and_an_open_one_never() {
        let t0 = Instant::now();
        let gate = Gate::closed(t0, Duration::from_secs(3));
        assert!(!gate.is_open());
        assert_eq!(gate.deadline(), Some(t0 + Duration::from_secs(3)));
        assert!(!gate.expired(t0 + Duration::from_millis(2999)));
        assert!(gate.expired(t0 + Duration::from_secs(3)));
        let open = Gate::Open;
        assert!(open.is_open());
        assert_eq!(open.deadline(), None);
        assert!(!open.expired(t0 + Duration::from_secs(3600)));
    }
}
