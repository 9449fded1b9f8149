//! The fault-injecting proxy, between raw TCP sockets on 127.0.0.1: bytes
//! pass both ways unchanged and counted, at a limited rate as at full
//! speed; the end of one side reaches the other; stopping drops every
//! connection. Then one test per fault, showing that it acts: latency,
//! black hole, reset, cut after N bytes, slicer, refused connections, slow
//! close. (The pacing itself is pure arithmetic, tested in the crate.)
//!
//! Timing is only ever asserted in the direction that cannot flake: a delay
//! the proxy adds is a lower bound on what the test measures; an upper
//! bound is only the generous [`WAIT`] every wait is bounded by.

use std::{
    io,
    net::SocketAddr,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::timeout,
};
use wsm_server::proxy::{Counter, Direction, Faults, Proxy};

/// Upper bound for anything that should happen promptly.
const WAIT: Duration = Duration::from_secs(5);

/// How long a test waits to see that nothing arrives.
const QUIET: Duration = Duration::from_millis(300);

const MS: Duration = Duration::from_millis(1);

/// An upstream listener and a proxy to it.
async fn proxy_to_listener() -> (Proxy, TcpListener) {
    let upstream = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let proxy = Proxy::start(upstream.local_addr().expect("address")).expect("proxy starts");
    (proxy, upstream)
}

/// One connection through `proxy` to `upstream`: (client side, server
/// side).
async fn connect(proxy: &Proxy, upstream: &TcpListener) -> (TcpStream, TcpStream) {
    let client = timeout(WAIT, TcpStream::connect(proxy.addr()))
        .await
        .expect("connect in time")
        .expect("connect");
    let (server, _) = timeout(WAIT, upstream.accept())
        .await
        .expect("the proxy connects upstream in time")
        .expect("accept");
    (client, server)
}

/// An upstream listener, a proxy to it, and one connection through it:
/// (client side, server side).
async fn through_proxy() -> (Proxy, TcpStream, TcpStream) {
    let (proxy, upstream) = proxy_to_listener().await;
    let (client, server) = connect(&proxy, &upstream).await;
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

/// Reads until the end or an error, each read within [`WAIT`]: the bytes
/// read and how it ended (`Ok` for a clean end).
async fn read_until_closed(stream: &mut TcpStream) -> (Vec<u8>, io::Result<()>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("the end in time")
        {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err) => return (got, Err(err)),
        }
    }
}

/// Fails unless nothing arrives on `stream` within [`QUIET`].
async fn assert_nothing_arrives(stream: &mut TcpStream, side: &str) {
    let mut buf = [0u8; 64];
    if let Ok(read) = timeout(QUIET, stream.read(&mut buf)).await {
        panic!("the {side} got {read:?} through a black hole");
    }
}

#[tokio::test]
async fn latency_delays_each_way_at_least_its_lower_bound_and_keeps_the_order() {
    let (proxy, mut client, mut server) = through_proxy().await;
    // Jitter wider than the pace of the writes below: bytes read later may
    // draw a shorter delay, and must still come after.
    let up = Faults::default().latency(150 * MS, 50 * MS);
    let down = Faults::default().latency(100 * MS, Duration::ZERO);
    proxy.set_faults(Direction::ToServer, up);
    proxy.set_faults(Direction::ToClient, down);
    let lower = |faults: Faults| {
        let latency = faults.latency.expect("latency set");
        latency.delay - latency.jitter
    };

    let sent = Instant::now();
    let writes = async {
        let mut pace = tokio::time::interval(5 * MS);
        for n in 0u32..20 {
            pace.tick().await;
            client
                .write_all(&n.to_be_bytes())
                .await
                .expect("client writes");
        }
    };
    let reads = async {
        let first = read_exactly(&mut server, 4).await;
        let arrived = sent.elapsed();
        let rest = read_exactly(&mut server, 76).await;
        (arrived, [first, rest].concat())
    };
    let ((), (arrived, got)) = tokio::join!(writes, reads);
    assert!(arrived >= lower(up), "to the server in {arrived:?}");
    let expected: Vec<u8> = (0u32..20).flat_map(u32::to_be_bytes).collect();
    assert_eq!(got, expected, "reordered");

    let sent = Instant::now();
    server.write_all(b"back").await.expect("server writes");
    assert_eq!(read_exactly(&mut client, 4).await, b"back");
    let arrived = sent.elapsed();
    assert!(arrived >= lower(down), "to the client in {arrived:?}");
    proxy.stop().await;
}

