//! The command line: raw flags as clap parses them, and the one step that
//! turns each subcommand's flags into the settings it runs with (`wsm
//! connect`'s flags live in `connect::args`).

use std::{ffi::OsString, net::SocketAddr, time::Duration};

use clap::{CommandFactory, Parser, Subcommand};

use crate::connect::args::ConnectArgs;

/// The parsed command line.
#[derive(Debug, Parser)]
#[command(
    name = "wsm",
    version,
    about = "A resilient WebSocket client",
    long_about = "A resilient WebSocket client.\n\n\
        `wsm connect URL` (or `wsm URL`) sends each line of stdin as a message \
        and prints each message received, one per line. It stays up: it \
        reconnects with backoff, detects dead peers with pings and delivers \
        lines typed while disconnected once it is back. `wsm demo` shows that \
        against a local server it stops and restarts; `wsm echo-server` runs \
        that server on its own.",
    after_help = "Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=ws_machine=debug) \
        to see more than warnings.\n\n\
        Run `wsm connect --help` for every flag of the client, its examples \
        and its exit codes.",
    propagate_version = true,
    arg_required_else_help = true
)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Connect to a WebSocket server: stdin lines out, messages in (also
    /// `wsm URL`).
    Connect(Box<ConnectArgs>),
    /// Watch a machine lose its server, reconnect and deliver what was queued.
    ///
    /// Starts a local echo server on 127.0.0.1, connects a machine to it and
    /// sends text and binary messages. Then it stops the server, queues
    /// messages while the machine is disconnected, restarts the server on the
    /// same port and shows the machine reconnecting and delivering them.
    /// Every status and message is printed with the time since the start.
    /// Takes about 10 seconds.
    Demo(DemoArgs),
    /// Run a local WebSocket echo server until Ctrl-C.
    ///
    /// Echoes every text and binary message with the same opcode; a message
    /// `/CLOSE` closes that connection; pings are answered. Prints
    /// `listening on ws://ADDR/` once it accepts connections. This is the
    /// neutral server of the benchmarks.
    EchoServer(EchoServerArgs),
    /// Run a fault-injecting TCP proxy with a Toxiproxy-compatible HTTP API,
    /// until Ctrl-C.
    ///
    /// Tests and tools written for Toxiproxy (its client libraries,
    /// toxiproxy-cli, curl) create proxies on it and add toxics: latency,
    /// bandwidth, slow_close, timeout, reset_peer, slicer, limit_data.
    /// Proxies listen and forward on loopback addresses only. Prints
    /// `toxiproxy API on http://ADDR` once it takes calls.
    ///
    /// Example: `wsm fault-proxy &`, then
    /// `curl -d '{"name":"feed","listen":"127.0.0.1:9100","upstream":"127.0.0.1:9001"}' http://127.0.0.1:8474/proxies`
    /// and
    /// `curl -d '{"type":"latency","attributes":{"latency":200}}' http://127.0.0.1:8474/proxies/feed/toxics`.
    FaultProxy(FaultProxyArgs),
    /// Print a shell completion script to stdout.
    ///
    /// For example: `wsm completions bash > ~/.local/share/bash-completion/completions/wsm`.
    Completions(CompletionsArgs),
}

/// Parses the process's arguments, with `wsm URL ...` read as
/// `wsm connect URL ...`. Bad flags and `--help` end the process here, with
/// clap's message and exit code (2 for bad usage).
pub(crate) fn parse() -> Args {
    Args::parse_from(with_shorthand(std::env::args_os()))
}

/// Inserts `connect` where `wsm ...` means it: `wsm ws://host/` and
/// `wsm -b ws://host/` are `wsm connect ...`. That is when the first
/// argument is not a subcommand and either is not a flag (anything else
/// than a URL is then reported as an invalid URL, which says what a URL
/// must look like) or is a flag other than help and version followed
/// somewhere by a URL.
pub(crate) fn with_shorthand(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let Some(first) = args.get(1).and_then(|a| a.to_str()) else {
        return args;
    };
    let command = Args::command();
    let is_subcommand = first == "help"
        || command
            .get_subcommands()
            .any(|sub| sub.get_name() == first || sub.get_all_aliases().any(|a| a == first));
    let top_flag = ["-h", "--help", "-V", "--version"].contains(&first);
    let has_url = args[1..]
        .iter()
        .any(|a| a.to_str().is_some_and(|a| a.contains("://")));
    let connect = if first.starts_with('-') {
        !top_flag && has_url
    } else {
        !is_subcommand
    };
    if connect {
        args.insert(1, "connect".into());
    }
    args
}

