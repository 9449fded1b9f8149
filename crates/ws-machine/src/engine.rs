//! The only module that knows the WebSocket engine (tokio-websockets).
//!
//! It opens connections (TCP, TLS, HTTP upgrade), converts messages and
//! errors between the engine's types and the crate's, and nothing else, so
//! swapping the engine means rewriting this file alone.
//!
//! The transport under the engine is [`Transport`]: TCP or TLS-over-TCP (the
//! TLS state boxed, so plain connections do not pay for its size), plus two
//! small services the machine needs from the byte stream itself:
//! - during the handshake it records the bytes read, so a rejected upgrade's
//!   headers (`Retry-After`) can be read although the engine reports only the
//!   status code;
//! - right above the socket (under TLS, so draining TLS records count too)
//!   it notes when a write last made progress, so the write timeout can tell
//!   a slow write that moves from a stuck one.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures_core::Stream;
use futures_sink::Sink;

use bytes::Bytes;
use http::HeaderMap;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    time::Instant,
};
use tokio_rustls::{TlsConnector, client::TlsStream, rustls};
use tokio_websockets as tws;

use crate::{
    config::Target,
    error::{Direction, Error},
    message::{Kind, Message},
};

/// An open WebSocket connection, seen through what the driver needs:
/// hand over frames, flush, read.
///
/// The engine's stream is boxed: the connection attempt builds it and the
/// connected phase uses it, and a box moves between them as a pointer
/// instead of leaving a copy of the stream in each phase's state.
pub(crate) struct Socket {
    stream: Box<tws::WebSocketStream<Transport>>,
}

/// A frame ready to be handed to a [`Socket`].
pub(crate) struct Frame(tws::Message);

impl Socket {
    /// Queues a frame; [`Socket::poll_flush`] writes it.
    pub(crate) fn send(&mut self, frame: Frame) -> Result<(), Error> {
        let mut stream = Pin::new(self.stream.as_mut());
        // The engine's flush threshold is unlimited, so it is always ready
        // and `poll_ready` never waits: it is called to keep the `Sink`
        // contract, with a waker that is never needed.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        if let Poll::Ready(Err(e)) = stream.as_mut().poll_ready(&mut cx) {
            return Err(connection_error(e));
        }
        stream.start_send(frame.0).map_err(connection_error)
    }

    /// Writes what was queued.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(self.stream.as_mut())
            .poll_flush(cx)
            .map_err(connection_error)
    }

    /// The next frame; `None` once the connection has ended.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Incoming, Error>>> {
        Pin::new(self.stream.as_mut())
            .poll_next(cx)
            .map(|item| item.map(|frame| frame.map(incoming).map_err(connection_error)))
    }

    /// When a write last made progress.
    pub(crate) fn last_write(&self) -> Option<Instant> {
        self.stream.get_ref().io.last_write()
    }
}

/// Most bytes of a rejected handshake's answer kept to read its headers.
const MAX_RECORDED: usize = 16 * 1024;

/// How a successful answer to the upgrade request starts.
const SWITCHING_PROTOCOLS: &[u8] = b"HTTP/1.1 101 ";

/// Most bytes read while waiting for the answer to the upgrade request: a
/// server that sends endless headers is cut off instead of filling memory
/// until the handshake timeout.
const MAX_HANDSHAKE_ANSWER: usize = 64 * 1024;

/// The byte stream under the engine.
#[derive(Debug)]
pub(crate) struct Transport {
    io: Io,
    /// Records the bytes read while the handshake is under way.
    /// Boxed: it lives only during the handshake, the transport as long as
    /// the connection.
    recorder: Option<Box<Recorder>>,
}

/// The answer to the upgrade request as read so far. The engine drops the
/// transport when the handshake fails, so the recording is handed out then.
#[derive(Debug)]
struct Recorder {
    bytes: Vec<u8>,
    /// False once the answer is known to be `101 Switching Protocols`.
    keep: bool,
    /// All bytes read so far, recorded or not.
    total: usize,
    on_drop: tokio::sync::oneshot::Sender<Vec<u8>>,
}

