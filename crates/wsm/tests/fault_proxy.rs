//! `wsm fault-proxy` run as a process and driven by an independent
//! Toxiproxy client: toxiproxy-python (PyPI, written for Shopify's
//! Toxiproxy; installed by `.ci/run`), in `tests/peers/toxiproxy_client.py`,
//! which checks each toxic's effect with a `websockets` client through the
//! proxy to the in-process echo server.

mod support;

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::Command,
};

use serde_json::Value;
use support::{
    child::{LIMIT, Wsm, interrupt},
    local::Local,
    process::run_to_end,
};

/// Starts `wsm fault-proxy` on a port the system chooses; its API's port.
fn start_fault_proxy() -> (Wsm, u16) {
    let mut proxy = Wsm::start(&["fault-proxy", "--api", "127.0.0.1:0"]);
    let line = proxy.out.wait_for("the API's address", |line| {
        line.starts_with("toxiproxy API on ")
    });
    let port = line
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (proxy, port)
}

#[test]
fn a_toxiproxy_client_drives_the_fault_proxy() {
    let server = Local::start();
    let (mut proxy, port) = start_fault_proxy();
    let script = format!(
        "{}/tests/peers/toxiproxy_client.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut client = Command::new("python3");
    client
        .arg(script)
        .arg(port.to_string())
        .arg(server.addr.to_string());
    let out = run_to_end(client, 2 * LIMIT);
    assert!(
        out.status.success(),
        "the client failed (toxiproxy-python and websockets are installed by \
         `python3 -m pip install toxiproxy-python websockets`, as .ci/run does):\n{}",
        out.stderr
    );
    let seen: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");

    assert_eq!(seen["running"], true, "{seen}");
    assert!(
        seen["version"]
            .as_str()
            .is_some_and(|v| v.contains("Toxiproxy API")),
        "{seen}"
    );
    assert!(
        seen["listen"]
            .as_str()
            .is_some_and(|l| l.starts_with("127.0.0.1:")),
        "{seen}"
    );
    assert_eq!(seen["plain"], "plain", "{seen}");

    assert_eq!(seen["toxics"], serde_json::json!(["latency_downstream"]));
    assert_eq!(
        seen["latency_toxic"],
        serde_json::json!({"latency": 300, "jitter": 0})
    );
    assert_eq!(seen["delayed"], "delayed", "{seen}");
    // The echo came back through 300 ms of latency.
    let delayed = seen["delayed_ms"].as_f64().expect("a time");
    assert!(delayed >= 300.0, "echoed after {delayed} ms: {seen}");

    assert_eq!(seen["silenced"], "timed out", "{seen}");
    assert_eq!(seen["after_silence"], "after silence", "{seen}");
    assert_eq!(seen["disabled"], "refused", "{seen}");
    assert_eq!(seen["enabled_again"], "enabled again", "{seen}");

    assert_eq!(seen["poison"]["status"], 400, "{seen}");
    assert!(
        seen["poison"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("unknown toxic type \"poison\"")),
        "{seen}"
    );
    assert_eq!(seen["duplicate_status"], 409, "{seen}");
    assert_eq!(seen["unknown"]["status"], 404, "{seen}");

    assert_eq!(
        seen["before_reset"],
        serde_json::json!(["bandwidth_downstream"])
    );
    assert_eq!(seen["after_reset"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["proxies_at_end"], serde_json::json!([]), "{seen}");

    interrupt(proxy.pid());
    let status = proxy.wait();
    assert!(status.success(), "{status}");
    proxy.out.wait_for("the stop", |line| line == "stopped");
}

#[test]
fn the_api_listens_on_loopback_only() {
    let out = run_to_end(
        support::child::wsm(&["fault-proxy", "--api", "0.0.0.0:0"]),
        LIMIT,
    );
    assert!(!out.status.success(), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("cannot start the fault proxy's API on 0.0.0.0:0")
            && out.stderr.contains("loopback"),
        "no reason given: {}",
        out.stderr
    );
    // Nothing runs: the process ended on its own.
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

/// `GET path` on the API at `port`: the JSON answer.
fn get(port: u16, path: &str) -> Value {
    let mut http = TcpStream::connect(("127.0.0.1", port)).expect("connect to the API");
    write!(
        http,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("write the call");
    http.set_read_timeout(Some(LIMIT)).expect("a read timeout");
    let mut answer = String::new();
    http.read_to_string(&mut answer).expect("read the answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).expect("JSON")
}

#[test]
fn a_config_file_creates_its_proxies_at_start() {
    let server = Local::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("toxiproxy.json");
    std::fs::write(
        &config,
        format!(
            r#"[{{"name": "feed", "listen": "127.0.0.1:0", "upstream": "{0}"}},
                {{"name": "off", "listen": "127.0.0.1:0", "upstream": "{0}", "enabled": false}}]"#,
            server.addr
        ),
    )
    .expect("write the config");
    let path = config.to_str().expect("a UTF-8 path");
    let mut proxy = Wsm::start(&["fault-proxy", "--api", "127.0.0.1:0", "--config", path]);
    proxy.out.wait_for("the proxies", |line| {
        line == format!("2 proxies created from {path}")
    });
    let line = proxy.out.wait_for("the API's address", |line| {
        line.starts_with("toxiproxy API on ")
    });
    let port: u16 = line
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));

    let proxies = get(port, "/proxies");
    assert_eq!(proxies["feed"]["enabled"], true, "{proxies}");
    assert_eq!(proxies["off"]["enabled"], false, "{proxies}");
    // The enabled one carries connections to the server; the other refuses.
    let feed = proxies["feed"]["listen"].as_str().expect("listen");
    let url = format!("ws://{feed}/");
    let echoed = run_to_end(
        support::child::wsm(&["connect", &url, "-x", "hello", "-n", "1", "--no-stdin"]),
        LIMIT,
    );
    assert!(echoed.status.success(), "{}", echoed.stderr);
    assert_eq!(echoed.stdout, "hello\n");
    server.wait_for_connections(1);
    let off = proxies["off"]["listen"].as_str().expect("listen");
    let refused = TcpStream::connect(off).expect_err("refused");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

    interrupt(proxy.pid());
    assert!(proxy.wait().success());
}

#[test]
fn a_bad_config_file_is_refused_with_its_reason() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("bad.json");
    std::fs::write(&config, r#"{"name": "not in an array"}"#).expect("write the config");
    let path = config.to_str().expect("a UTF-8 path");
    let out = run_to_end(
        support::child::wsm(&["fault-proxy", "--api", "127.0.0.1:0", "--config", path]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "cannot create the proxies of {path}: not a JSON array of proxies"
        )),
        "{}",
        out.stderr
    );

    let missing = dir.path().join("missing.json");
    let missing = missing.to_str().expect("a UTF-8 path");
    let out = run_to_end(
        support::child::wsm(&["fault-proxy", "--api", "127.0.0.1:0", "--config", missing]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("cannot read {missing}")),
        "{}",
        out.stderr
    );
}
