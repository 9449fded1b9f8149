//! The bounded channels between the caller and a machine: `input`,
//! `output`, `status` and `command`.
//!
//! Why not tokio's `mpsc`: it allocates a 32-slot block and a cache-padded
//! header for every channel up front, about 1.9 KiB resident per channel of
//! [`Message`](crate::Message)s (measured with 2,000 idle machines), and a
//! machine has four. That was most of an idle machine's memory, for queues
//! that are empty nearly all the time. These channels keep one small shared
//! header (144 bytes on 64-bit targets) and allocate their queue only when
//! values wait in it.
//!
//! How they work: the values wait in a `VecDeque` behind a mutex, which
//! also counts the free slots and holds the receiver's waker, so sending is
//! one lock (check room, push, take the waker) and so is receiving; the
//! mutex is never held across an `.await` or while a value is dropped.
//! Whether the receiver is to be woken is settled only under that lock: it
//! stores its waker there, and a sender takes it there. The queue's length
//! and whether the channel may have ended are mirrored in atomics for
//! [`Receiver::try_recv`], [`Receiver::len`] and [`Receiver::is_empty`],
//! which read them without the lock; they never wait, so a stale read is
//! only an answer from just before a concurrent send or drop.
//! Senders that find no room wait on a tokio [`Notify`]: a freed slot wakes
//! one of them (only when one waits), and a waiter that is cancelled after
//! being woken passes the wake-up on, so a cancelled [`Sender::send`] or
//! [`Sender::reserve`] loses no slot.
//!
//! Receiving takes part in tokio's cooperative scheduling, as tokio's
//! `mpsc` does, so a task looping over a channel that never runs dry still
//! lets the other tasks of its thread run (see [`Receiver::poll_recv`]).
//!
//! The API follows tokio's `mpsc` (`send`, `try_send`, `reserve`, `recv`,
//! `try_recv`, `close`), and a [`Receiver`] is a
//! [`Stream`](futures_core::Stream), so it fits `tokio_stream::StreamMap`
//! and `StreamExt` as it is. A [`Sender`] becomes a
//! [`Sink`](futures_sink::Sink) through [`Sender::sink`] or
//! [`Sender::into_sink`] (a [`SenderSink`], which keeps what a wait for room
//! needs, so the sender itself stays one pointer).

use std::{
    collections::VecDeque,
    fmt,
    future::poll_fn,
    pin::Pin,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll, Waker},
};

use tokio::sync::Notify;

mod sink;

pub use sink::SenderSink;

/// Creates a channel with room for `capacity` values (at least one), of
/// the kind a machine uses for `input` and `output`: e.g. a stand-in for a
/// part moved out of a [`Machine`](crate::Machine), or a channel feeding a
/// machine's `output` from elsewhere. Its queue keeps its allocation once
/// grown, as suits a stream of values.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (tx, mut rx) = ws_machine::channel::channel::<u32>(2);
/// tx.send(1).await.expect("the receiver is alive");
/// drop(tx);
/// assert_eq!(rx.recv().await, Some(1));
/// assert_eq!(rx.recv().await, None);
/// # }
/// ```
#[must_use]
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    with_queue(capacity, Queue::Keep)
}

/// Creates a channel whose queue frees its allocation whenever it empties:
/// for channels that carry a value now and then (statuses, commands), so
/// an idle machine keeps no queue for them.
pub(crate) fn occasional<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    with_queue(capacity, Queue::Release)
}

/// What the queue does with its allocation when it empties.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Queue {
    Keep,
    Release,
}

fn with_queue<T>(capacity: usize, queue: Queue) -> (Sender<T>, Receiver<T>) {
    let capacity = capacity.max(1);
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            free: capacity,
            waiting: 0,
            waker: None,
            senders: 1,
            reception: Reception::Open,
        }),
        room: Notify::new(),
        capacity,
        release: queue == Queue::Release,
        len: AtomicUsize::new(0),
        maybe_ended: AtomicBool::new(false),
    });
    (
        Sender {
            shared: Arc::clone(&shared),
        },
        Receiver { shared },
    )
}

/// What both ends share.
struct Shared<T> {
    state: Mutex<State<T>>,
    /// Wakes senders waiting for a free slot.
    room: Notify,
    capacity: usize,
    /// Free the queue's allocation whenever it empties.
    release: bool,
    /// The queue's length, mirrored (written under the lock) for the
    /// receiver's look without it.
    len: AtomicUsize,
    /// Every sender may be gone, or the channel closed: an empty channel's
    /// `try_recv` must look under the lock. Set under the lock, never unset.
    maybe_ended: AtomicBool,
}