impl Drop for Transport {
    fn drop(&mut self) {
        if let Some(recorder) = self.recorder.take() {
            // Nobody waits for it once the handshake succeeded or was abandoned.
            let _ = recorder.on_drop.send(recorder.bytes);
        }
    }
}

/// The byte stream itself. Write progress is noted right above the socket,
/// under TLS, so TLS records still draining count as progress.
#[derive(Debug)]
enum Io {
    Plain(Tracked<TcpStream>),
    Tls(Box<TlsStream<Tracked<TcpStream>>>),
    /// In-memory connections for the crate's paused-clock tests.
    #[cfg(test)]
    Memory(Tracked<tokio::io::DuplexStream>),
}

impl Io {
    fn last_write(&self) -> Option<Instant> {
        match self {
            Self::Plain(s) => s.last_write,
            Self::Tls(s) => s.get_ref().0.last_write,
            #[cfg(test)]
            Self::Memory(s) => s.last_write,
        }
    }
}

/// A socket that notes when a write last made progress: if that is long
/// ago while data waits, the write is stuck.
#[derive(Debug)]
struct Tracked<S> {
    inner: S,
    last_write: Option<Instant>,
}

impl<S> Tracked<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            last_write: None,
        }
    }

    fn note(&mut self, result: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(1..)) = result {
            self.last_write = Some(Instant::now());
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.note(&result);
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.note(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Hands in-memory connections to a machine under test: each attempt takes
/// the next stream, and fails as refused when there is none.
#[cfg(test)]
pub(crate) type MemoryDial =
    Arc<std::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<tokio::io::DuplexStream>>>;

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            #[cfg(test)]
            Io::Memory(s) => Pin::new(s).poll_read(cx, buf),
        };
        if let (Poll::Ready(Ok(())), Some(recorder)) = (&result, &mut this.recorder) {
            let fresh = &buf.filled()[before..];
            if recorder.total == 0 && fresh.starts_with(SWITCHING_PROTOCOLS) {
                // The upgrade succeeds: its headers will not be needed, so
                // nothing is copied (only counted, for the size limit).
                recorder.keep = false;
            }
            if recorder.keep {
                let room = MAX_RECORDED.saturating_sub(recorder.bytes.len());
                recorder
                    .bytes
                    .extend_from_slice(&fresh[..fresh.len().min(room)]);
            }
            recorder.total += fresh.len();
            if recorder.total > MAX_HANDSHAKE_ANSWER {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the answer to the upgrade request exceeds {MAX_HANDSHAKE_ANSWER} bytes"
                    ),
                )));
            }
        }
        result
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            #[cfg(test)]
            Io::Memory(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            #[cfg(test)]
            Io::Memory(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
            #[cfg(test)]
            Io::Memory(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            #[cfg(test)]
            Io::Memory(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            #[cfg(test)]
            Io::Memory(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Opens connections for one machine.
pub(crate) struct Connector {
    tls: Option<TlsConnector>,
    config: tws::Config,
    limits: tws::Limits,
    retry_status: fn(u16) -> bool,
    #[cfg(test)]
    pub(crate) memory: Option<MemoryDial>,
}

impl Connector {
    pub(crate) fn new(
        target: &Target,
        tls_config: Option<Arc<rustls::ClientConfig>>,
        max_message_size: usize,
        retry_status: fn(u16) -> bool,
    ) -> Self {
        let tls = target
            .tls
            .then(|| TlsConnector::from(tls_config.unwrap_or_else(default_tls_config)));
        Self {
            tls,
            // The driver decides when to flush: never flush on its own.
            config: tws::Config::default().flush_threshold(usize::MAX),
            limits: tws::Limits::default().max_payload_len(Some(max_message_size)),
            retry_status,
            #[cfg(test)]
            memory: None,
        }
    }

    /// One connection attempt: TCP, TLS if `wss`, then the HTTP upgrade.
    /// The caller bounds it with the handshake timeout.
    pub(crate) async fn connect(
        &self,
        target: &Target,
        headers: &HeaderMap,
    ) -> Result<Socket, Error> {
        let io = self.open(target).await?;
        self.upgrade(io, target, headers).await
    }

    /// Opens the byte stream: TCP, then TLS for `wss`.
    async fn open(&self, target: &Target) -> Result<Io, Error> {
        #[cfg(test)]
        if let Some(dial) = &self.memory {
            let next = dial
                .lock()
                .ok()
                .and_then(|mut streams| streams.try_recv().ok());
            return next
                .map(|stream| Io::Memory(Tracked::new(stream)))
                .ok_or_else(|| Error::Connect {
                    host: target.host.to_string(),
                    port: target.port,
                    source: Arc::new(io::Error::from(io::ErrorKind::ConnectionRefused)),
                });
        }
        let tcp = TcpStream::connect((&*target.host, target.port))
            .await
            .map_err(|e| Error::Connect {
                host: target.host.to_string(),
                port: target.port,
                source: Arc::new(e),
            })?;
        // Messages are coalesced by the machine; small ones must not wait for
        // Nagle's algorithm.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let io = match &self.tls {
            None => Io::Plain(Tracked::new(tcp)),
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(target.host.to_string())
                    .map_err(|e| {
                        Error::Tls(format!(
                            "{:?} is not a valid TLS server name: {e}",
                            target.host
                        ))
                    })?;
                let stream = tls
                    .connect(name, Tracked::new(tcp))
                    .await
                    .map_err(tls_error)?;
                Io::Tls(Box::new(stream))
            }
        };
        Ok(io)
    }

    /// The HTTP upgrade on an open stream.
    async fn upgrade(&self, io: Io, target: &Target, headers: &HeaderMap) -> Result<Socket, Error> {
        let (answer_tx, mut answer_rx) = tokio::sync::oneshot::channel();
        let transport = Transport {
            io,
            recorder: Some(Box::new(Recorder {
                bytes: Vec::new(),
                keep: true,
                total: 0,
                on_drop: answer_tx,
            })),
        };
        let mut builder = tws::ClientBuilder::from_uri(target.uri()?)
            .config(self.config)
            .limits(self.limits);
        for (name, value) in headers {
            builder = builder
                .add_header(name.clone(), value.clone())
                .map_err(|_| Error::InvalidHeader {
                    name: name.to_string(),
                    reason: "the WebSocket handshake sets this header itself: remove it".into(),
                })?;
        }
        match builder.connect_on(transport).await {
            Ok((mut stream, _response)) => {
                stream.get_mut().recorder = None;
                Ok(Socket {
                    stream: Box::new(stream),
                })
            }
            // The engine dropped the transport, which handed over what it
            // recorded of the answer.
            Err(e) => Err(self.handshake_error(e, &answer_rx.try_recv().unwrap_or_default())),
        }
    }

    fn handshake_error(&self, error: tws::Error, answer: &[u8]) -> Error {
        match error {
            tws::Error::Upgrade(tws::upgrade::Error::DidNotSwitchProtocols(status)) => {
                Error::HandshakeRejected {
                    status,
                    retry_after: retry_after(answer),
                    retryable: (self.retry_status)(status),
                }
            }
            tws::Error::Io(e) => {
                Error::Handshake(format!("connection failed during the upgrade: {e}"))
            }
            other => Error::Handshake(other.to_string()),
        }
    }
}

/// The default TLS configuration: Mozilla's roots, verification on, ring.
fn default_tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = match rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
            {
                Ok(builder) => builder.with_root_certificates(roots).with_no_client_auth(),
                // ring supports the safe defaults; this branch is unreachable in
                // practice but must not panic.
                Err(_) => rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            };
            Arc::new(config)
        })
        .clone()
}

