//! Several URLs: failing over to fallback URLs, and a URL computed for every
//! attempt, on 127.0.0.1. Statuses say which URL each attempt used.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use common::{WAIT, closed_port_url, echo, fast, show, wait_for_state};
use tokio::{net::TcpListener, time::timeout};
use ws_machine::{Error, State};
use wsm_server::{Config, Server};

/// The primary URL refuses connections: the attempt fails there, the next
/// goes to the fallback, and each status names its URL. A healthy
/// connection lost at the fallback is tried again at the fallback first.
#[tokio::test]
async fn a_refused_primary_fails_over_to_the_fallback_and_stays_there() {
    let server = Server::start(Config::default()).expect("server starts");
    let down = closed_port_url().await;
    let mut machine = fast(down.clone())
        .min_uptime(Duration::ZERO) // every connection that opens is healthy
        .fallback_urls([server.url()])
        .spawn()
        .expect("valid options");
    let seen = wait_for_state(&mut machine, State::Connected).await;
    let failed = seen
        .iter()
        .find(|s| s.state == State::Disconnected)
        .expect("a failed attempt");
    assert!(
        matches!(failed.error, Some(Error::Connect { .. })),
        "{}",
        show(&seen)
    );
    assert_eq!(
        failed.url.as_deref(),
        Some(down.as_str()),
        "{}",
        show(&seen)
    );
    let connected = seen.last().expect("connected");
    assert_eq!(connected.url.as_deref(), Some(server.url().as_str()));
    echo(&mut machine, "via the fallback").await;

    assert_eq!(server.drop_all(), 1);
    let seen = wait_for_state(&mut machine, State::Connected).await;
    let urls: Vec<_> = seen
        .iter()
        .filter(|s| s.state == State::Disconnected)
        .map(|s| s.url.as_deref())
        .collect();
    assert_eq!(urls, [Some(server.url().as_str())], "{}", show(&seen));
    assert_eq!(server.connections_accepted(), 2);
    echo(&mut machine, "still there").await;
}

/// A URL function is called for every attempt: each connection carries the
/// token of its moment, and statuses show the URL without it.
#[tokio::test]
async fn a_computed_url_is_asked_for_on_every_attempt() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("ws://{}/feed", listener.local_addr().expect("address"));
    let calls = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let computed = base.clone();
    let mut machine = fast(base.clone())
        .url_fn(move || {
            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
            format!("{computed}?token=s3cret{n}")
        })
        .spawn()
        .expect("valid options");
    for n in 1..=2 {
        let (stream, _) = timeout(WAIT, listener.accept())
            .await
            .expect("a connection in time")
            .expect("accept");
        let (request, ws) = timeout(WAIT, tokio_websockets::ServerBuilder::new().accept(stream))
            .await
            .expect("an upgrade in time")
            .expect("upgrade");
        assert_eq!(
            request.uri().path_and_query().map(|p| p.as_str()),
            Some(format!("/feed?token=s3cret{n}").as_str())
        );
        let seen = wait_for_state(&mut machine, State::Connected).await;
        let shown = seen.last().and_then(|s| s.url.clone());
        assert_eq!(shown.as_deref(), Some(format!("{base}?token=***").as_str()));
        assert!(!show(&seen).contains("s3cret"), "{}", show(&seen));
        drop(ws);
    }
    assert_eq!(calls.load(Ordering::Relaxed), 2);
}

/// A URL function that returns something that is not a URL stops the
/// machine: nothing else would fix it.
#[tokio::test]
async fn a_computed_url_that_is_not_a_url_is_final() {
    let mut machine = fast("ws://127.0.0.1:9/")
        .url_fn(|| "127.0.0.1:9/feed".to_owned())
        .spawn()
        .expect("valid options");
    let seen = wait_for_state(&mut machine, State::Disconnected).await;
    let last = seen.last().expect("a status");
    assert!(last.is_final(), "{}", show(&seen));
    assert!(
        matches!(last.error, Some(Error::InvalidUrl { .. })),
        "{}",
        show(&seen)
    );
}

/// A primary that accepts the upgrade and closes at once (in maintenance)
/// is not healthy: the next attempt fails over to the fallback, and the
/// machine stays there.
#[tokio::test]
async fn a_primary_that_closes_at_once_fails_over_too() {
    let primary = Server::start(Config::default()).expect("server starts");
    primary.accept_then_close(true);
    let fallback = Server::start(Config::default()).expect("server starts");
    let mut machine = fast(primary.url())
        .fallback_urls([fallback.url()])
        .spawn()
        .expect("valid options");
    // Connected at the primary (the upgrade works), lost, then connected
    // at the fallback: a few statuses, bounded.
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.extend(wait_for_state(&mut machine, State::Connected).await);
        if seen.last().and_then(|s| s.url.as_deref()) == Some(fallback.url().as_str()) {
            break;
        }
    }
    let lost: Vec<_> = seen
        .iter()
        .filter(|s| s.state == State::Disconnected)
        .map(|s| s.url.as_deref())
        .collect();
    assert_eq!(lost, [Some(primary.url().as_str())], "{}", show(&seen));
    echo(&mut machine, "at the fallback").await;
    assert_eq!(
        primary.connections_accepted(),
        1,
        "tried once, then failed over"
    );
}
