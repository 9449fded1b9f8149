//! Bookkeeping of outgoing messages, so that none is lost silently.
//!
//! WebSocket has no acknowledgements: a message handed to the socket may
//! still die with the connection. The [`Outbox`] tracks every message from
//! the moment it is taken off the `output` channel:
//!
//! 1. *unflushed*: handed to the engine, not yet confirmed written to the
//!    socket. If the write fails, these are written again on the next
//!    connection.
//! 2. *unacknowledged* (only with an ack key): written, and waiting for a
//!    received message with the same key. If the connection dies first, they
//!    are written again on the next connection, before anything newer.
//! 3. *replay*: taken back after a connection died, waiting for the next
//!    connection. They go out before anything new from `output`.
//!
//! Without an ack key a message counts as delivered once its write was
//! flushed to the socket; one that was flushed to a connection that then
//! died may be lost. With an ack key nothing is lost, but duplicates are
//! possible (the server may have received a message whose acknowledgement
//! was lost with the connection).

use std::{collections::VecDeque, fmt};

use crate::{
    settings::{AckKey, Delivery},
    types::Message,
};

/// Outgoing-message bookkeeping of one machine, kept across connections.
pub(crate) struct Outbox {
    ack_key: Option<AckKey>,
    /// Most messages in flight (unflushed + unacknowledged).
    window: usize,
    replay: VecDeque<Message>,
    unflushed: Vec<(Option<u64>, Message)>,
    unflushed_bytes: usize,
    unacked: VecDeque<(u64, Message)>,
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox")
            .field("acks", &self.ack_key.is_some())
            .field("window", &self.window)
            .field("replay", &self.replay.len())
            .field("unflushed", &self.unflushed.len())
            .field("unacked", &self.unacked.len())
            .finish()
    }
}

/// Past this many unflushed bytes the driver stops taking messages and lets
/// the write catch up. Several messages per socket write, without letting
/// one connection buffer without bound.
const MAX_UNFLUSHED_BYTES: usize = 256 * 1024;

/// What was never confirmed delivered when the machine stopped.
#[derive(Debug, Default)]
pub(crate) struct Undelivered {
    pub(crate) unsent: Vec<Message>,
    pub(crate) unacknowledged: Vec<Message>,
}

impl Outbox {
    pub(crate) fn new(delivery: Delivery) -> Self {
        Self {
            ack_key: delivery.ack_key,
            window: delivery.ack_window,
            replay: VecDeque::new(),
            unflushed: Vec::new(),
            unflushed_bytes: 0,
            unacked: VecDeque::new(),
        }
    }

    fn in_flight(&self) -> usize {
        self.unflushed.len() + self.unacked.len()
    }

    /// Whether every message taken is delivered: nothing to write again,
    /// nothing waiting for a flush or an acknowledgement.
    pub(crate) fn is_settled(&self) -> bool {
        self.replay.is_empty() && self.unflushed.is_empty() && self.unacked.is_empty()
    }

    /// Whether a new message may be taken from `output` now.
    pub(crate) fn can_take(&self) -> bool {
        self.replay.is_empty()
            && self.in_flight() < self.window
            && self.unflushed_bytes < MAX_UNFLUSHED_BYTES
    }

    /// Whether the next replayed message may be written now.
    pub(crate) fn can_replay(&self) -> bool {
        !self.replay.is_empty()
            && self.in_flight() < self.window
            && self.unflushed_bytes < MAX_UNFLUSHED_BYTES
    }

    /// The next message to write again, oldest first.
    pub(crate) fn take_replay(&mut self) -> Option<Message> {
        self.replay.pop_front()
    }

    /// A message taken from `output` goes back to be written first, before
    /// anything else new.
    pub(crate) fn put_back(&mut self, message: Message) {
        self.replay.push_front(message);
    }

    /// A message was handed to the engine.
    pub(crate) fn written(&mut self, message: Message) {
        let key = self.ack_key.as_ref().and_then(|key| key(&message));
        self.unflushed_bytes += message.len();
        self.unflushed.push((key, message));
    }

    /// How many messages wait to be written again on the next connection.
    pub(crate) fn replay_len(&self) -> usize {
        self.replay.len()
    }

    /// How many written messages are not confirmed yet: not flushed, or
    /// not acknowledged.
    pub(crate) fn unconfirmed_len(&self) -> usize {
        self.in_flight()
    }

    /// Whether written messages wait for a flush.
    #[cfg(test)]
    pub(crate) fn has_unflushed(&self) -> bool {
        !self.unflushed.is_empty()
    }

    /// Everything written so far reached the socket.
    pub(crate) fn flushed(&mut self) {
        self.unflushed_bytes = 0;
        for (key, message) in self.unflushed.drain(..) {
            if let Some(key) = key {
                self.unacked.push_back((key, message));
            }
        }
    }