/// Classifies a failed TLS handshake: certificate problems are final,
/// anything else (a reset in the middle) is retried.
fn tls_error(error: io::Error) -> Error {
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(
            e @ (rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::UnsupportedNameType),
        ) => Error::Tls(e.to_string()),
        _ => Error::Handshake(format!("TLS handshake failed: {error}")),
    }
}

/// The `Retry-After` of a rejected upgrade, in seconds (the HTTP-date form
/// is ignored).
fn retry_after(answer: &[u8]) -> Option<Duration> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    response.parse(answer).ok()?;
    let value = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("retry-after"))?
        .value;
    let seconds: u64 = std::str::from_utf8(value).ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// What the engine produced when read.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A data message for the caller.
    Message(Message),
    /// A ping: proof of life; the engine queued the pong that answers it.
    Ping,
    /// A pong: proof of life.
    Pong,
    /// The server's close frame.
    Close { code: u16, reason: String },
}

/// Converts what the engine read.
fn incoming(message: tws::Message) -> Incoming {
    if message.is_text() || message.is_binary() {
        let kind = if message.is_text() {
            Kind::Text
        } else {
            Kind::Binary
        };
        Incoming::Message(Message::received(kind, Bytes::from(message.into_payload())))
    } else if message.is_close() {
        let (code, reason) = message
            .as_close()
            .map_or((1005, String::new()), |(code, reason)| {
                (u16::from(code), reason.to_owned())
            });
        Incoming::Close { code, reason }
    } else if message.is_ping() {
        Incoming::Ping
    } else {
        Incoming::Pong
    }
}

