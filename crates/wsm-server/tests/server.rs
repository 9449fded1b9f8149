//! The echo server and each fault, driven by a bare tokio-websockets client
//! (or raw TCP where HTTP bytes matter) over 127.0.0.1. Every wait is bounded.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};
use tokio_websockets::{ClientBuilder, CloseCode, Error, MaybeTlsStream, Message, WebSocketStream};
use wsm_server::{Config, Data, Rejection, Server};

/// Upper bound for anything that should happen promptly.
const WAIT: Duration = Duration::from_secs(5);

/// How long "nothing happens" is watched for.
const QUIET: Duration = Duration::from_millis(300);

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(server: &Server) -> Client {
    let builder = ClientBuilder::new().uri(&server.url()).expect("valid url");
    let (ws, _response) = timeout(WAIT, builder.connect())
        .await
        .expect("connect timed out")
        .expect("connect failed");
    ws
}

async fn next(ws: &mut Client) -> Option<Result<Message, Error>> {
    timeout(WAIT, ws.next()).await.expect("no frame in time")
}

async fn next_message(ws: &mut Client) -> Message {
    next(ws).await.expect("stream ended").expect("stream error")
}

/// Asserts that the next frame is a close with `code`, and that the stream
/// then ends.
async fn expect_close(ws: &mut Client, code: CloseCode) {
    let message = next_message(ws).await;
    assert_eq!(
        message.as_close().map(|(c, _)| c),
        Some(code),
        "{message:?}"
    );
    assert!(next(ws).await.is_none(), "stream should end after close");
}

/// Asserts that the stream ends without a close frame (EOF or reset).
async fn expect_dropped(ws: &mut Client) {
    match next(ws).await {
        None | Some(Err(_)) => {}
        Some(Ok(message)) => panic!("expected the socket to drop, got {message:?}"),
    }
}

fn upgrade_request(addr: std::net::SocketAddr, extra: &str) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Sends `request` on a raw socket and returns everything the server writes
/// until it closes.
async fn raw_exchange(server: &Server, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("server did not close")
        .unwrap();
    String::from_utf8(response).unwrap()
}

#[tokio::test]
async fn echoes_text_and_binary_with_the_same_opcode() {
    let server = Server::start(Config::default()).unwrap();
    let before = tokio::time::Instant::now();
    let mut ws = connect(&server).await;
    let accepted_at = server.accepted_at();
    assert_eq!(accepted_at.len(), 1);
    assert!(accepted_at[0] >= before && accepted_at[0] <= tokio::time::Instant::now());

    ws.send(Message::text("hello")).await.unwrap();
    let echo = next_message(&mut ws).await;
    assert_eq!(echo.as_text(), Some("hello"));

    ws.send(Message::binary(Bytes::from_static(&[0, 1, 2, 255])))
        .await
        .unwrap();
    let echo = next_message(&mut ws).await;
    assert!(echo.is_binary());
    assert_eq!(&**echo.as_payload(), &[0, 1, 2, 255]);

    assert_eq!(server.connections_accepted(), 1);
    assert_eq!(server.handshakes_seen(), 1);
    assert_eq!(server.messages_received(), 2);
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].connection, 1);
    assert_eq!(received[0].data, Data::from("hello"));
    assert_eq!(received[1].data, Data::from(vec![0, 1, 2, 255]));
    let headers = server.request_headers();
    assert_eq!(headers.len(), 1);
    assert!(headers[0].contains_key("sec-websocket-key"));
}

#[tokio::test]
async fn many_queued_messages_are_all_echoed_in_order() {
    let server = Server::start(Config::default().record_limit(0)).unwrap();
    let mut ws = connect(&server).await;
    for i in 0..500u32 {
        ws.feed(Message::binary(Bytes::copy_from_slice(&i.to_le_bytes())))
            .await
            .unwrap();
    }
    ws.flush().await.unwrap();
    for i in 0..500u32 {
        let echo = next_message(&mut ws).await;
        assert_eq!(&**echo.as_payload(), &i.to_le_bytes());
    }
    assert_eq!(server.messages_received(), 500);
    assert!(
        server.received().is_empty() && server.accepted_at().is_empty(),
        "record_limit(0) keeps nothing"
    );
}

