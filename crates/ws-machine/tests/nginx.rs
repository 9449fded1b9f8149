//! Through nginx (the Debian package) as a WebSocket reverse proxy on
//! 127.0.0.1, in front of the in-process echo server: echo (text and
//! binary) and a reconnect after the server restarts (nginx answers 502
//! meanwhile), then the fault matrix's two nginx rows. nginx drops a
//! proxied connection on which nothing moved for `proxy_read_timeout`
//! (1 s here):
//!
//! - without the keep-alive (a ping every 10 s), an idle connection is
//!   dropped: the machine sees the TCP connection end without a close
//!   frame, reconnects at once, and loses nothing;
//! - with it (a ping every 300 ms, shorter than the timeout), the pings and
//!   their pongs are traffic for nginx: the connection stays up through
//!   several timeouts of idleness.
//!
//! At-least-once delivery is on (the echo is the acknowledgement): every
//! message sent is echoed or handed back at shutdown. Each row prints its
//! line of the table in `docs/reliability.md`
//! (`cargo test -p ws-machine --test nginx -- --nocapture`), in the columns
//! of `tests/fault_matrix.rs`. The tests run one at a time (they measure
//! times). Nothing sleeps to synchronise: every wait is for an event,
//! bounded; timers only pace the messages and make the link idle, which is
//! what is tested.

mod common;
mod proxies;

use std::{sync::OnceLock, time::Duration};

use common::{
    WAIT, connect, echo, fast,
    ledger::{Ledger, number, numbers},
    ms, recv, send, shutdown, wait_for_state, wait_for_state_where,
};
use proxies::nginx::{UPSTREAM_TIMED_OUT, nginx};
use tokio::{
    sync::Mutex,
    time::{Instant, sleep, sleep_until},
};
use ws_machine::{Builder, Error, Machine, Message, State};
use wsm_server::{Config, Server};

/// nginx's `proxy_read_timeout` and `proxy_send_timeout` in the idle rows.
const READ_TIMEOUT: Duration = Duration::from_secs(1);
const SEND_TIMEOUT: Duration = Duration::from_secs(1);
/// One message every this long while messages flow.
const EVERY: Duration = Duration::from_millis(5);
/// Messages per burst.
const BURST: u64 = 50;

/// The rows measure time: one at a time.
fn serial() -> &'static Mutex<()> {
    static SERIAL: OnceLock<Mutex<()>> = OnceLock::new();
    SERIAL.get_or_init(|| Mutex::new(()))
}

/// The machine of the idle rows: quick reconnects, at-least-once delivery
/// keyed on the message's number, every connection healthy.
fn machine(url: &str, ping: Duration, pong: Duration) -> Builder {
    fast(url)
        .ping_interval(ping)
        .pong_timeout(pong)
        .min_uptime(Duration::ZERO)
        .ack_key(number)
}

/// What a machine saw: the ledger, and when the run began.
struct Seen {
    start: Instant,
    ledger: Ledger,
}

impl std::ops::Deref for Seen {
    type Target = Ledger;

    fn deref(&self) -> &Ledger {
        &self.ledger
    }
}

impl std::ops::DerefMut for Seen {
    fn deref_mut(&mut self) -> &mut Ledger {
        &mut self.ledger
    }
}

impl Seen {
    /// Whether every message sent was echoed.
    fn all_echoed(&self) -> bool {
        (0..self.sent).all(|n| self.echoed.contains_key(&n))
    }

    /// Connections made so far.
    fn connections(&self) -> usize {
        self.changes()
            .filter(|(_, s)| s.state == State::Connected)
            .count()
    }

    /// When the first `Connected` after `after` came.
    fn connected_after(&self, after: Duration) -> Option<Duration> {
        self.changes()
            .find(|(at, s)| *at > after && s.state == State::Connected)
            .map(|(at, _)| *at)
    }

