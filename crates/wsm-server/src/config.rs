//! Server configuration: the faults every connection gets, fixed at start.
//!
//! Faults that tests switch on and off while the server runs are methods on
//! [`Server`](crate::Server) instead; this struct holds what the CLI passes as
//! flags (`--close-after`, `--freeze-after-ms`) and what should not change
//! under a running connection.

use std::time::Duration;

/// Default for [`Config::max_message_size`]: 64 MiB, like tokio-websockets.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// Default for [`Config::record_limit`].
pub const DEFAULT_RECORD_LIMIT: usize = 10_000;

/// Options applied to every connection the server accepts.
///
/// Build it from [`Config::default`] with the by-value setters:
///
/// ```
/// use std::time::Duration;
/// use wsm_server::Config;
///
/// let config = Config::default()
///     .close_after(Some(3))
///     .freeze_after(Some(Duration::from_millis(500)));
/// assert_eq!(config.close_after, Some(3));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Close each connection with a normal close frame (code 1000) right after
    /// echoing this many messages. `Some(0)` closes right after the upgrade.
    ///
    /// Default: `None` (never).
    pub close_after: Option<u64>,
    /// Freeze each connection this long after its upgrade: stop reading and
    /// writing (so no echoes and no pongs) but keep the TCP socket open until
    /// the server stops or [`Server::drop_all`](crate::Server::drop_all) is
    /// called. This is a dead peer as a client sees it.
    ///
    /// Default: `None` (never).
    pub freeze_after: Option<Duration>,
    /// Largest message the server accepts, in bytes. A larger one closes the
    /// connection with code 1009 (message too big).
    ///
    /// Default: [`DEFAULT_MAX_MESSAGE_SIZE`] (64 MiB).
    pub max_message_size: usize,
    /// How many received messages [`Server::received`](crate::Server::received)
    /// keeps (the first ones), and how many acceptance times and request
    /// headers [`Server::accepted_at`](crate::Server::accepted_at) and
    /// [`Server::request_headers`](crate::Server::request_headers) keep.
    /// Messages and requests past the limit are still counted by
    /// [`Server::messages_received`](crate::Server::messages_received) and
    /// [`Server::handshakes_seen`](crate::Server::handshakes_seen). Set 0
    /// for benchmarks and soak runs, so that the server keeps nothing.
    ///
    /// Default: [`DEFAULT_RECORD_LIMIT`] (10 000).
    pub record_limit: usize,
    /// Subprotocols the server speaks. It answers with the first one the
    /// client offers (`Sec-WebSocket-Protocol`, in the client's order) that
    /// is in this list, and with none when there is no common one.
    ///
    /// Default: empty (no subprotocol is ever chosen).
    pub protocols: Vec<String>,
    /// A rate limit, as exchanges enforce one: a connection on which more
    /// than `count` messages arrive within any `per` is closed with code
    /// 1008 (policy violation) and the reason `rate limit`.
    ///
    /// Default: `None` (no limit).
    pub max_rate: Option<(u32, Duration)>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            close_after: None,
            freeze_after: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            record_limit: DEFAULT_RECORD_LIMIT,
            protocols: Vec::new(),
            max_rate: None,
        }
    }
}

impl Config {
    /// Sets [`Config::close_after`].
    #[must_use]
    pub fn close_after(mut self, messages: Option<u64>) -> Self {
        self.close_after = messages;
        self
    }

    /// Sets [`Config::freeze_after`].
    #[must_use]
    pub fn freeze_after(mut self, after: Option<Duration>) -> Self {
        self.freeze_after = after;
        self
    }

    /// Sets [`Config::max_message_size`].
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`Config::record_limit`].
    #[must_use]
    pub fn record_limit(mut self, messages: usize) -> Self {
        self.record_limit = messages;
        self
    }

    /// Sets [`Config::max_rate`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let config = wsm_server::Config::default().max_rate(Some((5, Duration::from_secs(1))));
    /// assert_eq!(config.max_rate, Some((5, Duration::from_secs(1))));
    /// ```
    #[must_use]
    pub fn max_rate(mut self, limit: Option<(u32, Duration)>) -> Self {
        self.max_rate = limit;
        self
    }

    /// Sets [`Config::protocols`].
    ///
    /// ```
    /// let config = wsm_server::Config::default().protocols(["chat.v2", "chat.v1"]);
    /// assert_eq!(config.protocols, ["chat.v2", "chat.v1"]);
    /// ```
    #[must_use]
    pub fn protocols<S: Into<String>>(mut self, protocols: impl IntoIterator<Item = S>) -> Self {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }
}

/// How to refuse WebSocket upgrades: the HTTP response sent instead of
/// `101 Switching Protocols`, after which the server closes the socket.
///
/// Used with [`Server::reject_handshakes`](crate::Server::reject_handshakes).
/// The response always carries `Content-Length: 0` and `Connection: close`
/// unless `headers` sets them.
///
/// ```
/// use wsm_server::Rejection;
///
/// let r = Rejection::too_many_requests(1);
/// assert_eq!(r.status, 429);
/// assert_eq!(r.headers, vec![("Retry-After".to_owned(), "1".to_owned())]);
/// let r = Rejection::new(418).header("X-Reason", "teapot");
/// assert_eq!(r.headers.len(), 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status code, e.g. 401, 404, 429 or 503. The reason phrase is the
    /// standard one (empty for unknown codes).
    pub status: u16,
    /// Extra response headers, in order. Pairs whose name or value contain a
    /// CR or LF are skipped (they would split the response).
    pub headers: Vec<(String, String)>,
}

impl Rejection {
    /// A rejection with this status and no extra headers.
    #[must_use]
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
        }
    }

    /// Adds a response header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// `401 Unauthorized`: a client should not retry without new credentials.
    #[must_use]
    pub fn unauthorized() -> Self {
        Self::new(401)
    }

    /// `404 Not Found`: a wrong URL, not worth retrying.
    #[must_use]
    pub fn not_found() -> Self {
        Self::new(404)
    }

    /// `429 Too Many Requests` with `Retry-After: SECS`.
    #[must_use]
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::new(429).header("Retry-After", retry_after_secs.to_string())
    }

    /// `503 Service Unavailable`: a transient failure.
    #[must_use]
    pub fn service_unavailable() -> Self {
        Self::new(503)
    }
}
