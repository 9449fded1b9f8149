//! yawc 0.5 (feature `deflate`), for connections that offer
//! permessage-deflate: the upgrade, sending, flushing and reading.
//!
//! What yawc keeps to itself, and how this module gets it anyway:
//! - the answer to the upgrade (only a rejection's status comes back): the
//!   transport under the engine hands out the head of a `101` answer as
//!   soon as it is complete, and records a rejection, as for
//!   tokio-websockets;
//! - the stream under it (`WebSocket` has no `get_ref`): the write
//!   progress the write watch needs is shared through [`Progress`].

use std::{
    error::Error as StdError,
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, ready},
    time::Duration,
};

use futures_sink::Sink;
use http::HeaderMap;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Instant,
};
use yawc::{
    CompressionLevel, DeflateOptions, OpCode, Options, WebSocket, WebSocketError, close::CloseCode,
};

use super::{
    Failure, Incoming, Out, Socket, disallowed, header, one_line_per_name, rejected, speaks_tls,
    upgrade_io_error,
};
use crate::{
    connection::{
        stream::Io,
        transport::{ForbiddenFrame, Transport},
    },
    settings::{Protocols, accept_unoffered},
    types::{Deflate, Direction, Error, Kind, Message, Target, with_context},
};

/// How long a failed handshake waits for the engine's connection task to
/// drop the transport, which hands over the recorded answer (hyper drives
/// the handshake in a task of its own).
const RECORDING_WAIT: Duration = Duration::from_millis(200);

/// yawc's read buffer (its default size).
const READ_BUFFER: usize = 8 * 1024;

/// How much yawc's write buffer gathers before [`Stream::send`] starts
/// writing it out.
const WRITE_BOUNDARY: usize = 64 * 1024;

/// The headers the handshake writes itself (those tokio-websockets refuses).
const HANDSHAKE_HEADERS: &[http::HeaderName] = &[
    http::header::HOST,
    http::header::UPGRADE,
    http::header::CONNECTION,
    http::header::SEC_WEBSOCKET_KEY,
    http::header::SEC_WEBSOCKET_VERSION,
];

/// When the socket last accepted a byte, shared between the transport
/// (inside the engine) and the socket.
type Progress = Arc<Mutex<Option<Instant>>>;

/// An open yawc connection.
pub(crate) struct Stream {
    ws: WebSocket<Noted>,
    progress: Progress,
    /// The subprotocol the server chose, until the driver takes it.
    protocol: Option<Arc<str>>,
    /// The incoming size limit, for the error (yawc's does not say).
    max: usize,
    /// What the server agreed to; `None` if it declined compression.
    compression: Option<Deflate>,
    /// A close frame was read or sent, or reading failed: nothing more may
    /// be sent. (yawc would take frames after its close reply; they would
    /// be flushed as written and dropped by the server, so they are
    /// refused here, as tokio-websockets refuses them, and go back to be
    /// written again on the next connection.)
    closed: bool,
}

