//! `wsm demo`: a machine survives its server's restart.
//!
//! This is written as ordinary user code of the library: one task, one
//! `select!` loop over the machine's `status` and `input` channels and one
//! timer for the next step of a script. Nothing is shared, nothing is locked,
//! and the machine never waits for us.
//!
//! The script:
//!
//! 1. Connect; send a text, a binary and a plain-bytes message (plain bytes
//!    go out as binary by default); receive the echoes.
//! 2. Stop the server. When the machine reports `DISCONNECTED`, switch it to
//!    text mode and queue two plain-bytes messages on `output`.
//! 3. Restart the server on the same port. The machine reconnects by itself
//!    and delivers the queued messages, as text.
//! 4. Send two more messages, receive every echo, send `Quit`, and read the
//!    channels until both close.
//! 5. Print a summary.

use std::{
    collections::VecDeque,
    io::Write,
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use tokio::time::{Instant, sleep};
use ws_machine::{Command, Leftovers, Machine, Message, State, Status, channel::Sender};
use wsm_server::{Config, Server};

use crate::{
    cli::{DemoArgs, Timing},
    error::Error,
    output::{Printer, Show},
};

/// Runs the demo, printing to `out`.
///
/// # Errors
///
/// [`Error::Timeout`] if it does not finish within the time limit, and the
/// errors of starting the server or the machine, of the machine stopping on
/// its own, or of writing to `out`.
pub(crate) async fn run(args: &DemoArgs, out: impl Write) -> Result<(), Error> {
    let timing = args.timing();
    // One bound on everything, including the awaits inside the loop's arms:
    // a demo that hangs is a failed demo.
    tokio::time::timeout(timing.limit, demo(timing, out))
        .await
        .map_err(|_| Error::Timeout(timing.limit))?
}

async fn demo<W: Write>(timing: Timing, out: W) -> Result<(), Error> {
    let mut print = Printer::new(out);
    let server = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    print.line("server", format_args!("listening on {}", server.url()))?;

    let mut machine = Machine::builder(server.url())
        // Short keep-alive, so a dead link would be noticed within 2 s.
        .ping_interval(Duration::from_secs(1))
        .pong_timeout(Duration::from_secs(1))
        // Retry often while the server is down.
        .backoff(Duration::from_millis(200), Duration::from_secs(1))
        // Every connection counts as healthy, so losing one reconnects at
        // once instead of waiting a backoff delay first.
        .min_uptime(Duration::ZERO)
        .spawn()
        .map_err(Error::Machine)?;

    let mut demo = Demo {
        addr: server.addr(),
        server: Some(server),
        print,
        // The senders are cheap clones; the machine stops on `Quit`, not
        // when they are dropped.
        output: machine.output.clone(),
        command: machine.command.clone(),
        timing,
        stage: Stage::FirstConnect,
        batch: VecDeque::new(),
        next_step: None,
        sent: 0,
        received: 0,
        connects: 0,
    };

    // The timer of the script's next step: pinned once and reset for each
    // step, never re-created.
    let step = sleep(Duration::ZERO);
    tokio::pin!(step);
    let (mut status_open, mut input_open) = (true, true);
    // After `Quit` the machine closes both channels. Messages it received
    // until then can still be read from `input`, so read until both close.
    while status_open || input_open {
        if let Some(at) = demo.next_step
            && step.deadline() != at
        {
            step.as_mut().reset(at);
        }
        // Every branch is cancel-safe: `recv` loses nothing when another
        // branch wins, and the pinned `step` keeps its deadline.
        tokio::select! {
            // `status` and `input` are separate channels, so when both hold
            // something their relative order is lost. The machine reports
            // CONNECTED before it reads the connection, so looking at
            // `status` first prints a reconnect before what arrives on it.
            // (At a disconnect the opposite holds: messages read just before
            // it are printed after DISCONNECTED.)
            biased;
            // Every change of state, in order.
            status = machine.status.recv(), if status_open => match status {
                Some(status) => demo.on_status(status).await?,
                None => status_open = false,
            },
            // Every message from the server, in order.
            message = machine.input.recv(), if input_open => match message {
                Some(message) => demo.on_message(&message)?,
                None => input_open = false,
            },
            // The next step of the script, if one is due.
            () = &mut step, if demo.next_step.is_some() => {
                demo.next_step = None;
                demo.on_step().await?;
            }
        }
    }
    if demo.stage != Stage::Closing {
        return Err(Error::MachineStopped(None));
    }

    // The machine has stopped, so this returns at once; it hands back
    // anything that was not delivered (nothing, we expect).
    let leftovers = machine.shutdown().await;
    demo.summary(&leftovers)?;
    if let Some(server) = demo.server.take() {
        server.stop().await;
    }
    Ok(())
}

/// Where the script is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for the first `CONNECTED`.
    FirstConnect,
    /// Sending the first batch, one message per step.
    SendFirst,
    /// Waiting for the echoes of the first batch.
    EchoFirst,
    /// Echoes in: the next step stops the server.
    StopServer,
    /// Server stopped: waiting for the machine to notice.
    Outage,
    /// Messages queued: the next step restarts the server.
    RestartServer,
    /// Server back: waiting for the machine to reconnect.
    Reconnect,
    /// Connected again: sending the second batch, one message per step.
    SendMore,
    /// Waiting for the echoes of the queued messages and the second batch.
    EchoMore,
    /// Echoes in: the next step quits.
    Quit,
    /// `Quit` sent: waiting for `status` and `input` to close.
    Closing,
}

