//! The [`Server`] handle and the accept loop behind it.
//!
//! The accept loop is one task that owns the listener and, in a `JoinSet`,
//! every connection task. Stopping (or dropping the handle) ends that task:
//! the listener is closed and every connection task aborted, which drops its
//! socket. Nothing is killed from outside the task and no connection outlives
//! the server.

use std::{
    io,
    net::{Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use http::HeaderMap;
use tokio::{
    net::{TcpListener, TcpSocket, TcpStream},
    sync::watch,
    task::{JoinHandle, JoinSet},
};
use tracing::{debug, info, warn};

use crate::{
    config::{Config, Rejection},
    connection,
    data::{Data, Received},
    shared::{Command, Shared},
};

/// Listen backlog: large enough for the idle benchmark's burst of connects.
const BACKLOG: u32 = 1024;

/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop
/// does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// A running echo server with fault injection.
///
/// Created by [`Server::start`] or [`Server::bind`]; stopped by
/// [`Server::stop`] or by dropping it. All fault controls take `&self`, so a
/// test can share the server (e.g. in an `Arc`) with the code under test.
///
/// Connections are numbered 1, 2, ... in the order their upgrade is accepted
/// (see [`Received::connection`]).
#[derive(Debug)]
pub struct Server {
    /// Counters, records and live connections, shared with the tasks.
    shared: Arc<Shared>,
    /// The address actually bound.
    local_addr: SocketAddr,
    /// Set to `true` to stop the accept loop.
    shutdown: watch::Sender<bool>,
    /// The accept loop; taken by [`Server::stop`] to wait for it.
    accept_task: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server on `127.0.0.1` with a port chosen by the system.
    ///
    /// # Errors
    ///
    /// Returns the error of creating, binding or listening on the socket.
    ///
    /// # Panics
    ///
    /// Panics if called outside a Tokio runtime.
    pub fn start(config: Config) -> io::Result<Self> {
        Self::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config)
    }

    /// Starts a server on `addr`.
    ///
    /// `SO_REUSEADDR` is set, so a server can be started again on the port of
    /// one just stopped (connections of the old one may linger in
    /// `TIME_WAIT`): pass the old [`Server::addr`].
    ///
    /// # Errors
    ///
    /// Returns the error of creating, binding or listening on the socket,
    /// e.g. `AddrInUse` if another listener holds the port.
    ///
    /// # Panics
    ///
    /// Panics if called outside a Tokio runtime.
    pub fn bind(addr: SocketAddr, config: Config) -> io::Result<Self> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(BACKLOG)?;
        let local_addr = listener.local_addr()?;

        let shared = Arc::new(Shared::new(config));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), shutdown_rx));
        info!(addr = %local_addr, "echo server listening");
        Ok(Self {
            shared,
            local_addr,
            shutdown,
            accept_task: Some(accept_task),
        })
    }

    /// The address the server listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL to connect to, e.g. `ws://127.0.0.1:PORT/`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("ws://{}/", self.local_addr)
    }

    /// The configuration the server runs with.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    // ---- Faults -------------------------------------------------------------

    /// Answers new upgrade requests with `rejection` (any HTTP status and
    /// headers) and closes them, or accepts them again with `None`.
    ///
    /// Rejected requests still count in [`Server::handshakes_seen`] and
    /// [`Server::request_headers`]. Open connections are not affected.
    pub fn reject_handshakes(&self, rejection: Option<Rejection>) {
        self.shared.set_rejection(rejection);
    }

    /// Stops (`true`) or resumes (`false`) accepting TCP connections.
    ///
    /// While paused, new connections wait in the kernel's backlog: the TCP
    /// connect succeeds but the upgrade request is not answered, which is how
    /// a client's handshake timeout is tested. Resuming serves them.
    pub fn pause_accepting(&self, paused: bool) {
        self.shared.paused.send_replace(paused);
    }

    /// Answers new upgrades with this subprotocol whatever the client
    /// offered (a server that breaks the negotiation), or chooses from
    /// [`Config::protocols`] again with `None`.
    pub fn force_protocol(&self, protocol: Option<&str>) {
        self.shared.set_forced_protocol(protocol.map(str::to_owned));
    }

    /// When `true`, every new connection gets its 101 and then, at once, a
    /// normal close frame: a server that keeps hanging up (reconnect
    /// storms). Such connections count as accepted.
    pub fn accept_then_close(&self, on: bool) {
        self.shared.set_accept_then_close(on);
    }

    /// Freezes every open connection: it stops reading and writing (no
    /// echoes, no pongs, no close frames) but keeps its TCP socket open until
    /// the server stops or [`Server::drop_all`] is called. Returns how many
    /// connections were told.
    pub fn freeze_all(&self) -> usize {
        self.shared.broadcast(&Command::Freeze)
    }

    /// Drops the TCP socket of every open connection at once, frozen ones
    /// included, without a close frame. Returns how many were dropped.
    pub fn drop_all(&self) -> usize {
        self.shared.kill_all()
    }

    /// Sends a normal close frame (code 1000) to every open connection and
    /// completes the close handshake (the socket is dropped after the peer
    /// answers, or after 5 s). Returns how many connections were told.
    pub fn close_all(&self) -> usize {
        self.shared.broadcast(&Command::Close)
    }

    /// Sends a message to every open connection (server push). Frozen and
    /// closing connections ignore it. Returns how many connections were told.
    pub fn send_all(&self, data: impl Into<Data>) -> usize {
        self.shared.broadcast(&Command::Send(data.into()))
    }

    /// Writes `bytes` unframed onto every open connection's socket, after
    /// any frames already queued, to provoke protocol errors in clients.
    /// Frozen connections ignore it. Returns how many connections were told.
    pub fn send_garbage_all(&self, bytes: impl Into<Bytes>) -> usize {
        self.shared.broadcast(&Command::Garbage(bytes.into()))
    }

    // ---- Observation --------------------------------------------------------

    /// Upgrades accepted (answered with 101) so far.
    #[must_use]
    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted()
    }

    /// When each upgrade counted by [`Server::connections_accepted`] was
    /// accepted (its 101 about to be written), in order: the first
    /// [`Config::record_limit`] of them. For tests that count connection
    /// attempts per time window.
    #[must_use]
    pub fn accepted_at(&self) -> Vec<tokio::time::Instant> {
        self.shared.accepted_at()
    }

    /// Complete HTTP requests received so far: accepted, rejected or invalid
    /// upgrades alike (not bytes that are not HTTP at all).
    #[must_use]
    pub fn handshakes_seen(&self) -> u64 {
        self.shared.handshakes()
    }

    /// Connections open right now (accepted and not yet ended), frozen ones
    /// included.
    #[must_use]
    pub fn open_connections(&self) -> usize {
        self.shared.open()
    }

    /// The headers of the requests counted by [`Server::handshakes_seen`],
    /// in the order received: the first [`Config::record_limit`] of them.
    #[must_use]
    pub fn request_headers(&self) -> Vec<HeaderMap> {
        self.shared.request_headers()
    }

    /// Text and binary messages received so far, on all connections.
    #[must_use]
    pub fn messages_received(&self) -> u64 {
        self.shared.messages()
    }

    /// The first [`Config::record_limit`] text and binary messages received,
    /// in order per connection.
    #[must_use]
    pub fn received(&self) -> Vec<Received> {
        self.shared.received()
    }

    /// Waits until at least `n` connections have been accepted in total;
    /// `false` if `timeout` passed first.
    pub async fn wait_for_connections(&self, n: u64, timeout: Duration) -> bool {
        self.shared.wait_accepted(timeout, |&v| v >= n).await
    }

    /// Waits until at least `n` HTTP requests have been received in total;
    /// `false` if `timeout` passed first.
    pub async fn wait_for_handshakes(&self, n: u64, timeout: Duration) -> bool {
        self.shared.wait_handshakes(timeout, |&v| v >= n).await
    }

    /// Waits until exactly `n` connections are open (e.g. 0 after the
    /// client went away); `false` if `timeout` passed first.
    pub async fn wait_for_open_connections(&self, n: usize, timeout: Duration) -> bool {
        self.shared.wait_open(timeout, |&v| v == n).await
    }

    /// Waits until at least `n` messages have been received in total;
    /// `false` if `timeout` passed first.
    pub async fn wait_for_messages(&self, n: u64, timeout: Duration) -> bool {
        self.shared.wait_messages(timeout, |&v| v >= n).await
    }

    // ---- Shutdown -----------------------------------------------------------

    /// Stops the server: closes the listener and drops every connection's
    /// socket (no close frames). Returns once the listener is closed, so the
    /// port can be bound again at once with [`Server::bind`].
    pub async fn stop(mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.accept_task.take()
            && let Err(err) = task.await
        {
            warn!(cause = %err, "accept loop failed");
        }
    }
}

