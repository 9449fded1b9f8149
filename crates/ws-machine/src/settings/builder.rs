//! The builder: every option of a machine, its default, and validation.
//!
//! Options are plain setters that cannot fail; everything is checked once in
//! [`Builder::build`] (which [`Builder::spawn`] calls), so a bad URL or
//! header is an error the caller sees at once, never a loop of failing
//! connection attempts.

use std::{fmt, future::Future, io, path::PathBuf, sync::Arc, time::Duration};

use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;

use super::{
    Capacities, Connection, Conversation, Delivery, Dialer, HeadersFn, Heartbeat, IntoMessages,
    Matcher, Pem, ProxyChoice, ReadyGate, Reconnect, ReconnectBudget, Request, Schemes, SendRate,
    Settings, Timeouts, TransportOptions, check_headers,
};
use crate::types::{Deflate, Endpoint, Error, Message, Mode, Target, redact_url};

/// The default retry policy for rejected handshakes: retry 5xx, 408 (request
/// timeout) and 429 (too many requests); every other status is final.
///
/// ```
/// assert!(ws_machine::default_retry_status(503));
/// assert!(!ws_machine::default_retry_status(401));
/// ```
#[must_use]
pub fn default_retry_status(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

/// Builds a [`Machine`](crate::Machine) with options other than the defaults.
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
    url: String,
    fallback_urls: Vec<String>,
    url_fn: Option<super::UrlFn>,
    headers: HeaderMap,
    header_errors: Vec<Error>,
    headers_fn: Option<HeadersFn>,
    on_connect: Option<super::OnConnectFn>,
    final_close: Option<super::CloseCodes>,
    heartbeat: HeartbeatOptions,
    ready: ReadyOptions,
    connection: Connection,
    timeouts: Timeouts,
    reconnect: Reconnect,
    budget: Option<ReconnectBudget>,
    delivery: Delivery,
    capacities: Capacities,
    send_rate: Option<SendRate>,
    report_round_trips: bool,
    transport: TransportOptions,
}