impl Stream {
    /// Queues a frame: yawc encodes (and compresses) it into its write
    /// buffer at once; nothing is written before [`Stream::poll_flush`].
    pub(super) fn send(&mut self, frame: Out) -> Result<(), Error> {
        if self.closed {
            return Err(connection_error(WebSocketError::ConnectionClosed));
        }
        if matches!(frame, Out::Close { .. }) {
            self.closed = true;
        }
        let mut ws = Pin::new(&mut self.ws);
        // Past its backpressure boundary, `poll_ready` writes the buffer
        // out as far as the socket takes it: a batch of large messages is
        // not gathered into one buffer of megabytes. yawc takes the frame
        // whatever `poll_ready` said (it only appends to its buffer). The
        // no-op waker may replace the task's write waker in yawc: harmless,
        // because the link flushes after every batch, with the task's own
        // waker, before the task waits.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        if let Poll::Ready(Err(e)) = ws.as_mut().poll_ready(&mut cx) {
            return Err(connection_error(e));
        }
        ws.start_send(frame_of(frame)).map_err(connection_error)
    }

    /// Writes what was queued, the engine's own frames (pongs, a close
    /// reply) first: `poll_ready` writes those.
    pub(super) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut ws = Pin::new(&mut self.ws);
        ready!(ws.as_mut().poll_ready(cx)).map_err(connection_error)?;
        ws.poll_flush(cx).map_err(connection_error)
    }

    /// The next frame (see [`Socket::poll_next`]).
    pub(super) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Incoming, Failure>>> {
        loop {
            // `poll_next_frame`, not the `Stream` impl, which turns every
            // error into the end of the stream.
            let result = ready!(self.ws.poll_next_frame(cx));
            let next = match result {
                // A continuation: yawc reassembles messages and never
                // returns one; skipped, should it ever.
                Ok(frame) => match incoming(frame) {
                    Some(incoming) => Some(Ok(incoming)),
                    None => continue,
                },
                // The close handshake is over, or the TCP connection ended.
                Err(WebSocketError::ConnectionClosed) => None,
                Err(error) => Some(Err(self.failure(error))),
            };
            if matches!(next, None | Some(Err(_)) | Some(Ok(Incoming::Close { .. }))) {
                self.closed = true;
            }
            return Poll::Ready(next);
        }
    }

    /// Why reading failed, with the close frame that says so queued where
    /// yawc did not queue one.
    fn failure(&mut self, error: WebSocketError) -> Failure {
        let error = match error {
            // yawc queued a 1009 close; it does not say how large the
            // message was, only that it reached the limit.
            WebSocketError::FrameTooLarge => {
                return Failure {
                    error: Error::MessageTooLarge {
                        direction: Direction::Incoming,
                        size: self.max.saturating_add(1),
                        max: self.max,
                        message: None,
                    },
                    close_queued: true,
                };
            }
            WebSocketError::IoError(e) => {
                // The transport found a frame RFC 6455 forbids, before yawc
                // read it (yawc would unmask a masked frame, and close with
                // 1003 on a reserved opcode): a protocol error, closed with
                // 1002.
                if let Some(frame) = forbidden_frame(&e) {
                    return Failure {
                        error: Error::Protocol {
                            source: Arc::new(frame),
                        },
                        close_queued: self.queue_close(1002),
                    };
                }
                return Failure {
                    error: Error::ConnectionLost(Arc::new(e)),
                    close_queued: false,
                };
            }
            other => other,
        };
        // Found above yawc's framing, these come without a close frame:
        // queue the one tokio-websockets would send (1007 for text that is
        // not UTF-8, 1002 for a broken fragmented message).
        let own_close = match error {
            WebSocketError::InvalidUTF8 => Some(1007),
            WebSocketError::InvalidFragment
            | WebSocketError::FragmentTimeout
            | WebSocketError::InvalidContinuationFrame => Some(1002),
            _ => None,
        };
        let close_queued = match own_close {
            Some(code) => self.queue_close(code),
            // Any other protocol violation (or a corrupt deflate stream):
            // yawc queued the close frame that names it.
            None => true,
        };
        Failure {
            error: Error::Protocol {
                source: Arc::new(error),
            },
            close_queued,
        }
    }

    /// Queues a close frame with `code` (and no reason); whether it was
    /// taken.
    fn queue_close(&mut self, code: u16) -> bool {
        Pin::new(&mut self.ws)
            .start_send(frame_of(Out::Close {
                code,
                reason: String::new(),
            }))
            .is_ok()
    }

    /// When the socket last accepted a byte.
    pub(super) fn last_write(&self) -> Option<Instant> {
        self.progress.lock().ok().and_then(|last| *last)
    }

    /// The subprotocol the server chose, once.
    pub(super) fn take_protocol(&mut self) -> Option<Arc<str>> {
        self.protocol.take()
    }

    /// The permessage-deflate parameters the server agreed to.
    pub(super) fn compression(&self) -> Option<Deflate> {
        self.compression
    }
}

