//! The command line of the bench contract (`/work/shared/bench/CONTRACT.md`
//! in the project's shared folder): the same subcommands, flags and defaults
//! as every other bench client, so that they can run side by side.
//!
//! The one addition is `--raw` on `throughput`, `latency` and `idle`, which
//! runs the scenario on the bare engine the library wraps instead of through
//! a machine. `churn` and `deadpeer` measure what only the machine does
//! (reconnecting, detecting a dead peer), so they do not accept it.

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::report::RawEngine;

/// The parsed command line.
#[derive(Debug, Parser)]
#[command(
    name = "wsm-bench",
    version,
    about = "Benchmark client for ws-machine (the bench contract's scenarios)",
    long_about = "Benchmark client for ws-machine.\n\n\
        Runs one scenario of the bench contract against an echo server \
        (`wsm echo-server`) and prints one JSON line on stdout. The client is \
        a ws-machine `Machine` used through its public channels; with --raw \
        (throughput, latency, idle) it is the bare engine the machine wraps, \
        tokio-websockets, at its default settings.",
    propagate_version = true
)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Send N binary messages, at most W in flight, and receive the N echoes.
    Throughput(ThroughputArgs),
    /// One message at a time: send, wait for its echo, N rounds.
    Latency(LatencyArgs),
    /// Open N connections, wait until all are connected, sleep 2 s, report
    /// the memory they take.
    Idle(IdleArgs),
    /// Send N numbered messages to a server that closes every connection
    /// after K messages (`--close-after K`); count which come back.
    Churn(ChurnArgs),
    /// Against a server that freezes F ms after the upgrade
    /// (`--freeze-after-ms F`), measure how long the machine takes to report
    /// the connection down.
    Deadpeer(DeadpeerArgs),
}

/// What the messages of a throughput run carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PayloadKind {
    /// One payload of 0xa5 bytes, shared by every message.
    Same,
    /// Distinct JSON-like texts, taken in turn.
    Json,
    /// The same texts, sent as text messages (the others are binary): the
    /// path of a text feed, UTF-8 checks included. Machine only.
    JsonText,
}

/// A count or size that must be at least 1.
fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a whole number ({e})")),
    }
}

/// A churn message size: the first 8 bytes carry the sequence number.
fn churn_size(text: &str) -> Result<usize, String> {
    let size = positive(text)?;
    if size < 8 {
        return Err(format!(
            "churn messages start with an 8-byte sequence number, so the size must be at least 8, not {size}"
        ));
    }
    Ok(size)
}

/// Flags of `throughput`.
#[derive(Debug, clap::Args)]
pub(crate) struct ThroughputArgs {
    /// The echo server, e.g. `ws://127.0.0.1:9001/`.
    #[arg(long)]
    pub(crate) url: String,
    /// How many messages to send (N).
    #[arg(long, value_name = "N", value_parser = positive)]
    pub(crate) messages: usize,
    /// Payload size of each message in bytes.
    #[arg(long, value_name = "BYTES", value_parser = positive)]
    pub(crate) size: usize,
    /// At most this many messages in flight (sent, echo not yet received).
    #[arg(long, value_name = "W", default_value_t = 1000, value_parser = positive)]
    pub(crate) window: usize,
    /// Use the bare engine (tokio-websockets) instead of a machine.
    #[arg(long)]
    pub(crate) raw: bool,
    /// Which bare engine `--raw` runs (yawc: issue 8's candidate).
    #[arg(long, value_enum, default_value_t = RawEngine::TokioWebsockets)]
    pub(crate) raw_engine: RawEngine,
    /// A machine offering permessage-deflate (`Builder::compression`);
    /// compressed only if the server agrees.
    #[arg(long, conflicts_with = "raw")]
    pub(crate) compression: bool,
    /// What the messages carry: one shared payload of 0xa5 bytes (the
    /// contract's), or distinct JSON-like texts (what compression meets in
    /// a feed).
    #[arg(long, value_enum, default_value_t = PayloadKind::Same)]
    pub(crate) payload: PayloadKind,
}

/// Flags of `latency`.
#[derive(Debug, clap::Args)]
pub(crate) struct LatencyArgs {
    /// The echo server, e.g. `ws://127.0.0.1:9001/`.
    #[arg(long)]
    pub(crate) url: String,
    /// How many round trips to time (N).
    #[arg(long, value_name = "N", value_parser = positive)]
    pub(crate) rounds: usize,
    /// Payload size of each message in bytes.
    #[arg(long, value_name = "BYTES", value_parser = positive)]
    pub(crate) size: usize,
    /// Use the bare engine (tokio-websockets) instead of a machine.
    #[arg(long)]
    pub(crate) raw: bool,
    /// Which bare engine `--raw` runs (yawc: issue 8's candidate).
    #[arg(long, value_enum, default_value_t = RawEngine::TokioWebsockets)]
    pub(crate) raw_engine: RawEngine,
    /// A machine offering permessage-deflate (`Builder::compression`);
    /// compressed only if the server agrees.
    #[arg(long, conflicts_with = "raw")]
    pub(crate) compression: bool,
}

