//! The connected phase: the connection is open; messages flow both ways
//! until it ends or the caller asks for something else.
//!
//! One loop: wait for the next [`Event`] in one `select!`, then act on it.
//! Commands go first (a mode switch sent before a message applies to it),
//! then messages to write again after a reconnect, then whatever comes.

use std::{future::poll_fn, pin::Pin};

use tokio::time::{Instant, Sleep, sleep_until};

use super::{Driver, Feed, Flow, about};
use crate::{
    connection::{
        engine::{self, Socket},
        link::{BATCH, IoEvent, Link, Rules},
    },
    handoff::{input::room, stats::Tally},
    policy::{
        command::{self, Closing, Connected},
        lifecycle::Ended,
    },
    types::{CloseFrame, Command, Error, Message},
};

/// What woke the connected phase.
enum Event {
    Command(Option<Command>),
    /// What the socket did, and what it handed over to `input`.
    Io(IoEvent, Tally),
    /// A message from `output`, or `None` once every sender is gone.
    Output(Option<Message>),
    Timer,
    /// A status or a held message was handed to the caller.
    HandedOver,
    /// Finishing, and everything sent is delivered: time to close.
    Delivered,
}

/// What the phase does after an event.
enum Then {
    Continue,
    End(Flow),
    /// End the connection on a path that waits (the close handshake, the
    /// flush of a close frame): rare, so it runs boxed.
    Finish(Finish),
}

/// The endings that wait.
enum Finish {
    /// Close (with this close frame, or a normal one), then stop.
    Quit(Option<CloseFrame>),
    Reconnect,
    /// The connection failed with a close frame saying why queued.
    Failed(Error),
}