struct State<T> {
    queue: VecDeque<T>,
    /// Slots neither filled nor reserved.
    free: usize,
    /// Senders waiting for a free slot.
    waiting: usize,
    /// The receiver, waiting for a value or for the last sender to go.
    waker: Option<Waker>,
    /// Live senders; at zero, the receiver sees the end after the queue.
    senders: usize,
    /// What the receiving side still takes; changed only by
    /// [`Shared::shut`].
    reception: Reception,
}

/// What the receiving side still takes. It only moves forward (open,
/// closed, gone), so "at least closed" is an order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Reception {
    /// Values are taken, in new slots and in reserved ones.
    Open,
    /// The receiver closed the channel: no new slots, but values sent into
    /// slots reserved before are still taken.
    Closed,
    /// The receiver is gone: nothing is taken, not even into a slot
    /// reserved before.
    Gone,
}

impl Reception {
    /// Whether a sender may take a new slot.
    fn gives_slots(self) -> bool {
        match self {
            Self::Open => true,
            Self::Closed | Self::Gone => false,
        }
    }

    /// Whether a value put in a slot already taken is kept.
    fn keeps_values(self) -> bool {
        match self {
            Self::Open | Self::Closed => true,
            Self::Gone => false,
        }
    }
}

impl<T> Shared<T> {
    /// The state; a poisoned lock is used as it is (nothing here can leave
    /// it half-updated: values are pushed and popped whole).
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a value in a slot taken for it, and wakes the receiver. Hands
    /// the value back (and frees the slot) if the receiver is gone. (A
    /// closed receiver still takes values into slots reserved before it
    /// closed.)
    fn push(&self, value: T) -> Result<(), T> {
        let mut state = self.lock();
        if !state.reception.keeps_values() {
            let wake = Self::free_slot(&mut state);
            drop(state);
            self.wake_sender(wake);
            return Err(value);
        }
        self.enqueue(state, value);
        Ok(())
    }

    /// Takes the receiver's waker, to wake it once the lock is released.
    fn take_waker(state: &mut State<T>) -> Option<Waker> {
        state.waker.take()
    }

    /// The one place the receiving side changes: moves it on to `to` (never
    /// back) and sends the lock-free readers to look under the lock.
    fn shut(&self, state: &mut State<T>, to: Reception) {
        state.reception = state.reception.max(to);
        self.maybe_ended.store(true, Ordering::Release);
    }