impl Drop for Server {
    /// Tells the accept loop to stop; it closes the listener and drops all
    /// connections shortly after, without being waited for.
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

/// Accepts connections until told to stop, then closes everything.
async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut paused = shared.paused.subscribe();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // Shutdown first, so a flood of connects cannot delay it; then
            // reaping, so finished tasks do not pile up.
            biased;
            // Also ends if the sender is gone (it never is while the handle
            // lives; the handle sets `true` before dropping it).
            () = stopped(&mut shutdown) => break,
            Some(result) = connections.join_next(), if !connections.is_empty() => {
                if let Err(err) = result
                    && err.is_panic()
                {
                    warn!(cause = %err, "connection task panicked");
                }
            }
            accepted = next_connection(&listener, &mut paused) => match accepted {
                Ok((stream, peer)) => {
                    // Echo latency matters more than packet count here.
                    if let Err(err) = stream.set_nodelay(true) {
                        debug!(cause = %err, "setting TCP_NODELAY failed");
                    }
                    connections.spawn(connection::serve(Arc::clone(&shared), stream, peer));
                }
                Err(err) => {
                    warn!(cause = %err, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }
    drop(listener);
    // Aborting drops each task's socket; waiting makes sure they are gone.
    connections.shutdown().await;
    info!("echo server stopped");
}

/// Resolves once the server is told to stop (or its handle is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The result holds a lock guard; drop it here rather than across the
    // accept loop's awaits.
    drop(shutdown.wait_for(|&stop| stop).await);
}

/// The next connection, waiting while accepting is paused.
///
/// Cancel-safe: both `wait_for` and `accept` are, and no connection is held
/// between them.
async fn next_connection(
    listener: &TcpListener,
    paused: &mut watch::Receiver<bool>,
) -> io::Result<(TcpStream, SocketAddr)> {
    loop {
        if paused.wait_for(|&p| !p).await.is_err() {
            // The sender lives in `Shared`, which outlives this loop.
            std::future::pending::<()>().await;
        }
        tokio::select! {
            // A pause set before a client connects must win over its
            // connection.
            biased;
            () = async { drop(paused.wait_for(|&p| p).await) } => {}
            accepted = listener.accept() => return accepted,
        }
    }
}
