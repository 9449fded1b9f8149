//! The connection's state, and the reports the machine makes about it.

use std::{fmt, sync::Arc, time::Duration};

use super::{compression::Deflate, error::Error};

/// The state of a machine's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// An attempt to connect is under way (TCP, TLS, HTTP upgrade).
    Connecting,
    /// The WebSocket is open: messages flow. With a ready gate
    /// ([`Builder::ready_when`](crate::Builder::ready_when)), only the
    /// `on_connect` messages go out until [`State::Ready`].
    Connected,
    /// With a ready gate only: the server said it is ready (for example it
    /// acknowledged the login sent first), so the caller's messages, queued
    /// and written again, now go out.
    Ready,
    /// The connection or the attempt ended; [`Status::error`] says why.
    Disconnected,
    /// Waiting before the next attempt; [`Status::delay`] says how long.
    Waiting,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connecting => "CONNECTING",
            Self::Connected => "CONNECTED",
            Self::Ready => "READY",
            Self::Disconnected => "DISCONNECTED",
            Self::Waiting => "WAITING",
        })
    }
}

/// One report on the `status` channel: a change of state, or a report that
/// leaves the state as it was ([`Status::is_change`] tells them apart): a
/// refused outgoing message, or, with
/// [`Builder::report_round_trips`](crate::Builder::report_round_trips), a
/// round trip measured.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ws_machine::Error> {
/// use ws_machine::{Machine, State};
///
/// let mut machine = Machine::builder("ws://127.0.0.1:9/").spawn()?;
/// let first = machine.status.recv().await.expect("a status");
/// assert_eq!(first.state, State::Connecting);
/// assert_eq!(first.attempt, 1);
/// assert_eq!(first.to_string(), "CONNECTING (attempt 1)");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Status {
    /// The state the machine is now in.
    pub state: State,
    /// Why the connection ended (with [`State::Disconnected`]), or why an
    /// outgoing message was refused. `None` for a disconnection the caller
    /// asked for ([`Command::Quit`](crate::Command::Quit),
    /// [`Command::Reconnect`](crate::Command::Reconnect)).
    pub error: Option<Error>,
    /// The connection attempt this status is about, counting from 1 in the
    /// current series: the one starting (`Connecting`), established
    /// (`Connected`), ended (`Disconnected`) or just failed (`Waiting`). The
    /// series restarts after a connection has stayed up for
    /// [`min_uptime`](crate::Builder::min_uptime). 0 on a `Waiting` before
    /// the machine's first attempt, while it waits for its turn in a
    /// [`ReconnectBudget`](crate::ReconnectBudget).
    pub attempt: u32,
    /// With [`State::Waiting`]: how long the machine waits before the next
    /// attempt.
    pub delay: Option<Duration>,
    /// With [`State::Connected`]: the subprotocol the server chose from
    /// those offered ([`Builder::protocols`](crate::Builder::protocols)),
    /// if it chose one.
    pub protocol: Option<Arc<str>>,
    /// For machines with [`fallback_urls`](crate::Builder::fallback_urls)
    /// or a [`url_fn`](crate::Builder::url_fn): with [`State::Connected`],
    /// and with the [`State::Disconnected`] that ends an attempt or a
    /// connection, the URL it used, shown as
    /// [`redact_url`](crate::redact_url) shows it (no user info, no query
    /// values). `None` otherwise: on other statuses, after a quit, when a
    /// `url_fn` returned no valid URL, and on machines with one URL (the
    /// caller knows it).
    pub url: Option<Arc<str>>,
    /// With [`State::Connected`], for machines that offer compression
    /// ([`Builder::compression`](crate::Builder::compression)): the
    /// permessage-deflate parameters the server agreed to, or `None` if it
    /// declined (messages then go uncompressed).
    pub compression: Option<Deflate>,
    /// The number of the machine's latest connection: its connections count
    /// from 1, so with [`State::Connected`] this is the new connection's
    /// number (also carried by every message received on it,
    /// [`Message::connection`](crate::Message::connection)), with the
    /// `Disconnected` that ends it the ended one's, and 0 before the first.
    pub connection: u32,
    /// With [`Builder::report_round_trips`](crate::Builder::report_round_trips):
    /// a round trip just measured (a pong answering the machine's ping, or a
    /// matched heartbeat reply). Such a status is not a change of state.
    pub round_trip: Option<Duration>,
    /// A change of state, not a report.
    change: bool,
    last: bool,
}

