//! tokio-websockets 0.13: the upgrade, sending, flushing and reading.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use futures_core::Stream as _;
use futures_sink::Sink;
use http::HeaderMap;
use tokio_websockets as tws;

use super::{
    Failure, Incoming, Out, Socket, disallowed, one_line_per_name, rejected, speaks_tls, too_big,
    upgrade_io_error,
};
use crate::{
    connection::{stream::Io, transport::Transport},
    settings::{Protocols, accept_unoffered},
    types::{Direction, Error, Kind, Message, Target, with_context},
};

/// The engine's stream over our transport.
pub(super) type Stream = tws::WebSocketStream<Transport>;

/// Queues a frame.
pub(super) fn send(stream: &mut Stream, frame: Out) -> Result<(), Error> {
    let mut stream = Pin::new(stream);
    // The engine's flush threshold is unlimited, so it is always ready
    // and `poll_ready` never waits: it is called to keep the `Sink`
    // contract, with a waker that is never needed.
    let mut cx = Context::from_waker(std::task::Waker::noop());
    if let Poll::Ready(Err(e)) = stream.as_mut().poll_ready(&mut cx) {
        return Err(connection_error(e));
    }
    stream.start_send(message(frame)).map_err(connection_error)
}

/// Writes what was queued.
pub(super) fn poll_flush(stream: &mut Stream, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
    Pin::new(stream).poll_flush(cx).map_err(connection_error)
}

/// The next frame (see [`Socket::poll_next`]).
pub(super) fn poll_next(
    stream: &mut Stream,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Incoming, Failure>>> {
    let item = ready!(Pin::new(&mut *stream).poll_next(cx));
    Poll::Ready(item.map(|frame| match frame {
        Ok(frame) if frame.is_text() && !ends_whole(frame.as_payload()) => Err(cut_text(stream)),
        Ok(frame) => Ok(incoming(frame)),
        Err(tws::Error::PayloadTooLong { len, max_len }) => {
            // The engine queues the 1009 itself for a single frame over
            // the limit, but not for a fragmented message that grew over
            // it. Queued here for both: refused, harmlessly, when the
            // engine's is already queued.
            let _ = send(stream, too_big(max_len));
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

/// The HTTP upgrade on an opened stream (see [`super::upgrade`]).
pub(super) async fn upgrade(
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
            Ok(Socket::Tws(Box::new(stream)))
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

fn handshake_error(
    error: tws::Error,
    answer: &[u8],
    retry_status: &(dyn Fn(u16) -> bool + Send + Sync),
    tls: bool,
) -> Error {
    match error {
        tws::Error::Upgrade(tws::upgrade::Error::DidNotSwitchProtocols(status)) => {
            rejected(status, answer, retry_status)
        }
        tws::Error::Io(e) => upgrade_io_error(e, answer, tls),
        other if !tls && speaks_tls(answer) => Error::Handshake {
            source: with_context("the server answered in TLS: use a wss:// URL", other),
        },
        other => Error::Handshake {
            source: Arc::new(other),
        },
    }
}

/// Fails the connection on a text message cut inside a character, with
/// the close frame the engine would have queued had it seen it (out of
/// line: it is never on the way of a message).
#[cold]
#[inline(never)]
fn cut_text(stream: &mut Stream) -> Failure {
    let queued = send(
        stream,
        Out::Close {
            code: 1007,
            reason: "invalid utf8".to_owned(),
        },
    );
    Failure {
        error: connection_error(tws::Error::Protocol(tws::proto::ProtocolError::InvalidUtf8)),
        close_queued: queued.is_ok(),
    }
}

/// Whether a text message the engine handed over ends with a whole
/// character.
///
/// tokio-websockets 0.13.3 checks text as UTF-8 while it reads it, but it
/// does not check the end of a fragmented message whose final fragment is
/// empty: such a message may end inside a character, and the next message
/// is then read as that character's rest (found by fuzzing,
/// `fuzz/regressions/machine/tws-utf8-*`). Every other byte it does check.
/// A message that ends inside a character fails the connection here, so
/// the next message read on a connection always starts from a clean
/// state: checking the end of each is all that is left to do, and it costs
/// a few instructions rather than a second pass over the text.
fn ends_whole(text: &[u8]) -> bool {
    match text.last() {
        // Empty, or ending in ASCII (a JSON feed's `}`): whole.
        None => return true,
        Some(&last) if last.is_ascii() => return true,
        Some(_) => {}
    }
    // A character is at most 4 bytes: the last one starts in the last 4.
    let tail = &text[text.len().saturating_sub(4)..];
    match tail.iter().rposition(|byte| byte & 0xc0 != 0x80) {
        Some(start) => std::str::from_utf8(&tail[start..]).is_ok(),
        // Empty, or only continuation bytes (which the engine would not
        // have let through): whole only when empty.
        None => tail.is_empty(),
    }
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
        Incoming::Pong(Bytes::from(message.into_payload()))
    }
}

/// The engine's message for a frame to send.
fn message(frame: Out) -> tws::Message {
    match frame {
        Out::Text(payload) => tws::Message::text(payload),
        Out::Binary(payload) => tws::Message::binary(payload),
        Out::Ping(payload) => tws::Message::ping(payload),
        Out::Close { code, reason } => {
            let code = tws::CloseCode::try_from(code).unwrap_or(tws::CloseCode::NORMAL_CLOSURE);
            tws::Message::close(Some(code), &reason)
        }
    }
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
    fn a_text_ends_whole_exactly_when_its_last_character_is_complete() {
        let text = "a\u{e9}\u{20ac}\u{1f600}z\u{7ff}\u{ffff}\u{10ffff}";
        let bytes = text.as_bytes();
        for end in 0..=bytes.len() {
            // Each prefix is what the engine lets through: valid up to a
            // possibly unfinished last character.
            assert_eq!(
                ends_whole(&bytes[..end]),
                text.is_char_boundary(end),
                "the first {end} bytes"
            );
        }
        assert!(!ends_whole(&[0x80, 0x80]));
        assert!(!ends_whole(&[b'a', 0xe7]));
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
}
