//! One connection attempt: open a byte stream (the dialer), run TLS over it
//! for `wss://`, then the WebSocket upgrade.
//!
//! Each step takes any stream the step before produced, so a later step (a
//! proxy's tunnel) can be put between dialing and TLS without changing the
//! others, and TLS runs over whatever was dialed.

use std::sync::Arc;

use http::HeaderMap;
use tokio::net::TcpStream;

use super::{
    engine::{self, Socket},
    stream::{Io, Tracked},
    tls::Tls,
};
use crate::{
    settings::{ByteStream, Connection, Dialer, RetryStatus},
    types::{Endpoint, Error, Target},
};

/// Opens the connections of one machine.
pub(crate) struct Connector {
    dialer: Dialer,
    /// `Some` for `wss://`.
    tls: Option<Tls>,
    max_message_size: usize,
    retry_status: RetryStatus,
}

impl Connector {
    pub(crate) fn new(target: &Target, settings: Connection) -> Self {
        Self {
            dialer: settings.dialer,
            tls: target.tls().then(|| Tls::new(settings.tls_config)),
            max_message_size: settings.max_message_size,
            retry_status: settings.retry_status,
        }
    }

    /// Largest message accepted in either direction.
    pub(crate) fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// One attempt. The caller bounds it with the handshake timeout.
    pub(crate) async fn connect(
        &self,
        target: &Target,
        headers: &HeaderMap,
    ) -> Result<Socket, Error> {
        let io = self.open(target).await?;
        engine::upgrade(
            io,
            target,
            headers,
            self.max_message_size,
            &*self.retry_status,
        )
        .await
    }

    /// The byte stream under the WebSocket: dialed, then TLS for `wss://`.
    async fn open(&self, target: &Target) -> Result<Box<dyn Io>, Error> {
        let endpoint = target.endpoint();
        match &self.dialer {
            Dialer::Tcp => self.secure(target, tcp(&endpoint).await?).await,
            Dialer::Custom(dial) => {
                let stream = dial(endpoint.clone())
                    .await
                    .map_err(|e| connect_error(&endpoint, e))?;
                self.secure(target, stream).await
            }
        }
    }

    /// Notes write progress right above the stream, then runs TLS over it
    /// if the URL asks for it.
    async fn secure<S: ByteStream>(
        &self,
        target: &Target,
        stream: S,
    ) -> Result<Box<dyn Io>, Error> {
        let tracked = Tracked::new(stream);
        match &self.tls {
            None => Ok(Box::new(tracked)),
            Some(tls) => Ok(Box::new(tls.handshake(target.host(), tracked).await?)),
        }
    }
}

/// Most bytes the kernel keeps unsent on a connection of the default
/// dialer (`TCP_NOTSENT_LOWAT`; see [`bound_unsent`]). The socket is
/// writable again once half of them have been sent: the grain of progress
/// the write watch sees.
const MAX_UNSENT: u32 = 16 * 1024;

/// The default dialer: TCP, without Nagle's algorithm (the machine
/// coalesces messages itself; small ones must not wait), with the bytes
/// the kernel keeps unsent bounded.
async fn tcp(endpoint: &Endpoint) -> Result<TcpStream, Error> {
    let tcp = TcpStream::connect((endpoint.host(), endpoint.port()))
        .await
        .map_err(|e| connect_error(endpoint, e))?;
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

fn connect_error(endpoint: &Endpoint, error: std::io::Error) -> Error {
    Error::Connect {
        host: endpoint.host().to_owned(),
        port: endpoint.port(),
        source: Arc::new(error),
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn the_default_dialer_bounds_the_unsent_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let target = Target::parse(&format!("ws://{addr}/")).expect("valid URL");
        let tcp = tcp(&target.endpoint()).await.expect("connects");
        let socket = socket2::SockRef::from(&tcp);
        assert_eq!(socket.tcp_notsent_lowat().expect("readable"), MAX_UNSENT);
        assert!(socket.tcp_nodelay().expect("readable"));
    }
}
