//! The fault matrix: numbered messages flow at a steady rate through a
//! fault-injecting proxy (`wsm_server::proxy`) to an echo server, with
//! at-least-once delivery on (the echo is the acknowledgement), while one
//! fault at a time is applied and removed. Every row runs against three
//! echo servers: the in-process one, Python's `websockets` and Node's `ws`
//! (independent implementations, run as processes). For each, the test
//! checks the statuses, that the fault is detected within its bound where it
//! should be (and causes no disconnect where it should not), that the
//! machine recovers once it is removed, and that every message was either
//! echoed or handed back at shutdown: none lost. Duplicates (a message
//! written again after a connection died before its echo arrived) are
//! counted and reported.
//!
//! Each row prints one line of the table in `docs/reliability.md`
//! (`cargo test -p ws-machine --test fault_matrix -- --nocapture`): the
//! peer, the fault, what the machine does, detection (fault to the first
//! disconnect), reconnect (fault removed to connected), connections lost /
//! attempts failed, messages lost of those sent, and messages the server
//! received twice (in-process server only) / echoes the machine received
//! twice. The rows run one at a time (they measure detection times), on
//! 127.0.0.1 only.

mod common;

use std::{net::SocketAddr, sync::OnceLock, time::Duration};

use common::{
    WAIT,
    ledger::{Ledger, number, numbers, shown},
    ms,
    peers::PeerProcess,
    toxiproxy::Toxiproxy,
};
use serde_json::{Value, json};
use tokio::{
    sync::Mutex,
    time::{Instant, sleep, timeout},
};
use ws_machine::{Builder, Command, Error, Machine, Message, State};
use wsm_server::{
    Config, Server,
    proxy::{Direction, Faults, Proxy},
};

/// One message every this long, from the machine.
const EVERY: Duration = Duration::from_millis(5);
/// Keep-alive of every row: a black hole is detected within
/// `PING + PONG` of the last frame received.
const PING: Duration = Duration::from_millis(300);
const PONG: Duration = Duration::from_millis(300);
/// Traffic flows this long before the fault and after it is removed.
const CALM: Duration = Duration::from_millis(500);

/// The rows measure time: one at a time.
fn serial() -> &'static Mutex<()> {
    static SERIAL: OnceLock<Mutex<()>> = OnceLock::new();
    SERIAL.get_or_init(|| Mutex::new(()))
}

/// The echo servers every row runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    InProcess,
    Python,
    Node,
}

const PEERS: [Peer; 3] = [Peer::InProcess, Peer::Python, Peer::Node];

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Self::InProcess => "in-process",
            Self::Python => "Python websockets",
            Self::Node => "Node ws",
        }
    }
}

/// An echo server on Python's `websockets`, on the port given (0: any).
const PYTHON_ECHO: &str = r#"
import asyncio, sys
from websockets.asyncio.server import serve

async def handler(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with serve(handler, "127.0.0.1", int(sys.argv[1]), max_size=None) as server:
        print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Future()

asyncio.run(main())
"#;

/// The server behind the proxy, which some rows stop and start again on
/// the same address, or freeze.
struct Upstream {
    peer: Peer,
    server: Option<Server>,
    process: Option<PeerProcess>,
    addr: SocketAddr,
    /// The numbers of the messages in-process servers stopped before this
    /// one received.
    seen: Vec<u64>,
}

impl Upstream {
    async fn start(peer: Peer) -> Self {
        let mut upstream = Self {
            peer,
            server: None,
            process: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            seen: Vec::new(),
        };
        upstream.launch(0).await;
        upstream
    }

    /// Starts the server on `port` (0: any).
    async fn launch(&mut self, port: u16) {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        match self.peer {
            Peer::InProcess => {
                let server = Server::bind(addr, Config::default()).expect("server starts");
                self.addr = server.addr();
                self.server = Some(server);
            }
            Peer::Python => {
                let process =
                    PeerProcess::python("echo (Python)", PYTHON_ECHO, &[&port.to_string()]).await;
                self.addr = SocketAddr::from(([127, 0, 0, 1], process.port));
                self.process = Some(process);
            }
            Peer::Node => {
                let process = PeerProcess::node_on("echo_server.js", port, &[]).await;
                self.addr = SocketAddr::from(([127, 0, 0, 1], process.port));
                self.process = Some(process);
            }
        }
    }

    /// Kills the server: its connections drop, its port refuses.
    async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            self.seen.extend(numbers(&server));
            server.stop().await;
        }
        if let Some(process) = self.process.take() {
            process.kill().await;
        }
    }

    /// Starts it again on the same port.
    async fn restart(&mut self) {
        self.launch(self.addr.port()).await;
    }

    /// Freezes it: connections stay open, nothing is read or answered (a
    /// process is stopped with SIGSTOP; the in-process server freezes its
    /// connections).
    fn freeze(&self) {
        if let Some(server) = &self.server {
            server.freeze_all();
        }
        if let Some(process) = &self.process {
            process.signal("STOP");
        }
    }

    /// Resumes a frozen process (SIGCONT); the in-process server's frozen
    /// connections stay frozen, new ones are served.
    fn thaw(&self) {
        if let Some(process) = &self.process {
            process.signal("CONT");
        }
    }

    /// The numbers of every message the servers received, in order, when
    /// the server is the in-process one (the others do not say).
    fn received(&self) -> Option<Vec<u64>> {
        let server = self.server.as_ref()?;
        let mut seen = self.seen.clone();
        seen.extend(numbers(server));
        Some(seen)
    }
}