/// Converts a message to send, in the given mode for plain bytes.
pub(crate) fn outgoing(message: &Message, text_mode: bool, max: usize) -> Result<Frame, Error> {
    if message.len() > max {
        return Err(Error::MessageTooLarge {
            direction: Direction::Outgoing,
            size: message.len(),
            max,
        });
    }
    let payload = message.payload().clone();
    let frame = match message.kind() {
        Kind::Text => tws::Message::text(payload),
        Kind::Binary => tws::Message::binary(payload),
        Kind::Unspecified if !text_mode => tws::Message::binary(payload),
        Kind::Unspecified => {
            if std::str::from_utf8(&payload).is_err() {
                return Err(Error::NotText {
                    size: payload.len(),
                });
            }
            tws::Message::text(payload)
        }
    };
    Ok(Frame(frame))
}

/// A ping frame.
pub(crate) fn ping() -> Frame {
    Frame(tws::Message::ping(Bytes::new()))
}

/// A normal close frame.
pub(crate) fn close() -> Frame {
    Frame(tws::Message::close(
        Some(tws::CloseCode::NORMAL_CLOSURE),
        "",
    ))
}

/// Converts an error of an open connection.
fn connection_error(error: tws::Error) -> Error {
    match error {
        tws::Error::Io(e) => Error::ConnectionLost(Arc::new(e)),
        tws::Error::PayloadTooLong { len, max_len } => Error::MessageTooLarge {
            direction: Direction::Incoming,
            size: len,
            max: max_len,
        },
        tws::Error::Protocol(e) => Error::Protocol(e.to_string()),
        tws::Error::AlreadyClosed => Error::ConnectionLost(Arc::new(io::Error::new(
            io::ErrorKind::NotConnected,
            "connection already closed",
        ))),
        other => Error::Protocol(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_from_the_answer() {
        let answer =
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(retry_after(answer), Some(Duration::from_secs(7)));
        let no_header = b"HTTP/1.1 503 Service Unavailable\r\n\r\n";
        assert_eq!(retry_after(no_header), None);
        assert_eq!(retry_after(b"garbage"), None);
    }

    #[test]
    fn text_mode_refuses_invalid_utf8() {
        let bytes = Message::bytes(vec![0xff, 0xfe]);
        assert!(matches!(
            outgoing(&bytes, true, 100),
            Err(Error::NotText { size: 2 })
        ));
        assert!(outgoing(&bytes, false, 100).is_ok_and(|f| f.0.is_binary()));
        let text = Message::bytes(&b"ok"[..]);
        assert!(outgoing(&text, true, 100).is_ok_and(|f| f.0.is_text()));
        assert!(outgoing(&Message::text("t"), false, 100).is_ok_and(|f| f.0.is_text()));
    }

    #[test]
    fn oversized_messages_are_refused() {
        let big = Message::binary(vec![0u8; 11]);
        assert!(matches!(
            outgoing(&big, false, 10),
            Err(Error::MessageTooLarge {
                direction: Direction::Outgoing,
                size: 11,
                max: 10
            })
        ));
    }
}
