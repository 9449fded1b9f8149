//! A TCP proxy on 127.0.0.1 that is the link between a client and a
//! server, and breaks it on demand: latency, a rate, a black hole, resets,
//! cuts after N bytes, slices, refused connections and slow closes, each
//! changed at any moment by the test.
//!
//! Some promises of a client concern the link rather than the peer: a slow
//! but moving link must not be cut as dead, while a peer that stopped
//! reading must be; a half-open connection must be found dead within the
//! keep-alive's bound; a reset, a cut mid-message or a refused attempt must
//! lead to a reconnection that loses nothing. The echo server can only
//! misbehave as a peer; this proxy, put between a client and it, is the
//! link, so the same tests can break it in every way a network does.
//!
//! Each direction has its own [`Faults`], a plain value in a `watch`
//! channel that its pump reads before every step (see `pump`): a change
//! applies at once to every connection, open or to come. Resetting and
//! refusing act on connections rather than bytes, so they are methods of
//! [`Proxy`]. A pump reads only what its direction lets pass now: what may
//! not pass yet waits in the kernel, and the sender's TCP sees its data
//! acknowledged at the link's pace; a black hole reads nothing, so TCP
//! delivers what was sent once it is lifted, as after a real partition.
//! Counters ([`Counter`]) are `watch` channels too, so a test awaits a
//! condition instead of polling or sleeping.
//!
//! The proxy's sockets keep small receive buffers (4 KiB asked of the
//! kernel). A receiver advertises a window again only once a good part of
//! its buffer is free (a segment's worth, and loopback's segments are
//! 64 KiB): with the default buffers, a 20 KB/s link acknowledged data in
//! bursts seconds apart, a pause that no real slow link makes. With small
//! buffers the sender sees acknowledgements every few hundred milliseconds,
//! as behind a real slow link.
//!
//! Like the [`Server`](crate::Server), it is one task that owns the listener
//! and every connection's task: stopping it (or dropping the handle) closes
//! the listener and drops every proxied socket.

mod bucket;
mod faults;
mod pump;

use std::{
    io,
    net::{Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use tokio::{
    net::{TcpListener, TcpSocket, TcpStream},
    sync::{mpsc, oneshot, watch},
    task::{JoinHandle, JoinSet},
};
use tracing::{debug, info, warn};

pub use faults::{Faults, Latency, Slicer};
use pump::{End, Leg};

/// Receive buffer asked for on the proxy's sockets (see the module docs).
const RECV_BUFFER: u32 = 4 * 1024;

/// Listen backlog.
const BACKLOG: u32 = 64;

/// Pause after a failed `accept`, so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// One direction of the proxied link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the client (what connected to the proxy) to the server.
    ToServer,
    /// From the server back to the client.
    ToClient,
}

impl Direction {
    /// Both directions, for a fault set both ways.
    pub const BOTH: [Direction; 2] = [Direction::ToServer, Direction::ToClient];
}

/// What the proxy counts, over all connections, for [`Proxy::count`] and
/// [`Proxy::wait_for`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Counter {
    /// Bytes carried (written on) in a direction.
    Forwarded(Direction),
    /// Connections accepted.
    Accepted,
    /// Connections reset by [`Proxy::reset`], counted once both legs are
    /// closed.
    Reset,
    /// Connections cut by [`Faults::cut_after`], counted once both legs are
    /// closed.
    Cut,
    /// Connections over, whatever the reason (closed by the peers, reset,
    /// cut, failed), counted once both legs are closed.
    Ended,
}