    /// Appends a value into a slot already taken, releases the lock and
    /// wakes the receiver. An occasional channel's queue starts with room
    /// for two (a status change usually comes with one more) instead of the
    /// four a `VecDeque` would take.
    fn enqueue(&self, mut state: MutexGuard<'_, State<T>>, value: T) {
        if self.release && state.queue.capacity() == 0 {
            state.queue.reserve_exact(2);
        }
        state.queue.push_back(value);
        self.len.store(state.queue.len(), Ordering::Release);
        let waker = Self::take_waker(&mut state);
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Takes a free slot and fills it, in one lock: what `try_send` does.
    fn try_push(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut state = self.lock();
        if !state.reception.gives_slots() {
            return Err(TrySendError::Closed(value));
        }
        if state.free == 0 {
            return Err(TrySendError::Full(value));
        }
        state.free -= 1;
        self.enqueue(state, value);
        Ok(())
    }

    /// Counts a slot as free again; whether a waiting sender must be woken.
    fn free_slot(state: &mut State<T>) -> bool {
        state.free += 1;
        state.waiting > 0
    }

    /// Wakes one waiting sender, if `free_slot` said so.
    fn wake_sender(&self, wake: bool) {
        if wake {
            self.room.notify_one();
        }
    }

    /// Gives back a slot that a sender took but did not fill. Once the
    /// channel is closed or every sender is gone, the receiver waits for
    /// exactly this (the end comes when no slot is taken any more), so it is
    /// woken too.
    fn give_back(&self) {
        let mut state = self.lock();
        let wake = Self::free_slot(&mut state);
        let waker = if !state.reception.gives_slots() || state.senders == 0 {
            Self::take_waker(&mut state)
        } else {
            None
        };
        drop(state);
        self.wake_sender(wake);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Whether nothing waits and nothing more can come: every sender is
    /// gone or the channel is closed, and no slot is held (an
    /// `OwnedPermit` may outlive the last sender).
    fn ended(&self, state: &State<T>) -> bool {
        state.queue.is_empty()
            && state.free == self.capacity
            && (state.senders == 0 || !state.reception.gives_slots())
    }

    /// Takes the oldest value from the locked state and frees its slot;
    /// the caller wakes a waiting sender (`wake`) once the lock is released.
    fn take(&self, state: &mut State<T>, wake: &mut bool) -> Option<T> {
        let value = state.queue.pop_front()?;
        if self.release && state.queue.is_empty() {
            state.queue = VecDeque::new();
        }
        self.len.store(state.queue.len(), Ordering::Release);
        *wake = Self::free_slot(state);
        Some(value)
    }

    /// Takes one free slot without waiting.
    fn try_take_slot(&self) -> Result<(), TrySendError<()>> {
        let mut state = self.lock();
        if !state.reception.gives_slots() {
            Err(TrySendError::Closed(()))
        } else if state.free == 0 {
            Err(TrySendError::Full(()))
        } else {
            state.free -= 1;
            Ok(())
        }
    }

    /// Waits for a free slot and takes it; `false` if the receiver closed.
    /// Cancel-safe: a cancelled wait takes nothing, and a wake-up it got is
    /// passed on to another waiting sender.
    async fn take_slot(&self) -> bool {
        loop {
            match self.try_take_slot() {
                Ok(()) => return true,
                Err(TrySendError::Closed(())) => return false,
                Err(TrySendError::Full(())) => {}
            }
            let notified = self.room.notified();
            tokio::pin!(notified);
            // Registered before looking again, so a slot freed from now on
            // wakes this sender.
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                if !state.reception.gives_slots() {
                    return false;
                }
                if state.free > 0 {
                    state.free -= 1;
                    return true;
                }
                state.waiting += 1;
            }
            let _waiting = Waiting(self);
            notified.await;
        }
    }
}

/// A sender counted among those waiting for a slot, until dropped (woken or
/// cancelled).
struct Waiting<'a, T>(&'a Shared<T>);

impl<T> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        self.0.lock().waiting -= 1;
    }
}

/// The sending end of a channel to or from a machine; cheap to clone.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving end of a channel to or from a machine.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// A slot reserved by [`Sender::reserve`]: sending through it cannot fail
/// for lack of room. Dropping it unused gives the slot back.
pub struct Permit<'a, T> {
    shared: &'a Shared<T>,
}

/// A slot reserved without borrowing the sender (for the machine's own use).
pub(crate) struct OwnedPermit<T> {
    shared: Arc<Shared<T>>,
    used: bool,
}

/// [`Sender::send`] failed: the receiver is gone (for `output` and
/// `command`: the machine has stopped). The value is handed back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

/// [`Sender::try_send`] failed; the value is handed back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The channel is full: try again later, or wait with
    /// [`Sender::send`].
    Full(T),
    /// The receiver is gone (for `output` and `command`: the machine has
    /// stopped).
    Closed(T),
}

/// [`Receiver::try_recv`] found nothing.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// Nothing waits now; more may come.
    Empty,
    /// Nothing waits and nothing more will come: every sender is gone.
    Disconnected,
}

