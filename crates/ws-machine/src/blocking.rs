//! The machine for programs without a tokio runtime: the same machine, with
//! calls that block instead of futures.
//!
//! Why: a command-line tool, a test harness or a program built on threads
//! should not need an async runtime, and an `async fn main` of its own, to
//! keep a WebSocket connection up. [`Builder::spawn_blocking`] starts the
//! usual machine on a runtime it owns; [`Machine::recv`], [`Machine::send`],
//! [`Machine::status`] and [`Machine::shutdown`] block the calling thread
//! until they are done.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # // An echo server on 127.0.0.1, on a runtime of its own.
//! # let runtime = tokio::runtime::Runtime::new()?;
//! # let server = { let _in = runtime.enter(); wsm_server::Server::start(Default::default())? };
//! # let url = server.url();
//! use std::time::Duration;
//! use ws_machine::Machine;
//!
//! // `url` is an echo server's, ws://127.0.0.1:PORT/.
//! let mut machine = Machine::builder(&url).spawn_blocking()?;
//! machine.send("hello")?; // waits in the queue until the machine is connected
//! let echo = machine.recv_timeout(Duration::from_secs(5))?;
//! assert_eq!(echo.as_text(), Some("hello"));
//! let leftovers = machine.shutdown(); // closes, stops, hands back what was not delivered
//! assert!(leftovers.unsent.is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! # The runtime
//!
//! Each blocking machine owns a **current-thread runtime on a thread of its
//! own** (named `ws-machine`), which runs the machine's one task and nothing
//! else. Why this one:
//!
//! - A machine is one task that mostly waits; one thread is all it can use.
//!   A multi-thread runtime with one worker would add a second scheduler's
//!   machinery, and tokio's `rt-multi-thread` feature for every user of the
//!   crate, for nothing. (Host names are still resolved on tokio's blocking
//!   pool, whose threads start only when needed.)
//! - The calls never enter the runtime. A blocking call polls the same
//!   channels the async API uses, and parks the thread until the channel's
//!   waker unparks it; it needs no runtime context, and it cannot reach
//!   tokio's panics for blocking inside a runtime. The runtime runs and is
//!   shut down only on its own thread (it is built, and the machine's task
//!   spawned onto it, before that thread starts).
//! - The thread ends when the machine has stopped: [`Machine::shutdown`],
//!   [`Command::Quit`] or dropping the blocking machine stops it.
//!
//! Dropping a blocking machine tells its machine to stop and waits for that
//! (so the close handshake is done before, say, `main` returns), at most the
//! [close timeout](Builder::close_timeout) and a margin of one second; what
//! was not delivered is then dropped with it: [`Machine::shutdown`] hands it
//! back instead.
//!
//! Not for async code: a blocking call there would stall the runtime's
//! thread. [`Builder::spawn_blocking`] refuses to start inside a tokio
//! runtime ([`Error::InsideRuntime`]); a blocking machine carried into async
//! code later blocks that thread when called, and its drop there does not
//! wait.

use std::{
    fmt,
    future::Future,
    pin::pin,
    sync::{Arc, mpsc::RecvTimeoutError},
    task::{Context, Poll, Wake, Waker},
    thread,
    time::{Duration, Instant},
};

use tokio::sync::oneshot;

use crate::{
    channel::{self, Receiver, SendError, TryRecvError, TrySendError},
    handoff::stats::StatsHandle,
    settings::Builder,
    types::{Command, Error, Leftovers, Message, Stats, Status},
};

/// How much longer than the close timeout a drop waits for the machine to
/// stop (the thread's own scheduling, a loaded system).
const DROP_MARGIN: Duration = Duration::from_secs(1);

/// How long the runtime's shutdown waits, once the machine has stopped, for
/// work on its blocking pool (a host name lookup under way) before leaving
/// it behind.
const RUNTIME_SHUTDOWN: Duration = Duration::from_millis(100);

