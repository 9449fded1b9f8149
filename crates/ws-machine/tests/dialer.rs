//! The dialer: how connections reach the server. A caller's own dialer
//! opens every connection (the URL's host goes into the upgrade request
//! whatever the dialer connected to), and its errors are retried like
//! refused connections.

mod common;

use std::{
    io,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
};

use common::{connect, echo, fast, shutdown, wait_for_state};
use tokio::net::TcpStream;
use ws_machine::{Endpoint, Error, State, http::HeaderValue};
use wsm_server::{Config, Server};

fn server() -> Server {
    Server::start(Config::default()).expect("server starts")
}

#[tokio::test]
async fn a_custom_dialer_opens_every_connection() {
    let server = server();
    let port = server.addr().port();
    let dialed = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&dialed);
    // The URL names a host that does not resolve; the dialer knows where the
    // server is.
    let mut machine = connect(
        fast(format!("ws://feed.invalid:{port}/v1"))
            .min_uptime(std::time::Duration::ZERO)
            .dialer(move |to: Endpoint| {
                let port = to.port();
                if let Ok(mut seen) = record.lock() {
                    seen.push(to);
                }
                TcpStream::connect(("127.0.0.1", port))
            }),
    )
    .await;
    echo(&mut machine, "through the dialer").await;
    // A reconnect dials again.
    assert_eq!(server.drop_all(), 1);
    wait_for_state(&mut machine, State::Connected).await;
    echo(&mut machine, "and again").await;
    let endpoints: Vec<(String, u16)> = dialed
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|to| (to.host().to_owned(), to.port()))
        .collect();
    let expected = ("feed.invalid".to_owned(), port);
    assert_eq!(endpoints, [expected.clone(), expected]);
    let seen = server.request_headers();
    assert!(
        seen.iter().all(|h| h.get("host")
            == Some(&HeaderValue::from_str(&format!("feed.invalid:{port}")).expect("valid"))),
        "{seen:?}"
    );
    shutdown(machine).await;
}

#[tokio::test]
async fn a_failing_dialer_is_a_retried_connect_error() {
    let server = server();
    let addr = server.addr();
    let calls = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let mut machine = fast(server.url())
        .dialer(move |_to: Endpoint| {
            let call = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if call <= 2 {
                    Err(io::Error::new(io::ErrorKind::ConnectionRefused, "not yet"))
                } else {
                    TcpStream::connect(addr).await
                }
            }
        })
        .spawn()
        .expect("valid options");
    for _ in 0..2 {
        let seen = wait_for_state(&mut machine, State::Disconnected).await;
        let failed = seen.last().expect("a status");
        match &failed.error {
            Some(error @ Error::Connect { host, port, source }) => {
                assert_eq!((host.as_str(), *port), ("127.0.0.1", addr.port()));
                assert_eq!(source.kind(), io::ErrorKind::ConnectionRefused);
                assert!(error.is_retryable());
            }
            other => panic!("expected a connect error, got {other:?}"),
        }
    }
    wait_for_state(&mut machine, State::Connected).await;
    echo(&mut machine, "third time").await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    shutdown(machine).await;
}