/// A running proxy from `127.0.0.1:PORT` to one upstream address.
///
/// Created by [`Proxy::start`]; stopped by [`Proxy::stop`] or by dropping
/// it. Every connection accepted is carried to the upstream address over a
/// connection of its own; the faults apply to all of them at once.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tokio::{
///     io::{AsyncReadExt, AsyncWriteExt},
///     net::{TcpListener, TcpStream},
/// };
/// use wsm_server::proxy::{Counter, Direction, Proxy};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let wait = Duration::from_secs(5);
/// let upstream = TcpListener::bind("127.0.0.1:0").await?;
/// let proxy = Proxy::start(upstream.local_addr()?)?;
/// proxy.set_rate(Direction::ToServer, Some(20_000)); // 20 KB/s to the server
/// proxy.update_faults(Direction::ToClient, |f| f.latency(Duration::from_millis(50), Duration::ZERO));
///
/// let mut client = TcpStream::connect(proxy.addr()).await?;
/// let (mut server, _) = upstream.accept().await?;
/// client.write_all(b"hello").await?;
/// let mut got = [0u8; 5];
/// server.read_exact(&mut got).await?;
/// assert_eq!(&got, b"hello");
/// assert!(proxy.wait_for(Counter::Forwarded(Direction::ToServer), 5, wait).await);
///
/// // Half-open: nothing passes, nothing is closed.
/// for direction in Direction::BOTH {
///     proxy.update_faults(direction, |f| f.black_hole(true));
/// }
/// server.write_all(b"lost?").await?;
/// // ...until it is lifted.
/// for direction in Direction::BOTH {
///     proxy.update_faults(direction, |f| f.black_hole(false));
/// }
/// client.read_exact(&mut got).await?;
/// assert_eq!(&got, b"lost?");
///
/// // Every open connection is reset; new ones are refused, then accepted.
/// proxy.reset();
/// assert!(proxy.wait_for(Counter::Reset, 1, wait).await);
/// proxy.refuse_connections(true).await?;
/// assert!(TcpStream::connect(proxy.addr()).await.is_err());
/// proxy.refuse_connections(false).await?;
/// let _again = TcpStream::connect(proxy.addr()).await?;
///
/// proxy.stop().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Proxy {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    commands: mpsc::Sender<Command>,
    shutdown: watch::Sender<bool>,
    accept_task: Option<JoinHandle<()>>,
}

/// What the handle and the tasks share: the faults of each direction, the
/// reset signal and the counters tests wait on (`watch` channels, so a
/// test awaits a condition instead of polling).
#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    to_server: watch::Sender<Faults>,
    to_client: watch::Sender<Faults>,
    /// Bumped by [`Proxy::reset`]: every connection open then is reset.
    resets: watch::Sender<u64>,
    forwarded_to_server: watch::Sender<u64>,
    forwarded_to_client: watch::Sender<u64>,
    accepted: watch::Sender<u64>,
    reset: watch::Sender<u64>,
    cut: watch::Sender<u64>,
    ended: watch::Sender<u64>,
}

impl Shared {
    fn faults(&self, direction: Direction) -> &watch::Sender<Faults> {
        match direction {
            Direction::ToServer => &self.to_server,
            Direction::ToClient => &self.to_client,
        }
    }

    fn counter(&self, counter: Counter) -> &watch::Sender<u64> {
        match counter {
            Counter::Forwarded(Direction::ToServer) => &self.forwarded_to_server,
            Counter::Forwarded(Direction::ToClient) => &self.forwarded_to_client,
            Counter::Accepted => &self.accepted,
            Counter::Reset => &self.reset,
            Counter::Cut => &self.cut,
            Counter::Ended => &self.ended,
        }
    }

    fn add(&self, counter: Counter) {
        self.counter(counter)
            .send_modify(|n| *n = n.saturating_add(1));
    }

    fn leg(&self, direction: Direction) -> Leg<'_> {
        Leg {
            faults: self.faults(direction),
            forwarded: self.counter(Counter::Forwarded(direction)),
        }
    }
}

/// What the handle asks of the accept loop.
#[derive(Debug)]
enum Command {
    /// Refuse connections (`true`) or accept them again; answered once done.
    Refuse {
        refuse: bool,
        done: oneshot::Sender<io::Result<()>>,
    },
}

