//! A [`Sender`] as a [`Sink`](futures_sink::Sink), for `StreamExt::forward`,
//! `SinkExt::send_all` and the other combinators of `futures`.
//!
//! Why a wrapper and not `Sink` on the sender itself: a sink must be able to
//! wait for room between `poll_ready` calls, so it keeps that wait (a boxed
//! future, owning a reference to the channel) or the slot it reserved. Every
//! machine holds a [`Sender`] for `output` and one for `command`, idle
//! machines by the thousand, so the sender stays one pointer and only a sink
//! pays for the room a wait needs. The waiting itself is the channel's own
//! reservation (the one behind [`Sender::reserve`]), so a sink dropped or
//! closed while it waits loses no slot and no wake-up, as a cancelled
//! `reserve` does.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use super::{OwnedPermit, SendError, Sender, Shared, TrySendError};

/// A [`Sender`] usable as a [`Sink`](futures_sink::Sink): made by
/// [`Sender::sink`] or [`Sender::into_sink`].
///
/// `poll_ready` reserves a slot (waiting for room while the channel is
/// full, which is the backpressure) and `start_send` fills it, so a value
/// is never held inside the sink: once `start_send` returns `Ok`, it is in
/// the channel, and `poll_flush` has nothing to do. `poll_close` gives back
/// a reserved slot and drops this sink's sender: when it was the last one,
/// the receiver sees the end once it has taken what was sent (for a
/// machine's `output`, the machine runs on: only [`Command::Quit`] or
/// dropping every command sender stops it).
///
/// Nothing is lost unseen: when the receiver is gone (for `output`: the
/// machine has stopped), or closed the channel, or this sink was closed,
/// `poll_ready` says it is ready and `start_send` hands the value back in a
/// [`SendError`], so `SinkExt::send` and `StreamExt::forward` return it
/// rather than drop it.
///
/// [`Command::Quit`]: crate::Command::Quit
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use futures_util::{SinkExt, StreamExt, stream};
///
/// let (tx, mut rx) = ws_machine::channel::channel::<u32>(2);
/// let reader = tokio::spawn(async move {
///     let mut seen = Vec::new();
///     while let Some(n) = rx.recv().await {
///         seen.push(n);
///     }
///     seen
/// });
/// // Ten values through a channel of two: the sink waits for room.
/// stream::iter(0..10).map(Ok).forward(tx.into_sink()).await.expect("the receiver is alive");
/// // `forward` closed the sink, which held the last sender: the reader ends.
/// assert_eq!(reader.await.expect("no panic"), (0..10).collect::<Vec<_>>());
/// # }
/// ```
pub struct SenderSink<T> {
    stage: Stage<T>,
}

/// The wait for a free slot: the channel's reservation, owning its
/// reference to the channel so that it can be kept between polls.
type Reserving<T> = Pin<Box<dyn Future<Output = Option<OwnedPermit<T>>> + Send>>;

/// Where a sink is between values. The sender is kept in every stage but
/// the last, so the receiver does not see the end while the sink lives.
enum Stage<T> {
    /// Nothing reserved.
    Idle(Sender<T>),
    /// Waiting for room (the channel was full).
    Waiting(Sender<T>, Reserving<T>),
    /// A slot is reserved for the next value.
    Reserved(Sender<T>, OwnedPermit<T>),
    /// No value will be taken: the receiver closed the channel or is gone,
    /// or the sink was closed. `start_send` hands values back.
    Closed,
}

impl<T: Send + 'static> Sender<T> {
    /// A [`Sink`](futures_sink::Sink) sending into this channel, with a
    /// sender of its own (a clone of this one, so the channel stays open
    /// while the sink lives, and this sender stays usable).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use futures_util::SinkExt;
    ///
    /// let (tx, mut rx) = ws_machine::channel::channel::<&str>(4);
    /// let mut sink = tx.sink();
    /// sink.send("one").await.expect("the receiver is alive");
    /// tx.send("two").await.expect("the receiver is alive");
    /// assert_eq!(rx.recv().await, Some("one"));
    /// assert_eq!(rx.recv().await, Some("two"));
    /// # }
    /// ```
    #[must_use]
    pub fn sink(&self) -> SenderSink<T> {
        self.clone().into_sink()
    }

    /// A [`Sink`](futures_sink::Sink) sending into this channel, made of
    /// this sender: closing the sink (as `StreamExt::forward` does at the
    /// end of its stream) drops it.
    ///
    /// A machine's `output` as a sink, taking messages from another source
    /// (here the echoes of nothing: the port refuses, so they wait in the
    /// queue and come back with the leftovers):
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// use futures_util::{StreamExt, stream};
    /// use ws_machine::{Machine, Message};
    ///
    /// let machine = Machine::builder("ws://127.0.0.1:1/").spawn()?;
    /// let lines = stream::iter(["a", "b", "c"]).map(|line| Ok(Message::from(line)));
    /// lines.forward(machine.output.clone().into_sink()).await.expect("the machine runs");
    /// let leftovers = machine.shutdown().await;
    /// assert_eq!(leftovers.unsent.len(), 3);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn into_sink(self) -> SenderSink<T> {
        SenderSink {
            stage: Stage::Idle(self),
        }
    }
}

