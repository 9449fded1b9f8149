//! The builder: every option of a machine, its default, and validation.
//!
//! Options are plain setters that cannot fail; everything is checked once in
//! [`Builder::spawn`], so a bad URL or header is an error the caller sees at
//! once, never a loop of failing connection attempts.

use std::{fmt, sync::Arc, time::Duration};

use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use tokio_rustls::rustls;

use crate::{delivery::AckKey, error::Error, machine::Machine, message::Message};

/// Computes the request headers of one connection attempt.
pub(crate) type HeadersFn = Arc<dyn Fn() -> HeaderMap + Send + Sync>;

/// Computes the messages sent first on one connection.
pub(crate) type OnConnectFn = Arc<dyn Fn() -> Vec<Message> + Send + Sync>;

/// Headers the WebSocket handshake sets itself.
const HANDSHAKE_HEADERS: [HeaderName; 5] = [
    http::header::HOST,
    http::header::UPGRADE,
    http::header::CONNECTION,
    http::header::SEC_WEBSOCKET_KEY,
    http::header::SEC_WEBSOCKET_VERSION,
];

/// The default retry policy for rejected handshakes: retry 5xx, 408 (request
/// timeout) and 429 (too many requests); every other status is final.
#[must_use]
pub fn default_retry_status(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

/// Where to connect, taken apart from the URL once.
///
/// Kept compact (every machine holds one for its whole life): the URL as
/// text, parsed again into a [`Uri`] for each attempt, which costs far less
/// than the connection it is for.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    url: Box<str>,
    pub(crate) host: Box<str>,
    pub(crate) port: u16,
    pub(crate) tls: bool,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        if !url.contains("://") {
            return Err(Error::invalid_url(
                url,
                "it has no scheme: start it with ws:// or wss://",
            ));
        }
        let uri: Uri = url
            .parse()
            .map_err(|e| Error::invalid_url(url, format!("cannot parse it ({e})")))?;
        let tls = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("ws") => false,
            Some(s) if s.eq_ignore_ascii_case("wss") => true,
            Some(other) => {
                return Err(Error::invalid_url(
                    url,
                    format!("scheme {other:?} is not supported: use ws:// or wss://"),
                ));
            }
            None => {
                return Err(Error::invalid_url(
                    url,
                    "it has no scheme: start it with ws:// or wss://",
                ));
            }
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::invalid_url(url, "it has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if tls && rustls::pki_types::ServerName::try_from(host.as_str()).is_err() {
            return Err(Error::invalid_url(
                url,
                format!("{host:?} is not a valid TLS server name"),
            ));
        }
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Self {
            url: url.into(),
            host: host.into(),
            port,
            tls,
        })
    }

    /// The URL as given.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The URL as a [`Uri`] for the upgrade request.
    pub(crate) fn uri(&self) -> Result<Uri, Error> {
        // `parse` accepted this URL, so this succeeds; a failure is still
        // reported, never a panic.
        self.url
            .parse()
            .map_err(|e| Error::invalid_url(&self.url, format!("cannot parse it ({e})")))
    }
}

