//! The life of a machine against the echo server on 127.0.0.1: status order,
//! stopping promptly in every phase (quit, dropped command sender, dropped
//! machine), a caller who never reads statuses, and the commands `Reconnect`,
//! `Ping`, `UseText` and `UseBinary`.

mod common;

use std::time::Duration;

use common::{
    WAIT, accept_peer, closed_port_url, command, connect, echo, fast, ms, next_status, number,
    numbered, peer_close_code, recv, send, show, states, status_within, wait_for_final,
    wait_for_state,
};
use tokio::{net::TcpListener, time::timeout};
use ws_machine::{Command, Error, Kind, Message, State};
use wsm_server::{Config, Rejection, Server};

/// Upper bound for a machine to stop once asked, in any phase.
const STOP: Duration = Duration::from_secs(2);

fn server() -> Server {
    Server::start(Config::default()).expect("server starts")
}

#[tokio::test]
async fn a_normal_connect_and_quit_report_statuses_in_order() {
    let server = server();
    let mut machine = fast(server.url()).spawn().expect("valid options");
    let connecting = next_status(&mut machine).await;
    let connected = next_status(&mut machine).await;
    assert_eq!(
        (connecting.state, connecting.attempt),
        (State::Connecting, 1)
    );
    assert_eq!((connected.state, connected.attempt), (State::Connected, 1));
    assert!(connecting.error.is_none() && connected.error.is_none());
    echo(&mut machine, "hello").await;

    command(&machine, Command::Quit).await;
    let last = wait_for_final(&mut machine).await;
    assert!(
        last.error.is_none(),
        "a requested stop is not an error: {last}"
    );
    assert!(server.wait_for_open_connections(0, WAIT).await);
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test]
async fn quit_sends_a_normal_close_frame() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("address"));
    let mut machine = fast(url).spawn().expect("valid options");
    let mut peer = accept_peer(&listener).await;
    wait_for_state(&mut machine, State::Connected).await;

    command(&machine, Command::Quit).await;
    assert_eq!(peer_close_code(&mut peer).await, 1000);
    wait_for_final(&mut machine).await;
}

#[tokio::test]
async fn quit_while_connecting_stops_promptly() {
    let server = server();
    server.pause_accepting(true);
    let mut machine = fast(server.url())
        .handshake_timeout(Duration::from_secs(30))
        .spawn()
        .expect("valid options");
    assert_eq!(next_status(&mut machine).await.state, State::Connecting);

    command(&machine, Command::Quit).await;
    let last = timeout(STOP, wait_for_final(&mut machine))
        .await
        .expect("stopped while connecting");
    assert!(last.error.is_none(), "{last}");
}

