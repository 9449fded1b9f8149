//! `wsm connect` run as a process, as a user runs it, against the
//! in-process echo server and an independent peer (Python `websockets`),
//! all on 127.0.0.1.
//!
//! Every wait is bounded (see `support::child::LIMIT`); the process is
//! killed when a test ends, also when it fails.

mod support;

use std::{
    io::{BufRead, BufReader, Read},
    process::Stdio,
    time::Duration,
};

use base64::Engine as _;
use serde_json::Value;
use support::{
    child::{LIMIT, Wsm, wait, wsm},
    local::Local,
    process::{Running, drain, run_to_end},
    python::Peer,
};
use wsm_server::{Config, Rejection};

/// Short waits between attempts, and every connection counts as healthy, so
/// tests reconnect quickly.
const FAST: [&str; 6] = [
    "--backoff-initial",
    "20ms",
    "--backoff-max",
    "200ms",
    "--min-uptime",
    "0s",
];

fn args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![url];
    args.extend_from_slice(&FAST);
    args.extend_from_slice(extra);
    args
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

fn is_state(line: &str, state: &str) -> bool {
    serde_json::from_str::<Value>(line).is_ok_and(|v| v["state"] == state)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn lines_go_out_and_echoes_come_back_in_order() {
    let server = Local::start();
    let url = server.url();
    let mut wsm = Wsm::start(&args(&url, &[]));
    for line in ["one", "two", "three"] {
        wsm.send(line);
    }
    wsm.close_stdin();
    let status = wsm.wait();
    assert!(status.success(), "{status}\n{}", wsm.err.rest().join("\n"));
    assert_eq!(wsm.out.rest(), ["one", "two", "three"]);
    let received: Vec<_> = server
        .server()
        .received()
        .into_iter()
        .filter_map(|r| r.data.as_text().map(str::to_owned))
        .collect();
    assert_eq!(received, ["one", "two", "three"]);
    let err = wsm.err.rest();
    assert!(
        err.iter()
            .any(|l| l.ends_with(&format!(" CONNECTED {url}"))),
        "{err:?}"
    );
}

#[test]
fn an_independent_peer_echoes_text_and_binary() {
    let peer = Peer::start();
    // This peer answers a close frame at once, dropping answers not yet
    // sent (the default end does not wait for answers; -w and -n do).
    let mut wsm = Wsm::start(&[&peer.url, "-n", "2"]);
    wsm.send("hello from wsm");
    wsm.send("base64:3q2+7w==");
    let status = wsm.wait();
    assert!(status.success(), "{status}\n{}", wsm.err.rest().join("\n"));
    // Binary came back binary: printed as the prefix and Base64.
    assert_eq!(wsm.out.rest(), ["hello from wsm", "base64:3q2+7w=="]);
}

#[test]
fn binary_output_modes_round_trip() {
    let peer = Peer::start();
    let bytes: Vec<u8> = (0..=255).collect();
    let line = format!("base64:{}", b64(&bytes));

    // -n 1: done when the answer is in (this peer drops answers once closed).
    let mut base64 = Wsm::start(&[&peer.url, "-n", "1"]);
    base64.send(&line);
    assert!(base64.wait().success());
    assert_eq!(base64.out.rest(), [line.as_str()]);

    let mut hex = Wsm::start(&[&peer.url, "--binary-out", "hex", "-n", "1"]);
    hex.send(&line);
    assert!(hex.wait().success());
    let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex.out.rest(), [expected]);

    // Raw: the bytes exactly, nothing added.
    let mut command = wsm(&[&peer.url, "--binary-out", "raw", "-n", "1"]);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut raw = Running(command.spawn().expect("start wsm"));
    let mut stdout = raw.0.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        stdout.read_to_end(&mut all).expect("read stdout");
        all
    });
    let stderr = drain(raw.0.stderr.take().expect("piped"));
    let mut stdin = raw.0.stdin.take().expect("piped");
    {
        use std::io::Write;
        writeln!(stdin, "{line}").expect("write");
    }
    let status = wait(&mut raw, LIMIT);
    assert!(status.success(), "{}", stderr.join().expect("stderr"));
    assert_eq!(reader.join().expect("stdout"), bytes);
    drop(stdin);

    // --binary: plain lines go out as binary, so they come back binary.
    let mut binary = Wsm::start(&[&peer.url, "--binary", "-n", "1"]);
    binary.send("abc");
    assert!(binary.wait().success());
    assert_eq!(binary.out.rest(), [format!("base64:{}", b64(b"abc"))]);
}

