//! A fleet recovers fast after an outage: 2,000 machines at their
//! defaults, connected to the in-process server on 127.0.0.1, lose it for
//! 2 s (it stops, dropping every connection, and starts again on the same
//! port) and must all be connected again within twice the outage plus a
//! margin. Their refused attempts fail at once, so each piles up failures;
//! the backoff never waits longer than the time already spent disconnected,
//! so the failures do not stretch the waits past the outage
//! (`docs/design.md`, "Backoff").
//!
//! The test prints what it measured (run it with `-- --nocapture`): when
//! the machines were back, counted from the server's return, and how soon
//! after the loss each retried. Only the functional bound is asserted.
//! About 4,000 files are open at the peak (both ends of every connection).

mod common;

use std::time::Duration;

use common::fleet::{Event, Fleet, Seen, distribution, expect_open_files};
use tokio::time::{Instant, sleep_until};
use ws_machine::{Machine, State};
use wsm_server::{Config, Server};

const MACHINES: usize = 2_000;

/// How long the server is away.
const OUTAGE: Duration = Duration::from_secs(2);

/// Beyond twice the outage: stopping the server, 2,000 handshakes on two
/// cores shared with whatever else runs, and a SYN retransmitted (1 s) if
/// the listen backlog overflowed.
const MARGIN: Duration = Duration::from_secs(2);

/// Bounds the fleet's first connections and the settling before the
/// outage: 2,000 machines connecting at once on a loaded machine.
const SETTLE: Duration = Duration::from_secs(30);

/// One machine's recovery, as its watcher saw it.
#[derive(Debug, Default, Clone, Copy)]
struct Recovery {
    /// The `Disconnected` that reported the loss.
    lost: Option<Instant>,
    /// The first status after it, and when.
    next: Option<(State, Instant)>,
    /// Attempts from the loss to the reconnection.
    attempts: u32,
    /// Connected again.
    back: Option<Instant>,
}

impl Recovery {
    /// Takes an event after the server stopped; whether the machine is
    /// back with it.
    fn see(&mut self, event: Event) -> bool {
        let Seen::Status(state) = event.seen else {
            return false;
        };
        if self.back.is_some() {
            return false;
        }
        match self.lost {
            None => {
                if state == State::Disconnected {
                    self.lost = Some(event.at);
                }
                false
            }
            Some(_) => {
                self.next.get_or_insert((state, event.at));
                match state {
                    State::Connecting => self.attempts += 1,
                    State::Connected => self.back = Some(event.at),
                    _ => {}
                }
                self.back.is_some()
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_is_back_within_twice_the_outage() {
    expect_open_files(3 * MACHINES as u64);
    let server = Server::start(Config::default()).expect("the server starts");
    let addr = server.addr();
    let url = server.url();
    let mut fleet = Fleet::spawn(MACHINES, |_| Machine::builder(url.clone()));

    // Everyone connected.
    let mut connected = vec![false; MACHINES];
    let mut count = 0;
    let mut last_connected = Instant::now();
    let all = fleet
        .until(Instant::now() + SETTLE, |event| {
            if event.seen == Seen::Status(State::Connected) && !connected[event.machine] {
                connected[event.machine] = true;
                count += 1;
                last_connected = event.at;
            }
            count == MACHINES
        })
        .await;
    assert!(all, "{count} of {MACHINES} connected within {SETTLE:?}");

    // Every connection healthy (docs/design.md, "A connection is
    // healthy"): two data messages, and up for 500 ms. Not a wait for
    // anything to happen: the health rule counts the time.
    assert_eq!(server.send_all("one"), MACHINES);
    assert_eq!(server.send_all("two"), MACHINES);
    let mut messages = 0;
    let delivered = fleet
        .until(Instant::now() + SETTLE, |event| {
            messages += usize::from(event.seen == Seen::Message);
            messages == 2 * MACHINES
        })
        .await;
    assert!(delivered, "{messages} of {} messages arrived", 2 * MACHINES);
    sleep_until(last_connected + Duration::from_millis(600)).await;

    // The outage.
    let stopped = Instant::now();
    server.stop().await;
    let mut recovery = vec![Recovery::default(); MACHINES];
    let mut back = 0;
    let over_early = fleet
        .until(stopped + OUTAGE, |event| {
            back += usize::from(recovery[event.machine].see(event));
            false
        })
        .await;
    assert!(!over_early);
    assert_eq!(back, 0, "connected while the server was away");
    let server = Server::bind(addr, Config::default()).expect("the same port again");
    let restarted = Instant::now();

    let deadline = stopped + 2 * OUTAGE + MARGIN;
    let all_back = fleet
        .until(deadline, |event| {
            back += usize::from(recovery[event.machine].see(event));
            back == MACHINES
        })
        .await;

    let mut after_restart: Vec<Duration> = recovery
        .iter()
        .filter_map(|r| r.back.map(|at| at.saturating_duration_since(restarted)))
        .collect();
    let mut retried_after_loss: Vec<Duration> = recovery
        .iter()
        .filter_map(|r| Some(r.next?.1 - r.lost?))
        .collect();
    let mut attempts: Vec<u32> = recovery.iter().map(|r| r.attempts).collect();
    attempts.sort_unstable();
    println!(
        "{MACHINES} machines at their defaults, server away {OUTAGE:?} \
         (restarted {} ms after the stop):",
        (restarted - stopped).as_millis()
    );
    println!(
        "  back after the server returned: {} ({} of {MACHINES})",
        distribution(&mut after_restart),
        after_restart.len()
    );
    println!(
        "  first retry after the loss: {}",
        distribution(&mut retried_after_loss)
    );
    println!(
        "  attempts from the loss to the reconnection: median {}, most {}; \
         the returned server accepted {} connections",
        attempts[MACHINES / 2],
        attempts[MACHINES - 1],
        server.connections_accepted()
    );

    // Healthy connections lost: every machine retried at once.
    let not_at_once: Vec<_> = recovery
        .iter()
        .filter(|r| !matches!(r.next, Some((State::Connecting, _))))
        .take(5)
        .collect();
    assert!(
        not_at_once.is_empty(),
        "machines that did not retry at once: {not_at_once:?}"
    );
    assert!(
        all_back,
        "{back} of {MACHINES} connected again within {:?} of the stop \
         (twice the outage and {MARGIN:?})",
        deadline - stopped
    );
    fleet.shut_down(Duration::from_secs(30)).await;
    server.stop().await;
}
