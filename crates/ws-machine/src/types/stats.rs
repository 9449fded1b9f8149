//! A snapshot of what a machine has done: the caller's view of its
//! counters, for dashboards and fleets.

use std::time::Duration;

use tokio::time::Instant;

use super::{error::Error, status::State};

/// What a machine has done so far, as read by
/// [`Machine::stats`](crate::Machine::stats) or a
/// [`StatsHandle`](crate::StatsHandle).
///
/// Counters count from the machine's start and only grow. Each field is
/// exact at some moment during the read, but the fields are not read at one
/// instant: a message counted in `messages_out` may still be counted in
/// `queued` too. `docs/design.md` ("Stats") says when each is updated.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ws_machine::Error> {
/// use ws_machine::{Machine, State};
///
/// // Nothing listens on this port: the first attempt fails.
/// let mut machine = Machine::builder("ws://127.0.0.1:9/").spawn()?;
/// machine.output.send("queued while disconnected".into()).await.expect("the machine runs");
/// while let Some(status) = machine.status.recv().await {
///     if status.state == State::Waiting {
///         break;
///     }
/// }
/// let stats = machine.stats();
/// assert_eq!(stats.state, State::Waiting);
/// assert_eq!((stats.connections, stats.failed_attempts), (0, 1));
/// assert_eq!(stats.queued, 1);
/// assert!(stats.last_error.is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Stats {
    /// The state the machine is in (as last reported on `status`).
    pub state: State,
    /// When it entered that state.
    pub since: Instant,
    /// Connections established (each `Connected`); also the number of the
    /// latest one ([`Status::connection`](crate::Status::connection)).
    pub connections: u64,
    /// Connections established after the first: how often the machine
    /// came back.
    pub reconnects: u64,
    /// Attempts that did not end in a connection.
    pub failed_attempts: u64,
    /// Data messages received (handed to `input` or held for it; heartbeat
    /// replies kept out of `input` are not counted).
    pub messages_in: u64,
    /// Payload bytes of those messages (as delivered, after decompression).
    pub bytes_in: u64,
    /// Data messages handed to the connection, counting every time one is
    /// written again after a reconnect, the `on_connect` messages and
    /// heartbeats included.
    pub messages_out: u64,
    /// Payload bytes of those messages (before compression).
    pub bytes_out: u64,
    /// Messages waiting to be written: in `output`, and those taken back to
    /// be written again on the next connection.
    pub queued: usize,
    /// Messages written and not yet confirmed: not yet flushed to the
    /// socket, or (with [`Builder::ack_key`](crate::Builder::ack_key)) not
    /// yet acknowledged.
    pub unacknowledged: usize,
    /// Why the last attempt or connection ended, if one did with an error.
    pub last_error: Option<Error>,
    /// Time spent connected in total, the current connection included.
    pub connected_for: Duration,
    /// The last round trip measured (a pong answering the machine's ping,
    /// or a heartbeat reply matched by
    /// [`Builder::heartbeat_reply`](crate::Builder::heartbeat_reply)).
    pub rtt: Option<Duration>,
    /// The round trip smoothed over the samples (RFC 6298's estimator: each
    /// sample moves it by an eighth of the difference).
    pub smoothed_rtt: Option<Duration>,
}
