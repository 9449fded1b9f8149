//! The machine's counters, and the handles through which callers read them.
//!
//! The machine's task is the only writer; readers ([`StatsHandle`], from
//! any task or thread) never make it wait on the message path:
//! - what changes with every message (messages and bytes each way, what is
//!   queued and unconfirmed) is kept in atomics, added to once per batch of
//!   messages, never per message where a batch is at hand. Each counter is
//!   read on its own and promises nothing about the others, so a relaxed
//!   atomic per counter is all it takes: there is no lock-free protocol
//!   between them to get wrong.
//! - what changes on a transition, a round trip or an error (the state and
//!   since when, connections, failed attempts, the last error, time
//!   connected, round trips) sits behind a mutex, taken by the machine only
//!   then, and by a reader for as long as a copy takes.
//!
//! The statuses the machine emits pass through [`Meter::record`], which
//! derives the transition counters from them and gives each status the
//! number of the machine's latest connection.

use std::{
    fmt,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::time::Instant;

use crate::{
    channel::Depth,
    policy::rtt::RoundTrips,
    types::{Error, Message, State, Stats, Status},
};

/// What the machine writes and its handles read.
struct Cells {
    /// Fixed at the start: pings carry the time since then.
    epoch: Instant,
    /// Whether round trips are reported on `status`.
    report_round_trips: bool,
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_out: AtomicU64,
    /// Taken back, to be written again on the next connection.
    replay: AtomicUsize,
    unacknowledged: AtomicUsize,
    record: Mutex<Record>,
}

/// What changes only on transitions, round trips and errors.
struct Record {
    state: State,
    since: Instant,
    attempt: u32,
    connections: u64,
    failed_attempts: u64,
    last_error: Option<Error>,
    /// Time connected, up to the end of the last connection.
    connected_before: Duration,
    /// When the current connection was established.
    connected_since: Option<Instant>,
    round_trips: RoundTrips,
}

impl Cells {
    fn record(&self) -> MutexGuard<'_, Record> {
        // Nothing panics while holding it; a poisoned record is still whole.
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Messages and bytes of one batch, counted locally and added to the stats
/// once.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
}

impl Tally {
    /// One more message of `len` payload bytes.
    pub(crate) fn add(&mut self, len: usize) {
        self.messages += 1;
        self.bytes += len as u64;
    }
}

/// The machine's end of its stats.
pub(crate) struct Meter {
    cells: Arc<Cells>,
}

impl fmt::Debug for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Meter").finish_non_exhaustive()
    }
}

impl Meter {
    /// The stats of a machine starting at `now`, which reports round trips
    /// on `status` if `report_round_trips`.
    pub(crate) fn new(now: Instant, report_round_trips: bool) -> Self {
        Self {
            cells: Arc::new(Cells {
                epoch: now,
                report_round_trips,
                messages_in: AtomicU64::new(0),
                bytes_in: AtomicU64::new(0),
                messages_out: AtomicU64::new(0),
                bytes_out: AtomicU64::new(0),
                replay: AtomicUsize::new(0),
                unacknowledged: AtomicUsize::new(0),
                record: Mutex::new(Record {
                    state: State::Disconnected,
                    since: now,
                    attempt: 0,
                    connections: 0,
                    failed_attempts: 0,
                    last_error: None,
                    connected_before: Duration::ZERO,
                    connected_since: None,
                    round_trips: RoundTrips::default(),
                }),
            }),
        }
    }

    /// The instant the machine's pings count from.
    pub(crate) fn epoch(&self) -> Instant {
        self.cells.epoch
    }

    /// A handle for callers, who also see how many messages wait in
    /// `output`.
    pub(crate) fn handle(&self, output: Depth<Message>) -> StatsHandle {
        StatsHandle {
            cells: Arc::clone(&self.cells),
            output,
        }
    }

    /// Messages were received.
    pub(crate) fn received(&self, tally: Tally) {
        if tally.messages > 0 {
            self.cells
                .messages_in
                .fetch_add(tally.messages, Ordering::Relaxed);
            self.cells
                .bytes_in
                .fetch_add(tally.bytes, Ordering::Relaxed);
        }
    }

