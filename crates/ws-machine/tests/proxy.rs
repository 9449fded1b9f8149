//! Through real proxies on 127.0.0.1: tinyproxy (HTTP CONNECT with Basic
//! authentication) and microsocks (SOCKS5 with a user name and password).
//! ws and wss through each (wss: TLS end to end with a CA made in the
//! test; the proxy only carries the tunnel), rejected credentials (final,
//! naming the proxy and what it said), a proxy that is down (retried, then
//! connected once it is up), NO_PROXY, a reconnect through the proxy after
//! the server restarts, and credentials nowhere in what the machine shows.
//!
//! That a connection goes through the proxy is shown by killing the proxy:
//! the connection breaks.

mod common;
mod pki;
mod proxies;

use common::{
    connect, echo, fast, logs::Logs, shutdown, wait_for_final, wait_for_state, wait_for_state_where,
};
use pki::{Ca, tls_echo};
use proxies::{CONNECT, PASSWORD, Proxy, USER, free_port, microsocks, tinyproxy};
use ws_machine::{Builder, Error, Machine, State};
use wsm_server::{Config, Server};

/// Kills the proxy and checks that the machine's connection breaks.
async fn breaks_without(proxy: Proxy, machine: &mut Machine) {
    proxy.kill();
    let seen = wait_for_state(machine, State::Disconnected).await;
    assert!(seen.last().is_some_and(|s| s.error.is_some()), "{seen:?}");
}

/// A wss echo server with a certificate for 127.0.0.1 from a new CA;
/// returns its URL and the CA.
async fn wss_server() -> (String, Ca) {
    let ca = Ca::new("test CA");
    let port = tls_echo(&ca.server(&["127.0.0.1"]), None).await;
    (format!("wss://127.0.0.1:{port}/"), ca)
}

#[tokio::test]
async fn ws_through_tinyproxy() {
    let server = Server::start(Config::default()).expect("server");
    let proxy = tinyproxy(free_port());
    let mut machine = connect(fast(server.url()).proxy(proxy.url())).await;
    echo(&mut machine, "through CONNECT").await;
    let target = format!("CONNECT 127.0.0.1:{}", server.addr().port());
    // Fails the test if no such line is logged within its bound.
    proxy.wait_for_lines(&target, 1);
    breaks_without(proxy, &mut machine).await;
    shutdown(machine).await;
}

#[tokio::test]
async fn wss_through_tinyproxy_is_tls_end_to_end() {
    let (url, ca) = wss_server().await;
    let proxy = tinyproxy(free_port());
    let mut machine = connect(fast(&url).proxy(proxy.url()).ca_pem(ca.pem())).await;
    echo(&mut machine, "through CONNECT, encrypted").await;
    // The proxy saw a CONNECT and nothing of the HTTP upgrade inside it.
    assert_eq!(proxy.wait_for_lines(CONNECT, 1).len(), 1);
    let log = proxy.log();
    assert!(!log.iter().any(|l| l.contains("GET ")), "{log:?}");
    breaks_without(proxy, &mut machine).await;
    shutdown(machine).await;
}

#[tokio::test]
async fn ws_through_microsocks_with_either_resolution() {
    let server = Server::start(Config::default()).expect("server");
    let proxy = microsocks(free_port());
    // socks5h: the proxy resolves "localhost"; socks5: resolved here.
    for scheme in ["socks5h", "socks5"] {
        let url = format!("ws://localhost:{}/", server.addr().port());
        let mut machine = connect(fast(url).proxy(proxy.url_as(scheme))).await;
        echo(&mut machine, scheme).await;
        shutdown(machine).await;
    }
    let mut machine = connect(fast(server.url()).proxy(proxy.url())).await;
    breaks_without(proxy, &mut machine).await;
    shutdown(machine).await;
}

#[tokio::test]
async fn wss_through_microsocks_is_tls_end_to_end() {
    let (url, ca) = wss_server().await;
    let proxy = microsocks(free_port());
    let mut machine = connect(fast(&url).proxy(proxy.url()).ca_pem(ca.pem())).await;
    echo(&mut machine, "through SOCKS5, encrypted").await;
    breaks_without(proxy, &mut machine).await;
    shutdown(machine).await;
}

/// The final status of a machine whose proxy refuses its credentials; the
/// proxy may not listen yet at the first attempts (those are retried).
async fn refused(builder: Builder) -> ws_machine::Status {
    let mut machine = builder.spawn().expect("valid options");
    wait_for_final(&mut machine).await
}

#[tokio::test]
async fn wrong_credentials_are_final_and_name_the_proxy() {
    let server = Server::start(Config::default()).expect("server");
    let http = tinyproxy(free_port());
    let last = refused(fast(server.url()).proxy(http.url_with(USER, "wrong-pass"))).await;
    match &last.error {
        Some(Error::ProxyRefused {
            proxy,
            answer,
            retryable,
            ..
        }) => {
            assert_eq!(&**proxy, format!("http://127.0.0.1:{}", http.port));
            // tinyproxy answers a CONNECT with bad credentials with 401;
            // other proxies say 407.
            assert!(
                answer.starts_with("HTTP 401") || answer.starts_with("HTTP 407"),
                "{answer}"
            );
            assert!(!retryable);
        }
        other => panic!("expected the proxy's refusal, got {other:?}"),
    }
    assert!(!last.to_string().contains("wrong-pass"), "{last}");

    let socks = microsocks(free_port());
    let last = refused(fast(server.url()).proxy(socks.url_with(USER, "wrong-pass"))).await;
    match &last.error {
        Some(Error::ProxyRefused {
            proxy, retryable, ..
        }) => {
            assert_eq!(&**proxy, format!("socks5h://127.0.0.1:{}", socks.port));
            assert!(!retryable);
        }
        other => panic!("expected the proxy's refusal, got {other:?}"),
    }
    assert!(last.to_string().contains("SOCKS5"), "{last}");
    assert_eq!(server.handshakes_seen(), 0, "nothing reached the server");
}

