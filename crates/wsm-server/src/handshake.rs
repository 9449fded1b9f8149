//! The HTTP/1.1 upgrade request, read and answered by hand.
//!
//! tokio-websockets can do the whole upgrade (`ServerBuilder::accept`), but it
//! only ever answers `101` or `400` and does not hand back the request when it
//! fails. Tests need the request headers of every attempt (did the client send
//! its token again after a 401?) and arbitrary refusals (429 with
//! `Retry-After`), so this module parses the request with `httparse`,
//! computes `Sec-WebSocket-Accept` itself and builds the responses; the socket
//! is then given to `ServerBuilder::serve`.
//!
//! Parsing is pure (bytes in, [`Parsed`] out) so it is tested without sockets.

use std::io;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use bytes::BytesMut;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::config::Rejection;

/// Largest upgrade request accepted, headers included. A request still
/// incomplete at this size gets `400 Bad Request`.
pub(crate) const MAX_REQUEST_SIZE: usize = 16 * 1024;

/// Most headers an upgrade request may carry.
const MAX_HEADERS: usize = 64;

/// The GUID that RFC 6455 appends to the client's key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The answer to a malformed or invalid upgrade request.
pub(crate) const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// A complete HTTP request, whether or not it is a valid WebSocket upgrade.
#[derive(Debug)]
pub(crate) struct Request {
    /// All request headers, repeated ones included, in order.
    pub(crate) headers: HeaderMap,
    /// The `Sec-WebSocket-Accept` value to answer with, or why the request is
    /// not a valid WebSocket upgrade.
    pub(crate) upgrade: Result<String, &'static str>,
}

/// What the bytes received so far hold.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// A whole request, `len` bytes long; anything after it is WebSocket data.
    Complete {
        /// The request.
        request: Request,
        /// Its length in bytes, up to and including the blank line.
        len: usize,
    },
    /// Not a whole request yet: read more.
    Partial,
}

/// Parses the start of `buf` as an HTTP request.
///
/// # Errors
///
/// Returns why `buf` is not HTTP at all (the caller answers 400 without
/// recording anything).
pub(crate) fn parse(buf: &[u8]) -> Result<Parsed, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err("too many headers"),
        Err(_) => return Err("not an HTTP request"),
    };

    let mut map = HeaderMap::with_capacity(request.headers.len());
    for header in request.headers.iter() {
        let name =
            HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| "invalid header name")?;
        let value = HeaderValue::from_bytes(header.value).map_err(|_| "invalid header value")?;
        map.append(name, value);
    }

    let upgrade = if request.method != Some("GET") {
        Err("method is not GET")
    } else if request.version != Some(1) {
        Err("not HTTP/1.1")
    } else {
        check_upgrade(&map)
    };
    Ok(Parsed::Complete {
        request: Request {
            headers: map,
            upgrade,
        },
        len,
    })
}

/// Checks the headers RFC 6455 section 4.2.1 requires and returns the
/// `Sec-WebSocket-Accept` value.
fn check_upgrade(headers: &HeaderMap) -> Result<String, &'static str> {
    if !has_token(headers, &http::header::UPGRADE, "websocket") {
        return Err("Upgrade does not name websocket");
    }
    if !has_token(headers, &http::header::CONNECTION, "upgrade") {
        return Err("Connection does not name upgrade");
    }
    if headers
        .get(http::header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err("Sec-WebSocket-Version is not 13");
    }
    let key = headers
        .get(http::header::SEC_WEBSOCKET_KEY)
        .ok_or("Sec-WebSocket-Key is missing")?
        .as_bytes();
    match STANDARD.decode(key) {
        Ok(nonce) if nonce.len() == 16 => Ok(accept_key(key)),
        _ => Err("Sec-WebSocket-Key is not 16 bytes in base64"),
    }
}

