//! The `wsm` binary run as a process, as a user runs it.
//!
//! Every wait is bounded: children are polled against a deadline and killed
//! (also when a test panics) rather than waited for without limit.

mod support;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use support::process::{Finished, Running, run_to_end};

/// A `wsm` command with a clean environment for logging and no proxy from
/// the environment.
fn wsm(args: &[&str]) -> Command {
    let mut command = support::child::wsm(args);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `wsm args` to the end; fails the test if it takes longer than `limit`.
fn run(args: &[&str], limit: Duration) -> Finished {
    run_to_end(wsm(args), limit)
}

#[test]
fn quick_demo_shows_a_reconnect_and_exits_0() {
    let out = run(&["demo", "--quick"], Duration::from_secs(60));
    assert!(
        out.status.success(),
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    let text = &out.stdout;
    assert_eq!(
        text.matches("status   CONNECTED\n").count(),
        2,
        "connected, then reconnected:\n{text}"
    );
    assert!(text.contains("status   DISCONNECTED: "), "{text}");
    assert!(text.contains("status   DISCONNECTED (final)"), "{text}");
    assert!(text.contains(r#"recv     text "hello 1""#), "{text}");
    assert!(
        text.contains("recv     binary 4 bytes: de ad be ef"),
        "{text}"
    );
    // Queued as plain bytes while disconnected, in text mode: delivered
    // after the reconnect, as text.
    let queued = text.find(r#"send     bytes "queued 1""#).expect("queued");
    let reconnected = text.rfind("status   CONNECTED\n").expect("reconnected");
    let delivered = text.find(r#"recv     text "queued 1""#).expect("delivered");
    assert!(queued < reconnected && reconnected < delivered, "{text}");
    assert!(
        text.contains("sent 7 messages, received 7 echoes, 1 reconnect, 0 left undelivered"),
        "{text}"
    );
    assert!(
        text.lines().all(|line| line.starts_with('+')),
        "every line is stamped:\n{text}"
    );
}

#[test]
fn help_lists_the_subcommands() {
    let out = run(&["--help"], Duration::from_secs(10));
    assert!(out.status.success(), "{}", out.stderr);
    for name in [
        "connect",
        "demo",
        "echo-server",
        "fault-proxy",
        "completions",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|line| line.trim_start().starts_with(name)),
            "{name} missing:\n{}",
            out.stdout
        );
    }
}

#[test]
fn echo_server_prints_its_url_and_accepts_upgrades() {
    let mut child = Running(
        wsm(&["echo-server", "--addr", "127.0.0.1:0"])
            .spawn()
            .expect("start wsm"),
    );
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        // A failed read sends an empty line, which fails the test below.
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a listening line within 10 s");
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("not a listening line: {line:?}"));
    let addr: SocketAddr = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.strip_suffix('/'))
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("not ws://IP:PORT/: {url:?}"));
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");

    // It really serves WebSocket upgrades.
    let mut socket =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to the server");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a read timeout");
    socket
        .write_all(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n",
        )
        .expect("send an upgrade request");
    let mut answer = [0u8; 12];
    socket.read_exact(&mut answer).expect("an answer");
    assert_eq!(&answer, b"HTTP/1.1 101");
    // Dropping `child` kills the server.
}

#[test]
fn a_bad_flag_fails_with_a_clear_message() {
    let out = run(&["demo", "--bogus"], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("unexpected argument '--bogus'"),
        "{}",
        out.stderr
    );

    let out = run(
        &["echo-server", "--addr", "not-an-address"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("expected an IP address and a port"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_busy_port_is_reported_with_its_cause() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().expect("its address").to_string();
    let out = run(&["echo-server", "--addr", &addr], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    // One line: the error, then its cause.
    assert!(
        out.stderr.starts_with(&format!(
            "wsm: error: cannot start the echo server on {addr}: "
        )),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}
