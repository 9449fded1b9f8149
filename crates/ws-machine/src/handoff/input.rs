//! Received messages on their way to the caller's `input`.
//!
//! The machine never waits for the caller: a message that finds `input` full
//! is held, in order, and the open connection is not read while any is held
//! (backpressure; unread frames wait in the kernel). Only a connection being
//! closed reads on while messages are held, to finish its close handshake,
//! and then only until as many are held as `input` holds: what the machine
//! holds never exceeds the input capacity, whatever the server sends.

use std::collections::VecDeque;

use tokio::time::{Instant, sleep_until};

use crate::{
    channel::{OwnedPermit, SendError, Sender, TrySendError},
    types::Message,
};

/// The machine's end of `input`.
///
/// The sender and the held messages are separate fields so that a wait for
/// room (which borrows the sender) and the reading of the socket (which
/// hands messages over and may hold them) can be branches of one `select!`.
#[derive(Debug)]
pub(crate) struct Inbox {
    pub(crate) tx: Sender<Message>,
    pub(crate) held: Held,
}

/// Received messages that did not fit in `input`, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Held(VecDeque<Message>);

impl Held {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Hands a received message to the caller without waiting; if `input`
    /// is full, or older messages are already held, it is held.
    pub(crate) fn hand_over(&mut self, tx: &Sender<Message>, message: Message) {
        if !self.0.is_empty() {
            self.0.push_back(message);
            return;
        }
        match tx.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(message)) => self.0.push_back(message),
            // The caller dropped `input`: it wants no messages.
            Err(TrySendError::Closed(_)) => {}
        }
    }

    /// Hands over the oldest held message into the room [`room`] found.
    pub(crate) fn give(&mut self, room: Result<OwnedPermit<Message>, SendError<()>>) {
        match room {
            Ok(permit) => {
                if let Some(message) = self.0.pop_front()
                    && permit.send(message).is_err()
                {
                    // The caller dropped `input` meanwhile.
                    self.0.clear();
                }
            }
            // The caller dropped `input`: it wants no messages.
            Err(_) => self.0.clear(),
        }
    }
}

/// Waits for room in `input`. The owned permit keeps the `select!` branch's
/// output free of borrows; the wait is rare (the caller is behind), so it is
/// boxed when first polled.
pub(crate) async fn room(tx: &Sender<Message>) -> Result<OwnedPermit<Message>, SendError<()>> {
    Box::pin(tx.reserve_owned()).await
}

impl Inbox {
    pub(crate) fn new(tx: Sender<Message>) -> Self {
        Self {
            tx,
            held: Held::default(),
        }
    }

    /// Whether received messages wait for room in `input`.
    pub(crate) fn is_held_up(&self) -> bool {
        !self.held.is_empty()
    }

    /// Whether a closing connection may read one more message: what is held
    /// stays within the capacity of `input`.
    pub(crate) fn can_hold_more(&self) -> bool {
        self.held.0.len() < self.tx.max_capacity()
    }

    /// When the machine stops: hands over what is held as the caller makes
    /// room, until `deadline`.
    pub(crate) async fn hand_over_held(&mut self, deadline: Instant) {
        while self.is_held_up() {
            tokio::select! {
                permit = room(&self.tx) => self.held.give(permit),
                () = sleep_until(deadline) => break,
            }
        }
    }

    /// At the end: what could not be handed over.
    pub(crate) fn into_leftovers(self) -> Vec<Message> {
        self.held.0.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::channel;

    #[test]
    fn a_full_input_holds_in_order_up_to_its_capacity() {
        let (tx, mut rx) = channel(2);
        let mut inbox = Inbox::new(tx);
        for n in 0..4u8 {
            assert!(inbox.can_hold_more(), "at most one held before message {n}");
            inbox.held.hand_over(&inbox.tx, Message::binary(vec![n]));
        }
        assert!(inbox.is_held_up());
        assert!(!inbox.can_hold_more(), "two in input, two held");
        assert_eq!(rx.try_recv().map(|m| m.as_ref()[0]), Ok(0));
        // A message that finds room still queues behind the held ones.
        inbox.held.hand_over(&inbox.tx, Message::binary(vec![4]));
        let left: Vec<u8> = inbox
            .into_leftovers()
            .iter()
            .map(|m| m.as_ref()[0])
            .collect();
        assert_eq!(left, [2, 3, 4]);
    }

    #[tokio::test(start_paused = true)]
    async fn held_messages_follow_as_the_caller_reads_until_the_deadline() {
        let (tx, mut rx) = channel(1);
        let mut inbox = Inbox::new(tx);
        for n in 0..3u8 {
            inbox.held.hand_over(&inbox.tx, Message::binary(vec![n]));
        }
        // The caller reads one message, then no more.
        let reader = tokio::spawn(async move {
            let first = rx.recv().await;
            (first, rx)
        });
        let deadline = Instant::now() + std::time::Duration::from_secs(1);
        inbox.hand_over_held(deadline).await;
        assert_eq!(Instant::now(), deadline, "the last one never found room");
        let (first, mut rx) = reader.await.expect("the reader ends");
        assert_eq!(first.map(|m| m.as_ref()[0]), Some(0));
        assert_eq!(rx.try_recv().map(|m| m.as_ref()[0]), Ok(1), "handed over");
        let left: Vec<u8> = inbox
            .into_leftovers()
            .iter()
            .map(|m| m.as_ref()[0])
            .collect();
        assert_eq!(left, [2]);
    }
}