#[test]
fn lines_typed_while_the_server_is_down_are_delivered_after_it_restarts() {
    let mut server = Local::start();
    let url = server.url();
    let mut wsm = Wsm::start(&args(&url, &["--status", "json"]));
    wsm.send("before");
    wsm.out.wait_for("echo of before", |l| l == "before");

    server.stop();
    wsm.err
        .wait_for("DISCONNECTED", |l| is_state(l, "DISCONNECTED"));
    wsm.send("while down 1");
    wsm.send("while down 2");
    // Still down: the machine is waiting between attempts.
    wsm.err.wait_for("WAITING", |l| is_state(l, "WAITING"));

    server.restart();
    wsm.out
        .wait_for("echo of the first queued line", |l| l == "while down 1");
    wsm.out
        .wait_for("echo of the second queued line", |l| l == "while down 2");
    wsm.close_stdin();
    let status = wsm.wait();
    assert!(status.success(), "{status}\n{}", wsm.err.rest().join("\n"));
    let received: Vec<_> = server
        .server()
        .received()
        .into_iter()
        .filter_map(|r| r.data.as_text().map(str::to_owned))
        .collect();
    assert_eq!(received, ["while down 1", "while down 2"]);
}

#[test]
fn count_exits_after_n_messages() {
    let server = Local::start();
    let url = server.url();
    let mut wsm = Wsm::start(&args(&url, &["-n", "2"]));
    for line in ["a", "b", "c"] {
        wsm.send(line);
    }
    // stdin stays open: -n alone ends the session.
    let status = wsm.wait();
    assert!(status.success(), "{status}\n{}", wsm.err.rest().join("\n"));
    assert_eq!(wsm.out.rest(), ["a", "b"]);
}

#[test]
fn on_connect_messages_are_sent_first_on_every_connection() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("first.txt");
    std::fs::write(&file, "auth t0ken\n").expect("write");
    let server = Local::start();
    let url = server.url();
    let file = file.to_str().expect("UTF-8 path");
    let mut wsm = Wsm::start(&args(&url, &["--on-connect", file, "-x", "subscribe"]));
    wsm.send("typed");
    server.wait_for_messages(3);

    // The server ends the connection; the client reconnects at once.
    assert_eq!(server.server().close_all(), 1);
    server.wait_for_connections(2);
    server.wait_for_messages(5);
    wsm.close_stdin();
    assert!(wsm.wait().success(), "{}", wsm.err.rest().join("\n"));

    let by_connection = |n: u64| -> Vec<String> {
        server
            .server()
            .received()
            .into_iter()
            .filter(|r| r.connection == n)
            .filter_map(|r| r.data.as_text().map(str::to_owned))
            .collect()
    };
    assert_eq!(by_connection(1), ["auth t0ken", "subscribe", "typed"]);
    assert_eq!(&by_connection(2)[..2], ["auth t0ken", "subscribe"]);
}

#[cfg(unix)]
#[test]
fn header_cmd_runs_again_for_every_attempt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let counter = dir.path().join("count");
    // Prints a new token on each run: t1, t2, ...
    let command = format!(
        "n=$(cat '{0}' 2>/dev/null || echo 0); n=$((n + 1)); echo $n > '{0}'; echo \"X-Token: t$n\"",
        counter.display()
    );
    let server = Local::start();
    let url = server.url();
    let wsm = Wsm::start(&args(&url, &["--header-cmd", &command, "--no-stdin"]));
    server.wait_for_connections(1);
    server.server().close_all();
    server.wait_for_connections(2);
    let tokens: Vec<String> = server
        .server()
        .request_headers()
        .iter()
        .map(|h| h["x-token"].to_str().expect("ASCII").to_owned())
        .collect();
    assert_eq!(&tokens[..2], ["t1", "t2"]);
    drop(wsm.child);
}