#[tokio::test]
async fn a_black_hole_passes_nothing_either_way_until_lifted() {
    let (proxy, mut client, mut server) = through_proxy().await;
    client.write_all(b"before").await.expect("client writes");
    assert_eq!(read_exactly(&mut server, 6).await, b"before");

    for direction in Direction::BOTH {
        proxy.update_faults(direction, |f| f.black_hole(true));
    }
    client.write_all(b"ping").await.expect("client writes");
    server.write_all(b"pong").await.expect("server writes");
    assert_nothing_arrives(&mut server, "server").await;
    assert_nothing_arrives(&mut client, "client").await;
    assert_eq!(proxy.forwarded(Direction::ToServer), 6);
    assert_eq!(proxy.forwarded(Direction::ToClient), 0);
    // Half-open, not closed: both sides can still write.
    client.write_all(b"!").await.expect("client writes");
    assert_eq!(proxy.count(Counter::Ended), 0);

    for direction in Direction::BOTH {
        proxy.update_faults(direction, |f| f.black_hole(false));
    }
    assert_eq!(read_exactly(&mut server, 5).await, b"ping!");
    assert_eq!(read_exactly(&mut client, 4).await, b"pong");
    proxy.stop().await;
}

#[tokio::test]
async fn a_reset_closes_both_legs_of_every_open_connection_with_a_rst() {
    let (proxy, upstream) = proxy_to_listener().await;
    let mut pairs = vec![
        connect(&proxy, &upstream).await,
        connect(&proxy, &upstream).await,
    ];
    proxy.reset();
    assert!(proxy.wait_for(Counter::Reset, 2, WAIT).await);
    for (client, server) in &mut pairs {
        for (side, stream) in [("client", client), ("server", server)] {
            let (got, end) = read_until_closed(stream).await;
            assert!(got.is_empty(), "{side}: {got:?}");
            let kind = end
                .expect_err(&format!("{side}: a reset, not a clean end"))
                .kind();
            assert_eq!(kind, io::ErrorKind::ConnectionReset, "{side}");
        }
    }
    // A reset is an event, not a state: the next connection works.
    let (mut client, mut server) = connect(&proxy, &upstream).await;
    client.write_all(b"again").await.expect("client writes");
    assert_eq!(read_exactly(&mut server, 5).await, b"again");
    assert_eq!(proxy.count(Counter::Reset), 2);
    proxy.stop().await;
}

#[tokio::test]
async fn a_cut_passes_exactly_n_bytes_then_resets_and_again_on_each_new_connection() {
    const N: usize = 1_000;
    let (proxy, upstream) = proxy_to_listener().await;
    proxy.update_faults(Direction::ToClient, |f| f.cut_after(Some(N as u64)));
    let bytes = pattern(5 * N);
    for attempt in 1..=2 {
        let (mut client, mut server) = connect(&proxy, &upstream).await;
        server.write_all(&bytes).await.expect("server writes");
        let (got, end) = read_until_closed(&mut client).await;
        assert!(got == bytes[..N], "attempt {attempt}: {} bytes", got.len());
        let kind = end.expect_err("a reset, not a clean end").kind();
        assert_eq!(kind, io::ErrorKind::ConnectionReset, "attempt {attempt}");
        let (_, end) = read_until_closed(&mut server).await;
        let kind = end.expect_err("a reset, not a clean end").kind();
        assert_eq!(kind, io::ErrorKind::ConnectionReset, "attempt {attempt}");
        assert!(proxy.wait_for(Counter::Cut, attempt, WAIT).await);
    }
    // Lifted: everything passes.
    proxy.update_faults(Direction::ToClient, |f| f.cut_after(None));
    let (mut client, mut server) = connect(&proxy, &upstream).await;
    server.write_all(&bytes).await.expect("server writes");
    assert_eq!(read_exactly(&mut client, bytes.len()).await, bytes);
    assert_eq!(proxy.count(Counter::Cut), 2);
    proxy.stop().await;
}

