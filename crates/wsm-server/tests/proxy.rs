//! The shaping proxy, between raw TCP sockets on 127.0.0.1: bytes pass
//! both ways unchanged and counted, at a limited rate as at full speed; the
//! end of one side reaches the other; stopping drops every connection.
//! (The pacing itself is pure arithmetic, tested in the crate.)

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::timeout,
};
use wsm_server::proxy::{Direction, Proxy};

/// Upper bound for anything that should happen promptly.
const WAIT: Duration = Duration::from_secs(5);

/// An upstream listener, a proxy to it, and one connection through it:
/// (client side, server side).
async fn through_proxy() -> (Proxy, TcpStream, TcpStream) {
    let upstream = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let proxy = Proxy::start(upstream.local_addr().expect("address")).expect("proxy starts");
    let client = timeout(WAIT, TcpStream::connect(proxy.addr()))
        .await
        .expect("connect in time")
        .expect("connect");
    let (server, _) = timeout(WAIT, upstream.accept())
        .await
        .expect("the proxy connects upstream in time")
        .expect("accept");
    (proxy, client, server)
}

/// `len` bytes that are not all alike, so that a reordering would show.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

async fn read_exactly(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .expect("bytes in time")
        .expect("read");
    buf
}

#[tokio::test]
async fn bytes_pass_both_ways_unchanged_and_counted() {
    let (proxy, mut client, mut server) = through_proxy().await;
    let up = pattern(100_000);
    let down = pattern(70_000);
    // Written from their own tasks: the proxy's buffers are small.
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let ((), (), got_up, got_down) = tokio::join!(
        async { client_write.write_all(&up).await.expect("client writes") },
        async { server_write.write_all(&down).await.expect("server writes") },
        async {
            let mut buf = vec![0u8; up.len()];
            server_read
                .read_exact(&mut buf)
                .await
                .expect("server reads");
            buf
        },
        async {
            let mut buf = vec![0u8; down.len()];
            client_read
                .read_exact(&mut buf)
                .await
                .expect("client reads");
            buf
        },
    );
    assert!(got_up == up, "bytes to the server changed");
    assert!(got_down == down, "bytes to the client changed");
    // Counted once written on, which may be just after the reader got them.
    for (direction, len) in [
        (Direction::ToServer, up.len()),
        (Direction::ToClient, down.len()),
    ] {
        assert!(proxy.wait_for_forwarded(direction, len as u64, WAIT).await);
        assert_eq!(proxy.forwarded(direction), len as u64, "{direction:?}");
    }
    assert_eq!(proxy.connections_accepted(), 1);
    proxy.stop().await;
}

#[tokio::test]
async fn a_limited_direction_still_carries_everything_and_can_be_lifted() {
    let (proxy, mut client, mut server) = through_proxy().await;
    // 4 KB at 40 KB/s, then the rest at full speed.
    proxy.set_rate(Direction::ToServer, Some(40_000));
    let bytes = pattern(12_000);
    client.write_all(&bytes).await.expect("client writes");
    assert!(
        proxy
            .wait_for_forwarded(Direction::ToServer, 4_000, WAIT)
            .await,
        "{} bytes passed",
        proxy.forwarded(Direction::ToServer)
    );
    proxy.set_rate(Direction::ToServer, None);
    assert_eq!(read_exactly(&mut server, bytes.len()).await, bytes);
    // The other direction was never limited.
    server.write_all(b"back").await.expect("server writes");
    assert_eq!(read_exactly(&mut client, 4).await, b"back");
    proxy.stop().await;
}

#[tokio::test]
async fn the_end_of_one_side_reaches_the_other() {
    let (proxy, mut client, mut server) = through_proxy().await;
    client
        .write_all(b"last words")
        .await
        .expect("client writes");
    client.shutdown().await.expect("half-close");
    assert_eq!(read_exactly(&mut server, 10).await, b"last words");
    let mut rest = Vec::new();
    timeout(WAIT, server.read_to_end(&mut rest))
        .await
        .expect("end in time")
        .expect("clean end");
    assert!(rest.is_empty(), "{rest:?}");
    // Half-closed: the other way still works.
    server.write_all(b"reply").await.expect("server writes");
    assert_eq!(read_exactly(&mut client, 5).await, b"reply");
    proxy.stop().await;
}

#[tokio::test]
async fn stopping_drops_every_connection() {
    let (proxy, mut client, mut server) = through_proxy().await;
    proxy.stop().await;
    let mut buf = [0u8; 1];
    // Dropped sockets: the end (or a reset) on both sides, not a hang.
    let on_client = timeout(WAIT, client.read(&mut buf)).await.expect("in time");
    assert!(matches!(on_client, Ok(0) | Err(_)), "{on_client:?}");
    let on_server = timeout(WAIT, server.read(&mut buf)).await.expect("in time");
    assert!(matches!(on_server, Ok(0) | Err(_)), "{on_server:?}");
}

#[tokio::test]
async fn only_loopback_upstreams_are_accepted() {
    let elsewhere = SocketAddr::from(([192, 0, 2, 1], 80));
    let err = Proxy::start(elsewhere).expect_err("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("192.0.2.1:80"), "{err}");
}