#[test]
fn status_json_carries_every_transition() {
    // Nobody listens at first: the first attempt fails and the machine waits.
    let mut server = Local::not_yet();
    let url = server.url();
    let mut wsm = Wsm::start(&args(&url, &["--status", "json"]));
    wsm.err.wait_for("WAITING", |l| is_state(l, "WAITING"));
    server.restart();
    wsm.err.wait_for("CONNECTED", |l| is_state(l, "CONNECTED"));
    server.server().close_all();
    wsm.err
        .wait_for("DISCONNECTED", |l| is_state(l, "DISCONNECTED"));
    wsm.err
        .wait_for("CONNECTED again", |l| is_state(l, "CONNECTED"));
    wsm.close_stdin();
    assert!(wsm.wait().success());

    let lines: Vec<Value> = wsm.err.rest().iter().map(|l| json(l)).collect();
    let mut statuses: Vec<&Value> = lines.iter().filter(|v| v["event"] == "status").collect();
    // The server may have come up after more than one failed attempt: keep
    // the last one.
    while statuses.len() > 4
        && statuses[3]["state"] == "CONNECTING"
        && statuses[4]["state"] == "DISCONNECTED"
    {
        statuses.drain(..3);
    }
    let states: Vec<&str> = statuses
        .iter()
        .map(|v| v["state"].as_str().expect("state"))
        .collect();
    assert_eq!(
        states,
        [
            "CONNECTING",
            "DISCONNECTED",
            "WAITING",
            "CONNECTING",
            "CONNECTED",
            "DISCONNECTED",
            "CONNECTING",
            "CONNECTED",
            "DISCONNECTED"
        ],
        "{lines:#?}"
    );
    for v in &lines {
        let time = v["time"].as_str().expect("time");
        assert_eq!(time.len(), "12:00:01.234".len(), "{v}");
    }
    // The failed attempt: the system's reason, retried.
    assert!(
        statuses[1]["error"]
            .as_str()
            .expect("error")
            .contains("cannot connect")
    );
    assert_eq!(statuses[1]["retryable"], true);
    assert!(
        statuses[2]["delay_ms"].as_u64().is_some(),
        "{}",
        statuses[2]
    );
    assert_eq!(statuses[4]["url"], url.as_str());
    // The server's close: its code.
    assert_eq!(statuses[5]["close_code"], 1000, "{}", statuses[5]);
    // The end, asked for: final, without error.
    assert_eq!(statuses[8]["final"], true);
    assert!(statuses[8].get("error").is_none(), "{}", statuses[8]);
    assert_eq!(
        statuses[..8]
            .iter()
            .filter(|v| v.get("final").is_some())
            .count(),
        0
    );
}

