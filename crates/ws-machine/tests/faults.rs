//! Faults of an established connection, injected by the echo server on
//! 127.0.0.1: a frozen peer, a dropped socket, a close frame, garbage bytes,
//! oversized messages, refused outgoing messages, and a server that hangs up
//! at once after every upgrade.

mod common;

use std::time::Duration;

use common::{
    Peer, WAIT, accept_peer, accept_peer_with, command, connect, echo, fast, ms, next_status,
    number, peer_close_code, peer_send, recv, send, show, states, status_within, wait_for_state,
};
use futures_util::StreamExt;
use tokio::{
    net::TcpListener,
    time::{Instant, timeout},
};
use ws_machine::{Command, Direction, Error, Kind, Machine, Message, State};
use wsm_server::{Config, Server};

fn server() -> Server {
    Server::start(Config::default()).expect("server starts")
}

#[tokio::test]
async fn a_frozen_server_is_detected_within_ping_interval_plus_pong_timeout() {
    let server = server();
    let (interval, pong_timeout) = (ms(100), ms(200));
    let mut machine = connect(
        fast(server.url())
            .ping_interval(interval)
            .pong_timeout(pong_timeout),
    )
    .await;

    assert_eq!(server.freeze_all(), 1);
    // The exact bound (interval + timeout) is checked on the paused clock in
    // the crate's timing tests; here, over real sockets, that it is found.
    let seen = wait_for_state(&mut machine, State::Disconnected).await;
    let lost = seen.last().expect("a status");
    assert!(
        matches!(lost.error, Some(Error::PongTimeout(d)) if d == pong_timeout),
        "{}",
        show(&seen)
    );

    // Freezing affects open connections only: the next one works.
    wait_for_state(&mut machine, State::Connected).await;
    echo(&mut machine, "alive again").await;
}

/// A feed that stalls while the server still answers pings: the echo
/// server sends data only when sent some, so after a few echoes it goes
/// quiet, pongs and all; the data timeout replaces the connection, and the
/// next one works.
#[tokio::test]
async fn a_feed_that_stalls_while_answering_pings_is_replaced() {
    let server = server();
    let data_timeout = ms(300);
    let mut machine = connect(
        fast(server.url())
            .ping_interval(ms(50))
            .pong_timeout(Duration::from_secs(1))
            .data_timeout(data_timeout),
    )
    .await;
    for n in 0..3 {
        echo(&mut machine, &format!("tick {n}")).await;
    }
    let seen = wait_for_state(&mut machine, State::Disconnected).await;
    assert!(
        matches!(
            seen.last().and_then(|s| s.error.as_ref()),
            Some(Error::DataTimeout(d)) if *d == data_timeout
        ),
        "{}",
        show(&seen)
    );
    wait_for_state(&mut machine, State::Connected).await;
    echo(&mut machine, "fresh feed").await;
}

#[tokio::test]
async fn an_idle_healthy_connection_is_kept_alive_by_pings() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("address"));
    let mut machine = fast(url)
        .ping_interval(ms(30))
        .pong_timeout(Duration::from_secs(1))
        .spawn()
        .expect("valid options");
    let mut peer = accept_peer(&listener).await;
    wait_for_state(&mut machine, State::Connected).await;
    // The peer only reads (which answers pings): it sees one ping per
    // silent interval, and the machine keeps the connection.
    let mut pings = 0;
    while pings < 5 {
        let frame = timeout(WAIT, peer.next())
            .await
            .expect("a frame in time")
            .expect("connection open")
            .expect("valid frame");
        assert!(frame.is_ping(), "{frame:?}");
        pings += 1;
    }
    let change = status_within(&mut machine, ms(10)).await;
    assert!(change.is_none(), "unexpected {change:?}");
}

