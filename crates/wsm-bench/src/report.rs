//! The one JSON line each run prints, with the keys in the contract's order.
//!
//! The lines are flat (strings, numbers, `null`), so they are written with
//! `write!` rather than through a serializer: the order of the keys is the
//! order of the `write!` calls below, which is easy to compare with the
//! contract. Scenarios hand over measurements (counts and durations); rates
//! and differences are derived here, in one place.

use std::{fmt, time::Duration};

/// Which client ran the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Client {
    /// A `ws_machine::Machine`, used through its public channels.
    Machine,
    /// A machine offering permessage-deflate (`Builder::compression`): on
    /// yawc, compressed if the server agrees.
    MachineDeflate,
    /// The bare engine the machine wraps, at its default settings.
    Raw,
    /// Bare yawc 0.5 at its defaults (`WebSocket::connect`), with
    /// permessage-deflate offered when `deflate` (the engine of compressed connections).
    RawYawc { deflate: bool },
}

impl Client {
    /// The machine with `raw == false`, the bare engine `engine` names with
    /// `raw == true`.
    pub(crate) fn pick(raw: bool, engine: RawEngine, compression: bool) -> Self {
        match (raw, engine) {
            (false, _) if compression => Self::MachineDeflate,
            (false, _) => Self::Machine,
            (true, RawEngine::TokioWebsockets) => Self::Raw,
            (true, RawEngine::Yawc) => Self::RawYawc { deflate: false },
            (true, RawEngine::YawcDeflate) => Self::RawYawc { deflate: true },
        }
    }

    /// The client's name in the report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Machine => "ws-machine",
            Self::MachineDeflate => "ws-machine/deflate",
            Self::Raw => "tokio-websockets",
            Self::RawYawc { deflate: false } => "yawc",
            Self::RawYawc { deflate: true } => "yawc-deflate",
        }
    }
}

/// The bare engine `--raw` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RawEngine {
    /// tokio-websockets 0.13, the engine the machine wraps by default.
    TokioWebsockets,
    /// yawc 0.5, compression off.
    Yawc,
    /// yawc 0.5 offering permessage-deflate.
    YawcDeflate,
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Report {
    /// `throughput`: `messages` of `size` bytes there and back in `elapsed`.
    Throughput {
        client: Client,
        messages: usize,
        size: usize,
        /// From the first send to the last echo.
        elapsed: Duration,
    },
    /// `latency`: percentiles of the round trips.
    Latency {
        client: Client,
        rounds: usize,
        size: usize,
        p50: Duration,
        p99: Duration,
        max: Duration,
    },
    /// `idle`: memory of `conns` open connections.
    Idle {
        client: Client,
        conns: usize,
        /// `VmRSS` in KiB before opening anything.
        rss_kib_before: u64,
        /// `VmRSS` in KiB with every connection open, after 2 s.
        rss_kib_after: u64,
        /// From the first connection started to the last one connected.
        connect: Duration,
    },
    /// `churn`: which numbered messages survived a server that keeps
    /// closing.
    Churn {
        client: Client,
        messages: usize,
        /// Distinct sequence numbers echoed back.
        received: usize,
        /// `Connected` statuses after the first.
        reconnects: usize,
        /// Mean time from `Disconnected` to the next `Connected`; `None`
        /// without reconnects.
        mean_reconnect: Option<Duration>,
        /// From connected to the end of the run.
        elapsed: Duration,
    },
    /// `deadpeer`: how long after the freeze the machine reported the
    /// connection down; `None` if it never did within the limit.
    Deadpeer {
        client: Client,
        detect: Option<Duration>,
    },
}

/// A JSON number with `decimals` digits after the point, or `null` if it
/// has no JSON form (infinite or NaN, e.g. a rate over a zero duration).
struct Num(f64, usize);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_finite() {
            write!(f, "{:.*}", self.1, self.0)
        } else {
            f.write_str("null")
        }
    }
}

/// A number or `null`.
struct OrNull(Option<Num>);

impl fmt::Display for OrNull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(n) => n.fmt(f),
            None => f.write_str("null"),
        }
    }
}

/// A duration in microseconds, one decimal.
fn micros(d: Duration) -> Num {
    Num(d.as_secs_f64() * 1e6, 1)
}

/// A duration in milliseconds, one decimal.
fn millis(d: Duration) -> Num {
    Num(d.as_secs_f64() * 1e3, 1)
}

/// `usize` to `f64` for rates: exact for every count a benchmark reaches.
#[allow(clippy::cast_precision_loss)]
fn float(n: usize) -> f64 {
    n as f64
}

