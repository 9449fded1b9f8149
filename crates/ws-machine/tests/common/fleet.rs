//! Many machines at once, for the tests of a fleet's recovery
//! (`tests/fleet.rs`, `tests/reconnect_budget.rs`).
//!
//! Each machine is run by a watcher task that reports every status and
//! every received message, with the instant it saw it, on one channel the
//! test reads; the test never waits for one machine at a time. Every wait
//! is bounded by a deadline the test gives.

use std::time::Duration;

use tokio::{
    sync::{mpsc, watch},
    task::JoinSet,
    time::{Instant, timeout, timeout_at},
};
use ws_machine::{Builder, State};

use super::WAIT;

/// What a watcher saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Status(State),
    /// A data message on `input`.
    Message,
}

/// One report of a watcher.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// Which machine, in the order they were spawned.
    pub machine: usize,
    /// When its watcher saw it.
    pub at: Instant,
    pub seen: Seen,
}

/// Machines, each run by a watcher task.
pub struct Fleet {
    events: mpsc::UnboundedReceiver<Event>,
    stop: watch::Sender<bool>,
    watchers: JoinSet<()>,
}

impl Fleet {
    /// Spawns `n` machines built by `builder` (called with each index).
    pub fn spawn(n: usize, builder: impl Fn(usize) -> Builder) -> Self {
        let (events_tx, events) = mpsc::unbounded_channel();
        let (stop, _) = watch::channel(false);
        let mut watchers = JoinSet::new();
        for i in 0..n {
            let mut machine = builder(i).spawn().expect("valid options");
            let events = events_tx.clone();
            let mut stop = stop.subscribe();
            watchers.spawn(async move {
                let report = |seen| {
                    // The test may have stopped listening: nothing to tell.
                    let _ = events.send(Event {
                        machine: i,
                        at: Instant::now(),
                        seen,
                    });
                };
                loop {
                    tokio::select! {
                        _ = stop.wait_for(|stop| *stop) => break,
                        status = machine.status.recv() => match status {
                            Some(status) => report(Seen::Status(status.state)),
                            None => break,
                        },
                        message = machine.input.recv() => match message {
                            Some(_) => report(Seen::Message),
                            None => break,
                        },
                    }
                }
                // Bounded: a machine that does not stop fails `shut_down`.
                let _ = timeout(WAIT, machine.shutdown()).await;
            });
        }
        Self {
            events,
            stop,
            watchers,
        }
    }

    /// Hands every event to `handle` until it returns `true` (then `true`)
    /// or `deadline` passes (then `false`).
    pub async fn until(
        &mut self,
        deadline: Instant,
        mut handle: impl FnMut(Event) -> bool,
    ) -> bool {
        loop {
            match timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => {
                    if handle(event) {
                        return true;
                    }
                }
                Ok(None) => panic!("every watcher ended"),
                Err(_) => return false,
            }
        }
    }

    /// Stops every machine (each within [`WAIT`]) and waits for the
    /// watchers, within `limit` in all.
    pub async fn shut_down(mut self, limit: Duration) {
        self.stop.send_replace(true);
        timeout(limit, async {
            while let Some(done) = self.watchers.join_next().await {
                done.expect("a watcher panicked");
            }
        })
        .await
        .expect("the machines stopped in time");
    }
}

/// Fails (does not skip) if this process may not open `needed` files;
/// where the limit cannot be read (not Linux), goes on.
pub fn expect_open_files(needed: u64) {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let soft = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|soft| soft.parse::<u64>().ok());
    if let Some(soft) = soft {
        assert!(
            soft >= needed,
            "this test opens up to {needed} files (both ends of every connection), \
             the limit is {soft}: raise it (`ulimit -n {needed}`)"
        );
    }
}

/// The most of `times` (sorted) within any window of `width`.
pub fn busiest(times: &[Instant], width: Duration) -> usize {
    let mut most = 0;
    let mut first = 0;
    for (last, at) in times.iter().enumerate() {
        while *at - times[first] >= width {
            first += 1;
        }
        most = most.max(last + 1 - first);
    }
    most
}

/// The median, 99th percentile and largest of `values`, as one line.
pub fn distribution(values: &mut [Duration]) -> String {
    values.sort();
    let at = |fraction: f64| {
        // Nearest rank; `values` is not empty where this is called.
        let rank = ((values.len() as f64 * fraction).ceil() as usize).clamp(1, values.len());
        values[rank - 1]
    };
    if values.is_empty() {
        return "none".into();
    }
    format!(
        "median {} ms, p99 {} ms, last {} ms",
        at(0.5).as_millis(),
        at(0.99).as_millis(),
        values[values.len() - 1].as_millis()
    )
}
