//! Text and binary modes: a switch sent before a message applies to it,
//! also when the switch and the message follow each other at once (commands
//! and messages travel on different channels, and the machine serves
//! commands first).

mod common;

use common::{connect, recv, shutdown};
use ws_machine::{Command, Machine, Message};
use wsm_server::{Config, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mode_switch_applies_to_the_next_plain_message() {
    let server = Server::start(Config::default()).expect("server");
    let mut machine = connect(Machine::builder(server.url())).await;
    let mut wrong = Vec::new();
    for round in 0..200 {
        let text = round % 2 == 0;
        let switch = if text {
            Command::UseText
        } else {
            Command::UseBinary
        };
        machine.command.send(switch).await.expect("running");
        machine
            .output
            .send(Message::from(b"plain".to_vec()))
            .await
            .expect("running");
        let echo = recv(&mut machine).await;
        if echo.is_text() != text {
            wrong.push(round);
        }
    }
    assert!(
        wrong.is_empty(),
        "sent in the previous mode in rounds {wrong:?}"
    );
    let leftovers = shutdown(machine).await;
    assert!(leftovers.unsent.is_empty());
}

#[tokio::test]
async fn explicit_kinds_ignore_the_mode() {
    let server = Server::start(Config::default()).expect("server");
    let mut machine = Machine::new(&server.url(), http::HeaderMap::new()).expect("valid");
    machine
        .command
        .send(Command::UseText)
        .await
        .expect("running");
    for message in [Message::binary(&b"b"[..]), Message::text("t")] {
        machine.output.send(message).await.expect("running");
    }
    let first = recv(&mut machine).await;
    let second = recv(&mut machine).await;
    assert!(first.is_binary() && first.as_ref() == b"b");
    assert_eq!(second.as_text(), Some("t"));
    shutdown(machine).await;
}
