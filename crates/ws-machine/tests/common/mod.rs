//! Helpers shared by the integration tests: a machine tuned for fast tests,
//! and bounded waits on its four channels.
//!
//! Every wait here is bounded by [`WAIT`] (or a shorter limit given by the
//! caller) and fails the test with a message saying what did not happen,
//! so a broken promise shows up as a quick, readable failure instead of a
//! hung test. Nothing sleeps to synchronise: tests wait for statuses,
//! messages or the server's `wait_for_*` helpers.

// Each test file is its own crate and uses a different subset of these.
#![allow(dead_code)]

pub mod fleet;
pub mod ledger;
pub mod logs;
pub mod peers;
pub mod raw_deflate;
pub mod toxiproxy;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    time::{Instant, timeout},
};
use ws_machine::{Builder, Command, Leftovers, Machine, Message, State, Status};

/// Upper bound for anything that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(3);

/// Shorthand for milliseconds.
pub const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Logs to the test's output when `RUST_LOG` is set (`RUST_LOG=ws_machine=debug`).
pub fn trace() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A builder with short waits, so that reconnects take milliseconds: backoff
/// 10–50 ms, handshake timeout 2 s, close timeout 300 ms, a fixed jitter
/// seed. Keep-alive and `min_uptime` stay at their defaults unless a test
/// sets them.
///
/// With `WSM_TEST_COMPRESSION=1` in the environment, the machine offers
/// permessage-deflate: the whole suite then runs on the engine of
/// compressed connections (`.ci/run` runs it so a second time; the
/// in-process server declines compression, so the messages themselves go
/// uncompressed).
pub fn fast(url: impl Into<String>) -> Builder {
    trace();
    let builder = Machine::builder(url)
        .backoff(ms(10), ms(50))
        .handshake_timeout(Duration::from_secs(2))
        .close_timeout(ms(300))
        .jitter_seed(7);
    if std::env::var_os("WSM_TEST_COMPRESSION").is_some_and(|v| v == "1") {
        with_compression(builder)
    } else {
        builder
    }
}

#[cfg(feature = "deflate")]
fn with_compression(builder: Builder) -> Builder {
    builder.compression(ws_machine::Deflate::new())
}

#[cfg(not(feature = "deflate"))]
fn with_compression(builder: Builder) -> Builder {
    builder
}

/// A `ws://` URL on 127.0.0.1 where nothing listens (a port just freed).
pub async fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    format!("ws://{addr}/")
}

/// The next status, within `limit`; `None` if none came in time. Panics if
/// the channel closed.
pub async fn status_within(machine: &mut Machine, limit: Duration) -> Option<Status> {
    match timeout(limit, machine.status.recv()).await {
        Ok(Some(status)) => Some(status),
        Ok(None) => panic!("status channel closed while a status was expected"),
        Err(_) => None,
    }
}

/// The next status, within [`WAIT`].
pub async fn next_status(machine: &mut Machine) -> Status {
    status_within(machine, WAIT)
        .await
        .unwrap_or_else(|| panic!("no status within {WAIT:?}"))
}

/// Reads statuses until one is in `state`; returns all of them, that one
/// last. Fails if `state` is not reached within [`WAIT`] or the machine
/// stops first.
pub async fn wait_for_state(machine: &mut Machine, state: State) -> Vec<Status> {
    wait_for_state_where(machine, |s| s.state == state).await
}

/// Reads statuses until the final one and returns it; then checks that
/// `status` and `input` are closed.
pub async fn wait_for_final(machine: &mut Machine) -> Status {
    let seen = wait_for_state_where(machine, Status::is_final).await;
    let last = seen.last().cloned().expect("at least one status");
    assert_eq!(last.state, State::Disconnected, "{last}");
    expect_closed(machine).await;
    last
}

/// Reads statuses until `done` holds for one; returns all of them.
pub async fn wait_for_state_where(
    machine: &mut Machine,
    mut done: impl FnMut(&Status) -> bool,
) -> Vec<Status> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(status) = status_within(machine, left).await else {
            panic!(
                "expected status not seen within {WAIT:?}; saw {}",
                show(&seen)
            );
        };
        let hit = done(&status);
        let last = status.is_final();
        seen.push(status);
        if hit {
            return seen;
        }
        assert!(!last, "machine stopped first: {}", show(&seen));
    }
}

/// Spawns the machine and waits until it is connected.
pub async fn connect(builder: Builder) -> Machine {
    let mut machine = builder.spawn().expect("valid options");
    wait_for_state(&mut machine, State::Connected).await;
    machine
}

/// [`Machine::shutdown`], bounded by [`WAIT`].
pub async fn shutdown(machine: Machine) -> Leftovers {
    timeout(WAIT, machine.shutdown())
        .await
        .unwrap_or_else(|_| panic!("shutdown did not complete within {WAIT:?}"))
}