/// The HTTP upgrade on an opened stream (see [`super::upgrade`]), offering
/// permessage-deflate with `offer`'s parameters.
pub(super) async fn upgrade(
    io: Box<dyn Io>,
    target: &Target,
    headers: &HeaderMap,
    max_message_size: usize,
    retry_status: &(dyn Fn(u16) -> bool + Send + Sync),
    protocols: Option<&Protocols>,
    offer: &Deflate,
) -> Result<Socket, Error> {
    let url = url::Url::parse(target.url()).map_err(|e| Error::Handshake {
        source: with_context("the URL cannot be given to the engine", e),
    })?;
    let mut request = yawc::HttpRequest::builder();
    for (name, value) in one_line_per_name(headers)? {
        if HANDSHAKE_HEADERS.contains(name) {
            return Err(disallowed(name));
        }
        request = request.header(name, value);
    }
    if let Some(protocols) = protocols {
        request = request.header(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            protocols.header().clone(),
        );
    }
    // yawc's limits are exclusive: a message of exactly the limit passes.
    let limit = max_message_size.saturating_add(1);
    // 15 bits is the default: the server's window is asked for only if
    // smaller.
    let bits = |bits: u8| (bits < 15).then_some(bits);
    let options = Options {
        compression: Some(DeflateOptions {
            level: CompressionLevel::default(),
            client_no_context_takeover: !offer.client_context_takeover(),
            server_no_context_takeover: !offer.server_context_takeover(),
            // Always offered (RFC 7692, 7.1.2.2): a server may then choose
            // the window this machine compresses with, and some accept an
            // offer only with it.
            client_max_window_bits: Some(offer.client_window_bits()),
            server_max_window_bits: bits(offer.server_window_bits()),
            // Empty messages go uncompressed: with context takeover, yawc
            // 0.5 loops forever flushing an empty message after another
            // (zlib answers a second sync flush without input with no
            // output, and yawc waits for the flush marker).
            compression_threshold: 1,
            ..DeflateOptions::default()
        }),
        ..Options::default()
    }
    .with_utf8()
    .with_max_payload_read(limit)
    .with_max_read_buffer(limit)
    // Given explicitly, the read buffer is a fresh 8 KiB allocation. Left
    // to yawc, it is built from hyper's leftover `Bytes`, and once its
    // memory is shared with messages the machine still holds, it grows by
    // the byte: a `recvfrom` of a few bytes each, three per 64-byte message
    // (strace -c, 200,000 messages).
    .with_read_buffer_capacity(READ_BUFFER)
    .with_backpressure_boundary(WRITE_BOUNDARY)
    .with_write_buffer_capacity(0);
    let (transport, mut recording) = Transport::recording_head(io);
    let progress = Progress::default();
    let noted = Noted {
        transport,
        progress: Arc::clone(&progress),
    };
    match WebSocket::handshake_with_request(url, noted, options, request).await {
        Ok(ws) => {
            // The transport handed out the head of the `101` answer.
            let head = recording.try_recv().unwrap_or_default();
            let chosen = header(&head, "sec-websocket-protocol");
            let answer = header(&head, "sec-websocket-extensions");
            let compression = offer
                .agreed(answer.as_deref())
                .map_err(|why| Error::Handshake {
                    source: with_context("the server's permessage-deflate answer is refused", why),
                })?;
            let protocol = match protocols {
                Some(protocols) => protocols.accept(chosen.as_deref())?,
                None => accept_unoffered(chosen.as_deref())?,
            };
            Ok(Socket::Yawc(Box::new(Stream {
                ws,
                progress,
                protocol,
                max: max_message_size,
                compression,
                closed: false,
            })))
        }
        Err(e) => {
            let answer = tokio::time::timeout(RECORDING_WAIT, recording)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            Err(handshake_error(e, &answer, retry_status, target.tls()))
        }
    }
}