/// Flags of `wsm fault-proxy`.
#[derive(Debug, clap::Args)]
pub(crate) struct FaultProxyArgs {
    /// Address of the HTTP API (Toxiproxy's port is 8474); a loopback
    /// address, port 0 lets the system choose one.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:8474", value_parser = parse_addr)]
    pub(crate) api: SocketAddr,
    /// Create the proxies of FILE at start: a JSON array of
    /// `{"name", "listen", "upstream", "enabled"}`, as Toxiproxy's
    /// `-config` file holds and `POST /populate` takes.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<std::path::PathBuf>,
}

/// Flags of `wsm completions`.
#[derive(Debug, clap::Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

/// Flags of `wsm demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Shorten every pause: the demo takes about a second (for tests).
    #[arg(long)]
    pub(crate) quick: bool,
}

/// How long the demo waits at each point.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// Between two messages sent one by one.
    pub(crate) tick: Duration,
    /// After the echoes are in, before the next act.
    pub(crate) pause: Duration,
    /// How long the server stays down.
    pub(crate) downtime: Duration,
    /// The whole demo fails if it takes longer than this.
    pub(crate) limit: Duration,
}

impl DemoArgs {
    /// The pauses of the demo.
    pub(crate) fn timing(&self) -> Timing {
        if self.quick {
            Timing {
                tick: Duration::from_millis(20),
                pause: Duration::from_millis(100),
                downtime: Duration::from_millis(300),
                limit: Duration::from_secs(20),
            }
        } else {
            Timing {
                tick: Duration::from_millis(700),
                pause: Duration::from_millis(1500),
                downtime: Duration::from_millis(2500),
                limit: Duration::from_secs(30),
            }
        }
    }
}

/// An `IP:PORT` listening address, with a message that says what is
/// expected.
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("expected an IP address and a port, such as 127.0.0.1:9001 (host names are not accepted), not {text:?}")
    })
}

/// Flags of `wsm echo-server`.
#[derive(Debug, clap::Args)]
pub(crate) struct EchoServerArgs {
    /// Address to listen on; port 0 lets the system choose one.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:0", value_parser = parse_addr)]
    pub(crate) addr: SocketAddr,
    /// Close each connection (code 1000) after echoing K messages.
    #[arg(long, value_name = "K")]
    pub(crate) close_after: Option<u64>,
    /// Freeze each connection T ms after its upgrade: no more reads, writes
    /// or pongs, but the TCP socket stays open (a dead peer).
    #[arg(long, value_name = "T")]
    pub(crate) freeze_after_ms: Option<u64>,
}

impl EchoServerArgs {
    /// The server's configuration.
    pub(crate) fn config(&self) -> wsm_server::Config {
        wsm_server::Config::default()
            .close_after(self.close_after)
            .freeze_after(self.freeze_after_ms.map(Duration::from_millis))
            // Nobody reads the record of received messages here; keeping it
            // would only cost memory in benchmarks.
            .record_limit(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_valid() {
        Args::command().debug_assert();
    }

    fn shorthand(args: &[&str]) -> Vec<String> {
        with_shorthand(args.iter().map(OsString::from))
            .into_iter()
            .map(|a| a.into_string().expect("UTF-8"))
            .collect()
    }

    #[test]
    fn a_url_first_means_connect() {
        assert_eq!(
            shorthand(&["wsm", "ws://127.0.0.1:1/", "-n", "1"]),
            ["wsm", "connect", "ws://127.0.0.1:1/", "-n", "1"]
        );
        assert_eq!(
            shorthand(&["wsm", "-H", "X: y", "ws://h/"]),
            ["wsm", "connect", "-H", "X: y", "ws://h/"]
        );
        // Not a URL either: reported as an invalid URL by `connect`.
        assert_eq!(shorthand(&["wsm", "localhost:80"])[1], "connect");
        for kept in [
            &["wsm", "demo", "--quick"][..],
            &["wsm", "echo-server"],
            &["wsm", "connect", "ws://x/"],
            &["wsm", "help"],
            &["wsm", "--help"],
            &["wsm", "--version"],
            &["wsm", "--bogus"],
            &["wsm"],
        ] {
            assert_eq!(shorthand(kept), kept, "{kept:?}");
        }
    }

    #[test]
    fn echo_server_flags_become_its_config() {
        let args = Args::parse_from([
            "wsm",
            "echo-server",
            "--addr",
            "127.0.0.1:9001",
            "--close-after",
            "3",
            "--freeze-after-ms",
            "250",
        ]);
        let Command::EchoServer(args) = args.command else {
            panic!("not echo-server: {args:?}");
        };
        assert_eq!(args.addr, SocketAddr::from(([127, 0, 0, 1], 9001)));
        let config = args.config();
        assert_eq!(config.close_after, Some(3));
        assert_eq!(config.freeze_after, Some(Duration::from_millis(250)));
    }

    #[test]
    fn quick_demo_is_shorter() {
        let quick = DemoArgs { quick: true }.timing();
        let normal = DemoArgs { quick: false }.timing();
        assert!(quick.downtime < normal.downtime && quick.pause < normal.pause);
    }
}
