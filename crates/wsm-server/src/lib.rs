//! A local WebSocket echo server with fault injection.
//!
//! `ws-machine` promises to reconnect, detect dead peers and never lose a
//! message silently. Those promises can only be tested against a peer that
//! misbehaves on demand: one that rejects handshakes with any HTTP status,
//! freezes without closing the socket, drops the TCP connection, closes
//! politely, pushes messages, or writes garbage. This crate is that peer. The
//! library's integration tests, the CLI (`wsm demo`, `wsm echo-server`) and the
//! benchmarks all use it, so it is also a plain, fast echo server.
//!
//! It only ever listens where it is told; [`Server::start`] binds
//! `127.0.0.1:0`.
//!
//! # Behaviour
//!
//! - Every text or binary message is echoed back with the same opcode.
//! - A message whose payload is exactly `/CLOSE` makes the server close that
//!   connection with a normal close handshake (code 1000).
//! - Pings are answered with pongs, unless the connection is frozen.
//! - [`Config`] sets faults that apply to every connection (close after K
//!   messages, freeze after T); [`Server`]'s methods inject faults at runtime.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use wsm_server::{Config, Rejection, Server};
//!
//! # async fn run() -> std::io::Result<()> {
//! let server = Server::start(Config::default().close_after(Some(10)))?;
//! println!("connect to {}", server.url());
//!
//! // ...connect a client, then:
//! assert!(server.wait_for_connections(1, Duration::from_secs(5)).await);
//! server.freeze_all();
//! server.reject_handshakes(Some(Rejection::too_many_requests(1)));
//!
//! server.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`config`]: [`Config`] (faults applied to every connection) and
//!   [`Rejection`] (the HTTP answer to refused upgrades).
//! - [`data`]: [`Data`], the messages the server pushes, and [`Received`], the
//!   record of messages it got.
//! - `handshake`: reads and answers the HTTP/1.1 upgrade request by hand, so
//!   that headers can be recorded and any status can be returned.
//! - `prefixed`: a stream wrapper that replays bytes read past the end of the
//!   upgrade request before reading from the socket again.
//! - `shared`: the state shared by the handle and the tasks: counters,
//!   records, and the registry of live connections with their command
//!   channels.
//! - `coalesced`: the write buffer that turns many echoes into one write.
//! - `connection`: the per-connection task, one `select!` over commands,
//!   timers and the next frame.
//! - [`server`]: [`Server`], the public handle, and the accept loop.
//! - [`proxy`]: [`Proxy`](proxy::Proxy), a TCP proxy on 127.0.0.1 that is
//!   the link between a client and a server and breaks it on demand
//!   ([`Faults`](proxy::Faults) per direction: latency with jitter, a rate,
//!   a black hole, a cut after N bytes, slices, a slow close; and resets
//!   and refused connections), for promises about the network rather than
//!   misbehaving peers.
//! - [`toxiproxy`]: [`Api`](toxiproxy::Api), that proxy behind a
//!   Toxiproxy-compatible HTTP API, so tests and tools written for
//!   Toxiproxy drive it (`wsm fault-proxy` serves it).
#![deny(missing_docs)]

mod coalesced;
pub mod config;
mod connection;
pub mod data;
mod handshake;
mod prefixed;
pub mod proxy;
pub mod server;
mod shared;
pub mod toxiproxy;

pub use config::{Config, Rejection};
pub use data::{Data, Received};
pub use server::Server;
