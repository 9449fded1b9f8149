//! The only module that knows the WebSocket engine (tokio-websockets).
//!
//! It runs the HTTP upgrade over an opened stream, converts messages and
//! errors between the engine's types and the crate's, and nothing else, so
//! swapping the engine means rewriting this file alone.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;
use tokio_websockets as tws;

use super::{stream::Io, tls::final_tls_error, transport::Transport};
use crate::{
    settings::{Protocols, accept_unoffered},
    types::{CloseFrame, Direction, Error, Kind, Message, Mode, Target, with_context},
};

/// An open WebSocket connection, seen through what the machine needs:
/// hand over frames, flush, read.
///
/// The engine's stream is boxed: the connection attempt builds it and the
/// connected phase uses it, and a box moves between them as a pointer.
pub(crate) struct Socket {
    stream: Box<tws::WebSocketStream<Transport>>,
}

/// A frame ready to be handed to a [`Socket`].
pub(crate) struct Frame(tws::Message);

/// Why reading failed, and whether a close frame saying so waits to be
/// flushed before the connection is dropped.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: Error,
    pub(crate) close_queued: bool,
}

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

    /// The next frame; `None` once the connection has ended. When the
    /// server broke the protocol or sent too large a message, a close frame
    /// saying so (1002, 1007 or 1009) is queued for the next flush.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Incoming, Failure>>> {
        let item = ready!(Pin::new(self.stream.as_mut()).poll_next(cx));
        Poll::Ready(item.map(|frame| match frame {
            Ok(frame) => Ok(incoming(frame)),
            Err(tws::Error::PayloadTooLong { len, max_len }) => {
                // The engine queues the 1009 itself for a single frame over
                // the limit, but not for a fragmented message that grew over
                // it. Queued here for both: refused, harmlessly, when the
                // engine's is already queued.
                let _ = self.send(too_big(max_len));
                Err(Failure {
                    error: Error::MessageTooLarge {
                        direction: Direction::Incoming,
                        size: len,
                        max: max_len,
                        message: None,
                    },
                    close_queued: true,
                })
            }
            // The engine queued the close frame that names the violation.
            Err(e @ tws::Error::Protocol(_)) => Err(Failure {
                error: connection_error(e),
                close_queued: true,
            }),
            Err(other) => Err(Failure {
                error: connection_error(other),
                close_queued: false,
            }),
        }))
    }

    /// When the socket last accepted a byte.
    pub(crate) fn last_write(&self) -> Option<Instant> {
        self.stream.get_ref().last_write()
    }

    /// The subprotocol the server chose, once (kept in the socket's box
    /// until then, so it costs the driver's task nothing).
    pub(crate) fn take_protocol(&mut self) -> Option<Arc<str>> {
        self.stream.get_mut().take_protocol()
    }
}

/// The HTTP upgrade on an opened stream, offering `protocols` if any. The
/// subprotocol the server chose waits in the socket
/// ([`Socket::take_protocol`]).
pub(crate) async fn upgrade(
    io: Box<dyn Io>,
    target: &Target,
    headers: &HeaderMap,
    max_message_size: usize,
    retry_status: &(dyn Fn(u16) -> bool + Send + Sync),
    protocols: Option<&Protocols>,
) -> Result<Socket, Error> {
    let (transport, mut recording) = Transport::recording(io);
    let mut builder = tws::ClientBuilder::from_uri(target.uri()?)
        // The machine decides when to flush: the engine never flushes on
        // its own.
        .config(tws::Config::default().flush_threshold(usize::MAX))
        .limits(tws::Limits::default().max_payload_len(Some(max_message_size)));
    for (name, value) in one_line_per_name(headers)? {
        builder = builder
            .add_header(name.clone(), value)
            .map_err(|_| disallowed(name))?;
    }
    if let Some(protocols) = protocols {
        let name = http::header::SEC_WEBSOCKET_PROTOCOL;
        builder = builder
            .add_header(name.clone(), protocols.header().clone())
            .map_err(|_| disallowed(&name))?;
    }
    match builder.connect_on(transport).await {
        Ok((mut stream, response)) => {
            let chosen = response
                .headers()
                .get(http::header::SEC_WEBSOCKET_PROTOCOL)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let protocol = match protocols {
                Some(protocols) => protocols.accept(chosen.as_deref())?,
                None => accept_unoffered(chosen.as_deref())?,
            };
            stream.get_mut().upgraded(protocol);
            Ok(Socket {
                stream: Box::new(stream),
            })
        }
        // The engine dropped the transport, which handed over what it
        // recorded of the answer.
        Err(e) => Err(handshake_error(
            e,
            &recording.try_recv().unwrap_or_default(),
            retry_status,
            target.tls(),
        )),
    }
}