/// Flags of `idle`.
#[derive(Debug, clap::Args)]
pub(crate) struct IdleArgs {
    /// The echo server, e.g. `ws://127.0.0.1:9001/`.
    #[arg(long)]
    pub(crate) url: String,
    /// How many connections to open (N).
    #[arg(long, value_name = "N", value_parser = positive)]
    pub(crate) conns: usize,
    /// Use the bare engine (tokio-websockets) instead of a machine.
    #[arg(long)]
    pub(crate) raw: bool,
    /// Which bare engine `--raw` runs (yawc: issue 8's candidate).
    #[arg(long, value_enum, default_value_t = RawEngine::TokioWebsockets)]
    pub(crate) raw_engine: RawEngine,
    /// A machine offering permessage-deflate (`Builder::compression`);
    /// compressed only if the server agrees.
    #[arg(long, conflicts_with = "raw")]
    pub(crate) compression: bool,
    /// Each machine sends one 1 KiB text message and waits for its echo
    /// before memory is read: connections that have been used (with
    /// --compression, their compressor and decompressor exist).
    #[arg(long, conflicts_with = "raw")]
    pub(crate) exchange: bool,
}

/// Flags of `churn`.
#[derive(Debug, clap::Args)]
pub(crate) struct ChurnArgs {
    /// The echo server, started with --close-after K.
    #[arg(long)]
    pub(crate) url: String,
    /// How many numbered messages to send (N).
    #[arg(long, value_name = "N", value_parser = positive)]
    pub(crate) messages: usize,
    /// Size of each message in bytes, at least 8 (the sequence number).
    #[arg(long, value_name = "BYTES", value_parser = churn_size)]
    pub(crate) size: usize,
    /// The machine's `min_uptime` in ms (0: every successful connection
    /// resets the backoff). Default: the machine's default.
    #[arg(long, value_name = "M")]
    pub(crate) min_uptime_ms: Option<u64>,
    /// Run without the machine's acknowledgement-based redelivery
    /// (`ack_key` on the sequence number).
    #[arg(long)]
    pub(crate) no_ack: bool,
}

impl ChurnArgs {
    /// The machine's `min_uptime`, if the flag sets one.
    pub(crate) fn min_uptime(&self) -> Option<Duration> {
        self.min_uptime_ms.map(Duration::from_millis)
    }
}

/// Flags of `deadpeer`.
#[derive(Debug, clap::Args)]
pub(crate) struct DeadpeerArgs {
    /// The echo server, started with --freeze-after-ms F.
    #[arg(long)]
    pub(crate) url: String,
    /// The machine's keep-alive ping interval in ms. Default: the machine's.
    #[arg(long, value_name = "P")]
    pub(crate) ping_interval_ms: Option<u64>,
    /// The machine's pong timeout in ms. Default: the machine's.
    #[arg(long, value_name = "T")]
    pub(crate) pong_timeout_ms: Option<u64>,
    /// When the server freezes, in ms after the upgrade (what it was started
    /// with).
    #[arg(long, value_name = "F", default_value_t = 1000)]
    pub(crate) freeze_after_ms: u64,
}

impl DeadpeerArgs {
    /// The machine's ping interval, if the flag sets one.
    pub(crate) fn ping_interval(&self) -> Option<Duration> {
        self.ping_interval_ms.map(Duration::from_millis)
    }

    /// The machine's pong timeout, if the flag sets one.
    pub(crate) fn pong_timeout(&self) -> Option<Duration> {
        self.pong_timeout_ms.map(Duration::from_millis)
    }

    /// When the server freezes, after the upgrade.
    pub(crate) fn freeze_after(&self) -> Duration {
        Duration::from_millis(self.freeze_after_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_contracts() {
        let args = Args::parse_from([
            "wsm-bench",
            "throughput",
            "--url",
            "ws://x/",
            "--messages",
            "5",
            "--size",
            "64",
        ]);
        let Command::Throughput(args) = args.command else {
            panic!("not throughput: {args:?}");
        };
        assert_eq!((args.window, args.raw), (1000, false));

        let args = Args::parse_from(["wsm-bench", "deadpeer", "--url", "ws://x/"]);
        let Command::Deadpeer(args) = args.command else {
            panic!("not deadpeer: {args:?}");
        };
        assert_eq!(args.freeze_after(), Duration::from_secs(1));
        assert_eq!((args.ping_interval(), args.pong_timeout()), (None, None));
    }

    #[test]
    fn raw_is_only_for_the_engine_scenarios() {
        let churn = [
            "wsm-bench",
            "churn",
            "--url",
            "ws://x/",
            "--messages",
            "5",
            "--size",
            "64",
            "--raw",
        ];
        assert!(Args::try_parse_from(churn).is_err());
        let deadpeer = ["wsm-bench", "deadpeer", "--url", "ws://x/", "--raw"];
        assert!(Args::try_parse_from(deadpeer).is_err());
        let idle = [
            "wsm-bench",
            "idle",
            "--url",
            "ws://x/",
            "--conns",
            "3",
            "--raw",
        ];
        assert!(Args::try_parse_from(idle).is_ok());
    }

    #[test]
    fn churn_needs_room_for_the_sequence_number() {
        let args = [
            "wsm-bench",
            "churn",
            "--url",
            "ws://x/",
            "--messages",
            "5",
            "--size",
            "7",
        ];
        let err = Args::try_parse_from(args).expect_err("size 7 is too small");
        assert!(err.to_string().contains("at least 8"), "{err}");
    }
}