/// The first batch: plain bytes go out as binary in the default mode.
fn first_batch() -> VecDeque<Message> {
    VecDeque::from([
        Message::text("hello 1"),
        Message::binary(vec![0xde, 0xad, 0xbe, 0xef]),
        Message::from(b"plain bytes".to_vec()),
    ])
}

/// Queued while disconnected, after switching to text mode.
fn queued_while_down() -> [Message; 2] {
    [
        Message::from(b"queued 1".to_vec()),
        Message::from(b"queued 2".to_vec()),
    ]
}

/// The second batch: `Message::binary` stays binary in text mode.
fn second_batch() -> VecDeque<Message> {
    VecDeque::from([Message::text("hello 2"), Message::binary(vec![0xca, 0xfe])])
}

/// The demo's state, changed only by the loop's arms.
struct Demo<W> {
    print: Printer<W>,
    /// Where the server listens, to restart it on the same port.
    addr: SocketAddr,
    /// `None` while the server is down.
    server: Option<Server>,
    output: Sender<Message>,
    command: Sender<Command>,
    timing: Timing,
    stage: Stage,
    /// Messages still to send in this stage, one per step.
    batch: VecDeque<Message>,
    /// When the next step is due, if one is.
    next_step: Option<Instant>,
    sent: usize,
    received: usize,
    connects: usize,
}

impl<W: Write> Demo<W> {
    async fn on_status(&mut self, status: Status) -> Result<(), Error> {
        let last = if status.is_final() { " (final)" } else { "" };
        self.print.line("status", format_args!("{status}{last}"))?;
        if status.is_final() {
            // The last status: after it both channels close.
            return match self.stage {
                Stage::Closing => Ok(()),
                _ => Err(Error::MachineStopped(status.error)),
            };
        }
        if status.state == State::Connected {
            self.connects += 1;
        }
        match (status.state, self.stage) {
            (State::Connected, Stage::FirstConnect) => {
                self.batch = first_batch();
                self.stage = Stage::SendFirst;
                self.schedule(self.timing.tick);
            }
            (State::Disconnected, Stage::Outage) => {
                self.print.line(
                    "demo",
                    "while disconnected: switch to text mode, queue two messages",
                )?;
                // Commands are served in every state; `output` is read only
                // while connected, so the switch applies to what is queued.
                self.command(Command::UseText).await?;
                for message in queued_while_down() {
                    self.send(message).await?;
                }
                self.stage = Stage::RestartServer;
                self.schedule(self.timing.downtime);
            }
            (State::Connected, Stage::Reconnect) => {
                self.print
                    .line("demo", "reconnected: the queued messages go out first")?;
                self.batch = second_batch();
                self.stage = Stage::SendMore;
                self.schedule(self.timing.tick);
            }
            _ => {}
        }
        Ok(())
    }

