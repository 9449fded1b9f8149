//! The write timeout against the link, through a bandwidth-limited proxy on
//! 127.0.0.1 (`wsm_server::proxy`): a slow but moving link is never cut as
//! dead, while a peer that stopped reading still is.
//!
//! Both tests hand the machine more than the socket buffers of the client
//! and the proxy hold (8 MB of 4 KB messages), so its writes wait for the
//! link most of the time, as over a real slow link.

mod common;

use std::{future::Future, time::Duration};

use common::{connect, fast, show};
use tokio::{task::JoinHandle, time::timeout};
use ws_machine::{Error, Machine, Message, State, Status};
use wsm_server::{
    Config, Server,
    proxy::{Direction, Proxy},
};

/// The link's speed each way, in bytes per second.
const RATE: u64 = 20_000;

/// Size of each message.
const SIZE: usize = 4 * 1024;

/// Messages written: 8 MB.
const MESSAGES: u64 = 2_000;

const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Bound on each phase of a test: far more than it needs.
const PHASE: Duration = Duration::from_secs(30);

/// An echo server behind a proxy limited to [`RATE`] each way, and a
/// machine connected through it with a write timeout of [`WRITE_TIMEOUT`]
/// and a keep-alive slower than the test, so that only the write timeout
/// can end the connection.
async fn behind_a_slow_link() -> (Server, Proxy, Machine) {
    let server = Server::start(Config::default()).expect("server starts");
    let proxy = Proxy::start(server.addr()).expect("proxy starts");
    proxy.set_rate(Direction::ToServer, Some(RATE));
    proxy.set_rate(Direction::ToClient, Some(RATE));
    let machine = connect(
        fast(proxy.url())
            .write_timeout(WRITE_TIMEOUT)
            .ping_interval(Duration::from_secs(600)),
    )
    .await;
    (server, proxy, machine)
}

/// Puts [`MESSAGES`] numbered messages of [`SIZE`] bytes on `output`, from
/// a task of their own: the link takes them slower than a test may wait.
fn write_all(machine: &Machine) -> JoinHandle<()> {
    let output = machine.output.clone();
    tokio::spawn(async move {
        for n in 0..MESSAGES {
            let mut payload = vec![0u8; SIZE];
            payload[..8].copy_from_slice(&n.to_le_bytes());
            if output.send(Message::binary(payload)).await.is_err() {
                return;
            }
        }
    })
}

/// The statuses that arrive until `done` resolves (with its answer) or one
/// is a disconnection (`false`), within [`PHASE`] (`false`). The echoes
/// that arrive meanwhile are read and dropped, so that only the link holds
/// the server back.
async fn statuses_until(
    machine: &mut Machine,
    done: impl Future<Output = bool>,
) -> (bool, Vec<Status>) {
    let mut seen = Vec::new();
    let watch = async {
        tokio::pin!(done);
        loop {
            tokio::select! {
                finished = &mut done => return finished,
                Some(status) = machine.status.recv() => {
                    let cut = status.state == State::Disconnected;
                    seen.push(status);
                    if cut {
                        return false;
                    }
                }
                Some(_echo) = machine.input.recv() => {}
            }
        }
    };
    let finished = timeout(PHASE, watch).await.unwrap_or(false);
    (finished, seen)
}

/// Fails the test if any of `seen` is a disconnection.
fn assert_connected(seen: &[Status], when: &str) {
    assert!(
        seen.iter().all(|s| s.state != State::Disconnected),
        "cut {when}: {}",
        show(seen)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_but_moving_link_is_not_cut_by_the_write_timeout() {
    let (server, proxy, mut machine) = behind_a_slow_link().await;
    let writer = write_all(&machine);

    // Three write timeouts' worth of the link's bytes: under the old rule
    // (only a write the socket accepts is progress, and a full socket
    // accepts nothing until a third of its megabytes have drained) each
    // write timeout cut the connection.
    let slow_bytes = 3 * RATE * WRITE_TIMEOUT.as_secs();
    let (passed, seen) = statuses_until(
        &mut machine,
        proxy.wait_for_forwarded(Direction::ToServer, slow_bytes, PHASE),
    )
    .await;
    assert_connected(&seen, "while the link moved");
    assert!(
        passed,
        "the link carried {} bytes",
        proxy.forwarded(Direction::ToServer)
    );

    // Then at full speed: every message arrives, on the one connection.
    proxy.set_rate(Direction::ToServer, None);
    proxy.set_rate(Direction::ToClient, None);
    let (arrived, seen) =
        statuses_until(&mut machine, server.wait_for_messages(MESSAGES, PHASE)).await;
    assert_connected(&seen, "at full speed");
    assert!(
        arrived,
        "{} of {MESSAGES} messages arrived",
        server.messages_received()
    );
    assert_eq!(server.messages_received(), MESSAGES);
    assert_eq!(server.connections_accepted(), 1);
    timeout(PHASE, writer)
        .await
        .expect("writer done")
        .expect("writer ok");
    drop(machine);
    proxy.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_behind_a_slow_link_is_still_cut() {
    let (server, proxy, mut machine) = behind_a_slow_link().await;
    let writer = write_all(&machine);
    let (passed, seen) = statuses_until(
        &mut machine,
        proxy.wait_for_forwarded(Direction::ToServer, RATE, PHASE),
    )
    .await;
    assert_connected(&seen, "while the link moved");
    assert!(passed, "the link carried nothing");

    // The server stops reading; the link goes at full speed, so that the
    // buffers on the way fill at once and only the peer holds the writes.
    assert_eq!(server.freeze_all(), 1);
    proxy.set_rate(Direction::ToServer, None);
    proxy.set_rate(Direction::ToClient, None);
    let (_, seen) = statuses_until(&mut machine, std::future::pending()).await;
    let cut = seen
        .iter()
        .find(|s| s.state == State::Disconnected)
        .unwrap_or_else(|| panic!("not cut within {PHASE:?}: {}", show(&seen)));
    assert!(
        matches!(cut.error, Some(Error::WriteTimeout(d)) if d == WRITE_TIMEOUT),
        "{}",
        show(&seen)
    );
    writer.abort();
    drop(machine);
    proxy.stop().await;
    server.stop().await;
}