impl fmt::Debug for Builder {
    // Header values may be secrets: only their names are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("url", &redact_url(&self.url))
            .field(
                "fallback_urls",
                &self
                    .fallback_urls
                    .iter()
                    .map(|url| redact_url(url))
                    .collect::<Vec<_>>(),
            )
            .field("url_fn", &self.url_fn.is_some())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("headers_fn", &self.headers_fn.is_some())
            .field("on_connect", &self.on_connect.is_some())
            .field("ready_when", &self.ready.when.is_some())
            // The message may carry a token: only the period is shown.
            .field(
                "heartbeat",
                &self.heartbeat.beat.as_ref().map(|(_, every)| every),
            )
            .field(
                "dialer",
                &matches!(self.connection.dialer, Dialer::Custom(_)),
            )
            .field("max_message_size", &self.connection.max_message_size)
            .field("timeouts", &self.timeouts)
            .field("reconnect", &self.reconnect)
            .field("reconnect_budget", &self.budget)
            .field("ack_key", &self.delivery.ack_key.is_some())
            .field("ack_window", &self.delivery.ack_window)
            .field("capacities", &self.capacities)
            .field("send_rate", &self.send_rate)
            .field("report_round_trips", &self.report_round_trips)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// A builder for a machine connecting to `url`, with every default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            fallback_urls: Vec::new(),
            url_fn: None,
            headers: HeaderMap::new(),
            header_errors: Vec::new(),
            headers_fn: None,
            on_connect: None,
            final_close: None,
            heartbeat: HeartbeatOptions {
                beat: None,
                reply: None,
                deliver_replies: false,
            },
            ready: ReadyOptions {
                when: None,
                timeout: None,
            },
            connection: Connection {
                dialer: Dialer::Tcp,
                tls_config: None,
                max_message_size: 16 * 1024 * 1024,
                retry_status: Arc::new(default_retry_status),
                extras: None,
            },
            timeouts: Timeouts {
                ping_interval: Duration::from_secs(30).into(),
                pong_timeout: Duration::from_secs(10).into(),
                handshake: Duration::from_secs(10).into(),
                write: Duration::from_secs(10).into(),
                data: Duration::MAX.into(),
                close: Duration::from_secs(1).into(),
            },
            reconnect: Reconnect {
                enabled: true,
                backoff_initial: Duration::from_millis(100),
                backoff_max: Duration::from_secs(30),
                min_uptime: Duration::from_secs(5),
                max_attempts: None,
                jitter_seed: None,
            },
            budget: None,
            delivery: Delivery {
                ack_key: None,
                ack_window: 1024,
            },
            capacities: Capacities {
                queue: 1024,
                input: 1024,
                status: 32,
            },
            send_rate: None,
            report_round_trips: false,
            transport: TransportOptions::default(),
        }
    }

    /// Request headers sent with every upgrade request. Default: none.
    /// Replaces headers set before; [`Builder::header`] adds one.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// Adds one request header: a name and a value given as text or as
    /// `http`'s types (`header(AUTHORIZATION, token)` with
    /// [`http::header::AUTHORIZATION`] and a `String` works). Adding a name
    /// again adds a value: every value is sent (two `Cookie` headers reach
    /// the server as one `cookie: a=1; b=2` line, other names as one
    /// comma-separated line, as HTTP allows). An invalid name or value is
    /// reported by [`Builder::spawn`] as [`Error::InvalidHeader`] (which
    /// shows the name, never the value).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use ws_machine::{Machine, http::header::AUTHORIZATION};
    ///
    /// let token = String::from("Bearer abc");
    /// let machine = Machine::builder("ws://127.0.0.1:9/")
    ///     .header(AUTHORIZATION, token)
    ///     .header("x-client", "feed-reader")
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn header<N, V>(mut self, name: N, value: V) -> Self
    where
        N: TryInto<HeaderName> + fmt::Debug,
        V: TryInto<HeaderValue>,
    {
        // The name as the caller wrote it, for an error message (taken
        // before the conversion consumes it; options are set once).
        let shown = format!("{name:?}").trim_matches('"').to_owned();
        let header = match name.try_into() {
            Err(_) => Err(Error::InvalidHeader {
                name: shown,
                reason: "not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)"
                    .to_owned(),
            }),
            Ok(name) => match value.try_into() {
                Ok(value) => Ok((name, value)),
                Err(_) => Err(Error::InvalidHeader {
                    name: name.to_string(),
                    reason: "the value has characters HTTP does not allow (control \
                             characters or newlines)"
                        .to_owned(),
                }),
            },
        };
        match header {
            Ok((name, value)) => {
                self.headers.append(name, value);
            }
            Err(error) => self.header_errors.push(error),
        }
        self
    }

    /// A function called before every connection attempt; the headers it
    /// returns are added to the fixed ones (replacing every value of the
    /// names it sets; repeated names keep all their values). Use it for
    /// credentials that change, such as a renewed token. It runs on the
    /// machine's task, so it must be quick: refresh tokens elsewhere and only
    /// read the current one here. If it returns a header
    /// the handshake sets itself, the machine stops with a final
    /// [`Error::InvalidHeader`]. Default: none.
    pub fn headers_fn(mut self, f: impl Fn() -> HeaderMap + Send + Sync + 'static) -> Self {
        self.headers_fn = Some(Arc::new(move || Ok(f())));
        self
    }

    /// Like [`Builder::headers_fn`], for a function that can fail (no token
    /// yet, a key that cannot be read): an error fails that attempt with
    /// [`Error::Headers`], which keeps it as its cause and is retried with
    /// the usual backoff. Replaces [`Builder::headers_fn`]. Default: none.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use std::sync::{Arc, RwLock};
    /// use ws_machine::http::{HeaderMap, HeaderValue};
    ///
    /// // Filled in by whatever renews the token.
    /// let token: Arc<RwLock<Option<String>>> = Arc::default();
    /// let current = Arc::clone(&token);
    /// let machine = ws_machine::Machine::builder("ws://127.0.0.1:9/")
    ///     .try_headers_fn(move || {
    ///         let token = current.read().map_err(|_| "token store poisoned")?.clone();
    ///         let token = token.ok_or("no token yet")?;
    ///         let mut headers = HeaderMap::new();
    ///         headers.insert("authorization", HeaderValue::from_str(&format!("Bearer {token}"))?);
    ///         Ok::<_, Box<dyn std::error::Error + Send + Sync>>(headers)
    ///     })
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_headers_fn<E>(
        mut self,
        f: impl Fn() -> Result<HeaderMap, E> + Send + Sync + 'static,
    ) -> Self
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.headers_fn = Some(Arc::new(move || f().map_err(|e| Arc::from(e.into()))));
        self
    }

    /// After this long without receiving anything, send a ping.
    /// `Duration::MAX` turns the keep-alive off. Default: 30 s.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.timeouts.ping_interval = interval.into();
        self
    }

    /// After a ping, if nothing at all arrives within this time, the
    /// connection is declared dead ([`Error::PongTimeout`]) and the machine
    /// reconnects. Default: 10 s.
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.pong_timeout = timeout.into();
        self
    }

    /// Limit for one connection attempt: DNS, TCP connect, TLS and the HTTP
    /// upgrade together. Default: 10 s.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.handshake = timeout.into();
        self
    }

    /// If a write makes no progress for this long, the connection is
    /// declared dead ([`Error::WriteTimeout`]). Default: 10 s.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.write = timeout.into();
        self
    }

    /// If no data message (text or binary) arrives for this long, the
    /// connection is stale and is replaced ([`Error::DataTimeout`], retried
    /// like any lost connection): for feeds that can stall while the server
    /// still answers pings. The time the machine does not read because the
    /// caller is behind on `input` does not count. Default: off
    /// (`Duration::MAX`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use std::time::Duration;
    ///
    /// // Prices tick several times a second: 10 s without one is a stall.
    /// let machine = ws_machine::Machine::builder("ws://127.0.0.1:9/prices")
    ///     .data_timeout(Duration::from_secs(10))
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn data_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.data = timeout.into();
        self
    }

    /// How long stopping may take in all: from a quit (or a final error) to
    /// the end of the machine's task, the close handshake, handing over the
    /// received messages the machine still holds (as the caller reads
    /// `input`) and taking the last messages from `output` share this one
    /// deadline. What is not handed over by then is in the
    /// [`Leftovers`](crate::Leftovers). Also bounds the close handshake of a
    /// [`Command::Reconnect`](crate::Command::Reconnect) and the sending of
    /// a close frame after a protocol error. Default: 1 s.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.close = timeout.into();
        self
    }

    /// Wait between failed attempts: after the `n`-th failure in a row, a
    /// random time between `initial` and `min(max, initial * 2^n)`
    /// (exponential backoff with full jitter, from the first failure on, so
    /// many clients of one server do not retry in lockstep), and never
    /// longer than the time the machine has been disconnected (since the
    /// last healthy connection was lost, or since it started) or
    /// `2 * initial`, whichever is longer: attempts that fail at once (a
    /// server that is down refuses connections) do not pile up long waits,
    /// so a machine is back within about twice the outage. A `Retry-After`
    /// from the server is honoured as a minimum. After a healthy connection
    /// ends, the first attempt is immediate (see [`Builder::min_uptime`]).
    /// Default: 100 ms and 30 s.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.reconnect.backoff_initial = initial;
        self.reconnect.backoff_max = max;
        self
    }

    /// How long a connection must stay up to count as healthy. After a
    /// healthy connection ends, the machine reconnects at once and the
    /// attempt counter starts again; one that was not healthy counts as a
    /// failed attempt and is followed by a backoff wait, so a server that
    /// accepts and closes at once cannot cause a reconnect storm.
    ///
    /// A connection is healthy when it stayed up this long, or when it
    /// stayed up a tenth of it and brought at least two data messages: a
    /// server that rotates connections that serve data (closing each after
    /// 2 s, say) is rejoined at once every time, while one that answers with
    /// one error and closes meets growing waits. With `Duration::ZERO` every
    /// successful connection counts as healthy. Default: 5 s.
    pub fn min_uptime(mut self, uptime: Duration) -> Self {
        self.reconnect.min_uptime = uptime;
        self
    }

    /// Whether the machine connects again after a connection ends or an
    /// attempt fails. With `false` it makes one connection: when that ends,
    /// or when the attempt fails, its final status says why (the error that
    /// ended it, retryable or not) and it stops. A
    /// [`Command::Reconnect`](crate::Command::Reconnect) sent by the caller
    /// still connects again. Default: `true`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use ws_machine::{Error, Machine, State};
    ///
    /// // Nothing listens on this port: the one attempt fails, for good.
    /// let mut machine = Machine::builder("ws://127.0.0.1:9/").reconnect(false).spawn()?;
    /// let mut last = None;
    /// while let Some(status) = machine.status.recv().await {
    ///     last = Some(status);
    /// }
    /// let last = last.expect("statuses");
    /// assert!(last.is_final());
    /// assert!(matches!(last.error, Some(Error::Connect { .. })));
    /// # Ok(())
    /// # }
    /// ```
    pub fn reconnect(mut self, reconnect: bool) -> Self {
        self.reconnect.enabled = reconnect;
        self
    }

    /// Stop with [`Error::GaveUp`] after this many failed attempts in a row.
    /// Default: no limit.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.reconnect.max_attempts = Some(attempts);
        self
    }

    /// Capacity of the `output` channel: how many messages can wait while the
    /// machine is disconnected (or busy) before `output.send` waits.
    /// Default: 1024.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.capacities.queue = capacity;
        self
    }

    /// Capacity of the `input` channel. When it is full the machine stops
    /// reading from the socket until the caller catches up (backpressure,
    /// never loss). Default: 1024.
    pub fn input_capacity(mut self, capacity: usize) -> Self {
        self.capacities.input = capacity;
        self
    }

    /// Capacity of the `status` channel (at least 2). Statuses never make
    /// the machine wait: see [`Machine::status`](crate::Machine::status). Default: 32.
    pub fn status_capacity(mut self, capacity: usize) -> Self {
        self.capacities.status = capacity;
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
        self.delivery.ack_key = Some(Arc::new(key));
        self
    }

    /// The most messages written and not yet confirmed (flushed, and with
    /// [`ack_key`](Builder::ack_key) acknowledged) at once. When it is full
    /// the machine takes no more messages from `output`, which paces a fast
    /// sender. Default: 1024.
    pub fn ack_window(mut self, window: usize) -> Self {
        self.delivery.ack_window = window;
        self
    }

    /// Messages sent first on every connection, before anything queued
    /// (subscriptions, authentication): one message, or an array, `Vec` or
    /// slice of them (see [`IntoMessages`]). They are not tracked for
    /// delivery: they go out again on the next connection anyway.
    /// Default: none.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// let one = ws_machine::Machine::builder("ws://127.0.0.1:9/")
    ///     .on_connect("subscribe:prices")
    ///     .spawn()?;
    /// let several = ws_machine::Machine::builder("ws://127.0.0.1:9/")
    ///     .on_connect(["auth:token", "subscribe:prices"])
    ///     .spawn()?;
    /// # drop((one, several));
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_connect(self, messages: impl IntoMessages) -> Self {
        let messages: Arc<[Message]> = messages.into_messages().into();
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
        self.connection.max_message_size = bytes;
        self
    }

    /// An application-level heartbeat: `message` is sent every `every` on
    /// every connection, whatever else flows, for servers that ignore
    /// control pings and expect a data message (`{"op":"ping"}`), or that
    /// drop clients which send nothing for a while. After each heartbeat a
    /// reply must arrive within the [`pong_timeout`](Builder::pong_timeout),
    /// or the connection is dead ([`Error::HeartbeatTimeout`]) and replaced.
    /// What counts as a reply is set by
    /// [`heartbeat_reply`](Builder::heartbeat_reply); by default anything
    /// that arrives does.
    ///
    /// Control pings go on as well, after [`ping_interval`](Builder::ping_interval)
    /// of silence; to send only the heartbeat, set
    /// `ping_interval(Duration::MAX)`. The heartbeat is not tracked for
    /// delivery and is never handed back. Plain bytes
    /// ([`Message::bytes`]) are sent as binary. Default: no heartbeat.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use std::time::Duration;
    /// use ws_machine::Machine;
    ///
    /// // The server ignores control pings, answers {"op":"ping"} with
    /// // {"op":"pong"}, and drops clients silent for 30 s.
    /// let machine = Machine::builder("ws://127.0.0.1:9/feed")
    ///     .heartbeat(r#"{"op":"ping"}"#, Duration::from_secs(15))
    ///     .heartbeat_reply(|m| m.as_text() == Some(r#"{"op":"pong"}"#))
    ///     .ping_interval(Duration::MAX)
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn heartbeat(mut self, message: impl Into<Message>, every: Duration) -> Self {
        self.heartbeat.beat = Some((message.into(), every));
        self
    }

    /// What counts as the reply to a [`heartbeat`](Builder::heartbeat):
    /// only a received message for which `is_reply` is true answers it, so
    /// a server that sends data but stopped answering heartbeats is
    /// replaced too. Matched replies are kept out of `input` unless
    /// [`deliver_heartbeat_replies`](Builder::deliver_heartbeat_replies) is
    /// on, and they do not count as data for
    /// [`data_timeout`](Builder::data_timeout). Default: no matcher
    /// (anything that arrives answers; nothing is kept out).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use std::time::Duration;
    ///
    /// let machine = ws_machine::Machine::builder("ws://127.0.0.1:9/")
    ///     .heartbeat("ping", Duration::from_secs(10))
    ///     .heartbeat_reply(|reply| reply.as_ref() == b"pong")
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn heartbeat_reply(
        mut self,
        is_reply: impl Fn(&Message) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.heartbeat.reply = Some(Arc::new(is_reply));
        self
    }

    /// Whether the replies matched by
    /// [`heartbeat_reply`](Builder::heartbeat_reply) also go to `input`.
    /// Default: false (they are kept out).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use std::time::Duration;
    ///
    /// // The reply carries the server's clock, which the caller reads.
    /// let machine = ws_machine::Machine::builder("ws://127.0.0.1:9/")
    ///     .heartbeat(r#"{"op":"time"}"#, Duration::from_secs(10))
    ///     .heartbeat_reply(|m| m.as_text().is_some_and(|t| t.starts_with(r#"{"time":"#)))
    ///     .deliver_heartbeat_replies(true)
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn deliver_heartbeat_replies(mut self, deliver: bool) -> Self {
        self.heartbeat.deliver_replies = deliver;
        self
    }

    /// A ready gate: after connecting (and sending the
    /// [`on_connect`](Builder::on_connect) messages), the caller's messages,
    /// queued or written again after a reconnect, wait until a received
    /// message for which `is_ready` is true says the server is ready, for
    /// servers that must acknowledge a login or a subscription before
    /// anything else may be sent. The machine then reports
    /// [`State::Ready`](crate::State::Ready) (after
    /// [`State::Connected`](crate::State::Connected)); the message that
    /// opened the gate is delivered to `input` like any other. If none
    /// comes within the [`ready_timeout`](Builder::ready_timeout), the
    /// connection is replaced ([`Error::ReadyTimeout`]) and counts as a
    /// failed attempt. Commands work meanwhile. Default: no gate (the
    /// caller's messages go out as soon as the connection is open, and
    /// there is no `Ready` status).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use ws_machine::Machine;
    ///
    /// // Orders may go out only after the exchange accepted the login.
    /// let machine = Machine::builder("ws://127.0.0.1:9/orders")
    ///     .on_connect(r#"{"op":"login","key":"..."}"#)
    ///     .ready_when(|m| m.as_text().is_some_and(|t| t.contains(r#""event":"login""#)))
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn ready_when(
        mut self,
        is_ready: impl Fn(&Message) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.ready.when = Some(Arc::new(is_ready));
        self
    }

    /// How long a connection may take, from the upgrade, to become ready
    /// (see [`ready_when`](Builder::ready_when)). Default: 10 s.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use std::time::Duration;
    ///
    /// let machine = ws_machine::Machine::builder("ws://127.0.0.1:9/")
    ///     .on_connect("subscribe:prices")
    ///     .ready_when(|m| m.as_ref() == b"subscribed")
    ///     .ready_timeout(Duration::from_secs(3))
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready.timeout = Some(timeout);
        self
    }

    /// An outgoing rate limit: at most `count` messages in any window of
    /// `per` (a burst of up to `count` goes at once), because exchanges
    /// disconnect clients that exceed their message rate. Exact against
    /// servers that count in fixed or in sliding windows; the machine keeps
    /// the times of the last `count` messages. Messages wait in `output`
    /// meanwhile (so a full `output` pushes back on the caller). The
    /// `on_connect` messages and the heartbeat are never delayed but are
    /// counted, so the caller's messages make room for them. The limit
    /// holds across reconnects. Default: none.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use std::time::Duration;
    ///
    /// // The exchange allows 10 messages a second per connection.
    /// let machine = ws_machine::Machine::builder("ws://127.0.0.1:9/orders")
    ///     .send_rate(10, Duration::from_secs(1))
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn send_rate(mut self, count: u32, per: Duration) -> Self {
        self.send_rate = Some(SendRate { count, per });
        self
    }

    /// Report every round trip measured on `status`: a status in the
    /// current state with [`Status::round_trip`](crate::Status::round_trip)
    /// set, not a change of state
    /// ([`Status::is_change`](crate::Status::is_change) is false), each
    /// time a pong answers one of the machine's pings (keep-alive pings
    /// and [`Command::Ping`](crate::Command::Ping)) or a reply matched by
    /// [`heartbeat_reply`](Builder::heartbeat_reply) answers a heartbeat.
    /// Round trips are measured either way and kept in the
    /// [`Stats`](crate::Stats); this is for callers that show them as they
    /// come (a CLI's ping). Default: off.
    ///
    /// Pings carry 12 bytes saying when they were sent, so the machine
    /// keeps no state per ping; a pong that does not echo them (one the
    /// server sends unasked) measures nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use ws_machine::Command;
    ///
    /// let mut machine = ws_machine::Machine::builder("ws://127.0.0.1:9/")
    ///     .report_round_trips(true)
    ///     .spawn()?;
    /// # tokio::spawn(async move {
    /// machine.command.send(Command::Ping).await.expect("the machine runs");
    /// while let Some(status) = machine.status.recv().await {
    ///     if let Some(rtt) = status.round_trip {
    ///         println!("round trip {rtt:?}");
    ///     }
    /// }
    /// # });
    /// # Ok(())
    /// # }
    /// ```
    pub fn report_round_trips(mut self, report: bool) -> Self {
        self.report_round_trips = report;
        self
    }

    /// URLs to fail over to: when an attempt at the builder's URL fails, the
    /// next attempt goes to the first of these, and so on, back to the
    /// builder's URL after the last (with the usual backoff between
    /// attempts: failing over is not a reason to hammer). A healthy
    /// connection (see [`min_uptime`](Builder::min_uptime)) that is lost is
    /// tried again at the same URL first; one that was not healthy (the
    /// server closed at once, or never said it was ready) counts as a
    /// failed attempt and fails over. The statuses ending an attempt or a connection
    /// ([`State::Connected`](crate::State::Connected),
    /// [`State::Disconnected`](crate::State::Disconnected)) say which URL
    /// it used ([`Status::url`](crate::Status::url)). Each must be a valid
    /// `ws://` or `wss://` URL; the proxy and TLS options apply to each (a
    /// proxy's `NO_PROXY` exceptions are checked per host). Default: none.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// let machine = ws_machine::Machine::builder("ws://127.0.0.1:9/feed")
    ///     .fallback_urls(["ws://127.0.0.1:10/feed", "ws://127.0.0.1:11/feed"])
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn fallback_urls<S: Into<String>>(mut self, urls: impl IntoIterator<Item = S>) -> Self {
        self.fallback_urls = urls.into_iter().map(Into::into).collect();
        self
    }

    /// Computes the URL of every attempt instead of the builder's (which is
    /// still checked, and names the machine): for a token in the query
    /// string that expires, or a server picked per attempt. It must be
    /// quick (it runs on the machine's task). If it returns an invalid URL,
    /// the machine stops with a final [`Error::InvalidUrl`]. Statuses say
    /// which URL an attempt used ([`Status::url`](crate::Status::url)),
    /// its query values hidden. Not with
    /// [`fallback_urls`](Builder::fallback_urls). Default: none.
    ///
    /// ```
    /// # fn current_token() -> String { String::from("t") }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// let machine = ws_machine::Machine::builder("ws://127.0.0.1:9/feed")
    ///     .url_fn(|| format!("ws://127.0.0.1:9/feed?token={}", current_token()))
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn url_fn(mut self, url: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.url_fn = Some(Arc::new(url));
        self
    }

    /// Which close codes from the server stop the machine, as
    /// [`retry_status`](Builder::retry_status) does for HTTP: for example
    /// 1008 (policy violation), or an application's 4xxx code meaning
    /// "invalid credentials". A close with such a code is reported as a
    /// final [`Error::Closed`]. Default: none; every close is retried (with
    /// the health rule of [`min_uptime`](Builder::min_uptime) deciding the
    /// wait).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// // This exchange closes with 4001 when the API key is revoked.
    /// let machine = ws_machine::Machine::builder("ws://127.0.0.1:9/")
    ///     .final_close_codes(|code| code == 1008 || code == 4001)
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn final_close_codes(
        mut self,
        is_final: impl Fn(u16) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.final_close = Some(Arc::new(is_final));
        self
    }

    /// Which HTTP statuses of a rejected handshake are retried (with the
    /// usual backoff, honouring `Retry-After`); the others stop the machine.
    /// With a [`headers_fn`](Builder::headers_fn), a 401 or 403 is retried
    /// twice whatever this says (the credentials it mints may just have
    /// expired): at once, with fresh headers, then after the usual wait; a
    /// third in a row is final. Default: [`default_retry_status`] (5xx, 408,
    /// 429).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// // This server answers 409 while it rebalances: worth retrying.
    /// let also_retried = [409];
    /// let machine = ws_machine::Machine::builder("ws://127.0.0.1:9/")
    ///     .retry_status(move |status| {
    ///         ws_machine::default_retry_status(status) || also_retried.contains(&status)
    ///     })
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn retry_status(mut self, retry: impl Fn(u16) -> bool + Send + Sync + 'static) -> Self {
        self.connection.retry_status = Arc::new(retry);
        self
    }

    /// The whole TLS configuration for `wss://` URLs, for full control
    /// (protocol versions, ALPN, a verifier of your own). It replaces
    /// [`ca_file`](Builder::ca_file), [`ca_pem`](Builder::ca_pem),
    /// [`native_roots`](Builder::native_roots) and the client certificate
    /// options (setting both is an [`Error::InvalidConfig`]); for many
    /// machines with the same options, build one configuration and share it.
    /// Default: rustls with the Mozilla roots of `webpki-roots`, certificate
    /// verification on.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use std::sync::Arc;
    /// use ws_machine::rustls;
    ///
    /// let roots = rustls::RootCertStore {
    ///     roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    /// };
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let mut config = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_protocol_versions(&[&rustls::version::TLS13])
    ///     .expect("ring supports TLS 1.3")
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// config.alpn_protocols = vec![b"http/1.1".to_vec()];
    /// let machine = ws_machine::Machine::builder("wss://127.0.0.1:9/")
    ///     .tls_config(Arc::new(config))
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.connection.tls_config = Some(config);
        self
    }

    /// Trusts the CA certificates in this PEM file (one or more
    /// `BEGIN CERTIFICATE` blocks) for `wss://`, in place of the Mozilla
    /// roots (as curl's `--cacert`; add [`native_roots`](Builder::native_roots)
    /// to keep the system's too). Repeatable. The file is read by
    /// [`Builder::spawn`]: a missing file or one without a certificate is an
    /// [`Error::InvalidConfig`] there. Default: the Mozilla roots.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// let machine = ws_machine::Machine::builder("wss://feed.internal.example/")
    ///     .ca_file("/etc/company/ca.pem")
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.transport.tls.cas.push(Pem::File(path.into()));
        self
    }

    /// Like [`ca_file`](Builder::ca_file), with the PEM text itself (for
    /// example embedded with `include_bytes!`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // Not PEM: refused when the machine is built, never retried.
    /// let err = ws_machine::Machine::builder("wss://127.0.0.1:9/")
    ///     .ca_pem("not a certificate")
    ///     .spawn()
    ///     .expect_err("no certificate in it");
    /// assert!(err.to_string().contains("ca_pem"));
    /// # }
    /// ```
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.transport.tls.cas.push(Pem::Bytes(pem.into()));
        self
    }

    /// Trusts the operating system's certificate store for `wss://`
    /// (`rustls-native-certs`: on Linux the distribution's bundle, or the
    /// files `SSL_CERT_FILE` and `SSL_CERT_DIR` name), in place of the
    /// Mozilla roots; CAs of [`ca_file`](Builder::ca_file) are added to it.
    /// The store is read once per process. Default: off.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// let machine = ws_machine::Machine::builder("wss://feed.example.com/")
    ///     .native_roots(true)
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn native_roots(mut self, on: bool) -> Self {
        self.transport.tls.native_roots = on;
        self
    }

    /// A client certificate (mutual TLS): `cert` holds the certificate
    /// chain in PEM, leaf first; `key` its private key in PEM (PKCS#8,
    /// PKCS#1 or SEC1). Read by [`Builder::spawn`], where a missing file or
    /// a key that does not fit is an [`Error::InvalidConfig`]. A server that
    /// refuses it fails the attempt with a final [`Error::Tls`]
    /// ([`TlsProblem::ClientCertificateRefused`](crate::TlsProblem::ClientCertificateRefused)).
    /// Default: none.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// let machine = ws_machine::Machine::builder("wss://broker.internal.example/")
    ///     .ca_file("ca.pem")
    ///     .client_cert_files("client.pem", "client.key")
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn client_cert_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.transport.tls.client_cert = Some((Pem::File(cert.into()), Pem::File(key.into())));
        self
    }

    /// Like [`client_cert_files`](Builder::client_cert_files), with the PEM
    /// text itself.
    pub fn client_cert_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.transport.tls.client_cert = Some((Pem::Bytes(cert.into()), Pem::Bytes(key.into())));
        self
    }

    /// The name TLS sends (SNI) and checks the server's certificate
    /// against, instead of the URL's host: for a server reached by an
    /// address, or through a name its certificate does not carry. Default:
    /// the URL's host.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// let machine = ws_machine::Machine::builder("wss://127.0.0.1:9/")
    ///     .tls_server_name("feed.internal.example")
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn tls_server_name(mut self, name: impl Into<String>) -> Self {
        self.transport.server_name = Some(name.into());
        self
    }

    /// Subprotocols to offer (`Sec-WebSocket-Protocol`), in order of
    /// preference. The server's choice is reported with
    /// [`State::Connected`](crate::State::Connected) in
    /// [`Status::protocol`](crate::Status::protocol); a server that
    /// chooses one that was not offered fails with a final
    /// [`Error::Subprotocol`]. Names must be HTTP tokens, each given once.
    /// Default: none offered (and a server that chooses one anyway fails).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use ws_machine::{Machine, State};
    ///
    /// let mut machine = Machine::builder("ws://127.0.0.1:9/")
    ///     .protocols(["graphql-transport-ws", "graphql-ws"])
    ///     .require_protocol(true)
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn protocols<S: Into<String>>(mut self, protocols: impl IntoIterator<Item = S>) -> Self {
        self.transport.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Whether a server that chooses none of the
    /// [`protocols`](Builder::protocols) fails the connection (a final
    /// [`Error::Subprotocol`]) rather than connecting without one.
    /// Default: `false` (as Python's `websockets`).
    pub fn require_protocol(mut self, required: bool) -> Self {
        self.transport.require_protocol = required;
        self
    }

    /// Offers permessage-deflate (RFC 7692) with these parameters, or
    /// (`None`) no compression. What the server agreed to is reported with
    /// [`State::Connected`](crate::State::Connected) in
    /// [`Status::compression`](crate::Status::compression); a server that
    /// declines is spoken to uncompressed.
    ///
    /// Default: off. Compression costs memory for every connection that
    /// uses it (a compressor and a decompressor each keep their window and
    /// state: about 346 KiB per machine once messages have flowed, with
    /// the default parameters, against about 10 KiB without) and CPU
    /// for every message; it pays off on slow links and with large, repetitive
    /// messages (JSON feeds). `BENCHMARKS.md` has the figures, and
    /// `docs/design.md` says how compressed connections are run. Incoming
    /// messages are limited by [`max_message_size`](Builder::max_message_size)
    /// after they are inflated.
    ///
    /// Needs the `deflate` feature (on by default); without it, a machine
    /// asking for compression fails to build with
    /// [`Error::InvalidConfig`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use ws_machine::{Deflate, Machine};
    ///
    /// // A feed of JSON quotes: keep the dictionary, bound the server's window.
    /// let mut machine = Machine::builder("ws://127.0.0.1:9/")
    ///     .compression(Deflate::new().server_max_window_bits(12))
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn compression(mut self, compression: impl Into<Option<Deflate>>) -> Self {
        self.transport.compression = compression.into();
        self
    }

    /// Connects through this proxy: `http://[user:password@]host[:port]`
    /// (an HTTP `CONNECT` tunnel, with Basic authentication), or
    /// `socks5://` (the server's name resolved here) or `socks5h://`
    /// (resolved by the proxy), with an optional user name and password.
    /// Without a scheme, `http://`; default ports 80 and 1080. Credentials
    /// may be percent-encoded and never appear in `Debug`, errors, statuses
    /// or logs. `wss://` runs TLS with the server through the tunnel, so
    /// the proxy sees only encrypted bytes. The [`dialer`](Builder::dialer),
    /// if any, is asked for the proxy's address. A proxy that cannot be
    /// reached is retried ([`Error::Proxy`]); one that refuses the tunnel
    /// fails with [`Error::ProxyRefused`], final for rejected credentials.
    /// With a proxy given here the environment's `NO_PROXY` is not read:
    /// list the exceptions with [`no_proxy`](Builder::no_proxy).
    /// Default: no proxy.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// let machine = ws_machine::Machine::builder("wss://feed.example.com/")
    ///     .proxy("http://me:s3cret@127.0.0.1:3128")
    ///     .no_proxy("localhost, .internal.example")
    ///     .spawn()?;
    /// assert!(!format!("{machine:?}").contains("s3cret"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.transport.proxy = Some(ProxyChoice::Url(url.into()));
        self
    }

    /// Takes the proxy from the environment when the machine is built, as
    /// curl does: `https_proxy` or `HTTPS_PROXY` for `wss://`; `http_proxy`,
    /// or `HTTP_PROXY` outside CGI programs, for `ws://`; then `all_proxy`
    /// or `ALL_PROXY`; with the exceptions of `no_proxy` or `NO_PROXY` (see
    /// [`no_proxy`](Builder::no_proxy)). Lower case first; empty values
    /// count as unset; without any, no proxy. Replaces
    /// [`proxy`](Builder::proxy). Default: the environment is not read.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// let machine = ws_machine::Machine::builder("wss://feed.example.com/")
    ///     .proxy_from_env()
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn proxy_from_env(mut self) -> Self {
        self.transport.proxy = Some(ProxyChoice::Env);
        self
    }

    /// Hosts reached directly, not through the proxy, in curl's `NO_PROXY`
    /// format: comma-separated names, each matching itself and the names
    /// under it (`example.com` and `.example.com` both match
    /// `api.example.com`), IP addresses and CIDR networks (`10.0.0.0/8`),
    /// or `*` for all. With [`proxy_from_env`](Builder::proxy_from_env) it
    /// replaces the environment's list (as curl's `--noproxy`). Decided
    /// once, for the URL's host. Default: none.
    pub fn no_proxy(mut self, list: impl Into<String>) -> Self {
        self.transport.no_proxy = Some(list.into());
        self
    }

    /// A reconnect budget shared with other machines: every connection
    /// attempt of this machine (the first one, the immediate retry after a
    /// healthy connection, retries after a backoff) waits for its turn,
    /// so that all the machines sharing the budget start at most its rate
    /// of attempts per second after its burst. See [`ReconnectBudget`].
    /// Default: none (attempts start when the backoff says).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use ws_machine::{Machine, ReconnectBudget};
    ///
    /// let budget = ReconnectBudget::new(100.0, 20)?;
    /// let prices = Machine::builder("ws://127.0.0.1:9/prices")
    ///     .reconnect_budget(budget.clone())
    ///     .spawn()?;
    /// let trades = Machine::builder("ws://127.0.0.1:9/trades")
    ///     .reconnect_budget(budget)
    ///     .spawn()?;
    /// # drop((prices, trades));
    /// # Ok(())
    /// # }
    /// ```
    pub fn reconnect_budget(mut self, budget: ReconnectBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Seed of the backoff jitter, for reproducible schedules in tests.
    /// Default: random.
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.reconnect.jitter_seed = Some(seed);
        self
    }

    /// How connections reach the server: `dial` is called for every attempt
    /// with the URL's host and port, and returns an open byte stream (TCP to
    /// somewhere else, a Unix socket, a tunnel, an in-memory pipe in tests).
    /// For `wss://` URLs the machine runs TLS over it; the WebSocket upgrade
    /// follows either way. An error from `dial` fails the attempt as
    /// [`Error::Connect`] (retried). The handshake timeout bounds it.
    /// Default: TCP to the host and port, with `TCP_NODELAY` (set it on your
    /// own TCP streams: the machine writes small messages).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use ws_machine::{Endpoint, Machine};
    ///
    /// // Every connection goes to a local relay, whatever the URL's host.
    /// let machine = Machine::builder("wss://feed.example.com/v1")
    ///     .dialer(|_to: Endpoint| async move {
    ///         let stream = tokio::net::TcpStream::connect("127.0.0.1:9").await?;
    ///         stream.set_nodelay(true)?;
    ///         Ok(stream)
    ///     })
    ///     .spawn()?;
    /// # drop(machine);
    /// # Ok(())
    /// # }
    /// ```
    pub fn dialer<F, Fut, S>(mut self, dial: F) -> Self
    where
        F: Fn(Endpoint) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<S>> + Send + 'static,
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        self.connection.dialer = Dialer::custom(dial);
        self
    }

    /// Checks every option and produces the settings a machine runs with.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`], [`Error::InvalidHeader`] or
    /// [`Error::InvalidConfig`] saying what to fix.
    pub(crate) fn build(self) -> Result<Settings, Error> {
        let target = Target::parse(&self.url)?;
        let fallbacks = self
            .fallback_urls
            .iter()
            .map(|url| Target::parse(url))
            .collect::<Result<Vec<_>, _>>()?;
        if self.url_fn.is_some() && !fallbacks.is_empty() {
            return Err(Error::InvalidConfig {
                option: "url_fn",
                reason: "it computes every attempt's URL: leave fallback_urls out, or pick the URL in the function".into(),
            });
        }
        if let Some(error) = self.header_errors.into_iter().next() {
            return Err(error);
        }
        check_headers(&self.headers)?;
        let mut connection = self.connection;
        let schemes = if self.url_fn.is_some() {
            Schemes::any()
        } else {
            Schemes::of(std::iter::once(&target).chain(&fallbacks))
        };
        connection.extras =
            self.transport
                .build(schemes, &self.headers, &mut connection.tls_config)?;
        let timeouts = self.timeouts;
        let positive = [
            ("ping_interval", timeouts.ping_interval),
            ("pong_timeout", timeouts.pong_timeout),
            ("handshake_timeout", timeouts.handshake),
            ("write_timeout", timeouts.write),
            ("data_timeout", timeouts.data),
        ];
        for (option, value) in positive {
            if value.get().is_zero() {
                return Err(Error::InvalidConfig {
                    option,
                    reason: "must be longer than zero (Duration::MAX means never)".into(),
                });
            }
        }
        let reconnect = self.reconnect;
        if reconnect.backoff_initial > reconnect.backoff_max {
            return Err(Error::InvalidConfig {
                option: "backoff",
                reason: format!(
                    "initial ({:?}) is longer than max ({:?})",
                    reconnect.backoff_initial, reconnect.backoff_max
                ),
            });
        }
        let capacities = [
            ("queue_capacity", self.capacities.queue, 1),
            ("input_capacity", self.capacities.input, 1),
            ("status_capacity", self.capacities.status, 2),
            ("ack_window", self.delivery.ack_window, 1),
            ("max_message_size", connection.max_message_size, 1),
        ];
        for (option, value, min) in capacities {
            if value < min {
                return Err(Error::InvalidConfig {
                    option,
                    reason: format!("must be at least {min}"),
                });
            }
        }
        if reconnect.max_attempts == Some(0) {
            return Err(Error::InvalidConfig {
                option: "max_attempts",
                reason: "must be at least 1".into(),
            });
        }
        if let Some(rate) = self.send_rate
            && (rate.count == 0 || rate.per.is_zero())
        {
            return Err(Error::InvalidConfig {
                option: "send_rate",
                reason: format!(
                    "{} messages per {:?}: both must be more than zero",
                    rate.count, rate.per
                ),
            });
        }
        let heartbeat = self.heartbeat.build(connection.max_message_size)?;
        let ready = self.ready.build()?;
        let conversation = (self.on_connect.is_some() || heartbeat.is_some() || ready.is_some())
            .then(|| {
                Box::new(Conversation {
                    on_connect: self.on_connect,
                    heartbeat,
                    ready,
                })
            });
        Ok(Settings {
            target,
            fallbacks,
            url_fn: self.url_fn,
            connection,
            request: Request::new(self.headers, self.headers_fn),
            conversation,
            final_close: self.final_close,
            timeouts,
            reconnect,
            budget: self.budget,
            delivery: self.delivery,
            capacities: self.capacities,
            send_rate: self.send_rate,
            report_round_trips: self.report_round_trips,
        })
    }

    /// The URL as given (for the [`Machine`](crate::Machine)'s handle).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The close timeout as set (for the blocking machine, whose drop waits
    /// for the stop this bounds).
    pub(crate) fn close_timeout_setting(&self) -> Duration {
        self.timeouts.close.get()
    }
}