    /// One row of the table in docs/reliability.md, in the columns of
    /// `tests/fault_matrix.rs`.
    fn row(&self, fault: &str, does: &str, detection: &str, reconnect: &str) {
        self.ledger.row(&[fault, does], detection, reconnect);
    }
}

/// A machine driven by the test, and what it saw.
struct Run {
    machine: Machine,
    seen: Seen,
}

impl Run {
    /// Spawns the machine and waits until it is connected.
    async fn start(builder: Builder) -> Self {
        let mut run = Self {
            machine: builder.spawn().expect("valid options"),
            seen: Seen {
                start: Instant::now(),
                ledger: Ledger::default(),
            },
        };
        run.until("connected at first", WAIT, |s| s.connections() == 1)
            .await;
        run
    }

    /// Takes one status or message, whichever comes first, waiting at most
    /// `limit`.
    async fn take_one(&mut self, limit: Duration) {
        let seen = &mut self.seen;
        tokio::select! {
            Some(s) = self.machine.status.recv() => seen.ledger.statuses.push((seen.start.elapsed(), s)),
            Some(m) = self.machine.input.recv() => seen.record(&m),
            () = sleep(limit) => {}
        }
    }

    /// Takes statuses and messages until `done` holds; fails the test if
    /// it does not within `limit`.
    async fn until(&mut self, what: &str, limit: Duration, done: impl Fn(&Seen) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{what}: not within {limit:?}\n{}",
                self.seen.show()
            );
            self.take_one(left).await;
        }
    }

    /// Sends nothing for `span`, taking what comes: the link idles unless
    /// the machine itself sends (pings).
    async fn idle(&mut self, span: Duration) {
        let deadline = Instant::now() + span;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.take_one(left).await;
        }
    }

    /// Sends the next `n` numbered messages, one every [`EVERY`], taking
    /// statuses and messages meanwhile.
    async fn send(&mut self, n: u64) {
        let seen = &mut self.seen;
        let end = seen.sent + n;
        let mut due = Instant::now();
        while seen.sent < end {
            let output = &self.machine.output;
            tokio::select! {
                Some(s) = self.machine.status.recv() => seen.ledger.statuses.push((seen.start.elapsed(), s)),
                Some(m) = self.machine.input.recv() => seen.record(&m),
                permit = async { sleep_until(due).await; output.reserve().await } => {
                    permit
                        .expect("the machine runs")
                        .send(Message::text(seen.sent.to_string()))
                        .expect("the machine runs");
                    seen.sent += 1;
                    due += EVERY;
                }
            }
        }
    }

    /// Stops the machine and takes back what it holds; then takes what the
    /// server received: every message sent reached it at least once,
    /// unless it was handed back.
    async fn finish(self, server: &Server) -> Seen {
        let Self { machine, mut seen } = self;
        let leftovers = shutdown(machine).await;
        seen.handed_back(&leftovers);
        seen.server_received(Some(numbers(server)));
        seen
    }
}

/// Durations as the table shows them.
fn shown(durations: &[Duration]) -> String {
    let parts: Vec<String> = durations
        .iter()
        .map(|d| format!("{} ms", d.as_millis()))
        .collect();
    parts.join(", ")
}

