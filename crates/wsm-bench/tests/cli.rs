//! The `wsm-bench` binary run as a process, as the bench script runs it,
//! against an in-process echo server on 127.0.0.1, with tiny sizes.
//!
//! The tests check what each JSON line says (keys in the contract's order,
//! counts, that numbers are numbers), never how fast anything was. Every
//! wait is bounded: the child is polled against a deadline and killed if it
//! overruns (also when a test panics).

use std::{process::Command, time::Duration};

use wsm_server::{Config, Data, Server};

// The process runner of `wsm`'s tests, shared (test code only).
#[path = "../../wsm/tests/support/process.rs"]
mod process;

use process::{Finished, run_to_end};

/// The contract's keys, in order, per scenario.
const THROUGHPUT: [&str; 7] = [
    "client",
    "scenario",
    "messages",
    "size",
    "secs",
    "msgs_per_sec",
    "mib_per_sec",
];
const LATENCY: [&str; 7] = [
    "client", "scenario", "rounds", "size", "p50_us", "p99_us", "max_us",
];
const IDLE: [&str; 7] = [
    "client",
    "scenario",
    "conns",
    "rss_kib_before",
    "rss_kib_after",
    "kib_per_conn",
    "connect_secs",
];
const CHURN: [&str; 8] = [
    "client",
    "scenario",
    "messages",
    "received",
    "lost",
    "reconnects",
    "mean_reconnect_ms",
    "secs",
];
const DEADPEER: [&str; 3] = ["client", "scenario", "detect_ms"];

/// An echo server running on its own small runtime for one test.
struct EchoServer {
    // Field order: the server is dropped (stopping it) before its runtime.
    server: Server,
    _runtime: tokio::runtime::Runtime,
}

impl EchoServer {
    /// A server that keeps no record of what it receives.
    fn start(config: Config) -> Self {
        Self::start_with(config.record_limit(0))
    }

    /// A server with `config` as it is.
    fn start_with(config: Config) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the server");
        let server = {
            let _entered = runtime.enter();
            Server::start(config).expect("start the echo server")
        };
        Self {
            server,
            _runtime: runtime,
        }
    }

    fn url(&self) -> String {
        self.server.url()
    }
}

/// Runs `wsm-bench args` to the end; fails the test after `limit`.
fn run(args: &[&str], limit: Duration) -> Finished {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsm-bench"));
    command.args(args);
    run_to_end(command, limit)
}

/// A value of a flat JSON object.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Num(f64),
    Null,
}

impl Value {
    fn num(&self) -> f64 {
        match self {
            Self::Num(n) => *n,
            other => panic!("not a number: {other:?}"),
        }
    }
}

/// Parses one flat JSON object (strings without escapes, numbers, `null`),
/// keeping the keys in order. Panics on anything else.
fn parse(line: &str) -> Vec<(String, Value)> {
    let body = line
        .trim()
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not a JSON object: {line}"));
    body.split(',')
        .map(|pair| {
            let (key, value) = pair
                .split_once(':')
                .unwrap_or_else(|| panic!("not key:value: {pair:?} in {line}"));
            let key = key
                .strip_prefix('"')
                .and_then(|k| k.strip_suffix('"'))
                .unwrap_or_else(|| panic!("unquoted key {key:?} in {line}"));
            let value = if value == "null" {
                Value::Null
            } else if let Some(text) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Value::Str(text.to_owned())
            } else {
                Value::Num(
                    value
                        .parse()
                        .unwrap_or_else(|_| panic!("bad number {value:?} in {line}")),
                )
            };
            (key.to_owned(), value)
        })
        .collect()
}

/// Runs a scenario that must succeed and returns its one JSON line's fields,
/// checked against the contract's `keys`, `client` and `scenario`.
fn report(args: &[&str], keys: &[&str], client: &str, limit: Duration) -> Vec<(String, Value)> {
    let out = run(args, limit);
    assert!(
        out.status.success(),
        "wsm-bench {args:?}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line:\n{}", out.stdout);
    let fields = parse(lines[0]);
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, keys, "{}", lines[0]);
    assert_eq!(fields[0].1, Value::Str(client.to_owned()), "{}", lines[0]);
    assert_eq!(fields[1].1, Value::Str(args[0].to_owned()), "{}", lines[0]);
    fields
}

/// The value of `key`.
fn field<'a>(fields: &'a [(String, Value)], key: &str) -> &'a Value {
    &fields
        .iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"))
        .1
}

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn throughput_counts_every_echo_for_machine_and_engine() {
    let server = EchoServer::start(Config::default());
    let url = server.url();
    for (client, raw) in [("ws-machine", None), ("tokio-websockets", Some("--raw"))] {
        let mut args = vec![
            "throughput",
            "--url",
            &url,
            "--messages",
            "200",
            "--size",
            "100",
            "--window",
            "16",
        ];
        args.extend(raw);
        let fields = report(&args, &THROUGHPUT, client, LIMIT);
        assert_eq!(field(&fields, "messages").num(), 200.0);
        assert_eq!(field(&fields, "size").num(), 100.0);
        assert!(field(&fields, "msgs_per_sec").num() > 0.0);
        assert!(field(&fields, "mib_per_sec").num() > 0.0);
    }
}