    fn on_message(&mut self, message: &Message) -> Result<(), Error> {
        self.received += 1;
        self.print.line("recv", Show(message))?;
        self.after_echo();
        Ok(())
    }

    async fn on_step(&mut self) -> Result<(), Error> {
        match self.stage {
            Stage::SendFirst | Stage::SendMore => {
                if let Some(message) = self.batch.pop_front() {
                    self.send(message).await?;
                }
                if self.batch.is_empty() {
                    self.stage = if self.stage == Stage::SendFirst {
                        Stage::EchoFirst
                    } else {
                        Stage::EchoMore
                    };
                    self.after_echo();
                } else {
                    self.schedule(self.timing.tick);
                }
            }
            Stage::StopServer => {
                if let Some(server) = self.server.take() {
                    self.print
                        .line("server", "stopping: every connection is dropped")?;
                    server.stop().await;
                    self.print.line("server", "stopped")?;
                }
                self.stage = Stage::Outage;
            }
            Stage::RestartServer => {
                let server = bind(self.addr)?;
                self.print
                    .line("server", format_args!("restarted on {}", server.url()))?;
                self.server = Some(server);
                self.stage = Stage::Reconnect;
            }
            Stage::Quit => {
                self.command(Command::Quit).await?;
                self.stage = Stage::Closing;
            }
            // No step is scheduled in the other stages.
            _ => {}
        }
        Ok(())
    }

    /// Moves on once every message sent so far has come back.
    fn after_echo(&mut self) {
        if self.received < self.sent {
            return;
        }
        let next = match self.stage {
            Stage::EchoFirst => Stage::StopServer,
            Stage::EchoMore => Stage::Quit,
            _ => return,
        };
        self.stage = next;
        self.schedule(self.timing.pause);
    }

    fn schedule(&mut self, after: Duration) {
        self.next_step = Some(Instant::now() + after);
    }

    async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.print.line("send", Show(&message))?;
        self.sent += 1;
        // Waits only if the queue is full; fails only if the machine stopped.
        self.output
            .send(message)
            .await
            .map_err(|_| Error::MachineStopped(None))
    }

    async fn command(&mut self, command: Command) -> Result<(), Error> {
        self.print.line("command", format_args!("{command:?}"))?;
        self.command
            .send(command)
            .await
            .map_err(|_| Error::MachineStopped(None))
    }

    fn summary(&mut self, leftovers: &Leftovers) -> Result<(), Error> {
        let reconnects = self.connects.saturating_sub(1);
        let undelivered =
            leftovers.unsent.len() + leftovers.unacknowledged.len() + leftovers.received.len();
        let elapsed = self.print.elapsed().as_secs_f64();
        self.print.line(
            "summary",
            format_args!(
                "sent {} messages, received {} echoes, {reconnects} reconnect{}, \
                 {undelivered} left undelivered, in {elapsed:.1} s",
                self.sent,
                self.received,
                if reconnects == 1 { "" } else { "s" },
            ),
        )?;
        Ok(())
    }
}

/// Starts the echo server on `addr`.
fn bind(addr: SocketAddr) -> Result<Server, Error> {
    Server::bind(addr, Config::default()).map_err(|source| Error::Bind {
        what: "echo server",
        addr,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn quick_demo_reconnects_and_delivers_what_was_queued() {
        let mut out = Vec::new();
        run(&DemoArgs { quick: true }, &mut out)
            .await
            .expect("the demo succeeds");
        let text = String::from_utf8(out).expect("UTF-8 output");
        let connected = text.matches("status   CONNECTED").count();
        assert_eq!(connected, 2, "{text}");
        // Plain bytes queued in text mode come back as text.
        assert!(text.contains(r#"recv     text "queued 2""#), "{text}");
        assert!(
            text.contains("sent 7 messages, received 7 echoes, 1 reconnect, 0 left"),
            "{text}"
        );
    }
}
