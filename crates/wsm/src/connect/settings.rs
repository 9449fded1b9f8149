//! The validated settings of `wsm connect`, and the machine they describe.

use std::{fmt, path::PathBuf, time::Duration};

use ws_machine::{Builder, Machine, Message};

use super::{
    args::{BinaryOut, Secret, StatusFormat},
    insecure,
    lines::Mode,
};
use crate::error::Error;

/// Everything a session runs with, checked.
pub(crate) struct Settings {
    pub(crate) url: String,
    /// `--fallback-url`, in order.
    pub(crate) fallback_urls: Vec<String>,
    /// `-H`, `--origin` and `--auth`, in that order.
    pub(crate) headers: Vec<(String, Secret)>,
    pub(crate) header_cmd: Option<String>,
    /// `--on-connect` lines, then `-x` messages.
    pub(crate) on_connect: Vec<Message>,
    pub(crate) heartbeat: Option<Heartbeat>,
    /// `--ready-on` and `--ready-timeout`.
    pub(crate) ready_on: Option<(String, Duration)>,
    pub(crate) connection: Connection,
    pub(crate) transport: Transport,
    /// How lines are sent until `/text` or `/binary`.
    pub(crate) mode: Mode,
    /// Marks binary lines, in and out; `None` when empty.
    pub(crate) binary_prefix: Option<String>,
    pub(crate) binary_out: BinaryOut,
    pub(crate) status: StatusFormat,
    /// `--show-ping`: round trips are reported and printed.
    pub(crate) show_ping: bool,
    /// False with `--no-stdin`.
    pub(crate) read_stdin: bool,
    /// `--slash`: slash commands even when stdin is not a terminal.
    pub(crate) slash: bool,
    pub(crate) count: Option<u64>,
    pub(crate) wait: Option<Duration>,
    /// `--expire`.
    pub(crate) expire: Option<Duration>,
}

/// Header values, the command and the first messages may hold credentials:
/// only their names and counts are shown.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("url", &self.shown_url())
            .field(
                "fallback_urls",
                &self
                    .fallback_urls
                    .iter()
                    .map(|url| ws_machine::redact_url(url))
                    .collect::<Vec<_>>(),
            )
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .field("header_cmd", &self.header_cmd.is_some())
            .field("on_connect", &self.on_connect.len())
            .field("heartbeat", &self.heartbeat.as_ref().map(|h| h.every))
            .field("ready_on", &self.ready_on.is_some())
            .field("connection", &self.connection)
            .field("transport", &self.transport)
            .field("mode", &self.mode)
            .field("binary_prefix", &self.binary_prefix)
            .field("binary_out", &self.binary_out)
            .field("status", &self.status)
            .field("read_stdin", &self.read_stdin)
            .field("slash", &self.slash)
            .field("count", &self.count)
            .field("wait", &self.wait)
            .field("expire", &self.expire)
            .finish()
    }
}

/// `--heartbeat` and its two companions.
pub(crate) struct Heartbeat {
    pub(crate) message: Message,
    pub(crate) every: Duration,
    /// `--heartbeat-reply`: the one message that answers.
    pub(crate) reply: Option<Message>,
}

/// The library's options, one field per flag.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) ping_interval: Duration,
    pub(crate) pong_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) data_timeout: Option<Duration>,
    pub(crate) close_timeout: Duration,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    /// False with `--once`.
    pub(crate) reconnect: bool,
    /// `--final-close`: the server's close codes that end wsm.
    pub(crate) final_close: Vec<u16>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) min_uptime: Duration,
    pub(crate) queue_capacity: usize,
    /// `--send-rate`.
    pub(crate) send_rate: Option<(u32, Duration)>,
    pub(crate) max_message_size: usize,
}

/// The proxy and TLS flags.
#[derive(Debug, Clone, Default)]
pub(crate) struct Transport {
    /// `--proxy`: `None` takes the environment's; empty means none.
    pub(crate) proxy: Option<Secret>,
    pub(crate) noproxy: Option<String>,
    pub(crate) cacerts: Vec<PathBuf>,
    /// `--cert` and `--key`.
    pub(crate) client_cert: Option<(PathBuf, PathBuf)>,
    pub(crate) insecure: bool,
    pub(crate) protocols: Vec<String>,
    pub(crate) require_protocol: bool,
    pub(crate) compression: bool,
}