#[tokio::test]
async fn a_ping_command_sends_a_ping_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("address"));
    // Keep-alive pings far off: the only ping is the one asked for.
    let mut machine = fast(url)
        .ping_interval(Duration::from_secs(3600))
        .pong_timeout(ms(500))
        .spawn()
        .expect("valid options");
    let mut peer = accept_peer(&listener).await;
    wait_for_state(&mut machine, State::Connected).await;
    command(&machine, Command::Ping).await;
    let frame = timeout(WAIT, peer.next())
        .await
        .expect("a ping in time")
        .expect("connection open")
        .expect("valid frame");
    assert!(frame.is_ping(), "{frame:?}");
    // The peer goes on reading, which sends the pong: no timeout.
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = peer.next().await {} });
    let change = status_within(&mut machine, ms(600)).await;
    assert!(change.is_none(), "unexpected {change:?}");
    reader.abort();
}

#[tokio::test]
async fn a_dropped_connection_is_lost_and_reconnected_at_once() {
    let server = server();
    let mut machine = connect(fast(server.url()).min_uptime(Duration::ZERO)).await;
    assert_eq!(server.drop_all(), 1);

    let seen = wait_for_state(&mut machine, State::Connected).await;
    assert_eq!(
        states(&seen),
        [State::Disconnected, State::Connecting, State::Connected],
        "{}",
        show(&seen)
    );
    assert!(
        matches!(seen[0].error, Some(Error::ConnectionLost(_))),
        "{}",
        show(&seen)
    );
    echo(&mut machine, "reconnected").await;
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test]
async fn a_server_close_is_reported_with_its_code() {
    let server = server();
    let mut machine = connect(fast(server.url())).await;
    assert_eq!(server.close_all(), 1);

    let seen = wait_for_state(&mut machine, State::Disconnected).await;
    let closed = seen.last().expect("a status");
    assert!(
        matches!(&closed.error, Some(Error::Closed { code: 1000, reason, retryable: true }) if reason.is_empty()),
        "{closed}"
    );
    wait_for_state(&mut machine, State::Connected).await;
    echo(&mut machine, "back").await;
}

#[tokio::test]
async fn garbage_from_the_server_is_a_protocol_error_then_reconnects() {
    let server = server();
    let mut machine = connect(fast(server.url())).await;
    // 0xFF: FIN, all three reserved bits and a reserved opcode.
    assert_eq!(server.send_garbage_all(vec![0xFF; 16]), 1);

    let seen = wait_for_state(&mut machine, State::Disconnected).await;
    let broken = seen.last().expect("a status");
    assert!(
        matches!(broken.error, Some(Error::Protocol { .. })),
        "{broken}"
    );
    // The engine's own description of the violation is kept as the cause.
    let cause = broken
        .error
        .as_ref()
        .and_then(std::error::Error::source)
        .map(ToString::to_string)
        .expect("a cause");
    assert!(broken.to_string().ends_with(&cause), "{broken} / {cause}");
    assert!(!broken.is_final());
    wait_for_state(&mut machine, State::Connected).await;
    echo(&mut machine, "clean again").await;
}

/// Random bytes in place of frames, 100 connections in a row: whatever they
/// happen to mean (garbage, a valid message, the start of a frame that never
/// ends), the machine never panics, reports each lost connection, and
/// works normally afterwards.
#[tokio::test]
async fn random_garbage_never_breaks_the_machine() {
    let server = server();
    let mut machine = connect(fast(server.url()).min_uptime(Duration::ZERO)).await;
    let mut rng = fastrand::Rng::with_seed(20_261_126);
    let (mut protocol_errors, mut delivered) = (0, 0);
    for round in 0..100 {
        let len = rng.usize(2..=300);
        let mut garbage: Vec<u8> = std::iter::repeat_with(|| rng.u8(..)).take(len).collect();
        if round % 2 == 1 {
            // A valid header (final binary frame, unmasked, short length)
            // followed by random bytes: a message, then more garbage, or a
            // frame that never completes.
            garbage[0] = 0x82;
            garbage[1] = rng.u8(0..126);
        }
        assert_eq!(server.send_garbage_all(garbage), 1, "round {round}");
        let lost = match status_within(&mut machine, ms(100)).await {
            Some(status) => status,
            None => {
                // A frame was left half-read: dropping the socket settles it.
                server.drop_all();
                next_status(&mut machine).await
            }
        };
        assert_eq!(lost.state, State::Disconnected, "round {round}: {lost}");
        assert!(
            lost.error.is_some() && !lost.is_final(),
            "round {round}: {lost}"
        );
        if matches!(lost.error, Some(Error::Protocol { .. })) {
            protocol_errors += 1;
        }
        wait_for_state(&mut machine, State::Connected).await;
        // Whatever valid messages the garbage held were delivered.
        while machine.input.try_recv().is_ok() {
            delivered += 1;
        }
    }
    // The garbage did reach the machine: most of it broke the protocol, and
    // the frames with a valid header were delivered.
    assert!(protocol_errors >= 50, "{protocol_errors} of 100");
    assert!(delivered >= 10, "{delivered} messages delivered");
    echo(&mut machine, "still fine").await;
    assert!(!machine.is_stopped());
}