impl Proxy {
    /// Starts a proxy on `127.0.0.1` (a port chosen by the system) to
    /// `upstream`, with no faults.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `upstream` is not a loopback address (the proxy is
    /// for tests on this machine only); otherwise the error of creating,
    /// binding or listening on the socket.
    ///
    /// # Panics
    ///
    /// Panics if called outside a Tokio runtime.
    pub fn start(upstream: SocketAddr) -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), upstream)
    }

    /// Starts a proxy on `listen` (an IPv4 loopback address; port 0 lets
    /// the system choose) to `upstream`, with no faults.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `listen` is not an IPv4 loopback address or
    /// `upstream` not a loopback address (the proxy is for tests on this
    /// machine only); otherwise the error of creating, binding or listening
    /// on the socket (`AddrInUse` when the port is taken).
    ///
    /// # Panics
    ///
    /// Panics if called outside a Tokio runtime.
    pub fn start_on(listen: SocketAddr, upstream: SocketAddr) -> io::Result<Self> {
        if !upstream.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the proxy only forwards to loopback addresses, not {upstream}"),
            ));
        }
        if !(listen.is_ipv4() && listen.ip().is_loopback()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the proxy only listens on IPv4 loopback addresses, not {listen}"),
            ));
        }
        let listener = bound_socket(listen)?.listen(BACKLOG)?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            to_server: watch::Sender::new(Faults::default()),
            to_client: watch::Sender::new(Faults::default()),
            resets: watch::Sender::new(0),
            forwarded_to_server: watch::Sender::new(0),
            forwarded_to_client: watch::Sender::new(0),
            accepted: watch::Sender::new(0),
            reset: watch::Sender::new(0),
            cut: watch::Sender::new(0),
            ended: watch::Sender::new(0),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (commands, commands_rx) = mpsc::channel(4);
        let accept_task = tokio::spawn(accept_loop(
            Door::Open(listener),
            local_addr,
            Arc::clone(&shared),
            commands_rx,
            shutdown_rx,
        ));
        info!(addr = %local_addr, %upstream, "proxy listening");
        Ok(Self {
            shared,
            local_addr,
            commands,
            shutdown,
            accept_task: Some(accept_task),
        })
    }

    /// The address the proxy listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL to connect to through the proxy, e.g. `ws://127.0.0.1:PORT/`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("ws://{}/", self.local_addr)
    }

    /// Sets the faults of `direction`, at once, on every connection, open
    /// or to come.
    pub fn set_faults(&self, direction: Direction, faults: Faults) {
        self.shared.faults(direction).send_replace(faults);
    }

    /// The faults of `direction` now.
    #[must_use]
    pub fn faults(&self, direction: Direction) -> Faults {
        *self.shared.faults(direction).borrow()
    }

    /// Changes the faults of `direction` with `change`, e.g.
    /// `proxy.update_faults(Direction::ToClient, |f| f.black_hole(true))`.
    pub fn update_faults(&self, direction: Direction, change: impl FnOnce(Faults) -> Faults) {
        self.shared
            .faults(direction)
            .send_modify(|faults| *faults = change(*faults));
    }

    /// Limits `direction` to `bytes_per_second` (`None`: no limit), at once,
    /// on every connection, open or to come ([`Faults::rate`]).
    pub fn set_rate(&self, direction: Direction, bytes_per_second: Option<u64>) {
        self.update_faults(direction, |faults| faults.rate(bytes_per_second));
    }

    /// Resets every connection open now: both legs are closed with a TCP
    /// RST (`SO_LINGER` 0), so the client and the server each see
    /// `ConnectionReset`. Returns at once; [`Counter::Reset`] counts them
    /// once closed. Connections accepted later are not affected (a
    /// connection still in the listen backlog is not open yet).
    pub fn reset(&self) {
        self.shared.resets.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Refuses new connections (`true`) or accepts them again (`false`);
    /// returns once the change is made. Connections already open go on.
    ///
    /// While refusing, the proxy's socket stays bound to its address
    /// without listening, so the kernel answers each connection attempt
    /// with a RST: the client's connect fails with `ConnectionRefused`, as
    /// when a server is down, and the port stays the proxy's. (Accepting
    /// and resetting at once would let the connect succeed and fail only
    /// the first read, which is a different fault: [`Faults::cut_after`]
    /// `Some(0)`.) Attempts waiting in the listen backlog when the refusal
    /// starts are reset.
    ///
    /// # Errors
    ///
    /// The error of binding or listening on the address again (the
    /// refusal, or the acceptance, then did not happen), or `NotConnected`
    /// if the proxy has stopped.
    pub async fn refuse_connections(&self, refuse: bool) -> io::Result<()> {
        let stopped = || io::Error::new(io::ErrorKind::NotConnected, "the proxy has stopped");
        let (done, answer) = oneshot::channel();
        self.commands
            .send(Command::Refuse { refuse, done })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// The value of `counter` now.
    #[must_use]
    pub fn count(&self, counter: Counter) -> u64 {
        *self.shared.counter(counter).borrow()
    }

    /// Waits until `counter` is at least `at_least`; `false` if `timeout`
    /// passed first.
    pub async fn wait_for(&self, counter: Counter, at_least: u64, timeout: Duration) -> bool {
        let mut value = self.shared.counter(counter).subscribe();
        matches!(
            tokio::time::timeout(timeout, value.wait_for(|&n| n >= at_least)).await,
            Ok(Ok(_))
        )
    }

    /// Bytes carried in `direction` so far, over all connections
    /// ([`Counter::Forwarded`]).
    #[must_use]
    pub fn forwarded(&self, direction: Direction) -> u64 {
        self.count(Counter::Forwarded(direction))
    }

    /// Connections accepted so far ([`Counter::Accepted`]).
    #[must_use]
    pub fn connections_accepted(&self) -> u64 {
        self.count(Counter::Accepted)
    }

    /// Waits until at least `bytes` have been carried in `direction`;
    /// `false` if `timeout` passed first.
    pub async fn wait_for_forwarded(
        &self,
        direction: Direction,
        bytes: u64,
        timeout: Duration,
    ) -> bool {
        self.wait_for(Counter::Forwarded(direction), bytes, timeout)
            .await
    }

    /// Stops the proxy: closes the listener and drops every proxied socket.
    pub async fn stop(mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.accept_task.take()
            && let Err(err) = task.await
        {
            warn!(cause = %err, "proxy accept loop failed");
        }
    }
}

impl Drop for Proxy {
    /// Tells the accept loop to stop; it drops everything shortly after.
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

/// The proxy's own socket: listening, or shut while connections are
/// refused.
enum Door {
    Open(TcpListener),
    /// Bound to the proxy's address without listening: the kernel refuses
    /// connections, and no other socket can take the port (but another of
    /// these sockets, which share it on purpose).
    Shut(TcpSocket),
}

impl Door {
    /// The next connection; never, while shut.
    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        match self {
            Door::Open(listener) => listener.accept().await,
            Door::Shut(_) => std::future::pending().await,
        }
    }

    /// Opens or shuts the door. The new socket is bound before the old one
    /// is closed (both with `SO_REUSEPORT`), so the port is never free; on
    /// an error the door stays as it was.
    fn set_open(self, open: bool, addr: SocketAddr) -> (Self, io::Result<()>) {
        match (self, open) {
            (door @ Door::Open(_), true) | (door @ Door::Shut(_), false) => (door, Ok(())),
            (Door::Open(listener), false) => match bound_socket(addr) {
                Ok(socket) => {
                    drop(listener);
                    (Door::Shut(socket), Ok(()))
                }
                Err(err) => (Door::Open(listener), Err(err)),
            },
            (Door::Shut(socket), true) => {
                match bound_socket(addr).and_then(|s| s.listen(BACKLOG)) {
                    Ok(listener) => {
                        drop(socket);
                        (Door::Open(listener), Ok(()))
                    }
                    Err(err) => (Door::Shut(socket), Err(err)),
                }
            }
        }
    }
}

/// A socket bound to `addr`, with the small receive buffer (accepted
/// sockets inherit it) and `SO_REUSEPORT`, so that a second one can hold
/// the address while the first closes.
fn bound_socket(addr: SocketAddr) -> io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(RECV_BUFFER)?;
    #[cfg(unix)]
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

/// Accepts connections until told to stop, then drops every connection.
async fn accept_loop(
    mut door: Door,
    addr: SocketAddr,
    shared: Arc<Shared>,
    mut commands: mpsc::Receiver<Command>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            Some(command) = commands.recv() => match command {
                Command::Refuse { refuse, done } => {
                    let result;
                    (door, result) = door.set_open(!refuse, addr);
                    match &result {
                        Ok(()) => info!(refuse, "proxy door changed"),
                        Err(err) => warn!(refuse, cause = %err, "proxy door unchanged"),
                    }
                    // The handle may have given up waiting: nothing to do.
                    let _ = done.send(result);
                }
            },
            accepted = door.accept() => match accepted {
                Ok((client, peer)) => {
                    shared.add(Counter::Accepted);
                    // Subscribed now, so a reset from this moment on
                    // reaches this connection.
                    let resets = shared.resets.subscribe();
                    connections.spawn(carry(Arc::clone(&shared), client, peer, resets));
                }
                Err(err) => {
                    // Out of file descriptors, say: pause rather than spin.
                    warn!(cause = %err, "proxy accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }
    drop(door);
    connections.shutdown().await;
    info!("proxy stopped");
}

/// Resolves once the proxy is told to stop (or its handle is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The result holds a lock guard: dropped here, not kept across awaits.
    drop(shutdown.wait_for(|&stop| stop).await);
}

/// How a proxied connection ended, when nothing failed.
#[derive(Debug)]
enum Ending {
    /// Both sides closed, and each close was passed on.
    Closed,
    /// Cut after [`Faults::cut_after`] bytes.
    Cut,
    /// Reset by [`Proxy::reset`].
    Reset,
}

/// Carries one accepted connection to the upstream address, until both
/// sides have closed, it is cut or reset, or it fails.
async fn carry(
    shared: Arc<Shared>,
    client: TcpStream,
    peer: SocketAddr,
    mut resets: watch::Receiver<u64>,
) {
    // Connected before a reset is looked at, so that a reset meanwhile
    // finds both legs to reset (it is not missed: `changed` then resolves
    // at once).
    let (mut client, mut server) = match connect(&shared, client).await {
        Ok(legs) => legs,
        Err(err) => {
            debug!(%peer, cause = %err, "proxied connection failed");
            shared.add(Counter::Ended);
            return;
        }
    };
    let ending = tokio::select! {
        // Dropping the pumps mid-step is fine: the connection is reset.
        end = pump::join(
            &mut client,
            &mut server,
            shared.leg(Direction::ToServer),
            shared.leg(Direction::ToClient),
        ) => end.map(|end| match end {
            End::Closed => Ending::Closed,
            End::Cut => Ending::Cut,
        }),
        Ok(()) = resets.changed() => Ok(Ending::Reset),
    };
    let reset_as = match ending {
        Ok(Ending::Closed) => {
            debug!(%peer, "proxied connection ended");
            None
        }
        Ok(Ending::Cut) => Some(Counter::Cut),
        Ok(Ending::Reset) => Some(Counter::Reset),
        // The other socket is closed below, as a host does when its peer
        // is gone.
        Err(err) => {
            debug!(%peer, cause = %err, "proxied connection failed");
            None
        }
    };
    match reset_as {
        Some(counter) => {
            abort(client);
            abort(server);
            debug!(%peer, ?counter, "proxied connection reset");
            shared.add(counter);
        }
        None => drop((client, server)),
    }
    shared.add(Counter::Ended);
}

/// The two legs of a proxied connection: `client`, and a new connection
/// to the upstream address.
async fn connect(shared: &Shared, client: TcpStream) -> io::Result<(TcpStream, TcpStream)> {
    client.set_nodelay(true)?;
    let server = connect_upstream(shared.upstream).await?;
    Ok((client, server))
}

/// Closes `stream` with a RST rather than a FIN (`SO_LINGER` 0).
fn abort(stream: TcpStream) {
    if let Err(err) = stream.set_zero_linger() {
        // Closed anyway, with a FIN.
        debug!(cause = %err, "could not set SO_LINGER 0");
    }
    drop(stream);
}

/// A connection to the upstream address, with the same small receive
/// buffer as the client's side.
async fn connect_upstream(upstream: SocketAddr) -> io::Result<TcpStream> {
    let socket = if upstream.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_recv_buffer_size(RECV_BUFFER)?;
    let server = socket.connect(upstream).await?;
    server.set_nodelay(true)?;
    Ok(server)
}
