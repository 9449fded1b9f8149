//! One open connection: the socket, its keep-alive, its write watch, and
//! its part of the conversation (the heartbeat and the ready gate).
//!
//! The connected phase owns one `Link` and asks it four things: hand a frame
//! to the engine ([`Link::send`]); move bytes ([`Link::poll_io`], which says
//! what happened); what its one timer means when it fires
//! ([`Link::on_timer`], which says when to fire next or why the connection
//! is dead); and close ([`Link::close`]). One timer serves the keep-alive,
//! the heartbeat and the write watch: it fires at [`Link::deadline`], the
//! earliest of them.

use std::{
    future::poll_fn,
    io,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::time::{Instant, timeout_at};

use super::engine::{self, Frame, Incoming, Socket};
use crate::{
    channel::Sender,
    handoff::{
        input::{Held, Inbox, room},
        stats::{Meter, Tally},
    },
    policy::{
        after,
        delivery::Outbox,
        keepalive::{Due, KeepAlive, Schedule},
        rtt::{self, Answer},
        write_watch::WriteWatch,
    },
    settings::{Conversation, Timeouts},
    types::{CloseFrame, Error, Message, Mode},
};

use super::talk::{Heard, Talk};

/// Most frames read, or messages taken from `output`, in one go before the
/// driver's loop looks at its other sources again: under load a larger
/// batch means less work per message, and a command still waits at most one
/// batch.
pub(crate) const BATCH: usize = 256;

/// What one poll of the socket achieved.
pub(crate) enum IoEvent {
    /// Frames were read, a flush completed, or a flush began to wait for the
    /// socket. With `rearm`, the timer must be set to [`Link::deadline`]: a
    /// ping was answered (the next one is due sooner than the pong timeout
    /// the timer waits for), or a write is now watched.
    ///
    /// With `ready`, a received message opened the ready gate: the caller's
    /// messages may go out. With `answer`, a pong answered one of the
    /// machine's pings, or a reply a heartbeat: a round trip to measure.
    Progress {
        rearm: bool,
        ready: bool,
        answer: Option<Answer>,
    },
    /// The connection failed. With `close_queued`, a close frame saying why
    /// waits: [`Link::flush_until`] sends it.
    Failed { error: Error, close_queued: bool },
    /// The server ended the connection, with or without a close frame.
    Ended(Error),
}

/// The keep-alive's part of the timeouts.
fn schedule(timeouts: &Timeouts) -> Schedule {
    Schedule {
        interval: timeouts.ping_interval.get(),
        timeout: timeouts.pong_timeout.get(),
    }
}

/// What a timer expiry did, when it did not end the connection.
pub(crate) struct Tick {
    /// When the timer must fire next.
    pub(crate) next: Instant,
    /// The payload length of the heartbeat that went out, if one did (a
    /// message, for the rate limit and the stats).
    pub(crate) heartbeat: Option<usize>,
}

/// The connection's own settings, lent with each question that needs them
/// (the link keeps only its instants).
#[derive(Clone, Copy)]
pub(crate) struct Rules<'a> {
    pub(crate) timeouts: &'a Timeouts,
    pub(crate) conversation: Option<&'a Conversation>,
    /// What pings count their send time from.
    pub(crate) epoch: Instant,
}

/// One open connection and its per-connection state.
pub(crate) struct Link {
    socket: Socket,
    keepalive: KeepAlive,
    /// Present with a heartbeat or a ready gate.
    talk: Option<Box<Talk>>,
    writes: WriteWatch,
    /// The server's close frame, once it arrived (boxed: rare).
    close: Option<Box<(u16, String)>>,
    /// Data messages received on this connection (for the health rule).
    messages: u32,
    /// When the last data message arrived (or the connection opened).
    last_data: Instant,
    /// The connection's number, given to every message received on it.
    number: u32,
}

impl Link {
    /// The machine's connection number `number`, established at `now`.
    pub(crate) fn new(socket: Socket, now: Instant, number: u32, rules: Rules<'_>) -> Self {
        Self {
            socket,
            keepalive: KeepAlive::new(now),
            talk: rules
                .conversation
                .and_then(|talk| Talk::new(now, talk, rules.timeouts)),
            writes: WriteWatch::new(),
            close: None,
            messages: 0,
            last_data: now,
            number,
        }
    }

    /// Hands a frame to the engine; the next [`Link::poll_io`] flushes it.
    pub(crate) fn send(&mut self, frame: Frame) -> Result<(), Error> {
        self.socket.send(frame).map_err(|e| self.end_error(e))?;
        self.queued();
        Ok(())
    }

    /// Sends a ping at `now`, saying when it was sent (counted from
    /// `epoch`); the pong timeout starts.
    pub(crate) fn ping(&mut self, now: Instant, epoch: Instant) -> Result<(), Error> {
        tracing::debug!("ping");
        self.send(engine::ping(&rtt::ping_payload(epoch, now)))?;
        self.keepalive.ping_sent(now);
        Ok(())
    }