#[tokio::test]
async fn ping_is_answered_with_pong() {
    let server = Server::start(Config::default()).unwrap();
    let mut ws = connect(&server).await;
    ws.send(Message::ping("p")).await.unwrap();
    let pong = next_message(&mut ws).await;
    assert!(pong.is_pong());
    assert_eq!(&**pong.as_payload(), b"p");
}

#[tokio::test]
async fn close_command_message_closes_normally() {
    let server = Server::start(Config::default()).unwrap();
    let mut ws = connect(&server).await;
    ws.send(Message::text("/CLOSE")).await.unwrap();
    expect_close(&mut ws, CloseCode::NORMAL_CLOSURE).await;
    assert!(server.wait_for_open_connections(0, WAIT).await);
}

#[tokio::test]
async fn close_after_k_messages() {
    let server = Server::start(Config::default().close_after(Some(2))).unwrap();
    let mut ws = connect(&server).await;
    for text in ["a", "b"] {
        ws.send(Message::text(text)).await.unwrap();
        assert_eq!(next_message(&mut ws).await.as_text(), Some(text));
    }
    expect_close(&mut ws, CloseCode::NORMAL_CLOSURE).await;

    // Each connection gets its own count.
    let mut second = connect(&server).await;
    second.send(Message::text("c")).await.unwrap();
    assert_eq!(next_message(&mut second).await.as_text(), Some("c"));
}

#[tokio::test]
async fn freeze_after_stops_pongs_but_keeps_the_socket() {
    let freeze_after = Duration::from_millis(150);
    let server = Server::start(Config::default().freeze_after(Some(freeze_after))).unwrap();
    let mut ws = connect(&server).await;
    ws.send(Message::text("early")).await.unwrap();
    assert_eq!(next_message(&mut ws).await.as_text(), Some("early"));

    tokio::time::sleep(freeze_after + Duration::from_millis(50)).await;
    ws.send(Message::ping("p")).await.unwrap();
    assert!(
        timeout(QUIET, ws.next()).await.is_err(),
        "a frozen server sends nothing, not even a pong or EOF"
    );
    assert_eq!(server.open_connections(), 1);
}

#[tokio::test]
async fn freeze_all_stops_pongs_then_drop_all_closes_the_socket() {
    let server = Server::start(Config::default()).unwrap();
    let mut ws = connect(&server).await;
    ws.send(Message::ping("before")).await.unwrap();
    assert!(next_message(&mut ws).await.is_pong());

    assert_eq!(server.freeze_all(), 1);
    ws.send(Message::ping("after")).await.unwrap();
    ws.send(Message::text("echo?")).await.unwrap();
    assert!(
        timeout(QUIET, ws.next()).await.is_err(),
        "frozen: no pong, no echo"
    );

    // Frozen connections can still be dropped.
    assert_eq!(server.drop_all(), 1);
    expect_dropped(&mut ws).await;
    assert!(server.wait_for_open_connections(0, WAIT).await);
}

#[tokio::test]
async fn drop_all_closes_without_close_frame() {
    let server = Server::start(Config::default()).unwrap();
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    assert!(server.wait_for_connections(2, WAIT).await);
    assert_eq!(server.drop_all(), 2);
    expect_dropped(&mut a).await;
    expect_dropped(&mut b).await;
    assert!(server.wait_for_open_connections(0, WAIT).await);
}

#[tokio::test]
async fn close_all_sends_normal_close() {
    let server = Server::start(Config::default()).unwrap();
    let mut ws = connect(&server).await;
    assert_eq!(server.close_all(), 1);
    expect_close(&mut ws, CloseCode::NORMAL_CLOSURE).await;
    assert!(server.wait_for_open_connections(0, WAIT).await);
}

