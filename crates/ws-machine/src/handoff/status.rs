//! Reporting statuses without ever waiting for the caller.
//!
//! The machine must not stall because nobody reads `status`. Statuses go
//! into the bounded channel while it has room; when it is full they wait in a
//! small backlog inside the machine, which is handed over as the caller makes
//! room. When the backlog is full too, its *oldest* status is dropped: the
//! caller then sees the oldest statuses (already in the channel) and the
//! newest ones, so the last status read is always the current state.
//!
//! One slot of the channel is reserved from the start for the machine's last
//! status (`Disconnected` before it stops), so that status is always
//! delivered, however full the channel is.
//!
//! A status that reports a refused outgoing message carries the message.
//! When such a status is dropped (the backlog overflowed, or nobody reads
//! `status` any more), its message is kept for the leftovers: nothing
//! vanishes unseen.

use std::collections::VecDeque;

use super::stats::Meter;
use crate::{
    channel::{OwnedPermit, Sender, TrySendError},
    types::{Error, Message, Status},
};

/// Statuses kept inside the machine while the channel is full.
const BACKLOG: usize = 16;

/// The machine's side of the status channel.
#[derive(Debug)]
pub(crate) struct StatusOut {
    tx: Sender<Status>,
    backlog: Backlog,
    last_slot: Option<OwnedPermit<Status>>,
    /// Boxed: statuses are dropped only when the caller falls far behind.
    dropped: Option<Box<Dropped>>,
    /// Every status is recorded in the stats on its way out.
    meter: Meter,
}

/// Statuses waiting for room, oldest first. Boxed, and only while any
/// wait: every idle machine holds an empty one, and a pointer is 24 bytes
/// less than an empty `VecDeque` in every machine's task.
#[derive(Debug, Default)]
#[allow(clippy::box_collection)]
struct Backlog(Option<Box<VecDeque<Status>>>);

impl Backlog {
    fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|queue| queue.is_empty())
    }

    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |queue| queue.len())
    }

    fn push_back(&mut self, status: Status) {
        self.0.get_or_insert_default().push_back(status);
    }

    /// The oldest status; the queue's memory goes with the last one.
    fn pop_front(&mut self) -> Option<Status> {
        let queue = self.0.as_mut()?;
        let oldest = queue.pop_front();
        if queue.is_empty() {
            self.0 = None;
        }
        oldest
    }

    /// All of them, oldest first, leaving none.
    fn take(&mut self) -> VecDeque<Status> {
        self.0.take().map(|queue| *queue).unwrap_or_default()
    }
}

/// What was dropped: how many statuses, and the refused messages they
/// carried.
#[derive(Debug, Default)]
struct Dropped {
    count: u64,
    refused: Vec<Message>,
}

impl StatusOut {
    /// Wraps the sender of a fresh (empty) channel.
    pub(crate) fn new(tx: Sender<Status>, meter: Meter) -> Self {
        let last_slot = tx.try_reserve_owned();
        Self {
            tx,
            backlog: Backlog::default(),
            last_slot,
            dropped: None,
            meter,
        }
    }

    /// The machine's stats, which every status updates.
    pub(crate) fn meter(&self) -> &Meter {
        &self.meter
    }

    /// A status that does not reach the caller: a refused message in it is
    /// kept.
    fn drop_status(&mut self, status: Status) {
        let dropped = self.dropped.get_or_insert_with(Box::default);
        dropped.count += 1;
        if let Some(message) = status.error.and_then(Error::into_refused_message) {
            dropped.refused.push(message);
        }
    }

    /// The refused messages whose statuses never reached the caller,
    /// including any still waiting in the backlog when the machine stops.
    pub(crate) fn into_refused(mut self) -> Vec<Message> {
        for status in self.backlog.take() {
            self.drop_status(status);
        }
        self.dropped.map(|d| d.refused).unwrap_or_default()
    }

    /// Reports a status without waiting. A final status
    /// ([`Status::is_final`]) always gets through.
    pub(crate) fn emit(&mut self, mut status: Status) {
        self.meter.record(&mut status);
        tracing::debug!(%status, "status");
        if status.is_final() {
            self.finish(status);
            return;
        }
        if self.backlog.is_empty() {
            match self.tx.try_send(status) {
                Ok(()) => return,
                Err(TrySendError::Closed(status)) => return self.drop_status(status),
                Err(TrySendError::Full(status)) => self.backlog.push_back(status),
            }
        } else {
            self.backlog.push_back(status);
        }
        if self.backlog.len() > BACKLOG
            && let Some(oldest) = self.backlog.pop_front()
        {
            self.drop_status(oldest);
            tracing::debug!(
                dropped = self.dropped.as_ref().map_or(0, |d| d.count),
                "status channel full: oldest status dropped"
            );
        }
    }