/// A [`Machine`](crate::Machine) whose calls block: for programs without a
/// tokio runtime. Started by [`Builder::spawn_blocking`]; see the
/// [module](self) for the runtime it runs on.
///
/// Receiving ([`recv`](Machine::recv), [`status`](Machine::status)) takes
/// `&mut self`: one thread receives. Other threads send through a
/// [`Sender`] from [`Machine::sender`].
///
/// ```
/// # fn main() -> Result<(), ws_machine::Error> {
/// use std::time::Duration;
/// use ws_machine::{Machine, State};
///
/// // Nothing listens on port 1: the machine tries, and waits between attempts.
/// let mut machine = Machine::builder("ws://127.0.0.1:1/").spawn_blocking()?;
/// let status = machine.status_timeout(Duration::from_secs(5)).expect("a status");
/// assert_eq!(status.state, State::Connecting);
/// machine.send("hello").expect("the machine runs");
/// let leftovers = machine.shutdown();
/// assert_eq!(leftovers.unsent[0].as_text(), Some("hello"));
/// # Ok(())
/// # }
/// ```
pub struct Machine {
    /// The async machine's `input`.
    input: Receiver<Message>,
    /// The async machine's `status`.
    status: Receiver<Status>,
    /// The async machine's `output`.
    output: Sender,
    /// The async machine's `command`: the only sender, so dropping it
    /// stops the machine.
    command: channel::Sender<Command>,
    /// The URL the machine connects to.
    url: String,
    /// The machine's stats.
    stats: StatsHandle,
    /// The runtime's thread. Last, so that a drop lets go of the channels
    /// (which tells the machine to stop) before it waits for the thread.
    runner: Runner,
}

/// Puts messages on a blocking machine's `output` from any thread; made by
/// [`Machine::sender`], cheap to clone. Senders do not keep the machine
/// running: it stops when its [`Machine`] is shut down or dropped, and
/// sending then hands the message back.
///
/// ```
/// # fn main() -> Result<(), ws_machine::Error> {
/// let machine = ws_machine::Machine::builder("ws://127.0.0.1:1/").spawn_blocking()?;
/// let sender = machine.sender();
/// std::thread::spawn(move || sender.send("from another thread"))
///     .join()
///     .expect("no panic")
///     .expect("the machine runs");
/// let leftovers = machine.shutdown();
/// assert_eq!(leftovers.unsent[0].as_text(), Some("from another thread"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Sender {
    output: channel::Sender<Message>,
}

/// The runtime's thread, and the machine's end as it reports it.
struct Runner {
    /// `None` once waited for (by a shutdown or a drop).
    running: Option<Running>,
    /// How long a drop waits for the machine to stop: its close timeout and
    /// [`DROP_MARGIN`].
    patience: Duration,
}

struct Running {
    /// Sent by the runtime's thread when the machine's task has ended,
    /// with what the machine never delivered.
    ended: oneshot::Receiver<Leftovers>,
    /// Ends within [`RUNTIME_SHUTDOWN`] of sending `ended`.
    thread: thread::JoinHandle<()>,
}

impl Builder {
    /// Checks every option and starts the machine on a runtime of its own,
    /// for a program without a tokio runtime: see [`blocking`](crate::blocking).
    /// (Not to be confused with tokio's `spawn_blocking`, which runs blocking
    /// code from async code: this is the other way round.)
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`], [`Error::InvalidHeader`] or
    /// [`Error::InvalidConfig`] saying what to fix, as [`Builder::spawn`];
    /// [`Error::InsideRuntime`] when called inside a tokio runtime (use
    /// [`Builder::spawn`] there); [`Error::RuntimeStart`] if the system
    /// refuses the runtime or its thread.
    ///
    /// ```
    /// let err = ws_machine::Machine::builder("ws://127.0.0.1:1/")
    ///     .queue_capacity(0)
    ///     .spawn_blocking()
    ///     .expect_err("a zero capacity");
    /// assert!(err.to_string().contains("queue_capacity"));
    ///
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    /// let err = runtime
    ///     .block_on(async { ws_machine::Machine::builder("ws://127.0.0.1:1/").spawn_blocking() })
    ///     .expect_err("inside a runtime");
    /// assert!(matches!(err, ws_machine::Error::InsideRuntime));
    /// ```
    pub fn spawn_blocking(self) -> Result<Machine, Error> {
        Machine::start(self)
    }
}

