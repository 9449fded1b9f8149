//! `wsm connect`'s flags as clap parses them, and the one step that turns
//! them into [`Settings`].
//!
//! Names follow websocat and wscat where those tools have the flag
//! (`-H/--header`, `--origin`, `--auth`, `-x/--execute`, `-w/--wait`,
//! `--slash`, `-b/--binary`, `-t/--text`, `--binary-prefix`,
//! `--ping-interval`), and the library's option names otherwise. Defaults
//! are the library's, shown in `--help`; a unit test keeps them equal.

use std::{path::PathBuf, time::Duration};

use base64::Engine as _;
use clap::{ValueEnum, builder::RangedU64ValueParser};
use ws_machine::Message;

pub(crate) use super::values::{HeaderArg, Secret};
use super::{
    lines::{LineParser, Mode, Parsed},
    settings::{Connection, Heartbeat, Settings, Transport},
    values::{auth, duration, header, not_empty, positive_duration, rate, secret, size},
};
use crate::{error::Error, exit};

/// Examples and slash commands, shown by `--help` after the flags.
const EXAMPLES: &str = concat!(
    "EXAMPLES:\n",
    "  Talk to a server, one line per message:\n",
    "    wsm wss://echo.example.com/\n",
    "  Pipe into jq (each message is flushed at once):\n",
    "    wsm --no-stdin wss://feed.example.com/prices | jq --unbuffered .price\n",
    "  Subscribe on every (re)connection, stop after 10 messages:\n",
    "    wsm -x '{\"op\":\"subscribe\",\"topic\":\"BTC-USD\"}' -n 10 --no-stdin wss://feed.example.com/\n",
    "  A token that expires: fetched again before every attempt:\n",
    "    wsm --header-cmd 'echo \"Authorization: Bearer $(get-token)\"' wss://api.example.com/ws\n",
    "  Send a batch, wait 2 s for the answers, exit:\n",
    "    wsm -w 2s ws://127.0.0.1:9001/ < requests.txt\n",
    "  One binary message from a text line, binary answers as hex:\n",
    "    echo 'base64:3q2+7w==' | wsm --binary-out hex ws://127.0.0.1:9001/\n",
    "  Statuses as JSON lines for a script:\n",
    "    wsm --status json ws://127.0.0.1:9001/ 2> >(jq -c 'select(.state == \"DISCONNECTED\")')\n",
    "\n",
    "INTERACTIVE USE (stdin is a terminal, or --slash):\n",
    "  /ping                 send a ping (no answer within --pong-timeout: reconnect;\n",
    "                        with --show-ping, its round trip is printed)\n",
    "  /reconnect            close this connection and connect again at once\n",
    "  /text, /binary        send the following lines as text or as binary\n",
    "  /close [CODE [REASON]] close now (code 1000 by default) and exit\n",
    "  /quit                 deliver what is queued, close cleanly, exit (like Ctrl-D)\n",
    "  /help                 list these commands\n",
    "  //anything            send \"/anything\"\n",
    "  Status lines are printed above the line being typed. Ctrl-C closes cleanly and\n",
    "  prints what was not delivered; a second Ctrl-C exits at once.\n",
    "\n",
);

/// What `--help` shows after the flags: examples, slash commands, and the
/// exit codes (from [`exit::Exit`], their one source).
fn after_long_help() -> String {
    format!("{EXAMPLES}EXIT CODES:\n{}", exit::Exit::table())
}

/// Flags of `wsm connect`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Connect to a WebSocket server: stdin lines out, messages in",
    long_about = "Connect to a WebSocket server and keep the connection up.\n\n\
        Each line of stdin becomes a message; each message received goes to \
        stdout, one per line, flushed at once. Every change of status goes to \
        stderr. Through disconnects, lines typed meanwhile wait and are sent \
        after reconnecting. When stdin ends, wsm delivers what is queued \
        (reconnecting if it must), closes cleanly and exits 0.\n\n\
        Binary messages received are printed as `base64:` and their Base64 by \
        default (--binary-out), which never upsets a terminal and can be sent \
        back as is: a line starting with the binary prefix is sent as one \
        binary message.\n\n\
        `wsm URL` is short for `wsm connect URL`.",
    after_help = "Run with --help for examples, slash commands and exit codes.",
    after_long_help = after_long_help()
)]
pub(crate) struct ConnectArgs {
    /// The server's URL: ws://HOST:PORT/PATH or wss://HOST/PATH (the port is optional).
    #[arg(value_name = "URL")]
    pub(crate) url: String,

