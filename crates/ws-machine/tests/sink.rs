//! `output` as a `futures` `Sink` (`Sender::sink`, `Sender::into_sink`),
//! against a real machine and the echo server on 127.0.0.1: a stream
//! forwarded into it is echoed whole and in order, with a queue small
//! enough that the sink waits for room again and again; and a stopped
//! machine's sink hands the message back.

mod common;

use common::{WAIT, connect, echo, fast, number, numbered, recv, wait_for_final};
use futures_util::{SinkExt, StreamExt, stream};
use tokio::time::timeout;
use ws_machine::{Command, Machine, channel::SendError};
use wsm_server::{Config, Server};

const COUNT: u64 = 500;

/// Reads `COUNT` echoes and checks they are `0..COUNT` in order.
async fn expect_echoes(machine: &mut Machine) {
    for n in 0..COUNT {
        let message = recv(machine).await;
        assert_eq!(number(&message), Some(n), "echo {n}: {message:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_forwarded_into_output_is_echoed_whole_and_in_order() {
    let server = Server::start(Config::default()).expect("server starts");
    // A queue of 4 for 500 messages: the sink waits for room all along.
    let mut machine = connect(fast(server.url()).queue_capacity(4)).await;
    let messages = stream::iter(0..COUNT).map(|n| Ok(numbered(n)));
    // `forward` closes the sink at the end, which drops its sender (a clone
    // of `output`); the machine runs on.
    let forward = tokio::spawn(messages.forward(machine.output.clone().into_sink()));
    expect_echoes(&mut machine).await;
    timeout(WAIT, forward)
        .await
        .expect("forward ends")
        .expect("no panic")
        .expect("the machine runs");
    assert_eq!(server.messages_received(), COUNT);
    echo(&mut machine, "still connected").await;
    common::shutdown(machine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_all_through_a_sink_of_output_is_echoed_whole_and_in_order() {
    let server = Server::start(Config::default()).expect("server starts");
    let mut machine = connect(fast(server.url()).queue_capacity(4)).await;
    let mut sink = machine.output.sink();
    let send_all = tokio::spawn(async move {
        let mut messages = stream::iter(0..COUNT).map(|n| Ok(numbered(n)));
        sink.send_all(&mut messages).await
    });
    expect_echoes(&mut machine).await;
    timeout(WAIT, send_all)
        .await
        .expect("send_all ends")
        .expect("no panic")
        .expect("the machine runs");
    common::shutdown(machine).await;
}

#[tokio::test]
async fn a_stopped_machines_sink_hands_the_message_back() {
    let server = Server::start(Config::default()).expect("server starts");
    let mut machine = connect(fast(server.url())).await;
    let mut sink = machine.output.sink();
    sink.send(numbered(0)).await.expect("the machine runs");
    assert_eq!(number(&recv(&mut machine).await), Some(0));
    common::command(&machine, Command::Quit).await;
    wait_for_final(&mut machine).await;
    timeout(WAIT, &mut machine.stopped)
        .await
        .expect("the machine's task ends");
    // The machine is gone: the message comes back, from `send` ...
    let Err(SendError(back)) = sink.send(numbered(1)).await else {
        panic!("a stopped machine took a message");
    };
    assert_eq!(number(&back), Some(1));
    // ... and from `forward`, which stops at the first one.
    let messages = stream::iter(2..5).map(|n| Ok(numbered(n)));
    let Err(SendError(back)) = messages.forward(machine.output.clone().into_sink()).await else {
        panic!("a stopped machine took a message");
    };
    assert_eq!(number(&back), Some(2));
}
