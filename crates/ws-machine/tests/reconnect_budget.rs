//! A shared reconnect budget paces a fleet: 1,000 machines share one
//! [`ReconnectBudget`] of 250 attempts a second after a burst of 50,
//! connect to the in-process server on 127.0.0.1, lose it for 1 s (it
//! stops, dropping every connection, and starts again on the same port)
//! and all reconnect. Every connection counts as healthy here
//! (`min_uptime(0)`), so on the loss every machine wants to retry at once:
//! the herd the budget must pace.
//!
//! What is checked: the server's accepted connections per window, over
//! the first connections and the reconnections, and the attempts the
//! machines reported (`Connecting`, refused ones included) per window,
//! stay within the budget (its burst, its rate over the window, and a
//! stated allowance for the time between an attempt's start and its
//! observation); every machine reconnects. The test prints the busiest
//! windows (`-- --nocapture`).

mod common;

use std::time::Duration;

use common::fleet::{Fleet, Seen, busiest, expect_open_files};
use tokio::time::Instant;
use ws_machine::{Machine, ReconnectBudget, State};
use wsm_server::{Config, Server};

const MACHINES: usize = 1_000;
const RATE: f64 = 250.0;
const BURST: u32 = 50;
const OUTAGE: Duration = Duration::from_secs(1);

/// How late an attempt may be seen after its turn (the server accepts it,
/// or a watcher reads its status, on two cores shared with whatever else
/// runs): a window of `w` may then hold the turns of `w + LATE`.
const LATE: Duration = Duration::from_millis(200);

/// Bounds each phase: 1,000 attempts at 250 a second take 3.8 s.
const PHASE: Duration = Duration::from_secs(30);

/// The most attempts the budget lets start within a window of `width`,
/// as they may be observed.
fn allowed(width: Duration) -> usize {
    let turns = f64::from(BURST) + RATE * (width + LATE).as_secs_f64();
    turns.floor() as usize
}

/// Checks every window of `width` in `times` (sorted); returns the busiest.
fn check(what: &str, times: &[Instant], width: Duration) -> usize {
    let most = busiest(times, width);
    println!(
        "  {what}: at most {most} within {} ms (allowed {})",
        width.as_millis(),
        allowed(width)
    );
    assert!(
        most <= allowed(width),
        "{what}: {most} within {width:?}, over the budget ({} allowed)",
        allowed(width)
    );
    most
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_budget_paces_a_fleet_through_a_restart() {
    expect_open_files(3 * MACHINES as u64);
    let budget = ReconnectBudget::new(RATE, BURST).expect("a valid budget");
    let server = Server::start(Config::default()).expect("the server starts");
    let addr = server.addr();
    let url = server.url();
    let spawning = Instant::now();
    let mut fleet = Fleet::spawn(MACHINES, |_| {
        Machine::builder(url.clone())
            .reconnect_budget(budget.clone())
            .min_uptime(Duration::ZERO)
    });
    // Turns come back while the fleet is being spawned (slowly, on a busy
    // machine): those machines find one free at once.
    let spawned_in = spawning.elapsed();

    let mut attempts = Vec::new();
    let mut first_status = vec![None; MACHINES];
    let mut connected = 0;
    let all = fleet
        .until(Instant::now() + PHASE, |event| {
            let Seen::Status(state) = event.seen else {
                return false;
            };
            first_status[event.machine].get_or_insert(state);
            match state {
                State::Connecting => attempts.push(event.at),
                State::Connected => connected += 1,
                _ => {}
            }
            connected == MACHINES
        })
        .await;
    assert!(all, "{connected} of {MACHINES} connected within {PHASE:?}");
    // All but the burst waited for their turn before their first attempt.
    let waited = first_status
        .iter()
        .filter(|s| **s == Some(State::Waiting))
        .count();
    let free_turns = BURST as usize + (RATE * spawned_in.as_secs_f64()).ceil() as usize;
    assert!(
        waited >= MACHINES.saturating_sub(free_turns),
        "{waited} machines waited for their first turn ({free_turns} turns were free, \
         spawned in {spawned_in:?})"
    );
    let first_accepted = server.accepted_at();

    // The outage: every machine wants to retry at once.
    let stopped = Instant::now();
    server.stop().await;
    let mut lost = vec![false; MACHINES];
    let mut back = vec![false; MACHINES];
    let mut reconnected = 0;
    let mut see = |event: common::fleet::Event| {
        let Seen::Status(state) = event.seen else {
            return false;
        };
        match state {
            State::Connecting => attempts.push(event.at),
            State::Disconnected => lost[event.machine] = true,
            State::Connected if lost[event.machine] && !back[event.machine] => {
                back[event.machine] = true;
                reconnected += 1;
            }
            _ => {}
        }
        reconnected == MACHINES
    };
    assert!(!fleet.until(stopped + OUTAGE, &mut see).await);
    let server = Server::bind(addr, Config::default()).expect("the same port again");
    let all_back = fleet.until(Instant::now() + PHASE, &mut see).await;
    assert!(
        all_back,
        "{reconnected} of {MACHINES} reconnected within {PHASE:?} of the restart"
    );

    // Turns are shared across both phases: check them as one timeline.
    let mut accepted = first_accepted;
    accepted.extend(server.accepted_at());
    assert_eq!(accepted.len(), 2 * MACHINES, "each connected twice");
    attempts.sort();
    println!(
        "{MACHINES} machines sharing {RATE} attempts/s after a burst of {BURST}; \
         {} attempts (refused ones included), {} connections accepted; \
         the reconnections took {} ms after the stop",
        attempts.len(),
        accepted.len(),
        (Instant::now() - stopped).as_millis()
    );
    for width in [Duration::from_millis(200), Duration::from_secs(1)] {
        check("connections accepted by the server", &accepted, width);
        check("attempts reported by the machines", &attempts, width);
    }
    fleet.shut_down(Duration::from_secs(30)).await;
    server.stop().await;
}
