//! permessage-deflate (`Builder::compression`) against independent
//! implementations with compression on: Python's `websockets` and Node's
//! `ws`, each started as a process on 127.0.0.1. Every message is
//! compressed by both sides; payloads of every kind and size come back
//! intact, what the server agreed to is reported, a message that inflates
//! past the limit is refused with 1009, a reconnect negotiates again, and a
//! server without compression is spoken to uncompressed.
//!
//! The tests run under `on_two_threads`: an engine stuck in a loop fails
//! the test process instead of hanging it.
#![cfg(feature = "deflate")]

mod common;

use common::{
    WAIT, connect, fast, on_two_threads,
    peers::PeerProcess,
    raw_deflate::{agree_to_deflate, client_frame},
    recv, send, shutdown, wait_for_final, wait_for_state,
};
use tokio::{net::TcpListener, time::timeout};
use ws_machine::{Deflate, Direction, Error, Machine, Message, State, Status};
use wsm_server::{Config, Server};

/// An echo server on Python `websockets` with permessage-deflate, the
/// counterpart of `peers/deflate_server.js`: argument `takeover` or `none`
/// (no context takeover either way, required of the client too); answers
/// `extensions?` with the extensions it agreed to, `bomb:N` with N zero
/// bytes, then prints the close code the client sent; `close` closes the
/// connection with 1012 (a restart).
const PYTHON_SERVER: &str = r#"
import asyncio, sys
from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

takeover = sys.argv[1] == "takeover"

async def handler(ws):
    agreed = ws.response.headers.get("Sec-WebSocket-Extensions", "")
    async for message in ws:
        if message == "extensions?":
            await ws.send(agreed)
        elif message == "close":
            await ws.close(1012)
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
        require_client_max_window_bits=False,
    )
    async with serve(handler, "127.0.0.1", 0, compression=None, extensions=[factory], max_size=None) as server:
        print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Future()

asyncio.run(main())
"#;

#[derive(Clone, Copy, Debug)]
enum Peer {
    Python,
    Node,
}

async fn start(peer: Peer, takeover: bool) -> PeerProcess {
    let mode = if takeover { "takeover" } else { "none" };
    match peer {
        Peer::Python => PeerProcess::python("deflate (Python)", PYTHON_SERVER, &[mode]).await,
        Peer::Node => PeerProcess::node("deflate_server.js", &[mode]).await,
    }
}