#[tokio::test]
async fn an_oversized_incoming_message_drops_the_connection_not_the_machine() {
    let server = server();
    let mut machine = connect(fast(server.url()).max_message_size(1024)).await;
    assert_eq!(server.send_all(vec![7u8; 4096]), 1);

    let seen = wait_for_state(&mut machine, State::Disconnected).await;
    let too_large = seen.last().expect("a status");
    assert!(
        matches!(
            too_large.error,
            Some(Error::MessageTooLarge {
                direction: Direction::Incoming,
                max: 1024,
                ..
            })
        ),
        "{too_large}"
    );
    assert!(!too_large.is_final());
    wait_for_state(&mut machine, State::Connected).await;
    // The oversized message never reached `input`: the next one is the echo.
    echo(&mut machine, "small").await;
}

/// A machine that accepts messages of up to 1,024 bytes, connected to a
/// scripted peer that sends in frames of up to `frame_size` bytes.
async fn limited_machine_and_peer(frame_size: usize) -> (Machine, Peer) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("address"));
    let mut machine = fast(url)
        .max_message_size(1024)
        .spawn()
        .expect("valid options");
    let peer = accept_peer_with(
        &listener,
        tokio_websockets::Config::default().frame_size(frame_size),
    )
    .await;
    wait_for_state(&mut machine, State::Connected).await;
    (machine, peer)
}

/// The documented promise: "a larger incoming message closes the connection
/// with code 1009". A scripted peer sees what the machine sends.
#[tokio::test]
async fn an_oversized_incoming_message_is_answered_with_close_1009() {
    let (_machine, mut peer) = limited_machine_and_peer(64 * 1024).await;
    peer_send(
        &mut peer,
        tokio_websockets::Message::binary(vec![7u8; 4096]),
    )
    .await;
    assert_eq!(peer_close_code(&mut peer).await, 1009);
}

/// The same promise when the message comes in fragments, each under the
/// limit, that add up to more: the engine answers only a single oversized
/// frame by itself; the machine sends the 1009 for this case.
#[tokio::test]
async fn an_oversized_fragmented_incoming_message_is_answered_with_close_1009() {
    let (mut machine, mut peer) = limited_machine_and_peer(256).await;
    peer_send(
        &mut peer,
        tokio_websockets::Message::binary(vec![7u8; 4096]),
    )
    .await;
    assert_eq!(peer_close_code(&mut peer).await, 1009);
    let lost = wait_for_state(&mut machine, State::Disconnected).await;
    let lost = lost.last().expect("a status");
    assert!(
        matches!(
            lost.error,
            Some(Error::MessageTooLarge {
                direction: Direction::Incoming,
                max: 1024,
                ..
            })
        ),
        "{lost}"
    );
}

