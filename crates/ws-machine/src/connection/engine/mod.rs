//! The only module that knows the WebSocket engines.
//!
//! It runs the HTTP upgrade over an opened stream, converts messages and
//! errors between the engines' types and the crate's, and nothing else, so
//! the rest of the crate sees one [`Socket`] whatever engine is inside.
//!
//! Two engines, chosen per connection by whether it offers compression
//! (`docs/design.md`, "Compression: two engines", has the measurements
//! behind the choice):
//! - `tws`: tokio-websockets 0.13, for connections without compression: the
//!   least memory per idle connection and the fastest path measured here.
//! - `yawc` (feature `deflate`): yawc 0.5, which has permessage-deflate
//!   (RFC 7692), for connections that offer it. A server that declines is
//!   then spoken to uncompressed, on yawc all the same (the choice is made
//!   before the server answers).

mod tws;
#[cfg(feature = "deflate")]
mod yawc;

use std::{
    io,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;

use super::{stream::Io, tls::final_tls_error};
use crate::{
    settings::Protocols,
    types::{CloseFrame, Deflate, Direction, Error, Kind, Message, Mode, Target, with_context},
};

/// An open WebSocket connection, seen through what the machine needs:
/// hand over frames, flush, read.
///
/// The engine's stream is boxed: the connection attempt builds it and the
/// connected phase uses it, and a box moves between them as a pointer.
pub(crate) enum Socket {
    Tws(Box<tws::Stream>),
    #[cfg(feature = "deflate")]
    Yawc(Box<yawc::Stream>),
}

/// A frame ready to be handed to a [`Socket`], in no engine's type yet.
#[derive(Debug)]
pub(crate) struct Frame(Out);

#[derive(Debug)]
enum Out {
    Text(Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Close { code: u16, reason: String },
}

/// Why reading failed, and whether a close frame saying so waits to be
/// flushed before the connection is dropped.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: Error,
    pub(crate) close_queued: bool,
}

/// What the engine produced when read.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A data message for the caller.
    Message(Message),
    /// A ping: proof of life; the engine queued the pong that answers it.
    Ping,
    /// A pong: proof of life; its payload may say when the ping it
    /// answers was sent.
    Pong(Bytes),
    /// The server's close frame; the engine queued the reply.
    Close { code: u16, reason: String },
}

impl Socket {
    /// Queues a frame; [`Socket::poll_flush`] writes it.
    pub(crate) fn send(&mut self, frame: Frame) -> Result<(), Error> {
        match self {
            Self::Tws(stream) => tws::send(stream, frame.0),
            #[cfg(feature = "deflate")]
            Self::Yawc(stream) => stream.send(frame.0),
        }
    }

    /// Writes what was queued (the engine's own frames too: a pong, a close
    /// reply).
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match self {
            Self::Tws(stream) => tws::poll_flush(stream, cx),
            #[cfg(feature = "deflate")]
            Self::Yawc(stream) => stream.poll_flush(cx),
        }
    }

    /// The next frame; `None` once the connection has ended. When the
    /// server broke the protocol or sent too large a message, a close frame
    /// saying so (1002, 1007 or 1009) is queued for the next flush.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Incoming, Failure>>> {
        match self {
            Self::Tws(stream) => tws::poll_next(stream, cx),
            #[cfg(feature = "deflate")]
            Self::Yawc(stream) => stream.poll_next(cx),
        }
    }

    /// When the socket last accepted a byte.
    pub(crate) fn last_write(&self) -> Option<Instant> {
        match self {
            Self::Tws(stream) => stream.get_ref().last_write(),
            #[cfg(feature = "deflate")]
            Self::Yawc(stream) => stream.last_write(),
        }
    }

    /// The subprotocol the server chose, once (kept in the socket's box
    /// until then, so it costs the driver's task nothing).
    pub(crate) fn take_protocol(&mut self) -> Option<Arc<str>> {
        match self {
            Self::Tws(stream) => stream.get_mut().take_protocol(),
            #[cfg(feature = "deflate")]
            Self::Yawc(stream) => stream.take_protocol(),
        }
    }

    /// The permessage-deflate parameters the server agreed to; `None`
    /// without compression.
    pub(crate) fn compression(&self) -> Option<Deflate> {
        match self {
            Self::Tws(_) => None,
            #[cfg(feature = "deflate")]
            Self::Yawc(stream) => stream.compression(),
        }
    }
}