/// Spawns a machine offering `offer` and returns it with its `Connected`
/// status.
async fn connected(url: &str, offer: Deflate) -> (Machine, Status) {
    let mut machine = fast(url)
        .compression(offer)
        .max_message_size(4 << 20)
        .spawn()
        .expect("valid options");
    let seen = wait_for_state(&mut machine, State::Connected).await;
    let status = seen.last().cloned().expect("connected");
    (machine, status)
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

/// Sends messages of every kind and size and checks each echo.
async fn round_trip(machine: &mut Machine) {
    let messages = [
        Message::text("hello"),
        Message::text(json(100, 1)),
        Message::text(json(100, 1)),
        Message::text(json(1 << 20, 2)),
        Message::binary(vec![1, 2, 3]),
        Message::binary(noise(1 << 20)),
        Message::binary(json(300_000, 3).into_bytes()),
        Message::text(""),
        Message::text("ünïcödé ✓"),
    ];
    for message in &messages {
        send(machine, message.clone()).await;
    }
    for message in &messages {
        let echo = recv(machine).await;
        assert_eq!(echo.kind(), message.kind());
        assert!(
            echo.payload() == message.payload(),
            "a {}-byte message came back different",
            message.len()
        );
    }
}

/// What the server says it answered the upgrade with.
async fn servers_answer(machine: &mut Machine) -> String {
    send(machine, Message::text("extensions?")).await;
    recv(machine).await.as_text().expect("text").to_owned()
}

async fn exchange(peer: Peer, takeover: bool) {
    let server = start(peer, takeover).await;
    let (mut machine, status) = connected(&server.url, Deflate::new()).await;
    let agreed = status
        .compression
        .expect("the server agreed to compression");
    let answer = servers_answer(&mut machine).await;
    assert!(
        answer.starts_with("permessage-deflate"),
        "{peer:?}: {answer}"
    );
    assert_eq!(
        agreed.server_context_takeover(),
        !answer.contains("server_no_context_takeover"),
        "{peer:?}: {answer} against {agreed}"
    );
    assert_eq!(
        agreed.client_context_takeover(),
        !answer.contains("client_no_context_takeover"),
        "{peer:?}: {answer} against {agreed}"
    );
    assert_eq!(agreed.server_context_takeover(), takeover, "{peer:?}");
    assert!(
        status.to_string().contains("permessage-deflate"),
        "{status}"
    );
    round_trip(&mut machine).await;
    shutdown(machine).await;
}

#[test]
fn python_websockets_with_context_takeover() {
    on_two_threads(async {
        exchange(Peer::Python, true).await;
    });
}

#[test]
fn python_websockets_without_context_takeover() {
    on_two_threads(async {
        exchange(Peer::Python, false).await;
    });
}

#[test]
fn node_ws_with_context_takeover() {
    on_two_threads(async {
        exchange(Peer::Node, true).await;
    });
}

#[test]
fn node_ws_without_context_takeover() {
    on_two_threads(async {
        exchange(Peer::Node, false).await;
    });
}

#[test]
fn the_offers_parameters_are_agreed_to() {
    on_two_threads(async {
        for peer in [Peer::Python, Peer::Node] {
            let server = start(peer, true).await;
            let offer = Deflate::new()
                .server_max_window_bits(10)
                .client_max_window_bits(11)
                .client_no_context_takeover();
            let (mut machine, status) = connected(&server.url, offer).await;
            let agreed = status.compression.expect("agreed");
            let answer = servers_answer(&mut machine).await;
            assert_eq!(agreed.server_window_bits(), 10, "{peer:?}: {answer}");
            assert!(
                answer.contains("server_max_window_bits=10"),
                "{peer:?}: {answer}"
            );
            assert!(!agreed.client_context_takeover(), "{peer:?}: {answer}");
            assert!(agreed.client_window_bits() <= 11, "{peer:?}: {answer}");
            round_trip(&mut machine).await;
            shutdown(machine).await;
        }
    });
}

#[test]
fn a_small_frame_that_inflates_past_the_limit_is_refused_with_1009() {
    on_two_threads(async {
        for peer in [Peer::Python, Peer::Node] {
            let mut server = start(peer, true).await;
            let limit = 64 * 1024;
            let mut machine = connect(
                fast(&server.url)
                    .compression(Deflate::new())
                    .max_message_size(limit)
                    .reconnect(false),
            )
            .await;
            // 10 MiB of zeros: about 10 KB on the wire, under the limit;
            // inflated, 160 times over it.
            send(&machine, Message::text("bomb:10485760")).await;
            let last = wait_for_final(&mut machine).await;
            match &last.error {
                Some(Error::MessageTooLarge {
                    direction: Direction::Incoming,
                    max,
                    ..
                }) => assert_eq!(*max, limit, "{peer:?}"),
                other => panic!("{peer:?}: expected an incoming message too large, got {other:?}"),
            }
            assert_eq!(server.line().await, "closed 1009", "{peer:?}");
        }
    });
}

#[test]
fn a_reconnect_negotiates_compression_again() {
    on_two_threads(async {
        let server = start(Peer::Python, true).await;
        let (mut machine, first) = connected(&server.url, Deflate::new()).await;
        assert!(first.compression.is_some());
        send(&machine, Message::text("close")).await;
        let seen = wait_for_state(&mut machine, State::Connected).await;
        let again = seen.last().expect("connected");
        assert_eq!(again.compression, first.compression, "{again}");
        let lost = seen
            .iter()
            .find(|s| s.state == State::Disconnected)
            .expect("the restart is reported");
        assert!(
            matches!(lost.error, Some(Error::Closed { code: 1012, .. })),
            "{lost}"
        );
        round_trip(&mut machine).await;
        shutdown(machine).await;
    });
}

#[test]
fn a_server_without_compression_is_spoken_to_uncompressed() {
    on_two_threads(async {
        let server = Server::start(Config::default()).expect("server starts");
        let (mut machine, status) = connected(&server.url(), Deflate::new()).await;
        assert_eq!(status.compression, None, "{status}");
        round_trip(&mut machine).await;
        shutdown(machine).await;
    });
}

#[test]
fn the_machine_offers_every_parameter_and_compresses_what_it_sends() {
    on_two_threads(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}/", listener.local_addr().expect("address"));
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let offer = agree_to_deflate(&mut socket).await;
            let frame = client_frame(&mut socket).await;
            (offer, frame)
        });
        let (machine, status) = connected(&url, Deflate::new()).await;
        assert_eq!(status.compression, Some(Deflate::new()), "{status}");
        let text = json(4096, 7);
        send(&machine, Message::text(text.clone())).await;
        let (offer, (head, payload)) = timeout(WAIT, server)
            .await
            .expect("the server in time")
            .expect("the server task");
        assert_eq!(offer, "permessage-deflate; client_max_window_bits=15");
        assert_eq!(head & 0x0f, 0x1, "a text frame");
        assert_eq!(head & 0x40, 0x40, "RSV1 set: the message is compressed");
        assert!(
            payload.len() < text.len() / 2,
            "{} bytes of JSON sent as {} bytes",
            text.len(),
            payload.len()
        );
        shutdown(machine).await;
    });
}