impl Machine {
    fn start(builder: Builder) -> Result<Self, Error> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::InsideRuntime);
        }
        let patience = builder.close_timeout_setting().saturating_add(DROP_MARGIN);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::RuntimeStart(Arc::new(e)))?;
        // The machine's task is spawned here and runs once the thread below
        // drives the runtime.
        let machine = {
            let _in_runtime = runtime.enter();
            builder.spawn()?
        };
        let crate::Machine {
            input,
            output,
            status,
            command,
            url,
            stopped,
            stats,
        } = machine;
        let (report, ended) = oneshot::channel();
        let thread = thread::Builder::new()
            .name("ws-machine".into())
            .spawn(move || {
                let leftovers = runtime.block_on(stopped);
                // An error: the blocking machine is gone, its leftovers
                // with it (a drop discards them).
                let _ = report.send(leftovers);
                runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
            })
            .map_err(|e| Error::RuntimeStart(Arc::new(e)))?;
        Ok(Self {
            input,
            status,
            output: Sender { output },
            command,
            url,
            stats,
            runner: Runner {
                running: Some(Running { ended, thread }),
                patience,
            },
        })
    }

    /// What the machine has done so far (see [`Stats`]); never waits.
    ///
    /// ```
    /// # fn main() -> Result<(), ws_machine::Error> {
    /// let machine = ws_machine::Machine::builder("ws://127.0.0.1:1/").spawn_blocking()?;
    /// assert_eq!(machine.stats().messages_in, 0);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.stats.get()
    }

    /// A clonable handle on the stats, for another thread.
    #[must_use]
    pub fn stats_handle(&self) -> StatsHandle {
        self.stats.clone()
    }

    /// The next message from the server, waiting for one; `None` once the
    /// machine has stopped and every message it received has been read.
    ///
    /// ```
    /// # fn main() -> Result<(), ws_machine::Error> {
    /// let mut machine = ws_machine::Machine::builder("ws://127.0.0.1:1/").spawn_blocking()?;
    /// machine.command(ws_machine::Command::Quit).expect("the machine runs");
    /// assert!(machine.recv().is_none(), "stopped: input is closed");
    /// # Ok(())
    /// # }
    /// ```
    pub fn recv(&mut self) -> Option<Message> {
        wait(self.input.recv())
    }

    /// The next message from the server, waiting at most `timeout`.
    /// Nothing is lost when the time runs out: a message arriving later is
    /// there for the next call.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if none came in time,
    /// [`RecvTimeoutError::Disconnected`] once the machine has stopped and
    /// every message it received has been read.
    ///
    /// ```
    /// # fn main() -> Result<(), ws_machine::Error> {
    /// use std::{sync::mpsc::RecvTimeoutError, time::Duration};
    ///
    /// let mut machine = ws_machine::Machine::builder("ws://127.0.0.1:1/").spawn_blocking()?;
    /// let nothing = machine.recv_timeout(Duration::from_millis(50));
    /// assert_eq!(nothing.expect_err("no server"), RecvTimeoutError::Timeout);
    /// # Ok(())
    /// # }
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Message, RecvTimeoutError> {
        received(wait_until(self.input.recv(), deadline(timeout)))
    }

    /// The next message from the server if one waits now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if none waits, [`TryRecvError::Disconnected`]
    /// once the machine has stopped and every message it received has been
    /// read.
    pub fn try_recv(&mut self) -> Result<Message, TryRecvError> {
        self.input.try_recv()
    }

    /// Puts a message on `output`, waiting while the queue is full
    /// ([`Builder::queue_capacity`]); the machine writes it once connected.
    /// A `&str` or `String` becomes a text message, a `Vec<u8>` or `Bytes`
    /// plain bytes ([`Message::text`] and [`Message::binary`] fix the kind).
    ///
    /// # Errors
    ///
    /// [`SendError`] with the message if the machine has stopped.
    ///
    /// ```
    /// # fn main() -> Result<(), ws_machine::Error> {
    /// let machine = ws_machine::Machine::builder("ws://127.0.0.1:1/").spawn_blocking()?;
    /// machine.send("text").expect("the machine runs");
    /// machine.send(vec![1u8, 2, 3]).expect("the machine runs");
    /// assert_eq!(machine.shutdown().unsent.len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError<Message>> {
        self.output.send(message)
    }

    /// Puts a message on `output` if there is room now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if the queue is full, [`TrySendError::Closed`]
    /// if the machine has stopped; both hand the message back.
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), TrySendError<Message>> {
        self.output.try_send(message)
    }

    /// A [`Sender`] for other threads.
    #[must_use]
    pub fn sender(&self) -> Sender {
        self.output.clone()
    }

    /// The next change of state, waiting for one; `None` once the machine
    /// has stopped and its last status has been read. The machine never
    /// waits for this: a caller who reads no statuses misses some, never the
    /// newest nor the final one (see
    /// [`Machine::status`](crate::Machine::status)).
    ///
    /// ```
    /// # fn main() -> Result<(), ws_machine::Error> {
    /// use ws_machine::State;
    ///
    /// let mut machine = ws_machine::Machine::builder("ws://127.0.0.1:1/")
    ///     .max_attempts(1)
    ///     .spawn_blocking()?;
    /// let mut last = None;
    /// while let Some(status) = machine.status() {
    ///     last = Some(status);
    /// }
    /// let last = last.expect("a final status");
    /// assert!(last.is_final() && last.state == State::Disconnected);
    /// # Ok(())
    /// # }
    /// ```
    pub fn status(&mut self) -> Option<Status> {
        wait(self.status.recv())
    }

    /// The next change of state, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if none came in time,
    /// [`RecvTimeoutError::Disconnected`] once the machine has stopped and
    /// its last status has been read.
    pub fn status_timeout(&mut self, timeout: Duration) -> Result<Status, RecvTimeoutError> {
        received(wait_until(self.status.recv(), deadline(timeout)))
    }

    /// The next change of state if one waits now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if none waits, [`TryRecvError::Disconnected`]
    /// once the machine has stopped and its last status has been read.
    pub fn try_status(&mut self) -> Result<Status, TryRecvError> {
        self.status.try_recv()
    }

    /// Sends a command to the machine (waiting if 8 are already waiting).
    ///
    /// # Errors
    ///
    /// [`SendError`] with the command if the machine has stopped.
    ///
    /// ```
    /// # fn main() -> Result<(), ws_machine::Error> {
    /// use ws_machine::Command;
    ///
    /// let mut machine = ws_machine::Machine::builder("ws://127.0.0.1:1/").spawn_blocking()?;
    /// machine.command(Command::UseText).expect("the machine runs");
    /// machine.command(Command::Quit).expect("the machine runs");
    /// while let Some(status) = machine.status() {
    ///     println!("{status}"); // to the last one: DISCONNECTED
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn command(&self, command: Command) -> Result<(), SendError<Command>> {
        wait(self.command.send(command))
    }

    /// Stops the machine (as [`Command::Quit`] does), waits until it has
    /// stopped (within the [close timeout](Builder::close_timeout) once it
    /// takes the quit), and hands back everything that was not delivered:
    /// unsent and unacknowledged messages, and received messages not yet
    /// read. The runtime and its thread are gone when it returns.
    ///
    /// ```
    /// # fn main() -> Result<(), ws_machine::Error> {
    /// // Nothing listens on port 1: the message is never written.
    /// let machine = ws_machine::Machine::builder("ws://127.0.0.1:1/").spawn_blocking()?;
    /// machine.send("hello").expect("the machine runs");
    /// let leftovers = machine.shutdown();
    /// assert_eq!(leftovers.unsent[0].as_text(), Some("hello"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn shutdown(self) -> Leftovers {
        let Self {
            mut input,
            status,
            output,
            command,
            url: _,
            stats: _,
            mut runner,
        } = self;
        // An error: the machine already stopped, or 8 commands wait; with
        // its only command sender gone it stops either way.
        let _ = command.try_send(Command::Quit);
        drop((command, status, output));
        let Some(Running { mut ended, thread }) = runner.running.take() else {
            // Not reached: only a shutdown or a drop takes it.
            return Leftovers::default();
        };
        // Read `input` while the machine stops: it hands over what it still
        // holds before it closes `input`.
        let mut unread = Vec::new();
        let ended = wait(async {
            loop {
                tokio::select! {
                    biased;
                    ended = &mut ended => break ended,
                    message = input.recv() => match message {
                        Some(message) => unread.push(message),
                        None => break (&mut ended).await,
                    },
                }
            }
        });
        // An error: the thread ended without a report, which it does not
        // (the machine's task does not panic; `Stopped` covers a runtime
        // that ends under it).
        let mut leftovers = ended.unwrap_or_default();
        // The thread only shuts the runtime down now, within
        // RUNTIME_SHUTDOWN. An error is its panic, already reported.
        let _ = thread.join();
        while let Ok(message) = input.try_recv() {
            unread.push(message);
        }
        unread.append(&mut leftovers.received);
        leftovers.received = unread;
        leftovers
    }

    /// The URL the machine connects to.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Sender {
    /// Puts a message on the machine's `output`, waiting while the queue is
    /// full; see [`Machine::send`].
    ///
    /// # Errors
    ///
    /// [`SendError`] with the message if the machine has stopped.
    pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError<Message>> {
        wait(self.output.send(message.into()))
    }

    /// Puts a message on the machine's `output` if there is room now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if the queue is full, [`TrySendError::Closed`]
    /// if the machine has stopped; both hand the message back.
    pub fn try_send(&self, message: impl Into<Message>) -> Result<(), TrySendError<Message>> {
        self.output.try_send(message.into())
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let Some(Running { mut ended, thread }) = self.running.take() else {
            return;
        };
        // In async code, do not stall the runtime's thread: the machine
        // stops on its own (its command sender is gone), and its thread
        // ends after it.
        if tokio::runtime::Handle::try_current().is_ok() {
            return;
        }
        if wait_until(&mut ended, deadline(self.patience)).is_some() {
            // Stopped: the thread only shuts the runtime down now.
            let _ = thread.join();
        } else {
            tracing::warn!(
                waited = ?self.patience,
                "the blocking machine did not stop in time; its thread is left to finish"
            );
        }
    }
}

