//! The session: one `select!` over the input, the machine's channels,
//! Ctrl-C and the timers, until the machine has stopped.
//!
//! Ending cleanly when the input ends means: every line read has been
//! handed to `output`, then `Finish`: the machine delivers all of it
//! (reconnecting if it must), closes and stops. With `-w` the session
//! listens that long first. Whatever still fails to go out is handed back by
//! the machine and listed on stderr (exit 5).

use std::{collections::VecDeque, time::Duration};

use tokio::{
    sync::mpsc,
    time::{Instant, sleep},
};
use ws_machine::{Command, Machine, Message, State, Status, channel::Sender};

use super::{
    console::{Console, InputEvent},
    header_cmd::HeaderCmd,
    lines::{LineParser, Mode, Parsed, SLASH_HELP, Slash},
    settings::Settings,
    show::{Note, Show, clock, is_refusal},
};
use crate::error::Error;

/// How a session ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Everything delivered and closed cleanly, `-n` reached, or stdout's
    /// reader gone.
    Done,
    /// The input ended but some messages were not delivered.
    Undelivered,
    /// `--once`: the connection ended on its own.
    Ended,
    /// Ctrl-C, closed cleanly.
    Interrupted,
    /// A second Ctrl-C: out at once.
    Abort,
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading input, printing what arrives.
    Running,
    /// `-w`: the input ended; listening until the deadline, then finishing.
    Lingering,
    /// `Finish` sent: the machine delivers what it was given, then stops.
    Finishing,
    /// `Quit` sent: reading the channels until they close.
    Closing(Reason),
}

/// Why the session asked the machine to quit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// `/close`.
    Closed,
    Count,
    Interrupted,
    /// Stdout's reader went away.
    OutputGone,
    /// Reading stdin or writing stdout failed.
    Failed,
}

/// The session's state, changed only by the loop's arms.
struct Session {
    show: Show,
    console: Console,
    parser: LineParser,
    command: Sender<Command>,
    phase: Phase,
    /// The machine's state, from the last status that changed it.
    state: Option<State>,
    /// Messages read but not yet handed to `output` (at most one from a
    /// pipe; typed lines wait here while `output` is full).
    pending: VecDeque<Message>,
    input_ended: bool,
    /// `Quit` has been sent (closing after a failed write waits for the
    /// loop to send it).
    quit_sent: bool,
    received: u64,
    count: Option<u64>,
    wait: Option<Duration>,
    /// `--expire`: a line not written within this is handed back.
    expire: Option<Duration>,
    /// Messages refused by the library or as lines (bad Base64, not UTF-8).
    refused: usize,
    /// The error that makes the session fail, once the machine has stopped.
    failure: Option<Error>,
    /// The error the machine stopped with on its own.
    final_error: Option<ws_machine::Error>,
    /// `--once`: the machine does not reconnect.
    once: bool,
}

