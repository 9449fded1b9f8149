//! A machine's settings: the [`Builder`] the caller fills in, and the
//! validated [`Settings`] it produces.
//!
//! The driver never sees the builder: [`Builder::build`] checks every option
//! once and hands over a `Settings` whose parts are grouped by who uses them
//! (the connector, the keep-alive, the reconnect policy, the delivery
//! bookkeeping), so each layer takes only its group. A
//! [`ReconnectBudget`] is the one option shared between machines.

mod budget;
mod builder;
mod dialer;
mod messages;
mod protocols;
mod proxy;
mod request;
mod tls;
mod transport;

use std::{sync::Arc, time::Duration};

use tokio_rustls::rustls;

use crate::types::{Message, Target};

pub use budget::ReconnectBudget;
pub use builder::{Builder, default_retry_status};
pub(crate) use dialer::{ByteStream, Dialer};
pub use messages::IntoMessages;
pub(crate) use protocols::{Protocols, accept_unoffered};
pub(crate) use proxy::{Proxy, Scheme as ProxyScheme};
pub(crate) use request::{HeadersFn, Request, check_headers};
use tls::Pem;
pub(crate) use tls::{config as tls_client_config, mozilla_roots};
pub(crate) use transport::{Extras, ProxyChoice, Schemes, TransportOptions};

/// Computes the messages sent first on one connection.
pub(crate) type OnConnectFn = Arc<dyn Fn() -> Vec<Message> + Send + Sync>;

/// Whether a rejected handshake's HTTP status is retried (see
/// [`Builder::retry_status`]).
pub(crate) type RetryStatus = Arc<dyn Fn(u16) -> bool + Send + Sync>;

/// Extracts the acknowledgement key of a message (see
/// [`Builder::ack_key`]).
pub(crate) type AckKey = Arc<dyn Fn(&Message) -> Option<u64> + Send + Sync>;

/// Computes the URL of one attempt (see [`Builder::url_fn`]).
pub(crate) type UrlFn = Arc<dyn Fn() -> String + Send + Sync>;

/// Tells whether a received message is a particular one (a heartbeat's
/// reply).
pub(crate) type Matcher = Arc<dyn Fn(&Message) -> bool + Send + Sync>;

/// The application-level heartbeat (see [`Builder::heartbeat`]).
pub(crate) struct Heartbeat {
    /// What is sent, of a known kind and within the size limit.
    pub(crate) message: Message,
    pub(crate) every: Duration,
    /// What counts as a reply; `None`: anything that arrives.
    pub(crate) reply: Option<Matcher>,
    /// Whether matched replies also go to `input`.
    pub(crate) deliver_replies: bool,
}

/// What the application says on every connection besides the caller's
/// messages: the messages sent first, the heartbeat, and what makes the
/// connection ready. Boxed in the
/// settings and the driver: most machines have none of it, and every idle
/// machine keeps its task's state.
pub(crate) struct Conversation {
    pub(crate) on_connect: Option<OnConnectFn>,
    pub(crate) heartbeat: Option<Heartbeat>,
    pub(crate) ready: Option<ReadyGate>,
}

/// The ready gate (see [`Builder::ready_when`]).
pub(crate) struct ReadyGate {
    /// Whether a received message says the connection is ready.
    pub(crate) is_ready: Matcher,
    pub(crate) timeout: Duration,
}

/// Everything a machine runs with, validated.
pub(crate) struct Settings {
    pub(crate) target: Target,
    /// Tried in turn after `target` fails (see [`Builder::fallback_urls`]).
    pub(crate) fallbacks: Vec<Target>,
    /// Computes every attempt's URL instead (see [`Builder::url_fn`]).
    pub(crate) url_fn: Option<UrlFn>,
    pub(crate) connection: Connection,
    pub(crate) request: Request,
    /// `None` when there is nothing to say.
    pub(crate) conversation: Option<Box<Conversation>>,
    pub(crate) timeouts: Timeouts,
    pub(crate) reconnect: Reconnect,
    /// Shared with other machines: when attempts may start.
    pub(crate) budget: Option<ReconnectBudget>,
    /// Which close codes from the server are final.
    pub(crate) final_close: Option<CloseCodes>,
    pub(crate) delivery: Delivery,
    pub(crate) capacities: Capacities,
    /// The outgoing rate limit.
    pub(crate) send_rate: Option<SendRate>,
    /// Report every round trip measured on `status`.
    pub(crate) report_round_trips: bool,
}

/// At most `count` messages per `per` (see [`Builder::send_rate`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SendRate {
    pub(crate) count: u32,
    pub(crate) per: Duration,
}

/// Decides whether a close code from the server is final (see
/// [`Builder::final_close_codes`]).
pub(crate) type CloseCodes = Arc<dyn Fn(u16) -> bool + Send + Sync>;

/// How connections are opened.
#[derive(Clone)]
pub(crate) struct Connection {
    pub(crate) dialer: Dialer,
    pub(crate) tls_config: Option<Arc<rustls::ClientConfig>>,
    pub(crate) max_message_size: usize,
    pub(crate) retry_status: RetryStatus,
    /// A proxy, a TLS server name, subprotocols: boxed, `None` for the
    /// machines that use none of them.
    pub(crate) extras: Option<Box<Extras>>,
}

/// The timeouts of one connection and of stopping.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) ping_interval: Span,
    pub(crate) pong_timeout: Span,
    pub(crate) handshake: Span,
    pub(crate) write: Span,
    /// No data message for this long: the connection is stale
    /// (`Duration::MAX`: never).
    pub(crate) data: Span,
    /// Bounds the whole stop: close handshake, hand-over, draining `output`.
    pub(crate) close: Span,
}

/// A duration kept in 8 bytes instead of a `Duration`'s 16, because every
/// idle machine's task holds its timeouts: whole nanoseconds, exact up to
/// about 584 years, and longer ones (such as `Duration::MAX`, "never")
/// saturate there, which still means never.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span(u64);

impl Span {
    pub(crate) fn get(self) -> Duration {
        Duration::from_nanos(self.0)
    }
}

impl From<Duration> for Span {
    fn from(duration: Duration) -> Self {
        Self(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX))
    }
}

impl std::fmt::Debug for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// When to try again, and when to give up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reconnect {
    /// False: one connection, then stop.
    pub(crate) enabled: bool,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) min_uptime: Duration,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) jitter_seed: Option<u64>,
}

/// The delivery bookkeeping's options.
#[derive(Clone)]
pub(crate) struct Delivery {
    pub(crate) ack_key: Option<AckKey>,
    pub(crate) ack_window: usize,
}

/// The channels' sizes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Capacities {
    pub(crate) queue: usize,
    pub(crate) input: usize,
    pub(crate) status: usize,
}
