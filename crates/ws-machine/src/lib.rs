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
//! - [`machine`](Machine): the caller's handle and [`Command`]s.
//! - [`channel`]: the four channels' types, light enough for thousands of
//!   machines.
//! - `config`: the [`Builder`], its defaults and validation.
//! - `state`: [`State`], [`Status`] and the state machine (pure).
//! - `driver`: the one task per machine, one `select!` per phase.
//! - `engine`: the only module that knows the WebSocket engine.
//! - `keepalive`, `backoff`, `delivery`, `status`: the policies, each pure
//!   and unit-tested.
//! - [`Message`], [`Error`]: the crate's own types.

#![deny(missing_docs)]

mod backoff;
pub mod channel;
mod config;
mod delivery;
mod driver;
mod engine;
mod error;
mod keepalive;
mod machine;
mod message;
mod state;
mod status;
#[cfg(test)]
mod timing_tests;

/// The README's example compiles as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

pub use bytes;
pub use config::{Builder, default_retry_status};
pub use error::{Direction, Error};
pub use http;
pub use machine::{Command, Leftovers, Machine, Stopped};
pub use message::{Kind, Message};
pub use state::{State, Status};
/// The TLS library used for `wss://`, for building a
/// [`Builder::tls_config`].
pub use tokio_rustls::rustls;