    /// Whether statuses wait for room in the channel.
    pub(crate) fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Waits for room in the channel and hands over the oldest waiting
    /// status. Cancel-safe: nothing is taken from the backlog until a slot is
    /// held.
    pub(crate) async fn drain_one(&mut self) {
        // Rare: boxed when first polled.
        let reserved = Box::pin(self.tx.reserve_owned()).await;
        match reserved {
            Ok(permit) => {
                if let Some(status) = self.backlog.pop_front()
                    && let Err(gone) = permit.send(status)
                {
                    self.drop_status(gone.0);
                }
            }
            // Nobody listens any more.
            Err(_) => {
                for status in self.backlog.take() {
                    self.drop_status(status);
                }
            }
        }
    }

    /// Hands over the final status, with as many of the waiting ones before
    /// it as fit.
    fn finish(&mut self, last: Status) {
        tracing::debug!(status = %last, "final status");
        self.backlog.push_back(last);
        // Keep the newest statuses that still fit: the free slots plus the
        // reserved one.
        let room = self.tx.capacity() + usize::from(self.last_slot.is_some());
        while self.backlog.len() > room.max(1) {
            if let Some(oldest) = self.backlog.pop_front() {
                self.drop_status(oldest);
            }
        }
        while let Some(status) = self.backlog.pop_front() {
            let not_sent = match self.tx.try_send(status) {
                Ok(()) => None,
                Err(TrySendError::Full(status)) if self.backlog.is_empty() => {
                    match self.last_slot.take() {
                        Some(slot) => slot.send(status).err().map(|gone| gone.0),
                        None => Some(status),
                    }
                }
                Err(TrySendError::Full(status) | TrySendError::Closed(status)) => Some(status),
            };
            if let Some(status) = not_sent {
                self.drop_status(status);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::State;

    fn status(attempt: u32) -> Status {
        Status::new(State::Connecting, None, attempt, None)
    }

    fn last() -> Status {
        Status::new(State::Disconnected, None, 1, None).into_last()
    }

    fn drain(rx: &mut crate::channel::Receiver<Status>) -> Vec<u32> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|s| s.attempt)
            .collect()
    }

    #[test]
    fn a_full_channel_keeps_the_oldest_and_the_newest() {
        let (tx, mut rx) = crate::channel::channel(4);
        let mut out = StatusOut::new(tx, Meter::new(tokio::time::Instant::now(), false));
        for n in 1..=100 {
            out.emit(status(n));
        }
        // Three free slots (one is reserved), then a backlog of the newest.
        assert_eq!(drain(&mut rx), [1, 2, 3]);
        assert!(out.has_backlog());
        out.emit(last());
        let rest: Vec<Status> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(rest.len(), 4, "three backlog statuses and the final one");
        assert_eq!(rest[0].attempt, 98);
        assert_eq!(rest.last().map(|s| s.state), Some(State::Disconnected));
    }

    #[test]
    fn the_final_status_gets_through_a_full_channel() {
        let (tx, mut rx) = crate::channel::channel(2);
        let mut out = StatusOut::new(tx, Meter::new(tokio::time::Instant::now(), false));
        for n in 1..=10 {
            out.emit(status(n));
        }
        out.emit(last());
        let states: Vec<State> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|s| s.state)
            .collect();
        assert_eq!(states, [State::Connecting, State::Disconnected]);
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn backlog_drains_as_the_reader_makes_room() {
        let (tx, mut rx) = crate::channel::channel(2);
        let mut out = StatusOut::new(tx, Meter::new(tokio::time::Instant::now(), false));
        out.emit(status(1));
        out.emit(status(2));
        assert!(out.has_backlog());
        assert_eq!(drain(&mut rx), [1]);
        out.drain_one().await;
        assert!(!out.has_backlog());
        assert_eq!(drain(&mut rx), [2]);
    }

    #[test]
    fn a_dropped_reader_costs_nothing() {
        let (tx, rx) = crate::channel::channel(2);
        drop(rx);
        let mut out = StatusOut::new(tx, Meter::new(tokio::time::Instant::now(), false));
        for n in 1..=50 {
            out.emit(status(n));
        }
        assert!(!out.has_backlog());
    }
}