fn disallowed(name: &HeaderName) -> Error {
    Error::InvalidHeader {
        name: name.to_string(),
        reason: "the WebSocket handshake sets this header itself: remove it".into(),
    }
}

/// The engine keeps one value per header name, so every value of a repeated
/// header goes into one line, joined as HTTP allows: `; ` between cookies
/// (RFC 6265), `, ` between the elements of any other list (RFC 9110).
fn one_line_per_name(headers: &HeaderMap) -> Result<Vec<(&HeaderName, HeaderValue)>, Error> {
    headers
        .keys()
        .map(|name| {
            let mut values = headers.get_all(name).iter();
            let mut line = values
                .next()
                .cloned()
                .unwrap_or(HeaderValue::from_static(""));
            let rest: Vec<&HeaderValue> = values.collect();
            if !rest.is_empty() {
                let separator: &[u8] = if name == http::header::COOKIE {
                    b"; "
                } else {
                    b", "
                };
                let mut bytes = line.as_bytes().to_vec();
                for value in rest {
                    bytes.extend_from_slice(separator);
                    bytes.extend_from_slice(value.as_bytes());
                }
                line = HeaderValue::from_bytes(&bytes).map_err(|_| Error::InvalidHeader {
                    name: name.to_string(),
                    reason: "its values cannot be joined into one line".into(),
                })?;
            }
            Ok((name, line))
        })
        .collect()
}

fn handshake_error(
    error: tws::Error,
    answer: &[u8],
    retry_status: &(dyn Fn(u16) -> bool + Send + Sync),
    tls: bool,
) -> Error {
    match error {
        tws::Error::Upgrade(tws::upgrade::Error::DidNotSwitchProtocols(status)) => {
            Error::HandshakeRejected {
                status,
                retry_after: retry_after(answer),
                retryable: retry_status(status),
                body: first_line_of_body(answer),
            }
        }
        // A server refusing the client's certificate says so with an alert
        // that arrives here under TLS 1.3: final.
        tws::Error::Io(e) => match final_tls_error(e) {
            Ok(tls_error) => tls_error,
            Err(e) if !tls && e.kind() == io::ErrorKind::UnexpectedEof => Error::Handshake {
                source: with_context(
                    "the server closed the connection without answering the upgrade (if it expects TLS, use wss://)",
                    e,
                ),
            },
            // Under TLS 1.3 a server refuses a client certificate after
            // the client's side of the handshake is done; its alert is
            // often lost when it resets the connection with the upgrade
            // request unread. Likely, not certain: retried.
            Err(e)
                if tls
                    && answer.is_empty()
                    && matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionAborted
                    ) =>
            {
                Error::Handshake {
                    source: with_context(
                        "the server closed the connection right after TLS, without answering the upgrade (with a client certificate configured: the server may have refused it)",
                        e,
                    ),
                }
            }
            Err(e) => Error::Handshake {
                source: with_context("connection failed during the upgrade", e),
            },
        },
        other if !tls && speaks_tls(answer) => Error::Handshake {
            source: with_context("the server answered in TLS: use a wss:// URL", other),
        },
        other => Error::Handshake {
            source: Arc::new(other),
        },
    }
}

/// Whether an answer starts like a TLS record (a handshake or an alert,
/// TLS 1.x): what a TLS server sends to a plain-text request.
fn speaks_tls(answer: &[u8]) -> bool {
    matches!(answer, [0x15 | 0x16, 0x03, ..])
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

/// Most characters of a rejection's body shown in its error.
const BODY_SHOWN: usize = 200;

/// The first non-empty line of a rejected upgrade's body, at most
/// [`BODY_SHOWN`] characters (of what was recorded of the answer).
fn first_line_of_body(answer: &[u8]) -> Option<String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head) = response.parse(answer).ok()? else {
        return None;
    };
    let body = String::from_utf8_lossy(answer.get(head..)?);
    let line = body.lines().map(str::trim).find(|line| !line.is_empty())?;
    Some(line.chars().take(BODY_SHOWN).collect())
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
    /// The server's close frame; the engine queued the reply.
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

