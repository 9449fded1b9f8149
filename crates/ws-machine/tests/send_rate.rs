//! The outgoing rate limit against a server on 127.0.0.1 that closes a
//! connection exceeding its rate (code 1008), as exchanges do. (The exact
//! schedule is checked on the paused clock in `paused_clock.rs`.)

mod common;

use common::{connect, fast, ms, recv, send, show, status_within, wait_for_state};
use ws_machine::{Error, State};
use wsm_server::{Config, Server};

const LIMIT: u32 = 5;

fn limited() -> Server {
    Server::start(Config::default().max_rate(Some((LIMIT, ms(200))))).expect("server starts")
}

#[tokio::test]
async fn a_burst_over_the_limit_is_closed_by_the_server() {
    let server = limited();
    let mut machine = connect(fast(server.url())).await;
    for n in 0..20 {
        send(&machine, format!("order {n}")).await;
    }
    let seen = wait_for_state(&mut machine, State::Disconnected).await;
    assert!(
        matches!(
            seen.last().and_then(|s| s.error.as_ref()),
            Some(Error::Closed { code: 1008, .. })
        ),
        "{}",
        show(&seen)
    );
}

/// Paced with a wide margin (500 ms windows against the server's 200 ms,
/// as one would set it against a real exchange: arrival times jitter, and
/// more so on a busy machine).
#[tokio::test]
async fn paced_under_the_limit_every_message_gets_through_on_one_connection() {
    let server = limited();
    let mut machine = connect(fast(server.url()).send_rate(LIMIT, ms(500))).await;
    for n in 0..20 {
        send(&machine, format!("order {n}")).await;
    }
    for n in 0..20 {
        let back = recv(&mut machine).await;
        assert_eq!(back.as_text(), Some(format!("order {n}").as_str()));
    }
    let change = status_within(&mut machine, ms(50)).await;
    assert!(change.is_none(), "unexpected {change:?}");
    assert_eq!(server.connections_accepted(), 1);
}