impl<T> Sender<T> {
    /// Sends a value, waiting for room if the channel is full.
    ///
    /// Cancelling the wait loses the value but not the place of other
    /// senders; to keep the value when the wait is cancelled, use
    /// [`Sender::reserve`] first.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the receiver is gone.
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        let value = match self.shared.try_push(value) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(value)) => return Err(SendError(value)),
            Err(TrySendError::Full(value)) => value,
        };
        if !self.shared.take_slot().await {
            return Err(SendError(value));
        }
        self.shared.push(value).map_err(SendError)
    }

    /// Sends a value if there is room now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if there is no room,
    /// [`TrySendError::Closed`] if the receiver is gone; both hand the value
    /// back.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.shared.try_push(value)
    }

    /// Waits for room and reserves it; cancel-safe (a cancelled wait
    /// reserves nothing and loses nothing).
    ///
    /// # Errors
    ///
    /// [`SendError`] if the receiver is gone.
    pub async fn reserve(&self) -> Result<Permit<'_, T>, SendError<()>> {
        if self.shared.take_slot().await {
            Ok(Permit {
                shared: &self.shared,
            })
        } else {
            Err(SendError(()))
        }
    }

    /// Waits for room and reserves it, holding a reference to the channel
    /// instead of borrowing this sender.
    pub(crate) async fn reserve_owned(&self) -> Result<OwnedPermit<T>, SendError<()>> {
        if self.shared.take_slot().await {
            Ok(OwnedPermit {
                shared: Arc::clone(&self.shared),
                used: false,
            })
        } else {
            Err(SendError(()))
        }
    }

    /// Reserves room if there is some now.
    pub(crate) fn try_reserve_owned(&self) -> Option<OwnedPermit<T>> {
        self.shared.try_take_slot().ok().map(|()| OwnedPermit {
            shared: Arc::clone(&self.shared),
            used: false,
        })
    }

    /// Free slots now.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.shared.lock().free
    }

    /// The channel's size, as configured.
    #[must_use]
    pub fn max_capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Whether the receiver closed the channel or is gone (for `output` and
    /// `command`: the machine is stopping or has stopped).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        !self.shared.lock().reception.gives_slots()
    }
}

impl<T> Permit<'_, T> {
    /// Sends the value into the reserved slot.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the receiver is gone (for `output`:
    /// the machine has stopped), so that it is not lost unseen.
    pub fn send(self, value: T) -> Result<(), SendError<T>> {
        let shared = self.shared;
        std::mem::forget(self);
        shared.push(value).map_err(SendError)
    }
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        self.shared.give_back();
    }
}

impl<T> OwnedPermit<T> {
    /// Sends the value into the reserved slot; hands it back if the
    /// receiver is gone.
    pub(crate) fn send(mut self, value: T) -> Result<(), SendError<T>> {
        self.used = true;
        self.shared.push(value).map_err(SendError)
    }
}