/// The machine of every row: quick reconnects, the row's keep-alive, and
/// at-least-once delivery keyed on the message's number.
fn machine(url: &str) -> Builder {
    common::fast(url)
        .ping_interval(PING)
        .pong_timeout(PONG)
        .min_uptime(Duration::ZERO)
        .ack_key(number)
}

/// What one row saw: the ledger, and when the fault came and went (since
/// the row began).
#[derive(Debug, Default)]
struct Outcome {
    ledger: Ledger,
    fault_on: Duration,
    fault_off: Duration,
}

impl std::ops::Deref for Outcome {
    type Target = Ledger;

    fn deref(&self) -> &Ledger {
        &self.ledger
    }
}

impl std::ops::DerefMut for Outcome {
    fn deref_mut(&mut self) -> &mut Ledger {
        &mut self.ledger
    }
}

impl Outcome {
    /// From the fault to the first disconnect it caused.
    fn detection(&self) -> Option<Duration> {
        self.disconnects()
            .into_iter()
            .find(|(at, _)| *at >= self.fault_on)
            .map(|(at, _)| at.saturating_sub(self.fault_on))
    }

    /// From the fault's removal to the first `Connected` after it (zero if
    /// the machine was connected all along, or again before the removal).
    fn recovery(&self) -> Option<Duration> {
        let disconnects = self.disconnects();
        let Some(&&(last_lost, _)) = disconnects.last() else {
            return Some(Duration::ZERO);
        };
        if let Some((at, _)) = self
            .changes()
            .find(|(at, s)| *at >= self.fault_off && s.state == State::Connected)
        {
            return Some(at.saturating_sub(self.fault_off));
        }
        // Connected again before the fault was even removed.
        self.changes()
            .filter(|(_, s)| s.state == State::Connected)
            .last()
            .filter(|(at, _)| *at > last_lost)
            .map(|_| Duration::ZERO)
    }

    /// One row of the table in docs/reliability.md.
    fn row(&self, peer: Peer, fault: &str, does: &str) {
        self.ledger.row(
            &[peer.name(), fault, does],
            &shown(self.detection()),
            &shown(self.recovery()),
        );
    }
}

