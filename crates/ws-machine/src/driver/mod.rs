//! The machine's task: one phase at a time, each a single `select!`.
//!
//! The driver owns everything of one machine (the socket, the channels, the
//! timers, the delivery bookkeeping) so nothing is shared and nothing is
//! locked. It decides nothing itself: the [`Lifecycle`] says which phase
//! comes next, [`decide`](crate::policy::command::decide) what a command
//! means, the [`Link`](crate::connection::link::Link) when the connection
//! is dead. The phases:
//!
//! - [`attempt`]: connect, bounded by the handshake timeout;
//! - [`waiting`]: sleep between attempts (a backoff, or the turn of a
//!   reconnect budget);
//! - [`connected`]: read, write, keep alive;
//! - [`stop`]: hand back what was not delivered, within one deadline.
//!
//! In every phase the driver also obeys commands and hands over statuses and
//! held messages as the caller makes room, so a quit is served at any moment
//! and a caller who reads slowly never stalls it.
//!
//! Every branch of every `select!` is cancel-safe: channel `recv`/`reserve`
//! and the engine's `poll_next`/`poll_flush` keep their progress in their
//! owners, and the timers are pinned and reset, never re-created.
//!
//! The task's state is kept small because every idle machine holds it: rare
//! paths (the attempt, the close handshake, the stop, the waits for room)
//! are boxed when they start, so they take heap only while they run.

mod attempt;
mod connected;
mod stop;
mod traced;
mod waiting;

use std::sync::Arc;

use tokio::time::Instant;
use tracing::Span;

use self::traced::traced;

use crate::{
    channel::{Receiver, Sender},
    connection::connector::Connector,
    handoff::{input::Inbox, stats::Meter, status::StatusOut},
    policy::{
        after,
        delivery::Outbox,
        lifecycle::{Lifecycle, Next},
        pace::Pace,
        urls::Urls,
    },
    settings::{Conversation, Request, Settings, Timeouts},
    types::{Command, Leftovers, Message, Mode, State, Status},
};

/// The machine's ends of the caller's four channels.
pub(crate) struct Ends {
    pub(crate) input: Sender<Message>,
    pub(crate) output: Receiver<Message>,
    pub(crate) status: Sender<Status>,
    pub(crate) commands: Receiver<Command>,
    /// The machine's end of its stats.
    pub(crate) meter: Meter,
}

/// How a phase ended.
enum Flow {
    /// Go on as the lifecycle says.
    Go(Next),
    /// The caller asked to stop; stopping must be over by `deadline`.
    Quit { deadline: Instant },
}

/// What `output` can still bring, and whether the caller asked to finish
/// ([`Command::Finish`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    Open,
    /// Every sender of `output` is gone; the machine runs on.
    Ended,
    /// The caller asked to finish: `output` is closed, what is queued in it
    /// is still taken.
    Finishing,
    /// Finishing, and everything was taken: the machine stops once all of it
    /// is delivered.
    Finished,
}

impl Feed {
    /// Whether messages are taken from `output`.
    fn takes(self) -> bool {
        match self {
            Self::Open | Self::Finishing => true,
            Self::Ended | Self::Finished => false,
        }
    }

    /// `output` ran dry for good.
    fn drained(self) -> Self {
        match self {
            Self::Open | Self::Ended => Self::Ended,
            Self::Finishing | Self::Finished => Self::Finished,
        }
    }

    /// The caller asked to finish ([`Command::Finish`]): `output` takes no
    /// new messages; what it holds is delivered, then the machine stops.
    /// (Takes the two fields, not the driver, so that phases can call it
    /// while other fields are borrowed.)
    fn finish(output: &mut Receiver<Message>, feed: &mut Self) {
        output.close();
        *feed = match *feed {
            Self::Open | Self::Finishing => Self::Finishing,
            Self::Ended | Self::Finished => Self::Finished,
        };
    }
}

/// The machine's task.
pub(crate) struct Driver {
    urls: Urls,
    connector: Connector,
    request: Request,
    conversation: Option<Box<Conversation>>,
    timeouts: Timeouts,
    lifecycle: Lifecycle,
    outbox: Outbox,
    status: StatusOut,
    inbox: Inbox,
    output: Receiver<Message>,
    feed: Feed,
    commands: Receiver<Command>,
    mode: Mode,
    /// The outgoing rate limit, if any (boxed: most machines have none).
    pace: Option<Box<Pace>>,
}