/// KiB to `f64`; exact below 2^53 KiB.
#[allow(clippy::cast_precision_loss)]
fn kib(n: u64) -> f64 {
    n as f64
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Throughput {
                client,
                messages,
                size,
                elapsed,
            } => {
                let secs = elapsed.as_secs_f64();
                let rate = float(messages) / secs;
                let mib = float(messages) * float(size) / secs / (1024.0 * 1024.0);
                write!(
                    f,
                    r#"{{"client":"{}","scenario":"throughput","messages":{messages},"size":{size},"secs":{},"msgs_per_sec":{},"mib_per_sec":{}}}"#,
                    client.name(),
                    Num(secs, 6),
                    Num(rate, 1),
                    Num(mib, 3),
                )
            }
            Self::Latency {
                client,
                rounds,
                size,
                p50,
                p99,
                max,
            } => write!(
                f,
                r#"{{"client":"{}","scenario":"latency","rounds":{rounds},"size":{size},"p50_us":{},"p99_us":{},"max_us":{}}}"#,
                client.name(),
                micros(p50),
                micros(p99),
                micros(max),
            ),
            Self::Idle {
                client,
                conns,
                rss_kib_before,
                rss_kib_after,
                connect,
            } => {
                // Signed: memory the allocator returned can make it negative.
                let per_conn = (kib(rss_kib_after) - kib(rss_kib_before)) / float(conns);
                write!(
                    f,
                    r#"{{"client":"{}","scenario":"idle","conns":{conns},"rss_kib_before":{rss_kib_before},"rss_kib_after":{rss_kib_after},"kib_per_conn":{},"connect_secs":{}}}"#,
                    client.name(),
                    Num(per_conn, 3),
                    Num(connect.as_secs_f64(), 3),
                )
            }
            Self::Churn {
                client,
                messages,
                received,
                reconnects,
                mean_reconnect,
                elapsed,
            } => write!(
                f,
                r#"{{"client":"{}","scenario":"churn","messages":{messages},"received":{received},"lost":{},"reconnects":{reconnects},"mean_reconnect_ms":{},"secs":{}}}"#,
                client.name(),
                messages.saturating_sub(received),
                OrNull(mean_reconnect.map(millis)),
                Num(elapsed.as_secs_f64(), 3),
            ),
            Self::Deadpeer { client, detect } => write!(
                f,
                r#"{{"client":"{}","scenario":"deadpeer","detect_ms":{}}}"#,
                client.name(),
                OrNull(detect.map(millis)),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_line_has_the_contracts_keys_in_order() {
        let line = Report::Throughput {
            client: Client::Machine,
            messages: 1000,
            size: 1024,
            elapsed: Duration::from_millis(500),
        }
        .to_string();
        assert_eq!(
            line,
            r#"{"client":"ws-machine","scenario":"throughput","messages":1000,"size":1024,"secs":0.500000,"msgs_per_sec":2000.0,"mib_per_sec":1.953}"#
        );
    }

    #[test]
    fn latency_is_in_microseconds() {
        let line = Report::Latency {
            client: Client::Raw,
            rounds: 3,
            size: 64,
            p50: Duration::from_nanos(12_345),
            p99: Duration::from_micros(20),
            max: Duration::from_micros(31),
        }
        .to_string();
        assert_eq!(
            line,
            r#"{"client":"tokio-websockets","scenario":"latency","rounds":3,"size":64,"p50_us":12.3,"p99_us":20.0,"max_us":31.0}"#
        );
    }

    #[test]
    fn idle_divides_the_growth_by_the_connections() {
        let line = Report::Idle {
            client: Client::Machine,
            conns: 4,
            rss_kib_before: 1000,
            rss_kib_after: 1010,
            connect: Duration::from_millis(1250),
        }
        .to_string();
        assert_eq!(
            line,
            r#"{"client":"ws-machine","scenario":"idle","conns":4,"rss_kib_before":1000,"rss_kib_after":1010,"kib_per_conn":2.500,"connect_secs":1.250}"#
        );
    }

    #[test]
    fn churn_without_reconnects_has_no_mean() {
        let line = Report::Churn {
            client: Client::Machine,
            messages: 10,
            received: 7,
            reconnects: 0,
            mean_reconnect: None,
            elapsed: Duration::from_secs(2),
        }
        .to_string();
        assert_eq!(
            line,
            r#"{"client":"ws-machine","scenario":"churn","messages":10,"received":7,"lost":3,"reconnects":0,"mean_reconnect_ms":null,"secs":2.000}"#
        );
    }

    #[test]
    fn deadpeer_is_null_when_never_detected() {
        let never = Report::Deadpeer {
            client: Client::Machine,
            detect: None,
        };
        assert_eq!(
            never.to_string(),
            r#"{"client":"ws-machine","scenario":"deadpeer","detect_ms":null}"#
        );
        let found = Report::Deadpeer {
            client: Client::Machine,
            detect: Some(Duration::from_micros(312_340)),
        };
        assert!(found.to_string().ends_with(r#""detect_ms":312.3}"#));
    }

    #[test]
    fn a_rate_over_zero_time_is_null_not_inf() {
        let line = Report::Throughput {
            client: Client::Raw,
            messages: 1,
            size: 1,
            elapsed: Duration::ZERO,
        }
        .to_string();
        assert!(line.contains(r#""msgs_per_sec":null"#), "{line}");
    }
}