    /// Frames wait for a flush (also the engine's own: a pong, a close
    /// reply).
    fn queued(&mut self) {
        // The clock is read once per batch of writes, not per message.
        if !self.writes.needs_flush() {
            self.writes.queued(Instant::now());
        }
    }

    /// How many data messages this connection brought.
    pub(crate) fn messages(&self) -> u32 {
        self.messages
    }

    /// Whether frames wait for a flush.
    pub(crate) fn needs_flush(&self) -> bool {
        self.writes.needs_flush()
    }

    /// When the timer must fire next: for the keep-alive, or earlier for a
    /// watched write. (The link keeps only its instants; the timeouts come
    /// from the settings with each question.)
    pub(crate) fn deadline(&self, rules: Rules<'_>) -> Instant {
        let timeouts = rules.timeouts;
        let mut keepalive = self
            .keepalive
            .deadline(schedule(timeouts))
            .min(after(self.last_data, timeouts.data.get()));
        if let (Some(state), Some(talk)) = (&self.talk, rules.conversation)
            && let Some(deadline) = state.deadline(talk, timeouts)
        {
            keepalive = keepalive.min(deadline);
        }
        self.writes
            .deadline(self.socket.last_write(), timeouts.write.get())
            .map_or(keepalive, |write| write.min(keepalive))
    }

    /// The timer fired at `now`: pings or sends the heartbeat if one is
    /// due, and says when to fire next, or why the connection is dead.
    /// `reading` is false while the socket is not read because the caller
    /// is behind on `input`: an unread pong is not the peer's fault, so
    /// detection waits until reading resumes.
    pub(crate) fn on_timer(
        &mut self,
        now: Instant,
        reading: bool,
        rules: Rules<'_>,
    ) -> Result<Tick, Error> {
        let timeouts = rules.timeouts;
        if self
            .writes
            .is_stuck(now, self.socket.last_write(), timeouts.write.get())
        {
            return Err(Error::WriteTimeout(timeouts.write.get()));
        }
        if !reading {
            let _ = self.keepalive.received(now);
            self.last_data = now;
        }
        if now >= after(self.last_data, timeouts.data.get()) {
            return Err(Error::DataTimeout(timeouts.data.get()));
        }
        match self.keepalive.on_timer(now, schedule(timeouts)) {
            Due::Rearm(_) => {}
            Due::Ping => self.ping(now, rules.epoch)?,
            Due::Dead => return Err(Error::PongTimeout(timeouts.pong_timeout.get())),
        }
        if let (Some(state), Some(talk)) = (&mut self.talk, rules.conversation)
            && let Some(heartbeat) = state.on_timer(now, reading, talk, timeouts)?
        {
            tracing::debug!("heartbeat");
            // Its kind is known (fixed when the machine was built), so the
            // mode plays no part; its size was checked then too.
            self.send(engine::outgoing(heartbeat, Mode::Binary, usize::MAX)?)?;
            return Ok(Tick {
                next: self.deadline(rules),
                heartbeat: Some(heartbeat.len()),
            });
        }
        Ok(Tick {
            next: self.deadline(rules),
            heartbeat: None,
        })
    }

    /// Whether the caller's messages may go out: the server said it is
    /// ready, or there is no ready gate.
    pub(crate) fn is_ready(&self) -> bool {
        self.talk.as_ref().is_none_or(|talk| talk.is_ready())
    }