/// A value refused by `try_push`, handed back as a sink hands values back.
fn handed_back<T>(refused: TrySendError<T>) -> SendError<T> {
    match refused {
        TrySendError::Full(value) | TrySendError::Closed(value) => SendError(value),
    }
}

/// Waits for a free slot of `shared` and reserves it; `None` if the
/// receiver closed the channel or is gone. Cancel-safe as
/// [`Shared::take_slot`] is.
async fn reserve<T>(shared: Arc<Shared<T>>) -> Option<OwnedPermit<T>> {
    if shared.take_slot().await {
        Some(OwnedPermit {
            shared,
            used: false,
        })
    } else {
        None
    }
}

impl<T: Send + 'static> SenderSink<T> {
    /// Reserves a slot, waiting for one if need be; ready once one is
    /// reserved or nothing more will be taken.
    fn poll_reserve(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            self.stage = match std::mem::replace(&mut self.stage, Stage::Closed) {
                stage @ (Stage::Reserved(..) | Stage::Closed) => {
                    self.stage = stage;
                    return Poll::Ready(());
                }
                Stage::Idle(sender) => match sender.shared.try_take_slot() {
                    Ok(()) => {
                        let permit = OwnedPermit {
                            shared: Arc::clone(&sender.shared),
                            used: false,
                        };
                        Stage::Reserved(sender, permit)
                    }
                    Err(TrySendError::Full(())) => {
                        let waiting = Box::pin(reserve(Arc::clone(&sender.shared)));
                        Stage::Waiting(sender, waiting)
                    }
                    Err(TrySendError::Closed(())) => Stage::Closed,
                },
                Stage::Waiting(sender, mut waiting) => match waiting.as_mut().poll(cx) {
                    // The wait registered this task: a freed slot, or the
                    // receiver closing or going, wakes it.
                    Poll::Pending => {
                        self.stage = Stage::Waiting(sender, waiting);
                        return Poll::Pending;
                    }
                    Poll::Ready(Some(permit)) => Stage::Reserved(sender, permit),
                    Poll::Ready(None) => Stage::Closed,
                },
            };
        }
    }

    /// Sends `value` into the reserved slot. Without one (`start_send`
    /// without a successful `poll_ready`, which breaks the `Sink` contract),
    /// it is sent if there is room now, and handed back otherwise.
    fn send_reserved(&mut self, value: T) -> Result<(), SendError<T>> {
        match std::mem::replace(&mut self.stage, Stage::Closed) {
            Stage::Reserved(sender, permit) => {
                // An error: the receiver went after the slot was reserved;
                // the sink stays closed.
                permit.send(value)?;
                self.stage = Stage::Idle(sender);
                Ok(())
            }
            Stage::Closed => Err(SendError(value)),
            stage @ (Stage::Idle(_) | Stage::Waiting(..)) => {
                self.stage = stage;
                match &self.stage {
                    Stage::Idle(sender) | Stage::Waiting(sender, _) => {
                        sender.shared.try_push(value).map_err(handed_back)
                    }
                    Stage::Reserved(..) | Stage::Closed => Err(SendError(value)),
                }
            }
        }
    }

    /// Whether this sink takes no more values: it was closed, or the
    /// receiver closed the channel or is gone (a value sent now would be
    /// handed back).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        match &self.stage {
            Stage::Closed => true,
            Stage::Idle(sender) | Stage::Waiting(sender, _) => sender.is_closed(),
            // A reserved slot is still taken after the receiver closed; only
            // a receiver that is gone refuses it.
            Stage::Reserved(_, permit) => !permit.shared.lock().reception.keeps_values(),
        }
    }
}

impl<T: Send + 'static> futures_sink::Sink<T> for SenderSink<T> {
    /// The value handed back: the receiver is gone or closed the channel
    /// (for `output`: the machine has stopped or is stopping), or this sink
    /// was closed.
    type Error = SendError<T>;

    /// Reserves a slot, waiting while the channel is full. Also ready when
    /// nothing more will be taken: `start_send` then hands the value back.
    /// A reserved slot is held until the next `start_send`, or given back
    /// when the sink is closed or dropped.
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().poll_reserve(cx).map(Ok)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Self::Error> {
        self.get_mut().send_reserved(item)
    }

    /// Nothing to flush: a value accepted by `start_send` is in the
    /// channel already.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    /// Gives back a reserved slot (or stops waiting for one) and drops this
    /// sink's sender; later values are handed back.
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().stage = Stage::Closed;
        Poll::Ready(Ok(()))
    }
}

/// A new sink on the same channel, with nothing reserved (a closed sink's
/// clone is closed).
impl<T> Clone for SenderSink<T> {
    fn clone(&self) -> Self {
        let stage = match &self.stage {
            Stage::Idle(sender) | Stage::Waiting(sender, _) | Stage::Reserved(sender, _) => {
                Stage::Idle(sender.clone())
            }
            Stage::Closed => Stage::Closed,
        };
        Self { stage }
    }
}

impl<T> fmt::Debug for SenderSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match &self.stage {
            Stage::Idle(_) => "idle",
            Stage::Waiting(..) => "waiting for room",
            Stage::Reserved(..) => "slot reserved",
            Stage::Closed => "closed",
        };
        f.debug_struct("SenderSink")
            .field("stage", &stage)
            .finish_non_exhaustive()
    }
}
