//! One connection attempt: open a byte stream (the dialer), open a proxy's
//! tunnel over it if there is a proxy, run TLS over that for `wss://`, then
//! the WebSocket upgrade.
//!
//! Each step takes any stream the step before produced, so the tunnel sits
//! between dialing and TLS without changing either, and TLS runs over
//! whatever was dialed: with a proxy, TLS is end to end with the server.

use std::{fmt, io, net::SocketAddr, sync::Arc};

use http::HeaderMap;
use tokio::{
    net::TcpStream,
    time::{Instant, timeout},
};

use super::{
    engine::{self, Socket},
    proxy,
    stream::{Io, Tracked},
    tls::{self, Tls},
};
use crate::{
    settings::{ByteStream, Connection, Dialer, Extras, Proxy, RetryStatus},
    types::{Endpoint, Error, Target},
};

/// Opens the connections of one machine.
pub(crate) struct Connector {
    dialer: Dialer,
    /// The caller's TLS configuration, if any (the default one otherwise),
    /// for `wss://` URLs.
    tls_config: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    max_message_size: usize,
    retry_status: RetryStatus,
    /// A proxy, a TLS server name, subprotocols; `None` for most machines.
    extras: Option<Box<Extras>>,
}

impl Connector {
    pub(crate) fn new(settings: Connection) -> Self {
        Self {
            dialer: settings.dialer,
            tls_config: settings.tls_config,
            max_message_size: settings.max_message_size,
            retry_status: settings.retry_status,
            extras: settings.extras,
        }
    }

    /// Largest message accepted in either direction.
    pub(crate) fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// One attempt, which must be over by `deadline` (the caller bounds it
    /// with the handshake timeout; the deadline shares the time between the
    /// addresses of a host).
    pub(crate) async fn connect(
        &self,
        target: &Target,
        headers: &HeaderMap,
        deadline: Instant,
    ) -> Result<Socket, Error> {
        let io = self.open(target, deadline).await?;
        let protocols = self.extras.as_ref().and_then(|e| e.protocols.as_ref());
        let compression = self.extras.as_ref().and_then(|e| e.compression.as_ref());
        engine::upgrade(
            io,
            target,
            headers,
            self.max_message_size,
            &*self.retry_status,
            protocols,
            compression,
        )
        .await
    }

    fn proxy(&self, target: &Target) -> Option<&Proxy> {
        self.extras
            .as_ref()
            .and_then(|e| e.proxy.as_ref())
            .and_then(|route| route.for_target(target))
    }

    /// The byte stream under the WebSocket: dialed (to the proxy, if there
    /// is one), tunnelled, then TLS for `wss://`.
    async fn open(&self, target: &Target, deadline: Instant) -> Result<Box<dyn Io>, Error> {
        let proxy = self.proxy(target);
        let to = proxy.map_or_else(|| target.endpoint(), Proxy::endpoint);
        let dial_error = |e: io::Error| match proxy {
            Some(proxy) => Error::Proxy {
                proxy: proxy.name(),
                source: Arc::new(e),
            },
            None => connect_error(&to, e),
        };
        match &self.dialer {
            Dialer::Tcp => {
                let tcp = tcp(&to, deadline).await.map_err(dial_error)?;
                self.through(proxy, target, tcp).await
            }
            Dialer::Custom(dial) => {
                let stream = dial(to.clone()).await.map_err(dial_error)?;
                self.through(proxy, target, stream).await
            }
        }
    }

    /// Opens the proxy's tunnel over `stream`, if there is a proxy, then
    /// TLS.
    async fn through<S: ByteStream>(
        &self,
        proxy: Option<&Proxy>,
        target: &Target,
        stream: S,
    ) -> Result<Box<dyn Io>, Error> {
        let stream = match proxy {
            // Boxed: the attempt's future, which every attempt allocates,
            // keeps no room for a tunnel most machines never open.
            Some(proxy) => Box::pin(proxy::tunnel(proxy, stream, &target.endpoint())).await?,
            None => stream,
        };
        self.secure(target, stream).await
    }

    /// Notes write progress right above the stream, then runs TLS over it
    /// if the URL asks for it.
    async fn secure<S: ByteStream>(
        &self,
        target: &Target,
        stream: S,
    ) -> Result<Box<dyn Io>, Error> {
        let tracked = Tracked::new(stream);
        if !target.tls() {
            return Ok(Box::new(tracked));
        }
        let name = match self.extras.as_ref().and_then(|e| e.server_name.as_ref()) {
            Some(name) => Ok(name.clone()),
            None => tls::server_name(target.host()),
        };
        let tls = Tls::new(self.tls_config.clone());
        Ok(Box::new(tls.handshake(name, tracked).await?))
    }
}

/// Most bytes the kernel keeps unsent on a connection of the default
/// dialer (`TCP_NOTSENT_LOWAT`; see [`bound_unsent`]). The socket is
/// writable again once half of them have been sent: the grain of progress
/// the write watch sees.
const MAX_UNSENT: u32 = 16 * 1024;