#[tokio::test]
async fn echo_through_nginx_and_a_reconnect_after_the_server_restarts() {
    let _one = serial().lock().await;
    let server = Server::start(Config::default()).expect("server");
    let addr = server.addr();
    let nginx = nginx(
        addr.port(),
        Duration::from_secs(60),
        Duration::from_secs(60),
    );
    let mut machine = connect(fast(nginx.url())).await;
    echo(&mut machine, "text through nginx").await;
    // Binary, and larger than nginx's buffers (4 or 8 KiB).
    for size in [5, 1 << 20] {
        let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        send(&machine, Message::binary(payload.clone())).await;
        let back = recv(&mut machine).await;
        assert!(back.is_binary(), "{back:?}");
        assert_eq!(back.payload().as_ref(), &payload[..]);
    }
    // nginx is in the path: it sent the server its own Host header, the
    // upstream's address (the machine sent nginx's).
    let headers = server.request_headers();
    let host = headers
        .last()
        .and_then(|h| h.get("host"))
        .and_then(|v| v.to_str().ok());
    assert_eq!(host, Some(format!("127.0.0.1:{}", addr.port()).as_str()));

    // The server stops: nginx ends the client's connection too.
    server.stop().await;
    let seen = wait_for_state(&mut machine, State::Disconnected).await;
    let lost = seen.last().and_then(|s| s.error.clone());
    assert!(
        matches!(lost, Some(Error::ConnectionLost(_))),
        "{:?}",
        seen.last()
    );
    // While it is down, nginx answers the upgrade itself with 502 Bad
    // Gateway, which the machine retries.
    let seen = wait_for_state_where(&mut machine, |s| {
        matches!(
            s.error,
            Some(Error::HandshakeRejected {
                status: 502,
                retryable: true,
                ..
            })
        )
    })
    .await;
    // Its error page is HTML: what it says, not its first tag.
    match seen.last().and_then(|s| s.error.as_ref()) {
        Some(Error::HandshakeRejected { body, .. }) => {
            assert_eq!(body.as_deref(), Some("502 Bad Gateway"));
        }
        other => panic!("expected the 502, got {other:?}"),
    }
    println!(
        "server stopped behind nginx: {}; then {}",
        lost.map_or_else(String::new, |e| e.to_string()),
        seen.last().map_or_else(String::new, ToString::to_string),
    );
    nginx.wait_for_lines("Connection refused", 1);
    let server = Server::bind(addr, Config::default()).expect("the same address");
    wait_for_state(&mut machine, State::Connected).await;
    echo(&mut machine, "after the restart").await;
    shutdown(machine).await;
    server.stop().await;
}

#[tokio::test]
async fn without_the_keep_alive_nginx_drops_the_idle_connection_and_nothing_is_lost() {
    const ROUNDS: usize = 2;
    let _one = serial().lock().await;
    let server = Server::start(Config::default()).expect("server");
    let nginx = nginx(server.addr().port(), READ_TIMEOUT, SEND_TIMEOUT);
    // A ping 10 s after the last frame received: never, in this test.
    let mut run = Run::start(machine(
        &nginx.url(),
        Duration::from_secs(10),
        Duration::from_secs(10),
    ))
    .await;
    let mut detections = Vec::new();
    let mut reconnects = Vec::new();
    for round in 0..ROUNDS {
        run.send(BURST).await;
        run.until("every message echoed", WAIT, Seen::all_echoed)
            .await;
        // From here nothing moves either way: no message, no ping.
        let quiet = run.seen.start.elapsed();
        run.until(
            "nginx drops the idle connection",
            READ_TIMEOUT + WAIT,
            |s| s.disconnects().len() > round,
        )
        .await;
        let (dropped, status) = run.seen.disconnects()[round].clone();
        detections.push(dropped.saturating_sub(quiet));
        // nginx closes TCP without a close frame: the connection is lost.
        assert!(
            matches!(status.error, Some(Error::ConnectionLost(_))),
            "{status}\n{}",
            run.seen.show()
        );
        if round == 0 {
            println!("nginx idle drop, as the machine reports it: {status}");
        }
        // Messages sent at once after the drop: queued while the machine
        // reconnects, or written on the next connection if it is up
        // already (it usually is: a healthy connection ends, the machine
        // reconnects without a wait).
        run.send(BURST / 5).await;
        run.until("connected again", WAIT, |s| s.connections() > round + 1)
            .await;
        let again = run.seen.connected_after(dropped).expect("connected again");
        reconnects.push(again.saturating_sub(dropped));
    }
    run.send(BURST).await;
    run.until("every message echoed", WAIT, Seen::all_echoed)
        .await;
    // No ping was ever sent, so no round trip measured.
    assert_eq!(run.machine.stats().rtt, None);
    let seen = run.finish(&server).await;
    seen.row(
        "nginx `proxy_read_timeout` 1 s, link idle (no keep-alive: ping every 10 s)",
        "nginx drops it (TCP closed, no close frame): connection lost, reconnects at once",
        &shown(&detections),
        &shown(&reconnects),
    );
    let lost = seen.lost();
    assert!(lost.is_empty(), "lost {lost:?}\n{}", seen.show());
    // Nothing was in flight at the drops: nothing was written twice.
    assert_eq!(seen.server_duplicates, Some(0), "{}", seen.show());
    assert_eq!(seen.duplicates(), 0, "{}", seen.show());
    assert_eq!(seen.disconnects().len(), ROUNDS, "{}", seen.show());
    // nginx's timer: `proxy_read_timeout` after the last traffic, or up to
    // 300 ms earlier (it keeps a timer rather than move it by less than
    // that). Not the machine's doing: it sent nothing meanwhile.
    for detection in &detections {
        assert!(
            *detection >= READ_TIMEOUT - ms(400) && *detection <= READ_TIMEOUT + ms(1_000),
            "dropped {detection:?} after the link went idle\n{}",
            seen.show()
        );
    }
    assert!(nginx.wait_for_lines(UPSTREAM_TIMED_OUT, ROUNDS).len() >= ROUNDS);
    for reconnect in &reconnects {
        assert!(*reconnect < ms(500), "{reconnect:?}\n{}", seen.show());
    }
}