    // ---- Messages -----------------------------------------------------
    /// Send lines as text messages (the default).
    #[arg(short = 't', long, help_heading = "Messages")]
    pub(crate) text: bool,
    /// Send lines as binary messages.
    #[arg(short = 'b', long, conflicts_with = "text", help_heading = "Messages")]
    pub(crate) binary: bool,
    /// A line starting with PREFIX is Base64 after it and goes out as one
    /// binary message; binary messages received are printed with it
    /// (--binary-out base64). An empty PREFIX turns this off.
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "base64:",
        help_heading = "Messages"
    )]
    pub(crate) binary_prefix: String,
    /// How to print binary messages received: `base64` (the prefix and
    /// Base64, one line each), `hex` (lowercase hex, one line each) or `raw`
    /// (the bytes as they are, nothing added).
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        default_value_t = BinaryOut::Base64,
        help_heading = "Messages"
    )]
    pub(crate) binary_out: BinaryOut,
    /// A message sent first on every connection, before anything queued
    /// (subscribe, authenticate). Repeatable; after those of --on-connect.
    #[arg(
        short = 'x',
        long = "execute",
        value_name = "MSG",
        help_heading = "Messages"
    )]
    pub(crate) execute: Vec<String>,
    /// A file whose lines are sent first on every connection, like -x.
    #[arg(long, value_name = "FILE", help_heading = "Messages")]
    pub(crate) on_connect: Option<PathBuf>,
    /// A line not written within DURATION of being read (the connection
    /// was down meanwhile) is not sent late: it is reported as refused
    /// (exit 5 at the end).
    #[arg(long, value_name = "DURATION", value_parser = positive_duration, help_heading = "Messages")]
    pub(crate) expire: Option<Duration>,
    /// Hold lines until a received message contains TEXT (the server's
    /// answer to the login of -x or --on-connect), on every connection;
    /// the status line says READY then.
    #[arg(long, value_name = "TEXT", value_parser = not_empty, help_heading = "Messages")]
    pub(crate) ready_on: Option<String>,
    /// With --ready-on: how long a connection may take to become ready
    /// before it is replaced.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = positive_duration, help_heading = "Messages")]
    pub(crate) ready_timeout: Duration,
    /// Do not read stdin: only print what the server sends (feeds). Runs
    /// until Ctrl-C, -n, or the connection fails for good.
    #[arg(long, help_heading = "Messages")]
    pub(crate) no_stdin: bool,
    /// Read slash commands (/ping, /reconnect, ...) from stdin even when it
    /// is not a terminal.
    #[arg(long, help_heading = "Messages")]
    pub(crate) slash: bool,

    // ---- Ending -------------------------------------------------------
    /// Exit (0) after N messages received.
    #[arg(
        short = 'n',
        long,
        value_name = "N",
        value_parser = RangedU64ValueParser::<u64>::new().range(1..),
        help_heading = "Ending"
    )]
    pub(crate) count: Option<u64>,
    /// After stdin ends and everything queued is sent, wait this long for
    /// answers before closing (default: close at once).
    #[arg(short = 'w', long, value_name = "DURATION", value_parser = duration, help_heading = "Ending")]
    pub(crate) wait: Option<Duration>,

    // ---- Status -------------------------------------------------------
    /// How status lines are printed on stderr: `human`
    /// (`12:00:01.234 CONNECTED ws://...`) or `json` (one object per line,
    /// with the close code, HTTP status and error of each disconnection).
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value_t = StatusFormat::Human,
        help_heading = "Status"
    )]
    pub(crate) status: StatusFormat,
    /// Print the round trip of every ping as its pong arrives
    /// (`12:00:01.234 PONG 1.8ms`; JSON: `"event":"pong"` with `rtt_ms`):
    /// the keep-alive pings (--ping-interval) and /ping's.
    #[arg(long, help_heading = "Status")]
    pub(crate) show_ping: bool,

    // ---- Handshake ----------------------------------------------------
    /// A request header, 'Name: value'. Repeatable.
    #[arg(
        short = 'H',
        long = "header",
        value_name = "NAME: VALUE",
        value_parser = header,
        help_heading = "Handshake"
    )]
    pub(crate) headers: Vec<HeaderArg>,
    /// A shell command run before every connection attempt; each line it
    /// prints is a header 'Name: value' (for tokens that expire). It must
    /// finish within 5 s; while it runs nothing else is printed.
    #[arg(long, value_name = "CMD", help_heading = "Handshake")]
    pub(crate) header_cmd: Option<String>,
    /// The Origin header.
    #[arg(short = 'o', long, value_name = "ORIGIN", help_heading = "Handshake")]
    pub(crate) origin: Option<String>,
    /// Basic authentication: an `Authorization: Basic` header.
    #[arg(long, value_name = "USER:PASS", value_parser = auth, help_heading = "Handshake")]
    pub(crate) auth: Option<Secret>,

    // ---- Connection ---------------------------------------------------
    /// Send a ping after this long without receiving anything.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = positive_duration, help_heading = "Connection")]
    pub(crate) ping_interval: Duration,
    /// After a ping, the connection is dead if nothing arrives within this
    /// long; wsm reconnects.
    #[arg(long, visible_alias = "ping-timeout", value_name = "DURATION", default_value = "10s", value_parser = positive_duration, help_heading = "Connection")]
    pub(crate) pong_timeout: Duration,
    /// Limit for one attempt: DNS, TCP, TLS and the upgrade together.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = positive_duration, help_heading = "Connection")]
    pub(crate) handshake_timeout: Duration,
    /// The connection is dead if a write makes no progress for this long.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = positive_duration, help_heading = "Connection")]
    pub(crate) write_timeout: Duration,
    /// A heartbeat sent every --heartbeat-interval on every connection, for
    /// servers that ignore pings and want a message (like -x: text, or
    /// binary with the prefix). No reply within --pong-timeout: reconnect.
    #[arg(long, value_name = "MSG", help_heading = "Connection")]
    pub(crate) heartbeat: Option<String>,
    /// How often the heartbeat goes out.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = positive_duration, help_heading = "Connection")]
    pub(crate) heartbeat_interval: Duration,
    /// The heartbeat's reply (exactly this message): only it answers the
    /// heartbeat, and it is not printed. Default: anything answers.
    #[arg(
        long,
        value_name = "MSG",
        requires = "heartbeat",
        help_heading = "Connection"
    )]
    pub(crate) heartbeat_reply: Option<String>,
    /// The feed is stale, and the connection replaced, if no message
    /// arrives for this long (default: never).
    #[arg(long, value_name = "DURATION", value_parser = positive_duration, help_heading = "Connection")]
    pub(crate) data_timeout: Option<Duration>,
    /// How long closing waits for the server's answer to the close frame.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration, help_heading = "Connection")]
    pub(crate) close_timeout: Duration,
    /// The shortest wait between failed attempts (exponential backoff with
    /// jitter).
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = duration, help_heading = "Connection")]
    pub(crate) backoff_initial: Duration,
    /// The longest wait between failed attempts.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration, help_heading = "Connection")]
    pub(crate) backoff_max: Duration,
    /// A URL to fail over to when an attempt fails (tried in order, then
    /// the first again). Repeatable.
    #[arg(long, value_name = "URL", value_parser = secret, help_heading = "Connection")]
    pub(crate) fallback_url: Vec<Secret>,
    /// Connect once: when the connection ends, or its attempt fails, exit
    /// (code 6; the last status line says why) instead of reconnecting.
    #[arg(long, help_heading = "Connection")]
    pub(crate) once: bool,
    /// A close code from the server that ends wsm (exit 3) instead of a
    /// reconnect: e.g. 1008, or an application's 4xxx code for a revoked
    /// key. Repeatable.
    #[arg(
        long,
        value_name = "CODE",
        value_parser = RangedU64ValueParser::<u16>::new().range(1000..5000),
        help_heading = "Connection"
    )]
    pub(crate) final_close: Vec<u16>,
    /// Give up (exit 4) after N failed attempts in a row (default: never).
    #[arg(
        long,
        value_name = "N",
        value_parser = RangedU64ValueParser::<u32>::new().range(1..),
        help_heading = "Connection"
    )]
    pub(crate) max_retries: Option<u32>,
    /// A connection that lasted this long is healthy (an immediate
    /// reconnect); so is one that lasted a tenth of it and brought two
    /// messages; any other counts as a failed attempt (backoff).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration, help_heading = "Connection")]
    pub(crate) min_uptime: Duration,
    /// At most N messages in any DURATION (e.g. 10/1s), for servers that
    /// disconnect clients over their rate; lines wait meanwhile.
    #[arg(long, value_name = "N/DURATION", value_parser = rate, help_heading = "Connection")]
    pub(crate) send_rate: Option<(u32, Duration)>,
    /// How many messages can wait while disconnected; when full, wsm stops
    /// reading stdin until there is room.
    #[arg(
        long,
        value_name = "N",
        default_value = "1024",
        value_parser = RangedU64ValueParser::<usize>::new().range(1..),
        help_heading = "Connection"
    )]
    pub(crate) queue: usize,
    /// The largest message in either direction, in bytes (suffixes KiB,
    /// MiB, GiB). A larger one received ends the connection (code 1009);
    /// one to send is refused.
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = size, help_heading = "Connection")]
    pub(crate) max_message_size: usize,

    // ---- Proxy and TLS ------------------------------------------------
    /// Connect through this proxy: `http://[USER:PASS@]HOST[:PORT]` (a
    /// CONNECT tunnel), socks5://... (the name resolved here) or
    /// socks5h://... (resolved by the proxy). An empty URL: no proxy.
    /// Default: the environment's, as curl reads it (https_proxy for wss://,
    /// http_proxy for ws://, all_proxy; except the hosts of no_proxy).
    #[arg(long, value_name = "URL", value_parser = secret, help_heading = "Proxy and TLS")]
    pub(crate) proxy: Option<Secret>,
    /// Hosts reached without the proxy: comma-separated names (each also
    /// matching the names under it), IP addresses, CIDR networks, or `*`.
    /// Replaces no_proxy/NO_PROXY.
    #[arg(long, value_name = "LIST", help_heading = "Proxy and TLS")]
    pub(crate) noproxy: Option<String>,
    /// Trust the CA certificates in this PEM file for wss://, in place of
    /// the built-in (Mozilla) roots. Repeatable.
    #[arg(long, value_name = "FILE", help_heading = "Proxy and TLS")]
    pub(crate) cacert: Vec<PathBuf>,
    /// A client certificate chain in PEM, for servers that ask for one
    /// (mutual TLS). Needs --key.
    #[arg(
        long,
        value_name = "FILE",
        requires = "key",
        help_heading = "Proxy and TLS"
    )]
    pub(crate) cert: Option<PathBuf>,
    /// The private key of --cert, in PEM.
    #[arg(
        long,
        value_name = "FILE",
        requires = "cert",
        help_heading = "Proxy and TLS"
    )]
    pub(crate) key: Option<PathBuf>,
    /// Do not check the server's certificate. Dangerous: anyone on the way
    /// can read and change the connection. wsm says so on stderr.
    #[arg(
        short = 'k',
        long,
        conflicts_with = "cacert",
        help_heading = "Proxy and TLS"
    )]
    pub(crate) insecure: bool,
    /// A subprotocol to offer (Sec-WebSocket-Protocol), in order of
    /// preference. Repeatable. The server's choice is shown with CONNECTED.
    #[arg(long = "protocol", value_name = "NAME", help_heading = "Proxy and TLS")]
    pub(crate) protocols: Vec<String>,
    /// Fail, for good, when the server chooses none of the --protocol
    /// names.
    #[arg(long, requires = "protocols", help_heading = "Proxy and TLS")]
    pub(crate) require_protocol: bool,
    /// Offer permessage-deflate (RFC 7692) with its default parameters;
    /// what the server agreed to is shown with CONNECTED (nothing shown:
    /// it declined, and messages go uncompressed).
    #[arg(long, help_heading = "Proxy and TLS")]
    pub(crate) compression: bool,
}

