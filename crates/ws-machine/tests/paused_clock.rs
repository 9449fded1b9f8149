//! The timer logic of the whole machine, on tokio's paused clock.
//!
//! These tests run a real machine task against a real WebSocket server
//! (tokio-websockets' server side) over in-memory streams, handed to the
//! machine by its dialer ([`Builder::dialer`]), so that no socket I/O races
//! the clock: with time paused, tokio jumps straight to the next timer when
//! every task is idle, and each assertion on elapsed time is exact. The same
//! behaviours are tested over TCP in the other test files.

use std::{
    io,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use tokio::{
    io::DuplexStream,
    sync::mpsc,
    time::{Instant, timeout},
};
use tokio_websockets as tws;

use ws_machine::{Builder, Command, Error, Machine, Message, ReconnectBudget, State, Status};

/// A test peer: hands in-memory connections to the machine.
struct Peer {
    streams: mpsc::UnboundedSender<DuplexStream>,
}

impl Peer {
    /// A builder whose machine connects only through this peer: each
    /// attempt takes the next connection offered, and is refused when there
    /// is none.
    fn builder() -> (Self, Builder) {
        let (tx, rx) = mpsc::unbounded_channel::<DuplexStream>();
        let offered = Arc::new(Mutex::new(rx));
        let builder = Builder::new("ws://peer.test/").dialer(move |_| {
            let next = offered
                .lock()
                .ok()
                .and_then(|mut streams| streams.try_recv().ok());
            async move { next.ok_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused)) }
        });
        (Self { streams: tx }, builder)
    }

    /// Offers one connection; returns the server's end, not yet upgraded.
    fn offer(&self) -> DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        self.streams.send(client).expect("machine alive");
        server
    }

    /// Offers one connection; returns the server's end once upgraded.
    async fn accept(&self) -> tws::WebSocketStream<DuplexStream> {
        upgrade(self.offer()).await
    }

    /// Offers one connection whose upgrade is never answered.
    fn offer_silent(&self) -> DuplexStream {
        let (client, server) = tokio::io::duplex(1024);
        self.streams.send(client).expect("machine alive");
        server
    }
}

/// Answers the machine's upgrade request on the server's end.
async fn upgrade(server: DuplexStream) -> tws::WebSocketStream<DuplexStream> {
    let (_request, ws) = tws::ServerBuilder::new()
        .accept(server)
        .await
        .expect("upgrade");
    ws
}

/// A machine set up by `configure`, connected to a fresh peer: the peer
/// (for later connections), the machine, and the server's end.
async fn connected(
    configure: impl FnOnce(Builder) -> Builder,
) -> (Peer, Machine, tws::WebSocketStream<DuplexStream>) {
    let (peer, builder) = Peer::builder();
    let mut machine = configure(builder).spawn().expect("valid");
    let server = peer.accept().await;
    until_state(&mut machine, State::Connected).await;
    (peer, machine, server)
}

async fn next_status(machine: &mut Machine) -> Status {
    timeout(Duration::from_secs(3600), machine.status.recv())
        .await
        .expect("a status within an hour of paused time")
        .expect("status channel open")
}

async fn until_state(machine: &mut Machine, state: State) -> Status {
    for _ in 0..100 {
        let status = next_status(machine).await;
        if status.state == state {
            return status;
        }
    }
    panic!("no {state} within 100 statuses");
}

/// Asks the machine to reconnect and answers its next attempt: the server's
/// end of the new connection, once the machine reports it connected.
async fn reconnect_to_next(
    peer: &Peer,
    machine: &mut Machine,
) -> tws::WebSocketStream<DuplexStream> {
    let next = peer.offer();
    machine
        .command
        .send(Command::Reconnect)
        .await
        .expect("running");
    let server = upgrade(next).await;
    until_state(machine, State::Connected).await;
    server
}

