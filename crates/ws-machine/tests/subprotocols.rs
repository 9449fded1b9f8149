//! Subprotocols against the in-process server: offered in order, the
//! server's choice reported with `Connected`, and a clear final error when
//! the server chooses one that was not offered, or none while one is
//! required.

mod common;

use common::{connect, echo, fast, shutdown, wait_for_final, wait_for_state};
use ws_machine::{Error, State};
use wsm_server::{Config, Server};

fn server(protocols: &[&str]) -> Server {
    Server::start(Config::default().protocols(protocols.iter().copied())).expect("server")
}

#[tokio::test]
async fn the_offer_goes_out_in_order_and_the_choice_is_reported() {
    let server = server(&["chat.v1", "chat.v2"]);
    let mut machine = fast(server.url())
        .protocols(["chat.v2", "chat.v1"])
        .spawn()
        .expect("valid options");
    let seen = wait_for_state(&mut machine, State::Connected).await;
    let connected = seen.last().expect("the Connected status");
    // The server takes the first one offered that it speaks: the offer's
    // order decides.
    assert_eq!(connected.protocol.as_deref(), Some("chat.v2"));
    assert_eq!(connected.to_string(), "CONNECTED (subprotocol chat.v2)");
    let offered = server.request_headers()[0]
        .get("sec-websocket-protocol")
        .expect("the offer")
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert_eq!(offered, "chat.v2, chat.v1");
    echo(&mut machine, "speaking chat.v2").await;
    shutdown(machine).await;
}

#[tokio::test]
async fn a_server_without_a_common_subprotocol_is_fine_unless_one_is_required() {
    let server = server(&["other"]);
    let mut machine = connect(fast(server.url()).protocols(["chat"])).await;
    echo(&mut machine, "no subprotocol").await;
    shutdown(machine).await;

    let mut required = fast(server.url())
        .protocols(["chat"])
        .require_protocol(true)
        .spawn()
        .expect("valid options");
    let last = wait_for_final(&mut required).await;
    match &last.error {
        Some(Error::Subprotocol { chosen, offered }) => {
            assert_eq!(*chosen, None);
            assert_eq!(offered, &["chat".to_owned()]);
        }
        other => panic!("expected a subprotocol error, got {other:?}"),
    }
    assert!(last.to_string().contains("one is required"), "{last}");
    // Final: one attempt, no retry.
    assert_eq!(server.handshakes_seen(), 2);
}

#[tokio::test]
async fn a_choice_that_was_not_offered_is_a_final_error() {
    let server = server(&[]);
    server.force_protocol(Some("mqtt"));
    let mut machine = fast(server.url())
        .protocols(["chat.v2", "chat.v1"])
        .spawn()
        .expect("valid options");
    let last = wait_for_final(&mut machine).await;
    let error = last.error.clone().expect("an error");
    assert!(!error.is_retryable());
    assert_eq!(
        error.to_string(),
        r#"server chose subprotocol "mqtt", which was not offered (offered: "chat.v2", "chat.v1"; not retried)"#
    );
    assert_eq!(server.handshakes_seen(), 1);

    // Offering nothing and getting a choice fails the same way.
    let mut unoffered = fast(server.url()).spawn().expect("valid options");
    let last = wait_for_final(&mut unoffered).await;
    assert!(
        matches!(&last.error, Some(Error::Subprotocol { chosen: Some(c), offered }) if c == "mqtt" && offered.is_empty()),
        "{last}"
    );
}

#[tokio::test]
async fn the_choice_is_reported_again_after_a_reconnect() {
    let server = server(&["chat"]);
    let mut machine = connect(fast(server.url()).protocols(["chat"])).await;
    server.drop_all();
    let seen = wait_for_state(&mut machine, State::Connected).await;
    assert_eq!(
        seen.last().and_then(|s| s.protocol.as_deref()),
        Some("chat")
    );
    // Only Connected carries it.
    assert!(
        seen.iter()
            .filter(|s| s.state != State::Connected)
            .all(|s| s.protocol.is_none())
    );
    shutdown(machine).await;
}