#[tokio::test]
async fn quit_while_waiting_stops_promptly() {
    let mut machine = fast(closed_port_url().await)
        .backoff(Duration::from_secs(30), Duration::from_secs(30))
        .spawn()
        .expect("valid options");
    let seen = wait_for_state(&mut machine, State::Waiting).await;
    assert_eq!(
        seen.last().and_then(|s| s.delay),
        Some(Duration::from_secs(30))
    );

    command(&machine, Command::Quit).await;
    let last = timeout(STOP, wait_for_final(&mut machine))
        .await
        .expect("stopped while waiting");
    assert!(last.error.is_none(), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_during_a_flood_stops_promptly() {
    let server = server();
    // Nobody reads `input`: it fills, the machine stops reading, the server
    // stops reading too, and writes stall. Quit must still get through.
    let mut machine = connect(fast(server.url()).close_timeout(ms(300))).await;
    let output = machine.output.clone();
    let writer = tokio::spawn(async move {
        let payload = vec![0u8; 1024];
        let mut sent = 0u64;
        while output.send(Message::binary(payload.clone())).await.is_ok() {
            sent += 1;
        }
        sent
    });
    assert!(server.wait_for_messages(1000, WAIT).await);

    command(&machine, Command::Quit).await;
    let last = timeout(STOP, async {
        loop {
            let status = next_status(&mut machine).await;
            if status.is_final() {
                return status;
            }
        }
    })
    .await
    .expect("stopped during the flood");
    assert_eq!(last.state, State::Disconnected);
    // `output` closed: the writer ended.
    let sent = timeout(WAIT, writer)
        .await
        .expect("writer ended")
        .expect("writer ok");
    assert!(sent >= 1000, "{sent}");
    assert!(
        timeout(WAIT, machine.status.recv())
            .await
            .expect("status closes")
            .is_none()
    );
    assert!(server.wait_for_open_connections(0, WAIT).await);
}

#[tokio::test]
async fn dropping_the_command_sender_stops_the_machine() {
    let server = server();
    let mut machine = connect(fast(server.url())).await;
    // The handle must stay whole for the helpers: swap in a sender of a
    // channel nobody reads, and drop the real one.
    let (stand_in, _) = ws_machine::channel::channel(1);
    drop(std::mem::replace(&mut machine.command, stand_in));

    let last = timeout(STOP, wait_for_final(&mut machine))
        .await
        .expect("stopped");
    assert!(last.error.is_none(), "{last}");
    assert!(server.wait_for_open_connections(0, WAIT).await);
}

#[tokio::test]
async fn dropping_the_machine_stops_its_task_and_closes_the_connection() {
    let server = server();
    let machine = connect(fast(server.url())).await;
    assert_eq!(server.open_connections(), 1);
    // Drop every part but `stopped`, which resolves once the task has ended
    // (the rest of the moved machine is dropped at the end of the block).
    let stopped = {
        let machine = machine;
        machine.stopped
    };
    timeout(WAIT, stopped)
        .await
        .expect("the task outlived the machine");
    assert!(
        server.wait_for_open_connections(0, WAIT).await,
        "the connection outlived the machine"
    );
    assert_eq!(server.connections_accepted(), 1, "it reconnected");
}

#[tokio::test]
async fn a_caller_who_never_reads_statuses_is_never_held_up() {
    const CYCLES: u64 = 200;
    let server = server();
    let mut machine = fast(server.url())
        .status_capacity(2)
        .min_uptime(Duration::ZERO)
        .backoff(ms(1), ms(5))
        .spawn()
        .expect("valid options");
    for n in 1..=CYCLES {
        assert!(
            server.wait_for_connections(n, WAIT).await,
            "cycle {n}: no reconnect"
        );
        server.drop_all();
    }
    assert!(server.wait_for_connections(CYCLES + 1, WAIT).await);
    // Messages still flow; the drops may still be settling, so allow one more
    // reconnect before the echo.
    wait_for_echo(&mut machine, "still working").await;

    // The statuses read now end with the current state.
    let mut last = None;
    while let Some(status) = status_within(&mut machine, ms(200)).await {
        last = Some(status);
    }
    let last = last.expect("statuses were kept");
    assert_eq!(last.state, State::Connected, "{last}");
    assert_eq!(last.attempt, 1, "{last}");
}

/// Sends `text` until its echo comes back: a message written to a
/// connection that was just dropped may be lost (documented).
async fn wait_for_echo(machine: &mut ws_machine::Machine, text: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        send(machine, text).await;
        if let Ok(Some(back)) = timeout(ms(200), machine.input.recv()).await
            && back.as_text() == Some(text)
        {
            return;
        }
    }
    panic!("no echo of {text:?} within {WAIT:?}");
}

#[tokio::test]
async fn reconnect_command_reconnects_at_once() {
    let server = server();
    // A connection shorter than min_uptime would otherwise be met with a wait.
    let mut machine = connect(fast(server.url()).min_uptime(Duration::from_secs(60))).await;

    command(&machine, Command::Reconnect).await;
    let seen = wait_for_state(&mut machine, State::Connected).await;
    assert_eq!(
        states(&seen),
        [State::Disconnected, State::Connecting, State::Connected],
        "{}",
        show(&seen)
    );
    assert!(
        seen[0].error.is_none(),
        "a requested reconnect is not an error"
    );
    assert_eq!(server.connections_accepted(), 2);
    echo(&mut machine, "on the new connection").await;
}

#[tokio::test]
async fn reconnect_command_skips_the_wait() {
    let server = server();
    server.reject_handshakes(Some(Rejection::service_unavailable()));
    let mut machine = fast(server.url())
        .backoff(Duration::from_secs(30), Duration::from_secs(30))
        .spawn()
        .expect("valid options");
    wait_for_state(&mut machine, State::Waiting).await;
    server.reject_handshakes(None);

    command(&machine, Command::Reconnect).await;
    assert_eq!(next_status(&mut machine).await.state, State::Connecting);
    assert_eq!(next_status(&mut machine).await.state, State::Connected);
}

#[tokio::test]
async fn ping_command_detects_a_frozen_server() {
    let server = server();
    let pong_timeout = ms(200);
    // The keep-alive alone would not ping for 30 s.
    let mut machine = connect(
        fast(server.url())
            .ping_interval(Duration::from_secs(30))
            .pong_timeout(pong_timeout),
    )
    .await;
    server.freeze_all();

    command(&machine, Command::Ping).await;
    let seen = wait_for_state(&mut machine, State::Disconnected).await;
    assert!(
        matches!(seen.last().and_then(|s| s.error.as_ref()), Some(Error::PongTimeout(d)) if *d == pong_timeout),
        "{}",
        show(&seen)
    );
}

#[tokio::test]
async fn use_text_and_use_binary_switch_the_opcode_of_plain_bytes() {
    let server = server();
    let mut machine = connect(fast(server.url())).await;

    send(&machine, Message::bytes(&b"plain"[..])).await;
    assert_eq!(recv(&mut machine).await.kind(), Kind::Binary);

    // A switch sent before a message applies to it (commands go first).
    command(&machine, Command::UseText).await;
    send(&machine, Message::bytes(&b"plain"[..])).await;
    let back = recv(&mut machine).await;
    assert_eq!((back.kind(), back.as_text()), (Kind::Text, Some("plain")));
    // Explicit kinds ignore the mode.
    send(&machine, Message::binary(&b"raw"[..])).await;
    assert_eq!(recv(&mut machine).await.kind(), Kind::Binary);

    command(&machine, Command::UseBinary).await;
    send(&machine, Message::bytes(&b"plain"[..])).await;
    assert_eq!(recv(&mut machine).await.kind(), Kind::Binary);
    send(&machine, Message::text("words")).await;
    assert_eq!(recv(&mut machine).await.kind(), Kind::Text);
}

#[tokio::test]
async fn a_stopped_machine_refuses_messages_and_shuts_down_at_once() {
    let server = server();
    server.reject_handshakes(Some(Rejection::unauthorized()));
    let mut machine = fast(server.url()).spawn().expect("valid options");
    // This also waits for `status` and `input` to close: the task is done.
    wait_for_final(&mut machine).await;

    // A message offered now comes straight back instead of vanishing.
    let refused = machine.output.send(Message::text("too late")).await;
    let returned = refused.expect_err("the machine stopped").0;
    assert_eq!(returned.as_text(), Some("too late"));
    let leftovers = timeout(WAIT, machine.shutdown()).await.expect("at once");
    assert!(leftovers.unsent.is_empty() && leftovers.received.is_empty());
}

/// The Go original panicked in 23 of 50 quits during traffic. Here 50 quits
/// land at different moments of a two-way flow; each completes promptly, and
/// every message that was accepted by `output` is accounted for exactly
/// once: echoed back (read, or handed back as unread) or handed back unsent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quitting_at_any_moment_of_traffic_loses_nothing() {
    let server = server();
    let mut total = 0;
    for round in 0..50u64 {
        let mut machine = connect(fast(server.url())).await;
        let output = machine.output.clone();
        let writer = tokio::spawn(async move {
            let mut sent = 0;
            while output.send(numbered(sent)).await.is_ok() {
                sent += 1;
            }
            sent
        });
        let mut input = std::mem::replace(&mut machine.input, ws_machine::channel::channel(1).1);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(message) = input.recv().await {
                got.push(number(&message).expect("numbered"));
            }
            got
        });
        // Quit after 0 to 9 ms of traffic.
        tokio::time::sleep(ms(round % 10)).await;
        let leftovers = timeout(STOP, machine.shutdown())
            .await
            .unwrap_or_else(|_| panic!("round {round}: quit did not complete"));
        let sent = timeout(WAIT, writer)
            .await
            .expect("writer ends")
            .expect("writer ok");
        let mut seen = timeout(WAIT, reader)
            .await
            .expect("reader ends")
            .expect("reader ok");
        seen.extend(leftovers.received.iter().filter_map(number));
        seen.extend(leftovers.unsent.iter().filter_map(number));
        seen.sort_unstable();
        total += sent;
        let expected: Vec<u64> = (0..sent).collect();
        assert!(
            seen == expected,
            "round {round}: {sent} sent, {} accounted for",
            seen.len()
        );
    }
    assert!(
        total >= 1000,
        "the quits must land in real traffic: {total} sent"
    );
}

/// With reconnecting off, the one connection's end is the machine's end:
/// the server's close comes back as the final status, and nothing is
/// attempted again. `Reconnect` from the caller still reconnects.
#[tokio::test]
async fn without_reconnecting_the_first_end_is_final() {
    let server = server();
    let mut machine = connect(fast(server.url()).reconnect(false)).await;
    command(&machine, Command::Reconnect).await;
    wait_for_state(&mut machine, State::Connected).await;
    echo(&mut machine, "second connection, asked for").await;
    assert_eq!(server.close_all(), 1);
    let last = wait_for_final(&mut machine).await;
    assert!(
        matches!(last.error, Some(Error::Closed { code: 1000, .. })),
        "{last}"
    );
    assert_eq!(server.connections_accepted(), 2);

    let mut refused = fast(closed_port_url().await)
        .reconnect(false)
        .spawn()
        .expect("valid options");
    let last = wait_for_final(&mut refused).await;
    assert!(matches!(last.error, Some(Error::Connect { .. })), "{last}");
}