/// Runs `wsm connect` until the machine stops.
///
/// # Errors
///
/// [`Error::Settings`] if the machine refuses its options, an error of
/// `--header-cmd`'s first run, [`Error::Stopped`] if the connection ends
/// for good, [`Error::Stdin`] or [`Error::Output`] if reading or writing
/// fails, [`Error::Signal`] if Ctrl-C cannot be watched.
pub(crate) async fn run(settings: Settings, console: Console) -> Result<Ending, Error> {
    let (notes, mut notes_rx) = mpsc::unbounded_channel();
    let mut builder = settings.builder()?;
    if let Some(command) = &settings.header_cmd {
        let header_cmd = HeaderCmd::start(command.clone(), notes)?;
        builder = builder.headers_fn(move || header_cmd.headers());
    }
    let machine = builder.spawn().map_err(Error::Settings)?;
    let mut interrupts = Interrupts::new().map_err(Error::Signal)?;
    let Machine {
        mut input,
        output,
        mut status,
        command,
        stopped,
        ..
    } = machine;

    let slash = settings.slash || console.is_interactive();
    let mut session = Session {
        show: Show {
            binary_out: settings.binary_out,
            prefix: settings.binary_prefix.clone(),
            status: settings.status,
            url: settings.shown_url(),
            several_urls: !settings.fallback_urls.is_empty(),
        },
        console,
        parser: LineParser::new(settings.mode, settings.binary_prefix.clone(), slash),
        command,
        phase: Phase::Running,
        state: None,
        pending: VecDeque::new(),
        input_ended: false,
        quit_sent: false,
        received: 0,
        count: settings.count,
        wait: settings.wait,
        expire: settings.expire,
        refused: 0,
        failure: None,
        final_error: None,
        once: !settings.connection.reconnect,
    };
    if settings.transport.insecure {
        session.note(Note::Warning(super::insecure::WARNING));
    }

    // `-w`'s deadline: pinned once, reset when it starts.
    let linger = sleep(Duration::ZERO);
    tokio::pin!(linger);
    let (mut status_open, mut input_open, mut output_open) = (true, true, true);

    while status_open || input_open {
        // Every branch is cancel-safe: the editor keeps what was typed,
        // channel `recv` and `reserve` lose nothing, the pinned futures keep
        // their progress.
        tokio::select! {
            // The editor first: polling it is also what prints the lines
            // written for it, above the line being typed.
            biased;
            event = session.console.next_input(), if session.wants_input() => {
                // What waits in `output`, for the note when the input ends.
                let queued = output.max_capacity() - output.capacity();
                if session.on_input(event, queued).await == Some(Ending::Abort) {
                    return Ok(session.abort());
                }
            }
            () = interrupts.next() => {
                if session.on_interrupt().await == Some(Ending::Abort) {
                    return Ok(session.abort());
                }
            }
            // Every change of state, in order.
            next = status.recv(), if status_open => match next {
                Some(next) => session.on_status(next),
                None => status_open = false,
            },
            // Every message from the server, in order.
            next = input.recv(), if input_open => match next {
                Some(message) => session.on_message(&message).await,
                None => input_open = false,
            },
            // Lines read go to `output` as it has room; while it is full,
            // no more are read.
            permit = output.reserve(), if output_open && !session.pending.is_empty() => match permit {
                Ok(permit) => {
                    if let Some(message) = session.pending.pop_front()
                        && let Err(stopped) = permit.send(message)
                    {
                        // The machine stopped meanwhile: reported as pending.
                        session.pending.push_front(stopped.0);
                        output_open = false;
                    }
                }
                // The machine has stopped: what is pending is reported.
                Err(_) => output_open = false,
            },
            () = &mut linger, if session.phase == Phase::Lingering => session.finish().await,
            // Warnings from `--header-cmd`.
            Some(note) = notes_rx.recv() => session.note(Note::Warning(&note)),
        }
        if let Some(wait) = session.advance().await {
            linger.as_mut().reset(Instant::now() + wait);
        }
    }

    // The machine has stopped: this returns at once.
    let leftovers = stopped.await;
    session.console.finish();
    // Received but not handed over before `input` closed (the close timeout
    // cut it short): still printed, they arrived.
    for message in &leftovers.received {
        session.deliver(message);
    }
    let undelivered: Vec<Message> = leftovers
        .unsent
        .into_iter()
        .chain(leftovers.unacknowledged)
        .chain(leftovers.refused)
        .chain(std::mem::take(&mut session.pending))
        .collect();
    session.list_undelivered(&undelivered);
    session.ending(undelivered.is_empty())
}

impl Session {
    /// Whether to read the input now. The editor is always read (it prints
    /// while it is polled, and Ctrl-C comes through it); piped lines only
    /// while they can be queued, which passes backpressure on to stdin.
    fn wants_input(&self) -> bool {
        self.console.has_editor()
            || (self.console.has_input()
                && !self.input_ended
                && self.pending.is_empty()
                && self.phase == Phase::Running)
    }

