//! Every address of a host is tried in turn, within the handshake timeout:
//! `ws://localhost:PORT/` reaches a server that listens only on 127.0.0.1
//! even where `localhost` resolves to `::1` first (where nothing listens on
//! that port). The connector's unit tests cover the order and the sharing
//! of the time with a list of two addresses, the first refusing.

mod common;

use common::{echo, fast, shutdown, wait_for_final, wait_for_state};
use ws_machine::{Error, State};
use wsm_server::{Config, Server};

#[tokio::test]
async fn localhost_reaches_a_server_on_127_0_0_1_whatever_comes_first() {
    let server = Server::start(Config::default()).expect("server");
    let port = server.addr().port();
    let addresses: Vec<_> = tokio::net::lookup_host(("localhost", port))
        .await
        .expect("localhost resolves")
        .collect();
    assert!(
        addresses.iter().any(std::net::SocketAddr::is_ipv4),
        "localhost has no IPv4 address here: {addresses:?}"
    );
    // Where ::1 comes first, the first attempt is refused and the next
    // address is tried; either way the machine connects.
    let mut machine = fast(format!("ws://localhost:{port}/"))
        .spawn()
        .expect("valid options");
    let seen = wait_for_state(&mut machine, State::Connected).await;
    assert_eq!(
        seen.iter().filter(|s| s.state == State::Connecting).count(),
        1,
        "one attempt, over the addresses in turn: {seen:?} (addresses {addresses:?})"
    );
    echo(&mut machine, "via localhost").await;
    shutdown(machine).await;
}

#[tokio::test]
async fn when_no_address_answers_the_error_names_the_host() {
    let server = Server::start(Config::default()).expect("server");
    let port = server.addr().port();
    server.stop().await;
    let mut machine = fast(format!("ws://localhost:{port}/"))
        .reconnect(false)
        .spawn()
        .expect("valid options");
    let last = wait_for_final(&mut machine).await;
    match &last.error {
        Some(Error::Connect { host, port: p, .. }) => {
            assert_eq!((host.as_str(), *p), ("localhost", port));
        }
        other => panic!("expected a connect error, got {other:?}"),
    }
}