/// Lets the machine and the peer run until `input` holds `n` messages
/// (bounded: at most 10,000 turns of the scheduler).
async fn until_input_holds(input: &ws_machine::channel::Receiver<ws_machine::Message>, n: usize) {
    for _ in 0..10_000 {
        if input.len() >= n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("input never held {n} messages");
}

#[tokio::test(start_paused = true)]
async fn backoff_waits_follow_the_schedule_exactly() {
    let (_peer, builder) = Peer::builder();
    let started = Instant::now();
    let mut machine = builder
        .backoff(Duration::from_secs(1), Duration::from_secs(8))
        .max_attempts(6)
        .jitter_seed(42)
        .spawn()
        .expect("valid");
    let mut connecting_at = Vec::new();
    let mut waits = Vec::new();
    let final_status = loop {
        let status = next_status(&mut machine).await;
        match status.state {
            State::Connecting => connecting_at.push(Instant::now()),
            State::Waiting => waits.push((
                started.elapsed(),
                status.delay.expect("a waiting status has a delay"),
            )),
            State::Disconnected if status.is_final() => break status,
            _ => {}
        }
    };
    assert!(matches!(
        final_status.error,
        Some(Error::GaveUp { attempts: 6, .. })
    ));
    assert_eq!(connecting_at.len(), 6);
    assert_eq!(waits.len(), 5);
    // Each wait is exactly the announced delay...
    for (gap, (_, delay)) in connecting_at.windows(2).map(|w| w[1] - w[0]).zip(&waits) {
        assert_eq!(gap, *delay);
    }
    // ...and lies between the initial delay and a ceiling doubling to the
    // cap, bounded by the time disconnected (refusals are instant here),
    // never below the first failure's 2 s.
    for ((down, delay), growth) in waits.iter().zip([2, 4, 8, 8, 8]) {
        let ceiling = Duration::from_secs(growth).min((*down).max(Duration::from_secs(2)));
        assert!(*delay >= Duration::from_secs(1), "{delay:?}");
        assert!(*delay <= ceiling, "{delay:?} > {ceiling:?}");
    }
    let end = timeout(Duration::from_secs(3600), machine.status.recv()).await;
    assert!(end.expect("the channel closes").is_none());
}

/// Attempts refused at once pile up failures (25 here: the exponential
/// ceiling alone would be the 30 s cap since the ninth), but no wait is
/// longer than the time the machine has been disconnected (past the first
/// failure's 200 ms), so when the server comes back after an outage of
/// `T`, the machine is connected by `2 T`.
#[tokio::test(start_paused = true)]
async fn after_quick_refusals_no_wait_exceeds_the_time_disconnected() {
    let (peer, builder) = Peer::builder();
    let started = Instant::now();
    let mut machine = builder.jitter_seed(42).spawn().expect("valid");
    let mut waits = Vec::new();
    while waits.len() < 25 {
        let status = next_status(&mut machine).await;
        if status.state == State::Waiting {
            let delay = status.delay.expect("a waiting status has a delay");
            let down = started.elapsed();
            assert!(delay >= Duration::from_millis(100), "{delay:?}");
            assert!(
                delay <= down.max(Duration::from_millis(200)),
                "waits {delay:?} after {down:?} disconnected"
            );
            waits.push(delay);
        }
    }
    // The outage ends as the 25th refusal is reported: the machine
    // connects when that wait is over, by twice the outage.
    let outage = started.elapsed();
    let last_wait = waits[24];
    let _server = peer.accept().await;
    until_state(&mut machine, State::Connected).await;
    assert_eq!(started.elapsed(), outage + last_wait);
    assert!(started.elapsed() <= outage * 2, "{outage:?}, {waits:?}");
    // The waits grew with the outage, past what 25 quick failures alone
    // could have caused in its first seconds.
    assert!(outage > Duration::from_secs(5), "{outage:?}");
}

/// Machines sharing a reconnect budget start their first attempts at its
/// rate: 2 a second, a burst of 1, three machines started together.
#[tokio::test(start_paused = true)]
async fn machines_sharing_a_budget_take_turns_for_their_first_attempts() {
    let budget = ReconnectBudget::new(2.0, 1).expect("a valid budget");
    let started = Instant::now();
    let mut fleet = Vec::new();
    for _ in 0..3 {
        let (peer, builder) = Peer::builder();
        let machine = builder
            .reconnect_budget(budget.clone())
            .spawn()
            .expect("valid");
        let server = peer.offer();
        fleet.push((peer, machine, server));
    }
    let mut connecting_at = Vec::new();
    for (i, (_peer, machine, _server)) in fleet.iter_mut().enumerate() {
        let first = next_status(machine).await;
        if i == 0 {
            assert_eq!(first.state, State::Connecting, "{first:?}");
        } else {
            assert_eq!(first.state, State::Waiting, "{first:?}");
            assert_eq!(first.attempt, 0, "no attempt yet");
            assert_eq!(first.delay, Some(Duration::from_millis(500) * i as u32));
            let connecting = next_status(machine).await;
            assert_eq!(connecting.state, State::Connecting, "{connecting:?}");
        }
        connecting_at.push(started.elapsed());
    }
    assert_eq!(
        connecting_at,
        [0, 500, 1000].map(Duration::from_millis),
        "one attempt every 500 ms"
    );
}

/// While a machine waits for its turn it reports `Waiting`; `Reconnect`
/// does not jump the queue, and `Quit` is served at once.
#[tokio::test(start_paused = true)]
async fn a_machine_waiting_for_its_turn_says_so_and_quits_at_once() {
    let budget = ReconnectBudget::new(1.0, 1).expect("a valid budget");
    let (_peer, builder) = Peer::builder();
    let started = Instant::now();
    let mut machine = builder
        .reconnect_budget(budget)
        .jitter_seed(42)
        .spawn()
        .expect("valid");
    // The first attempt takes the first turn and is refused; after its
    // backoff, the machine waits for the next turn, a second after the
    // first.
    assert_eq!(next_status(&mut machine).await.state, State::Connecting);
    assert_eq!(next_status(&mut machine).await.state, State::Disconnected);
    let backoff = next_status(&mut machine).await;
    assert_eq!(backoff.state, State::Waiting);
    let turn = next_status(&mut machine).await;
    assert_eq!(turn.state, State::Waiting, "{turn:?}");
    let backoff = backoff.delay.expect("a delay");
    assert_eq!(started.elapsed(), backoff);
    assert_eq!(turn.delay, Some(Duration::from_secs(1) - backoff));
    machine
        .command
        .send(Command::Reconnect)
        .await
        .expect("running");
    let connecting = next_status(&mut machine).await;
    assert_eq!(connecting.state, State::Connecting, "{connecting:?}");
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1),
        "not before its turn"
    );

    // Refused again; after the backoff, the wait for the turn at 2 s.
    until_state(&mut machine, State::Waiting).await;
    let turn = next_status(&mut machine).await;
    assert_eq!(turn.state, State::Waiting, "{turn:?}");
    let asked = Instant::now();
    assert_eq!(
        asked + turn.delay.expect("a delay"),
        started + Duration::from_secs(2)
    );
    machine.command.send(Command::Quit).await.expect("running");
    let last = next_status(&mut machine).await;
    assert!(last.is_final() && last.error.is_none(), "{last:?}");
    assert_eq!(asked.elapsed(), Duration::ZERO, "served at once");
}

#[tokio::test(start_paused = true)]
async fn a_frozen_peer_is_declared_dead_after_interval_plus_timeout() {
    let (peer, builder) = Peer::builder();
    let mut machine = builder
        .ping_interval(Duration::from_secs(10))
        .pong_timeout(Duration::from_secs(5))
        .spawn()
        .expect("valid");
    // The server upgrades, then never reads again: no pongs.
    let _frozen = peer.accept().await;
    until_state(&mut machine, State::Connected).await;
    let connected_at = Instant::now();
    let lost = until_state(&mut machine, State::Disconnected).await;
    assert!(
        matches!(lost.error, Some(Error::PongTimeout(_))),
        "{lost:?}"
    );
    assert_eq!(connected_at.elapsed(), Duration::from_secs(15));
}