/// Converts a message to send, plain bytes in the given mode.
pub(crate) fn outgoing(message: &Message, mode: Mode, max: usize) -> Result<Frame, Error> {
    if message.len() > max {
        return Err(Error::MessageTooLarge {
            direction: Direction::Outgoing,
            size: message.len(),
            max,
            message: Some(message.clone()),
        });
    }
    let payload = message.payload().clone();
    let frame = match (message.kind(), mode) {
        (Kind::Text, _) => tws::Message::text(payload),
        (Kind::Binary, _) | (Kind::Unspecified, Mode::Binary) => tws::Message::binary(payload),
        (Kind::Unspecified, Mode::Text) => {
            if std::str::from_utf8(&payload).is_err() {
                return Err(Error::NotText {
                    size: payload.len(),
                    message: message.clone(),
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
pub(crate) fn close(frame: Option<&CloseFrame>) -> Frame {
    let Some(frame) = frame else {
        return Frame(tws::Message::close(
            Some(tws::CloseCode::NORMAL_CLOSURE),
            "",
        ));
    };
    // `CloseFrame::new` accepted only codes a client may send; one the
    // engine refused all the same is sent as a normal closure, never a
    // panic.
    let code = tws::CloseCode::try_from(frame.code()).unwrap_or(tws::CloseCode::NORMAL_CLOSURE);
    Frame(tws::Message::close(Some(code), frame.reason()))
}

/// The close frame for an incoming message over the limit (1009).
fn too_big(max: usize) -> Frame {
    Frame(tws::Message::close(
        Some(tws::CloseCode::MESSAGE_TOO_BIG),
        &format!("max length: {max}"),
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
            message: None,
        },
        tws::Error::Protocol(e) => Error::Protocol {
            source: Arc::new(e),
        },
        tws::Error::AlreadyClosed => Error::ConnectionLost(Arc::new(io::Error::new(
            io::ErrorKind::NotConnected,
            "connection already closed",
        ))),
        other => Error::Protocol {
            source: Arc::new(other),
        },
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
    fn a_tls_answer_to_a_plain_request_says_to_use_wss() {
        let parse_error =
            || tws::Error::Upgrade(tws::upgrade::Error::Parsing(httparse::Error::Version));
        let alert = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32];
        let error = handshake_error(parse_error(), &alert, &|_| true, false);
        assert!(error.to_string().contains("use a wss:// URL"), "{error}");
        let error = handshake_error(parse_error(), b"garbage", &|_| true, false);
        assert!(!error.to_string().contains("wss://"), "{error}");
        let eof = tws::Error::Io(io::ErrorKind::UnexpectedEof.into());
        let error = handshake_error(eof, b"", &|_| true, false);
        assert!(
            error.to_string().contains("if it expects TLS, use wss://"),
            "{error}"
        );
        assert!(error.is_retryable());
        let reset = tws::Error::Io(io::ErrorKind::ConnectionReset.into());
        let error = handshake_error(reset, b"", &|_| true, true);
        assert!(
            error.to_string().contains("the server may have refused it"),
            "{error}"
        );
        assert!(error.is_retryable());
    }

    #[test]
    fn a_rejections_reason_is_the_first_line_of_its_body() {
        let answer = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n\n  no such feed: /v2  \nmore\n";
        assert_eq!(
            first_line_of_body(answer).as_deref(),
            Some("no such feed: /v2")
        );
        assert_eq!(first_line_of_body(b"HTTP/1.1 404 Not Found\r\n\r\n"), None);
        let long = [b"HTTP/1.1 500 Oops\r\n\r\n".as_slice(), &[b'x'; 1000]].concat();
        assert_eq!(first_line_of_body(&long).map(|l| l.len()), Some(BODY_SHOWN));
    }

    #[test]
    fn text_mode_refuses_invalid_utf8() {
        let bytes = Message::bytes(vec![0xff, 0xfe]);
        assert!(matches!(
            outgoing(&bytes, Mode::Text, 100),
            Err(Error::NotText { size: 2, .. })
        ));
        assert!(outgoing(&bytes, Mode::Binary, 100).is_ok_and(|f| f.0.is_binary()));
        let text = Message::bytes(&b"ok"[..]);
        assert!(outgoing(&text, Mode::Text, 100).is_ok_and(|f| f.0.is_text()));
        assert!(outgoing(&Message::text("t"), Mode::Binary, 100).is_ok_and(|f| f.0.is_text()));
    }

    #[test]
    fn oversized_messages_are_refused() {
        let big = Message::binary(vec![0u8; 11]);
        assert!(matches!(
            outgoing(&big, Mode::Binary, 10),
            Err(Error::MessageTooLarge {
                direction: Direction::Outgoing,
                size: 11,
                max: 10,
                message: Some(_),
            })
        ));
    }

    #[test]
    fn repeated_headers_become_one_line_with_every_value() {
        let mut headers = HeaderMap::new();
        headers.append("cookie", HeaderValue::from_static("a=1"));
        headers.append("cookie", HeaderValue::from_static("b=2"));
        headers.append("accept-language", HeaderValue::from_static("en"));
        headers.append("accept-language", HeaderValue::from_static("fr"));
        headers.append("x-single", HeaderValue::from_static("one"));
        let lines: Vec<(String, String)> = one_line_per_name(&headers)
            .expect("joinable")
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.to_str().expect("ASCII").to_owned()))
            .collect();
        assert_eq!(
            lines,
            [
                ("cookie".to_owned(), "a=1; b=2".to_owned()),
                ("accept-language".to_owned(), "en, fr".to_owned()),
                ("x-single".to_owned(), "one".to_owned()),
            ]
        );
    }
}
