//! permessage-deflate through the machine, against Python `websockets`
//! (an independent implementation, compression on): the prototype of
//! issue 8. The engine is picked per process by `WSM_ENGINE`, so these
//! tests run only in a process started with `WSM_ENGINE=yawc-deflate`:
//!
//!     WSM_ENGINE=yawc-deflate cargo test -p ws-machine --features engine-yawc --test deflate
//!
//! and say they were skipped otherwise.
#![cfg(feature = "engine-yawc")]

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Child, ChildStdout, Command, Stdio},
};

use common::{connect, fast, recv, send, shutdown, wait_for_final};
use ws_machine::{Direction, Error, Message};

/// An echo server on Python `websockets` with permessage-deflate; answers
/// `extensions?` with the extensions it agreed to, and `bomb:N` with N zero
/// bytes (compressed about a thousand to one), then prints the close code
/// the client sent.
const SERVER: &str = r#"
import asyncio, sys
from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

takeover = sys.argv[1] == "takeover"

async def handler(ws):
    agreed = ws.response.headers.get("Sec-WebSocket-Extensions", "")
    async for message in ws:
        if message == "extensions?":
            await ws.send(agreed)
        elif isinstance(message, str) and message.startswith("bomb:"):
            await ws.send(bytes(int(message[5:])))
            await ws.wait_closed()
            print(f"closed {ws.close_code}", flush=True)
        else:
            await ws.send(message)

async def main():
    factory = ServerPerMessageDeflateFactory(
        server_no_context_takeover=not takeover,
        client_no_context_takeover=not takeover,
    )
    async with serve(handler, "127.0.0.1", 0, compression=None, extensions=[factory], max_size=None) as server:
        print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Future()

asyncio.run(main())
"#;

/// The Python server, killed when dropped.
struct Peer {
    child: Child,
    stdout: BufReader<ChildStdout>,
    url: String,
}

impl Peer {
    fn start(takeover: bool) -> Self {
        let mut child = Command::new("python3")
            .args(["-c", SERVER, if takeover { "takeover" } else { "none" }])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with websockets (pip install websockets)");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let port = Self::line(&mut stdout)
            .strip_prefix("port ")
            .expect("the server's port")
            .to_owned();
        Self {
            child,
            stdout,
            url: format!("ws://127.0.0.1:{port}/"),
        }
    }

    fn line(stdout: &mut BufReader<ChildStdout>) -> String {
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the server's output");
        line.trim().to_owned()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn deflate_engine() -> bool {
    let on = std::env::var("WSM_ENGINE").as_deref() == Ok("yawc-deflate");
    if !on {
        eprintln!("skipped: run with WSM_ENGINE=yawc-deflate");
    }
    on
}

/// Text of `size` bytes that compresses (JSON-like records).
fn json(size: usize, seed: u64) -> String {
    let mut text = String::new();
    let mut n = seed;
    while text.len() < size {
        n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        text.push_str(&format!(
            r#"{{"symbol":"BTC-USD","price":{}.{},"seq":{}}},"#,
            n % 90_000,
            n % 100,
            n >> 40
        ));
    }
    text.truncate(size);
    text
}

/// Bytes that do not compress.
fn noise(size: usize) -> Vec<u8> {
    let mut n = 0x9e37_79b9_7f4a_7c15_u64;
    (0..size)
        .map(|_| {
            n ^= n << 13;
            n ^= n >> 7;
            n ^= n << 17;
            (n >> 24) as u8
        })
        .collect()
}

async fn exchange(takeover: bool) {
    let peer = Peer::start(takeover);
    let mut machine = connect(fast(&peer.url).max_message_size(4 << 20)).await;
    send(&machine, Message::text("extensions?")).await;
    let agreed = recv(&mut machine).await;
    let agreed = agreed.as_text().expect("text").to_owned();
    assert!(agreed.starts_with("permessage-deflate"), "{agreed}");
    assert_eq!(agreed.contains("no_context_takeover"), !takeover, "{agreed}");
    let messages = [
        Message::text("hello"),
        Message::text(json(100, 1)),
        Message::text(json(100, 1)),
        Message::text(json(1 << 20, 2)),
        Message::binary(vec![1, 2, 3]),
        Message::binary(noise(1 << 20)),
        Message::binary(json(300_000, 3).into_bytes()),
        Message::text(""),
    ];
    for message in &messages {
        send(&machine, message.clone()).await;
    }
    for message in &messages {
        let echo = recv(&mut machine).await;
        assert_eq!(echo.payload(), message.payload(), "{} bytes", message.len());
        assert_eq!(echo.kind(), message.kind());
    }
    shutdown(machine).await;
}

#[tokio::test]
async fn text_and_binary_small_and_large_with_context_takeover() {
    if deflate_engine() {
        exchange(true).await;
    }
}

#[tokio::test]
async fn text_and_binary_small_and_large_without_context_takeover() {
    if deflate_engine() {
        exchange(false).await;
    }
}

#[tokio::test]
async fn a_small_frame_that_inflates_past_the_limit_is_stopped_with_1009() {
    if !deflate_engine() {
        return;
    }
    let mut peer = Peer::start(true);
    let limit = 64 * 1024;
    let mut machine = connect(fast(&peer.url).max_message_size(limit).reconnect(false)).await;
    // 10 MiB of zeros: about 10 KB on the wire, under the limit; inflated,
    // 160 times over it.
    send(&machine, Message::text("bomb:10485760")).await;
    let last = wait_for_final(&mut machine).await;
    match &last.error {
        Some(Error::MessageTooLarge {
            direction: Direction::Incoming,
            max,
            ..
        }) => assert_eq!(*max, limit),
        other => panic!("expected an incoming message too large, got {other:?}"),
    }
    let closed = tokio::task::spawn_blocking(move || Peer::line(&mut peer.stdout))
        .await
        .expect("the server's line");
    assert_eq!(closed, "closed 1009");
}