#[test]
fn json_text_payloads_go_out_as_text_messages() {
    // This server keeps what it receives, to show the messages' kind.
    let server = EchoServer::start_with(Config::default());
    let url = server.url();
    let args = [
        "throughput",
        "--url",
        &url,
        "--messages",
        "50",
        "--size",
        "64",
        "--payload",
        "json-text",
    ];
    let fields = report(&args, &THROUGHPUT, "ws-machine", LIMIT);
    assert_eq!(field(&fields, "messages").num(), 50.0);
    let received = server.server.received();
    assert_eq!(received.len(), 50);
    for message in &received {
        match &message.data {
            Data::Text(text) => assert!(text.starts_with('{'), "{text}"),
            other => panic!("not text: {other:?}"),
        }
    }

    let mut raw = args.to_vec();
    raw.push("--raw");
    let out = run(&raw, LIMIT);
    assert!(!out.status.success(), "{}", out.stdout);
    assert!(out.stderr.contains("json-text"), "{}", out.stderr);
}

#[test]
fn latency_percentiles_are_ordered() {
    let server = EchoServer::start(Config::default());
    let url = server.url();
    for (client, raw) in [("ws-machine", None), ("tokio-websockets", Some("--raw"))] {
        let mut args = vec!["latency", "--url", &url, "--rounds", "50", "--size", "64"];
        args.extend(raw);
        let fields = report(&args, &LATENCY, client, LIMIT);
        let (p50, p99, max) = (
            field(&fields, "p50_us").num(),
            field(&fields, "p99_us").num(),
            field(&fields, "max_us").num(),
        );
        assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{fields:?}");
    }
}

#[test]
fn idle_machines_all_connect_and_stay() {
    let server = EchoServer::start(Config::default());
    let fields = report(
        &["idle", "--url", &server.url(), "--conns", "20"],
        &IDLE,
        "ws-machine",
        LIMIT,
    );
    assert_eq!(field(&fields, "conns").num(), 20.0);
    assert!(field(&fields, "rss_kib_before").num() > 0.0);
    assert!(field(&fields, "connect_secs").num() >= 0.0);
    assert_eq!(server.server.connections_accepted(), 20);
}

#[test]
fn idle_raw_sockets_all_connect() {
    let server = EchoServer::start(Config::default());
    let fields = report(
        &["idle", "--url", &server.url(), "--conns", "20", "--raw"],
        &IDLE,
        "tokio-websockets",
        LIMIT,
    );
    assert_eq!(field(&fields, "conns").num(), 20.0);
    assert_eq!(server.server.connections_accepted(), 20);
}

#[test]
fn churn_with_acks_loses_nothing() {
    let server = EchoServer::start(Config::default().close_after(Some(50)));
    let fields = report(
        &[
            "churn",
            "--url",
            &server.url(),
            "--messages",
            "500",
            "--size",
            "16",
            "--min-uptime-ms",
            "0",
        ],
        &CHURN,
        "ws-machine",
        Duration::from_secs(70),
    );
    assert_eq!(field(&fields, "received").num(), 500.0, "{fields:?}");
    assert_eq!(field(&fields, "lost").num(), 0.0, "{fields:?}");
    // 500 messages, at most 50 per connection.
    assert!(field(&fields, "reconnects").num() >= 9.0, "{fields:?}");
    assert!(field(&fields, "mean_reconnect_ms").num() >= 0.0);
}

#[test]
fn churn_without_acks_runs_the_same_scenario() {
    // No connection is closed within the run: a message lost without acks
    // would make the run wait out its quiet period (5 s), which is too slow
    // for a test; this checks the flag and the report.
    let server = EchoServer::start(Config::default().close_after(Some(1000)));
    let fields = report(
        &[
            "churn",
            "--url",
            &server.url(),
            "--messages",
            "100",
            "--size",
            "8",
            "--no-ack",
        ],
        &CHURN,
        "ws-machine",
        Duration::from_secs(70),
    );
    assert_eq!(field(&fields, "received").num(), 100.0, "{fields:?}");
    assert_eq!(field(&fields, "reconnects").num(), 0.0, "{fields:?}");
    assert_eq!(field(&fields, "mean_reconnect_ms"), &Value::Null);
}

#[test]
fn deadpeer_detects_a_frozen_server() {
    let server =
        EchoServer::start(Config::default().freeze_after(Some(Duration::from_millis(300))));
    let fields = report(
        &[
            "deadpeer",
            "--url",
            &server.url(),
            "--ping-interval-ms",
            "100",
            "--pong-timeout-ms",
            "200",
            "--freeze-after-ms",
            "300",
        ],
        &DEADPEER,
        "ws-machine",
        LIMIT,
    );
    assert!(field(&fields, "detect_ms").num() >= 0.0, "{fields:?}");
}

#[test]
fn bad_flags_are_refused_by_clap() {
    let url = "ws://127.0.0.1:9/";
    let out = run(
        &["churn", "--url", url, "--messages", "5", "--size", "4"],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("at least 8"), "{}", out.stderr);

    let out = run(&["deadpeer", "--url", url, "--raw"], LIMIT);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("unexpected argument '--raw'"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unreachable_server_is_an_error_with_its_cause() {
    // Bind and release a port so that nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let url = format!("ws://127.0.0.1:{port}/");
    let out = run(
        &[
            "latency", "--url", &url, "--rounds", "1", "--size", "8", "--raw",
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr
            .starts_with("wsm-bench: error: the bare engine failed while connecting"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("caused by:"), "{}", out.stderr);
}