/// How binary messages received are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BinaryOut {
    /// The bytes as received, nothing added.
    Raw,
    /// The binary prefix and the Base64 of the bytes, one line each.
    Base64,
    /// The bytes in lowercase hex, one line each.
    Hex,
}

/// How status lines are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StatusFormat {
    /// `12:00:01.234 CONNECTED ws://...`
    Human,
    /// One JSON object per line.
    Json,
}

impl ConnectArgs {
    /// Checks what clap cannot and reads `--on-connect`: the settings the
    /// session runs with.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] for flags that do not fit together or a file that
    /// cannot be read or holds a line that cannot be sent.
    pub(crate) fn settings(self) -> Result<Settings, Error> {
        if self.backoff_initial > self.backoff_max {
            return Err(Error::Usage(format!(
                "--backoff-initial ({}) is longer than --backoff-max ({})",
                humantime::format_duration(self.backoff_initial),
                humantime::format_duration(self.backoff_max)
            )));
        }
        let mode = if self.binary {
            Mode::Binary
        } else {
            Mode::Text
        };
        let prefix = (!self.binary_prefix.is_empty()).then_some(self.binary_prefix);
        // Slash commands are for typed lines, not for -x or the file.
        let parser = LineParser::new(mode, prefix.clone(), false);

        let mut on_connect = Vec::new();
        if let Some(path) = &self.on_connect {
            let text = std::fs::read(path).map_err(|source| Error::File {
                path: path.clone(),
                source,
            })?;
            for (n, line) in text.split(|&b| b == b'\n').enumerate() {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.is_empty() {
                    continue;
                }
                on_connect.push(startup_message(&parser, line, || {
                    format!("{} line {}", path.display(), n + 1)
                })?);
            }
        }
        for (n, text) in self.execute.iter().enumerate() {
            on_connect.push(startup_message(&parser, text.as_bytes(), || {
                format!("-x number {}", n + 1)
            })?);
        }

        let heartbeat = match self.heartbeat {
            None => None,
            Some(text) => Some(Heartbeat {
                message: startup_message(&parser, text.as_bytes(), || "--heartbeat".into())?,
                every: self.heartbeat_interval,
                reply: self
                    .heartbeat_reply
                    .map(|reply| {
                        startup_message(&parser, reply.as_bytes(), || "--heartbeat-reply".into())
                    })
                    .transpose()?,
            }),
        };

        let mut headers: Vec<(String, Secret)> = self
            .headers
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect();
        if let Some(origin) = self.origin {
            headers.push(("Origin".into(), Secret(origin)));
        }
        if let Some(Secret(credentials)) = self.auth {
            let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
            headers.push(("Authorization".into(), Secret(format!("Basic {encoded}"))));
        }

        Ok(Settings {
            url: self.url,
            fallback_urls: self
                .fallback_url
                .into_iter()
                .map(|Secret(url)| url)
                .collect(),
            headers,
            header_cmd: self.header_cmd,
            on_connect,
            heartbeat,
            ready_on: self.ready_on.map(|text| (text, self.ready_timeout)),
            connection: Connection {
                ping_interval: self.ping_interval,
                pong_timeout: self.pong_timeout,
                handshake_timeout: self.handshake_timeout,
                write_timeout: self.write_timeout,
                data_timeout: self.data_timeout,
                close_timeout: self.close_timeout,
                backoff_initial: self.backoff_initial,
                backoff_max: self.backoff_max,
                reconnect: !self.once,
                final_close: self.final_close,
                max_attempts: self.max_retries,
                min_uptime: self.min_uptime,
                queue_capacity: self.queue,
                send_rate: self.send_rate,
                max_message_size: self.max_message_size,
            },
            transport: Transport {
                proxy: self.proxy,
                noproxy: self.noproxy,
                cacerts: self.cacert,
                client_cert: self.cert.zip(self.key),
                insecure: self.insecure,
                protocols: self.protocols,
                require_protocol: self.require_protocol,
                compression: self.compression,
            },
            mode,
            binary_prefix: prefix,
            binary_out: self.binary_out,
            status: self.status,
            show_ping: self.show_ping,
            read_stdin: !self.no_stdin,
            slash: self.slash,
            count: self.count,
            wait: self.wait,
            expire: self.expire,
        })
    }
}

