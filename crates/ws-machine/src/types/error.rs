//! The one error type of the crate.
//!
//! Every variant says what failed and what the caller can do about it. The
//! machine needs to know one more thing about each error: whether trying again
//! can help. [`Error::is_retryable`] answers that, and the documentation of
//! each variant repeats it, so callers never have to guess which errors end
//! the machine.
//!
//! Errors are `Clone` (causes are shared behind an [`Arc`]) because the same
//! error is both reported on the status channel and kept as the cause of a
//! final [`Error::GaveUp`].
//!
//! Causes are kept, not flattened to text: [`std::error::Error::source`]
//! leads to the operating system's, the TLS library's or the WebSocket
//! engine's own error. The engine's error types are not part of this crate's
//! API, so those causes are typed as `dyn Error` (they can still be
//! downcast). Each message also includes its cause's text, so an error
//! printed alone (as in a [`Status`](crate::Status)) says everything; a
//! printer of the whole chain can skip a cause whose text the message
//! already contains.

use std::{error::Error as StdError, fmt, io, sync::Arc, time::Duration};

use super::message::Message;

/// A cause kept by an [`Error`]: any error, shared so that the error stays
/// cheap to clone.
pub type Cause = Arc<dyn StdError + Send + Sync + 'static>;

/// Everything that can go wrong in a [`Machine`](crate::Machine).
///
/// Three groups:
/// - **Configuration errors** ([`InvalidUrl`](Error::InvalidUrl),
///   [`InvalidHeader`](Error::InvalidHeader),
///   [`InvalidConfig`](Error::InvalidConfig), [`NoRuntime`](Error::NoRuntime),
///   and for the blocking machine [`InsideRuntime`](Error::InsideRuntime)
///   and [`RuntimeStart`](Error::RuntimeStart)) are returned by
///   [`Machine::new`](crate::Machine::new),
///   [`Builder::spawn`](crate::Builder::spawn) and
///   [`Builder::spawn_blocking`](crate::Builder::spawn_blocking); the
///   machine never starts, so
///   they can never turn into a loop of failing attempts. (The one exception
///   is a [`Builder::headers_fn`](crate::Builder::headers_fn) that returns a
///   header the handshake sets itself: a final `InvalidHeader` at run time.)
/// - **Connection errors** are reported in a [`Status`](crate::Status) with
///   [`State::Disconnected`](crate::State::Disconnected). Those for which
///   [`is_retryable`](Error::is_retryable) is true are followed by another
///   attempt; the others stop the machine.
/// - **Refused messages** ([`MessageTooLarge`](Error::MessageTooLarge) with
///   [`Direction::Outgoing`], [`NotText`](Error::NotText)) are reported on the
///   status channel without a change of state, with the message itself
///   ([`Error::refused_message`]); the connection carries on. Not
///   retryable: sent again unchanged, it would be refused again.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL cannot be used: it does not parse, its scheme is not `ws` or
    /// `wss`, or it has no host. Fix the URL; this is returned when the
    /// machine is built and never retried.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given, shown as [`redact_url`](crate::redact_url)
        /// shows it (a user name and password, and query values, replaced
        /// by `***`).
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A request header cannot be sent: its value is not valid in HTTP, or the
    /// WebSocket handshake sets it itself. Remove or fix the header; returned
    /// when the machine is built and never retried.
    #[error("invalid request header {name:?}: {reason}")]
    InvalidHeader {
        /// The header's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An option of the [`Builder`](crate::Builder) has a value the machine
    /// cannot work with (for example a zero capacity). Returned when the
    /// machine is built and never retried.
    #[error("invalid option `{option}`: {reason}")]
    InvalidConfig {
        /// The builder method whose value is wrong.
        option: &'static str,
        /// Why it is wrong and what would work.
        reason: String,
    },

    /// The machine was started outside a tokio runtime. Call
    /// [`Machine::new`](crate::Machine::new) from within one (for example in
    /// `#[tokio::main]`). Never retried.
    #[error("no tokio runtime: start the machine from inside a tokio runtime")]
    NoRuntime,

    /// The blocking machine ([`Builder::spawn_blocking`](crate::Builder::spawn_blocking))
    /// was started inside a tokio runtime (a task, `block_on`, or a thread
    /// of tokio's blocking pool), where its blocking calls would stall the
    /// runtime. In async code use the async machine
    /// ([`Builder::spawn`](crate::Builder::spawn)); or start the blocking one
    /// on a thread of your own, outside any runtime. Never retried.
    #[error(
        "the blocking machine cannot run inside a tokio runtime: use Builder::spawn there, or call Builder::spawn_blocking on a thread of your own, outside the runtime"
    )]
    InsideRuntime,

    /// The blocking machine could not start the runtime it runs on, or that
    /// runtime's thread: the system refused a thread or the runtime's I/O
    /// driver (out of threads, memory or file descriptors). Never retried.
    #[error(
        "cannot start the blocking machine's runtime thread: {0} (the system is out of threads, memory or file descriptors)"
    )]
    RuntimeStart(#[source] Arc<io::Error>),

    /// The byte stream to the server could not be opened: the host name could
    /// not be resolved, the TCP connection was refused or the host is
    /// unreachable, or the caller's dialer
    /// ([`Builder::dialer`](crate::Builder::dialer)) failed. Retried: the
    /// server may come back.
    #[error("cannot connect to {host}:{port}: {source}")]
    Connect {
        /// The host that was dialled.
        host: String,
        /// The port that was dialled.
        port: u16,
        /// The operating system's reason.
        #[source]
        source: Arc<io::Error>,
    },

    /// Connecting (TCP, TLS and the HTTP upgrade together) took longer than
    /// the handshake timeout. Retried.
    #[error("handshake did not complete within {0:?}")]
    HandshakeTimeout(Duration),

    /// The server answered the upgrade request with an HTTP status other than
    /// 101. By default 5xx, 408 and 429 are retried (honouring `Retry-After`)
    /// and every other status is final: a 401, 403 or 404 will not change by
    /// asking again. See [`Builder::retry_status`](crate::Builder::retry_status).
    #[error("{}", rejection(*.status, .body.as_deref(), *.retry_after, *.retryable))]
    HandshakeRejected {
        /// The HTTP status code of the answer.
        status: u16,
        /// The server's `Retry-After`, in seconds, if it sent one.
        retry_after: Option<Duration>,
        /// Whether the machine will try again (decided by the retry policy).
        retryable: bool,
        /// The first line of the answer's body, at most 200 characters, if it
        /// had one (servers often say there why they refused); of an HTML
        /// body, the first line of its text (`502 Bad Gateway`, not
        /// `<html>`).
        body: Option<String>,
    },

    /// The handshake did not complete: the server's answer to the upgrade
    /// request was not a valid WebSocket handshake (not HTTP, a wrong
    /// `Sec-WebSocket-Accept`, missing headers), the connection broke during
    /// it, or the TLS handshake failed for a reason that may pass. Usually the
    /// URL points at something that is not a WebSocket endpoint. Retried.
    #[error("invalid WebSocket handshake from the server: {source}")]
    Handshake {
        /// What went wrong: the engine's error, or an I/O error.
        #[source]
        source: Cause,
    },

    /// The TLS handshake failed for a reason that retrying will not fix:
    /// [`problem`](TlsProblem) says which (an untrusted or expired
    /// certificate, a name mismatch, a client certificate the server
    /// refused) and what to change. Final.
    #[error("TLS failed: {problem}: {source}")]
    Tls {
        /// What failed, in words that say what to do.
        problem: TlsProblem,
        /// The TLS library's error (a [`rustls::Error`](crate::rustls::Error)
        /// for certificate problems).
        #[source]
        source: Cause,
    },

    /// The proxy ([`Builder::proxy`](crate::Builder::proxy)) could not be
    /// reached, or the connection to it broke before the tunnel was open.
    /// Retried: the proxy may come back. The proxy is named without its
    /// credentials.
    #[error("cannot reach proxy {proxy}: {source}")]
    Proxy {
        /// The proxy, as `scheme://host:port`.
        proxy: Box<str>,
        /// The operating system's reason.
        #[source]
        source: Arc<io::Error>,
    },

    /// The proxy answered but did not open the tunnel: an HTTP proxy's
    /// status other than 2xx, or a SOCKS5 failure. Rejected credentials
    /// (HTTP 407, a failed SOCKS5 login) and refusals that asking again will
    /// not change (403, a SOCKS5 rule) are final; a proxy that could not
    /// reach the server (HTTP 5xx, SOCKS5 "connection refused" or
    /// "unreachable") is retried.
    #[error("proxy {proxy} refused the tunnel: {answer}{}", proxy_final_note(*.retryable))]
    ProxyRefused {
        /// The proxy, as `scheme://host:port`.
        proxy: Box<str>,
        /// What it said: `HTTP 407 Proxy Authentication Required`, or the
        /// SOCKS5 failure.
        answer: Box<str>,
        /// Whether the machine will try again.
        retryable: bool,
        /// The SOCKS library's error, for a SOCKS5 proxy.
        #[source]
        source: Option<Cause>,
    },

    /// The server's answer about subprotocols breaks the negotiation: it
    /// chose one that was not offered ([`Builder::protocols`](crate::Builder::protocols)),
    /// or none while one is required
    /// ([`Builder::require_protocol`](crate::Builder::require_protocol)).
    /// Final: the server does not speak what the client offers.
    #[error("{}", subprotocol_message(.chosen.as_deref(), .offered))]
    Subprotocol {
        /// What the server chose (its `Sec-WebSocket-Protocol`), if anything.
        chosen: Option<String>,
        /// What the client offered, in order.
        offered: Vec<String>,
    },

    /// The server closed the connection with a close frame. Retried,
    /// unless [`Builder::final_close_codes`](crate::Builder::final_close_codes)
    /// says this code is final.
    #[error("server closed the connection (code {code}{}){}", reason_note(.reason), if *.retryable { "" } else { " (not retried: this code is final)" })]
    Closed {
        /// The close code the server sent (1005 when it sent none).
        code: u16,
        /// The reason the server gave, possibly empty.
        reason: String,
        /// Whether the machine will connect again (decided by the close
        /// code policy).
        retryable: bool,
    },

    /// The function that computes the request headers
    /// ([`Builder::try_headers_fn`](crate::Builder::try_headers_fn)) failed:
    /// the attempt is not made. Retried with the usual backoff.
    #[error("cannot compute the request headers: {source}")]
    Headers {
        /// The function's error.
        #[source]
        source: Cause,
    },

    /// The connection broke: reset, or ended without a close frame. Retried.
    #[error("connection lost: {0}")]
    ConnectionLost(#[source] Arc<io::Error>),

    /// No frame (pong or anything else) arrived within the pong timeout after
    /// a ping: the peer is dead or frozen, even if TCP is still open. Retried.
    #[error("no answer to ping within {0:?}: peer is not responding")]
    PongTimeout(Duration),

    /// No reply to the application-level heartbeat
    /// ([`Builder::heartbeat`](crate::Builder::heartbeat)) arrived within
    /// the pong timeout: the server no longer answers, even if TCP is still
    /// open. Retried.
    #[error("no reply to the heartbeat within {0:?}: server is not responding")]
    HeartbeatTimeout(Duration),

    /// No received message made the connection ready
    /// ([`Builder::ready_when`](crate::Builder::ready_when)) within the
    /// ready timeout: the server did not accept the `on_connect` messages
    /// (an auth or a subscribe) in time. Retried, as a failed attempt (with
    /// the backoff).
    #[error(
        "the server did not say it is ready within {0:?}: check the on_connect messages and the ready_when matcher"
    )]
    ReadyTimeout(Duration),

    /// No data message arrived within the data timeout
    /// ([`Builder::data_timeout`](crate::Builder::data_timeout)): the feed
    /// is stale, even if the server answers pings. Retried: the connection
    /// is replaced.
    #[error("no data message within {0:?}: the feed is stale")]
    DataTimeout(Duration),

    /// Writing to the connection made no progress for the write timeout: the
    /// peer stopped reading. Retried; the messages being written are written
    /// again on the next connection.
    #[error("write made no progress within {0:?}: peer stopped reading")]
    WriteTimeout(Duration),

    /// The server broke the WebSocket protocol (a garbage frame, invalid
    /// UTF-8 in a text message, a masked frame, ...). The connection is
    /// closed. Retried.
    #[error("server broke the WebSocket protocol: {source}")]
    Protocol {
        /// The engine's description of the violation.
        #[source]
        source: Cause,
    },

    /// A message is larger than [`Builder::max_message_size`](crate::Builder::max_message_size).
    /// Incoming: the connection is closed with code 1009 and the machine
    /// reconnects (retried). Outgoing: that message is refused and handed
    /// back in `message`; the connection carries on (not retried).
    #[error("{direction} message of {size} bytes is larger than the limit of {max} bytes")]
    MessageTooLarge {
        /// Which way the message was going.
        direction: Direction,
        /// Its size in bytes (for incoming messages, the size seen when the
        /// limit was crossed).
        size: usize,
        /// The configured limit.
        max: usize,
        /// Outgoing: the refused message, handed back. Incoming: `None` (the
        /// machine read it only up to the limit).
        message: Option<Message>,
    },

    /// A message was to be sent as text (in text mode, see
    /// [`Command::UseText`](crate::Command::UseText)) but is not valid UTF-8.
    /// That message is refused and handed back in `message`; the connection
    /// carries on (not retried). Send it with
    /// [`Message::binary`](crate::Message::binary) instead.
    #[error("message of {size} bytes cannot be sent as text: it is not valid UTF-8")]
    NotText {
        /// Its size in bytes.
        size: usize,
        /// The refused message, handed back.
        message: Message,
    },

    /// An outgoing message's deadline ([`Message::expires_in`]) passed
    /// before the machine could write it: it is handed back here, not
    /// written late. The state does not change. Not retried.
    #[error("message of {} bytes not sent: its deadline passed {late:?} before it could be written", message.len())]
    Expired {
        /// How long ago the deadline passed when the machine reached it.
        late: Duration,
        /// The message, handed back.
        message: Message,
    },

    /// A message sent with [`Message::no_replay`] was written on a
    /// connection that ended before its delivery was confirmed: it is
    /// handed back here instead of being written again on the next
    /// connection. The server may or may not have received it. Not
    /// retried.
    #[error("message of {} bytes not written again after its connection ended (no_replay): the server may or may not have it", message.len())]
    NotReplayed {
        /// The message, handed back.
        message: Message,
    },

    /// The machine stopped trying after
    /// [`Builder::max_attempts`](crate::Builder::max_attempts) failed attempts
    /// in a row. Final.
    #[error("gave up after {attempts} failed attempt{}; last error: {last}", if *.attempts == 1 { "" } else { "s" })]
    GaveUp {
        /// How many attempts failed in a row.
        attempts: u32,
        /// The error of the last attempt (also its [`source`](std::error::Error::source)).
        #[source]
        last: Box<Error>,
    },
}

