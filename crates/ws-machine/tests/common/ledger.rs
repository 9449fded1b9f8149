//! The bookkeeping of the fault matrix and the nginx rows: numbered
//! messages sent, echoed, handed back at shutdown or received by the
//! server, and the statuses seen, with when they came; and the table row
//! `docs/reliability.md` shows for a run.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use ws_machine::{Leftovers, Message, State, Status};
use wsm_server::Server;

/// A message's number: its text up to the first space (what follows pads
/// it to a size).
pub fn number(message: &Message) -> Option<u64> {
    message.as_text()?.split(' ').next()?.parse().ok()
}

/// The numbers of the messages `server` received, in order.
pub fn numbers(server: &Server) -> Vec<u64> {
    server
        .received()
        .iter()
        .filter_map(|r| r.data.as_text()?.split(' ').next()?.parse().ok())
        .collect()
}

/// What one run sent and saw.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Every status, with when it arrived (since the run began).
    pub statuses: Vec<(Duration, Status)>,
    /// Messages numbered below this were sent.
    pub sent: u64,
    /// Echo count by message number.
    pub echoed: BTreeMap<u64, u32>,
    /// Handed back at shutdown.
    pub handed_back: BTreeSet<u64>,
    /// Messages the server received more than once (written again after a
    /// connection died before their echo came back); `None` for servers
    /// that do not say what they received.
    pub server_duplicates: Option<u64>,
}

impl Ledger {
    /// An echo arrived.
    pub fn record(&mut self, message: &Message) {
        if let Some(n) = number(message) {
            *self.echoed.entry(n).or_default() += 1;
        }
    }

    /// Takes what the machine handed back when it stopped.
    pub fn handed_back(&mut self, leftovers: &Leftovers) {
        for message in leftovers
            .unsent
            .iter()
            .chain(&leftovers.unacknowledged)
            .chain(&leftovers.received)
        {
            if let Some(n) = number(message) {
                self.handed_back.insert(n);
            }
        }
    }

    /// Takes what the server received, if it says: every message sent
    /// reached it at least once, unless it was handed back; the repeats are
    /// counted.
    pub fn server_received(&mut self, numbers: Option<Vec<u64>>) {
        let Some(numbers) = numbers else {
            self.server_duplicates = None;
            return;
        };
        let mut times: BTreeMap<u64, u64> = BTreeMap::new();
        for n in numbers {
            *times.entry(n).or_default() += 1;
        }
        self.server_duplicates = Some(times.values().map(|&c| c - 1).sum());
        let missing: Vec<u64> = (0..self.sent)
            .filter(|n| !times.contains_key(n) && !self.handed_back.contains(n))
            .collect();
        assert!(missing.is_empty(), "never reached the server: {missing:?}");
    }

    /// Messages sent that were neither echoed nor handed back.
    pub fn lost(&self) -> Vec<u64> {
        (0..self.sent)
            .filter(|n| !self.echoed.contains_key(n) && !self.handed_back.contains(n))
            .collect()
    }

    /// Echoes the machine received more than once.
    pub fn duplicates(&self) -> u64 {
        self.echoed.values().map(|&c| u64::from(c - 1)).sum()
    }

    /// Every change of state, with when it came.
    pub fn changes(&self) -> impl Iterator<Item = &(Duration, Status)> {
        self.statuses.iter().filter(|(_, s)| s.is_change())
    }

    /// Every `Disconnected` before the machine was told to stop, with
    /// whether it ended a connection (rather than an attempt).
    pub fn endings(&self) -> Vec<(&(Duration, Status), bool)> {
        let mut previous = State::Disconnected;
        let mut endings = Vec::new();
        for entry in self.changes() {
            let state = entry.1.state;
            if state == State::Disconnected && !entry.1.is_final() {
                endings.push((entry, matches!(previous, State::Connected | State::Ready)));
            }
            previous = state;
        }
        endings
    }

    /// Every `Disconnected` before the stop: connections lost and attempts
    /// failed.
    pub fn disconnects(&self) -> Vec<&(Duration, Status)> {
        self.endings().into_iter().map(|(entry, _)| entry).collect()
    }

    /// How many connections were lost, and how many attempts failed.
    pub fn losses_and_failures(&self) -> (usize, usize) {
        let endings = self.endings();
        let lost = endings.iter().filter(|(_, connection)| *connection).count();
        (lost, endings.len() - lost)
    }

    /// The changes of state, one per line, for failure messages.
    pub fn show(&self) -> String {
        let parts: Vec<String> = self
            .changes()
            .map(|(at, s)| format!("{:>5} ms {s}", at.as_millis()))
            .collect();
        parts.join("\n")
    }

    /// One row of the table in docs/reliability.md: `first` (the columns
    /// naming the run), then detection, reconnect, connections lost /
    /// attempts failed, lost of sent, and twice (server / machine).
    pub fn row(&self, first: &[&str], detection: &str, reconnect: &str) {
        let (lost_connections, failed_attempts) = self.losses_and_failures();
        let server_twice = self
            .server_duplicates
            .map_or_else(|| "?".to_owned(), |n| n.to_string());
        println!(
            "| {} | {detection} | {reconnect} | {lost_connections} / {failed_attempts} | {} of {} | {server_twice} / {} |",
            first.join(" | "),
            self.lost().len(),
            self.sent,
            self.duplicates(),
        );
    }
}

/// A duration as the table shows it (`-` for none).
pub fn shown(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "-".to_owned(), |d| format!("{} ms", d.as_millis()))
}