/// A message of `-x` or `--on-connect`, or a usage error saying which one is
/// wrong.
fn startup_message(
    parser: &LineParser,
    line: &[u8],
    which: impl Fn() -> String,
) -> Result<Message, Error> {
    match parser.parse(line) {
        Parsed::Send(message) => Ok(message),
        Parsed::Refused(why) => Err(Error::Usage(format!("{}: {why}", which()))),
        // Slash commands are off for these lines.
        Parsed::Command(_) | Parsed::Unknown(_) => Err(Error::Usage(format!(
            "{}: slash commands cannot be sent first",
            which()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ConnectArgs,
    }

    fn parse(args: &[&str]) -> ConnectArgs {
        Wrapper::try_parse_from(std::iter::once("connect").chain(args.iter().copied()))
            .expect("valid flags")
            .args
    }

    #[test]
    fn defaults_are_the_librarys() {
        let url = "ws://127.0.0.1:9/";
        let ours = parse(&[url])
            .settings()
            .expect("valid")
            .builder()
            .expect("valid");
        // Beyond the library's defaults, wsm takes the environment's proxy,
        // as curl does.
        let library = ws_machine::Machine::builder(url).proxy_from_env();
        assert_eq!(format!("{ours:?}"), format!("{library:?}"));
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let args = parse(&[
            "ws://127.0.0.1:9/",
            "-H",
            "Authorization: Bearer s3cret",
            "--auth",
            "me:pa55word",
        ]);
        let shown = format!("{args:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("pa55word"),
            "{shown}"
        );
        let settings = args.settings().expect("valid");
        let shown = format!("{:?}", settings.headers);
        assert!(
            !shown.contains("s3cret") && !shown.contains("bWU6cGE1NXdvcmQ"),
            "{shown}"
        );
        // The header itself is right.
        assert_eq!(settings.headers[1].0, "Authorization");
        assert_eq!(settings.headers[1].1.0, "Basic bWU6cGE1NXdvcmQ=");
    }

    #[test]
    fn inverted_backoff_is_a_usage_error() {
        let err = parse(&[
            "ws://127.0.0.1:9/",
            "--backoff-initial",
            "2s",
            "--backoff-max",
            "1s",
        ])
        .settings()
        .expect_err("inverted");
        assert!(err.to_string().contains("--backoff-initial (2s)"), "{err}");
    }

    #[test]
    fn execute_and_on_connect_file_are_sent_first_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("first.txt");
        std::fs::write(&file, "auth token\r\n\nbase64:AAE=\n").expect("write");
        let settings = parse(&[
            "ws://127.0.0.1:9/",
            "--on-connect",
            file.to_str().expect("UTF-8 path"),
            "-x",
            "subscribe",
        ])
        .settings()
        .expect("valid");
        let first: Vec<_> = settings
            .on_connect
            .iter()
            .map(|m| (m.kind(), m.payload().to_vec()))
            .collect();
        assert_eq!(
            first,
            [
                (ws_machine::Kind::Text, b"auth token".to_vec()),
                (ws_machine::Kind::Binary, vec![0, 1]),
                (ws_machine::Kind::Text, b"subscribe".to_vec()),
            ]
        );
        let err = parse(&["ws://127.0.0.1:9/", "-x", "base64:!!"])
            .settings()
            .expect_err("bad base64");
        assert!(err.to_string().starts_with("-x number 1: "), "{err}");
    }

    #[test]
    fn help_lists_every_exit_code() {
        use clap::CommandFactory;
        let help = Wrapper::command().render_long_help().to_string();
        assert!(
            help.contains("EXAMPLES:") && help.contains("/reconnect"),
            "{help}"
        );
        for exit in exit::Exit::ALL {
            let code = exit.code();
            assert!(
                help.contains(&format!("\n  {code:<4} ")),
                "{code} missing:\n{help}"
            );
        }
    }
}
