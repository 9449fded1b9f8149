//! The Toxiproxy-compatible API over HTTP on 127.0.0.1: what its calls
//! answer, what they change, and bad calls answered with a clear error that
//! changes nothing. (An independent Toxiproxy client drives it in
//! `crates/wsm/tests/fault_proxy.rs`; the fault matrix's toxic rows run the
//! machine through it.)

// The client the library's tests use too; not all of it is used here.
#[allow(dead_code)]
#[path = "../../ws-machine/tests/common/toxiproxy.rs"]
mod toxiproxy;

use std::time::Duration;

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::{Instant, timeout},
};
use toxiproxy::Toxiproxy;

const WAIT: Duration = Duration::from_secs(5);

/// An upstream on 127.0.0.1 that echoes what each connection sends; its
/// address.
async fn echo_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n @ 1..) = socket.read(&mut buf).await {
                    if socket.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// How long a round trip of `bytes` through `listen` takes.
async fn round_trip(listen: &str, bytes: &[u8]) -> Duration {
    let mut socket = timeout(WAIT, TcpStream::connect(listen))
        .await
        .expect("connect in time")
        .expect("connect");
    let started = Instant::now();
    socket.write_all(bytes).await.expect("write");
    let mut back = vec![0u8; bytes.len()];
    timeout(WAIT, socket.read_exact(&mut back))
        .await
        .expect("the echo in time")
        .expect("read");
    assert_eq!(back, bytes);
    started.elapsed()
}

async fn create(api: &Toxiproxy, name: &str, upstream: &str) -> Value {
    api.expect(
        "POST",
        "/proxies",
        Some(&json!({"name": name, "listen": "127.0.0.1:0", "upstream": upstream})),
        201,
    )
    .await
}

#[tokio::test]
async fn a_toxic_is_shown_changed_and_removed_and_acts_meanwhile() {
    let api = Toxiproxy::start().await;
    let upstream_addr = echo_upstream().await;
    let proxy = create(&api, "echo", &upstream_addr).await;
    let listen = proxy["listen"].as_str().expect("listen").to_owned();
    assert_eq!(proxy["enabled"], true);
    assert_eq!(proxy["toxics"], json!([]));

    let added = api
        .expect(
            "POST",
            "/proxies/echo/toxics",
            Some(
                &json!({"name": "slow", "type": "latency", "stream": "upstream",
                         "attributes": {"latency": 150}}),
            ),
            200,
        )
        .await;
    assert_eq!(added["attributes"], json!({"latency": 150, "jitter": 0}));
    assert!(round_trip(&listen, b"one").await >= Duration::from_millis(150));

    // A change keeps what it does not name.
    let changed = api
        .expect(
            "PATCH",
            "/proxies/echo/toxics/slow",
            Some(&json!({"attributes": {"jitter": 10}})),
            200,
        )
        .await;
    assert_eq!(changed["attributes"], json!({"latency": 150, "jitter": 10}));
    let shown = api
        .expect("GET", "/proxies/echo/toxics/slow", None, 200)
        .await;
    assert_eq!(shown, changed);
    assert_eq!(
        api.expect("GET", "/proxies/echo", None, 200).await["toxics"],
        json!([changed])
    );

    api.expect("DELETE", "/proxies/echo/toxics/slow", None, 204)
        .await;
    assert_eq!(
        api.expect("GET", "/proxies/echo/toxics", None, 200).await,
        json!([])
    );
    api.expect("GET", "/proxies/echo/toxics/slow", None, 404)
        .await;
    round_trip(&listen, b"two").await;
    api.stop().await;
}

#[tokio::test]
async fn bad_calls_get_a_clear_error_and_change_nothing() {
    let api = Toxiproxy::start().await;
    let upstream_addr = echo_upstream().await;
    let proxy = create(&api, "echo", &upstream_addr).await;
    let listen = proxy["listen"].as_str().expect("listen").to_owned();
    let before = api.expect("GET", "/proxies", None, 200).await;

    let cases: [(&str, &str, Option<Value>, u16, &str); 11] = [
        (
            "POST",
            "/proxies",
            Some(json!({"name": "echo", "upstream": upstream_addr})),
            409,
            "already exists",
        ),
        (
            "POST",
            "/proxies",
            Some(json!({"upstream": upstream_addr})),
            400,
            "missing required field: name",
        ),
        (
            "POST",
            "/proxies",
            Some(json!({"name": "other", "listen": listen, "upstream": upstream_addr})),
            409,
            "another proxy listens",
        ),
        (
            "POST",
            "/proxies",
            Some(json!({"name": "far", "upstream": "192.0.2.1:80"})),
            400,
            "loopback",
        ),
        (
            "POST",
            "/proxies",
            Some(json!({"name": "x", "upstream": "no port"})),
            400,
            "cannot resolve",
        ),
        (
            "POST",
            "/proxies/echo/toxics",
            Some(json!({"type": "latency", "toxicity": 0.5})),
            400,
            "toxicity",
        ),
        (
            "POST",
            "/proxies/nowhere/toxics",
            Some(json!({"type": "latency"})),
            404,
            "proxy not found",
        ),
        (
            "DELETE",
            "/proxies/echo/toxics/none",
            None,
            404,
            "toxic not found",
        ),
        ("GET", "/proxies/echo/elsewhere", None, 404, "no such call"),
        ("PUT", "/proxies/echo", None, 405, "PUT is not allowed"),
        (
            "POST",
            "/proxies/echo/toxics",
            Some(json!({"type": "latency", "attributes": {"latency": 86_400_001}})),
            400,
            "at most 86400000 (a day)",
        ),
    ];
    for (method, path, body, status, says) in cases {
        let answer = api.expect(method, path, body.as_ref(), status).await;
        assert_eq!(answer["status"], status, "{method} {path}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{method} {path}: {error}");
    }
    // A port another program listens on (without sharing it).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().expect("address").to_string();
    let answer = api
        .expect(
            "POST",
            "/proxies",
            Some(&json!({"name": "squatter", "listen": taken_addr, "upstream": upstream_addr})),
            409,
        )
        .await;
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("in use by another program")),
        "{answer}"
    );
    // Not JSON at all.
    let (status, answer) = api.call_raw("POST", "/proxies", "{not json").await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("bad request body"))
    );

    assert_eq!(api.expect("GET", "/proxies", None, 200).await, before);
    round_trip(&listen, b"still there").await;
    api.stop().await;
}