/// The heartbeat's options as set, in any order.
struct HeartbeatOptions {
    beat: Option<(Message, Duration)>,
    reply: Option<Matcher>,
    deliver_replies: bool,
}

impl HeartbeatOptions {
    /// The heartbeat's settings: `None` without a heartbeat.
    fn build(self, max_message_size: usize) -> Result<Option<Heartbeat>, Error> {
        let Some((message, every)) = self.beat else {
            if self.reply.is_some() || self.deliver_replies {
                return Err(Error::InvalidConfig {
                    option: "heartbeat_reply",
                    reason: "there is no heartbeat to reply to: set `heartbeat` too".into(),
                });
            }
            return Ok(None);
        };
        if every.is_zero() {
            return Err(Error::InvalidConfig {
                option: "heartbeat",
                reason: "the period must be longer than zero (Duration::MAX means never)".into(),
            });
        }
        if message.len() > max_message_size {
            return Err(Error::InvalidConfig {
                option: "heartbeat",
                reason: format!(
                    "the message ({} bytes) is larger than max_message_size ({max_message_size})",
                    message.len()
                ),
            });
        }
        Ok(Some(Heartbeat {
            message: message.resolved(Mode::Binary),
            every,
            reply: self.reply,
            deliver_replies: self.deliver_replies,
        }))
    }
}