/// Asserts that the machine stopped: `status` and `input` both end (after
/// whatever they still hold) within [`WAIT`].
pub async fn expect_closed(machine: &mut Machine) {
    let status = timeout(WAIT, async {
        let mut rest = Vec::new();
        while let Some(s) = machine.status.recv().await {
            rest.push(s);
        }
        rest
    })
    .await
    .expect("status channel did not close");
    assert!(
        status.is_empty(),
        "statuses after the final one: {}",
        show(&status)
    );
    timeout(WAIT, async {
        while machine.input.recv().await.is_some() {}
    })
    .await
    .expect("input channel did not close");
}

/// The next received message, within [`WAIT`].
pub async fn recv(machine: &mut Machine) -> Message {
    match timeout(WAIT, machine.input.recv()).await {
        Ok(Some(message)) => message,
        Ok(None) => panic!("input closed while a message was expected"),
        Err(_) => panic!("no message within {WAIT:?}"),
    }
}

/// Puts a message on `output`, within [`WAIT`].
pub async fn send(machine: &Machine, message: impl Into<Message>) {
    timeout(WAIT, machine.output.send(message.into()))
        .await
        .expect("output full for too long")
        .expect("machine stopped");
}

/// Sends a command, within [`WAIT`].
pub async fn command(machine: &Machine, command: Command) {
    timeout(WAIT, machine.command.send(command))
        .await
        .expect("command channel full for too long")
        .expect("machine stopped");
}

/// Sends `text` and expects it back as the next received message.
pub async fn echo(machine: &mut Machine, text: &str) {
    send(machine, text).await;
    let back = recv(machine).await;
    assert_eq!(back.as_text(), Some(text), "{back:?}");
}

/// A message whose first 8 bytes are `n`, little-endian.
pub fn numbered(n: u64) -> Message {
    Message::binary(n.to_le_bytes().to_vec())
}

/// The sequence number of a [`numbered`] message.
pub fn number(message: &Message) -> Option<u64> {
    let bytes: [u8; 8] = message.as_ref().get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Statuses as one line, for failure messages.
pub fn show(statuses: &[Status]) -> String {
    let parts: Vec<String> = statuses.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// The states of `statuses`, in order.
pub fn states(statuses: &[Status]) -> Vec<State> {
    statuses.iter().map(|s| s.state).collect()
}

// ---- A scripted peer, for what the echo server cannot show -----------------

/// A bare WebSocket server connection (tokio-websockets' server side), for
/// tests that must see the frames the machine sends, such as its close
/// codes.
pub type Peer<S = TcpStream> = tokio_websockets::WebSocketStream<S>;

/// Accepts one WebSocket connection on `listener`, within [`WAIT`].
pub async fn accept_peer(listener: &TcpListener) -> Peer {
    accept_peer_with(listener, tokio_websockets::Config::default()).await
}

/// [`accept_peer`], with the peer's own engine configuration (for example a
/// small frame size, so that it sends long messages in fragments).
pub async fn accept_peer_with(listener: &TcpListener, config: tokio_websockets::Config) -> Peer {
    let (stream, _) = timeout(WAIT, listener.accept())
        .await
        .expect("no connection in time")
        .expect("accept");
    let (_request, ws) = timeout(
        WAIT,
        tokio_websockets::ServerBuilder::new()
            .config(config)
            .accept(stream),
    )
    .await
    .expect("no upgrade in time")
    .expect("upgrade");
    ws
}

/// The next frame the peer reads, within [`WAIT`]; `None` when the stream
/// ended, `Some(Err)` when it broke.
pub async fn peer_next<S: AsyncRead + AsyncWrite + Unpin>(
    peer: &mut Peer<S>,
) -> Option<Result<tokio_websockets::Message, tokio_websockets::Error>> {
    timeout(WAIT, peer.next())
        .await
        .expect("peer read nothing in time")
}

/// Sends one message from the peer and flushes it.
pub async fn peer_send<S: AsyncRead + AsyncWrite + Unpin>(
    peer: &mut Peer<S>,
    message: tokio_websockets::Message,
) {
    timeout(WAIT, peer.send(message))
        .await
        .expect("peer send in time")
        .expect("peer send");
}

/// Reads frames until a close frame and returns its code; fails if the
/// stream ends or breaks without one.
pub async fn peer_close_code(peer: &mut Peer) -> u16 {
    loop {
        match peer_next(peer).await {
            Some(Ok(frame)) => {
                if let Some((code, _)) = frame.as_close() {
                    return code.into();
                }
            }
            other => panic!("connection ended without a close frame: {other:?}"),
        }
    }
}

/// Runs `test` on a runtime of two worker threads, bounded: a machine
/// stuck in a loop keeps a worker busy where no timeout can interrupt it
/// (and then the test's own timers may not fire either), so a thread of its
/// own aborts the test process if the test has not ended within
/// `20 x WAIT`, and the runtime is shut down within [`WAIT`] once it has.
pub fn on_two_threads(test: impl std::future::Future<Output = ()>) {
    let limit = WAIT * 20;
    let (done, watch) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = watch.recv_timeout(limit) {
            eprintln!(
                "the test is still running after {limit:?}: aborting (a machine stuck in a loop?)"
            );
            std::process::abort();
        }
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(test)));
    runtime.shutdown_timeout(WAIT);
    drop(done);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