#[tokio::test]
async fn an_oversized_outgoing_message_is_refused_and_the_connection_carries_on() {
    let server = server();
    let mut machine = connect(fast(server.url()).max_message_size(1024)).await;
    send(&machine, Message::binary(vec![1u8; 2048])).await;

    let refused = next_status(&mut machine).await;
    assert_eq!(refused.state, State::Connected, "{refused}");
    assert!(!refused.is_final());
    assert!(
        matches!(
            refused.error,
            Some(Error::MessageTooLarge {
                direction: Direction::Outgoing,
                size: 2048,
                max: 1024,
                ..
            })
        ),
        "{refused}"
    );
    // The message comes back with its refusal, which is not retryable.
    let error = refused.error.as_ref().expect("an error");
    assert!(!error.is_retryable());
    assert_eq!(
        error.refused_message(),
        Some(&Message::binary(vec![1u8; 2048]))
    );
    echo(&mut machine, "next").await;
    assert_eq!(
        server.messages_received(),
        1,
        "the refused message was sent"
    );
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test]
async fn text_mode_refuses_invalid_utf8_and_the_connection_carries_on() {
    let server = server();
    let mut machine = connect(fast(server.url())).await;
    command(&machine, Command::UseText).await;

    send(&machine, Message::bytes(vec![0xFF, 0xFE])).await;
    let refused = next_status(&mut machine).await;
    assert_eq!(refused.state, State::Connected, "{refused}");
    assert!(
        matches!(
            &refused.error,
            Some(Error::NotText { size: 2, message }) if message.as_ref() == [0xFF, 0xFE]
        ),
        "{refused}"
    );

    send(&machine, Message::bytes(&b"fine"[..])).await;
    let back = recv(&mut machine).await;
    assert_eq!(back.kind(), Kind::Text);
    assert_eq!(back.as_text(), Some("fine"));
    assert_eq!(
        server.messages_received(),
        1,
        "the refused message was sent"
    );
}