/// The default dialer: TCP to every address of the host in turn, without
/// Nagle's algorithm (the machine coalesces messages itself; small ones
/// must not wait), with the bytes the kernel keeps unsent bounded.
async fn tcp(endpoint: &Endpoint, deadline: Instant) -> io::Result<TcpStream> {
    let mut found = tokio::net::lookup_host((endpoint.host(), endpoint.port())).await?;
    let first = found.next();
    let tcp = match (first, found.next()) {
        // One address (an IP in the URL, one record), the common case: the
        // attempt's own timeout bounds it; nothing to share, nothing
        // allocated.
        (Some(one), None) => TcpStream::connect(one).await?,
        (first, second) => {
            let addresses: Vec<SocketAddr> = first.into_iter().chain(second).chain(found).collect();
            connect_any(&addresses, deadline).await?
        }
    };
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    bound_unsent(&tcp);
    Ok(tcp)
}

/// Keeps at most [`MAX_UNSENT`] bytes unsent in the kernel, so that a write
/// the socket accepts means the peer's TCP took bytes. Left alone, a full
/// socket accepts nothing until a third of its megabytes have drained, and a
/// slow but moving link looked dead to the write timeout (docs/design.md,
/// "Write timeout"). A peer that stopped reading takes nothing, so writes to
/// it still wait.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn bound_unsent(tcp: &TcpStream) {
    if let Err(e) = socket2::SockRef::from(tcp).set_tcp_notsent_lowat(MAX_UNSENT) {
        tracing::debug!(error = %e, "cannot set TCP_NOTSENT_LOWAT");
    }
}

/// Elsewhere the socket's own rule applies (socket2 offers the option on
/// Linux and Android only).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn bound_unsent(_tcp: &TcpStream) {}

/// Tries the addresses in the order the resolver gave them (IPv6 first
/// where the system prefers it). Each gets an equal share of the time left,
/// so an address that never answers cannot use up the whole attempt, and
/// one that refuses passes on to the next at once.
async fn connect_any(addresses: &[SocketAddr], deadline: Instant) -> io::Result<TcpStream> {
    let mut failed = Vec::new();
    for (i, address) in addresses.iter().enumerate() {
        let left = u32::try_from(addresses.len() - i).unwrap_or(u32::MAX);
        let share = deadline.saturating_duration_since(Instant::now()) / left;
        let error = match timeout(share, TcpStream::connect(address)).await {
            Ok(Ok(tcp)) => return Ok(tcp),
            Ok(Err(e)) => e,
            Err(_) => io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {share:?}"),
            ),
        };
        tracing::debug!(%address, %error, "address failed");
        failed.push((*address, error));
    }
    Err(match failed.len() {
        0 => io::Error::new(io::ErrorKind::NotFound, "the name has no address"),
        1 => failed.remove(0).1,
        _ => {
            let kind = failed
                .last()
                .map_or(io::ErrorKind::Other, |(_, e)| e.kind());
            io::Error::new(kind, EveryAddressFailed(failed))
        }
    })
}

/// Each address of a host failed: all of them are named; the last one's
/// error is the source.
#[derive(Debug)]
struct EveryAddressFailed(Vec<(SocketAddr, io::Error)>);

impl fmt::Display for EveryAddressFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "each of its {} addresses failed: ", self.0.len())?;
        for (i, (address, error)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{address}: {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for EveryAddressFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.last().map(|(_, e)| e as _)
    }
}

fn connect_error(endpoint: &Endpoint, error: io::Error) -> Error {
    Error::Connect {
        host: endpoint.host().to_owned(),
        port: endpoint.port(),
        source: Arc::new(error),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::net::TcpListener;

    use super::*;

    async fn refusing_address() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        address
    }

    #[tokio::test]
    async fn an_address_that_refuses_passes_on_to_the_next() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let good = listener.local_addr().expect("address");
        let addresses = [refusing_address().await, good];
        let deadline = Instant::now() + Duration::from_secs(3);
        let tcp = connect_any(&addresses, deadline)
            .await
            .expect("the second address");
        assert_eq!(tcp.peer_addr().expect("peer"), good);
    }

    #[tokio::test]
    async fn when_every_address_fails_each_is_named() {
        let addresses = [refusing_address().await, refusing_address().await];
        let deadline = Instant::now() + Duration::from_secs(3);
        let error = connect_any(&addresses, deadline)
            .await
            .expect_err("refused");
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
        let text = error.to_string();
        assert!(
            text.starts_with("each of its 2 addresses failed: "),
            "{text}"
        );
        for address in addresses {
            assert!(text.contains(&address.to_string()), "{text}");
        }
        let last = std::error::Error::source(error.get_ref().expect("inner"))
            .and_then(|e| e.downcast_ref::<io::Error>())
            .expect("the last error as the source");
        assert_eq!(last.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[tokio::test]
    async fn the_default_dialer_bounds_the_unsent_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let target = Target::parse(&format!("ws://{addr}/")).expect("valid URL");
        let deadline = Instant::now() + Duration::from_secs(3);
        let tcp = tcp(&target.endpoint(), deadline).await.expect("connects");
        let socket = socket2::SockRef::from(&tcp);
        assert_eq!(socket.tcp_notsent_lowat().expect("readable"), MAX_UNSENT);
        assert!(socket.tcp_nodelay().expect("readable"));
    }
}
