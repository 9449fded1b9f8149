//! Delivery promises against the echo server on 127.0.0.1: queued messages
//! survive a server restart in order, `on_connect` goes first on every
//! connection, acknowledgements give at-least-once delivery through constant
//! reconnects, losses without acknowledgements happen only where documented,
//! and nothing received or unsent vanishes when the machine stops.

mod common;

use std::{
    collections::{BTreeMap, HashSet},
    time::Duration,
};

use common::{
    WAIT, command, connect, fast, ms, number, numbered, recv, send, show, shutdown, wait_for_final,
    wait_for_state, wait_for_state_where,
};
use tokio::time::timeout;
use ws_machine::{Command, Error, Machine, Message, State};
use wsm_server::{Config, Data, Received, Server};

fn server() -> Server {
    Server::start(Config::default()).expect("server starts")
}

fn texts(received: &[Received], connection: u64) -> Vec<&str> {
    received
        .iter()
        .filter(|r| r.connection == connection)
        .filter_map(|r| r.data.as_text())
        .collect()
}

fn numbers(messages: &[Message]) -> Vec<u64> {
    messages.iter().filter_map(number).collect()
}

#[tokio::test]
async fn messages_sent_while_the_server_is_down_arrive_in_order_after_it_restarts() {
    let server = server();
    let addr = server.addr();
    let mut machine = connect(fast(server.url())).await;

    server.stop().await;
    wait_for_state(&mut machine, State::Disconnected).await;
    let queued: Vec<String> = (0..10).map(|n| format!("m{n}")).collect();
    for text in &queued {
        send(&machine, text.as_str()).await;
    }

    let server = Server::bind(addr, Config::default()).expect("the same port again");
    wait_for_state(&mut machine, State::Connected).await;
    for text in &queued {
        assert_eq!(recv(&mut machine).await.as_text(), Some(text.as_str()));
    }
    assert_eq!(texts(&server.received(), 1), queued);
}

#[tokio::test]
async fn on_connect_messages_go_first_on_every_connection() {
    let server = server();
    let mut machine = connect(fast(server.url()).on_connect(["hello", "subscribe"])).await;
    send(&machine, "q1").await;
    assert!(server.wait_for_messages(3, WAIT).await);

    // The next attempt hangs in the backlog while q2 and q3 queue up.
    server.pause_accepting(true);
    server.drop_all();
    wait_for_state(&mut machine, State::Connecting).await;
    send(&machine, "q2").await;
    send(&machine, "q3").await;
    server.pause_accepting(false);
    wait_for_state(&mut machine, State::Connected).await;
    assert!(server.wait_for_messages(7, WAIT).await);

    let received = server.received();
    assert_eq!(texts(&received, 1), ["hello", "subscribe", "q1"]);
    assert_eq!(texts(&received, 2), ["hello", "subscribe", "q2", "q3"]);
    let mut echoes = Vec::new();
    for _ in 0..7 {
        echoes.push(recv(&mut machine).await.as_text().map(str::to_owned));
    }
    let echoes: Vec<&str> = echoes.iter().flatten().map(String::as_str).collect();
    assert_eq!(
        echoes,
        ["hello", "subscribe", "q1", "hello", "subscribe", "q2", "q3"]
    );
}

#[tokio::test]
async fn on_connect_fn_sends_the_current_subscriptions_on_each_connection() {
    let server = server();
    let (topics, current) = tokio::sync::watch::channel(vec!["a".to_owned()]);
    let mut machine = connect(fast(server.url()).min_uptime(Duration::ZERO).on_connect_fn(
        move || {
            current
                .borrow()
                .iter()
                .map(|topic| Message::text(format!("subscribe {topic}")))
                .collect()
        },
    ))
    .await;
    assert!(server.wait_for_messages(1, WAIT).await);
    topics.send_modify(|t| t.push("b".to_owned()));
    server.drop_all();
    wait_for_state(&mut machine, State::Disconnected).await;
    wait_for_state(&mut machine, State::Connected).await;
    assert!(server.wait_for_messages(3, WAIT).await);
    let received = server.received();
    assert_eq!(texts(&received, 1), ["subscribe a"]);
    assert_eq!(texts(&received, 2), ["subscribe a", "subscribe b"]);
}