#[tokio::test(start_paused = true)]
async fn a_live_peer_gets_a_ping_per_silent_interval_and_stays_connected() {
    let (_peer, mut machine, mut server) = connected(|builder| {
        builder
            .ping_interval(Duration::from_secs(10))
            .pong_timeout(Duration::from_secs(5))
    })
    .await;
    let start = Instant::now();
    let mut pings = 0;
    // Reading answers pings (the engine sends the pongs).
    while start.elapsed() < Duration::from_secs(100) {
        match timeout(Duration::from_secs(101), server.next()).await {
            Ok(Some(Ok(frame))) if frame.is_ping() => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(pings, 10, "one ping per 10 s of silence");
    assert!(machine.status.try_recv().is_err(), "no state change");
}

#[tokio::test(start_paused = true)]
async fn pings_keep_their_interval_when_the_pong_timeout_is_longer() {
    let (_peer, _machine, mut server) = connected(|builder| {
        builder
            .ping_interval(Duration::from_secs(10))
            .pong_timeout(Duration::from_secs(30))
    })
    .await;
    let start = Instant::now();
    let mut pinged_at = Vec::new();
    while pinged_at.len() < 5 {
        match timeout(Duration::from_secs(60), server.next()).await {
            Ok(Some(Ok(frame))) if frame.is_ping() => pinged_at.push(start.elapsed()),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Each pong is answered at once, so the next ping is due 10 s later,
    // not when the 30 s pong timeout would have run out.
    let expected: Vec<Duration> = (1..=5).map(|n| Duration::from_secs(10 * n)).collect();
    assert_eq!(pinged_at, expected);
}

#[tokio::test(start_paused = true)]
async fn traffic_from_the_peer_postpones_pings() {
    let (_peer, mut machine, mut server) =
        connected(|builder| builder.ping_interval(Duration::from_secs(10))).await;
    // The server talks every 6 s for a minute: the client never needs to ping.
    for n in 0..10 {
        tokio::time::sleep(Duration::from_secs(6)).await;
        server
            .send(tws::Message::text(format!("tick {n}")))
            .await
            .expect("send");
        let message = timeout(Duration::from_secs(1), machine.input.recv())
            .await
            .expect("in time")
            .expect("open");
        assert_eq!(message.as_text(), Some(format!("tick {n}").as_str()));
    }
    // Nothing but silence from the client so far: a ping is only due 10 s
    // after the last tick.
    let frame = timeout(Duration::from_secs(11), server.next())
        .await
        .expect("a ping within 10 s of the last tick")
        .expect("open")
        .expect("valid frame");
    assert!(frame.is_ping());
}

#[tokio::test(start_paused = true)]
async fn a_ping_command_without_answer_kills_the_connection_after_the_timeout() {
    let (_peer, mut machine, _frozen) = connected(|builder| {
        builder
            .ping_interval(Duration::from_secs(600))
            .pong_timeout(Duration::from_secs(3))
    })
    .await;
    let sent_at = Instant::now();
    machine.command.send(Command::Ping).await.expect("running");
    let lost = until_state(&mut machine, State::Disconnected).await;
    assert!(matches!(lost.error, Some(Error::PongTimeout(_))));
    assert_eq!(sent_at.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_upgrade_times_out_and_is_retried() {
    let (peer, builder) = Peer::builder();
    let mut machine = builder
        .handshake_timeout(Duration::from_secs(7))
        .backoff(Duration::from_secs(2), Duration::from_secs(2))
        .spawn()
        .expect("valid");
    let _silent = peer.offer_silent();
    until_state(&mut machine, State::Connecting).await;
    let started = Instant::now();
    let failed = until_state(&mut machine, State::Disconnected).await;
    assert!(
        matches!(failed.error, Some(Error::HandshakeTimeout(_))),
        "{failed:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(7));
    let waiting = next_status(&mut machine).await;
    assert_eq!(waiting.state, State::Waiting);
    let _server = peer.accept().await;
    until_state(&mut machine, State::Connected).await;
    assert_eq!(started.elapsed(), Duration::from_secs(9));
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_stops_reading_trips_the_write_timeout() {
    let (_peer, mut machine, _server) = connected(|builder| {
        builder
            .ping_interval(Duration::from_secs(3600))
            .write_timeout(Duration::from_secs(4))
    })
    .await;
    // 256 KiB into a 64 KiB pipe that nobody reads.
    for _ in 0..4 {
        machine
            .output
            .send(vec![0u8; 64 * 1024].into())
            .await
            .expect("running");
    }
    let started = Instant::now();
    let lost = until_state(&mut machine, State::Disconnected).await;
    assert!(
        matches!(lost.error, Some(Error::WriteTimeout(_))),
        "{lost:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(4));
    let leftovers = timeout(Duration::from_secs(3600), machine.shutdown())
        .await
        .expect("shutdown completes");
    assert_eq!(
        leftovers.unsent.len(),
        4,
        "the stuck writes are handed back"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_keeps_taking_bytes_slowly_is_never_cut() {
    // The caller's own stream (here a 64 KiB pipe) gets the plain rule: a
    // write is stuck when the stream accepted no byte for the timeout.
    const MESSAGES: usize = 40;
    let (_peer, mut machine, mut server) = connected(|builder| {
        builder
            .ping_interval(Duration::from_secs(3600))
            .write_timeout(Duration::from_secs(2))
    })
    .await;
    let started = Instant::now();
    let output = machine.output.clone();
    let writer = tokio::spawn(async move {
        for _ in 0..MESSAGES {
            output
                .send(vec![0u8; 64 * 1024].into())
                .await
                .expect("running");
        }
    });
    // The peer reads a message (a pipe's worth) every 1.9 s: the writes
    // wait most of the time, but never a whole write timeout.
    for n in 0..MESSAGES {
        let frame = timeout(Duration::from_secs(3600), server.next())
            .await
            .expect("a message within an hour of paused time")
            .expect("open")
            .expect("valid");
        assert_eq!(frame.as_payload().len(), 64 * 1024, "message {n}");
        tokio::time::sleep(Duration::from_millis(1_900)).await;
    }
    writer.await.expect("writer done");
    assert!(
        started.elapsed() >= Duration::from_secs(70),
        "the link was slow"
    );
    assert!(
        machine.status.try_recv().is_err(),
        "no status since connecting: never cut"
    );
}

#[tokio::test(start_paused = true)]
async fn a_healthy_connection_that_drops_is_replaced_at_once() {
    let (peer, mut machine, server) = connected(|builder| {
        builder
            .min_uptime(Duration::from_secs(5))
            .backoff(Duration::from_secs(1), Duration::from_secs(1))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let replacement = peer.offer();
    drop(server);
    until_state(&mut machine, State::Disconnected).await;
    let lost_at = Instant::now();
    let next = next_status(&mut machine).await;
    assert_eq!(
        next.state,
        State::Connecting,
        "no wait after a healthy connection"
    );
    let server = upgrade(replacement).await;
    until_state(&mut machine, State::Connected).await;
    assert_eq!(lost_at.elapsed(), Duration::ZERO);
    // Dropped again after 1 s: too short, so now it waits.
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(server);
    until_state(&mut machine, State::Disconnected).await;
    let waiting = next_status(&mut machine).await;
    assert_eq!(waiting.state, State::Waiting);
    assert_eq!(waiting.delay, Some(Duration::from_secs(1)));
}

/// A server that serves data and closes every 2 s (under the default
/// `min_uptime` of 5 s) is reconnected to at once every time: no wait, and
/// the attempt count stays at 1.
#[tokio::test(start_paused = true)]
async fn a_server_that_rotates_connections_serving_data_is_rejoined_at_once() {
    let (peer, builder) = Peer::builder();
    let mut machine = builder.spawn().expect("valid");
    let mut server = peer.accept().await;
    for round in 0..5u8 {
        let connected = until_state(&mut machine, State::Connected).await;
        assert_eq!(connected.attempt, 1, "round {round}");
        for tick in 0..20u8 {
            server
                .send(tws::Message::binary(vec![round, tick]))
                .await
                .expect("send");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let next = peer.offer();
        server
            .send(tws::Message::close(
                Some(tws::CloseCode::GOING_AWAY),
                "rotating",
            ))
            .await
            .expect("close");
        drop(server);
        until_state(&mut machine, State::Disconnected).await;
        let after = next_status(&mut machine).await;
        assert_eq!(
            (after.state, after.attempt),
            (State::Connecting, 1),
            "round {round}: {after}"
        );
        server = upgrade(next).await;
    }
    let mut ticks = 0;
    while machine.input.try_recv().is_ok() {
        ticks += 1;
    }
    assert_eq!(ticks, 100, "every tick of every rotation arrived");
}

/// A server that accepts, answers with one error message and closes at once
/// meets growing waits, whatever the close code.
#[tokio::test(start_paused = true)]
async fn a_server_that_answers_with_an_error_and_closes_meets_growing_waits() {
    let (peer, builder) = Peer::builder();
    let mut machine = builder
        .backoff(Duration::from_secs(1), Duration::from_secs(60))
        .spawn()
        .expect("valid");
    let mut attempts = Vec::new();
    for _ in 0..4 {
        let mut server = peer.accept().await;
        until_state(&mut machine, State::Connected).await;
        server
            .send(tws::Message::text("{\"error\":\"not allowed\"}"))
            .await
            .expect("send");
        server
            .send(tws::Message::close(
                Some(tws::CloseCode::NORMAL_CLOSURE),
                "",
            ))
            .await
            .expect("close");
        drop(server);
        let waiting = until_state(&mut machine, State::Waiting).await;
        attempts.push(waiting.attempt);
    }
    assert_eq!(attempts, [1, 2, 3, 4], "the series grows");
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_stops_reading_is_not_mistaken_for_a_dead_peer() {
    let (_peer, mut machine, mut server) = connected(|builder| {
        builder
            .ping_interval(Duration::from_secs(10))
            .pong_timeout(Duration::from_secs(5))
            .input_capacity(4)
    })
    .await;
    // More than `input` holds: the machine stops reading the socket.
    for n in 0..20u32 {
        server
            .send(tws::Message::binary(n.to_le_bytes().to_vec()))
            .await
            .expect("send");
    }
    // A long time without the caller reading: the server keeps answering
    // pings it never gets to see, but nothing is declared dead.
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = server.next().await {} });
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(machine.status.try_recv().is_err(), "no state change");
    // Everything arrives, in order, once the caller reads again.
    for n in 0..20u32 {
        let message = timeout(Duration::from_secs(1), machine.input.recv())
            .await
            .expect("in time")
            .expect("open");
        assert_eq!(message.as_ref(), n.to_le_bytes());
    }
    reader.abort();
}

/// What a connection closed on request still delivers (read during its close
/// handshake while `input` is full, up to as many as `input` holds) reaches
/// `input` in order, before what the next connection brings.
#[tokio::test(start_paused = true)]
async fn messages_held_across_a_reconnect_reach_input_in_order() {
    let (peer, mut machine, mut server) =
        connected(|builder| builder.min_uptime(Duration::ZERO).input_capacity(4)).await;
    for n in 1..=8u32 {
        server
            .send(tws::Message::binary(n.to_le_bytes().to_vec()))
            .await
            .expect("send");
    }
    // The machine reads 1 to 4 (into `input`) and 5 (held), then stops
    // reading; closing, it reads 6 to 8 (held: as many as `input` holds).
    until_input_holds(&machine.input, 4).await;
    let old = tokio::spawn(async move { while let Some(Ok(_)) = server.next().await {} });
    let mut server = reconnect_to_next(&peer, &mut machine).await;
    server
        .send(tws::Message::binary(9u32.to_le_bytes().to_vec()))
        .await
        .expect("send");
    let mut got = Vec::new();
    while got.len() < 9 {
        let message = timeout(Duration::from_secs(5), machine.input.recv())
            .await
            .expect("in time")
            .expect("open");
        got.push(u32::from_le_bytes(
            message.as_ref().try_into().expect("4 bytes"),
        ));
    }
    assert_eq!(got, (1..=9).collect::<Vec<u32>>());
    old.abort();
    let leftovers = timeout(Duration::from_secs(3600), machine.shutdown())
        .await
        .expect("shutdown completes");
    assert!(leftovers.received.is_empty());
}

/// `Duration::MAX` means "never": no keep-alive, and no overflow.
#[tokio::test(start_paused = true)]
async fn a_huge_ping_interval_turns_keep_alive_off() {
    let (_peer, mut machine, _silent) = connected(|builder| {
        builder
            .ping_interval(Duration::MAX)
            .pong_timeout(Duration::MAX)
            .write_timeout(Duration::MAX)
            .close_timeout(Duration::MAX)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(365 * 24 * 3600)).await;
    assert!(
        machine.status.try_recv().is_err(),
        "no state change in a year"
    );
    assert!(!machine.is_stopped());
}

/// A server that sends a close frame and drops TCP at once: the close code
/// is what is reported, not the failed write of the close reply.
#[tokio::test(start_paused = true)]
async fn the_close_code_survives_a_failed_close_reply() {
    let (peer, builder) = Peer::builder();
    let mut machine = builder.spawn().expect("valid");
    let mut server = peer.accept().await;
    until_state(&mut machine, State::Connected).await;
    let code = tws::CloseCode::try_from(4001).expect("valid code");
    server
        .send(tws::Message::close(Some(code), "go away"))
        .await
        .expect("send");
    drop(server);
    let status = until_state(&mut machine, State::Disconnected).await;
    match status.error {
        Some(Error::Closed { code, reason, .. }) => {
            assert_eq!((code, reason.as_str()), (4001, "go away"));
        }
        other => panic!("expected the server's close, got {other:?}"),
    }
}

/// With a close code policy, the server's 4001 ends the machine: the status
/// is final, the machine stops, and no new connection is tried.
#[tokio::test(start_paused = true)]
async fn a_final_close_code_stops_the_machine() {
    let (peer, builder) = Peer::builder();
    let mut machine = builder
        .final_close_codes(|code| code == 4001)
        .spawn()
        .expect("valid");
    let mut server = peer.accept().await;
    until_state(&mut machine, State::Connected).await;
    let code = tws::CloseCode::try_from(4001).expect("valid code");
    server
        .send(tws::Message::close(Some(code), "key revoked"))
        .await
        .expect("send");
    let status = until_state(&mut machine, State::Disconnected).await;
    assert!(status.is_final(), "{status:?}");
    assert!(matches!(
        status.error,
        Some(Error::Closed {
            code: 4001,
            retryable: false,
            ..
        })
    ));
    let end = timeout(Duration::from_secs(3600), machine.status.recv()).await;
    assert!(
        matches!(end, Ok(None)),
        "the status channel ends after the final status: {end:?}"
    );
    assert!(machine.is_stopped());
}

/// Sends numbered binary messages as fast as the connection takes them,
/// `tag` first, then the number: at most `count`, until the stream breaks.
fn flood(
    server: tws::WebSocketStream<DuplexStream>,
    tag: u8,
    count: u32,
) -> tokio::task::JoinHandle<()> {
    let (mut sink, _unread) = server.split();
    tokio::spawn(async move {
        for n in 0..count {
            let mut payload = vec![tag];
            payload.extend_from_slice(&n.to_le_bytes());
            if sink.send(tws::Message::binary(payload)).await.is_err() {
                break;
            }
        }
    })
}

/// The tag and the number of a flooded message.
fn flooded(message: &ws_machine::Message) -> (u8, u32) {
    let bytes = message.as_ref();
    let number = bytes
        .get(1..5)
        .and_then(|n| <[u8; 4]>::try_from(n).ok())
        .map_or(u32::MAX, u32::from_le_bytes);
    (bytes.first().copied().unwrap_or(u8::MAX), number)
}

/// A machine (`input_capacity(8)`) whose server floods, told to quit once
/// `input` is full.
struct QuitDuringAFlood {
    input: ws_machine::channel::Receiver<ws_machine::Message>,
    stopped: ws_machine::Stopped,
    quit_at: Instant,
    flooding: tokio::task::JoinHandle<()>,
    _peer: Peer,
}

async fn quit_during_a_flood(close: Duration) -> QuitDuringAFlood {
    let (peer, machine, server) =
        connected(|builder| builder.input_capacity(8).close_timeout(close)).await;
    let flooding = flood(server, 0, 200_000);
    until_input_holds(&machine.input, 8).await;
    let Machine {
        input,
        command,
        stopped,
        ..
    } = machine;
    command.send(Command::Quit).await.expect("running");
    QuitDuringAFlood {
        input,
        stopped,
        quit_at: Instant::now(),
        flooding,
        _peer: peer,
    }
}

/// A quit while the server floods and the caller reads nothing: stopping
/// takes the close timeout (the server never answers the close), and the
/// machine holds no more messages than `input` does (before, it read on
/// until the server's close reply and held everything). What it read is
/// all accounted for, in order.
#[tokio::test(start_paused = true)]
async fn a_quit_during_a_flood_is_bounded_in_time_and_memory() {
    let close = Duration::from_secs(1);
    let mut quit = quit_during_a_flood(close).await;
    let leftovers = timeout(Duration::from_secs(3600), &mut quit.stopped)
        .await
        .expect("the machine stops");
    assert_eq!(quit.quit_at.elapsed(), close);
    let mut read = Vec::new();
    while let Ok(message) = quit.input.try_recv() {
        read.push(flooded(&message));
    }
    assert_eq!(read.len(), 8, "input is full");
    assert_eq!(leftovers.received.len(), 8, "as many held as input holds");
    read.extend(leftovers.received.iter().map(flooded));
    let expected: Vec<(u8, u32)> = (0..16).map(|n| (0, n)).collect();
    assert_eq!(read, expected);
    quit.flooding.abort();
}

/// The same with a caller that reads slowly while the machine stops: the
/// machine reads on as room appears (so the caller gets more), still holds
/// no more than `input` does, and stops within the close timeout.
#[tokio::test(start_paused = true)]
async fn a_quit_during_a_flood_with_a_slow_reader_is_bounded_in_time_and_memory() {
    let close = Duration::from_secs(1);
    let QuitDuringAFlood {
        mut input,
        stopped,
        quit_at,
        flooding,
        _peer,
    } = quit_during_a_flood(close).await;
    // One message every 10 ms, until `input` closes.
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..10_000 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            match input.recv().await {
                Some(message) => got.push(flooded(&message)),
                None => break,
            }
        }
        got
    });
    let leftovers = timeout(Duration::from_secs(3600), stopped)
        .await
        .expect("the machine stops");
    assert_eq!(quit_at.elapsed(), close);
    assert!(
        leftovers.received.len() <= 8,
        "{}",
        leftovers.received.len()
    );
    let mut all = timeout(Duration::from_secs(3600), reader)
        .await
        .expect("the reader ends")
        .expect("no panic");
    assert!(
        all.len() > 16,
        "the machine read on as the caller made room"
    );
    all.extend(leftovers.received.iter().map(flooded));
    let expected: Vec<(u8, u32)> = (0..all.len() as u32).map(|n| (0, n)).collect();
    assert_eq!(all, expected);
    flooding.abort();
}

/// A reconnect while the server floods and the caller is behind: the
/// machine holds at most what `input` holds from the old connection, so the
/// caller reads at most two inputs' worth of stale messages before the new
/// connection's.
#[tokio::test(start_paused = true)]
async fn a_reconnect_during_a_flood_holds_no_more_than_input() {
    let (peer, mut machine, server) = connected(|builder| {
        builder
            .input_capacity(8)
            .min_uptime(Duration::ZERO)
            .close_timeout(Duration::from_secs(1))
    })
    .await;
    let old = flood(server, 0, 200_000);
    until_input_holds(&machine.input, 8).await;
    let mut server = reconnect_to_next(&peer, &mut machine).await;
    server
        .send(tws::Message::binary(vec![1, 0, 0, 0, 0]))
        .await
        .expect("send");
    let mut stale = Vec::new();
    loop {
        let message = timeout(Duration::from_secs(5), machine.input.recv())
            .await
            .expect("in time")
            .expect("open");
        match flooded(&message) {
            (0, n) => stale.push(n),
            (1, _) => break,
            other => panic!("unexpected message {other:?}"),
        }
    }
    assert!(
        (1..=16).contains(&stale.len()),
        "{} stale messages",
        stale.len()
    );
    assert_eq!(stale, (0..stale.len() as u32).collect::<Vec<u32>>());
    old.abort();
}

/// A machine (`input_capacity(1)`) with `input` full and one more message
/// held; the server never reads again, so a close is never answered.
async fn connected_with_one_held(
    close: Duration,
) -> (Peer, Machine, tws::WebSocketStream<DuplexStream>) {
    let (peer, machine, mut server) =
        connected(|builder| builder.input_capacity(1).close_timeout(close)).await;
    for n in 0..2u8 {
        server
            .send(tws::Message::binary(vec![n]))
            .await
            .expect("send");
    }
    until_input_holds(&machine.input, 1).await;
    (peer, machine, server)
}

/// Every wait of a stop shares one deadline: a peer that never answers the
/// close, received messages the caller does not read, and a reserved
/// `output` slot never used, together, still end within the close timeout
/// (each used to get a close timeout of its own).
#[tokio::test(start_paused = true)]
async fn stopping_takes_at_most_the_close_timeout_whatever_waits() {
    let close = Duration::from_secs(2);
    let (_peer, machine, server) = connected_with_one_held(close).await;
    let Machine {
        input,
        output,
        command,
        stopped,
        ..
    } = machine;
    let reserved = output.reserve().await.expect("room");
    // The server never reads again: the close is never answered.
    command.send(Command::Quit).await.expect("running");
    let quit_at = Instant::now();
    let leftovers = timeout(Duration::from_secs(3600), stopped)
        .await
        .expect("the machine stops");
    // Every wait took part of one close timeout, no more.
    assert_eq!(quit_at.elapsed(), close);
    assert_eq!(input.len(), 1);
    assert_eq!(leftovers.received.len(), 1, "the held message comes back");
    drop(reserved);
    drop(server);
}

/// A quit that arrives while a reconnect closes the old connection stops
/// the machine when that close is over, within its deadline: it does not
/// get a close timeout of its own.
#[tokio::test(start_paused = true)]
async fn a_quit_during_a_reconnect_ends_within_the_close_timeout() {
    let close = Duration::from_secs(1);
    // The close waits for its deadline.
    let (_peer, machine, server) = connected_with_one_held(close).await;
    let Machine {
        mut status,
        input,
        command,
        stopped,
        ..
    } = machine;
    command.send(Command::Reconnect).await.expect("running");
    let reconnect_at = Instant::now();
    command.send(Command::Quit).await.expect("running");
    let _leftovers = timeout(Duration::from_secs(3600), stopped)
        .await
        .expect("the machine stops");
    assert_eq!(reconnect_at.elapsed(), close);
    // No reconnect was reported: the quit came first.
    let mut states = Vec::new();
    while let Ok(s) = status.try_recv() {
        states.push(s.state);
    }
    assert_eq!(states, [State::Disconnected], "{states:?}");
    drop((input, server));
}

/// Answers an upgrade request on `server` with `status` and closes.
async fn refuse(mut server: DuplexStream, status: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.ends_with(b"\r\n\r\n") {
        let n = server.read(&mut buf).await.expect("read the request");
        assert!(n > 0, "the request ended early");
        request.extend_from_slice(&buf[..n]);
    }
    let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    server.write_all(answer.as_bytes()).await.expect("answer");
    server.shutdown().await.expect("close");
}

/// An expired token: with headers from `headers_fn`, a 401 is retried at
/// once with freshly computed headers, and the feed goes on; without a
/// wait, and without a final error.
#[tokio::test(start_paused = true)]
async fn an_expired_token_from_headers_fn_is_renewed_at_once() {
    let minted = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&minted);
    let (peer, builder) = Peer::builder();
    let mut machine = builder
        .headers_fn(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let mut headers = ws_machine::http::HeaderMap::new();
            let value = ws_machine::http::HeaderValue::from_str(&format!("Bearer token-{n}"))
                .expect("a valid value");
            headers.insert("authorization", value);
            headers
        })
        .spawn()
        .expect("valid");
    let expired = peer.offer();
    let renewed = peer.offer();
    refuse(expired, "401 Unauthorized").await;
    let (request, _server) = tws::ServerBuilder::new()
        .accept(renewed)
        .await
        .expect("upgrade");
    assert_eq!(
        request.headers().get("authorization").map(|v| v.as_bytes()),
        Some(&b"Bearer token-2"[..])
    );
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        let status = next_status(&mut machine).await;
        let connected = status.state == State::Connected;
        seen.push(status);
        if connected {
            break;
        }
    }
    let states: Vec<State> = seen.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [
            State::Connecting,
            State::Disconnected,
            State::Connecting,
            State::Connected
        ]
    );
    assert!(
        matches!(
            seen[1].error,
            Some(Error::HandshakeRejected {
                status: 401,
                retryable: true,
                ..
            })
        ),
        "{}",
        seen[1]
    );
    assert_eq!(started.elapsed(), Duration::ZERO, "no wait");
    assert_eq!(minted.load(Ordering::SeqCst), 2);
}

/// A feed that stalls while the server still answers pings is replaced
/// after the data timeout; one that keeps sending is not.
#[tokio::test(start_paused = true)]
async fn a_stalled_feed_is_replaced_after_the_data_timeout() {
    let (peer, mut machine, server) = connected(|builder| {
        builder
            .ping_interval(Duration::from_secs(1))
            .pong_timeout(Duration::from_secs(1))
            .data_timeout(Duration::from_secs(5))
    })
    .await;
    // The server reads (so it answers every ping) and sends data for 20 s,
    // one message every 2 s, then nothing.
    let (mut sink, mut stream) = server.split();
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    let connected_at = Instant::now();
    for n in 0..10u8 {
        sink.send(tws::Message::binary(vec![n]))
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let last_data_at = connected_at + Duration::from_secs(18);
    let _next = peer.offer();
    let lost = until_state(&mut machine, State::Disconnected).await;
    assert!(
        matches!(lost.error, Some(Error::DataTimeout(d)) if d == Duration::from_secs(5)),
        "{lost:?}"
    );
    assert_eq!(Instant::now() - last_data_at, Duration::from_secs(5));
    assert!(lost.error.as_ref().is_some_and(Error::is_retryable));
    let mut got = 0;
    while machine.input.try_recv().is_ok() {
        got += 1;
    }
    assert_eq!(got, 10, "every message arrived before the stall");
    reader.abort();
}

/// The heartbeat of a server that ignores control pings: `{"op":"ping"}`
/// every 5 s, whatever else flows; the server's `{"op":"pong"}` replies are
/// kept out of `input`, its data is not. The connection stays up.
#[tokio::test(start_paused = true)]
async fn the_heartbeat_goes_out_on_its_period_and_its_replies_are_kept_out() {
    let (_peer, mut machine, server) = connected(|builder| {
        builder
            .heartbeat(r#"{"op":"ping"}"#, Duration::from_secs(5))
            .heartbeat_reply(|m| m.as_text() == Some(r#"{"op":"pong"}"#))
            .ping_interval(Duration::MAX)
            .pong_timeout(Duration::from_secs(2))
    })
    .await;
    let start = Instant::now();
    let (mut sink, mut stream) = server.split();
    let mut beats = Vec::new();
    while beats.len() < 4 {
        let frame = timeout(Duration::from_secs(60), stream.next())
            .await
            .expect("a heartbeat within a minute")
            .expect("open")
            .expect("a frame");
        assert_eq!(frame.as_text(), Some(r#"{"op":"ping"}"#));
        beats.push(start.elapsed());
        sink.send(tws::Message::text(r#"{"op":"pong"}"#))
            .await
            .expect("send");
        sink.send(tws::Message::text(format!("tick {}", beats.len())))
            .await
            .expect("send");
    }
    let secs: Vec<u64> = beats.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [5, 10, 15, 20]);
    until_input_holds(&machine.input, 4).await;
    let mut delivered = Vec::new();
    while let Ok(message) = machine.input.try_recv() {
        delivered.push(message.as_text().unwrap_or_default().to_owned());
    }
    assert_eq!(delivered, ["tick 1", "tick 2", "tick 3", "tick 4"]);
    assert!(
        machine.status.try_recv().is_err(),
        "no state change while the heartbeat is answered"
    );
}

/// A server that sends data but no longer answers the heartbeat is dead:
/// only a matching reply counts, within the pong timeout.
#[tokio::test(start_paused = true)]
async fn an_unanswered_heartbeat_ends_the_connection() {
    let (_peer, mut machine, server) = connected(|builder| {
        builder
            .heartbeat("ping", Duration::from_secs(5))
            .heartbeat_reply(|m| m.as_ref() == b"pong")
            .ping_interval(Duration::MAX)
            .pong_timeout(Duration::from_secs(2))
    })
    .await;
    let start = Instant::now();
    let (mut sink, mut unread) = server.split();
    // Reads (so the heartbeat is taken) but only ever sends data.
    let _reader = tokio::spawn(async move { while unread.next().await.is_some() {} });
    let _feed = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if sink.send(tws::Message::text("price")).await.is_err() {
                break;
            }
        }
    });
    let lost = until_state(&mut machine, State::Disconnected).await;
    assert!(
        matches!(lost.error, Some(Error::HeartbeatTimeout(d)) if d == Duration::from_secs(2)),
        "{lost:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(7));
    assert!(!lost.is_final(), "retried");
}

/// Reads the next data frame the server receives, as text, within a minute
/// of paused time; `None` if none came.
async fn next_text(
    stream: &mut futures_util::stream::SplitStream<tws::WebSocketStream<DuplexStream>>,
) -> Option<String> {
    loop {
        let frame = timeout(Duration::from_secs(60), stream.next())
            .await
            .ok()??
            .ok()?;
        if let Some(text) = frame.as_text() {
            return Some(text.to_owned());
        }
    }
}

/// With a ready gate, the caller's messages (queued before the connection,
/// and sent while it waits) go out only after the server's answer to the
/// login; `Ready` follows `Connected`, and the answer reaches `input`. On
/// the next connection the gate closes again.
#[tokio::test(start_paused = true)]
async fn the_ready_gate_holds_messages_until_the_server_says_ready() {
    let (peer, builder) = Peer::builder();
    let mut machine = builder
        .on_connect("login")
        .ready_when(|m| m.as_text() == Some("welcome"))
        .spawn()
        .expect("valid");
    machine
        .output
        .send("order 1".into())
        .await
        .expect("running");
    let (mut sink, mut stream) = peer.accept().await.split();
    until_state(&mut machine, State::Connected).await;
    assert_eq!(next_text(&mut stream).await.as_deref(), Some("login"));
    machine
        .output
        .send("order 2".into())
        .await
        .expect("running");
    // Nothing else comes while the server has not answered.
    let early = timeout(Duration::from_secs(5), stream.next()).await;
    assert!(early.is_err(), "sent before ready: {early:?}");
    sink.send(tws::Message::text("welcome"))
        .await
        .expect("send");
    let ready = next_status(&mut machine).await;
    assert_eq!(ready.state, State::Ready);
    assert_eq!(ready.attempt, 1);
    assert_eq!(next_text(&mut stream).await.as_deref(), Some("order 1"));
    assert_eq!(next_text(&mut stream).await.as_deref(), Some("order 2"));
    let welcome = timeout(Duration::from_secs(60), machine.input.recv())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(welcome.as_text(), Some("welcome"));

    // A new connection: login first, orders only after the answer.
    let next = peer.offer();
    drop((sink, stream));
    until_state(&mut machine, State::Disconnected).await;
    machine
        .output
        .send("order 3".into())
        .await
        .expect("running");
    let (mut sink, mut stream) = upgrade(next).await.split();
    until_state(&mut machine, State::Connected).await;
    assert_eq!(next_text(&mut stream).await.as_deref(), Some("login"));
    let early = timeout(Duration::from_secs(5), stream.next()).await;
    assert!(early.is_err(), "sent before ready: {early:?}");
    sink.send(tws::Message::text("welcome"))
        .await
        .expect("send");
    until_state(&mut machine, State::Ready).await;
    assert_eq!(next_text(&mut stream).await.as_deref(), Some("order 3"));
}

/// A server that never says ready: after the ready timeout the connection
/// is replaced, as a failed attempt (a wait follows), and the message
/// waiting is still owed.
#[tokio::test(start_paused = true)]
async fn a_connection_never_ready_is_replaced_after_the_ready_timeout() {
    let (peer, builder) = Peer::builder();
    let mut machine = builder
        .on_connect("login")
        .ready_when(|m| m.as_text() == Some("welcome"))
        .ready_timeout(Duration::from_secs(3))
        .spawn()
        .expect("valid");
    machine.output.send("order".into()).await.expect("running");
    let _silent = peer.accept().await;
    until_state(&mut machine, State::Connected).await;
    let connected_at = Instant::now();
    let lost = until_state(&mut machine, State::Disconnected).await;
    assert!(
        matches!(lost.error, Some(Error::ReadyTimeout(d)) if d == Duration::from_secs(3)),
        "{lost:?}"
    );
    assert_eq!(connected_at.elapsed(), Duration::from_secs(3));
    assert_eq!(next_status(&mut machine).await.state, State::Waiting);
    let leftovers = machine.shutdown().await;
    let owed: Vec<_> = leftovers
        .unsent
        .iter()
        .filter_map(|m| m.as_text())
        .collect();
    assert_eq!(owed, ["order"]);
}

/// `send_rate(4, 1 s)`: at most four in any second, the first four at
/// once; the login sent first is counted too, so it takes the room of one
/// order.
#[tokio::test(start_paused = true)]
async fn the_send_rate_paces_the_callers_messages() {
    let (peer, builder) = Peer::builder();
    let mut machine = builder
        .on_connect("login")
        .send_rate(4, Duration::from_secs(1))
        .spawn()
        .expect("valid");
    for n in 0..6 {
        machine
            .output
            .send(format!("order {n}").into())
            .await
            .expect("running");
    }
    let (_sink, mut stream) = peer.accept().await.split();
    until_state(&mut machine, State::Connected).await;
    let start = Instant::now();
    let mut arrivals = Vec::new();
    for _ in 0..7 {
        let text = next_text(&mut stream).await.expect("a message");
        arrivals.push((text, start.elapsed().as_millis()));
    }
    let expected: Vec<(String, u128)> = [
        ("login", 0),
        ("order 0", 0),
        ("order 1", 0),
        ("order 2", 0),
        ("order 3", 1000),
        ("order 4", 1000),
        ("order 5", 1000),
    ]
    .into_iter()
    .map(|(t, ms)| (t.to_owned(), ms))
    .collect();
    assert_eq!(arrivals, expected);
}

/// A message with a deadline that waited out an outage is handed back
/// (`Expired`), not written late; one without a deadline goes out.
#[tokio::test(start_paused = true)]
async fn a_message_past_its_deadline_is_handed_back_not_written() {
    let (peer, builder) = Peer::builder();
    let mut machine = builder
        .backoff(Duration::from_secs(1), Duration::from_secs(1))
        .spawn()
        .expect("valid");
    let order = Message::text("buy").expires_in(Duration::from_secs(2));
    machine.output.send(order).await.expect("running");
    machine
        .output
        .send(Message::text("hello"))
        .await
        .expect("running");
    // Nobody answers for 10 s.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (_sink, mut stream) = peer.accept().await.split();
    let expired = loop {
        let status = next_status(&mut machine).await;
        if let Some(error @ Error::Expired { .. }) = status.error {
            break error;
        }
    };
    let Error::Expired { late, message } = &expired else {
        unreachable!("matched above");
    };
    assert_eq!(message.as_text(), Some("buy"));
    assert!(*late >= Duration::from_secs(8), "{late:?}");
    assert!(!expired.is_retryable());
    assert_eq!(next_text(&mut stream).await.as_deref(), Some("hello"));
}

/// With acknowledgements, an unacknowledged message is written again after
/// a reconnect, but one sent with `no_replay` is handed back
/// (`NotReplayed`) and never reaches the next connection.
#[tokio::test(start_paused = true)]
async fn a_no_replay_message_is_handed_back_when_its_connection_ends() {
    let (peer, builder) = Peer::builder();
    let mut machine = builder
        .ack_key(|m| m.as_text()?.strip_prefix("ack ")?.parse().ok())
        .spawn()
        .expect("valid");
    let (sink, mut stream) = peer.accept().await.split();
    until_state(&mut machine, State::Connected).await;
    machine
        .output
        .send(Message::text("ack 1"))
        .await
        .expect("running");
    machine
        .output
        .send(Message::text("ack 2").no_replay())
        .await
        .expect("running");
    assert_eq!(next_text(&mut stream).await.as_deref(), Some("ack 1"));
    assert_eq!(next_text(&mut stream).await.as_deref(), Some("ack 2"));
    // The server acknowledges neither and goes away.
    let next = peer.offer();
    drop((sink, stream));
    let handed_back = loop {
        let status = next_status(&mut machine).await;
        if let Some(Error::NotReplayed { message }) = status.error {
            break message;
        }
    };
    assert_eq!(handed_back.as_text(), Some("ack 2"));
    let (_sink, mut stream) = upgrade(next).await.split();
    assert_eq!(next_text(&mut stream).await.as_deref(), Some("ack 1"));
    let more = timeout(Duration::from_secs(5), stream.next()).await;
    assert!(more.is_err(), "only the replayable one again: {more:?}");
}

/// `Command::Close`: the server gets the close frame with the caller's code
/// and reason, and the machine stops as for a quit.
#[tokio::test(start_paused = true)]
async fn a_close_command_sends_its_code_and_reason() {
    let (_peer, mut machine, mut server) = connected(|builder| builder).await;
    let leaving = ws_machine::CloseFrame::new(4001, "session over").expect("a valid frame");
    machine
        .command
        .send(Command::Close(leaving))
        .await
        .expect("running");
    let frame = timeout(Duration::from_secs(60), server.next())
        .await
        .expect("a frame in time")
        .expect("open")
        .expect("a frame");
    let (code, reason) = frame.as_close().expect("a close frame");
    assert_eq!((u16::from(code), reason), (4001, "session over"));
    let last = until_state(&mut machine, State::Disconnected).await;
    assert!(last.is_final() && last.error.is_none(), "{last:?}");
}

/// Messages that trickle in are counted once each: with two a second, the
/// second goes at once, the third when the first leaves the window.
#[tokio::test(start_paused = true)]
async fn a_trickle_is_paced_by_what_was_sent_only() {
    let (_peer, machine, server) =
        connected(|builder| builder.send_rate(2, Duration::from_secs(1))).await;
    let (_sink, mut stream) = server.split();
    let start = Instant::now();
    let mut arrivals = Vec::new();
    for text in ["a", "b", "c"] {
        machine.output.send(text.into()).await.expect("running");
        assert_eq!(next_text(&mut stream).await.as_deref(), Some(text));
        arrivals.push(start.elapsed().as_millis());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(arrivals, [0, 1, 1000]);
}

/// A `no_replay` message is handed back before the loss is reported, so
/// also when that loss is the machine's final status (a final close code).
#[tokio::test(start_paused = true)]
async fn not_replayed_comes_before_a_final_status() {
    let (_peer, mut machine, server) = connected(|builder| {
        builder
            .ack_key(|m| m.as_text()?.strip_prefix("ack ")?.parse().ok())
            .final_close_codes(|code| code == 4001)
    })
    .await;
    let (mut sink, mut stream) = server.split();
    machine
        .output
        .send(Message::text("ack 1").no_replay())
        .await
        .expect("running");
    assert_eq!(next_text(&mut stream).await.as_deref(), Some("ack 1"));
    let code = tws::CloseCode::try_from(4001).expect("valid code");
    sink.send(tws::Message::close(Some(code), "revoked"))
        .await
        .expect("send");
    let mut statuses = Vec::new();
    while let Ok(Some(status)) = timeout(Duration::from_secs(60), machine.status.recv()).await {
        statuses.push(status);
    }
    let handed_back = statuses
        .iter()
        .position(|s| matches!(s.error, Some(Error::NotReplayed { .. })))
        .expect("the message handed back");
    let last = statuses.len() - 1;
    assert!(statuses[last].is_final());
    assert!(handed_back < last, "{statuses:?}");
}

/// While the caller is behind on `input`, the server's "ready" may be
/// among what it has not read: the ready timeout waits for reading.
#[tokio::test(start_paused = true)]
async fn the_ready_timeout_waits_while_the_caller_is_behind() {
    let (peer, builder) = Peer::builder();
    let mut machine = builder
        .input_capacity(1)
        .ready_when(|m| m.as_text() == Some("welcome"))
        .ready_timeout(Duration::from_secs(3))
        .spawn()
        .expect("valid");
    let mut server = peer.accept().await;
    until_state(&mut machine, State::Connected).await;
    for text in ["news 1", "news 2", "welcome"] {
        server.send(tws::Message::text(text)).await.expect("send");
    }
    // The caller reads nothing for 10 s.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut read = Vec::new();
    for _ in 0..3 {
        let message = timeout(Duration::from_secs(60), machine.input.recv())
            .await
            .expect("in time")
            .expect("open");
        read.push(message.as_text().unwrap_or_default().to_owned());
    }
    assert_eq!(read, ["news 1", "news 2", "welcome"]);
    let next = next_status(&mut machine).await;
    assert_eq!(next.state, State::Ready, "{next:?}");
}
