//! A resilient WebSocket client: the caller gives a URL, the machine owns
//! the connection.
//!
//! A [`Machine`] connects, reads and writes messages, keeps the link alive
//! with pings, notices when it dies (also when the peer freezes with TCP
//! still open), reconnects with exponential backoff and jitter, and reports
//! every change of state. The caller talks to it only through four
//! channels: [`Machine::input`], [`Machine::output`], [`Machine::status`]
//! and [`Machine::command`], so many connections, timers and other sources
//! fit in one `tokio::select!` loop without callbacks or locks.
//!
//! ```no_run
//! # #[tokio::main]
//! # async fn main() -> Result<(), ws_machine::Error> {
//! use ws_machine::{Machine, State};
//!
//! let mut machine = Machine::builder("wss://stream.example.com/prices")
//!     .on_connect(["subscribe:BTC-USD"]) // sent again after every reconnect
//!     .spawn()?;
//! while let Some(status) = machine.status.recv().await {
//!     println!("{status}");
//!     if status.state == State::Connected {
//!         break;
//!     }
//! }
//! while let Some(message) = machine.input.recv().await {
//!     println!("{:?}", message.as_text());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Delivery
//!
//! Received messages are all handed to `input`, in order, including those
//! that arrived just before the server closed; when `input` is full the
//! machine stops reading the socket (backpressure) rather than dropping.
//! Messages put on `output` while disconnected wait (bounded by
//! [`Builder::queue_capacity`]) and are written after reconnecting; a message
//! whose write failed is written again on the next connection. Without
//! acknowledgements, a message written to a connection that then dies may be
//! lost; [`Builder::ack_key`] turns on at-least-once delivery. When the
//! machine stops, [`Machine::shutdown`] hands back whatever was not
//! delivered. `docs/design.md` in the repository has the details.
//!
//! # Layout
//!
//! The modules are layers; each uses only those listed before it.
//!
//! - `types`: the leaf types: [`Message`], [`Error`], [`Command`],
//!   [`State`] and [`Status`], [`Stats`], [`Leftovers`], the parsed URL and the
//!   [`Endpoint`] a dialer reaches. [`channel`]: the four channels' types,
//!   light enough for thousands of machines.
//! - `settings`: the [`Builder`], its defaults and validation, the
//!   validated settings it hands to the machine, and the
//!   [`ReconnectBudget`] machines share.
//! - `policy`: the decisions, free of I/O: the state machine, what each
//!   command means in each phase, backoff, keep-alive, the write watch, the
//!   delivery bookkeeping.
//! - `handoff`: the machine's ends of `status` and `input`, which never make
//!   it wait, and of its [`Stats`], which callers read without stopping it.
//! - `connection`: the open connection's I/O: the dialer, a proxy's
//!   tunnel, TLS, the engine
//!   (the only module that knows tokio-websockets), and the link that reads,
//!   writes, keeps alive and closes.
//! - `driver`: the one task per machine, one `select!` per phase (attempt,
//!   waiting, connected, stop), inside a `tracing` span per machine and one
//!   per connection.
//! - [`machine`](Machine): the caller's handle, which starts the task.
//! - [`blocking`]: the same handle with calls that block, for programs
//!   without a tokio runtime: the machine runs on a runtime of its own.

#![deny(missing_docs)]

pub mod blocking;
pub mod channel;
mod connection;
mod driver;
mod handoff;
mod machine;
mod policy;
mod settings;
mod types;

/// The README's example compiles as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

pub use bytes;
pub use handoff::stats::StatsHandle;
pub use http;
pub use machine::{Machine, Stopped};
pub use settings::{Builder, IntoMessages, ReconnectBudget, default_retry_status};
/// The TLS library used for `wss://`, for building a
/// [`Builder::tls_config`].
pub use tokio_rustls::rustls;
pub use types::{
    Cause, CloseFrame, Command, Deflate, Direction, Endpoint, Error, Kind, Leftovers, Message,
    State, Stats, Status, TlsProblem, redact_url,
};