#[test]
fn bad_usage_exits_2_and_says_what_to_fix() {
    let out = run_to_end(wsm(&["htp://x"]), LIMIT);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert_eq!(
        out.stderr.trim_end(),
        r#"wsm: error: invalid URL "htp://x": scheme "htp" is not supported: use ws:// or wss://"#
    );

    let out = run_to_end(
        wsm(&["connect", "ws://127.0.0.1:9/", "-H", "no colon"]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("expected 'Name: value'"),
        "{}",
        out.stderr
    );

    let out = run_to_end(wsm(&["connect"]), LIMIT);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);

    let out = run_to_end(
        wsm(&["ws://127.0.0.1:9/", "--on-connect", "/nonexistent/x"]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("wsm: error: cannot read /nonexistent/x: "),
        "{}",
        out.stderr
    );

    let out = run_to_end(wsm(&["ws://127.0.0.1:9/", "-H", "Host: x"]), LIMIT);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("sets this header itself"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_final_handshake_rejection_exits_3() {
    let server = Local::start();
    server
        .server()
        .reject_handshakes(Some(Rejection::unauthorized()));
    let url = server.url();
    let out = run_to_end(wsm(&args(&url, &["--status", "json"])), LIMIT);
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    let last_status = out
        .stderr
        .lines()
        .rfind(|l| l.starts_with('{'))
        .expect("statuses");
    assert_eq!(json(last_status)["http_status"], 401);
    assert!(
        out.stderr
            .contains("wsm: error: server refused the WebSocket upgrade with HTTP 401"),
        "{}",
        out.stderr
    );
}

#[test]
fn exhausted_retries_exit_4() {
    let server = Local::not_yet();
    let url = server.url();
    let out = run_to_end(wsm(&args(&url, &["--max-retries", "2"])), LIMIT);
    assert_eq!(out.status.code(), Some(4), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("wsm: error: gave up after 2 failed attempts"),
        "{}",
        out.stderr
    );
}

/// `--once`: the server's close ends wsm with 6 (the close code in the JSON
/// status), and nothing reconnects; an attempt that fails ends it too.
#[test]
fn once_exits_6_when_the_connection_ends() {
    let server = Local::start();
    let url = server.url();
    let mut once = Wsm::start(&args(&url, &["--once", "--status", "json"]));
    once.send("hello");
    once.out.wait_for("the echo", |l| l == "hello");
    // The echo server closes the connection on this message.
    once.send("/CLOSE");
    let status = once.wait();
    assert_eq!(status.code(), Some(6), "{}", once.err.rest().join("\n"));
    let last = once
        .err
        .rest()
        .iter()
        .rev()
        .find(|l| is_state(l, "DISCONNECTED"))
        .map(|l| json(l))
        .expect("a final status");
    assert_eq!(last["final"], true, "{last}");
    assert_eq!(last["close_code"], 1000, "{last}");
    assert_eq!(server.server().connections_accepted(), 1);

    let down = Local::not_yet();
    let out = run_to_end(wsm(&args(&down.url(), &["--once"])), LIMIT);
    assert_eq!(out.status.code(), Some(6), "{}", out.stderr);
    assert!(out.stderr.contains("cannot connect to"), "{}", out.stderr);
}

/// `--final-close CODE`: a close with that code ends wsm with 3 and no
/// reconnect; without the flag the same close is followed by a reconnect.
#[test]
fn a_final_close_code_exits_3() {
    let server = Local::start();
    let url = server.url();
    let mut wsm = Wsm::start(&args(&url, &["--final-close", "1000", "--status", "json"]));
    wsm.send("/CLOSE");
    let status = wsm.wait();
    assert_eq!(status.code(), Some(3), "{}", wsm.err.rest().join("\n"));
    let last = wsm
        .err
        .rest()
        .iter()
        .rev()
        .find(|l| is_state(l, "DISCONNECTED"))
        .map(|l| json(l))
        .expect("a final status");
    assert_eq!(
        (&last["final"], &last["close_code"]),
        (&true.into(), &1000.into()),
        "{last}"
    );
    assert_eq!(server.server().connections_accepted(), 1);

    let mut other = Wsm::start(&args(&url, &["--final-close", "4001"]));
    other.send("/CLOSE");
    server.wait_for_connections(3);
    other.close_stdin();
    assert_eq!(other.wait().code(), Some(0));
}

/// `--heartbeat`: sent on its period; the echo server's echo is the reply
/// named by `--heartbeat-reply`, so it is not printed, while other
/// messages are.
#[test]
fn heartbeats_go_out_and_their_replies_are_not_printed() {
    let server = Local::start();
    let url = server.url();
    let mut wsm = Wsm::start(&args(
        &url,
        &[
            "--heartbeat",
            "hb",
            "--heartbeat-interval",
            "20ms",
            "--heartbeat-reply",
            "hb",
        ],
    ));
    server.wait_for_messages(5);
    wsm.send("data");
    wsm.out.wait_for("the echo", |l| l == "data");
    wsm.close_stdin();
    assert_eq!(wsm.wait().code(), Some(0));
    let beats = server
        .server()
        .received()
        .iter()
        .filter(|r| r.data.as_text() == Some("hb"))
        .count();
    assert!(beats >= 5, "{beats} heartbeats");
    assert_eq!(wsm.out.rest(), ["data"], "only the data is printed");
}

/// `--ready-on`: lines wait until the server's answer to the login (here
/// its echo of `-x login`) arrives; the status line says READY.
#[test]
fn ready_on_holds_lines_until_the_answer() {
    let server = Local::start();
    let url = server.url();
    let mut client = Wsm::start(&args(&url, &["-x", "login ok", "--ready-on", "ok"]));
    client.send("order");
    client.err.wait_for("READY", |l| l.contains(" READY "));
    client.out.wait_for("the echo", |l| l == "order");
    client.close_stdin();
    assert_eq!(client.wait().code(), Some(0));
    assert_eq!(client.out.rest(), ["login ok", "order"]);
    let texts: Vec<String> = server
        .server()
        .received()
        .into_iter()
        .filter_map(|r| r.data.as_text().map(str::to_owned))
        .collect();
    assert_eq!(texts, ["login ok", "order"]);

    let out = run_to_end(wsm(&args(&url, &["--ready-on", ""])), LIMIT);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
}

/// `--fallback-url`: the primary refuses, the fallback answers; the
/// status line names the URL connected to.
#[test]
fn a_fallback_url_is_used_when_the_primary_fails() {
    let down = Local::not_yet();
    let server = Local::start();
    let fallback = server.url();
    let mut client = Wsm::start(&args(&down.url(), &["--fallback-url", &fallback]));
    let down_url = down.url();
    client
        .err
        .wait_for("the failed attempt at the primary", |l| {
            l.contains(" DISCONNECTED ") && l.contains(&down_url)
        });
    client.err.wait_for("CONNECTED to the fallback", |l| {
        l.contains(" CONNECTED ") && l.contains(&fallback)
    });
    client.send("hello");
    client.out.wait_for("the echo", |l| l == "hello");
    client.close_stdin();
    assert_eq!(client.wait().code(), Some(0));
}

/// `--expire`: a line that waited out an outage longer than that is not
/// sent late: it is reported refused, and the end exits 5.
#[test]
fn expired_lines_are_not_sent_late() {
    let mut server = Local::not_yet();
    let mut client = Wsm::start(&args(&server.url(), &["--expire", "1ms"]));
    client.send("stale");
    // Ten waits between attempts (at least 20 ms each): the line, read at
    // once, is long past its deadline.
    for n in 0..10 {
        client
            .err
            .wait_for(&format!("WAITING number {n}"), |l| l.contains(" WAITING "));
    }
    server.restart();
    client.err.wait_for("the refusal", |l| {
        l.contains("REFUSED") && l.contains("deadline passed")
    });
    client.send("fresh");
    client.out.wait_for("the echo", |l| l == "fresh");
    client.close_stdin();
    assert_eq!(client.wait().code(), Some(5));
    assert_eq!(client.out.rest(), ["fresh"]);
}

#[test]
fn a_refused_message_makes_the_end_exit_5() {
    let server = Local::start();
    let url = server.url();
    let mut wsm = Wsm::start(&args(&url, &["--max-message-size", "4"]));
    wsm.send("ok");
    wsm.send("too long");
    wsm.send("base64:!!");
    wsm.close_stdin();
    let status = wsm.wait();
    assert_eq!(status.code(), Some(5), "{}", wsm.err.rest().join("\n"));
    assert_eq!(wsm.out.rest(), ["ok"]);
    let err = wsm.err.rest().join("\n");
    assert!(
        err.contains("REFUSED: outgoing message of 8 bytes is larger than the limit of 4 bytes"),
        "{err}"
    );
    assert!(
        err.contains("WARNING not sent: the text after \"base64:\" is not Base64"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_exits_130_and_lists_what_was_not_delivered() {
    let server = Local::not_yet();
    let url = server.url();
    let mut wsm = Wsm::start(&args(&url, &[]));
    wsm.send("pending line");
    wsm.send("base64:AAE=");
    wsm.close_stdin();
    wsm.err.wait_for("the end of input", |l| {
        l.contains("INPUT ENDED: 2 messages wait for the connection")
    });
    support::child::interrupt(wsm.pid());
    let status = wsm.wait();
    assert_eq!(status.code(), Some(130), "{}", wsm.err.rest().join("\n"));
    let err = wsm.err.rest().join("\n");
    assert!(
        err.contains("wsm: 2 messages were not delivered:\npending line\nbase64:AAE="),
        "{err}"
    );
}

/// `/close CODE REASON` (with `--slash` from a pipe): the independent peer
/// sees that code; plain `/close` sends 1000.
#[test]
fn slash_close_sends_its_code() {
    let mut peer = Peer::start();
    let mut wsm = Wsm::start(&[&peer.url, "--slash"]);
    wsm.send("hi");
    wsm.out.wait_for("echo", |l| l == "hi");
    wsm.send("/close 4000 see you");
    assert_eq!(wsm.wait().code(), Some(0));
    assert_eq!(peer.next_close_code(), 4000);

    let mut wsm = Wsm::start(&[&peer.url, "--slash"]);
    wsm.send("again");
    wsm.out.wait_for("echo", |l| l == "again");
    wsm.send("/close");
    assert_eq!(wsm.wait().code(), Some(0));
    assert_eq!(peer.next_close_code(), 1000);
}

#[cfg(unix)]
#[test]
fn ctrl_c_closes_with_a_close_frame() {
    let mut peer = Peer::start();
    let mut wsm = Wsm::start(&[&peer.url]);
    wsm.send("hi");
    wsm.out.wait_for("echo", |l| l == "hi");
    support::child::interrupt(wsm.pid());
    assert_eq!(wsm.wait().code(), Some(130));
    assert_eq!(peer.next_close_code(), 1000);
}

#[cfg(unix)]
#[test]
fn a_second_ctrl_c_exits_at_once() {
    // Every connection freezes at once: the server never answers the close
    // frame, and the close would wait an hour for it, so only the second
    // Ctrl-C can end wsm within the test's limit.
    let server = Local::start_with(Config::default().freeze_after(Some(Duration::ZERO)));
    let url = server.url();
    let mut wsm = Wsm::start(&args(
        &url,
        &["--close-timeout", "1h", "--ping-interval", "1h"],
    ));
    wsm.err.wait_for("CONNECTED", |l| l.contains(" CONNECTED "));
    support::child::interrupt(wsm.pid());
    wsm.err.wait_for("the closing note", |l| {
        l.contains("Ctrl-C again to exit at once")
    });
    support::child::interrupt(wsm.pid());
    assert_eq!(wsm.wait().code(), Some(130));
}

#[test]
fn a_closed_stdout_ends_quietly_with_0() {
    let server = Local::start();
    let url = server.url();
    let mut command = wsm(&args(&url, &["--no-stdin"]));
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Running(command.spawn().expect("start wsm"));
    let stderr = drain(child.0.stderr.take().expect("piped"));
    let mut stdout = BufReader::new(child.0.stdout.take().expect("piped"));
    server.wait_for_connections(1);
    server.server().send_all("first");
    let mut line = String::new();
    stdout.read_line(&mut line).expect("a line");
    assert_eq!(line, "first\n");
    // The reader goes away, like `| head -1`.
    drop(stdout);
    // The next message cannot be written (the pipe has no reader): wsm
    // ends.
    server.server().send_all("more");
    let status = wait(&mut child, LIMIT);
    let stderr = stderr.join().expect("stderr");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

#[test]
fn wait_keeps_listening_after_the_input_ends() {
    let server = Local::start();
    let url = server.url();
    let mut wsm = Wsm::start(&args(&url, &["-w", "3s"]));
    wsm.send("question");
    wsm.close_stdin();
    server.wait_for_messages(1);
    server.server().send_all("late answer");
    let status = wsm.wait();
    assert!(status.success(), "{}", wsm.err.rest().join("\n"));
    assert_eq!(wsm.out.rest(), ["question", "late answer"]);
}

#[test]
fn help_and_completions() {
    let out = run_to_end(wsm(&["connect", "--help"]), LIMIT);
    assert!(out.status.success(), "{}", out.stderr);
    for needle in [
        "EXAMPLES:",
        "EXIT CODES:",
        "--header-cmd",
        "--ping-timeout",
        "/reconnect",
        "  130 ",
    ] {
        assert!(
            out.stdout.contains(needle),
            "{needle} missing:\n{}",
            out.stdout
        );
    }
    let out = run_to_end(wsm(&["completions", "bash"]), LIMIT);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains("_wsm()") && out.stdout.contains("--header-cmd"),
        "{}",
        out.stdout
    );
}

#[test]
fn compression_is_offered_with_the_flag_and_what_was_agreed_is_shown() {
    // Python's websockets agrees to permessage-deflate by default.
    let peer = Peer::start();
    let long = "compressible ".repeat(500);
    let mut wsm = Wsm::start(&[&peer.url, "--compression", "-n", "2", "--status", "json"]);
    wsm.send("hello");
    wsm.send(&long);
    let status = wsm.wait();
    assert!(status.success(), "{status}\n{}", wsm.err.rest().join("\n"));
    assert_eq!(wsm.out.rest(), ["hello", long.as_str()]);
    let connected = wsm.err.wait_for("CONNECTED", |l| is_state(l, "CONNECTED"));
    assert!(
        connected.contains(r#""compression":"permessage-deflate"#),
        "{connected}"
    );

    // Without the flag nothing is offered, and nothing is shown.
    let mut plain = Wsm::start(&[&peer.url, "-n", "1"]);
    plain.send("hello");
    assert!(plain.wait().success());
    let connected = plain.err.wait_for("CONNECTED", |l| l.contains("CONNECTED"));
    assert!(!connected.contains("deflate"), "{connected}");
}

#[test]
fn show_ping_prints_the_round_trip_of_each_ping() {
    // /ping from a pipe (--slash), against the independent peer.
    let peer = Peer::start();
    let mut wsm = Wsm::start(&[&peer.url, "--slash", "--show-ping"]);
    wsm.send("hi");
    wsm.out.wait_for("echo", |l| l == "hi");
    wsm.send("/ping");
    let pong = wsm.err.wait_for("PONG", |l| l.contains(" PONG "));
    let ms: f64 = pong
        .rsplit(' ')
        .next()
        .and_then(|rtt| rtt.strip_suffix("ms"))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no round trip in {pong:?}"));
    assert!((0.0..LIMIT.as_secs_f64() * 1000.0).contains(&ms), "{pong}");
    wsm.close_stdin();
    assert!(wsm.wait().success(), "{}", wsm.err.rest().join("\n"));

    // Keep-alive pings, as JSON lines; without the flag, none is shown.
    let server = Local::start();
    let url = server.url();
    let mut wsm = Wsm::start(&args(
        &url,
        &["--status", "json", "--show-ping", "--ping-interval", "50ms"],
    ));
    let line = wsm.err.wait_for("pong", |l| {
        serde_json::from_str::<Value>(l).is_ok_and(|v| v["event"] == "pong")
    });
    let pong = json(&line);
    assert!(
        pong["rtt_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{pong}"
    );
    assert!(pong.get("state").is_none(), "not a change of state: {pong}");
    wsm.close_stdin();
    assert!(wsm.wait().success(), "{}", wsm.err.rest().join("\n"));

    let mut wsm = Wsm::start(&args(&url, &["--ping-interval", "50ms", "-w", "400ms"]));
    wsm.send("hi");
    wsm.close_stdin();
    assert!(wsm.wait().success());
    assert_eq!(wsm.out.rest(), ["hi"]);
    let err = wsm.err.rest();
    assert!(!err.iter().any(|l| l.contains("PONG")), "{err:?}");
}