/// The HTTP upgrade on an opened stream, offering `protocols` and
/// `compression` if any. The subprotocol the server chose waits in the
/// socket ([`Socket::take_protocol`]), and so does the compression it agreed
/// to ([`Socket::compression`]).
pub(crate) async fn upgrade(
    io: Box<dyn Io>,
    target: &Target,
    headers: &HeaderMap,
    max_message_size: usize,
    retry_status: &(dyn Fn(u16) -> bool + Send + Sync),
    protocols: Option<&Protocols>,
    compression: Option<&Deflate>,
) -> Result<Socket, Error> {
    match compression {
        None => {
            tws::upgrade(
                io,
                target,
                headers,
                max_message_size,
                retry_status,
                protocols,
            )
            .await
        }
        #[cfg(feature = "deflate")]
        Some(offer) => {
            tracing::debug!(%offer, "offering compression (engine: yawc)");
            yawc::upgrade(
                io,
                target,
                headers,
                max_message_size,
                retry_status,
                protocols,
                offer,
            )
            .await
        }
        // The builder refuses compression without the feature.
        #[cfg(not(feature = "deflate"))]
        Some(_) => Err(Error::InvalidConfig {
            option: "compression",
            reason:
                "this build of ws-machine has no permessage-deflate: enable its `deflate` feature"
                    .into(),
        }),
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

/// A rejected upgrade (`status` other than 101), with what was recorded of
/// the answer.
fn rejected(
    status: u16,
    answer: &[u8],
    retry_status: &(dyn Fn(u16) -> bool + Send + Sync),
) -> Error {
    Error::HandshakeRejected {
        status,
        retry_after: retry_after(answer),
        retryable: retry_status(status),
        body: first_line_of_body(answer),
    }
}

/// An I/O failure during the upgrade, named as well as the answer allows.
fn upgrade_io_error(e: io::Error, answer: &[u8], tls: bool) -> Error {
    // A server refusing the client's certificate says so with an alert
    // that arrives here under TLS 1.3: final.
    match final_tls_error(e) {
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
    let value = header(answer, "retry-after")?;
    let seconds: u64 = value.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// The value of header `name` in a recorded answer, if it parses.
fn header(answer: &[u8], name: &str) -> Option<String> {
    // As many as hyper reads under yawc, whose answers come here.
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut response = httparse::Response::new(&mut headers);
    response.parse(answer).ok()?;
    let value = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))?
        .value;
    Some(String::from_utf8_lossy(value).into_owned())
}

/// Most characters of a rejection's body shown in its error.
const BODY_SHOWN: usize = 200;

/// The first non-empty line of a rejected upgrade's body, at most
/// [`BODY_SHOWN`] characters (of what was recorded of the answer). Of an
/// HTML body (a proxy's error page, such as nginx's 502), the first line
/// of its text, tags left out: `502 Bad Gateway` rather than `<html>`.
fn first_line_of_body(answer: &[u8]) -> Option<String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head) = response.parse(answer).ok()? else {
        return None;
    };
    let declared_html = response.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("content-type")
            && String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("html")
    });
    let body = String::from_utf8_lossy(answer.get(head..)?);
    let start = body
        .trim_start()
        .get(..9)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let body = if declared_html || start.starts_with("<!doctype") || start.starts_with("<html") {
        without_tags(&body)
    } else {
        body.into_owned()
    };
    let line = body.lines().map(str::trim).find(|line| !line.is_empty())?;
    Some(line.chars().take(BODY_SHOWN).collect())
}

/// `html` without its tags (`<...>`) and without the content of its
/// `script` and `style` elements, line breaks kept (entities are left as
/// they are).
fn without_tags(html: &str) -> String {
    // The same byte offsets as `html`: only ASCII letters change.
    let lower = html.to_ascii_lowercase();
    let mut text = String::with_capacity(html.len());
    let mut at = 0;
    while let Some(open) = html[at..].find('<').map(|i| at + i) {
        text.push_str(&html[at..open]);
        // An element whose content is not text is skipped up to its end tag.
        let end_tag = ["script", "style"]
            .iter()
            .find(|name| lower[open + 1..].starts_with(*name))
            .and_then(|name| lower[open..].find(&format!("</{name}")))
            .map_or(open, |i| open + i);
        match html[end_tag..].find('>') {
            Some(close) => at = end_tag + close + 1,
            // A tag that never closes: the rest is inside it.
            None => return text,
        }
    }
    text.push_str(&html[at..]);
    text
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
        (Kind::Text, _) => Out::Text(payload),
        (Kind::Binary, _) | (Kind::Unspecified, Mode::Binary) => Out::Binary(payload),
        (Kind::Unspecified, Mode::Text) => {
            if std::str::from_utf8(&payload).is_err() {
                return Err(Error::NotText {
                    size: payload.len(),
                    message: message.clone(),
                });
            }
            Out::Text(payload)
        }
    };
    Ok(Frame(frame))
}