    /// A line or event of the input; `queued` is how many messages wait in
    /// `output`.
    async fn on_input(&mut self, event: InputEvent, queued: usize) -> Option<Ending> {
        match event {
            InputEvent::Line(line) => {
                if self.input_ended || self.phase != Phase::Running {
                    self.note(Note::Info("the input has ended: line not sent"));
                    return None;
                }
                match self.parser.parse(&line) {
                    Parsed::Send(message) => self.pending.push_back(match self.expire {
                        Some(within) => message.expires_in(within),
                        None => message,
                    }),
                    Parsed::Command(slash) => self.on_slash(slash, queued).await,
                    Parsed::Refused(why) => {
                        self.refused += 1;
                        self.note(Note::Warning(&why));
                    }
                    Parsed::Unknown(why) => self.note(Note::Warning(&why)),
                }
            }
            InputEvent::End => self.end_input(queued),
            InputEvent::Interrupt => return self.on_interrupt().await,
            InputEvent::Failed(e) => {
                self.failure = Some(Error::Stdin(e));
                self.quit(Reason::Failed).await;
            }
        }
        None
    }

    fn end_input(&mut self, queued: usize) {
        if self.input_ended {
            return;
        }
        self.input_ended = true;
        if self.phase == Phase::Running {
            let queued = self.pending.len() + queued;
            self.note(Note::InputEnded { queued });
        }
    }

    async fn on_slash(&mut self, slash: Slash, queued: usize) {
        match slash {
            Slash::Ping => {
                if matches!(self.state, Some(State::Connected | State::Ready)) {
                    self.command(Command::Ping).await;
                    self.note(Note::Info("ping sent"));
                } else {
                    self.note(Note::Info("not connected: no ping sent"));
                }
            }
            Slash::Reconnect => self.command(Command::Reconnect).await,
            Slash::Text => {
                self.parser.set_mode(Mode::Text);
                self.note(Note::Info("lines are sent as text"));
            }
            Slash::Binary => {
                self.parser.set_mode(Mode::Binary);
                self.note(Note::Info("lines are sent as binary"));
            }
            Slash::Close(None) => self.quit(Reason::Closed).await,
            Slash::Close(Some(frame)) => self.end(Reason::Closed, Command::Close(frame)).await,
            Slash::Quit => self.end_input(queued),
            Slash::Help => self.note(Note::Info(SLASH_HELP)),
        }
    }

    /// The first Ctrl-C closes cleanly; one more (or one while closing
    /// anyway) ends the session at once.
    async fn on_interrupt(&mut self) -> Option<Ending> {
        if matches!(self.phase, Phase::Closing(_)) {
            return Some(Ending::Abort);
        }
        self.note(Note::Info("closing (Ctrl-C again to exit at once)"));
        self.quit(Reason::Interrupted).await;
        None
    }

    fn on_status(&mut self, status: Status) {
        let line = self.show.status(&status, clock());
        self.console.err(&line);
        // A report (a refused message, a round trip), not a change of state.
        if !status.is_change() {
            if is_refusal(&status) {
                self.refused += 1;
            }
            return;
        }
        self.state = Some(status.state);
        if status.is_final() {
            self.final_error = status.error;
        }
    }

    async fn on_message(&mut self, message: &Message) {
        if self.deliver(message) && self.count == Some(self.received) {
            self.quit(Reason::Count).await;
        }
    }

    /// Prints a received message and counts it, unless `-n` was reached;
    /// whether it was printed.
    fn deliver(&mut self, message: &Message) -> bool {
        if self.count.is_some_and(|n| self.received >= n) {
            // `-n` reached: the rest is not wanted.
            return false;
        }
        if !self.print(message) {
            return false;
        }
        self.received += 1;
        true
    }

