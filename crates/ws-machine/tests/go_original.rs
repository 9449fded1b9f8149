//! The Go original's five tests (bad URL, connect, reconnect, server
//! disappears, echo), ported against a real server on 127.0.0.1.

mod common;

use std::time::Duration;

use common::{WAIT, next_status, recv, wait_for_final};
use http::HeaderMap;
use ws_machine::{Command, Error, Machine, Message, State, Status};
use wsm_server::{Config, Server};

async fn expect_states(machine: &mut Machine, states: &[State]) -> Vec<Status> {
    let mut seen = Vec::new();
    for state in states {
        let status = next_status(machine).await;
        assert_eq!(status.state, *state, "after {seen:?}");
        seen.push(status);
    }
    seen
}

/// Quits; the final status is a clean `Disconnected` and the channels close.
async fn expect_quit(machine: &mut Machine) {
    machine.command.send(Command::Quit).await.expect("running");
    let last = wait_for_final(machine).await;
    assert!(last.error.is_none(), "a requested quit is clean: {last:?}");
}

#[tokio::test]
async fn bad_url() {
    let err = Machine::new("foobar", HeaderMap::new()).expect_err("not a URL");
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err}");
}

#[tokio::test]
async fn connect() {
    let server = Server::start(Config::default()).expect("server");
    let mut machine = Machine::new(&server.url(), HeaderMap::new()).expect("valid");
    expect_states(&mut machine, &[State::Connecting, State::Connected]).await;
    assert!(server.wait_for_connections(1, WAIT).await);
    expect_quit(&mut machine).await;
    assert!(server.wait_for_open_connections(0, WAIT).await);
}

#[tokio::test]
async fn reconnect() {
    // Nothing listens at first: the attempt fails and the machine waits.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("address")
    };
    let mut machine = Machine::builder(format!("ws://{port}/"))
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .spawn()
        .expect("valid");
    let failed = expect_states(
        &mut machine,
        &[State::Connecting, State::Disconnected, State::Waiting],
    )
    .await;
    assert!(
        matches!(failed[1].error, Some(Error::Connect { .. })),
        "{failed:?}"
    );
    // The server comes up on that port: the next attempts reach it.
    let server = Server::bind(port, Config::default()).expect("server");
    for _ in 0..20 {
        if next_status(&mut machine).await.state == State::Connected {
            assert!(server.wait_for_connections(1, WAIT).await);
            expect_quit(&mut machine).await;
            return;
        }
    }
    panic!("never connected");
}

#[tokio::test]
async fn server_disappears() {
    let server = Server::start(Config::default()).expect("server");
    let addr = server.addr();
    let mut machine = Machine::builder(server.url())
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .spawn()
        .expect("valid");
    expect_states(&mut machine, &[State::Connecting, State::Connected]).await;
    server.stop().await;
    let lost = expect_states(&mut machine, &[State::Disconnected]).await;
    assert!(lost[0].error.is_some(), "a lost connection says why");
    // It keeps trying while the server is gone...
    let mut attempts = 0;
    while attempts < 2 {
        if next_status(&mut machine).await.state == State::Connecting {
            attempts += 1;
        }
    }
    // ...and gets back when it returns.
    let _server = Server::bind(addr, Config::default()).expect("server again");
    for _ in 0..20 {
        if next_status(&mut machine).await.state == State::Connected {
            expect_quit(&mut machine).await;
            return;
        }
    }
    panic!("never reconnected");
}

#[tokio::test]
async fn echo() {
    let server = Server::start(Config::default()).expect("server");
    let mut machine = Machine::new(&server.url(), HeaderMap::new()).expect("valid");
    expect_states(&mut machine, &[State::Connecting, State::Connected]).await;
    let sent: Vec<Message> = (0..10)
        .map(|i| Message::from(format!("hello {i}").into_bytes()))
        .collect();
    for message in &sent {
        machine.output.send(message.clone()).await.expect("running");
    }
    for message in &sent {
        let echo = recv(&mut machine).await;
        assert_eq!(echo.as_ref(), message.as_ref());
        assert!(echo.is_binary(), "plain bytes go out as binary by default");
    }
    expect_quit(&mut machine).await;
}