/// Builds a [`Machine`] with options other than the defaults.
///
/// Every option has a documented default; [`Builder::spawn`] validates them
/// all and starts the machine.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ws_machine::Error> {
/// use std::time::Duration;
/// use ws_machine::Machine;
///
/// let machine = Machine::builder("ws://127.0.0.1:9/feed")
///     .header("authorization", "Bearer abc")
///     .ping_interval(Duration::from_secs(5))
///     .pong_timeout(Duration::from_secs(2))
///     .backoff(Duration::from_millis(50), Duration::from_secs(10))
///     .on_connect(["subscribe:prices"])
///     .spawn()?;
/// # drop(machine);
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `spawn` is called"]
pub struct Builder {
    pub(crate) url: String,
    pub(crate) headers: HeaderMap,
    pub(crate) header_errors: Vec<Error>,
    pub(crate) headers_fn: Option<HeadersFn>,
    pub(crate) ping_interval: Duration,
    pub(crate) pong_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) min_uptime: Duration,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) queue_capacity: usize,
    pub(crate) input_capacity: usize,
    pub(crate) status_capacity: usize,
    pub(crate) ack_key: Option<AckKey>,
    pub(crate) ack_window: usize,
    pub(crate) on_connect: Option<OnConnectFn>,
    pub(crate) max_message_size: usize,
    pub(crate) retry_status: fn(u16) -> bool,
    pub(crate) tls_config: Option<Arc<rustls::ClientConfig>>,
    pub(crate) jitter_seed: Option<u64>,
    #[cfg(test)]
    pub(crate) memory: Option<crate::engine::MemoryDial>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("url", &self.url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("ping_interval", &self.ping_interval)
            .field("pong_timeout", &self.pong_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("backoff", &(self.backoff_initial, self.backoff_max))
            .field("min_uptime", &self.min_uptime)
            .field("max_attempts", &self.max_attempts)
            .field("queue_capacity", &self.queue_capacity)
            .field("ack_key", &self.ack_key.is_some())
            .field("ack_window", &self.ack_window)
            .field("on_connect", &self.on_connect.is_some())
            .field("max_message_size", &self.max_message_size)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// A builder for a machine connecting to `url`, with every default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            headers: HeaderMap::new(),
            header_errors: Vec::new(),
            headers_fn: None,
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            min_uptime: Duration::from_secs(5),
            max_attempts: None,
            queue_capacity: 1024,
            input_capacity: 1024,
            status_capacity: 32,
            ack_key: None,
            ack_window: 1024,
            on_connect: None,
            max_message_size: 16 * 1024 * 1024,
            retry_status: default_retry_status,
            tls_config: None,
            jitter_seed: None,
            #[cfg(test)]
            memory: None,
        }
    }

    /// Request headers sent with every upgrade request. Default: none.
    /// Replaces headers set before; [`Builder::header`] adds one.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// Adds one request header. An invalid name or value is reported by
    /// [`Builder::spawn`] as [`Error::InvalidHeader`].
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(value)) => {
                self.headers.append(name, value);
            }
            (Err(e), _) => self.header_errors.push(Error::InvalidHeader {
                name: name.to_owned(),
                reason: format!("not a valid header name ({e})"),
            }),
            (_, Err(_)) => self.header_errors.push(Error::InvalidHeader {
                name: name.to_owned(),
                reason:
                    "the value has characters HTTP does not allow (control characters or newlines)"
                        .to_owned(),
            }),
        }
        self
    }

    /// A function called before every connection attempt; the headers it
    /// returns are added to the fixed ones (replacing those of the same
    /// name). Use it for credentials that change, such as a renewed token.
    /// It runs on the machine's task, so it must be quick: refresh tokens
    /// elsewhere and only read the current one here. If it returns a header
    /// the handshake sets itself, the machine stops with a final
    /// [`Error::InvalidHeader`]. Default: none.
    pub fn headers_fn(mut self, f: impl Fn() -> HeaderMap + Send + Sync + 'static) -> Self {
        self.headers_fn = Some(Arc::new(f));
        self
    }

    /// After this long without receiving anything, send a ping.
    /// `Duration::MAX` turns the keep-alive off. Default: 30 s.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// After a ping, if nothing at all arrives within this time, the
    /// connection is declared dead ([`Error::PongTimeout`]) and the machine
    /// reconnects. Default: 10 s.
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.pong_timeout = timeout;
        self
    }

    /// Limit for one connection attempt: DNS, TCP connect, TLS and the HTTP
    /// upgrade together. Default: 10 s.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// If a write makes no progress for this long, the connection is
    /// declared dead ([`Error::WriteTimeout`]). Default: 10 s.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// How long a quit waits for the server to answer the close handshake
    /// before dropping the connection. Default: 1 s.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Wait between failed attempts: after the `n`-th failure in a row, a
    /// random time between `initial` and `min(max, initial * 2^n)`
    /// (exponential backoff with full jitter, from the first failure on, so
    /// many clients of one server do not retry in lockstep). A `Retry-After`
    /// from the server is honoured as a minimum. After a healthy connection
    /// ends, the first attempt is immediate (see [`Builder::min_uptime`]).
    /// Default: 100 ms and 30 s.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max;
        self
    }

    /// A connection must stay up this long to count as healthy. After a
    /// healthy connection ends, the machine reconnects at once and the
    /// attempt counter starts again; one that ends sooner counts as a failed
    /// attempt and is followed by a backoff wait, so a server that accepts
    /// and closes at once cannot cause a reconnect storm. With
    /// `Duration::ZERO` every successful connection counts as healthy.
    /// Default: 5 s.
    pub fn min_uptime(mut self, uptime: Duration) -> Self {
        self.min_uptime = uptime;
        self
    }

    /// Stop with [`Error::GaveUp`] after this many failed attempts in a row.
    /// Default: no limit.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// Capacity of the `output` channel: how many messages can wait while the
    /// machine is disconnected (or busy) before `output.send` waits.
    /// Default: 1024.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Capacity of the `input` channel. When it is full the machine stops
    /// reading from the socket until the caller catches up (backpressure,
    /// never loss). Default: 1024.
    pub fn input_capacity(mut self, capacity: usize) -> Self {
        self.input_capacity = capacity;
        self
    }

    /// Capacity of the `status` channel (at least 2). Statuses never make
    /// the machine wait: see [`Machine::status`]. Default: 32.
    pub fn status_capacity(mut self, capacity: usize) -> Self {
        self.status_capacity = capacity;
        self
    }

    /// Turns on at-least-once delivery. `key` is applied to every sent and
    /// every received message; a received message whose key equals a sent
    /// one's acknowledges it. Sent messages stay unacknowledged until then,
    /// and after a reconnect the unacknowledged ones are written again, in
    /// order, before newer ones. Messages for which `key` returns `None` need
    /// no acknowledgement: they are settled once written, as without an ack
    /// key. Duplicates are possible: the server may have received a message
    /// whose acknowledgement was lost. Default: off.
    ///
    /// The same function sees both directions, so give acknowledgements a
    /// key that nothing else received can have (for example, return `None`
    /// for incoming messages that are not acknowledgements): any received
    /// message with a matching key counts as the acknowledgement.
    /// Acknowledgements arrive through `input`, so the caller must keep
    /// reading it: while `input` is full nothing is read, nothing is
    /// acknowledged, and once the window is full, `output` waits too.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// // The first 8 bytes of each message are a sequence number that the
    /// // server echoes back.
    /// let machine = ws_machine::Machine::builder("ws://127.0.0.1:9/")
    ///     .ack_key(|m| Some(u64::from_le_bytes(m.as_ref().get(..8)?.try_into().ok()?)))
    ///     .ack_window(512)
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn ack_key(
        mut self,
        key: impl Fn(&Message) -> Option<u64> + Send + Sync + 'static,
    ) -> Self {
        self.ack_key = Some(Arc::new(key));
        self
    }

    /// The most messages written and not yet confirmed (flushed, and with
    /// [`ack_key`](Builder::ack_key) acknowledged) at once. When it is full
    /// the machine takes no more messages from `output`, which paces a fast
    /// sender. Default: 1024.
    pub fn ack_window(mut self, window: usize) -> Self {
        self.ack_window = window;
        self
    }

    /// Messages sent first on every connection, before anything queued
    /// (subscriptions, authentication). They are not tracked for delivery:
    /// they go out again on the next connection anyway. Default: none.
    pub fn on_connect<M: Into<Message>>(self, messages: impl IntoIterator<Item = M>) -> Self {
        let messages: Arc<[Message]> = messages.into_iter().map(Into::into).collect();
        self.on_connect_fn(move || messages.to_vec())
    }

    /// Like [`Builder::on_connect`], with the messages computed before every
    /// connection, for subscriptions that change while the machine runs
    /// (read them from shared state the caller updates). It runs on the
    /// machine's task, so it must be quick. Replaces
    /// [`Builder::on_connect`]. Default: none.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use tokio::sync::watch;
    /// use ws_machine::{Machine, Message};
    ///
    /// let (topics, current) = watch::channel(vec!["BTC-USD".to_owned()]);
    /// let machine = Machine::builder("ws://127.0.0.1:9/")
    ///     .on_connect_fn(move || {
    ///         current.borrow().iter().map(|t| Message::text(format!("subscribe:{t}"))).collect()
    ///     })
    ///     .spawn()?;
    /// // Later connections subscribe to ETH-USD too.
    /// topics.send_modify(|t| t.push("ETH-USD".to_owned()));
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_connect_fn(mut self, f: impl Fn() -> Vec<Message> + Send + Sync + 'static) -> Self {
        self.on_connect = Some(Arc::new(f));
        self
    }

    /// Largest message accepted in either direction, in bytes. A larger
    /// incoming message closes the connection with code 1009 (and the machine
    /// reconnects); a larger outgoing one is refused with
    /// [`Error::MessageTooLarge`]. Default: 16 MiB.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Which HTTP statuses of a rejected handshake are retried.
    /// Default: [`default_retry_status`] (5xx, 408, 429).
    pub fn retry_status(mut self, retry: fn(u16) -> bool) -> Self {
        self.retry_status = retry;
        self
    }

    /// The TLS configuration for `wss://` URLs (custom trust roots, client
    /// certificates). Default: rustls with the Mozilla roots of
    /// `webpki-roots`, certificate verification on.
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls_config = Some(config);
        self
    }

    /// Seed of the backoff jitter, for reproducible schedules in tests.
    /// Default: random.
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }

    /// Checks every option and starts the machine on the current tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`], [`Error::InvalidHeader`] or
    /// [`Error::InvalidConfig`] saying what to fix, or [`Error::NoRuntime`]
    /// outside a tokio runtime.
    pub fn spawn(self) -> Result<Machine, Error> {
        let target = self.validate()?;
        Machine::start(self, target)
    }

    fn validate(&self) -> Result<Target, Error> {
        let target = Target::parse(&self.url)?;
        if let Some(error) = self.header_errors.first() {
            return Err(error.clone());
        }
        check_headers(&self.headers)?;
        let positive = [
            ("ping_interval", self.ping_interval),
            ("pong_timeout", self.pong_timeout),
            ("handshake_timeout", self.handshake_timeout),
            ("write_timeout", self.write_timeout),
        ];
        for (option, value) in positive {
            if value.is_zero() {
                return Err(Error::InvalidConfig {
                    option,
                    reason: "must be longer than zero (Duration::MAX means never)".into(),
                });
            }
        }
        if self.backoff_initial > self.backoff_max {
            return Err(Error::InvalidConfig {
                option: "backoff",
                reason: format!(
                    "initial ({:?}) is longer than max ({:?})",
                    self.backoff_initial, self.backoff_max
                ),
            });
        }
        let capacities = [
            ("queue_capacity", self.queue_capacity, 1),
            ("input_capacity", self.input_capacity, 1),
            ("status_capacity", self.status_capacity, 2),
            ("ack_window", self.ack_window, 1),
            ("max_message_size", self.max_message_size, 1),
        ];
        for (option, value, min) in capacities {
            if value < min {
                return Err(Error::InvalidConfig {
                    option,
                    reason: format!("must be at least {min}"),
                });
            }
        }
        if self.max_attempts == Some(0) {
            return Err(Error::InvalidConfig {
                option: "max_attempts",
                reason: "must be at least 1".into(),
            });
        }
        Ok(target)
    }
}