/// The URL is shown without the user name and password it may carry.
impl fmt::Debug for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Machine")
            .field("input", &self.input)
            .field("output", &self.output)
            .field("status", &self.status)
            .field("command", &self.command)
            .field("url", &crate::types::redact_url(&self.url))
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Sender").field(&self.output).finish()
    }
}

/// `now + timeout`; `None` (no deadline) when that is beyond what an
/// `Instant` holds, as `Duration::MAX` is.
fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// What a bounded receive came to.
fn received<T>(outcome: Option<Option<T>>) -> Result<T, RecvTimeoutError> {
    match outcome {
        Some(Some(value)) => Ok(value),
        Some(None) => Err(RecvTimeoutError::Disconnected),
        None => Err(RecvTimeoutError::Timeout),
    }
}

/// Wakes a waiting thread (see [`wait_until`]).
struct Unpark(thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    /// This thread's waker, made once: a channel keeps the waker it was last
    /// polled with, and keeps this one (`will_wake`) instead of replacing
    /// it on every call.
    static WAKER: Waker = Waker::from(Arc::new(Unpark(thread::current())));
}

/// Runs `future` on this thread until it completes.
fn wait<F: Future>(future: F) -> F::Output {
    let mut future = pin!(tokio::task::unconstrained(future));
    let waker = this_thread();
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // Woken by the waker, or spuriously: either way, poll again.
        thread::park();
    }
}

/// Runs `future` on this thread until it completes (`Some`) or `deadline`
/// passes (`None`; no deadline: until it completes). The thread parks
/// between polls, unparked by the future's waker. The future runs outside
/// tokio's cooperative budget (`unconstrained`), so on a runtime's thread,
/// where a budget may be running out, it still completes rather than
/// spinning.
fn wait_until<F: Future>(future: F, deadline: Option<Instant>) -> Option<F::Output> {
    let Some(deadline) = deadline else {
        return Some(wait(future));
    };
    let mut future = pin!(tokio::task::unconstrained(future));
    let waker = this_thread();
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        thread::park_timeout(left);
    }
}

/// A waker that unparks this thread.
fn this_thread() -> Waker {
    WAKER
        .try_with(Waker::clone)
        // While the thread's locals are being destroyed: a waker of its own.
        .unwrap_or_else(|_| Waker::from(Arc::new(Unpark(thread::current()))))
}