/// A ping frame with `payload` (which the pong echoes).
pub(crate) fn ping(payload: &[u8]) -> Frame {
    Frame(Out::Ping(Bytes::copy_from_slice(payload)))
}

/// A close frame: the caller's code and reason, or a normal closure.
/// (`CloseFrame::new` accepted only codes a client may send; an engine that
/// refuses one all the same sends a normal closure, never panics.)
pub(crate) fn close(frame: Option<&CloseFrame>) -> Frame {
    Frame(frame.map_or_else(
        || Out::Close {
            code: 1000,
            reason: String::new(),
        },
        |frame| Out::Close {
            code: frame.code(),
            reason: frame.reason().to_owned(),
        },
    ))
}

/// The close frame for an incoming message over the limit (1009).
fn too_big(max: usize) -> Out {
    Out::Close {
        code: 1009,
        reason: format!("max length: {max}"),
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
    fn a_rejections_reason_is_the_first_line_of_its_body() {
        let answer = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n\n  no such feed: /v2  \nmore\n";
        assert_eq!(
            first_line_of_body(answer).as_deref(),
            Some("no such feed: /v2")
        );
        assert_eq!(first_line_of_body(b"HTTP/1.1 404 Not Found\r\n\r\n"), None);
        let long = [b"HTTP/1.1 500 Oops\r\n\r\n".as_slice(), &[b'x'; 1000]].concat();
        assert_eq!(first_line_of_body(&long).map(|l| l.len()), Some(BODY_SHOWN));
        // A plain text keeps its angle brackets.
        let plain = b"HTTP/1.1 400 Bad Request\r\n\r\nexpected <token> in the query\n";
        assert_eq!(
            first_line_of_body(plain).as_deref(),
            Some("expected <token> in the query")
        );
    }

    #[test]
    fn an_html_rejection_is_shown_by_its_text() {
        // nginx's page when the server behind it is down.
        let nginx = b"HTTP/1.1 502 Bad Gateway\r\nServer: nginx/1.22.1\r\n\
            Content-Type: text/html\r\n\r\n<html>\r\n\
            <head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
            <center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n";
        assert_eq!(
            first_line_of_body(nginx).as_deref(),
            Some("502 Bad Gateway")
        );
        // No Content-Type, but HTML all the same.
        let bare = b"HTTP/1.1 403 Forbidden\r\n\r\n  <!DOCTYPE html>\n<p>Token <b>expired</b></p>";
        assert_eq!(first_line_of_body(bare).as_deref(), Some("Token expired"));
        // Scripts and styles are not text; a plain text may start with `<`.
        let scripted = b"HTTP/1.1 503 Busy\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
            <html><head><style>\nbody { color: red }\n</style><script>\nvar x = 1 < 2;\n</script>\
            </head>\n<body>Try again later</body></html>";
        assert_eq!(
            first_line_of_body(scripted).as_deref(),
            Some("Try again later")
        );
        let angled = b"HTTP/1.1 400 Bad Request\r\n\r\n<token> is missing\n";
        assert_eq!(
            first_line_of_body(angled).as_deref(),
            Some("<token> is missing")
        );
        // Nothing but tags: nothing to show.
        let empty =
            b"HTTP/1.1 500 Oops\r\nContent-Type: text/html\r\n\r\n<html><body></body></html>";
        assert_eq!(first_line_of_body(empty), None);
    }

    #[test]
    fn text_mode_refuses_invalid_utf8() {
        let bytes = Message::bytes(vec![0xff, 0xfe]);
        assert!(matches!(
            outgoing(&bytes, Mode::Text, 100),
            Err(Error::NotText { size: 2, .. })
        ));
        assert!(outgoing(&bytes, Mode::Binary, 100).is_ok_and(|f| matches!(f.0, Out::Binary(_))));
        let text = Message::bytes(&b"ok"[..]);
        assert!(outgoing(&text, Mode::Text, 100).is_ok_and(|f| matches!(f.0, Out::Text(_))));
        assert!(
            outgoing(&Message::text("t"), Mode::Binary, 100)
                .is_ok_and(|f| matches!(f.0, Out::Text(_)))
        );
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