#[tokio::test]
async fn send_all_pushes_to_every_connection() {
    let server = Server::start(Config::default()).unwrap();
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    // Connections are registered before their 101 is sent, so a connected
    // client is always reached.
    assert_eq!(server.send_all("tick"), 2);
    assert_eq!(server.send_all(vec![7u8]), 2);
    for ws in [&mut a, &mut b] {
        assert_eq!(next_message(ws).await.as_text(), Some("tick"));
        let binary = next_message(ws).await;
        assert!(binary.is_binary());
        assert_eq!(&**binary.as_payload(), &[7]);
    }
}

#[tokio::test]
async fn garbage_is_a_protocol_error_for_the_client() {
    let server = Server::start(Config::default()).unwrap();
    let mut ws = connect(&server).await;
    // 0xFF: all reserved bits set and a reserved opcode.
    assert_eq!(server.send_garbage_all(Bytes::from_static(&[0xFF; 8])), 1);
    match next(&mut ws).await {
        Some(Err(Error::Protocol(_))) => {}
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn rejects_with_401_and_429_retry_after() {
    let server = Server::start(Config::default()).unwrap();

    server.reject_handshakes(Some(Rejection::unauthorized()));
    let response = raw_exchange(
        &server,
        upgrade_request(server.addr(), "Authorization: Bearer one\r\n").as_bytes(),
    )
    .await;
    assert!(
        response.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{response}"
    );

    server.reject_handshakes(Some(Rejection::too_many_requests(1)));
    let response = raw_exchange(
        &server,
        upgrade_request(server.addr(), "Authorization: Bearer two\r\n").as_bytes(),
    )
    .await;
    assert!(
        response.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
        "{response}"
    );
    assert!(response.contains("\r\nRetry-After: 1\r\n"), "{response}");

    assert_eq!(server.handshakes_seen(), 2);
    assert_eq!(server.connections_accepted(), 0);
    let auth: Vec<_> = server
        .request_headers()
        .iter()
        .map(|h| h["authorization"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(auth, ["Bearer one", "Bearer two"]);

    // The tokio-websockets client sees the status too.
    let builder = ClientBuilder::new().uri(&server.url()).unwrap();
    match timeout(WAIT, builder.connect()).await.unwrap() {
        Err(Error::Upgrade(tokio_websockets::upgrade::Error::DidNotSwitchProtocols(429))) => {}
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }

    server.reject_handshakes(None);
    let mut ws = connect(&server).await;
    ws.send(Message::text("in")).await.unwrap();
    assert_eq!(next_message(&mut ws).await.as_text(), Some("in"));
}

#[tokio::test]
async fn malformed_and_oversized_requests_get_400() {
    let server = Server::start(Config::default()).unwrap();

    let response = raw_exchange(&server, b"\x16\x03\x01 this is not http\r\n\r\n").await;
    assert!(
        response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{response}"
    );

    let mut big = upgrade_request(server.addr(), "");
    big.truncate(big.len() - 2);
    big.push_str("X-Padding: ");
    big.push_str(&"a".repeat(17 * 1024));
    big.push_str("\r\n\r\n");
    let response = raw_exchange(&server, big.as_bytes()).await;
    assert!(
        response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{response}"
    );

    let no_key = upgrade_request(server.addr(), "")
        .replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
    let response = raw_exchange(&server, no_key.as_bytes()).await;
    assert!(
        response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{response}"
    );
    assert_eq!(server.connections_accepted(), 0);
}

#[tokio::test]
async fn frame_sent_with_the_request_is_not_lost() {
    let server = Server::start(Config::default()).unwrap();
    let mut bytes = upgrade_request(server.addr(), "").into_bytes();
    // A masked text frame "hello" (mask 0x00000000 keeps the payload plain).
    bytes.extend_from_slice(b"\x81\x85\x00\x00\x00\x00hello");

    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream.write_all(&bytes).await.unwrap();

    let expected_head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    let mut response = vec![0; expected_head.len() + 7];
    timeout(WAIT, stream.read_exact(&mut response))
        .await
        .expect("no echo in time")
        .unwrap();
    assert_eq!(&response[..expected_head.len()], expected_head.as_bytes());
    assert_eq!(&response[expected_head.len()..], b"\x81\x05hello");
}

#[tokio::test]
async fn too_large_message_closes_with_1009() {
    let server = Server::start(Config::default().max_message_size(16)).unwrap();
    let mut ws = connect(&server).await;
    ws.send(Message::binary(vec![0u8; 17])).await.unwrap();
    let message = next_message(&mut ws).await;
    assert_eq!(
        message.as_close().map(|(code, _)| code),
        Some(CloseCode::MESSAGE_TOO_BIG)
    );
}

#[tokio::test]
async fn accept_then_close_upgrades_and_closes_at_once() {
    let server = Server::start(Config::default()).unwrap();
    server.accept_then_close(true);
    let mut ws = connect(&server).await;
    expect_close(&mut ws, CloseCode::NORMAL_CLOSURE).await;
    assert_eq!(server.connections_accepted(), 1);

    server.accept_then_close(false);
    let mut ws = connect(&server).await;
    ws.send(Message::text("stay")).await.unwrap();
    assert_eq!(next_message(&mut ws).await.as_text(), Some("stay"));
}

#[tokio::test]
async fn paused_accepting_leaves_the_handshake_unanswered() {
    let server = Server::start(Config::default()).unwrap();
    server.pause_accepting(true);
    let builder = ClientBuilder::new().uri(&server.url()).unwrap();
    assert!(
        timeout(QUIET, builder.connect()).await.is_err(),
        "handshake should hang while paused"
    );
    assert_eq!(server.handshakes_seen(), 0);

    server.pause_accepting(false);
    let mut ws = connect(&server).await;
    ws.send(Message::text("back")).await.unwrap();
    assert_eq!(next_message(&mut ws).await.as_text(), Some("back"));
}

#[tokio::test]
async fn restarts_on_the_same_port_after_stop() {
    let server = Server::start(Config::default()).unwrap();
    let addr = server.addr();
    let mut ws = connect(&server).await;
    ws.send(Message::text("one")).await.unwrap();
    assert_eq!(next_message(&mut ws).await.as_text(), Some("one"));

    server.stop().await;
    // Stopping drops every connection.
    expect_dropped(&mut ws).await;

    let server = Server::bind(addr, Config::default()).expect("rebind the same port");
    assert_eq!(server.addr(), addr);
    let mut ws = connect(&server).await;
    ws.send(Message::text("two")).await.unwrap();
    assert_eq!(next_message(&mut ws).await.as_text(), Some("two"));
    server.stop().await;
}

#[tokio::test]
async fn stop_releases_frozen_connections() {
    let server = Server::start(Config::default()).unwrap();
    let mut ws = connect(&server).await;
    assert_eq!(server.freeze_all(), 1);
    server.stop().await;
    expect_dropped(&mut ws).await;
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let server = Server::start(Config::default()).unwrap();
    let mut ws = connect(&server).await;
    drop(server);
    expect_dropped(&mut ws).await;
}

#[tokio::test]
async fn waits_time_out_when_nothing_happens() {
    let server = Server::start(Config::default()).unwrap();
    let short = Duration::from_millis(20);
    assert!(!server.wait_for_connections(1, short).await);
    assert!(!server.wait_for_handshakes(1, short).await);
    assert!(!server.wait_for_messages(1, short).await);
    assert!(server.wait_for_open_connections(0, short).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_on_a_multi_thread_runtime() {
    let server = Server::start(Config::default().record_limit(0)).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..4u8 {
        let mut ws = connect(&server).await;
        tasks.spawn(async move {
            for i in 0..200u8 {
                ws.feed(Message::binary(vec![client, i])).await.unwrap();
            }
            ws.flush().await.unwrap();
            for i in 0..200u8 {
                let echo = next_message(&mut ws).await;
                assert_eq!(&**echo.as_payload(), &[client, i]);
            }
            ws
        });
    }
    let mut clients = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        clients.push(joined.unwrap());
    }
    assert_eq!(server.messages_received(), 800);
    assert_eq!(server.drop_all(), 4);
    for ws in &mut clients {
        expect_dropped(ws).await;
    }
    assert!(server.wait_for_open_connections(0, WAIT).await);
    server.stop().await;
}