/// The ready gate's options as set, in any order.
struct ReadyOptions {
    when: Option<Matcher>,
    timeout: Option<Duration>,
}

/// The ready timeout's default.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

impl ReadyOptions {
    /// The gate: `None` without one.
    fn build(self) -> Result<Option<ReadyGate>, Error> {
        let Some(is_ready) = self.when else {
            if self.timeout.is_some() {
                return Err(Error::InvalidConfig {
                    option: "ready_timeout",
                    reason: "there is no ready gate: set `ready_when` too".into(),
                });
            }
            return Ok(None);
        };
        let timeout = self.timeout.unwrap_or(READY_TIMEOUT);
        if timeout.is_zero() {
            return Err(Error::InvalidConfig {
                option: "ready_timeout",
                reason: "must be longer than zero (Duration::MAX means never)".into(),
            });
        }
        Ok(Some(ReadyGate { is_ready, timeout }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_policy_defaults() {
        let retried: Vec<u16> = [400, 401, 403, 404, 408, 429, 500, 502, 503]
            .into_iter()
            .filter(|s| default_retry_status(*s))
            .collect();
        assert_eq!(retried, [408, 429, 500, 502, 503]);
    }

    fn invalid(builder: Builder) -> Error {
        match builder.build() {
            Ok(_) => panic!("the options should be refused"),
            Err(e) => e,
        }
    }

    #[test]
    fn options_are_validated() {
        let err = invalid(Builder::new("ws://127.0.0.1:1/").queue_capacity(0));
        assert!(err.to_string().contains("queue_capacity"), "{err}");
        let err = invalid(Builder::new("ws://127.0.0.1:1/").data_timeout(Duration::ZERO));
        assert!(err.to_string().contains("data_timeout"), "{err}");
        let err = invalid(
            Builder::new("ws://127.0.0.1:1/")
                .backoff(Duration::from_secs(2), Duration::from_secs(1)),
        );
        assert!(err.to_string().contains("backoff"), "{err}");
        let err = invalid(Builder::new("ws://127.0.0.1:1/").header("x-token", "a\nb"));
        assert!(matches!(err, Error::InvalidHeader { .. }), "{err}");
    }

    #[test]
    fn ready_gate_options_are_validated() {
        let url = "ws://127.0.0.1:1/";
        let err = invalid(Builder::new(url).ready_timeout(Duration::from_secs(1)));
        assert!(err.to_string().contains("no ready gate"), "{err}");
        let err = invalid(
            Builder::new(url)
                .ready_when(|_| true)
                .ready_timeout(Duration::ZERO),
        );
        assert!(err.to_string().contains("ready_timeout"), "{err}");
        let settings = Builder::new(url)
            .ready_when(|_| true)
            .build()
            .expect("valid");
        let gate = settings.conversation.and_then(|c| c.ready).expect("a gate");
        assert_eq!(gate.timeout, READY_TIMEOUT);
    }

    #[test]
    fn a_send_rate_needs_a_count_and_a_period() {
        let url = "ws://127.0.0.1:1/";
        let err = invalid(Builder::new(url).send_rate(0, Duration::from_secs(1)));
        assert!(err.to_string().contains("send_rate"), "{err}");
        let err = invalid(Builder::new(url).send_rate(10, Duration::ZERO));
        assert!(err.to_string().contains("more than zero"), "{err}");
        let settings = Builder::new(url)
            .send_rate(10, Duration::from_secs(1))
            .build()
            .expect("valid");
        assert!(settings.send_rate.is_some());
    }

    #[test]
    fn fallback_urls_are_checked_and_exclude_a_url_fn() {
        let url = "ws://127.0.0.1:1/";
        let err = invalid(Builder::new(url).fallback_urls(["ws://127.0.0.1:2/", "127.0.0.1:3"]));
        assert!(
            matches!(&err, Error::InvalidUrl { url, .. } if url == "127.0.0.1:3"),
            "{err}"
        );
        let err = invalid(
            Builder::new(url)
                .fallback_urls(["ws://127.0.0.1:2/"])
                .url_fn(|| "ws://127.0.0.1:3/".into()),
        );
        assert!(err.to_string().contains("url_fn"), "{err}");
        let settings = Builder::new(url)
            .fallback_urls(["wss://127.0.0.1:2/"])
            .build()
            .expect("valid");
        assert_eq!(settings.fallbacks.len(), 1);
    }

    #[test]
    fn heartbeat_options_are_validated() {
        let url = "ws://127.0.0.1:1/";
        let err = invalid(Builder::new(url).heartbeat_reply(|_| true));
        assert!(
            err.to_string().contains("no heartbeat to reply to"),
            "{err}"
        );
        let err = invalid(Builder::new(url).heartbeat("ping", Duration::ZERO));
        assert!(err.to_string().contains("longer than zero"), "{err}");
        let err = invalid(
            Builder::new(url)
                .heartbeat("a heartbeat too long", Duration::from_secs(1))
                .max_message_size(4),
        );
        assert!(
            err.to_string().contains("larger than max_message_size"),
            "{err}"
        );
        let settings = Builder::new(url)
            .heartbeat(Message::bytes(&b"\x01"[..]), Duration::from_secs(1))
            .build()
            .expect("valid");
        let beat = settings
            .conversation
            .and_then(|c| c.heartbeat)
            .expect("a heartbeat");
        assert!(beat.message.is_binary(), "plain bytes go out as binary");
        let quiet = Builder::new(url).build().expect("valid");
        assert!(quiet.conversation.is_none(), "nothing to say: nothing held");
    }

    #[test]
    fn headers_take_http_types_and_strings_and_errors_name_them() {
        let ok = Builder::new("ws://127.0.0.1:1/")
            .header(http::header::AUTHORIZATION, String::from("Bearer s3cret"))
            .header("x-client", "test")
            .header(String::from("x-owned"), HeaderValue::from_static("v"))
            .build();
        assert!(ok.is_ok());
        let err = invalid(Builder::new("ws://127.0.0.1:1/").header("bad name", "v"));
        assert!(err.to_string().contains("\"bad name\""), "{err}");
        let err = invalid(
            Builder::new("ws://127.0.0.1:1/").header(http::header::COOKIE, "s3cret\r\nx: y"),
        );
        let text = err.to_string();
        assert!(
            text.contains("cookie") && !text.contains("s3cret"),
            "{text}"
        );
    }

    #[test]
    fn debug_shows_header_names_but_not_values() {
        let builder = Builder::new("ws://127.0.0.1:1/").header("authorization", "Bearer s3cret");
        let debug = format!("{builder:?}");
        assert!(debug.contains("authorization"), "{debug}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }
}