#[tokio::test]
async fn with_the_keep_alive_nginx_keeps_the_idle_connection() {
    const IDLE: Duration = Duration::from_millis(3_500);
    let _one = serial().lock().await;
    let server = Server::start(Config::default()).expect("server");
    let nginx = nginx(server.addr().port(), READ_TIMEOUT, SEND_TIMEOUT);
    // A ping 300 ms after the last frame received: traffic both ways
    // through nginx (the ping up, the server's pong down) well within its
    // timeout. (nginx 1.22 moves the upstream's read timer on traffic in
    // either direction of an upgraded connection, in
    // `ngx_http_upstream_process_upgraded`: the pings alone would keep it
    // up, the pongs too. Read in its source, not told apart here.)
    let mut run = Run::start(machine(&nginx.url(), ms(300), Duration::from_secs(1))).await;
    run.send(BURST).await;
    run.until("every message echoed", WAIT, Seen::all_echoed)
        .await;
    // No message for 3.5 timeouts: only the keep-alive moves.
    run.idle(IDLE).await;
    assert!(run.seen.disconnects().is_empty(), "{}", run.seen.show());
    // Pings went through and their pongs came back.
    assert!(run.machine.stats().rtt.is_some(), "no round trip measured");
    run.send(BURST).await;
    run.until("every message echoed", WAIT, Seen::all_echoed)
        .await;
    let seen = run.finish(&server).await;
    seen.row(
        "nginx `proxy_read_timeout` 1 s, link idle 3.5 s, keep-alive ping every 300 ms",
        "stays connected (pings and pongs are traffic for nginx)",
        "-",
        "0 ms",
    );
    let lost = seen.lost();
    assert!(lost.is_empty(), "lost {lost:?}\n{}", seen.show());
    assert!(seen.disconnects().is_empty(), "{}", seen.show());
    assert_eq!(seen.server_duplicates, Some(0), "{}", seen.show());
    assert_eq!(seen.duplicates(), 0, "{}", seen.show());
    let timed_out: Vec<String> = nginx
        .log()
        .into_iter()
        .filter(|l| l.contains(UPSTREAM_TIMED_OUT))
        .collect();
    assert!(timed_out.is_empty(), "{timed_out:?}");
}
