//! Soak: many connections made and lost, and a fleet through repeated server
//! restarts, against the in-process server on 127.0.0.1. Afterwards the
//! process holds as many file descriptors and the runtime as many tasks as
//! before, and the heap (counted by dhat, exactly: this binary has one
//! test) holds what it held before; while the runs go on, it does not grow
//! from one half (or one restart) to the next. Resident memory is reported
//! too, but not judged: the allocator keeps freed pages.
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

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Live heap bytes now.
fn heap() -> usize {
    dhat::HeapStats::get().curr_bytes
}

/// What the heap may hold more at the end than at the start: what is made
/// once per process and kept (the runtime's and tracing's caches, lazily
/// built statics), measured at about 40 KiB.
const KEPT: usize = 256 * 1024;

/// How much the heap may differ between two moments of the same run: the
/// buffers in use at that moment. A leak of 100 bytes per connection
/// passes it after a few hundred connections.
const SWAY: usize = 64 * 1024;
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

/// Waits for the server to see its last connection close, stops it, and
/// waits until the process holds what it held at `start`.
async fn stop_and_settle(server: Server, start: Held) {
    assert!(server.wait_for_open_connections(0, WAIT).await);
    server.stop().await;
    back_to(start).await;
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
    let _profiler = dhat::Profiler::builder().testing().build();
    let before = heap();
    connections_made_and_lost_again_and_again().await;
    a_fleet_through_repeated_restarts().await;
    let after = heap();
    println!("heap: {before} bytes before the runs, {after} after");
    dhat::assert!(
        after <= before + KEPT,
        "the heap holds {after} bytes after the runs, {before} before"
    );
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
    let mut heap_half = 0;
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
                            heap_half = heap();
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
    let heap_end = heap();
    command_quit(&machine).await;
    common::shutdown(machine).await;
    stop_and_settle(server, start).await;
    println!(
        "| {cycles} connections made and closed by the server (3 messages each) | {:.1} s | {} fds, {} tasks before and after | heap {} KiB half-way, {} KiB at the end | RSS {} KiB at start, {} KiB half-way, {} KiB at the end |",
        took.as_secs_f64(),
        start.fds,
        start.tasks,
        heap_half / 1024,
        heap_end / 1024,
        rss_start,
        rss_half,
        rss_end
    );
    dhat::assert!(
        heap_end <= heap_half + SWAY,
        "the heap grew from {heap_half} bytes half-way to {heap_end} at the end"
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
    let mut heaps = Vec::new();
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
        heaps.push(heap() / 1024);
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
    stop_and_settle(server, start).await;
    println!(
        "| {machines} machines through {restarts} server restarts | {} fds, {} tasks before and after | heap after each round: {heaps:?} KiB | RSS {} KiB at start, after each round: {:?} KiB |",
        start.fds, start.tasks, rss_start, rss
    );
    // Every round holds the same machines, connected: a later round holds
    // no more than the first.
    let first = heaps[0] * 1024;
    let last = heaps.last().copied().unwrap_or_default() * 1024;
    dhat::assert!(
        last <= first + SWAY,
        "the heap held {first} bytes after the first round, {last} after the last"
    );
}