/// Runs one row: messages (their number, then `pad` bytes) flow through
/// the proxy for [`CALM`], `apply` injects the fault, it lasts `hold`,
/// `remove` lifts it, messages flow for [`CALM`] more, then the machine
/// stops and hands back what it holds.
async fn run_row<A, R>(builder: Builder, pad: usize, hold: Duration, apply: A, remove: R) -> Outcome
where
    A: AsyncFnOnce(),
    R: AsyncFnOnce(),
{
    let start = Instant::now();
    let Machine {
        mut input,
        output,
        mut status,
        command,
        stopped,
        ..
    } = builder.spawn().expect("valid options");
    let mut outcome = Outcome::default();
    // Wait for the first connection.
    timeout(WAIT, async {
        while let Some(s) = status.recv().await {
            let connected = s.state == State::Connected;
            outcome.statuses.push((start.elapsed(), s));
            if connected {
                break;
            }
        }
    })
    .await
    .expect("connected at first");

    // The sender: one numbered message every EVERY until told to stop.
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let padding = if pad == 0 {
        String::new()
    } else {
        format!(" {}", "x".repeat(pad))
    };
    let sender = tokio::spawn(async move {
        let mut n = 0u64;
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if output.send(Message::text(format!("{n}{padding}"))).await.is_err() {
                        break;
                    }
                    n += 1;
                }
                _ = &mut stop_rx => break,
            }
        }
        n
    });

    // Everything the machine reports, while the fault comes and goes.
    let script = async {
        sleep(CALM).await;
        apply().await;
        // The fault is in force once `apply` returned: the proxy's switches
        // flip at once, and nftables commits its rules in one transaction
        // before `nft` exits (which may take a while on a busy machine).
        let on = start.elapsed();
        sleep(hold).await;
        let off = start.elapsed();
        remove().await;
        sleep(CALM).await;
        (on, off)
    };
    tokio::pin!(script);
    let (on, off) = loop {
        tokio::select! {
            times = &mut script => break times,
            Some(s) = status.recv() => outcome.statuses.push((start.elapsed(), s)),
            Some(m) = input.recv() => outcome.record(&m),
        }
    };
    outcome.fault_on = on;
    outcome.fault_off = off;
    let _ = stop_tx.send(());
    outcome.sent = sender.await.expect("the sender ends");

    // Let the last echoes come (bounded), then stop and take the rest back.
    let _ = timeout(WAIT, async {
        while outcome.echoed.len() < usize::try_from(outcome.sent).unwrap_or(usize::MAX) {
            tokio::select! {
                Some(s) = status.recv() => outcome.statuses.push((start.elapsed(), s)),
                Some(m) = input.recv() => outcome.record(&m),
                else => break,
            }
        }
    })
    .await;
    let _ = command.send(Command::Quit).await;
    let drained = timeout(WAIT, async {
        loop {
            tokio::select! {
                Some(s) = status.recv() => outcome.statuses.push((start.elapsed(), s)),
                Some(m) = input.recv() => outcome.record(&m),
                else => break,
            }
        }
    })
    .await;
    assert!(
        drained.is_ok(),
        "the machine did not stop:\n{}",
        outcome.show()
    );
    let leftovers = timeout(WAIT, stopped).await.expect("stopped in time");
    outcome.handed_back(&leftovers);
    outcome
}

/// What every row asserts: none lost, messages flowed, the machine ended
/// connected (it recovered).
fn nothing_lost(outcome: &Outcome) {
    assert!(outcome.sent >= 20, "too few messages: {}", outcome.sent);
    let lost = outcome.lost();
    assert!(lost.is_empty(), "lost {lost:?}\n{}", outcome.show());
    assert!(
        outcome.recovery().is_some(),
        "never connected again:\n{}",
        outcome.show()
    );
}

/// For faults the machine must ride out: no disconnect, so nothing was
/// written twice either.
fn no_disconnect(outcome: &Outcome) {
    let lost = outcome.disconnects();
    assert!(lost.is_empty(), "disconnected:\n{}", outcome.show());
    assert!(
        outcome.server_duplicates.is_none_or(|n| n == 0),
        "written twice:\n{}",
        outcome.show()
    );
}

/// For a peer that stops answering with TCP open: detected by the
/// keep-alive, within `PING + PONG` of the fault (the last frame arrived
/// just before it), +20 %.
fn detected_as_dead(outcome: &Outcome) {
    let detection = outcome.detection().expect("detected");
    let bound = (PING + PONG).mul_f64(1.2);
    assert!(
        detection <= bound,
        "detected after {detection:?}, bound {bound:?}:\n{}",
        outcome.show()
    );
    let (_, first) = outcome.disconnects()[0];
    assert!(
        matches!(first.error, Some(Error::PongTimeout(_))),
        "{first}"
    );
}

fn set_both(proxy: &Proxy, faults: Faults) {
    for direction in Direction::BOTH {
        proxy.set_faults(direction, faults);
    }
}

