//! What the machine logs, and that no secret is ever in it: the logs of
//! runs that use every kind of credential (URL user info, query values,
//! `Authorization`, `Cookie`, a proxy's `Proxy-Authorization`, a server's
//! `Set-Cookie`), captured at TRACE from every crate, and everything the
//! machine shows (`Debug` and `Display` of the builder, the machine, its
//! statuses, errors and their sources, stats, leftovers) are searched for
//! them. Also: the spans (machine, connection) and that a healthy run logs
//! nothing at INFO or above.

mod common;
mod proxies;

use common::{command, echo, fast, logs::Logs, shutdown, wait_for_state, wait_for_state_where};
use proxies::{PASSWORD, USER, free_port, tinyproxy};
use tracing_subscriber::filter::LevelFilter;
use ws_machine::{Command, State, Status, http::HeaderValue};
use wsm_server::{Config, Rejection, Server};

/// `status` shown every way, with its error's chain of sources.
fn shown(status: &Status) -> Vec<String> {
    let mut shown = vec![format!("{status} {status:?}")];
    if let Some(error) = &status.error {
        let mut source: Option<&dyn std::error::Error> = Some(error);
        while let Some(e) = source {
            shown.push(format!("{e} {e:?}"));
            source = e.source();
        }
    }
    shown
}

const URL_PASSWORD: &str = "url-s3cret";
const URL_USER: &str = "url-user";
const QUERY_TOKEN: &str = "query-s3cret";
const BEARER: &str = "bearer-s3cret";
const COOKIE: &str = "cookie-s3cret";
const SET_COOKIE: &str = "set-cookie-s3cret";

#[tokio::test]
async fn no_secret_is_ever_logged_or_shown() {
    let logs = Logs::default();
    let _capture = logs.capture(LevelFilter::TRACE, "");
    let server = Server::start(Config::default()).expect("server starts");
    let proxy = tinyproxy(free_port());
    let url = format!(
        "ws://{URL_USER}:{URL_PASSWORD}@{}/feed?token={QUERY_TOKEN}&symbol=BTC",
        server.addr()
    );
    let builder = || {
        fast(&url)
            .proxy(proxy.url())
            .header(
                "Authorization",
                HeaderValue::from_str(&format!("Bearer {BEARER}")).expect("a header value"),
            )
            .header(
                "Cookie",
                HeaderValue::from_str(&format!("session={COOKIE}")).expect("a header value"),
            )
            .report_round_trips(true)
    };
    let mut shown_all = vec![format!("{:?}", builder())];

    // A run that connects, talks, measures a round trip, loses its
    // connection and comes back.
    let mut machine = builder().spawn().expect("valid options");
    shown_all.push(format!("{machine:?}"));
    let mut statuses = wait_for_state(&mut machine, State::Connected).await;
    echo(&mut machine, "hello").await;
    command(&machine, Command::Ping).await;
    statuses.extend(wait_for_state_where(&mut machine, |s| s.round_trip.is_some()).await);
    assert_eq!(server.close_all(), 1);
    statuses.extend(wait_for_state(&mut machine, State::Connected).await);
    shown_all.push(format!("{:?}", machine.stats()));
    shown_all.push(format!("{:?}", machine.stats_handle()));
    shown_all.push(format!("{:?}", shutdown(machine).await));

    // A run the server rejects, answering with a cookie of its own.
    server.reject_handshakes(Some(
        Rejection::unauthorized().header("Set-Cookie", format!("id={SET_COOKIE}")),
    ));
    let mut machine = builder().spawn().expect("valid options");
    statuses.extend(wait_for_state_where(&mut machine, Status::is_final).await);
    shown_all.push(format!("{:?}", machine.stats()));
    let rejected = statuses.last().expect("a final status");
    assert!(
        rejected
            .error
            .as_ref()
            .is_some_and(|e| e.to_string().contains("401")),
        "{rejected}"
    );
    for status in &statuses {
        shown_all.extend(shown(status));
    }

    let logs = logs.text();
    // The capture is not empty, and has the spans with what they name.
    for expected in [
        "machine{url=ws://***@127.0.0.1:",
        "connection{attempt=1 number=1}",
        "number=2",
        "round trip",
        "opening the tunnel",
    ] {
        assert!(
            logs.contains(expected),
            "{expected:?} not in the logs:\n{logs}"
        );
    }
    shown_all.push(logs);
    for text in &shown_all {
        for secret in [
            URL_PASSWORD,
            URL_USER,
            QUERY_TOKEN,
            BEARER,
            COOKIE,
            SET_COOKIE,
            PASSWORD,
            USER,
        ] {
            assert!(!text.contains(secret), "{secret:?} shown in:\n{text}");
        }
    }
}

#[tokio::test]
async fn a_healthy_run_logs_nothing_at_info_or_above() {
    let logs = Logs::default();
    let _capture = logs.capture(LevelFilter::DEBUG, "ws_machine");
    let server = Server::start(Config::default()).expect("server starts");
    let mut machine = fast(server.url())
        .ping_interval(common::ms(20))
        .report_round_trips(true)
        .spawn()
        .expect("valid options");
    wait_for_state(&mut machine, State::Connected).await;
    echo(&mut machine, "hello").await;
    // A keep-alive ping and its answer are logged.
    wait_for_state_where(&mut machine, |s| s.round_trip.is_some()).await;
    command(&machine, Command::Reconnect).await;
    wait_for_state(&mut machine, State::Connected).await;
    shutdown(machine).await;

    let logs = logs.text();
    for expected in [" DEBUG ", "status=CONNECTED", "ping", "round trip"] {
        assert!(
            logs.contains(expected),
            "{expected:?} not in the logs:\n{logs}"
        );
    }
    let loud: Vec<&str> = logs
        .lines()
        .filter(|line| {
            [" INFO ", " WARN ", " ERROR "]
                .iter()
                .any(|l| line.contains(l))
        })
        .collect();
    assert!(loud.is_empty(), "logged at INFO or above: {loud:#?}");
}