#[tokio::test]
async fn the_slicer_writes_slices_no_larger_than_its_size_its_delay_apart() {
    let (proxy, mut client, mut server) = through_proxy().await;
    let (size, delay) = (10, 100 * MS);
    proxy.update_faults(Direction::ToClient, |f| f.slicer(size, delay));
    let bytes = pattern(45);
    let sent = Instant::now();
    server.write_all(&bytes).await.expect("server writes");
    let mut got = Vec::new();
    let mut reads = Vec::new();
    let mut buf = [0u8; 1024];
    while got.len() < bytes.len() {
        let n = timeout(WAIT, client.read(&mut buf))
            .await
            .expect("a slice in time")
            .expect("read");
        assert!(n > 0, "ended after {} bytes", got.len());
        reads.push(n);
        got.extend_from_slice(&buf[..n]);
    }
    let took = sent.elapsed();
    assert_eq!(got, bytes);
    assert!(reads.iter().all(|&n| n <= size), "reads of {reads:?}");
    // Five slices, four pauses between them.
    assert!(took >= 4 * delay, "all in {took:?}");
    proxy.stop().await;
}

#[tokio::test]
async fn refused_connections_fail_until_accepted_again_and_open_ones_go_on() {
    let (proxy, upstream) = proxy_to_listener().await;
    let (mut open_client, mut open_server) = connect(&proxy, &upstream).await;

    proxy.refuse_connections(true).await.expect("refusing");
    for _ in 0..2 {
        let refused = timeout(WAIT, TcpStream::connect(proxy.addr()))
            .await
            .expect("refused in time")
            .expect_err("refused");
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    }
    open_client
        .write_all(b"still")
        .await
        .expect("client writes");
    assert_eq!(read_exactly(&mut open_server, 5).await, b"still");

    proxy.refuse_connections(false).await.expect("accepting");
    let (mut client, mut server) = connect(&proxy, &upstream).await;
    server.write_all(b"back").await.expect("server writes");
    assert_eq!(read_exactly(&mut client, 4).await, b"back");
    assert_eq!(proxy.connections_accepted(), 2);
    proxy.stop().await;
}

#[tokio::test]
async fn a_slow_close_holds_the_end_for_its_delay() {
    let (proxy, mut client, mut server) = through_proxy().await;
    let hold = 300 * MS;
    proxy.update_faults(Direction::ToClient, |f| f.slow_close(Some(hold)));
    server.write_all(b"bye").await.expect("server writes");
    let closed = Instant::now();
    server.shutdown().await.expect("half-close");
    let (got, end) = read_until_closed(&mut client).await;
    let took = closed.elapsed();
    assert_eq!(got, b"bye");
    end.expect("a clean end");
    assert!(took >= hold, "the end came after {took:?}");
    // The other way is not held; once both ends have passed, it is over.
    client.shutdown().await.expect("half-close");
    let (got, end) = read_until_closed(&mut server).await;
    assert!(got.is_empty() && end.is_ok(), "{got:?} {end:?}");
    assert!(proxy.wait_for(Counter::Ended, 1, WAIT).await);
    assert_eq!(proxy.count(Counter::Reset) + proxy.count(Counter::Cut), 0);
    proxy.stop().await;
}