#[tokio::test]
async fn latency_below_the_pong_timeout_causes_no_disconnect() {
    let _one = serial().lock().await;
    for peer in PEERS {
        let upstream = Upstream::start(peer).await;
        let proxy = Proxy::start(upstream.addr).expect("proxy");
        let mut outcome = run_row(
            machine(&proxy.url()),
            0,
            Duration::from_secs(2),
            async || set_both(&proxy, Faults::default().latency(ms(100), ms(20))),
            async || set_both(&proxy, Faults::default()),
        )
        .await;
        outcome.server_received(upstream.received());
        outcome.row(peer, "latency 100 ± 20 ms each way", "stays connected");
        no_disconnect(&outcome);
        nothing_lost(&outcome);
        assert_eq!(outcome.duplicates(), 0);
    }
}

#[tokio::test]
async fn a_black_hole_is_detected_within_ping_and_pong_and_recovered() {
    let _one = serial().lock().await;
    for peer in PEERS {
        let upstream = Upstream::start(peer).await;
        let proxy = Proxy::start(upstream.addr).expect("proxy");
        let mut outcome = run_row(
            machine(&proxy.url()).handshake_timeout(ms(500)),
            0,
            Duration::from_secs(2),
            async || set_both(&proxy, Faults::default().black_hole(true)),
            async || {
                set_both(&proxy, Faults::default());
                // What is stuck in the black hole is released with it: end
                // those connections so that the next attempt starts clean.
                proxy.reset();
            },
        )
        .await;
        outcome.server_received(upstream.received());
        outcome.row(
            peer,
            "black hole (TCP open, nothing passes) for 2 s",
            "pong timeout; handshake timeouts while it lasts",
        );
        nothing_lost(&outcome);
        detected_as_dead(&outcome);
    }
}

#[tokio::test]
async fn a_frozen_server_is_detected_and_left_for_a_new_connection() {
    let _one = serial().lock().await;
    for peer in PEERS {
        let upstream = Upstream::start(peer).await;
        let proxy = Proxy::start(upstream.addr).expect("proxy");
        let mut outcome = run_row(
            machine(&proxy.url()).handshake_timeout(ms(500)),
            0,
            Duration::from_secs(2),
            async || upstream.freeze(),
            async || upstream.thaw(),
        )
        .await;
        outcome.server_received(upstream.received());
        outcome.row(
            peer,
            "server frozen for 2 s (SIGSTOP, then SIGCONT; in-process: its connections freeze)",
            "pong timeout; handshake timeouts while it lasts",
        );
        nothing_lost(&outcome);
        detected_as_dead(&outcome);
    }
}

#[tokio::test]
async fn a_reset_reconnects_at_once_and_loses_nothing() {
    let _one = serial().lock().await;
    for peer in PEERS {
        let upstream = Upstream::start(peer).await;
        let proxy = Proxy::start(upstream.addr).expect("proxy");
        let mut outcome = run_row(
            machine(&proxy.url()),
            0,
            ms(200),
            async || proxy.reset(),
            async || {},
        )
        .await;
        outcome.server_received(upstream.received());
        outcome.row(peer, "reset (RST both ways)", "reconnects at once");
        nothing_lost(&outcome);
        assert_eq!(outcome.losses_and_failures(), (1, 0), "{}", outcome.show());
        let detection = outcome.detection().expect("detected");
        assert!(detection < PING, "{detection:?}");
    }
}

#[tokio::test]
async fn connections_cut_again_and_again_lose_nothing() {
    let _one = serial().lock().await;
    for peer in PEERS {
        let upstream = Upstream::start(peer).await;
        let proxy = Proxy::start(upstream.addr).expect("proxy");
        let mut outcome = run_row(
            machine(&proxy.url()),
            0,
            Duration::from_secs(2),
            async || {
                set_both(&proxy, Faults::default().cut_after(Some(1_000)));
                // Open connections count from here: cut them now.
                proxy.reset();
            },
            async || set_both(&proxy, Faults::default()),
        )
        .await;
        outcome.server_received(upstream.received());
        outcome.row(
            peer,
            "cut after 1,000 bytes, every connection for 2 s",
            "reconnects each time",
        );
        nothing_lost(&outcome);
        assert!(
            outcome.losses_and_failures().0 >= 3,
            "cut several times:\n{}",
            outcome.show()
        );
    }
}