impl Driver {
    pub(crate) fn new(settings: Settings, ends: Ends) -> Self {
        let fresh_credentials = settings.request.is_computed();
        let gated = settings
            .conversation
            .as_ref()
            .is_some_and(|c| c.ready.is_some());
        Self {
            connector: Connector::new(settings.connection),
            urls: match settings.url_fn {
                Some(url) => Urls::computed(url),
                None => Urls::failover(settings.target, settings.fallbacks),
            },
            request: settings.request,
            conversation: settings.conversation,
            timeouts: settings.timeouts,
            lifecycle: Lifecycle::new(&settings.reconnect, fresh_credentials)
                .with_final_close(settings.final_close)
                .with_ready_gate(gated)
                .with_budget(settings.budget),
            outbox: Outbox::new(settings.delivery),
            status: StatusOut::new(ends.status, ends.meter),
            inbox: Inbox::new(ends.input),
            output: ends.output,
            feed: Feed::Open,
            commands: ends.commands,
            mode: Mode::default(),
            pace: settings
                .send_rate
                .map(|rate| Box::new(Pace::new(rate.count, rate.per))),
        }
    }

    /// The machine's task, inside `span` (the machine's: its URL, without
    /// secrets). Each attempt, and the connection it opens, runs in a span
    /// of its own, child of this one: `connection`, with the attempt's
    /// number and, once established, the connection's.
    pub(crate) fn task(self, span: Span) -> impl Future<Output = Leftovers> {
        traced(span, self.run())
    }

    /// Runs the machine until it stops; returns what was not delivered.
    ///
    /// Not an `async fn`: that would keep the driver twice in the task, once
    /// as the argument and once as the body's variable; the block uses the
    /// captured driver in place.
    #[allow(clippy::manual_async_fn)]
    fn run(mut self) -> impl Future<Output = Leftovers> {
        async move {
            let mut next = self
                .lifecycle
                .start(Instant::now(), &mut |s| self.status.emit(s));
            let (deadline, quit) = loop {
                let flow = match next {
                    Next::Connect => {
                        let span = tracing::debug_span!(
                            "connection",
                            attempt = self.status.meter().attempt(),
                            number = tracing::field::Empty,
                        );
                        traced(span, self.attempt()).await
                    }
                    Next::Wait(delay) => self.wait(delay).await,
                    // A final error: its status is already out.
                    Next::Stop => break (self.close_deadline(), false),
                };
                match flow {
                    Flow::Go(n) => next = n,
                    Flow::Quit { deadline } => break (deadline, true),
                }
            };
            Box::pin(self.stop(deadline, quit)).await
        }
    }

    /// When a close (or a stop) that begins now must be over.
    fn close_deadline(&self) -> Instant {
        after(Instant::now(), self.timeouts.close.get())
    }

    fn emit(&mut self, status: Status) {
        self.status.emit(status);
    }
}

/// `status`, with the URL it is about when it ends an attempt or a
/// connection (see [`Status::url`]).
fn about(url: Option<&Arc<str>>, status: Status) -> Status {
    match status.state {
        State::Connected | State::Disconnected => status.with_url(url.cloned()),
        State::Connecting | State::Ready | State::Waiting => status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Builder, channel::channel};

    /// The largest task state that fits a 1,152-byte tokio task.
    const MAX_TASK_STATE: usize = 1_048;

    /// Every idle machine holds its task's state (4.7 KiB before the rare
    /// paths were boxed and the driver stored once).
    #[test]
    fn the_task_state_stays_small() {
        let settings = Builder::new("ws://127.0.0.1:1/")
            .build()
            .expect("valid settings");
        let (input, _input) = channel(1);
        let (_output, output) = channel(1);
        let (status, _status) = channel(1);
        let (_command, commands) = channel(1);
        let driver = Driver::new(
            settings,
            Ends {
                input,
                output,
                status,
                commands,
                meter: Meter::new(Instant::now(), false),
            },
        );
        let driver_size = std::mem::size_of_val(&driver);
        let task = driver.task(Span::none());
        let size = std::mem::size_of_val(&task);
        assert!(
            size <= driver_size + 1024,
            "the task state is {size} bytes, the driver {driver_size}"
        );
        // tokio's task cell is the future plus 104 bytes (header, scheduler,
        // id, stage tag, trailer), aligned to 128: up to 1,048 bytes of
        // future fit in 1,152; one byte more costs 128 per machine.
        assert!(
            size <= MAX_TASK_STATE,
            "the task state is {size} bytes: over {MAX_TASK_STATE}, tokio's task takes 1,280 bytes instead of 1,152"
        );
    }
}