    /// Prints a received message; false if stdout failed (the session is
    /// then closing).
    fn print(&mut self, message: &Message) -> bool {
        if matches!(
            self.phase,
            Phase::Closing(Reason::OutputGone | Reason::Failed)
        ) {
            return false;
        }
        match self.console.out(&self.show.message(message)) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                // `wsm ... | head`: the reader has what it wanted.
                self.closing(Reason::OutputGone);
                false
            }
            Err(e) => {
                self.failure = Some(Error::Output(e));
                self.closing(Reason::Failed);
                false
            }
        }
    }

    /// Moves on once the input has ended and every line read is on
    /// `output`: lingering (`-w`) or finishing. Returns `-w`'s wait when it
    /// starts.
    async fn advance(&mut self) -> Option<Duration> {
        if self.phase == Phase::Running && self.input_ended && self.pending.is_empty() {
            if let Some(wait) = self.wait {
                self.phase = Phase::Lingering;
                return Some(wait);
            }
            self.finish().await;
        }
        if matches!(self.phase, Phase::Closing(_)) && !self.quit_sent {
            self.quit_sent = true;
            self.command(Command::Quit).await;
        }
        None
    }

    /// Starts closing; the loop sends `Quit` after this turn.
    fn closing(&mut self, reason: Reason) {
        if !matches!(self.phase, Phase::Closing(_)) {
            self.phase = Phase::Closing(reason);
        }
    }

    /// Everything read is on `output`: the machine delivers it, closes and
    /// stops.
    async fn finish(&mut self) {
        self.phase = Phase::Finishing;
        self.command(Command::Finish).await;
    }

    async fn quit(&mut self, reason: Reason) {
        self.end(reason, Command::Quit).await;
    }

    /// Closes for `reason` with `command` (a quit, or a close with a code),
    /// once.
    async fn end(&mut self, reason: Reason, command: Command) {
        self.closing(reason);
        if !self.quit_sent {
            self.quit_sent = true;
            self.command(command).await;
        }
    }

    async fn command(&mut self, command: Command) {
        // An error means the machine has stopped; its final status says why.
        let _ = self.command.send(command).await;
    }

    fn note(&mut self, note: Note<'_>) {
        let line = self.show.note(note, clock());
        self.console.err(&line);
    }

    fn list_undelivered(&mut self, undelivered: &[Message]) {
        if undelivered.is_empty() {
            return;
        }
        let n = undelivered.len();
        self.console.err(&format!(
            "wsm: {n} message{} not delivered:",
            if n == 1 { " was" } else { "s were" }
        ));
        for message in undelivered {
            let line = self.show.undelivered(message);
            self.console.err(&line);
        }
    }

    fn abort(&mut self) -> Ending {
        self.console.finish();
        Ending::Abort
    }

    fn ending(&mut self, all_delivered: bool) -> Result<Ending, Error> {
        if let Some(failure) = self.failure.take() {
            return Err(failure);
        }
        if let Some(error) = self.final_error.take() {
            // With `--once`, an end that would have been retried is the
            // expected end; a final one (a 401) is reported as such.
            if self.once && error.is_retryable() {
                return Ok(Ending::Ended);
            }
            return Err(Error::Stopped(error));
        }
        Ok(match self.phase {
            Phase::Closing(Reason::Interrupted) => Ending::Interrupted,
            Phase::Closing(Reason::Count | Reason::OutputGone) => Ending::Done,
            _ if all_delivered && self.refused == 0 => Ending::Done,
            _ => Ending::Undelivered,
        })
    }
}

/// Ctrl-C, watched for the whole session (a fresh `ctrl_c()` per turn
/// could miss one between turns).
struct Interrupts {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
    #[cfg(windows)]
    signal: tokio::signal::windows::CtrlC,
}

impl Interrupts {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?,
            #[cfg(windows)]
            signal: tokio::signal::windows::ctrl_c()?,
        })
    }

    async fn next(&mut self) {
        if self.signal.recv().await.is_none() {
            // No more signals will come.
            std::future::pending::<()>().await;
        }
    }
}