    /// Messages were handed to the connection.
    pub(crate) fn sent(&self, tally: Tally) {
        if tally.messages > 0 {
            self.cells
                .messages_out
                .fetch_add(tally.messages, Ordering::Relaxed);
            self.cells
                .bytes_out
                .fetch_add(tally.bytes, Ordering::Relaxed);
        }
    }

    /// What the outbox holds now: messages to write again, and messages
    /// written but not confirmed.
    pub(crate) fn outbox(&self, replay: usize, unacknowledged: usize) {
        self.cells.replay.store(replay, Ordering::Relaxed);
        self.cells
            .unacknowledged
            .store(unacknowledged, Ordering::Relaxed);
    }

    /// A status on its way out: a transition updates the counters; every
    /// status is given the number of the latest connection.
    pub(crate) fn record(&self, status: &mut Status) {
        let mut record = self.cells.record();
        if status.is_change() {
            let now = Instant::now();
            match status.state {
                State::Connected => {
                    record.connections += 1;
                    record.connected_since = Some(now);
                }
                State::Ready => {}
                State::Connecting | State::Disconnected | State::Waiting => {
                    if let Some(since) = record.connected_since.take() {
                        record.connected_before += now.saturating_duration_since(since);
                    }
                }
            }
            if status.state == State::Disconnected && status.error.is_some() {
                if record.state == State::Connecting {
                    record.failed_attempts += 1;
                }
                record.last_error.clone_from(&status.error);
            }
            record.state = status.state;
            record.since = now;
            record.attempt = status.attempt;
        }
        status.connection = u32::try_from(record.connections).unwrap_or(u32::MAX);
    }

    /// The number of the current attempt in its series (as last reported).
    pub(crate) fn attempt(&self) -> u32 {
        self.cells.record().attempt
    }

    /// The number of the latest connection (0 before the first).
    pub(crate) fn connection(&self) -> u32 {
        u32::try_from(self.cells.record().connections).unwrap_or(u32::MAX)
    }

    /// A round trip was measured. Returns the status that reports it, if
    /// the caller asked for them.
    pub(crate) fn round_trip(&self, rtt: Duration) -> Option<Status> {
        let mut record = self.cells.record();
        record.round_trips.sample(rtt);
        self.cells
            .report_round_trips
            .then(|| Status::round_trip_report(record.state, record.attempt, rtt))
    }
}

/// A clonable view of a machine's stats, for another task or thread: a
/// dashboard, a fleet's health check. It does not keep the machine running,
/// and after the machine stopped it shows the final figures.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ws_machine::Error> {
/// use ws_machine::Machine;
///
/// let machine = Machine::builder("ws://127.0.0.1:9/").spawn()?;
/// let stats = machine.stats_handle();
/// let watcher = tokio::spawn(async move { stats.get().messages_in });
/// assert_eq!(watcher.await.expect("the watcher ends"), 0);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct StatsHandle {
    cells: Arc<Cells>,
    output: Depth<Message>,
}

impl fmt::Debug for StatsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StatsHandle").field(&self.get()).finish()
    }
}

impl StatsHandle {
    /// The stats now. Never waits for the machine: the counters are read
    /// as they are, and the rest is copied under a lock the machine takes
    /// only on transitions.
    #[must_use]
    pub fn get(&self) -> Stats {
        let cells = &*self.cells;
        let (state, since, attempt_counts, last_error, connected_for, round_trips) = {
            let record = cells.record();
            let now = Instant::now();
            let current = record
                .connected_since
                .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
            (
                record.state,
                record.since,
                (record.connections, record.failed_attempts),
                record.last_error.clone(),
                record.connected_before + current,
                record.round_trips,
            )
        };
        let (connections, failed_attempts) = attempt_counts;
        Stats {
            state,
            since,
            connections,
            reconnects: connections.saturating_sub(1),
            failed_attempts,
            messages_in: cells.messages_in.load(Ordering::Relaxed),
            bytes_in: cells.bytes_in.load(Ordering::Relaxed),
            messages_out: cells.messages_out.load(Ordering::Relaxed),
            bytes_out: cells.bytes_out.load(Ordering::Relaxed),
            queued: self.output.get() + cells.replay.load(Ordering::Relaxed),
            unacknowledged: cells.unacknowledged.load(Ordering::Relaxed),
            last_error,
            connected_for,
            rtt: round_trips.last,
            smoothed_rtt: round_trips.smoothed,
        }
    }
}