impl Status {
    pub(crate) fn new(
        state: State,
        error: Option<Error>,
        attempt: u32,
        delay: Option<Duration>,
    ) -> Self {
        Self {
            state,
            error,
            attempt,
            delay,
            protocol: None,
            url: None,
            compression: None,
            connection: 0,
            round_trip: None,
            change: true,
            last: false,
        }
    }

    /// A report of a round trip measured while in `state`.
    pub(crate) fn round_trip_report(state: State, attempt: u32, rtt: Duration) -> Self {
        Self {
            round_trip: Some(rtt),
            ..Self::new(state, None, attempt, None).into_report()
        }
    }

    /// This status, as a report that leaves the state as it was.
    pub(crate) fn into_report(self) -> Self {
        Self {
            change: false,
            ..self
        }
    }

    /// Whether this status is a change of state (`Connecting`, `Connected`,
    /// ...), rather than a report made in the current state: a refused
    /// outgoing message ([`Status::error`]) or a round trip
    /// ([`Status::round_trip`]). A caller that acts on transitions (say,
    /// resubscribes on `Connected`) checks this first.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// let mut machine = ws_machine::Machine::builder("ws://127.0.0.1:9/").spawn()?;
    /// let first = machine.status.recv().await.expect("a status");
    /// assert!(first.is_change());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn is_change(&self) -> bool {
        self.change
    }

    /// This status, with the subprotocol the connection speaks.
    pub(crate) fn with_protocol(self, protocol: Option<Arc<str>>) -> Self {
        Self { protocol, ..self }
    }

    /// This status, with the compression the connection uses.
    pub(crate) fn with_compression(self, compression: Option<Deflate>) -> Self {
        Self {
            compression,
            ..self
        }
    }

    /// This status, with the URL it is about.
    pub(crate) fn with_url(self, url: Option<Arc<str>>) -> Self {
        Self { url, ..self }
    }

    /// This status, marked as the machine's last.
    pub(crate) fn into_last(self) -> Self {
        Self { last: true, ..self }
    }

    /// Whether this is the machine's last status: it stops after it, and
    /// `input` and `status` close.
    #[must_use]
    pub fn is_final(&self) -> bool {
        self.last
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.state)?;
        if self.state == State::Connecting {
            write!(f, " (attempt {})", self.attempt)?;
        }
        if let Some(url) = &self.url {
            write!(f, " {url}")?;
        }
        if let Some(protocol) = &self.protocol {
            write!(f, " (subprotocol {protocol})")?;
        }
        if let Some(compression) = &self.compression {
            write!(f, " ({compression})")?;
        }
        if let Some(delay) = self.delay {
            write!(f, " {delay:?}")?;
        }
        if let Some(rtt) = self.round_trip {
            write!(f, " (round trip {rtt:?})")?;
        }
        if let Some(error) = &self.error {
            write!(f, ": {error}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_upper_case() {
        let names: Vec<String> = [
            State::Connecting,
            State::Connected,
            State::Disconnected,
            State::Waiting,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            names,
            ["CONNECTING", "CONNECTED", "DISCONNECTED", "WAITING"]
        );
    }

    #[test]
    fn a_status_says_its_state_delay_and_error() {
        let waiting = Status::new(State::Waiting, None, 2, Some(Duration::from_millis(150)));
        assert_eq!(waiting.to_string(), "WAITING 150ms");
        assert!(!waiting.is_final());
        let last = Status::new(State::Disconnected, None, 2, None).into_last();
        assert!(last.is_final());
        assert_eq!(last.to_string(), "DISCONNECTED");
        let connected =
            Status::new(State::Connected, None, 1, None).with_protocol(Some("chat.v2".into()));
        assert_eq!(connected.to_string(), "CONNECTED (subprotocol chat.v2)");
    }
}