    /// A message arrived; with an ack key it may acknowledge a sent one.
    pub(crate) fn received(&mut self, message: &Message) {
        let Some(key) = self.ack_key.as_ref().and_then(|key| key(message)) else {
            return;
        };
        // Acknowledgements mostly come in order: look at the front first.
        if self.unacked.front().is_some_and(|(k, _)| *k == key) {
            self.unacked.pop_front();
        } else if let Some(at) = self.unacked.iter().position(|(k, _)| *k == key) {
            self.unacked.remove(at);
        } else if let Some(at) = self.unflushed.iter().position(|(k, _)| *k == Some(key)) {
            let (_, message) = self.unflushed.remove(at);
            self.unflushed_bytes = self.unflushed_bytes.saturating_sub(message.len());
        }
    }

    /// The connection died: everything not confirmed goes back to be written
    /// again, oldest first, ahead of what was already waiting; except the
    /// messages sent with [`Message::no_replay`], which are returned, to be
    /// handed back to the caller.
    pub(crate) fn connection_lost(&mut self) -> Vec<Message> {
        let mut not_replayed = Vec::new();
        let mut replay = VecDeque::with_capacity(self.in_flight() + self.replay.len());
        let in_flight = self
            .unacked
            .drain(..)
            .map(|(_, m)| m)
            .chain(self.unflushed.drain(..).map(|(_, m)| m));
        for message in in_flight {
            if message.is_replayed() {
                replay.push_back(message);
            } else {
                not_replayed.push(message);
            }
        }
        replay.append(&mut self.replay);
        self.replay = replay;
        self.unflushed_bytes = 0;
        not_replayed
    }

    /// What was never confirmed, when the machine stops. Unflushed messages
    /// count as unsent: their write was not confirmed.
    pub(crate) fn into_undelivered(mut self) -> Undelivered {
        let mut unsent: Vec<Message> = self.unflushed.drain(..).map(|(_, m)| m).collect();
        unsent.extend(self.replay);
        Undelivered {
            unsent,
            unacknowledged: self.unacked.into_iter().map(|(_, m)| m).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn outbox(ack_key: Option<AckKey>, window: usize) -> Outbox {
        Outbox::new(Delivery {
            ack_key,
            ack_window: window,
        })
    }

    fn seq(message: &Message) -> Option<u64> {
        let bytes: [u8; 8] = message.as_ref().get(..8)?.try_into().ok()?;
        Some(u64::from_le_bytes(bytes))
    }

    fn numbered(n: u64) -> Message {
        Message::binary(n.to_le_bytes().to_vec())
    }

    fn keys(messages: &[Message]) -> Vec<Option<u64>> {
        messages.iter().map(seq).collect()
    }

    #[test]
    fn without_acks_a_flush_settles_messages() {
        let mut outbox = outbox(None, 8);
        outbox.written(numbered(1));
        outbox.written(numbered(2));
        assert!(outbox.has_unflushed());
        outbox.flushed();
        assert!(!outbox.has_unflushed());
        outbox.connection_lost();
        assert!(outbox.take_replay().is_none());
    }

    #[test]
    fn without_acks_a_failed_write_is_replayed_in_order() {
        let mut outbox = outbox(None, 8);
        for n in 1..=3 {
            outbox.written(numbered(n));
        }
        outbox.connection_lost();
        assert!(!outbox.can_take(), "replay goes before new messages");
        let replayed: Vec<Message> = std::iter::from_fn(|| outbox.take_replay()).collect();
        assert_eq!(keys(&replayed), [Some(1), Some(2), Some(3)]);
        assert!(outbox.can_take());
    }

    #[test]
    fn with_acks_unacknowledged_messages_come_back_first() {
        let mut outbox = outbox(Some(Arc::new(seq)), 8);
        for n in 1..=4 {
            outbox.written(numbered(n));
        }
        outbox.flushed();
        outbox.received(&numbered(1));
        outbox.received(&numbered(3));
        outbox.written(numbered(5));
        outbox.connection_lost();
        let replayed: Vec<Message> = std::iter::from_fn(|| outbox.take_replay()).collect();
        assert_eq!(keys(&replayed), [Some(2), Some(4), Some(5)]);
    }

    #[test]
    fn the_window_bounds_messages_in_flight() {
        let mut outbox = outbox(Some(Arc::new(seq)), 2);
        outbox.written(numbered(1));
        assert!(outbox.can_take());
        outbox.written(numbered(2));
        outbox.flushed();
        assert!(!outbox.can_take());
        outbox.received(&numbered(2));
        assert!(outbox.can_take());
    }

    #[test]
    fn unknown_and_duplicate_acks_are_ignored() {
        let mut outbox = outbox(Some(Arc::new(seq)), 4);
        outbox.written(numbered(1));
        outbox.flushed();
        outbox.received(&numbered(9));
        outbox.received(&Message::text("no key"));
        outbox.received(&numbered(1));
        outbox.received(&numbered(1));
        let left = outbox.into_undelivered();
        assert!(left.unacknowledged.is_empty());
        assert!(left.unsent.is_empty());
    }

    #[test]
    fn stopping_hands_back_everything_unconfirmed() {
        let mut outbox = outbox(Some(Arc::new(seq)), 8);
        outbox.written(numbered(1));
        outbox.flushed();
        outbox.written(numbered(2));
        let left = outbox.into_undelivered();
        assert_eq!(keys(&left.unacknowledged), [Some(1)]);
        assert_eq!(keys(&left.unsent), [Some(2)]);
    }
}