/// Rejects headers the handshake sets itself.
pub(crate) fn check_headers(headers: &HeaderMap) -> Result<(), Error> {
    match headers.keys().find(|name| HANDSHAKE_HEADERS.contains(name)) {
        Some(name) => Err(Error::InvalidHeader {
            name: name.to_string(),
            reason: "the WebSocket handshake sets this header itself: remove it".into(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_taken_apart() {
        let t = Target::parse("wss://example.com/feed?x=1").expect("valid");
        assert!(t.tls);
        assert_eq!((&*t.host, t.port), ("example.com", 443));
        let t = Target::parse("ws://127.0.0.1:9001").expect("valid");
        assert!(!t.tls);
        assert_eq!(t.port, 9001);
        let t = Target::parse("ws://[::1]:80/").expect("valid");
        assert_eq!(&*t.host, "::1");
    }

    #[test]
    fn bad_urls_say_what_to_fix() {
        let cases = [
            ("http://example.com/", "use ws:// or wss://"),
            ("example.com", "ws:// or wss://"),
            ("localhost:8080/feed", "start it with ws:// or wss://"),
            ("ws://", "cannot parse"),
            ("ws:// spaces /", "cannot parse"),
            ("wss://a..b/", "not a valid TLS server name"),
        ];
        for (url, hint) in cases {
            let err = Target::parse(url).expect_err(url).to_string();
            assert!(err.contains(hint), "{url}: {err}");
        }
    }

    #[test]
    fn retry_policy_defaults() {
        let retried: Vec<u16> = [400, 401, 403, 404, 408, 429, 500, 502, 503]
            .into_iter()
            .filter(|s| default_retry_status(*s))
            .collect();
        assert_eq!(retried, [408, 429, 500, 502, 503]);
    }

    #[test]
    fn handshake_headers_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, HeaderValue::from_static("x"));
        assert!(matches!(
            check_headers(&headers),
            Err(Error::InvalidHeader { .. })
        ));
    }

    #[test]
    fn options_are_validated() {
        let err = Builder::new("ws://127.0.0.1:1/")
            .queue_capacity(0)
            .validate()
            .expect_err("zero capacity");
        assert!(err.to_string().contains("queue_capacity"), "{err}");
        let err = Builder::new("ws://127.0.0.1:1/")
            .backoff(Duration::from_secs(2), Duration::from_secs(1))
            .validate()
            .expect_err("inverted backoff");
        assert!(err.to_string().contains("backoff"), "{err}");
        let err = Builder::new("ws://127.0.0.1:1/")
            .header("x-token", "a\nb")
            .validate()
            .expect_err("newline in a header");
        assert!(matches!(err, Error::InvalidHeader { .. }), "{err}");
    }
}