#[tokio::test]
async fn a_server_that_hangs_up_at_once_is_met_with_backoff_not_a_storm() {
    let server = server();
    server.accept_then_close(true);
    let initial = ms(40);
    let mut machine = fast(server.url())
        .backoff(initial, ms(400))
        .min_uptime(Duration::from_secs(10))
        .spawn()
        .expect("valid options");
    let started = Instant::now();

    let mut delays = Vec::new();
    for attempt in 1..=4u32 {
        let seen = wait_for_state(&mut machine, State::Waiting).await;
        let tail = &seen[seen.len().saturating_sub(4)..];
        assert_eq!(
            states(tail),
            [
                State::Connecting,
                State::Connected,
                State::Disconnected,
                State::Waiting
            ],
            "{}",
            show(&seen)
        );
        assert_eq!(tail[0].attempt, attempt, "{}", show(&seen));
        assert!(
            matches!(tail[2].error, Some(Error::Closed { code: 1000, .. })),
            "{}",
            show(&seen)
        );
        // Full jitter between the initial delay and a doubling ceiling.
        let delay = tail[3].delay.expect("a waiting status carries its delay");
        let ceiling = initial * 2u32.pow(attempt);
        assert!(
            delay >= initial && delay <= ceiling,
            "attempt {attempt}: {delay:?}"
        );
        delays.push(delay);
    }
    let elapsed = started.elapsed();
    // The machine really waited (the fourth wait has only just begun), and
    // the server saw one connection per attempt (a fifth may be under way):
    // no reconnect storm.
    let waited: Duration = delays[..3].iter().sum();
    assert!(elapsed >= waited, "{elapsed:?} < {waited:?}");
    let accepted = server.connections_accepted();
    assert!((4..=5).contains(&accepted), "{accepted} connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_reading_is_detected_by_the_write_timeout() {
    const MESSAGES: u64 = 256;
    let server = server();
    let write_timeout = ms(200);
    // Keep-alive slower than the test, so only the write timeout can fire.
    // With acknowledgements, every message must reach the new connection:
    // the frozen one echoed none.
    let mut machine = connect(
        fast(server.url())
            .write_timeout(write_timeout)
            .ping_interval(Duration::from_secs(30))
            .min_uptime(Duration::ZERO)
            .ack_key(number),
    )
    .await;
    server.freeze_all();

    // 16 MiB: more than the socket buffers of both ends hold.
    let output = machine.output.clone();
    let writer = tokio::spawn(async move {
        for n in 0..MESSAGES {
            let mut payload = vec![0u8; 64 * 1024];
            payload[..8].copy_from_slice(&n.to_le_bytes());
            output
                .send(Message::binary(payload))
                .await
                .expect("machine runs");
        }
    });
    let seen = wait_for_state(&mut machine, State::Disconnected).await;
    assert!(
        matches!(seen.last().and_then(|s| s.error.as_ref()), Some(Error::WriteTimeout(d)) if *d == write_timeout),
        "{}",
        show(&seen)
    );

    // The messages whose write was stuck are written again on the next
    // connection, in order, up to the last one.
    wait_for_state(&mut machine, State::Connected).await;
    timeout(WAIT, writer)
        .await
        .expect("writer done")
        .expect("writer ok");
    let mut last = None;
    while last != Some(MESSAGES - 1) {
        last = number(&recv(&mut machine).await);
    }
    let second: Vec<u64> = server
        .received()
        .iter()
        .filter(|r| r.connection == 2)
        .map(|r| u64::from_le_bytes(r.data.as_bytes()[..8].try_into().expect("8 bytes")))
        .collect();
    let all: Vec<u64> = (0..MESSAGES).collect();
    assert_eq!(
        second, all,
        "every message, in order, on the new connection"
    );
}

/// Backpressure must not look like a dead peer: while `input` is full the
/// machine stops reading the socket, so the server's pongs sit unread; the
/// peer is alive and only the caller is slow.
#[tokio::test]
async fn a_slow_reader_is_not_mistaken_for_a_dead_peer() {
    let server = server();
    let mut machine = connect(
        fast(server.url())
            .input_capacity(1)
            .ping_interval(ms(50))
            .pong_timeout(ms(100)),
    )
    .await;
    for n in 0..10 {
        server.send_all(format!("pushed {n}"));
    }
    // The caller is busy for six ping intervals and reads nothing.
    let change = status_within(&mut machine, ms(300)).await;
    assert!(
        change.is_none(),
        "a live server was declared dead: {change:?}"
    );
    for n in 0..10 {
        assert_eq!(
            recv(&mut machine).await.as_text(),
            Some(format!("pushed {n}").as_str())
        );
    }
}

#[tokio::test]
async fn max_attempts_counts_connections_shorter_than_min_uptime() {
    let server = server();
    server.accept_then_close(true);
    let mut machine = fast(server.url())
        .max_attempts(3)
        .min_uptime(Duration::from_secs(10))
        .spawn()
        .expect("valid options");
    let last = common::wait_for_final(&mut machine).await;
    match &last.error {
        Some(Error::GaveUp { attempts: 3, last }) => {
            assert!(matches!(**last, Error::Closed { code: 1000, .. }), "{last}");
        }
        other => panic!("expected GaveUp after 3 attempts, got {other:?}"),
    }
    assert_eq!(server.connections_accepted(), 3);
}

/// A refused message whose status never reaches the caller (nobody reads
/// `status`, which overflows) comes back in the leftovers: nothing vanishes
/// unseen.
#[tokio::test]
async fn refused_messages_whose_status_was_dropped_come_back_in_the_leftovers() {
    let server = server();
    let mut machine = connect(fast(server.url()).max_message_size(4).status_capacity(2)).await;
    // Far more refusals than the status channel and the machine's backlog
    // hold; `status` is not read meanwhile.
    for n in 0..40u8 {
        send(&machine, Message::binary(vec![n; 8])).await;
    }
    echo(&mut machine, "ok").await;
    command(&machine, Command::Quit).await;
    let ws_machine::Machine {
        mut status,
        stopped,
        ..
    } = machine;
    // Every status the caller gets, to the end.
    let mut seen = Vec::new();
    while let Some(status) = timeout(WAIT, status.recv()).await.expect("the end in time") {
        if let Some(message) = status
            .error
            .and_then(ws_machine::Error::into_refused_message)
        {
            seen.push(message.as_ref()[0]);
        }
    }
    let leftovers = timeout(WAIT, stopped).await.expect("stopped in time");
    let mut all: Vec<u8> = seen;
    all.extend(leftovers.refused.iter().map(|m| m.as_ref()[0]));
    all.sort_unstable();
    assert_eq!(
        all,
        (0..40).collect::<Vec<u8>>(),
        "every refused message, once"
    );
    assert!(!leftovers.refused.is_empty(), "some statuses were dropped");
}