impl<T> Drop for OwnedPermit<T> {
    fn drop(&mut self) {
        if !self.used {
            self.shared.give_back();
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            if state.senders == 0 {
                self.shared.maybe_ended.store(true, Ordering::Release);
                Shared::take_waker(&mut state)
            } else {
                None
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// The next value, waiting for one; `None` once the queue is empty and
    /// nothing more can come: every sender is gone or the channel was
    /// [closed](Receiver::close), and no reserved slot is held.
    /// Cancel-safe: a cancelled wait takes nothing.
    ///
    /// Uses the task's cooperative budget as described for
    /// [`Receiver::poll_recv`], so a loop like the one below yields to the
    /// other tasks of its thread now and then even if values never run out.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (tx, mut rx) = ws_machine::channel::channel::<u32>(8);
    /// tokio::spawn(async move {
    ///     for i in 0..3 {
    ///         tx.send(i).await.expect("the receiver is alive");
    ///     }
    /// });
    /// let mut sum = 0;
    /// while let Some(i) = rx.recv().await {
    ///     sum += i;
    /// }
    /// assert_eq!(sum, 3);
    /// # }
    /// ```
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next value; registers the task to be woken when one
    /// arrives or the last sender goes.
    ///
    /// Takes part in tokio's cooperative scheduling, as tokio's `mpsc`
    /// does: handing out a value (or the end) uses one unit of the task's
    /// budget, and once the task has spent its budget this returns
    /// `Pending`, with the task scheduled to run again, even if a value
    /// waits. A poll that finds nothing uses none. Outside a tokio runtime
    /// there is no budget.
    ///
    /// ```
    /// use std::{future::poll_fn, task::Poll};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (tx, mut rx) = ws_machine::channel::channel::<u32>(2);
    /// // Nothing yet: `Pending`, and this task is woken by the next send.
    /// let first = poll_fn(|cx| Poll::Ready(rx.poll_recv(cx))).await;
    /// assert!(first.is_pending());
    /// tx.try_send(7).expect("room");
    /// assert_eq!(poll_fn(|cx| rx.poll_recv(cx)).await, Some(7));
    /// # }
    /// ```
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        // Always under the lock. A look without it ("empty, and this task's
        // waker still stored") saved about 10 ns per poll of an empty
        // channel but nothing measurable per message, for 16 bytes per
        // channel and a wake-up protocol in atomics (see docs/design.md).
        let mut state = self.shared.lock();
        if state.queue.is_empty() && !self.shared.ended(&state) {
            // A replaced waker is dropped once the lock is released: its
            // drop may run arbitrary code (the last reference to a task).
            let replaced = match &state.waker {
                Some(waker) if waker.will_wake(cx.waker()) => None,
                _ => state.waker.replace(cx.waker().clone()),
            };
            drop(state);
            drop(replaced);
            return Poll::Pending;
        }
        // Something to hand out, which uses a unit of the task's budget.
        // (Looked at only now: polling an empty channel, what a `select!`
        // does most, needs none.)
        if !tokio::task::coop::has_budget_remaining() {
            drop(state);
            // None left: the value stays, and tokio wakes the task once it
            // has yielded (outside the lock: a wake-up may run any code).
            if tokio::task::coop::poll_proceed(cx).is_ready() {
                // Not reached (no budget is no budget), but never a lost
                // wake-up.
                cx.waker().wake_by_ref();
            }
            return Poll::Pending;
        }
        let mut wake = false;
        let value = self.shared.take(&mut state, &mut wake);
        drop(state);
        // Uses the unit seen above (on this thread, nothing took it since).
        if let Poll::Ready(coop) = tokio::task::coop::poll_proceed(cx) {
            coop.made_progress();
        }
        self.shared.wake_sender(wake);
        Poll::Ready(value)
    }

    /// The next value if one waits now.
    ///
    /// Like tokio's `try_recv`, this uses none of the task's cooperative
    /// budget: it never returns `Pending`, so it cannot make a task yield.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if none waits, [`TryRecvError::Disconnected`]
    /// if none waits and none can come (see [`Receiver::recv`]).
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        if self.shared.len.load(Ordering::Acquire) == 0
            && !self.shared.maybe_ended.load(Ordering::Acquire)
        {
            return Err(TryRecvError::Empty);
        }
        let mut state = self.shared.lock();
        let mut wake = false;
        if let Some(value) = self.shared.take(&mut state, &mut wake) {
            drop(state);
            self.shared.wake_sender(wake);
            return Ok(value);
        }
        if self.shared.ended(&state) {
            Err(TryRecvError::Disconnected)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// Whether no value waits now.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.shared.len.load(Ordering::Acquire) == 0
    }

    /// How many values wait now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shared.len.load(Ordering::Acquire)
    }

    /// Refuses further values (senders get an error) while those already
    /// sent, and those of senders already holding a reserved slot, can
    /// still be received.
    pub fn close(&mut self) {
        self.shared.shut(&mut self.shared.lock(), Reception::Closed);
        // Every waiting sender looks again, finds the channel closed and
        // gives up.
        self.shared.room.notify_waiters();
    }
}

/// How many values wait in a channel, read without holding either end (so
/// it keeps the channel open for neither): the machine's stats look at its
/// `output` queue this way.
pub(crate) struct Depth<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Depth<T> {
    /// How many values wait now.
    pub(crate) fn get(&self) -> usize {
        self.shared.len.load(Ordering::Acquire)
    }
}

impl<T> Clone for Depth<T> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Sender<T> {
    /// A look at this channel's queue length that holds neither end.
    pub(crate) fn depth(&self) -> Depth<T> {
        Depth {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // Values still queued, and the receiver's waker, go once the lock is
        // released (their drops may run arbitrary code, e.g. a `Bytes`
        // owner or the last reference to a task).
        let (queued, waker) = {
            let mut state = self.shared.lock();
            self.shared.shut(&mut state, Reception::Gone);
            let queued = std::mem::take(&mut state.queue);
            // Their slots are free again, as in tokio's channels.
            state.free += queued.len();
            self.shared.len.store(0, Ordering::Release);
            (queued, Shared::take_waker(&mut state))
        };
        // Every waiting sender looks again and finds the receiver gone.
        self.shared.room.notify_waiters();
        drop(waker);
        drop(queued);
    }
}

impl<T> futures_core::Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.capacity())
            .field("max_capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .field("max_capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Permit<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for OwnedPermit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the receiving side is gone (the machine has stopped)")
    }
}

impl<T> std::error::Error for SendError<T> {}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("the channel is full: try again later or wait with send"),
            Self::Closed(_) => f.write_str("the receiving side is gone (the machine has stopped)"),
        }
    }
}

impl<T> std::error::Error for TrySendError<T> {}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("nothing waits in the channel now"),
            Self::Disconnected => f.write_str("the channel is empty and every sender is gone"),
        }
    }
}

impl std::error::Error for TryRecvError {}

#[cfg(test)]
mod tests;
