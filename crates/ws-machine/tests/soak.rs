//! Soak: many connections made and lost, and a fleet through repeated server
//! restarts, against the in-process server on 127.0.0.1. Afterwards the
//! process holds as many file descriptors and the runtime as many tasks as
//! before, and the resident memory grew no more in the second half of the
//! run than in the first (a leak grows with every cycle).
//!
//! CI runs small counts; `WSM_SOAK_FULL=1` runs the issue's (10,000 cycles,
//! 1,000 machines), whose figures are in `docs/reliability.md`:
//!
//! ```text
//! WSM_SOAK_FULL=1 cargo test --release -p ws-machine --test soak -- --nocapture --test-threads 1
//! ```

mod common;

use std::time::Duration;

use common::{WAIT, fast, send};
use tokio::{runtime::Handle, time::timeout};
use ws_machine::{Command, Machine, State};
use wsm_server::{Config, Server};

fn full() -> bool {
    std::env::var_os("WSM_SOAK_FULL").is_some_and(|v| v == "1")
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd lists this process's descriptors")
        .count()
}

/// Resident memory of this process, KiB.
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("resident pages");
    pages * 4
}

/// What the process holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    fds: usize,
    tasks: usize,
}

fn held() -> Held {
    Held {
        fds: open_fds(),
        tasks: Handle::current().metrics().num_alive_tasks(),
    }
}

/// Waits until the process holds what it held at `start`: the server's
/// connection tasks end a moment after their sockets close, and nothing
/// signals that, so the counts are looked at every 10 ms, within [`WAIT`].
async fn back_to(start: Held) {
    let settled = timeout(WAIT, async {
        loop {
            if held() == start {
                return;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        settled.is_ok(),
        "held {:?} after the run, {start:?} before",
        held()
    );
}

/// Descriptors are counted for the whole process, and every test's runtime
/// holds some: both runs are one test, on one runtime, one after the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_leaves_nothing_behind() {
    connections_made_and_lost_again_and_again().await;
    a_fleet_through_repeated_restarts().await;
}

async fn connections_made_and_lost_again_and_again() {
    let cycles: u64 = if full() { 10_000 } else { 1_000 };
    // The server closes every connection after three messages.
    let start = held();
    let server = Server::start(Config::default().close_after(Some(3)).record_limit(0))
        .expect("server starts");
    let rss_start = rss_kib();
    let mut machine = fast(server.url())
        .min_uptime(Duration::ZERO)
        .spawn()
        .expect("valid options");
    let mut connected = 0u64;
    let mut rss_half = 0;
    let mut n = 0u64;
    let began = tokio::time::Instant::now();
    let run = timeout(WAIT * 40, async {
        while connected < cycles {
            tokio::select! {
                Some(status) = machine.status.recv() => {
                    if status.state == State::Connected {
                        connected += 1;
                        if connected == cycles / 2 {
                            rss_half = rss_kib();
                        }
                        for _ in 0..3 {
                            send(&machine, format!("{n}")).await;
                            n += 1;
                        }
                    }
                }
                Some(_) = machine.input.recv() => {}
            }
        }
    })
    .await;
    assert!(run.is_ok(), "{connected} of {cycles} connections in time");
    let took = began.elapsed();
    let rss_end = rss_kib();
    command_quit(&machine).await;
    common::shutdown(machine).await;
    assert!(server.wait_for_open_connections(0, WAIT).await);
    server.stop().await;
    back_to(start).await;
    println!(
        "| {cycles} connections made and closed by the server (3 messages each) | {:.1} s | {} fds, {} tasks before and after | RSS {} KiB at start, {} KiB half-way, {} KiB at the end |",
        took.as_secs_f64(),
        start.fds,
        start.tasks,
        rss_start,
        rss_half,
        rss_end
    );
    // The second half grew the heap no more than the first half by a margin
    // a leak of even 100 bytes per connection would pass.
    let first = rss_half.saturating_sub(rss_start);
    let second = rss_end.saturating_sub(rss_half);
    assert!(
        second <= first + (cycles / 2) * 100 / 1024 + 1024,
        "RSS grew {first} KiB in the first half, {second} KiB in the second"
    );
}

async fn command_quit(machine: &Machine) {
    // An error: the machine already stopped.
    let _ = machine.command.send(Command::Quit).await;
}

async fn a_fleet_through_repeated_restarts() {
    let (machines, restarts) = if full() { (1_000, 5) } else { (200, 3) };
    let start = held();
    let mut server = Server::start(Config::default().record_limit(0)).expect("server starts");
    let addr = server.addr();
    let rss_start = rss_kib();
    let mut fleet: Vec<Machine> = (0..machines)
        .map(|_| {
            fast(server.url())
                .min_uptime(Duration::ZERO)
                .spawn()
                .expect("valid options")
        })
        .collect();
    let mut rss = Vec::new();
    for round in 0..=restarts {
        // Every machine connected (again).
        for (i, machine) in fleet.iter_mut().enumerate() {
            let up = timeout(WAIT * 4, async {
                while let Some(status) = machine.status.recv().await {
                    if status.state == State::Connected {
                        return true;
                    }
                }
                false
            })
            .await;
            assert_eq!(up, Ok(true), "machine {i} not connected in round {round}");
        }
        rss.push(rss_kib());
        if round < restarts {
            server.stop().await;
            server = Server::bind(addr, Config::default().record_limit(0))
                .expect("the same address again");
        }
    }
    for machine in fleet.drain(..) {
        command_quit(&machine).await;
        common::shutdown(machine).await;
    }
    assert!(server.wait_for_open_connections(0, WAIT).await);
    server.stop().await;
    back_to(start).await;
    println!(
        "| {machines} machines through {restarts} server restarts | {} fds, {} tasks before and after | RSS {} KiB at start, after each round: {:?} KiB |",
        start.fds, start.tasks, rss_start, rss
    );
    // Later rounds hold no more than the first by more than a margin a
    // leak of 1 KiB per machine and round would pass.
    let first = rss[0];
    let last = *rss.last().expect("rounds");
    assert!(
        last <= first + (machines as u64) * (restarts as u64) + 4096,
        "RSS {first} KiB after the first round, {last} KiB after the last"
    );
}