#[tokio::test]
async fn bytes_trickled_in_slices_cause_no_disconnect() {
    let _one = serial().lock().await;
    for peer in PEERS {
        let upstream = Upstream::start(peer).await;
        let proxy = Proxy::start(upstream.addr).expect("proxy");
        let mut outcome = run_row(
            machine(&proxy.url()),
            0,
            Duration::from_secs(2),
            async || set_both(&proxy, Faults::default().slicer(8, ms(1))),
            async || set_both(&proxy, Faults::default()),
        )
        .await;
        outcome.server_received(upstream.received());
        outcome.row(
            peer,
            "slicer: 8-byte slices, 1 ms apart, for 2 s",
            "stays connected",
        );
        no_disconnect(&outcome);
        nothing_lost(&outcome);
        assert_eq!(outcome.duplicates(), 0);
    }
}

#[tokio::test]
async fn refused_connections_then_back() {
    let _one = serial().lock().await;
    for peer in PEERS {
        let upstream = Upstream::start(peer).await;
        let proxy = Proxy::start(upstream.addr).expect("proxy");
        let mut outcome = run_row(
            machine(&proxy.url()),
            0,
            Duration::from_secs(1),
            async || {
                proxy.refuse_connections(true).await.expect("refusing");
                proxy.reset();
            },
            async || proxy.refuse_connections(false).await.expect("accepting"),
        )
        .await;
        outcome.server_received(upstream.received());
        outcome.row(
            peer,
            "refused for 1 s (after a reset)",
            "retries with backoff",
        );
        nothing_lost(&outcome);
        assert!(
            outcome
                .statuses
                .iter()
                .any(|(_, s)| s.state == State::Waiting),
            "waited between refused attempts:\n{}",
            outcome.show()
        );
    }
}

#[tokio::test]
async fn a_slow_link_slower_than_the_write_timeout_per_message_is_kept() {
    let _one = serial().lock().await;
    for peer in PEERS {
        let upstream = Upstream::start(peer).await;
        let proxy = Proxy::start(upstream.addr).expect("proxy");
        // 16 KiB/s each way and messages of 64 KiB: each takes 4 s to cross,
        // twice the write timeout, but the link moves all the while. (The
        // machine sees progress each time the kernel takes more bytes: with
        // 16 KiB kept unsent at most, about every second at this rate; a
        // write timeout must exceed that, see docs/reliability.md.) The
        // queue is short, so the sender is held back instead of queueing
        // megabytes, and the pong timeout is longer than a message's
        // crossing (a frame counts as an answer only once whole).
        let builder = machine(&proxy.url())
            .write_timeout(Duration::from_secs(2))
            .pong_timeout(Duration::from_secs(10))
            .queue_capacity(16);
        let mut outcome = run_row(
            builder,
            64 * 1024,
            Duration::from_secs(6),
            async || set_both(&proxy, Faults::default().rate(Some(16 * 1024))),
            async || set_both(&proxy, Faults::default()),
        )
        .await;
        outcome.server_received(upstream.received());
        outcome.row(
            peer,
            "16 KiB/s for 6 s, 64 KiB messages (4 s each), write timeout 2 s",
            "stays connected",
        );
        no_disconnect(&outcome);
        nothing_lost(&outcome);
    }
}

#[tokio::test]
async fn the_server_killed_and_restarted_on_the_same_port() {
    let _one = serial().lock().await;
    for peer in PEERS {
        let upstream = Mutex::new(Upstream::start(peer).await);
        let addr = upstream.lock().await.addr;
        let proxy = Proxy::start(addr).expect("proxy");
        let mut outcome = run_row(
            machine(&proxy.url()),
            0,
            Duration::from_secs(1),
            async || upstream.lock().await.stop().await,
            async || upstream.lock().await.restart().await,
        )
        .await;
        outcome.server_received(upstream.lock().await.received());
        outcome.row(
            peer,
            "server killed, restarted 1 s later on the same port",
            "retries with backoff",
        );
        nothing_lost(&outcome);
        assert!(outcome.losses_and_failures().0 >= 1, "{}", outcome.show());
    }
}

/// The proxy of the Toxiproxy rows.
const PROXY: &str = "/proxies/wsm_matrix";

/// A fresh in-process server (its record counts only this row's
/// messages) and the proxy to it, created through `api` in place of the
/// last row's; the URL to connect to through it.
async fn proxied(api: &Toxiproxy) -> (Upstream, String) {
    let upstream = Upstream::start(Peer::InProcess).await;
    let (status, _) = api.call("DELETE", PROXY, None).await;
    assert!(matches!(status, 204 | 404), "DELETE {PROXY}: {status}");
    let created = api
        .expect(
            "POST",
            "/proxies",
            Some(&json!({
                "name": "wsm_matrix",
                "listen": "127.0.0.1:0",
                "upstream": upstream.addr.to_string(),
            })),
            201,
        )
        .await;
    let listen = created["listen"].as_str().expect("the proxy's address");
    (upstream, format!("ws://{listen}/"))
}

