//! The application-level heartbeat over real sockets on 127.0.0.1, against
//! the echo server: its echo of the heartbeat is the reply. (The exact
//! schedule is checked on the paused clock in `paused_clock.rs`.)

mod common;

use std::time::Duration;

use common::{WAIT, connect, echo, fast, ms, show, wait_for_state};
use ws_machine::{Error, State};
use wsm_server::{Config, Server};

const BEAT: &str = r#"{"op":"ping"}"#;

#[tokio::test]
async fn echoed_heartbeats_are_kept_out_and_a_frozen_server_is_replaced() {
    let server = Server::start(Config::default()).expect("server starts");
    let pong_timeout = ms(300);
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
