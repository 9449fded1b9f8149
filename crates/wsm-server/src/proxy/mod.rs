//! A TCP proxy on 127.0.0.1 that shapes the link between a client and a
//! server: a rate per direction, changed at any moment by the test.
//!
//! Some promises of a client concern the link rather than the peer: a slow
//! but moving link must not be cut as dead, while a peer that stopped
//! reading must be. The echo server can only misbehave as a peer; this
//! proxy, put between a client and it, is the link. Each direction has its
//! own token bucket, and a pump reads only what its bucket allows, so what
//! may not pass yet waits in the kernel, and the sender's TCP sees its data
//! acknowledged at the link's pace.
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
mod pump;

use std::{
    io,
    net::{Ipv4Addr, SocketAddr},
    num::NonZeroU64,
    sync::Arc,
    time::Duration,
};

use tokio::{
    net::{TcpListener, TcpSocket, TcpStream},
    sync::watch,
    task::{JoinHandle, JoinSet},
};
use tracing::{debug, info, warn};

use pump::{Leg, Shaping};

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

/// A running proxy from `127.0.0.1:PORT` to one upstream address.
///
/// Created by [`Proxy::start`]; stopped by [`Proxy::stop`] or by dropping
/// it. Every connection accepted is carried to the upstream address over a
/// connection of its own; the shaping applies to all of them at once.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tokio::{
///     io::{AsyncReadExt, AsyncWriteExt},
///     net::{TcpListener, TcpStream},
/// };
/// use wsm_server::proxy::{Direction, Proxy};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let upstream = TcpListener::bind("127.0.0.1:0").await?;
/// let proxy = Proxy::start(upstream.local_addr()?)?;
/// proxy.set_rate(Direction::ToServer, Some(20_000)); // 20 KB/s to the server
///
/// let mut client = TcpStream::connect(proxy.addr()).await?;
/// let (mut server, _) = upstream.accept().await?;
/// client.write_all(b"hello").await?;
/// let mut got = [0u8; 5];
/// server.read_exact(&mut got).await?;
/// assert_eq!(&got, b"hello");
/// assert!(proxy.wait_for_forwarded(Direction::ToServer, 5, Duration::from_secs(5)).await);
///
/// proxy.set_rate(Direction::ToServer, None); // full speed again
/// proxy.stop().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Proxy {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept_task: Option<JoinHandle<()>>,
}

/// What the handle and the tasks share: the shaping of each direction and
/// the counters tests wait on (`watch` channels, so a test awaits a
/// condition instead of polling).
#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    to_server: watch::Sender<Shaping>,
    to_client: watch::Sender<Shaping>,
    forwarded_to_server: watch::Sender<u64>,
    forwarded_to_client: watch::Sender<u64>,
    accepted: watch::Sender<u64>,
}

impl Shared {
    fn shaping(&self, direction: Direction) -> &watch::Sender<Shaping> {
        match direction {
            Direction::ToServer => &self.to_server,
            Direction::ToClient => &self.to_client,
        }
    }

    fn forwarded(&self, direction: Direction) -> &watch::Sender<u64> {
        match direction {
            Direction::ToServer => &self.forwarded_to_server,
            Direction::ToClient => &self.forwarded_to_client,
        }
    }

    fn leg(&self, direction: Direction) -> Leg<'_> {
        Leg {
            shaping: self.shaping(direction),
            forwarded: self.forwarded(direction),
        }
    }
}

impl Proxy {
    /// Starts a proxy on `127.0.0.1` (a port chosen by the system) to
    /// `upstream`, at full speed both ways.
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
        if !upstream.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the proxy only forwards to loopback addresses, not {upstream}"),
            ));
        }
        let socket = TcpSocket::new_v4()?;
        // Accepted sockets inherit the listener's receive buffer.
        socket.set_recv_buffer_size(RECV_BUFFER)?;
        socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let listener = socket.listen(BACKLOG)?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            to_server: watch::Sender::new(Shaping::default()),
            to_client: watch::Sender::new(Shaping::default()),
            forwarded_to_server: watch::Sender::new(0),
            forwarded_to_client: watch::Sender::new(0),
            accepted: watch::Sender::new(0),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), shutdown_rx));
        info!(addr = %local_addr, %upstream, "proxy listening");
        Ok(Self {
            shared,
            local_addr,
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

    /// Limits `direction` to `bytes_per_second` (`None`: no limit), at once,
    /// on every connection, open or to come.
    pub fn set_rate(&self, direction: Direction, bytes_per_second: Option<u64>) {
        let rate = bytes_per_second.and_then(NonZeroU64::new);
        self.shared
            .shaping(direction)
            .send_modify(|shaping| shaping.rate = rate);
    }

    /// Bytes carried in `direction` so far, over all connections.
    #[must_use]
    pub fn forwarded(&self, direction: Direction) -> u64 {
        *self.shared.forwarded(direction).borrow()
    }

    /// Connections accepted so far.
    #[must_use]
    pub fn connections_accepted(&self) -> u64 {
        *self.shared.accepted.borrow()
    }

    /// Waits until at least `bytes` have been carried in `direction`;
    /// `false` if `timeout` passed first.
    pub async fn wait_for_forwarded(
        &self,
        direction: Direction,
        bytes: u64,
        timeout: Duration,
    ) -> bool {
        let mut forwarded = self.shared.forwarded(direction).subscribe();
        matches!(
            tokio::time::timeout(timeout, forwarded.wait_for(|&n| n >= bytes)).await,
            Ok(Ok(_))
        )
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

/// Accepts connections until told to stop, then drops every connection.
async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    shared.accepted.send_modify(|n| *n += 1);
                    connections.spawn(carry(Arc::clone(&shared), client, peer));
                }
                Err(err) => {
                    // Out of file descriptors, say: pause rather than spin.
                    warn!(cause = %err, "proxy accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }
    drop(listener);
    connections.shutdown().await;
    info!("proxy stopped");
}

/// Resolves once the proxy is told to stop (or its handle is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The result holds a lock guard: dropped here, not kept across awaits.
    drop(shutdown.wait_for(|&stop| stop).await);
}

/// Carries one accepted connection to the upstream address.
async fn carry(shared: Arc<Shared>, client: TcpStream, peer: SocketAddr) {
    let result = async {
        client.set_nodelay(true)?;
        let server = connect_upstream(shared.upstream).await?;
        pump::join(
            client,
            server,
            shared.leg(Direction::ToServer),
            shared.leg(Direction::ToClient),
        )
        .await
    };
    match result.await {
        Ok(()) => debug!(%peer, "proxied connection ended"),
        Err(err) => debug!(%peer, cause = %err, "proxied connection failed"),
    }
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