impl Transport {
    /// The flags as the library's options.
    fn apply(&self, mut builder: Builder) -> Result<Builder, Error> {
        builder = match &self.proxy {
            None => builder.proxy_from_env(),
            Some(Secret(url)) if url.is_empty() => builder,
            Some(Secret(url)) => builder.proxy(url.clone()),
        };
        if let Some(list) = &self.noproxy {
            builder = builder.no_proxy(list.clone());
        }
        if self.insecure {
            let client = self
                .client_cert
                .as_ref()
                .map(|(cert, key)| (cert.as_path(), key.as_path()));
            builder = builder.tls_config(insecure::config(client)?);
        } else {
            for ca in &self.cacerts {
                builder = builder.ca_file(ca);
            }
            if let Some((cert, key)) = &self.client_cert {
                builder = builder.client_cert_files(cert, key);
            }
        }
        if !self.protocols.is_empty() {
            builder = builder
                .protocols(self.protocols.clone())
                .require_protocol(self.require_protocol);
        }
        if self.compression {
            builder = builder.compression(ws_machine::Deflate::new());
        }
        Ok(builder)
    }
}

impl Settings {
    /// The URL as status lines and `Debug` show it: a user name and
    /// password in it replaced by `***`.
    pub(crate) fn shown_url(&self) -> String {
        ws_machine::redact_url(&self.url).into_owned()
    }

    /// The machine's builder: every flag mapped to its library option. The
    /// `--header-cmd` hook is added by the session, which owns its notes.
    ///
    /// # Errors
    ///
    /// With `--insecure`, a client certificate or key that cannot be read.
    pub(crate) fn builder(&self) -> Result<Builder, Error> {
        let c = &self.connection;
        let mut builder = Machine::builder(self.url.clone())
            .ping_interval(c.ping_interval)
            .pong_timeout(c.pong_timeout)
            .handshake_timeout(c.handshake_timeout)
            .write_timeout(c.write_timeout)
            .close_timeout(c.close_timeout)
            .backoff(c.backoff_initial, c.backoff_max)
            .reconnect(c.reconnect)
            .min_uptime(c.min_uptime)
            .queue_capacity(c.queue_capacity)
            .max_message_size(c.max_message_size)
            .report_round_trips(self.show_ping);
        if !self.fallback_urls.is_empty() {
            builder = builder.fallback_urls(self.fallback_urls.clone());
        }
        if let Some(timeout) = c.data_timeout {
            builder = builder.data_timeout(timeout);
        }
        if !c.final_close.is_empty() {
            let codes = c.final_close.clone();
            builder = builder.final_close_codes(move |code| codes.contains(&code));
        }
        if let Some((count, per)) = c.send_rate {
            builder = builder.send_rate(count, per);
        }
        if let Some(attempts) = c.max_attempts {
            builder = builder.max_attempts(attempts);
        }
        for (name, Secret(value)) in &self.headers {
            builder = builder.header(name, value);
        }
        if !self.on_connect.is_empty() {
            builder = builder.on_connect(self.on_connect.clone());
        }
        if let Some((text, timeout)) = &self.ready_on {
            let text = text.clone().into_bytes();
            builder = builder
                .ready_when(move |message| {
                    // Not empty (checked with the flag), so `windows` takes it.
                    !text.is_empty()
                        && message
                            .as_ref()
                            .windows(text.len())
                            .any(|window| window == text.as_slice())
                })
                .ready_timeout(*timeout);
        }
        if let Some(beat) = &self.heartbeat {
            builder = builder.heartbeat(beat.message.clone(), beat.every);
            if let Some(reply) = beat.reply.clone() {
                builder = builder.heartbeat_reply(move |message| *message == reply);
            }
        }
        self.transport.apply(builder)
    }
}