/// A server that closes every connection after echoing 1000 messages and
/// records everything it receives.
fn churn_server() -> Server {
    Server::start(
        Config::default()
            .close_after(Some(1000))
            .record_limit(usize::MAX),
    )
    .expect("server starts")
}

/// How fast the churn writer goes.
#[derive(Clone, Copy)]
enum Pace {
    /// As fast as `output` takes them.
    Flat,
    /// At most 100 per millisecond. Without acknowledgements nothing bounds
    /// the messages in flight but the socket buffers, which can take the
    /// whole run before the server closes the first connection; at this
    /// rate the server closes a connection every 10 ms or so, so the run
    /// spans many.
    Bounded,
}

/// Sends `total` numbered messages to a server that closes every connection
/// after echoing 1000, at `pace`, and returns the machine and the sender
/// task.
fn churn(
    server: &Server,
    acks: bool,
    total: u64,
    pace: Pace,
) -> (Machine, tokio::task::JoinHandle<()>) {
    let mut builder = fast(server.url()).min_uptime(Duration::ZERO);
    if acks {
        builder = builder.ack_key(number);
    }
    let machine = builder.spawn().expect("valid options");
    let output = machine.output.clone();
    let writer = tokio::spawn(async move {
        for n in 0..total {
            output.send(numbered(n)).await.expect("machine runs");
            if matches!(pace, Pace::Bounded) && n % 100 == 99 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    (machine, writer)
}

/// The sequence numbers the server received, per connection, in order.
fn per_connection(received: &[Received]) -> BTreeMap<u64, Vec<u64>> {
    let mut runs: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for r in received {
        let Data::Binary(bytes) = &r.data else {
            panic!("unexpected {r:?}");
        };
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        runs.entry(r.connection).or_default().push(n);
    }
    runs
}

/// On one connection the machine writes a contiguous run of messages in
/// order (replayed ones first, then newer ones), and TCP keeps the order:
/// the server's record of each connection is consecutive numbers, and no
/// connection starts before the one before it.
fn assert_in_order_per_connection(runs: &BTreeMap<u64, Vec<u64>>) {
    let mut previous_start = 0;
    for (connection, run) in runs {
        for pair in run.windows(2) {
            assert_eq!(
                pair[1],
                pair[0] + 1,
                "connection {connection}: {} then {}",
                pair[0],
                pair[1]
            );
        }
        assert!(
            run[0] >= previous_start,
            "connection {connection} starts at {} after one starting at {previous_start}",
            run[0]
        );
        previous_start = run[0];
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_acks_every_message_survives_a_server_that_keeps_closing() {
    const TOTAL: u64 = 20_000;
    let server = churn_server();
    let (mut machine, writer) = churn(&server, true, TOTAL, Pace::Flat);

    let mut echoed = HashSet::new();
    let all_back = timeout(Duration::from_secs(30), async {
        while echoed.len() < TOTAL as usize {
            let message = machine.input.recv().await.expect("machine runs");
            echoed.insert(number(&message).expect("a numbered echo"));
        }
    })
    .await;
    let missing = (0..TOTAL).filter(|n| !echoed.contains(n)).count();
    assert!(all_back.is_ok(), "{missing} of {TOTAL} never came back");
    timeout(WAIT, writer)
        .await
        .expect("writer done")
        .expect("writer ok");

    let runs = per_connection(&server.received());
    assert!(runs.len() >= 20, "only {} connections", runs.len());
    assert_in_order_per_connection(&runs);
    let sent: usize = runs.values().map(Vec::len).sum();
    eprintln!("{} connections, {sent} messages written", runs.len());
    let leftovers = shutdown(machine).await;
    assert!(leftovers.unsent.is_empty(), "{}", leftovers.unsent.len());
    assert!(
        leftovers.unacknowledged.is_empty(),
        "{}",
        leftovers.unacknowledged.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_acks_messages_are_lost_only_at_connection_ends() {
    const TOTAL: u64 = 10_000;
    let server = churn_server();
    let (mut machine, writer) = churn(&server, false, TOTAL, Pace::Bounded);
    // Read echoes meanwhile, so that `input` never holds the machine back.
    // `shutdown` needs the whole handle, so the reader gets the real `input`
    // and the handle an empty stand-in.
    let (_, stand_in) = ws_machine::channel::channel(1);
    let mut input = std::mem::replace(&mut machine.input, stand_in);
    let reader = tokio::spawn(async move {
        let mut echoed = HashSet::new();
        while let Some(message) = input.recv().await {
            echoed.insert(number(&message).expect("a numbered echo"));
        }
        echoed
    });
    timeout(Duration::from_secs(20), writer)
        .await
        .expect("every message taken within 20 s")
        .expect("writer ok");

    // Stop in the middle of the churn; then let the server finish.
    let leftovers = timeout(WAIT, machine.shutdown())
        .await
        .expect("prompt shutdown");
    let echoed = timeout(WAIT, reader)
        .await
        .expect("input closes")
        .expect("reader ok");
    assert!(server.wait_for_open_connections(0, WAIT).await);

    let runs = per_connection(&server.received());
    assert!(runs.len() >= 2, "no churn: {} connection", runs.len());
    assert_in_order_per_connection(&runs);
    let received: HashSet<u64> = runs.values().flatten().copied().collect();
    assert!(
        echoed.is_subset(&received),
        "an echo of something never sent"
    );

    // What was never written comes back, in order, and is the newest part.
    let unsent = numbers(&leftovers.unsent);
    assert_eq!(unsent.len(), leftovers.unsent.len(), "foreign leftovers");
    for pair in unsent.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "unsent out of order: {unsent:?}");
    }
    if let Some(&last) = unsent.last() {
        assert_eq!(last, TOTAL - 1, "unsent does not end with the newest");
    }
    assert!(leftovers.unacknowledged.is_empty());

    // Everything else reached the server, except messages written to a
    // connection that then died (documented). Those sit between the end of
    // one connection's run and the start of the next, never inside a run:
    // that is what the per-connection check above guarantees.
    let unsent: HashSet<u64> = unsent.into_iter().collect();
    let lost: Vec<u64> = (0..TOTAL)
        .filter(|n| !received.contains(n) && !unsent.contains(n))
        .collect();
    let ends: Vec<(u64, u64)> = runs
        .values()
        .map(|run| (run[0], run[run.len() - 1]))
        .collect();
    for n in &lost {
        assert!(
            ends.iter().all(|(first, last)| n < first || n > last),
            "{n} lost in the middle of a connection"
        );
    }
    eprintln!(
        "{} connections, {} lost at connection ends, {} unsent",
        runs.len(),
        lost.len(),
        unsent.len()
    );
}

#[tokio::test]
async fn shutdown_while_disconnected_hands_back_queued_messages_in_order() {
    let url = common::closed_port_url().await;
    let mut machine = fast(url)
        .backoff(Duration::from_secs(10), Duration::from_secs(10))
        .spawn()
        .expect("valid options");
    wait_for_state(&mut machine, State::Waiting).await;
    for n in 0..5 {
        send(&machine, numbered(n)).await;
    }
    let leftovers = timeout(WAIT, machine.shutdown())
        .await
        .expect("prompt shutdown");
    assert_eq!(numbers(&leftovers.unsent), [0, 1, 2, 3, 4]);
    assert!(leftovers.unacknowledged.is_empty());
    assert!(leftovers.received.is_empty());
}

#[tokio::test]
async fn shutdown_hands_back_messages_a_frozen_server_never_acknowledged() {
    let server = server();
    let machine = connect(fast(server.url()).ack_key(number).close_timeout(ms(100))).await;
    // Frozen before anything is sent: nothing is echoed, so nothing is
    // acknowledged.
    server.freeze_all();
    for n in 0..5 {
        send(&machine, numbered(n)).await;
    }
    let leftovers = timeout(WAIT, machine.shutdown())
        .await
        .expect("prompt shutdown");
    // Written ones are unacknowledged, the rest unsent; together, in order.
    let mut all = numbers(&leftovers.unacknowledged);
    all.extend(numbers(&leftovers.unsent));
    assert_eq!(all, [0, 1, 2, 3, 4]);
    assert!(leftovers.received.is_empty());
}

#[tokio::test]
async fn shutdown_hands_back_received_messages_not_yet_read_in_order() {
    let server = server();
    let machine = connect(fast(server.url()).input_capacity(2)).await;
    // More than `input` holds: two wait in the channel, the rest in the
    // machine or the socket. The close handshake of the shutdown reads them
    // all, since the server sent them before it saw the close frame.
    for n in 0..6 {
        assert_eq!(server.send_all(format!("pushed {n}")), 1);
    }
    let leftovers = timeout(WAIT, machine.shutdown())
        .await
        .expect("prompt shutdown");
    let texts: Vec<&str> = leftovers
        .received
        .iter()
        .filter_map(Message::as_text)
        .collect();
    assert_eq!(
        texts,
        [
            "pushed 0", "pushed 1", "pushed 2", "pushed 3", "pushed 4", "pushed 5"
        ]
    );
    assert!(leftovers.unsent.is_empty());
}

#[tokio::test]
async fn input_is_delivered_in_full_before_the_disconnect_is_reported() {
    const PUSHED: usize = 100;
    let server = server();
    let mut machine = connect(fast(server.url())).await;
    for n in 0..PUSHED {
        server.send_all(format!("pushed {n}"));
    }
    server.close_all();

    // Nothing read from `input` yet.
    let seen = wait_for_state(&mut machine, State::Disconnected).await;
    assert!(
        matches!(
            seen.last().and_then(|s| s.error.as_ref()),
            Some(Error::Closed { code: 1000, .. })
        ),
        "{}",
        show(&seen)
    );
    command(&machine, Command::Quit).await;
    let mut got = Vec::new();
    let drained = timeout(WAIT, async {
        while let Some(message) = machine.input.recv().await {
            got.push(message.as_text().map(str::to_owned).expect("text"));
        }
    })
    .await;
    assert!(drained.is_ok(), "input did not close");
    let expected: Vec<String> = (0..PUSHED).map(|n| format!("pushed {n}")).collect();
    assert_eq!(got, expected);
    wait_for_state_where(&mut machine, |s| s.is_final()).await;
}

#[tokio::test]
async fn a_slow_reader_gets_every_message_in_order_through_backpressure() {
    const PUSHED: usize = 500;
    let server = server();
    let mut machine = connect(fast(server.url()).input_capacity(4)).await;
    for n in 0..PUSHED {
        server.send_all(format!("pushed {n}"));
    }
    server.close_all();

    // The machine cannot read the close frame before the reader catches up.
    for n in 0..PUSHED {
        let message = recv(&mut machine).await;
        assert_eq!(message.as_text(), Some(format!("pushed {n}").as_str()));
    }
    let seen = wait_for_state(&mut machine, State::Disconnected).await;
    assert!(
        matches!(
            seen.last().and_then(|s| s.error.as_ref()),
            Some(Error::Closed { code: 1000, .. })
        ),
        "{}",
        show(&seen)
    );
    command(&machine, Command::Quit).await;
    wait_for_final(&mut machine).await;
}

#[tokio::test]
async fn with_acks_messages_swallowed_by_a_frozen_server_are_written_again() {
    let server = server();
    let mut machine = connect(
        fast(server.url())
            .ack_key(number)
            .ping_interval(ms(100))
            .pong_timeout(ms(200))
            .min_uptime(Duration::ZERO),
    )
    .await;
    server.freeze_all();
    // Written and flushed long before the dead peer is noticed: without
    // acknowledgements these would be lost with the connection.
    for n in 0..5 {
        send(&machine, numbered(n)).await;
    }
    let seen = wait_for_state(&mut machine, State::Disconnected).await;
    assert!(
        matches!(
            seen.last().and_then(|s| s.error.as_ref()),
            Some(Error::PongTimeout(_))
        ),
        "{}",
        show(&seen)
    );
    wait_for_state(&mut machine, State::Connected).await;
    let mut echoes = Vec::new();
    for _ in 0..5 {
        echoes.push(number(&recv(&mut machine).await).expect("numbered"));
    }
    assert_eq!(echoes, [0, 1, 2, 3, 4]);
    let runs = per_connection(&server.received());
    assert_eq!(runs.get(&2).map(Vec::as_slice), Some(&[0, 1, 2, 3, 4][..]));
}

/// `Finish`: what was sent while the server was down is delivered once it
/// is back, then the machine closes and stops on its own, with nothing left
/// over.
#[tokio::test]
async fn finish_delivers_what_was_sent_then_stops() {
    let server = server();
    let addr = server.addr();
    let mut machine = connect(fast(server.url())).await;
    server.stop().await;
    wait_for_state(&mut machine, State::Disconnected).await;
    let queued: Vec<String> = (0..50).map(|n| format!("f{n}")).collect();
    for text in &queued {
        send(&machine, text.as_str()).await;
    }
    command(&machine, Command::Finish).await;

    let server = Server::bind(addr, Config::default()).expect("the same port again");
    let last = wait_for_final(&mut machine).await;
    assert!(last.error.is_none(), "{last}");
    assert_eq!(texts(&server.received(), 1), queued);
    let leftovers = timeout(WAIT, machine.stopped).await.expect("stopped");
    assert!(leftovers.unsent.is_empty() && leftovers.unacknowledged.is_empty());
}

/// With acknowledgements, `Finish` waits for them: the machine stops only
/// once the server has acknowledged every message.
#[tokio::test]
async fn finish_with_acks_waits_for_every_acknowledgement() {
    let server = server();
    let mut machine = connect(fast(server.url()).ack_key(number)).await;
    for n in 0..200 {
        send(&machine, numbered(n)).await;
    }
    command(&machine, Command::Finish).await;
    let last = wait_for_final(&mut machine).await;
    assert!(last.error.is_none(), "{last}");
    assert_eq!(server.messages_received(), 200);
    let leftovers = timeout(WAIT, machine.stopped).await.expect("stopped");
    assert!(
        leftovers.unsent.is_empty(),
        "{:?}",
        numbers(&leftovers.unsent)
    );
    assert!(
        leftovers.unacknowledged.is_empty(),
        "{:?}",
        numbers(&leftovers.unacknowledged)
    );
}

/// A `Quit` after `Finish` stops at once and hands back what was not
/// delivered.
#[tokio::test]
async fn quit_after_finish_stops_at_once_with_the_leftovers() {
    let machine = fast(common::closed_port_url().await)
        .spawn()
        .expect("valid options");
    send(&machine, "never").await;
    command(&machine, Command::Finish).await;
    command(&machine, Command::Quit).await;
    let leftovers = shutdown(machine).await;
    assert_eq!(
        leftovers
            .unsent
            .iter()
            .map(|m| m.as_text())
            .collect::<Vec<_>>(),
        [Some("never")]
    );
}