fn handshake_error(
    error: WebSocketError,
    answer: &[u8],
    retry_status: &(dyn Fn(u16) -> bool + Send + Sync),
    tls: bool,
) -> Error {
    match error {
        WebSocketError::InvalidStatusCode(status) => rejected(status, answer, retry_status),
        WebSocketError::Redirected { status_code, .. } => {
            rejected(status_code, answer, retry_status)
        }
        WebSocketError::IoError(e) => upgrade_io_error(e, answer, tls),
        other if !tls && speaks_tls(answer) => Error::Handshake {
            source: with_context("the server answered in TLS: use a wss:// URL", other),
        },
        // hyper's errors carry the I/O error (with a TLS alert in it) as
        // their cause; a connection closed before any answer has none.
        WebSocketError::HTTPError(e) => match io_cause(&e) {
            Some(io) => upgrade_io_error(io, answer, tls),
            None if answer.is_empty() => {
                upgrade_io_error(io::Error::new(io::ErrorKind::UnexpectedEof, e), answer, tls)
            }
            None => Error::Handshake {
                source: with_context("the upgrade failed", e),
            },
        },
        other => Error::Handshake {
            source: Arc::new(other),
        },
    }
}

/// The I/O error in `error`'s chain of causes, rebuilt (it cannot be taken
/// out), keeping a rustls error in it.
fn io_cause(error: &(dyn StdError + 'static)) -> Option<io::Error> {
    let mut cause = error.source();
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(
                match io
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<tokio_rustls::rustls::Error>())
                {
                    Some(tls) => io::Error::new(io.kind(), tls.clone()),
                    None => io::Error::new(io.kind(), io.to_string()),
                },
            );
        }
        cause = e.source();
    }
    None
}

/// Converts what the engine read; `None` for what the machine does not see
/// (a continuation, which yawc never returns once it reassembles).
fn incoming(frame: yawc::Frame) -> Option<Incoming> {
    Some(match frame.opcode() {
        OpCode::Text => Incoming::Message(Message::received(Kind::Text, frame.into_payload())),
        OpCode::Binary => Incoming::Message(Message::received(Kind::Binary, frame.into_payload())),
        OpCode::Close => {
            let code = frame.close_code().map_or(1005, u16::from);
            let reason = frame
                .close_reason()
                .ok()
                .flatten()
                .unwrap_or_default()
                .to_owned();
            Incoming::Close { code, reason }
        }
        OpCode::Ping => Incoming::Ping,
        OpCode::Pong => Incoming::Pong(frame.into_payload()),
        OpCode::Continuation => return None,
    })
}

/// The engine's frame for a frame to send.
fn frame_of(frame: Out) -> yawc::Frame {
    match frame {
        Out::Text(payload) => yawc::Frame::text(payload),
        Out::Binary(payload) => yawc::Frame::binary(payload),
        Out::Ping(payload) => yawc::Frame::ping(payload),
        Out::Close { code, reason } => yawc::Frame::close(CloseCode::from(code), reason),
    }
}

/// The forbidden frame a read error reports, if it is one.
fn forbidden_frame(error: &io::Error) -> Option<ForbiddenFrame> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ForbiddenFrame>())
        .copied()
}

/// Converts an error of an open connection.
fn connection_error(error: WebSocketError) -> Error {
    match error {
        WebSocketError::IoError(e) => Error::ConnectionLost(Arc::new(e)),
        WebSocketError::ConnectionClosed => Error::ConnectionLost(Arc::new(io::Error::new(
            io::ErrorKind::NotConnected,
            "connection already closed",
        ))),
        other => Error::Protocol {
            source: Arc::new(other),
        },
    }
}

/// The transport, copying its last write where the socket can read it
/// (yawc keeps the stream it runs on to itself).
struct Noted {
    transport: Transport,
    progress: Progress,
}

impl Noted {
    /// Copies the transport's last write into the shared progress. Called
    /// after every write, flush and shutdown: under TLS, bytes drain
    /// during a flush too, and each counts as progress.
    fn note(&self) {
        if let Ok(mut last) = self.progress.lock() {
            *last = self.transport.last_write();
        }
    }
}

impl AsyncRead for Noted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().transport).poll_read(cx, buf)
    }
}

impl AsyncWrite for Noted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.transport).poll_write(cx, buf);
        this.note();
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.transport).poll_write_vectored(cx, bufs);
        this.note();
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.transport.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.transport).poll_flush(cx);
        this.note();
        result
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.transport).poll_shutdown(cx);
        this.note();
        result
    }
}