    /// Flushes what waits and, if `read`, reads up to a batch of frames,
    /// handing received messages to `input` (holding them when it is full)
    /// and telling the outbox what was flushed and acknowledged. Says what
    /// happened, and how many messages (and bytes) were handed over.
    pub(crate) fn poll_io(
        &mut self,
        cx: &mut Context<'_>,
        conversation: Option<&Conversation>,
        read: bool,
        input: &Sender<Message>,
        held: &mut Held,
        outbox: &mut Outbox,
    ) -> Poll<(IoEvent, Tally)> {
        let mut progress = false;
        let mut rearm = false;
        if self.writes.needs_flush() {
            match self.socket.poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    self.writes.flushed();
                    outbox.flushed();
                    progress = true;
                }
                Poll::Ready(Err(error)) => {
                    let failed = IoEvent::Failed {
                        error: self.end_error(error),
                        close_queued: false,
                    };
                    return Poll::Ready((failed, Tally::default()));
                }
                Poll::Pending => {
                    if self.writes.stalled() {
                        progress = true;
                        rearm = true;
                    }
                }
            }
        }
        let mut received = false;
        let mut data = false;
        let mut ready = false;
        let mut answer = None;
        let mut tally = Tally::default();
        if read {
            for _ in 0..BATCH {
                if !held.is_empty() {
                    break;
                }
                match self.socket.poll_next(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        received = true;
                        match frame {
                            Incoming::Message(message) => {
                                let heard = match (&mut self.talk, conversation) {
                                    (Some(state), Some(talk)) => state.heard(&message, talk),
                                    _ => Heard::Data,
                                };
                                match heard {
                                    Heard::Reply { deliver, sent } => {
                                        if let Some(rtt) = sent.and_then(|sent| {
                                            Instant::now().checked_duration_since(sent)
                                        }) {
                                            answer = Some(Answer::Reply(rtt));
                                        }
                                        if !deliver {
                                            continue;
                                        }
                                    }
                                    Heard::Ready => {
                                        ready = true;
                                        data = true;
                                        self.messages = self.messages.saturating_add(1);
                                    }
                                    Heard::Data => {
                                        data = true;
                                        self.messages = self.messages.saturating_add(1);
                                    }
                                }
                                outbox.received(&message);
                                tally.add(message.len());
                                held.hand_over(input, message.on_connection(self.number));
                            }
                            // The engine queued the pong: it goes out with
                            // the next flush.
                            Incoming::Ping => self.queued(),
                            Incoming::Pong(payload) => {
                                if let Some(pong) = Answer::pong(&payload) {
                                    answer = Some(pong);
                                }
                            }
                            Incoming::Close { code, reason } => {
                                self.close = Some(Box::new((code, reason)));
                                self.queued();
                            }
                        }
                    }
                    Poll::Ready(Some(Err(failure))) => {
                        let failed = IoEvent::Failed {
                            error: self.end_error(failure.error),
                            close_queued: failure.close_queued,
                        };
                        return Poll::Ready((failed, tally));
                    }
                    Poll::Ready(None) => return Poll::Ready((IoEvent::Ended(self.ended()), tally)),
                    Poll::Pending => break,
                }
            }
        }
        if received {
            let now = Instant::now();
            if data {
                // The deadline only moves later: the timer need not move.
                self.last_data = now;
            }
            if self.keepalive.received(now) {
                rearm = true;
            }
            if let (Some(state), Some(talk)) = (&mut self.talk, conversation) {
                state.received(talk);
            }
        }
        if progress || received {
            let progress = IoEvent::Progress {
                rearm,
                ready,
                answer,
            };
            Poll::Ready((progress, tally))
        } else {
            Poll::Pending
        }
    }

    /// Writes what is queued (such as the close frame of a failed
    /// connection), until `deadline`.
    pub(crate) async fn flush_until(&mut self, deadline: Instant) {
        let socket = &mut self.socket;
        if let Ok(Err(e)) = timeout_at(deadline, poll_fn(|cx| socket.poll_flush(cx))).await {
            tracing::debug!(error = %e, "close frame not sent");
        }
    }

    /// Closes the connection with a close handshake (with `frame`'s code and
    /// reason, or a normal closure), until `deadline`.
    /// Messages that still arrive are handed over, or held within the bound
    /// of [`Inbox::can_hold_more`].
    pub(crate) async fn close(
        &mut self,
        deadline: Instant,
        frame: Option<&CloseFrame>,
        inbox: &mut Inbox,
        outbox: &mut Outbox,
        meter: &Meter,
    ) {
        let (socket, number) = (&mut self.socket, self.number);
        let handshake = async {
            socket.send(engine::close(frame))?;
            poll_fn(|cx| socket.poll_flush(cx)).await?;
            outbox.flushed();
            loop {
                tokio::select! {
                    item = poll_fn(|cx| socket.poll_next(cx)), if inbox.can_hold_more() => match item {
                        None => return Ok(()),
                        Some(Err(failure)) => return Err(failure.error),
                        Some(Ok(Incoming::Message(message))) => {
                            outbox.received(&message);
                            let mut tally = Tally::default();
                            tally.add(message.len());
                            meter.received(tally);
                            inbox.held.hand_over(&inbox.tx, message.on_connection(number));
                        }
                        Some(Ok(Incoming::Ping | Incoming::Pong(_) | Incoming::Close { .. })) => {}
                    },
                    permit = room(&inbox.tx), if inbox.is_held_up() => inbox.held.give(permit),
                    // Unreachable (one of the two is always enabled); ends
                    // the handshake rather than panicking.
                    else => return Ok(()),
                }
            }
        };
        match timeout_at(deadline, handshake).await {
            Ok(Ok(())) => tracing::debug!("closed"),
            Ok(Err(e)) => tracing::debug!(error = %e, "close handshake failed"),
            Err(_) => tracing::debug!("close handshake timed out"),
        }
    }

    /// Once the server's close frame arrived, the connection ended because
    /// the server closed it, whatever fails after (writing the close reply,
    /// a write refused by the closed engine).
    fn end_error(&mut self, error: Error) -> Error {
        match self.close.take().map(|close| *close) {
            Some((code, reason)) => Error::Closed {
                code,
                reason,
                retryable: true,
            },
            None => error,
        }
    }

    /// Why the connection ended when the stream did.
    fn ended(&mut self) -> Error {
        match self.close.take().map(|close| *close) {
            Some((code, reason)) => Error::Closed {
                code,
                reason,
                retryable: true,
            },
            None => Error::ConnectionLost(Arc::new(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the TCP connection without a close frame",
            ))),
        }
    }
}