#[tokio::test]
async fn a_proxy_that_is_down_is_retried_until_it_is_up() {
    let server = Server::start(Config::default()).expect("server");
    let port = free_port();
    let mut machine = fast(server.url())
        .proxy(format!("http://{USER}:{PASSWORD}@127.0.0.1:{port}"))
        .spawn()
        .expect("valid options");
    let seen = wait_for_state(&mut machine, State::Waiting).await;
    let failed = seen
        .iter()
        .find_map(|s| s.error.as_ref())
        .expect("the failed attempt's error");
    assert!(matches!(failed, Error::Proxy { .. }), "{failed}");
    assert!(failed.is_retryable());
    assert!(
        failed
            .to_string()
            .starts_with(&format!("cannot reach proxy http://127.0.0.1:{port}: ")),
        "{failed}"
    );
    let proxy = tinyproxy(port);
    wait_for_state(&mut machine, State::Connected).await;
    echo(&mut machine, "the proxy is up").await;
    breaks_without(proxy, &mut machine).await;
    shutdown(machine).await;
}

#[tokio::test]
async fn no_proxy_hosts_are_reached_directly() {
    let server = Server::start(Config::default()).expect("server");
    // Nothing listens where the proxy should be: only a direct connection
    // can work.
    let dead_proxy = format!("http://127.0.0.1:{}", free_port());
    for list in ["127.0.0.1", "localhost, 127.0.0.0/8", "*"] {
        let mut machine = connect(fast(server.url()).proxy(&dead_proxy).no_proxy(list)).await;
        echo(&mut machine, list).await;
        shutdown(machine).await;
    }
    let mut machine = fast(server.url())
        .proxy(&dead_proxy)
        .no_proxy("example.com")
        .spawn()
        .expect("valid options");
    let seen = wait_for_state(&mut machine, State::Waiting).await;
    assert!(
        seen.iter()
            .any(|s| matches!(s.error, Some(Error::Proxy { .. }))),
        "{seen:?}"
    );
}

#[tokio::test]
async fn after_the_server_restarts_the_machine_reconnects_through_the_proxy() {
    let server = Server::start(Config::default()).expect("server");
    let addr = server.addr();
    let proxy = tinyproxy(free_port());
    let mut machine = connect(fast(server.url()).proxy(proxy.url())).await;
    echo(&mut machine, "before").await;
    server.stop().await;
    wait_for_state(&mut machine, State::Disconnected).await;
    let _server = Server::bind(addr, Config::default()).expect("the same address again");
    wait_for_state(&mut machine, State::Connected).await;
    echo(&mut machine, "after").await;
    let target = format!("CONNECT 127.0.0.1:{}", addr.port());
    let tunnels = proxy.wait_for_lines(&target, 2);
    assert!(tunnels.len() >= 2, "{tunnels:?}");
    breaks_without(proxy, &mut machine).await;
    shutdown(machine).await;
}

#[tokio::test]
async fn credentials_never_show() {
    let logs = Logs::default();
    let _guard = logs.capture(tracing_subscriber::filter::LevelFilter::TRACE, "");
    let server = Server::start(Config::default()).expect("server");
    let http = tinyproxy(free_port());
    let socks = microsocks(free_port());
    let mut shown = Vec::new();
    // The server's URL carries a user name and password too.
    let target = format!("ws://wsuser:ws-s3cret@{}/", server.addr());
    for (url, works) in [
        (http.url(), true),
        (http.url_with(USER, "wrong-pass"), false),
        (socks.url(), true),
        (socks.url_with(USER, "wrong-pass"), false),
    ] {
        let builder = fast(&target).proxy(&url).no_proxy("example.com");
        shown.push(format!("{builder:?}"));
        let mut machine = builder.spawn().expect("valid options");
        shown.push(format!("{machine:?}"));
        let statuses = if works {
            let seen = wait_for_state(&mut machine, State::Connected).await;
            echo(&mut machine, "hello").await;
            shutdown(machine).await;
            seen
        } else {
            wait_for_state_where(&mut machine, |s| s.is_final()).await
        };
        for status in statuses {
            shown.push(format!("{status} {status:?}"));
            if let Some(error) = status.error {
                let mut source: Option<&dyn std::error::Error> = Some(&error);
                while let Some(e) = source {
                    shown.push(format!("{e} {e:?}"));
                    source = e.source();
                }
            }
        }
    }
    let logs = logs.text();
    assert!(
        logs.contains("opening the tunnel"),
        "the logs were captured: {logs}"
    );
    shown.push(logs);
    for text in &shown {
        for secret in [PASSWORD, "wrong-pass", USER, "wsuser", "ws-s3cret"] {
            assert!(!text.contains(secret), "{secret:?} shown in: {text}");
        }
    }
}