/// Whether any `name` header holds `token` in its comma-separated list,
/// ignoring ASCII case.
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`:
/// base64 of the SHA-1 of the key followed by the RFC's GUID.
pub(crate) fn accept_key(key: &[u8]) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key);
    sha1.update(GUID);
    STANDARD.encode(sha1.digest().bytes())
}

/// The `101 Switching Protocols` response, with the chosen subprotocol.
pub(crate) fn switching_protocols(accept: &str, protocol: Option<&str>) -> Vec<u8> {
    let protocol = protocol
        .filter(|p| !p.contains(['\r', '\n']))
        .map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{protocol}\r\n"
    )
    .into_bytes()
}

/// The first subprotocol the client offers that the server speaks.
pub(crate) fn choose_protocol(headers: &HeaderMap, supported: &[String]) -> Option<String> {
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .find(|offered| supported.iter().any(|s| s == offered))
        .map(str::to_owned)
}

/// The response refusing an upgrade as `rejection` says.
pub(crate) fn rejection_response(rejection: &Rejection) -> Vec<u8> {
    let reason = StatusCode::from_u16(rejection.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut out = format!("HTTP/1.1 {:03} {reason}\r\n", rejection.status);
    let mut has_length = false;
    let mut has_connection = false;
    for (name, value) in &rejection.headers {
        let splits = |s: &str| s.contains(['\r', '\n']);
        if splits(name) || splits(value) {
            tracing::warn!(name, "skipping rejection header containing CR or LF");
            continue;
        }
        has_length |= name.eq_ignore_ascii_case("content-length");
        has_connection |= name.eq_ignore_ascii_case("connection");
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    if !has_length {
        out.push_str("Content-Length: 0\r\n");
    }
    if !has_connection {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// What the client sent before the server answers.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A complete request, and the bytes read past its end.
    Request(Request, BytesMut),
    /// Not HTTP, or larger than [`MAX_REQUEST_SIZE`]: answer 400.
    Malformed(&'static str),
    /// The client closed before sending a whole request.
    Closed,
}

/// Reads one HTTP request from `stream`.
///
/// Reads in chunks, so the result carries whatever followed the request in
/// the last chunk (the start of the WebSocket stream).
///
/// # Errors
///
/// Returns the error of a failed read.
pub(crate) async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Incoming> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if !buf.is_empty() {
            match parse(&buf) {
                Ok(Parsed::Complete { request, len }) => {
                    let leftover = buf.split_off(len);
                    return Ok(Incoming::Request(request, leftover));
                }
                Ok(Parsed::Partial) => {}
                Err(why) => return Ok(Incoming::Malformed(why)),
            }
        }
        if buf.len() >= MAX_REQUEST_SIZE {
            return Ok(Incoming::Malformed("request larger than 16 KiB"));
        }
        // Never read far past the limit: a reserve of up to 4 KiB at a time.
        buf.reserve((MAX_REQUEST_SIZE - buf.len()).min(4096));
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(Incoming::Closed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_offered_subprotocol_the_server_speaks_is_chosen() {
        let mut headers = HeaderMap::new();
        headers.append("sec-websocket-protocol", HeaderValue::from_static("b, x"));
        headers.append("sec-websocket-protocol", HeaderValue::from_static("a"));
        let supported = ["a".to_owned(), "b".to_owned()];
        assert_eq!(choose_protocol(&headers, &supported).as_deref(), Some("b"));
        assert_eq!(choose_protocol(&headers, &[]), None);
        let answer = String::from_utf8(switching_protocols("k", Some("b"))).expect("ASCII");
        assert!(
            answer.contains("\r\nSec-WebSocket-Protocol: b\r\n\r\n"),
            "{answer}"
        );
    }

    const REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\nX-Token: a\r\nX-Token: b\r\n\r\n";

    fn complete(buf: &[u8]) -> (Request, usize) {
        match parse(buf) {
            Ok(Parsed::Complete { request, len }) => (request, len),
            other => panic!("expected a complete request, got {other:?}"),
        }
    }

    #[test]
    fn accept_key_matches_rfc6455_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn valid_upgrade_keeps_repeated_headers_and_reports_length() {
        let mut bytes = REQUEST.as_bytes().to_vec();
        bytes.extend_from_slice(b"\x81\x80");
        let (request, len) = complete(&bytes);
        assert_eq!(len, REQUEST.len());
        assert_eq!(
            request.upgrade.as_deref(),
            Ok("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        assert_eq!(request.headers.get_all("x-token").iter().count(), 2);
    }

    #[test]
    fn partial_request_asks_for_more() {
        assert!(matches!(
            parse(&REQUEST.as_bytes()[..20]),
            Ok(Parsed::Partial)
        ));
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(parse(b"\x00\x01\x02 nonsense\r\n\r\n").is_err());
    }

    #[test]
    fn missing_key_or_wrong_version_is_not_an_upgrade() {
        let no_key = REQUEST.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
        assert!(complete(no_key.as_bytes()).0.upgrade.is_err());
        let old = REQUEST.replace("Version: 13", "Version: 8");
        assert!(complete(old.as_bytes()).0.upgrade.is_err());
        let post = REQUEST.replace("GET", "POST");
        assert!(complete(post.as_bytes()).0.upgrade.is_err());
    }

    #[test]
    fn rejection_has_status_line_headers_and_empty_body() {
        let text = String::from_utf8(rejection_response(&Rejection::too_many_requests(1))).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn rejection_skips_headers_that_would_split_the_response() {
        let r = Rejection::new(401).header("X-Evil", "a\r\nSet-Cookie: x");
        let text = String::from_utf8(rejection_response(&r)).unwrap();
        assert!(!text.contains("X-Evil"));
        assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
    }

    #[tokio::test]
    async fn read_request_returns_bytes_past_the_request() {
        let mut bytes = REQUEST.as_bytes().to_vec();
        bytes.extend_from_slice(b"\x81\x80abcd");
        let mut stream: &[u8] = &bytes;
        match read_request(&mut stream).await.unwrap() {
            Incoming::Request(_, leftover) => assert_eq!(&leftover[..], b"\x81\x80abcd"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn oversized_request_is_malformed() {
        let mut bytes = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        bytes.resize(MAX_REQUEST_SIZE + 100, b'a');
        let mut stream: &[u8] = &bytes;
        assert!(matches!(
            read_request(&mut stream).await.unwrap(),
            Incoming::Malformed(_)
        ));
    }

    #[tokio::test]
    async fn early_eof_is_closed() {
        let mut stream: &[u8] = b"GET / HTTP/1.1\r\n";
        assert!(matches!(
            read_request(&mut stream).await.unwrap(),
            Incoming::Closed
        ));
    }
}
