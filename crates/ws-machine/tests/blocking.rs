//! The blocking machine (`ws_machine::blocking`), used as a program without
//! a runtime uses it: from plain threads, never inside a tokio runtime. The
//! echo server runs on 127.0.0.1 on a runtime of its own, as another
//! process would.
//!
//! Every wait is bounded: the machine's own `recv_timeout` and
//! `status_timeout` where a test waits for something, and a watchdog that
//! aborts the test process if a test runs for longer than `20 x WAIT` (a
//! blocking call that never returns).

mod common;

use std::{
    sync::mpsc::RecvTimeoutError,
    thread,
    time::{Duration, Instant},
};

use common::{WAIT, fast, ms, number, numbered};
use ws_machine::{
    Command, Error, State,
    blocking::Machine,
    channel::{SendError, TrySendError},
};
use wsm_server::{Config, Server};

/// Nothing listens on port 1 of 127.0.0.1: every attempt is refused.
const REFUSED: &str = "ws://127.0.0.1:1/";

/// The echo server, on a runtime of its own (dropped after the server).
struct EchoServer {
    server: Server,
    runtime: tokio::runtime::Runtime,
}

impl EchoServer {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        // Entered only to start it: the test's thread stays outside.
        let server = {
            let _in = runtime.enter();
            Server::start(Config::default()).expect("server starts")
        };
        Self { server, runtime }
    }

    fn url(&self) -> String {
        self.server.url()
    }

    fn open_connections_reach(&self, n: usize) -> bool {
        self.runtime
            .block_on(self.server.wait_for_open_connections(n, WAIT))
    }
}

/// Runs `test` on this thread; a watchdog aborts the process if it has not
/// ended within `20 x WAIT`.
fn bounded(test: impl FnOnce()) {
    let limit = WAIT * 20;
    let (done, watch) = std::sync::mpsc::channel::<()>();
    thread::spawn(move || {
        if let Err(RecvTimeoutError::Timeout) = watch.recv_timeout(limit) {
            eprintln!(
                "the test is still running after {limit:?}: aborting (a blocking call hung?)"
            );
            std::process::abort();
        }
    });
    test();
    drop(done);
}

/// Reads statuses until one is in `state`, each within [`WAIT`].
fn wait_for(machine: &mut Machine, state: State) {
    loop {
        match machine.status_timeout(WAIT) {
            Ok(status) if status.state == state => return,
            Ok(status) => assert!(!status.is_final(), "stopped first: {status}"),
            Err(e) => panic!("no {state:?} status within {WAIT:?}: {e:?}"),
        }
    }
}

fn connected(url: &str) -> Machine {
    let mut machine = fast(url).spawn_blocking().expect("valid options");
    wait_for(&mut machine, State::Connected);
    machine
}

#[test]
fn the_machine_and_its_senders_go_to_other_threads() {
    fn send<T: Send>() {}
    fn share<T: Send + Sync>() {}
    send::<Machine>();
    share::<ws_machine::blocking::Sender>();
}

#[test]
fn an_echo_round_trip_from_a_plain_thread() {
    bounded(|| {
        let server = EchoServer::start();
        let mut machine = connected(&server.url());
        machine.send("hello").expect("the machine runs");
        let echo = machine.recv_timeout(WAIT).expect("an echo");
        assert_eq!(echo.as_text(), Some("hello"));
        machine.try_send(numbered(7)).expect("room");
        let echo = machine.recv_timeout(WAIT).expect("an echo");
        assert_eq!(number(&echo), Some(7));
        machine.command(Command::Ping).expect("the machine runs");
        let leftovers = machine.shutdown();
        assert!(leftovers.unsent.is_empty(), "{leftovers:?}");
        assert!(leftovers.received.is_empty(), "{leftovers:?}");
        // The connection was closed, and the machine's runtime is gone.
        assert!(
            server.open_connections_reach(0),
            "the connection stays open"
        );
    });
}

#[test]
fn one_thread_sends_while_another_receives() {
    const COUNT: u64 = 1_000;
    bounded(|| {
        let server = EchoServer::start();
        // A queue of 8: the sending thread blocks on a full queue often.
        let mut machine = fast(server.url())
            .queue_capacity(8)
            .spawn_blocking()
            .expect("valid options");
        let sender = machine.sender();
        thread::scope(|threads| {
            threads.spawn(move || {
                for n in 0..COUNT {
                    sender.send(numbered(n)).expect("the machine runs");
                }
            });
            let receiver = threads.spawn(|| {
                for n in 0..COUNT {
                    let echo = machine.recv_timeout(WAIT).expect("an echo");
                    assert_eq!(number(&echo), Some(n), "{echo:?}");
                }
            });
            receiver.join().expect("every echo, in order");
        });
        // Statuses were left unread meanwhile: the machine did not wait.
        let mut states = Vec::new();
        while let Ok(status) = machine.try_status() {
            states.push(status.state);
        }
        assert_eq!(states, [State::Connecting, State::Connected]);
        assert!(machine.shutdown().unsent.is_empty());
    });
}

