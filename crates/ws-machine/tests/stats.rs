//! What a machine reports about itself, against real servers on 127.0.0.1:
//! the stats (counters, queue, unconfirmed messages, errors, time
//! connected), connection numbers on statuses and on received messages, and
//! round trips measured from pings and heartbeat replies (through a proxy
//! that adds latency, and against Python's `websockets`, an independent
//! implementation that must echo the ping's payload).

mod common;

use std::time::Duration;

use common::peers::PeerProcess;
use common::{
    WAIT, accept_peer, closed_port_url, command, connect, fast, ms, peer_next, recv, send,
    wait_for_state, wait_for_state_where,
};
use tokio::{net::TcpListener, time::timeout};
use ws_machine::{Command, Error, Machine, Message, State, Status};
use wsm_server::{
    Config, Server,
    proxy::{Direction, Faults, Proxy},
};

fn server() -> Server {
    Server::start(Config::default()).expect("server starts")
}

/// Reads statuses until one reports a round trip; returns it.
async fn next_round_trip(machine: &mut Machine) -> Status {
    let seen = wait_for_state_where(machine, |s| s.round_trip.is_some()).await;
    seen.last().cloned().expect("a status")
}

/// Waits (bounded) until `check` holds for the machine's stats; fails with
/// the last stats seen otherwise.
async fn stats_until(machine: &Machine, check: impl Fn(&ws_machine::Stats) -> bool) {
    let handle = machine.stats_handle();
    let waited = timeout(WAIT, async {
        let mut tick = tokio::time::interval(ms(5));
        loop {
            tick.tick().await;
            if check(&handle.get()) {
                return;
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "stats never got there: {:?}", handle.get());
}

#[tokio::test]
async fn stats_count_what_flows_and_every_connection_has_a_number() {
    let server = server();
    let mut machine = fast(server.url()).spawn().expect("valid options");
    let seen = wait_for_state(&mut machine, State::Connected).await;
    assert_eq!(seen[0].connection, 0, "no connection yet: {}", seen[0]);
    assert_eq!(seen.last().map(|s| s.connection), Some(1));

    let texts = ["one", "two", "three"];
    for text in texts {
        send(&machine, text).await;
    }
    for text in texts {
        let back = recv(&mut machine).await;
        assert_eq!((back.as_text(), back.connection()), (Some(text), 1));
    }
    let bytes: u64 = texts.iter().map(|t| t.len() as u64).sum();
    stats_until(&machine, |s| s.messages_in == 3 && s.unacknowledged == 0).await;
    let stats = machine.stats();
    assert_eq!(stats.state, State::Connected);
    assert_eq!(
        (stats.connections, stats.reconnects, stats.failed_attempts),
        (1, 0, 0)
    );
    assert_eq!((stats.messages_out, stats.bytes_out), (3, bytes));
    assert_eq!((stats.messages_in, stats.bytes_in), (3, bytes));
    assert_eq!(stats.queued, 0);
    assert!(stats.last_error.is_none(), "{:?}", stats.last_error);

    // The server closes: the machine comes back on connection 2, and a
    // reader of `input` alone sees the number change.
    assert_eq!(server.close_all(), 1);
    let seen = wait_for_state(&mut machine, State::Connected).await;
    let lost = seen
        .iter()
        .find(|s| s.state == State::Disconnected)
        .expect("a Disconnected");
    assert_eq!(lost.connection, 1, "the ended connection: {lost}");
    assert_eq!(seen.last().map(|s| s.connection), Some(2));
    send(&machine, "four").await;
    let back = recv(&mut machine).await;
    assert_eq!((back.as_text(), back.connection()), (Some("four"), 2));

    let stats = machine.stats();
    assert_eq!((stats.connections, stats.reconnects), (2, 1));
    assert_eq!(stats.messages_out, 4);
    assert!(
        matches!(stats.last_error, Some(Error::Closed { code: 1000, .. })),
        "{:?}",
        stats.last_error
    );
    assert!(stats.connected_for > Duration::ZERO);
    assert!(stats.since <= tokio::time::Instant::now());
}

#[tokio::test]
async fn failed_attempts_and_the_queue_while_disconnected() {
    // A long backoff keeps the machine in Waiting while the stats are read.
    let mut machine = fast(closed_port_url().await)
        .backoff(Duration::from_secs(30), Duration::from_secs(60))
        .spawn()
        .expect("valid options");
    for n in 0..3 {
        send(&machine, format!("queued {n}")).await;
    }
    wait_for_state(&mut machine, State::Waiting).await;
    let stats = machine.stats();
    assert_eq!(stats.state, State::Waiting);
    assert_eq!((stats.connections, stats.failed_attempts), (0, 1));
    assert_eq!(stats.queued, 3);
    assert_eq!((stats.messages_out, stats.unacknowledged), (0, 0));
    assert!(
        matches!(stats.last_error, Some(Error::Connect { .. })),
        "{:?}",
        stats.last_error
    );
    assert_eq!(stats.connected_for, Duration::ZERO);
    assert_eq!(stats.rtt, None);
}

#[tokio::test]
async fn unacknowledged_messages_are_counted_until_acknowledged() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("address"));
    let mut machine = fast(url)
        .ack_key(|m: &Message| m.as_text()?.strip_prefix("ack ")?.parse().ok())
        .spawn()
        .expect("valid options");
    let mut peer = accept_peer(&listener).await;
    wait_for_state(&mut machine, State::Connected).await;
    for n in 1..=3 {
        send(&machine, format!("ack {n}")).await;
    }
    for _ in 0..3 {
        assert!(matches!(peer_next(&mut peer).await, Some(Ok(_))));
    }
    // Written and flushed, never acknowledged.
    stats_until(&machine, |s| s.messages_out == 3 && s.unacknowledged == 3).await;
    // The peer acknowledges one.
    common::peer_send(&mut peer, tokio_websockets::Message::text("ack 2")).await;
    assert_eq!(recv(&mut machine).await.as_text(), Some("ack 2"));
    stats_until(&machine, |s| s.unacknowledged == 2).await;
}

#[tokio::test]
async fn round_trips_are_measured_from_pings_through_a_slow_link() {
    let server = server();
    let proxy = Proxy::start(server.addr()).expect("proxy starts");
    let delay = ms(40);
    for direction in Direction::BOTH {
        proxy.set_faults(direction, Faults::default().latency(delay, Duration::ZERO));
    }
    let mut machine = connect(fast(proxy.url()).report_round_trips(true)).await;
    assert_eq!(machine.stats().rtt, None, "nothing measured yet");

    command(&machine, Command::Ping).await;
    let report = next_round_trip(&mut machine).await;
    let rtt = report.round_trip.expect("a round trip");
    assert!(
        rtt >= 2 * delay,
        "{rtt:?} is less than the latency both ways"
    );
    assert!(!report.is_change(), "a report, not a transition: {report}");
    assert_eq!(report.state, State::Connected);
    assert!(report.to_string().contains("round trip"), "{report}");
    let stats = machine.stats();
    assert_eq!((stats.rtt, stats.smoothed_rtt), (Some(rtt), Some(rtt)));

    // Keep-alive pings measure too, and the smoothed value follows.
    let mut machine = connect(
        fast(proxy.url())
            .report_round_trips(true)
            .ping_interval(ms(50)),
    )
    .await;
    for _ in 0..3 {
        let rtt = next_round_trip(&mut machine).await.round_trip;
        assert!(rtt.is_some_and(|rtt| rtt >= 2 * delay), "{rtt:?}");
    }
    let stats = machine.stats();
    assert!(
        stats.smoothed_rtt.is_some_and(|s| s >= 2 * delay),
        "{stats:?}"
    );
}

#[tokio::test]
async fn without_asking_no_round_trip_is_reported_but_it_is_measured() {
    let server = server();
    let mut machine = connect(fast(server.url())).await;
    command(&machine, Command::Ping).await;
    stats_until(&machine, |s| s.rtt.is_some()).await;
    // A message sent after the ping comes back after its pong: no status
    // came in between.
    common::echo(&mut machine, "after").await;
    assert!(
        machine.status.try_recv().is_err(),
        "no status without report_round_trips"
    );
}

#[tokio::test]
async fn heartbeat_replies_measure_round_trips() {
    let server = server();
    let mut machine = connect(
        fast(server.url())
            .ping_interval(Duration::MAX)
            .heartbeat("hb", ms(30))
            .heartbeat_reply(|m| m.as_text() == Some("hb"))
            .report_round_trips(true),
    )
    .await;
    let report = next_round_trip(&mut machine).await;
    assert!(report.round_trip.is_some_and(|rtt| rtt < WAIT), "{report}");
    let stats = machine.stats();
    assert!(stats.rtt.is_some() && stats.smoothed_rtt.is_some());
    // The heartbeats went out and count as sent; their echoes are kept out
    // of `input` and are not counted as received.
    assert!(stats.messages_out >= 1, "{stats:?}");
    assert_eq!(stats.messages_in, 0, "{stats:?}");
}

#[tokio::test]
async fn python_websockets_echoes_the_pings_payload() {
    const ECHO: &str = r#"
import asyncio
from websockets.asyncio.server import serve

async def handler(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with serve(handler, "127.0.0.1", 0) as server:
        print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Future()

asyncio.run(main())
"#;
    let peer = PeerProcess::python("echo (Python)", ECHO, &[]).await;
    let mut machine = connect(fast(&peer.url).report_round_trips(true)).await;
    command(&machine, Command::Ping).await;
    let report = next_round_trip(&mut machine).await;
    assert!(report.round_trip.is_some_and(|rtt| rtt < WAIT), "{report}");
    common::echo(&mut machine, "still talking").await;
    assert_eq!(machine.stats().messages_in, 1);
}

#[test]
fn a_stats_handle_is_read_from_a_plain_thread() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let server = runtime.block_on(async { server() });
    let (handle, mut machine) = runtime.block_on(async {
        let mut machine = connect(fast(server.url())).await;
        common::echo(&mut machine, "hello").await;
        (machine.stats_handle(), machine)
    });
    let seen = std::thread::spawn(move || handle.get())
        .join()
        .expect("the reader thread ends");
    assert_eq!(seen.state, State::Connected);
    assert_eq!((seen.connections, seen.messages_in), (1, 1));
    runtime.block_on(async {
        command(&machine, Command::Quit).await;
        common::wait_for_final(&mut machine).await;
    });
}

#[tokio::test]
async fn a_refused_message_is_a_report_not_a_change() {
    let server = server();
    let mut machine = connect(fast(server.url()).max_message_size(8)).await;
    send(&machine, "longer than eight bytes").await;
    let seen = wait_for_state_where(&mut machine, |s| s.error.is_some()).await;
    let refused = seen.last().expect("a status");
    assert!(!refused.is_change(), "{refused}");
    assert_eq!(refused.state, State::Connected);
    assert_eq!(machine.stats().messages_out, 0);
}
