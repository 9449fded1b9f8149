//! The caller's handle: four channels, and a way to stop and take back what
//! was not delivered. This is the top of the crate: it starts the driver's
//! task with the settings the builder validated.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use http::HeaderMap;
use tokio::task::JoinHandle;

use crate::{
    channel::{self, Receiver, Sender},
    driver::{Driver, Ends},
    handoff::stats::{Meter, StatsHandle},
    settings::Builder,
    types::{Command, Error, Leftovers, Message, Stats, Status},
};

/// A WebSocket connection that keeps itself up.
///
/// [`Machine::new`] (or [`Machine::builder`]) starts a task on the current
/// tokio runtime that connects, reconnects, keeps the link alive and reports
/// every change of state. The caller talks to it through four channels, so
/// many machines, timers and other sources fit in one `tokio::select!`:
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> Result<(), ws_machine::Error> {
/// use ws_machine::{Command, Machine, State};
///
/// let mut machine = Machine::new("ws://127.0.0.1:8080/", ws_machine::http::HeaderMap::new())?;
/// loop {
///     tokio::select! {
///         Some(status) = machine.status.recv() => {
///             println!("{status}");
///             if status.state == State::Connected {
///                 let _ = machine.output.send("hello".into()).await;
///             }
///         }
///         Some(message) = machine.input.recv() => {
///             println!("got {:?}", message.as_text());
///             let _ = machine.command.send(Command::Quit).await;
///         }
///         else => break,
///     }
/// }
/// # Ok(())
/// # }
/// ```
///
/// Each channel is in order. Across `status` and `input`, the machine
/// reports `Connected` before it reads anything from that connection, and
/// when the server ends a connection, everything read from it is in `input`
/// before the `Disconnected` that ends it, unless `input` was full: the
/// messages the machine holds then follow in order as the caller reads (they
/// are never dropped, and a quit hands them over before `input` closes, as
/// far as the caller reads within the close timeout; the rest is returned by
/// [`Machine::shutdown`]). A caller that polls both channels in one
/// `select!` sees them interleaved as it polls.
///
/// Stopping: send [`Command::Quit`], drop [`Machine::command`] (dropping the
/// whole machine does that), or call [`Machine::shutdown`] to also get back
/// what was never delivered. The machine then reports
/// [`State::Disconnected`](crate::State::Disconnected) and closes `input` and
/// `status`; messages already in `input` can still be read.
pub struct Machine {
    /// Messages from the server, in order. When it is full the machine stops
    /// reading the socket until there is room (backpressure, never loss).
    pub input: Receiver<Message>,
    /// Messages to the server. They are written in order; while the machine
    /// is disconnected they wait here (capacity
    /// [`Builder::queue_capacity`]) and are written after reconnecting.
    pub output: Sender<Message>,
    /// Every change of state. The machine never waits for this channel: when
    /// it is full, up to 16 newer statuses wait inside the machine and beyond
    /// that the oldest of those are dropped, so the newest state is never
    /// lost, and the final `Disconnected` always gets through.
    pub status: Receiver<Status>,
    /// Commands to the machine. Dropping every sender stops it.
    pub command: Sender<Command>,
    /// The URL the machine connects to. (Changing this copy has no effect
    /// on the running machine.) The request headers are not kept here: an
    /// idle machine should cost as little as possible, and the caller has
    /// them.
    pub url: String,
    /// Resolves when the machine has stopped, with what it never delivered.
    /// [`Machine::shutdown`] uses it; take it out of the machine (like the
    /// channels) when the parts go to different tasks.
    pub stopped: Stopped,
    /// Read by [`Machine::stats`]; [`Machine::stats_handle`] gives a copy
    /// for other tasks.
    pub(crate) stats: StatsHandle,
}

/// The URL is shown without the user name and password it may carry.
impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("input", &self.input)
            .field("output", &self.output)
            .field("status", &self.status)
            .field("command", &self.command)
            .field("url", &crate::types::redact_url(&self.url))
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

/// A future that resolves when the machine's task has ended, to the
/// [`Leftovers`] it hands back. It does not stop the machine: send
/// [`Command::Quit`] or drop every command sender for that. Messages still in
/// `input` are not part of its leftovers: read `input` to its end.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ws_machine::Error> {
/// use ws_machine::{Command, Machine};
///
/// let machine = Machine::new("ws://127.0.0.1:9/", ws_machine::http::HeaderMap::new())?;
/// // The parts can go their own ways.
/// let Machine { mut input, output, command, stopped, .. } = machine;
/// let reader = tokio::spawn(async move { while input.recv().await.is_some() {} });
/// output.send("never written".into()).await.expect("the machine runs");
/// command.send(Command::Quit).await.expect("the machine runs");
/// let leftovers = stopped.await;
/// assert_eq!(leftovers.unsent.len(), 1);
/// reader.await.expect("reader ends");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use = "a future does nothing unless awaited"]
pub struct Stopped(JoinHandle<Leftovers>);

impl Stopped {
    /// Whether the machine's task has ended.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl Future for Stopped {
    type Output = Leftovers;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Leftovers> {
        Pin::new(&mut self.0).poll(cx).map(|finished| {
            finished.unwrap_or_else(|e| {
                // The task does not panic; this is only reached if the runtime
                // shuts down under it.
                tracing::error!(error = %e, "machine task ended abnormally");
                Leftovers::default()
            })
        })
    }
}

impl Machine {
    /// Starts a machine for `url` with request `headers` and every other
    /// option at its default (see [`Builder`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for a URL that does not parse, is not `ws://` or
    /// `wss://`, or has no host; [`Error::InvalidHeader`] for a header the
    /// handshake sets itself; [`Error::NoRuntime`] outside a tokio runtime.
    ///
    /// ```
    /// let err = ws_machine::Machine::new("http://example.com/", ws_machine::http::HeaderMap::new())
    ///     .expect_err("not a WebSocket URL");
    /// assert!(err.to_string().contains("use ws:// or wss://"));
    /// ```
    pub fn new(url: &str, headers: HeaderMap) -> Result<Self, Error> {
        Builder::new(url).headers(headers).spawn()
    }

    /// A [`Builder`] to set options before starting.
    pub fn builder(url: impl Into<String>) -> Builder {
        Builder::new(url)
    }

    fn start(builder: Builder) -> Result<Self, Error> {
        let url = builder.url().to_owned();
        let settings = builder.build()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let capacities = settings.capacities;
        let (input_tx, input) = channel::channel(capacities.input);
        let (output, output_rx) = channel::channel(capacities.queue);
        let (status_tx, status) = channel::occasional(capacities.status);
        let (command, command_rx) = channel::occasional(8);
        let meter = Meter::new(tokio::time::Instant::now(), settings.report_round_trips);
        let stats = meter.handle(output.depth());
        let driver = Driver::new(
            settings,
            Ends {
                input: input_tx,
                output: output_rx,
                status: status_tx,
                commands: command_rx,
                meter,
            },
        );
        let span = tracing::debug_span!("machine", url = %crate::types::redact_url(&url));
        let stopped = Stopped(runtime.spawn(driver.task(span)));
        Ok(Self {
            input,
            output,
            status,
            command,
            url,
            stopped,
            stats,
        })
    }

    /// What the machine has done so far: connections, failed attempts,
    /// messages and bytes each way, what is queued and unconfirmed, the
    /// last error, time connected, round trips (see [`Stats`]). Never waits
    /// for the machine.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// let machine = ws_machine::Machine::builder("ws://127.0.0.1:9/").spawn()?;
    /// let stats = machine.stats();
    /// assert_eq!((stats.messages_in, stats.messages_out), (0, 0));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.stats.get()
    }

    /// A clonable handle on the stats, for another task or thread; take it
    /// before the machine's parts go their own ways.
    #[must_use]
    pub fn stats_handle(&self) -> StatsHandle {
        self.stats.clone()
    }

    /// Stops the machine (as [`Command::Quit`] does), waits until it has
    /// stopped, and hands back everything that was not delivered: unsent and
    /// unacknowledged messages, and received messages not yet read from
    /// `input`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ws_machine::Error> {
    /// // Nothing listens on this port: the message is never written.
    /// let machine = ws_machine::Machine::new("ws://127.0.0.1:9/", ws_machine::http::HeaderMap::new())?;
    /// machine.output.send("hello".into()).await.expect("the machine runs");
    /// let leftovers = machine.shutdown().await;
    /// assert_eq!(leftovers.unsent[0].as_text(), Some("hello"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown(mut self) -> Leftovers {
        // An error means the machine already stopped.
        let _ = self.command.send(Command::Quit).await;
        drop(self.command);
        // Read `input` while the machine stops: it hands over what it still
        // holds before it closes `input`.
        let mut unread = Vec::new();
        let mut leftovers = loop {
            tokio::select! {
                leftovers = &mut self.stopped => break leftovers,
                message = self.input.recv() => match message {
                    Some(message) => unread.push(message),
                    None => break (&mut self.stopped).await,
                },
            }
        };
        while let Ok(message) = self.input.try_recv() {
            unread.push(message);
        }
        unread.append(&mut leftovers.received);
        leftovers.received = unread;
        leftovers
    }

    /// Whether the machine's task has stopped.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.stopped.is_finished()
    }
}

impl Builder {
    /// Checks every option and starts the machine on the current tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`], [`Error::InvalidHeader`] or
    /// [`Error::InvalidConfig`] saying what to fix, or [`Error::NoRuntime`]
    /// outside a tokio runtime.
    ///
    /// ```
    /// let err = ws_machine::Machine::builder("ws://127.0.0.1:1/")
    ///     .queue_capacity(0)
    ///     .spawn()
    ///     .expect_err("a zero capacity");
    /// assert!(err.to_string().contains("queue_capacity"));
    /// ```
    pub fn spawn(self) -> Result<Machine, Error> {
        Machine::start(self)
    }
}