impl Driver {
    /// The connection is open: run it until it ends.
    ///
    /// Not an `async fn`: that would keep the socket in the task beside the
    /// link made of it; the block uses the link in place.
    #[allow(clippy::manual_async_fn)]
    pub(super) fn connected(&mut self, socket: Socket) -> impl Future<Output = Flow> + '_ {
        let mut link = self.report_connected(Instant::now(), socket);
        async move {
            if let Err(error) = self.write_on_connect(&mut link) {
                return self.lost(error, &link);
            }
            let timer = sleep_until(link.deadline(self.rules()));
            tokio::pin!(timer);
            loop {
                // `if let`, not `match`: the `try_recv` result is dropped before
                // the `else` branch, so the task keeps no room for it across the
                // wait.
                let event = if let Ok(command) = self.commands.try_recv() {
                    Event::Command(Some(command))
                } else {
                    if let Err(error) = self.write_replayed(&mut link) {
                        return self.lost(error, &link);
                    }
                    if self.feed == Feed::Finished
                        && self.outbox.is_settled()
                        && !link.needs_flush()
                    {
                        Event::Delivered
                    } else {
                        self.next_event(&mut link, timer.as_mut()).await
                    }
                };
                match self.on_event(event, &mut link, timer.as_mut()) {
                    Then::Continue => {}
                    Then::End(flow) => return flow,
                    Then::Finish(finish) => return Box::pin(self.finish(finish, &mut link)).await,
                }
            }
        }
    }

    /// The connection's settings, lent to the link.
    fn rules(&self) -> Rules<'_> {
        Rules {
            timeouts: &self.timeouts,
            conversation: self.conversation.as_deref(),
            epoch: self.status.meter().epoch(),
        }
    }

    /// Reports `Connected`, with the subprotocol the server chose, and
    /// starts running the connection. Not async, so the task keeps no room
    /// for the subprotocol.
    fn report_connected(&mut self, now: Instant, mut socket: Socket) -> Link {
        let mut protocol = socket.take_protocol();
        let compression = socket.compression();
        let url = self.urls.shown();
        self.lifecycle.connected(now, &mut |s| {
            self.status.emit(
                about(url.as_ref(), s)
                    .with_protocol(protocol.take())
                    .with_compression(compression),
            );
        });
        let number = self.status.meter().connection();
        // The attempt's span (see `Driver::task`) now names the connection.
        tracing::Span::current().record("number", number);
        Link::new(socket, now, number, self.rules())
    }

    /// Waits for the next thing to do.
    async fn next_event(&mut self, link: &mut Link, mut timer: Pin<&mut Sleep>) -> Event {
        let read = !self.inbox.is_held_up();
        let flush = link.needs_flush();
        // Until the server says it is ready, the caller's messages wait; and
        // while the rate limit says so (for those taken from `output` and
        // those written again: the timer wakes the phase when it lifts).
        let paced = self.paced_until(timer.as_mut()).is_some();
        let take = !paced && self.feed.takes() && self.outbox.can_take() && link.is_ready();
        let (tx, held, outbox) = (&self.inbox.tx, &mut self.inbox.held, &mut self.outbox);
        let talk = self.conversation.as_deref();
        tokio::select! {
            command = self.commands.recv() => Event::Command(command),
            (event, tally) = poll_fn(|cx| link.poll_io(cx, talk, read, tx, held, outbox)), if read || flush => {
                Event::Io(event, tally)
            }
            message = self.output.recv(), if take => Event::Output(message),
            () = timer => Event::Timer,
            () = self.status.drain_one(), if self.status.has_backlog() => Event::HandedOver,
            permit = room(tx), if !read => {
                self.inbox.held.give(permit);
                Event::HandedOver
            }
        }
    }

    fn on_event(&mut self, event: Event, link: &mut Link, mut timer: Pin<&mut Sleep>) -> Then {
        match event {
            Event::Command(command) => return self.on_command(command, link, timer),
            Event::Io(io, tally) => return self.on_io(io, tally, link, timer),
            Event::Output(None) => self.feed = self.feed.drained(),
            Event::Output(Some(message)) => {
                if !self.commands.is_empty() {
                    // A command came first: apply it, then write this.
                    self.outbox.put_back(message);
                } else if let Err(error) = self.write_batch(link, message) {
                    return Then::End(self.lost(error, link));
                }
                self.publish_outbox();
            }
            Event::Timer => {
                match link.on_timer(Instant::now(), !self.inbox.is_held_up(), self.rules()) {
                    Ok(tick) => {
                        if let Some(len) = tick.heartbeat {
                            self.count_sent(Instant::now());
                            let mut tally = Tally::default();
                            tally.add(len);
                            self.status.meter().sent(tally);
                        }
                        timer.as_mut().reset(tick.next);
                    }
                    Err(error) => return Then::End(self.lost(error, link)),
                }
            }
            Event::HandedOver => {}
            Event::Delivered => return Then::Finish(Finish::Quit(None)),
        }
        Then::Continue
    }

    /// What the socket did: `tally` is what it handed over to `input`.
    fn on_io(
        &mut self,
        io: IoEvent,
        tally: Tally,
        link: &mut Link,
        mut timer: Pin<&mut Sleep>,
    ) -> Then {
        self.status.meter().received(tally);
        match io {
            IoEvent::Progress {
                rearm,
                ready,
                answer,
            } => {
                if ready {
                    self.lifecycle.ready(&mut |s| self.status.emit(s));
                }
                if rearm {
                    timer.as_mut().reset(link.deadline(self.rules()));
                }
                if let Some(rtt) =
                    answer.and_then(|a| a.round_trip(self.status.meter().epoch(), Instant::now()))
                {
                    self.round_trip(rtt);
                }
            }
            IoEvent::Failed {
                error,
                close_queued: true,
            } => return Then::Finish(Finish::Failed(error)),
            IoEvent::Failed {
                error,
                close_queued: false,
            } => return Then::End(self.lost(error, link)),
            IoEvent::Ended(error) => return Then::End(self.lost(error, link)),
        }
        self.publish_outbox();
        Then::Continue
    }

    /// A round trip was measured: into the stats, and to the caller if it
    /// asked ([`Builder::report_round_trips`](crate::Builder::report_round_trips)).
    fn round_trip(&mut self, rtt: std::time::Duration) {
        tracing::debug!(?rtt, "round trip");
        if let Some(status) = self.status.meter().round_trip(rtt) {
            self.emit(status);
        }
    }

    /// What the outbox holds, into the stats.
    fn publish_outbox(&self) {
        self.status
            .meter()
            .outbox(self.outbox.replay_len(), self.outbox.unconfirmed_len());
    }

    fn on_command(
        &mut self,
        command: Option<Command>,
        link: &mut Link,
        timer: Pin<&mut Sleep>,
    ) -> Then {
        match command::connected(command) {
            Connected::Quit => Then::Finish(Finish::Quit(None)),
            Connected::Close(frame) => Then::Finish(Finish::Quit(Some(frame))),
            Connected::Finish => {
                Feed::finish(&mut self.output, &mut self.feed);
                Then::Continue
            }
            Connected::Reconnect => Then::Finish(Finish::Reconnect),
            Connected::Ping => match link.ping(Instant::now(), self.status.meter().epoch()) {
                Ok(()) => {
                    timer.reset(link.deadline(self.rules()));
                    Then::Continue
                }
                Err(error) => Then::End(self.lost(error, link)),
            },
            Connected::Switch(mode) => {
                self.mode = mode;
                Then::Continue
            }
        }
    }

    /// Ends the connection on a path that waits, within the close timeout,
    /// still serving commands: a quit meanwhile stops the machine once this
    /// is over, within the same deadline.
    async fn finish(&mut self, finish: Finish, link: &mut Link) -> Flow {
        let deadline = self.close_deadline();
        let mut quit = matches!(finish, Finish::Quit(_));
        {
            let (inbox, outbox, meter) = (&mut self.inbox, &mut self.outbox, self.status.meter());
            let ending = async {
                match &finish {
                    Finish::Quit(frame) => {
                        link.close(deadline, frame.as_ref(), inbox, outbox, meter)
                            .await;
                    }
                    Finish::Reconnect => link.close(deadline, None, inbox, outbox, meter).await,
                    Finish::Failed(_) => link.flush_until(deadline).await,
                }
            };
            tokio::pin!(ending);
            loop {
                tokio::select! {
                    () = &mut ending => break,
                    command = self.commands.recv(), if !quit => match command::closing(command) {
                        Closing::Quit => quit = true,
                        Closing::Finish => Feed::finish(&mut self.output, &mut self.feed),
                        Closing::Switch(mode) => self.mode = mode,
                        Closing::Ignore => {}
                    },
                }
            }
        }
        match finish {
            Finish::Quit(_) => Flow::Quit { deadline },
            Finish::Reconnect if quit => Flow::Quit { deadline },
            Finish::Reconnect => self.ended(None, link),
            Finish::Failed(error) => {
                // The loss is reported either way; then the stop, if asked.
                let flow = self.lost(error, link);
                if quit { Flow::Quit { deadline } } else { flow }
            }
        }
    }

    /// The messages sent first on every connection; not tracked (they go
    /// out again on the next connection anyway).
    fn write_on_connect(&mut self, link: &mut Link) -> Result<(), Error> {
        let Some(on_connect) = self
            .conversation
            .as_ref()
            .and_then(|c| c.on_connect.as_ref())
        else {
            return Ok(());
        };
        let now = Instant::now();
        let mut tally = Tally::default();
        let mut written = Ok(());
        for message in on_connect() {
            match engine::outgoing(&message, self.mode, self.connector.max_message_size()) {
                Ok(frame) => {
                    self.count_sent(now);
                    written = link.send(frame);
                    if written.is_err() {
                        break;
                    }
                    tally.add(message.len());
                }
                Err(refused) => self.refuse(refused),
            }
        }
        self.status.meter().sent(tally);
        written
    }

    /// When the rate limit lets the caller's next message go, if not now;
    /// the timer is brought forward to that moment so the phase wakes up.
    fn paced_until(&self, mut timer: Pin<&mut Sleep>) -> Option<Instant> {
        let at = self.pace.as_ref()?.ready_at()?;
        if at <= Instant::now() {
            return None;
        }
        if at < timer.deadline() {
            timer.as_mut().reset(at);
        }
        Some(at)
    }

    /// Whether the rate limit lets one more of the caller's messages go at
    /// `now` (always, without a limit; `now` is `None` then).
    fn may_send(&self, now: Option<Instant>) -> bool {
        match (&self.pace, now) {
            (Some(pace), Some(now)) => pace.allows(now),
            (None, _) | (_, None) => true,
        }
    }

    /// A message went out: the rate limit counts it. Messages that go out
    /// whatever the rate (`on_connect`, the heartbeat) are counted too.
    fn count_sent(&mut self, now: Instant) {
        if let Some(pace) = &mut self.pace {
            pace.sent(now);
        }
    }

    /// Messages taken back after a connection died, oldest first, as far as
    /// the window allows.
    fn write_replayed(&mut self, link: &mut Link) -> Result<(), Error> {
        if !link.is_ready() {
            return Ok(());
        }
        let now = self.pace.as_ref().map(|_| Instant::now());
        let mut tally = Tally::default();
        let mut written = Ok(());
        while self.outbox.can_replay() && self.may_send(now) {
            let Some(message) = self.outbox.take_replay() else {
                break;
            };
            written = self.write_tracked(link, message, now, &mut tally);
            if written.is_err() {
                break;
            }
        }
        if tally.messages > 0 {
            self.status.meter().sent(tally);
            self.publish_outbox();
        }
        written
    }

    /// Writes a message from `output`, then what else is already queued, so
    /// that it all goes out in one socket write.
    fn write_batch(&mut self, link: &mut Link, first: Message) -> Result<(), Error> {
        // The clock is read once per batch, and only with a rate limit
        // (`take` checked it for the first message).
        let now = self.pace.as_ref().map(|_| Instant::now());
        let mut tally = Tally::default();
        let mut written = self.write_tracked(link, first, now, &mut tally);
        for _ in 1..BATCH {
            if written.is_err()
                || !self.outbox.can_take()
                || !self.commands.is_empty()
                || !self.may_send(now)
            {
                break;
            }
            let Ok(message) = self.output.try_recv() else {
                break;
            };
            written = self.write_tracked(link, message, now, &mut tally);
        }
        self.status.meter().sent(tally);
        written
    }

    /// Writes a message and tracks it until it is confirmed (and counts it
    /// for the rate limit, which gave `now`, and in `tally`); one whose
    /// deadline passed, or that cannot be sent, is handed back instead.
    fn write_tracked(
        &mut self,
        link: &mut Link,
        message: Message,
        now: Option<Instant>,
        tally: &mut Tally,
    ) -> Result<(), Error> {
        // The clock is read only for messages with a deadline.
        if message.deadline().is_some()
            && let Some(late) = message.late(Instant::now())
        {
            self.refuse(Error::Expired { late, message });
            return Ok(());
        }
        match engine::outgoing(&message, self.mode, self.connector.max_message_size()) {
            Ok(frame) => {
                if let Some(now) = now {
                    self.count_sent(now);
                }
                tally.add(message.len());
                self.outbox.written(message.resolved(self.mode));
                link.send(frame)
            }
            Err(refused) => {
                self.refuse(refused);
                Ok(())
            }
        }
    }

    fn refuse(&mut self, error: Error) {
        tracing::warn!(%error, "outgoing message refused");
        let status = self.lifecycle.refused(error).into_report();
        self.emit(status);
    }

    /// The connection ended with `error`.
    fn lost(&mut self, error: Error, link: &Link) -> Flow {
        tracing::debug!(%error, "connection lost");
        self.ended(Some(error), link)
    }

    /// The connection ended: with `error`, or (`None`) because the caller
    /// asked for a reconnect. What it had in flight goes back to be written
    /// again; the lifecycle says what comes next.
    fn ended(&mut self, error: Option<Error>, link: &Link) -> Flow {
        let not_replayed = self.outbox.connection_lost();
        self.publish_outbox();
        let ended = Ended {
            at: Instant::now(),
            messages: link.messages(),
            ready: link.is_ready(),
        };
        // Handed back before the loss is reported, which may be the
        // machine's final status.
        for message in not_replayed {
            self.refuse(Error::NotReplayed { message });
        }
        let url = self.urls.shown();
        let next = self.lifecycle.connection_lost(error, ended, &mut |s| {
            self.status.emit(about(url.as_ref(), s));
        });
        if self.lifecycle.failing() {
            // Not a healthy connection: it counts as a failed attempt, and
            // the next attempt fails over.
            self.urls.attempt_failed();
        }
        Flow::Go(next)
    }
}