#[tokio::test]
async fn a_proxy_moves_to_a_new_upstream_with_its_toxics() {
    let api = Toxiproxy::start().await;
    let first_addr = echo_upstream().await;
    // The second is read by the test itself.
    let second = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let second_addr = second.local_addr().expect("address").to_string();
    create(&api, "echo", &first_addr).await;
    api.expect(
        "POST",
        "/proxies/echo/toxics",
        Some(&json!({"type": "latency", "attributes": {"latency": 100}})),
        200,
    )
    .await;

    // A move that cannot be made leaves the proxy as it was.
    let (status, _) = api
        .call(
            "POST",
            "/proxies/echo",
            Some(&json!({"upstream": "no port"})),
        )
        .await;
    assert_eq!(status, 400);
    let kept = api.expect("GET", "/proxies/echo", None, 200).await;
    assert_eq!(kept["upstream"], first_addr.as_str());
    let first_listen = kept["listen"].as_str().expect("listen").to_owned();
    round_trip(&first_listen, b"still the first").await;

    let moved = api
        .expect(
            "POST",
            "/proxies/echo",
            Some(&json!({"upstream": second_addr})),
            200,
        )
        .await;
    // Same port: only the upstream changed.
    assert_eq!(moved["listen"], first_listen.as_str());
    assert_eq!(moved["upstream"], second_addr.as_str());
    assert_eq!(moved["toxics"][0]["name"], "latency_downstream");
    let listen = moved["listen"].as_str().expect("listen").to_owned();
    // The new upstream gets the connection, through the toxic.
    let mut client = TcpStream::connect(&listen).await.expect("connect");
    let (mut server, _) = timeout(WAIT, second.accept())
        .await
        .expect("the new upstream is reached")
        .expect("accept");
    server.write_all(b"from the second").await.expect("write");
    let started = Instant::now();
    let mut got = [0u8; 15];
    timeout(WAIT, client.read_exact(&mut got))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(&got, b"from the second");
    assert!(started.elapsed() >= Duration::from_millis(100));
    api.stop().await;
}

#[tokio::test]
async fn populate_creates_keeps_and_replaces_and_reset_clears() {
    let api = Toxiproxy::start().await;
    let upstream_addr = echo_upstream().await;
    let other_addr = echo_upstream().await;

    let first = api
        .expect(
            "POST",
            "/populate",
            Some(&json!([
                {"name": "a", "listen": "127.0.0.1:0", "upstream": upstream_addr},
                {"name": "b", "listen": "127.0.0.1:0", "upstream": upstream_addr},
            ])),
            201,
        )
        .await;
    assert_eq!(first["proxies"].as_array().map(Vec::len), Some(2));
    api.expect(
        "POST",
        "/proxies/a/toxics",
        Some(&json!({"type": "bandwidth", "attributes": {"rate": 1}})),
        200,
    )
    .await;
    api.expect("POST", "/proxies/b", Some(&json!({"enabled": false})), 200)
        .await;

    // `a` is the same: kept, with its toxic; `b` moves: replaced.
    let again = api
        .expect(
            "POST",
            "/populate",
            Some(&json!([
                {"name": "a", "upstream": upstream_addr},
                {"name": "b", "listen": "127.0.0.1:0", "upstream": other_addr},
            ])),
            201,
        )
        .await;
    assert_eq!(again["proxies"][0]["toxics"][0]["type"], "bandwidth");
    assert_eq!(again["proxies"][1]["upstream"], other_addr.as_str());
    assert_eq!(again["proxies"][1]["enabled"], true);

    // A replacement that cannot start leaves the proxy as it was.
    let (status, _) = api
        .call(
            "POST",
            "/populate",
            Some(&json!([{"name": "a", "listen": "127.0.0.1:0", "upstream": "no port"}])),
        )
        .await;
    assert_eq!(status, 400);
    let a = api.expect("GET", "/proxies/a", None, 200).await;
    assert_eq!(a["upstream"], upstream_addr.as_str());
    assert_eq!(a["toxics"][0]["type"], "bandwidth");

    api.expect("POST", "/proxies/a", Some(&json!({"enabled": false})), 200)
        .await;
    api.expect("POST", "/reset", None, 204).await;
    let all = api.expect("GET", "/proxies", None, 200).await;
    for name in ["a", "b"] {
        assert_eq!(all[name]["toxics"], json!([]), "{all}");
        assert_eq!(all[name]["enabled"], true, "{all}");
    }
    let listen = all["a"]["listen"].as_str().expect("listen").to_owned();
    round_trip(&listen, b"after the reset").await;
    api.stop().await;
}