/// What a final TLS failure was about (see [`Error::Tls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsProblem {
    /// The server's certificate does not lead to a trusted root: add its CA
    /// ([`Builder::ca_file`](crate::Builder::ca_file),
    /// [`Builder::ca_pem`](crate::Builder::ca_pem)) or trust the operating
    /// system's store ([`Builder::native_roots`](crate::Builder::native_roots)).
    UnknownIssuer,
    /// The server's certificate has expired (or is not valid yet): renew it,
    /// or check this machine's clock.
    Expired,
    /// The server's certificate is not valid for the name checked: the
    /// URL's host, or [`Builder::tls_server_name`](crate::Builder::tls_server_name).
    NameMismatch,
    /// The server refused the client certificate, or asked for one and got
    /// none: check [`Builder::client_cert_files`](crate::Builder::client_cert_files)
    /// and the CA the server trusts.
    ClientCertificateRefused,
    /// Another certificate problem (a bad signature, a revoked or unusable
    /// certificate); the source says which.
    Certificate,
    /// The TLS server name cannot be used (an invalid
    /// [`Builder::tls_server_name`](crate::Builder::tls_server_name)).
    ServerName,
    /// Client and server have no protocol version or cipher suite in
    /// common: the server's TLS configuration (or a
    /// [`Builder::tls_config`](crate::Builder::tls_config) that narrows the
    /// choice) must change.
    Incompatible,
}