#[test]
fn recv_timeout_gives_up_on_time_and_loses_nothing() {
    bounded(|| {
        let server = EchoServer::start();
        let mut machine = connected(&server.url());
        let wait = ms(200);
        let start = Instant::now();
        assert!(matches!(
            machine.recv_timeout(wait),
            Err(RecvTimeoutError::Timeout)
        ));
        let waited = start.elapsed();
        assert!(waited >= wait, "gave up after {waited:?}");
        assert!(waited < WAIT, "gave up only after {waited:?}");
        assert_eq!(
            machine.status_timeout(ms(10)).map(|s| s.state),
            Err(RecvTimeoutError::Timeout)
        );
        // A message that comes after a timeout is there for the next call.
        machine.send("late").expect("the machine runs");
        let echo = machine.recv_timeout(WAIT).expect("the echo");
        assert_eq!(echo.as_text(), Some("late"));
        drop(machine);
    });
}

#[test]
fn shutdown_hands_back_what_was_never_sent() {
    bounded(|| {
        let machine = fast(REFUSED).spawn_blocking().expect("valid options");
        let sender = machine.sender();
        for n in 0..3 {
            machine.send(numbered(n)).expect("the machine runs");
        }
        machine.try_send(numbered(3)).expect("room");
        sender.send(numbered(4)).expect("the machine runs");
        let leftovers = machine.shutdown();
        let unsent: Vec<_> = leftovers.unsent.iter().map(number).collect();
        assert_eq!(unsent, [0, 1, 2, 3, 4].map(Some));
        // The machine is gone: a send hands the message back.
        let Err(SendError(back)) = sender.send("after") else {
            panic!("a stopped machine took a message");
        };
        assert_eq!(back.as_text(), Some("after"));
        assert!(matches!(
            sender.try_send("after"),
            Err(TrySendError::Closed(_))
        ));
    });
}

#[test]
fn a_machine_that_gave_up_ends_every_channel() {
    bounded(|| {
        let mut machine = fast(REFUSED)
            .max_attempts(1)
            .spawn_blocking()
            .expect("valid options");
        // To the final status: the machine gives up after one attempt.
        loop {
            let status = machine.status_timeout(WAIT).expect("a status");
            if status.is_final() {
                assert!(
                    matches!(status.error, Some(Error::GaveUp { .. })),
                    "{status}"
                );
                break;
            }
        }
        assert!(matches!(
            machine.status_timeout(WAIT),
            Err(RecvTimeoutError::Disconnected)
        ));
        assert!(matches!(
            machine.recv_timeout(WAIT),
            Err(RecvTimeoutError::Disconnected)
        ));
        assert!(machine.recv().is_none());
        assert!(machine.status().is_none());
        let sender = machine.sender();
        // Returns once the machine's task and thread have ended.
        let leftovers = machine.shutdown();
        assert!(leftovers.unsent.is_empty(), "nothing was queued");
        let Err(SendError(back)) = sender.send("late") else {
            panic!("a stopped machine took a message");
        };
        assert_eq!(back.as_text(), Some("late"));
    });
}

#[test]
fn started_inside_a_runtime_it_says_so_instead_of_panicking() {
    bounded(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let result = runtime.block_on(async { fast(REFUSED).spawn_blocking() });
        let Err(error) = result else {
            panic!("started inside a runtime");
        };
        assert!(matches!(error, Error::InsideRuntime), "{error:?}");
        assert!(!error.is_retryable());
        let text = error.to_string();
        assert!(text.contains("inside a tokio runtime"), "{text}");
        assert!(text.contains("Builder::spawn"), "says what to use: {text}");
        // Also from a thread that only entered the runtime.
        let _in = runtime.enter();
        assert!(matches!(
            fast(REFUSED).spawn_blocking(),
            Err(Error::InsideRuntime)
        ));
    });
}

#[test]
fn dropping_it_closes_the_connection_and_returns_promptly() {
    bounded(|| {
        let server = EchoServer::start();
        let close_timeout = ms(300);
        let machine = connected(&server.url());
        assert!(server.open_connections_reach(1));
        let start = Instant::now();
        drop(machine);
        let took = start.elapsed();
        // At most the close timeout and the one-second margin; generous here.
        assert!(
            took < close_timeout + Duration::from_secs(1) + WAIT,
            "the drop took {took:?}"
        );
        assert!(
            server.open_connections_reach(0),
            "the connection stays open"
        );

        // Dropped while it waits between refused attempts: promptly too.
        let machine = fast(REFUSED).spawn_blocking().expect("valid options");
        machine
            .send("lost with the machine")
            .expect("the machine runs");
        let start = Instant::now();
        drop(machine);
        assert!(
            start.elapsed() < WAIT,
            "the drop took {:?}",
            start.elapsed()
        );
    });
}
