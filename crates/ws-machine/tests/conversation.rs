//! What the application says on every connection, over real sockets on
//! 127.0.0.1: the heartbeat against the echo server (its echo is the reply)
//! and against a Node `ws` server that ignores control pings as many
//! exchanges do (`tests/peers/heartbeat_server.js`), and the ready gate
//! (the echo of the login opens it). The exact timing is checked on the
//! paused clock in `paused_clock.rs`.

mod common;

use std::time::Duration;

use common::{
    WAIT, connect, echo, fast, ms, peers::PeerProcess, recv, send, show, status_within,
    wait_for_state,
};
use ws_machine::{Error, State};
use wsm_server::{Config, Server};

const BEAT: &str = r#"{"op":"ping"}"#;

#[tokio::test]
async fn echoed_heartbeats_are_kept_out_and_a_frozen_server_is_replaced() {
    let server = Server::start(Config::default()).expect("server starts");
    let pong_timeout = ms(1000);
    let mut machine = connect(
        fast(server.url())
            .heartbeat(BEAT, ms(20))
            .heartbeat_reply(|m| m.as_text() == Some(BEAT))
            .ping_interval(Duration::MAX)
            .pong_timeout(pong_timeout),
    )
    .await;
    // Heartbeats reach the server and come back, while data flows around
    // them and only the data reaches `input`.
    assert!(
        server.wait_for_messages(5, WAIT).await,
        "the server received no heartbeats"
    );
    for n in 0..20 {
        echo(&mut machine, &format!("data {n}")).await;
    }
    let beats = server
        .received()
        .iter()
        .filter(|r| r.data.as_text() == Some(BEAT))
        .count();
    assert!(beats >= 5, "{beats} heartbeats");
    assert!(machine.input.is_empty());

    // A frozen server answers nothing: the heartbeat finds it (control
    // pings are off), and the next connection works.
    assert_eq!(server.freeze_all(), 1);
    let seen = wait_for_state(&mut machine, State::Disconnected).await;
    assert!(
        matches!(
            seen.last().and_then(|s| s.error.as_ref()),
            Some(Error::HeartbeatTimeout(d)) if *d == pong_timeout
        ),
        "{}",
        show(&seen)
    );
    wait_for_state(&mut machine, State::Connected).await;
    echo(&mut machine, "alive again").await;
}

/// The server echoes the login, which opens the gate: `Ready` follows
/// `Connected` on every connection, and the server receives the login
/// before any order, also after a reconnect.
#[tokio::test]
async fn orders_follow_the_login_on_every_connection() {
    let server = Server::start(Config::default()).expect("server starts");
    let mut machine = fast(server.url())
        .on_connect("login")
        .ready_when(|m| m.as_text() == Some("login"))
        .spawn()
        .expect("valid options");
    send(&machine, "order 1").await;
    let seen = wait_for_state(&mut machine, State::Ready).await;
    let states: Vec<State> = seen.iter().map(|s| s.state).collect();
    assert_eq!(states, [State::Connecting, State::Connected, State::Ready]);
    assert_eq!(recv(&mut machine).await.as_text(), Some("login"));
    assert_eq!(recv(&mut machine).await.as_text(), Some("order 1"));

    assert_eq!(server.drop_all(), 1);
    wait_for_state(&mut machine, State::Ready).await;
    send(&machine, "order 2").await;
    assert_eq!(recv(&mut machine).await.as_text(), Some("login"));
    assert_eq!(recv(&mut machine).await.as_text(), Some("order 2"));
    let texts: Vec<(u64, String)> = server
        .received()
        .into_iter()
        .filter_map(|r| Some((r.connection, r.data.as_text()?.to_owned())))
        .collect();
    assert_eq!(
        texts,
        [
            (1, "login".to_owned()),
            (1, "order 1".to_owned()),
            (2, "login".to_owned()),
            (2, "order 2".to_owned()),
        ]
    );
}

/// A server that ignores control pings: without a heartbeat the machine
/// finds it dead after a ping; with `{"op":"ping"}` as the heartbeat (and no
/// control pings) the connection stays up, the `{"op":"pong"}` replies stay
/// out of `input`, and data flows.
#[tokio::test]
async fn a_server_that_ignores_pings_is_kept_alive_by_the_heartbeat() {
    let peer = PeerProcess::node("heartbeat_server.js", &[]).await;
    // Generous: a busy machine must not turn a late answer into a failure.
    let pong_timeout = ms(1000);
    let mut pinged = connect(
        fast(peer.url.clone())
            .ping_interval(ms(50))
            .pong_timeout(pong_timeout),
    )
    .await;
    let seen = wait_for_state(&mut pinged, State::Disconnected).await;
    assert!(
        matches!(
            seen.last().and_then(|s| s.error.as_ref()),
            Some(Error::PongTimeout(d)) if *d == pong_timeout
        ),
        "the server answers no control ping: {}",
        show(&seen)
    );
    drop(pinged);

    let mut machine = connect(
        fast(peer.url.clone())
            .heartbeat(BEAT, ms(50))
            .heartbeat_reply(|m| m.as_text() == Some(r#"{"op":"pong"}"#))
            .ping_interval(Duration::MAX)
            .pong_timeout(pong_timeout),
    )
    .await;
    // Three times the pong timeout, sixty heartbeats answered: no state
    // change.
    for n in 0..10 {
        echo(&mut machine, &format!("data {n}")).await;
        let change = status_within(&mut machine, ms(300)).await;
        assert!(change.is_none(), "unexpected {change:?}");
    }
    assert!(machine.input.is_empty(), "no reply reached input");
}