impl fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownIssuer => {
                "the server's certificate is not signed by a trusted CA (add its CA, or use the system's trust store)"
            }
            Self::Expired => {
                "the server's certificate has expired or is not valid yet (renew it, or check the clock)"
            }
            Self::NameMismatch => {
                "the server's certificate is not valid for this host name (check the URL's host or the TLS server name)"
            }
            Self::ClientCertificateRefused => {
                "the server refused the client certificate, or required one (check the client certificate and the CA the server trusts)"
            }
            Self::Certificate => "the server's certificate was rejected",
            Self::ServerName => "the TLS server name is not valid",
            Self::Incompatible => {
                "client and server share no TLS version or cipher suite (check the server's TLS configuration)"
            }
        })
    }
}

/// Which way a message was travelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the server to the machine.
    Incoming,
    /// From the machine to the server.
    Outgoing,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Incoming => "incoming",
            Self::Outgoing => "outgoing",
        })
    }
}

impl Error {
    /// Whether the machine tries to connect again after this error.
    ///
    /// Final errors are configuration errors, TLS certificate failures,
    /// handshake rejections the retry policy does not retry (by default every
    /// 4xx except 408 and 429), a proxy's final refusal (rejected
    /// credentials), a failed subprotocol negotiation and [`Error::GaveUp`].
    /// Everything else is retried.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        // Every variant is listed: a new one must be decided here.
        match self {
            Self::InvalidUrl { .. }
            | Self::InvalidHeader { .. }
            | Self::InvalidConfig { .. }
            | Self::NoRuntime
            | Self::InsideRuntime
            | Self::RuntimeStart(_)
            | Self::Tls { .. }
            | Self::Subprotocol { .. }
            | Self::NotText { .. }
            | Self::Expired { .. }
            | Self::NotReplayed { .. }
            | Self::GaveUp { .. } => false,
            Self::HandshakeRejected { retryable, .. } | Self::ProxyRefused { retryable, .. } => {
                *retryable
            }
            Self::MessageTooLarge { direction, .. } => match direction {
                Direction::Incoming => true,
                Direction::Outgoing => false,
            },
            Self::Connect { .. }
            | Self::Proxy { .. }
            | Self::HandshakeTimeout(_)
            | Self::Handshake { .. }
            | Self::Headers { .. }
            | Self::ConnectionLost(_)
            | Self::PongTimeout(_)
            | Self::HeartbeatTimeout(_)
            | Self::ReadyTimeout(_)
            | Self::DataTimeout(_)
            | Self::WriteTimeout(_)
            | Self::Protocol { .. } => true,
            Self::Closed { retryable, .. } => *retryable,
        }
    }

    /// The message an outgoing refusal hands back
    /// ([`MessageTooLarge`](Error::MessageTooLarge) going out,
    /// [`NotText`](Error::NotText), [`Expired`](Error::Expired),
    /// [`NotReplayed`](Error::NotReplayed)); `None` for every other error.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// # let mut machine = ws_machine::Machine::builder("ws://127.0.0.1:9/").spawn()?;
    /// # machine.command.send(ws_machine::Command::Quit).await.ok();
    /// while let Some(status) = machine.status.recv().await {
    ///     if let Some(refused) = status.error.as_ref().and_then(|e| e.refused_message()) {
    ///         eprintln!("not sent ({} bytes): {status}", refused.len());
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn refused_message(&self) -> Option<&Message> {
        match self {
            Self::MessageTooLarge { message, .. } => message.as_ref(),
            Self::NotText { message, .. }
            | Self::Expired { message, .. }
            | Self::NotReplayed { message } => Some(message),
            Self::InvalidUrl { .. }
            | Self::InvalidHeader { .. }
            | Self::InvalidConfig { .. }
            | Self::NoRuntime
            | Self::InsideRuntime
            | Self::RuntimeStart(_)
            | Self::Connect { .. }
            | Self::HandshakeTimeout(_)
            | Self::HandshakeRejected { .. }
            | Self::Handshake { .. }
            | Self::Headers { .. }
            | Self::Tls { .. }
            | Self::Proxy { .. }
            | Self::ProxyRefused { .. }
            | Self::Subprotocol { .. }
            | Self::Closed { .. }
            | Self::ConnectionLost(_)
            | Self::PongTimeout(_)
            | Self::HeartbeatTimeout(_)
            | Self::ReadyTimeout(_)
            | Self::DataTimeout(_)
            | Self::WriteTimeout(_)
            | Self::Protocol { .. }
            | Self::GaveUp { .. } => None,
        }
    }

    /// [`Error::refused_message`], by value (a message is cheap to clone:
    /// its payload is shared).
    #[must_use]
    pub fn into_refused_message(self) -> Option<Message> {
        self.refused_message().cloned()
    }

    /// How long the server asked the client to wait before trying again
    /// (`Retry-After` on a rejected handshake), if it did.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::HandshakeRejected { retry_after, .. } => *retry_after,
            Self::InvalidUrl { .. }
            | Self::InvalidHeader { .. }
            | Self::InvalidConfig { .. }
            | Self::NoRuntime
            | Self::InsideRuntime
            | Self::RuntimeStart(_)
            | Self::Connect { .. }
            | Self::HandshakeTimeout(_)
            | Self::Handshake { .. }
            | Self::Headers { .. }
            | Self::Tls { .. }
            | Self::Proxy { .. }
            | Self::ProxyRefused { .. }
            | Self::Subprotocol { .. }
            | Self::Closed { .. }
            | Self::ConnectionLost(_)
            | Self::PongTimeout(_)
            | Self::HeartbeatTimeout(_)
            | Self::ReadyTimeout(_)
            | Self::DataTimeout(_)
            | Self::WriteTimeout(_)
            | Self::Protocol { .. }
            | Self::MessageTooLarge { .. }
            | Self::NotText { .. }
            | Self::Expired { .. }
            | Self::NotReplayed { .. }
            | Self::GaveUp { .. } => None,
        }
    }

    pub(crate) fn invalid_url(url: &str, reason: impl Into<String>) -> Self {
        Self::InvalidUrl {
            url: super::target::redact_url(url).into_owned(),
            reason: reason.into(),
        }
    }
}