/// The rows again with each fault put on the link as a toxic through the
/// Toxiproxy API: wsm-server's (`wsm fault-proxy`), or a real Toxiproxy
/// when `WSM_TOXIPROXY` names its API (the proxy it creates must reach
/// the in-process server on 127.0.0.1).
#[tokio::test]
async fn toxics_through_the_toxiproxy_api() {
    let _one = serial().lock().await;
    let api = Toxiproxy::start().await;
    // Left over from an interrupted run on a real Toxiproxy: gone.
    let _ = api.call("DELETE", PROXY, None).await;
    let toxics = format!("{PROXY}/toxics");
    let add = async |toxic: Value| {
        api.expect("POST", &toxics, Some(&toxic), 200).await;
    };
    let remove = async |name: &str| {
        api.expect("DELETE", &format!("{toxics}/{name}"), None, 204)
            .await;
    };
    let fault = |what: &str| format!("{what} ({})", api.name());

    let (upstream, url) = proxied(&api).await;
    let mut outcome = run_row(
        machine(&url),
        0,
        Duration::from_secs(2),
        async || {
            for stream in ["upstream", "downstream"] {
                add(
                    json!({"name": format!("latency_{stream}"), "type": "latency",
                           "stream": stream, "attributes": {"latency": 100, "jitter": 20}}),
                )
                .await;
            }
        },
        async || {
            remove("latency_upstream").await;
            remove("latency_downstream").await;
        },
    )
    .await;
    outcome.server_received(upstream.received());
    outcome.row(
        Peer::InProcess,
        &fault("latency toxics, 100 ± 20 ms each way"),
        "stays connected",
    );
    no_disconnect(&outcome);
    nothing_lost(&outcome);

    let (upstream, url) = proxied(&api).await;
    let mut outcome = run_row(
        machine(&url).handshake_timeout(ms(500)),
        0,
        Duration::from_secs(2),
        async || {
            for stream in ["upstream", "downstream"] {
                add(
                    json!({"name": format!("timeout_{stream}"), "type": "timeout",
                           "stream": stream, "attributes": {"timeout": 0}}),
                )
                .await;
            }
        },
        async || {
            remove("timeout_upstream").await;
            remove("timeout_downstream").await;
        },
    )
    .await;
    outcome.server_received(upstream.received());
    outcome.row(
        Peer::InProcess,
        &fault("timeout toxics (0: nothing passes) for 2 s"),
        "pong timeout; handshake timeouts while it lasts",
    );
    nothing_lost(&outcome);
    detected_as_dead(&outcome);

    let (upstream, url) = proxied(&api).await;
    let mut outcome = run_row(
        machine(&url),
        0,
        Duration::from_secs(1),
        async || add(json!({"type": "reset_peer", "attributes": {"timeout": 0}})).await,
        async || remove("reset_peer_downstream").await,
    )
    .await;
    outcome.server_received(upstream.received());
    outcome.row(
        Peer::InProcess,
        &fault("reset_peer toxic for 1 s"),
        "reconnects once it is removed",
    );
    nothing_lost(&outcome);
    assert!(outcome.detection().is_some(), "{}", outcome.show());

    let (upstream, url) = proxied(&api).await;
    let mut outcome = run_row(
        machine(&url),
        0,
        Duration::from_secs(2),
        async || {
            add(json!({"type": "limit_data", "stream": "upstream",
                       "attributes": {"bytes": 1024}}))
            .await;
        },
        async || remove("limit_data_upstream").await,
    )
    .await;
    outcome.server_received(upstream.received());
    outcome.row(
        Peer::InProcess,
        &fault("limit_data toxic, 1 KiB per connection, for 2 s"),
        "reconnects after each cut",
    );
    nothing_lost(&outcome);
    assert!(outcome.disconnects().len() >= 2, "{}", outcome.show());

    let (upstream, url) = proxied(&api).await;
    let mut outcome = run_row(
        machine(&url),
        0,
        Duration::from_secs(1),
        async || {
            api.expect("POST", PROXY, Some(&json!({"enabled": false})), 200)
                .await;
        },
        async || {
            api.expect("POST", PROXY, Some(&json!({"enabled": true})), 200)
                .await;
        },
    )
    .await;
    outcome.server_received(upstream.received());
    outcome.row(
        Peer::InProcess,
        &fault("proxy disabled for 1 s"),
        "refused attempts, then reconnects",
    );
    nothing_lost(&outcome);
    assert!(outcome.detection().is_some(), "{}", outcome.show());

    api.expect("DELETE", PROXY, None, 204).await;
    api.stop().await;
}