/// A cause with a word on where it happened ("TLS handshake failed: ..."):
/// its text is `context: cause`, and its source is the cause itself, so the
/// chain keeps the original error.
#[derive(Debug)]
struct Context {
    context: &'static str,
    source: Box<dyn StdError + Send + Sync + 'static>,
}

/// `source`, introduced by `context` (see [`Context`]).
pub(crate) fn with_context(
    context: &'static str,
    source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
) -> Cause {
    Arc::new(Context {
        context,
        source: source.into(),
    })
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl StdError for Context {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

/// What a rejected upgrade says: what the server answered, what that
/// usually means, its reason if it gave one, and whether it is retried.
fn rejection(
    status: u16,
    body: Option<&str>,
    retry_after: Option<Duration>,
    retryable: bool,
) -> String {
    let mut text = match status {
        300..=399 => format!(
            "server redirected the WebSocket upgrade (HTTP {status}); redirects are not followed: use the URL it points to"
        ),
        100..=299 => format!(
            "server answered HTTP {status} instead of switching to WebSocket: the URL is probably not a WebSocket endpoint"
        ),
        _ => format!("server refused the WebSocket upgrade with HTTP {status}"),
    };
    if let Some(body) = body {
        text.push_str(&format!(": {body:?}"));
    }
    if let Some(wait) = retry_after {
        text.push_str(&format!(" (retry after {}s)", wait.as_secs()));
    }
    if !retryable {
        text.push_str(match status {
            401 | 403 | 407 => " (not retried: check the credentials)",
            _ => " (not retried: check the URL)",
        });
    }
    text
}

fn proxy_final_note(retryable: bool) -> &'static str {
    if retryable {
        ""
    } else {
        " (not retried: check the proxy URL and its credentials)"
    }
}

fn subprotocol_message(chosen: Option<&str>, offered: &[String]) -> String {
    let list = offered
        .iter()
        .map(|p| format!("{p:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    match chosen {
        Some(chosen) if offered.is_empty() => {
            format!("server chose subprotocol {chosen:?}, but none was offered (not retried)")
        }
        Some(chosen) => format!(
            "server chose subprotocol {chosen:?}, which was not offered (offered: {list}; not retried)"
        ),
        None => format!(
            "server chose no subprotocol, but one is required (offered: {list}; not retried)"
        ),
    }
}

fn reason_note(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_rejection_follows_its_policy_flag() {
        let final_one = Error::HandshakeRejected {
            status: 401,
            retry_after: None,
            retryable: false,
            body: None,
        };
        let retried = Error::HandshakeRejected {
            status: 503,
            retry_after: Some(Duration::from_secs(2)),
            retryable: true,
            body: None,
        };
        assert!(!final_one.is_retryable());
        assert_eq!(
            final_one.to_string(),
            "server refused the WebSocket upgrade with HTTP 401 (not retried: check the credentials)"
        );
        assert!(retried.is_retryable());
        assert_eq!(retried.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(
            retried.to_string(),
            "server refused the WebSocket upgrade with HTTP 503 (retry after 2s)"
        );
    }

    #[test]
    fn rejection_texts_say_what_the_answer_means() {
        let answer = |status, body: Option<&str>| {
            Error::HandshakeRejected {
                status,
                retry_after: None,
                retryable: false,
                body: body.map(str::to_owned),
            }
            .to_string()
        };
        assert_eq!(
            answer(200, None),
            "server answered HTTP 200 instead of switching to WebSocket: the URL is probably \
             not a WebSocket endpoint (not retried: check the URL)"
        );
        assert!(answer(301, None).contains("redirects are not followed"));
        assert_eq!(
            answer(404, Some("no such feed")),
            "server refused the WebSocket upgrade with HTTP 404: \"no such feed\" (not retried: \
             check the URL)"
        );
        let once = Error::GaveUp {
            attempts: 1,
            last: Box::new(Error::HandshakeTimeout(Duration::from_secs(1))),
        };
        assert!(
            once.to_string()
                .starts_with("gave up after 1 failed attempt;"),
            "{once}"
        );
    }

    #[test]
    fn connection_errors_are_retried_and_config_errors_are_not() {
        assert!(Error::PongTimeout(Duration::from_secs(1)).is_retryable());
        assert!(Error::HeartbeatTimeout(Duration::from_secs(1)).is_retryable());
        assert!(Error::ReadyTimeout(Duration::from_secs(1)).is_retryable());
        assert!(
            Error::Closed {
                code: 1001,
                reason: String::new(),
                retryable: true,
            }
            .is_retryable()
        );
        let policy = Error::Closed {
            code: 4001,
            reason: "key revoked".into(),
            retryable: false,
        };
        assert!(!policy.is_retryable());
        assert_eq!(
            policy.to_string(),
            "server closed the connection (code 4001: key revoked) (not retried: this code is final)"
        );
        assert!(!Error::invalid_url("x", "no scheme").is_retryable());
        let tls = Error::Tls {
            problem: TlsProblem::Certificate,
            source: Arc::new(io::Error::other("bad certificate")),
        };
        assert!(!tls.is_retryable());
    }

    #[test]
    fn the_blocking_machines_start_errors_are_final_and_keep_their_cause() {
        assert!(!Error::InsideRuntime.is_retryable());
        assert!(Error::InsideRuntime.to_string().contains("Builder::spawn"));
        let refused = Error::RuntimeStart(Arc::new(io::Error::from(io::ErrorKind::OutOfMemory)));
        assert!(!refused.is_retryable());
        assert!(refused.to_string().contains("out of threads"), "{refused}");
        let cause = refused
            .source()
            .and_then(|e| e.downcast_ref::<Arc<io::Error>>())
            .expect("the system's error, shared as the other I/O causes are");
        assert_eq!(cause.kind(), io::ErrorKind::OutOfMemory);
    }

    #[test]
    fn causes_are_kept_as_sources() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        let error = Error::Handshake {
            source: with_context("connection failed during the upgrade", reset),
        };
        assert!(error.is_retryable());
        let text = error.to_string();
        assert!(
            text.starts_with("invalid WebSocket handshake from the server: connection failed during the upgrade: "),
            "{text}"
        );
        let context = error.source().expect("the context");
        assert!(
            Error::ConnectionLost(Arc::new(io::Error::from(io::ErrorKind::ConnectionReset)))
                .source()
                .is_some()
        );
        let gave_up = Error::GaveUp {
            attempts: 3,
            last: Box::new(Error::HandshakeTimeout(Duration::from_secs(1))),
        };
        let last = gave_up.source().expect("the last attempt's error");
        assert!(
            last.to_string().contains("handshake did not complete"),
            "{last}"
        );
        let io = context
            .source()
            .and_then(|e| e.downcast_ref::<io::Error>())
            .expect("the I/O error at the end of the chain");
        assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
    }

    #[test]
    fn messages_say_what_failed() {
        let e = Error::MessageTooLarge {
            direction: Direction::Outgoing,
            size: 10,
            max: 5,
            message: Some(Message::binary(vec![0u8; 10])),
        };
        assert!(!e.is_retryable(), "sent again, it would be refused again");
        assert_eq!(e.refused_message().map(Message::len), Some(10));
        assert_eq!(
            e.to_string(),
            "outgoing message of 10 bytes is larger than the limit of 5 bytes"
        );
        let closed = Error::Closed {
            code: 1000,
            reason: "bye".into(),
            retryable: true,
        };
        assert_eq!(
            closed.to_string(),
            "server closed the connection (code 1000: bye)"
        );
    }
}