/// A tool from a system package, which may be in `/usr/sbin` (not on every
/// PATH).
fn tool(name: &str) -> String {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|dir| format!("{dir}/{name}"))
        .find(|path| std::path::Path::new(path).exists())
        .unwrap_or_else(|| name.to_owned())
}

/// Runs `program` with `args`, bounded; fails the test if it fails.
async fn run_tool(program: &str, args: &[&str]) {
    let output = timeout(
        WAIT,
        tokio::process::Command::new(tool(program))
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{program} {args:?} did not end in time"))
    .unwrap_or_else(|e| {
        panic!("{program} (package nftables or iproute2, .ci/run installs it): {e}")
    });
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Packets dropped by the kernel (nftables) for 2 s: the row runs in a
/// network namespace of its own, so that the rules touch nothing else. This
/// test starts the test binary again under `unshare --net`, running
/// [`packets_dropped_by_the_kernel_inside`] there, and passes on its table
/// rows. Root is needed (`.ci/run` runs as root).
#[tokio::test]
async fn packets_dropped_by_the_kernel() {
    let _one = serial().lock().await;
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let root = status
        .lines()
        .find(|line| line.starts_with("Uid:"))
        .and_then(|line| line.split_whitespace().nth(2))
        == Some("0");
    assert!(
        root,
        "this row needs root: it creates a network namespace and nftables rules in it"
    );
    let exe = std::env::current_exe().expect("the test binary");
    let child = timeout(
        WAIT * 40,
        tokio::process::Command::new(tool("unshare"))
            .arg("--net")
            .arg("--")
            .arg(exe)
            .args([
                "--exact",
                "packets_dropped_by_the_kernel_inside",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the row ends in time")
    .expect("unshare runs (package util-linux)");
    let out = String::from_utf8_lossy(&child.stdout);
    // The rows, also the first, which follows the harness's `test ... `.
    for row in out
        .lines()
        .filter_map(|line| line.find("| ").map(|at| &line[at..]))
    {
        println!("{row}");
    }
    assert!(
        child.status.success() && out.contains("1 passed"),
        "the row failed inside its namespace:\n{out}\n{}",
        String::from_utf8_lossy(&child.stderr)
    );
}

/// The kernel row itself, inside the namespace [`packets_dropped_by_the_kernel`]
/// makes: its loopback is brought up, and an nftables rule drops every TCP
/// packet to or from the proxy's port (so the machine's side of the link
/// goes silent, as when a router drops everything).
#[tokio::test]
#[ignore = "run by packets_dropped_by_the_kernel, inside a network namespace"]
async fn packets_dropped_by_the_kernel_inside() {
    run_tool("ip", &["link", "set", "lo", "up"]).await;
    for peer in PEERS {
        let upstream = Upstream::start(peer).await;
        let proxy = Proxy::start(upstream.addr).expect("proxy");
        let port = proxy.addr().port().to_string();
        let mut outcome = run_row(
            machine(&proxy.url()).handshake_timeout(ms(500)),
            0,
            Duration::from_secs(2),
            async || {
                // One invocation: one transaction.
                let rules = format!(
                    "add table inet wsm; \
                     add chain inet wsm input {{ type filter hook input priority 0 ; }}; \
                     add rule inet wsm input tcp dport {port} drop; \
                     add rule inet wsm input tcp sport {port} drop"
                );
                run_tool("nft", &[&rules]).await;
            },
            async || run_tool("nft", &["delete", "table", "inet", "wsm"]).await,
        )
        .await;
        outcome.server_received(upstream.received());
        outcome.row(
            peer,
            "packets to and from the proxy dropped by nftables for 2 s",
            "pong timeout; connects time out while it lasts",
        );
        nothing_lost(&outcome);
        detected_as_dead(&outcome);
    }
}
