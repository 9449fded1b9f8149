//! The machine's task: one loop per phase, each a single `select!`.
//!
//! The driver owns everything of one machine (the socket, the channels, the
//! timers, the delivery bookkeeping) so nothing is shared and nothing is
//! locked. Decisions about states are not made here: the driver reports what
//! happened to the [`Lifecycle`] and does what it answers. What the driver
//! does itself is I/O:
//!
//! - *attempt*: connect, bounded by the handshake timeout;
//! - *wait*: sleep between attempts;
//! - *connected*: read, write, keep alive, watch for stuck writes.
//!
//! In every phase it also obeys commands and hands over statuses and received
//! messages as the caller makes room, so a quit is served at any moment and a
//! caller who reads slowly never stalls it.
//!
//! Every branch of every `select!` is cancel-safe: channel `recv`/`reserve`
//! and the engine's `poll_next`/`poll_flush` keep their progress in their
//! owners, and the timers are pinned and reset, never re-created.

use std::{
    collections::VecDeque, future::poll_fn, io, pin::Pin, sync::Arc, task::Poll, time::Duration,
};

use http::HeaderMap;
use tokio::time::{Instant, Sleep, sleep, sleep_until, timeout};

use crate::{
    backoff::Backoff,
    channel::{OwnedPermit, Receiver, SendError, Sender, TrySendError},
    config::{Builder, HeadersFn, OnConnectFn, Target, check_headers},
    delivery::Outbox,
    engine::{self, Connector, Frame, Incoming, Socket},
    error::Error,
    keepalive::{Due, KeepAlive, after},
    machine::{Command, Leftovers},
    message::Message,
    state::{Lifecycle, Next, Policy, Status},
    status::StatusOut,
};

/// Most frames read or messages taken in one go before the loop looks at its
/// other sources again. Each turn of the loop polls every source and timer,
/// so under load a larger batch means less work per message; a command
/// still waits at most one batch.
const BATCH: usize = 256;

/// Timeouts and limits the driver applies.
#[derive(Debug, Clone, Copy)]
struct Limits {
    ping_interval: Duration,
    pong_timeout: Duration,
    handshake_timeout: Duration,
    write_timeout: Duration,
    close_timeout: Duration,
    max_message_size: usize,
}

/// Received messages on their way to the caller.
#[derive(Debug)]
struct InputOut {
    tx: Sender<Message>,
    /// Received messages that did not fit in `input`, oldest first. While
    /// any wait, the socket is not read (backpressure); only a connection
    /// being closed adds more (what arrives during its close handshake).
    held: VecDeque<Message>,
}

impl InputOut {
    fn is_held_up(&self) -> bool {
        !self.held.is_empty()
    }

    /// Hands over the oldest held message once [`room`] gave room.
    fn room(held: &mut VecDeque<Message>, permit: Result<OwnedPermit<Message>, SendError<()>>) {
        match permit {
            Ok(permit) => {
                if let Some(message) = held.pop_front() {
                    permit.send(message);
                }
            }
            // The caller dropped `input`: it wants no messages.
            Err(_) => held.clear(),
        }
    }

    /// When the machine stops: hands over what is held as the caller makes
    /// room, until `deadline`.
    async fn hand_over_held(&mut self, deadline: Instant) {
        while self.is_held_up() {
            tokio::select! {
                permit = room(&self.tx) => Self::room(&mut self.held, permit),
                () = sleep_until(deadline) => break,
            }
        }
    }

    /// At the end: what could not be handed over.
    fn into_leftovers(self) -> Vec<Message> {
        self.held.into()
    }
}

/// Waits for room in `input`. The owned permit keeps the `select!` branch's
/// output free of borrows of the driver, and the sender is cloned only when
/// the future is polled, not each time a `select!` builds its branches.
async fn room(tx: &Sender<Message>) -> Result<OwnedPermit<Message>, SendError<()>> {
    // Boxed when first polled: the wait is rare (the caller is behind), and
    // its state must not take room in every machine's task.
    Box::pin(tx.reserve_owned()).await
}

/// Hands a received message to the caller without waiting. If `input` is
/// full, or older messages are already held, it is held (and the socket is
/// not read meanwhile).
fn hand_over(tx: &Sender<Message>, held: &mut VecDeque<Message>, message: Message) {
    if !held.is_empty() {
        held.push_back(message);
        return;
    }
    match tx.try_send(message) {
        Ok(()) => {}
        Err(TrySendError::Full(message)) => held.push_back(message),
        // The caller dropped `input`: it wants no messages.
        Err(TrySendError::Closed(_)) => {}
    }
}

/// How a phase ended.
enum Flow {
    Go(Next),
    Quit,
}

/// The machine's task.
pub(crate) struct Driver {
    target: Target,
    connector: Connector,
    limits: Limits,
    /// The fixed request headers; boxed, and `None` when there are none
    /// (most machines), to keep the driver small.
    headers: Option<Box<HeaderMap>>,
    headers_fn: Option<HeadersFn>,
    on_connect: Option<OnConnectFn>,
    lifecycle: Lifecycle,
    outbox: Outbox,
    status: StatusOut,
    input: InputOut,
    output: Receiver<Message>,
    /// False once every `output` sender is gone.
    output_open: bool,
    commands: Receiver<Command>,
    text_mode: bool,
}

impl Driver {
    pub(crate) fn new(
        builder: Builder,
        target: Target,
        input: Sender<Message>,
        output: Receiver<Message>,
        status: Sender<Status>,
        commands: Receiver<Command>,
    ) -> Self {
        let rng = builder
            .jitter_seed
            .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        #[cfg_attr(not(test), allow(unused_mut))]
        let mut connector = Connector::new(
            &target,
            builder.tls_config,
            builder.max_message_size,
            builder.retry_status,
        );
        #[cfg(test)]
        {
            connector.memory = builder.memory;
        }
        Self {
            target,
            connector,
            limits: Limits {
                ping_interval: builder.ping_interval,
                pong_timeout: builder.pong_timeout,
                handshake_timeout: builder.handshake_timeout,
                write_timeout: builder.write_timeout,
                close_timeout: builder.close_timeout,
                max_message_size: builder.max_message_size,
            },
            headers: (!builder.headers.is_empty()).then(|| Box::new(builder.headers)),
            headers_fn: builder.headers_fn,
            on_connect: builder.on_connect,
            lifecycle: Lifecycle::new(
                Policy {
                    min_uptime: builder.min_uptime,
                    max_attempts: builder.max_attempts,
                },
                Backoff::new(builder.backoff_initial, builder.backoff_max, rng),
            ),
            outbox: Outbox::new(builder.ack_key, builder.ack_window),
            status: StatusOut::new(status),
            input: InputOut {
                tx: input,
                held: VecDeque::new(),
            },
            output,
            output_open: true,
            commands,
            text_mode: false,
        }
    }

    /// Runs the machine until it stops; returns what was not delivered.
    ///
    /// Not an `async fn`: that would keep the driver twice in the task, once
    /// as the argument and once as the body's variable; the block uses the
    /// captured driver in place.
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn run(mut self) -> impl Future<Output = Leftovers> {
        async move {
            let mut next = self.lifecycle.start(&mut |s| self.status.emit(s));
            let quit = loop {
                let flow = match next {
                    Next::Connect => self.attempt().await,
                    Next::Wait(delay) => self.wait(delay).await,
                    // A final error: its status is already out.
                    Next::Stop => break false,
                };
                match flow {
                    Flow::Go(n) => next = n,
                    Flow::Quit => break true,
                }
            };
            // Everything received goes to `input` before it closes, as far as the
            // caller makes room within the close timeout; the rest is handed back
            // in `Leftovers`.
            let deadline = after(Instant::now(), self.limits.close_timeout);
            // The ending is boxed: its state would otherwise take room in every
            // running machine's task.
            Box::pin(self.input.hand_over_held(deadline)).await;
            if quit {
                let last = self.lifecycle.quit();
                self.status.emit(last);
            }
            Box::pin(self.into_leftovers()).await
        }
    }

    async fn into_leftovers(mut self) -> Leftovers {
        // After `close`, a sender that already holds a slot may still
        // complete its send: read until the channel reports its end (bounded,
        // in case a caller holds a reserved slot and never uses it).
        self.output.close();
        let mut queued = Vec::new();
        let drain = async {
            while let Some(message) = self.output.recv().await {
                queued.push(message);
            }
        };
        if timeout(self.limits.close_timeout, drain).await.is_err() {
            tracing::debug!("a reserved output slot was never used");
        }
        let undelivered = self.outbox.into_undelivered();
        let mut unsent = undelivered.unsent;
        unsent.extend(queued);
        Leftovers {
            unsent,
            unacknowledged: undelivered.unacknowledged,
            received: self.input.into_leftovers(),
        }
    }

    fn emit(&mut self, status: Status) {
        self.status.emit(status);
    }

    /// One connection attempt, and the connection it opens.
    async fn attempt(&mut self) -> Flow {
        // The handshake's result is taken apart in its own function, so it
        // takes no room in the state kept while connected.
        let socket = match self.handshake().await {
            Ok(socket) => socket,
            Err(flow) => return flow,
        };
        self.connected(socket).await
    }

    /// Opens a connection; how the phase goes on if that fails.
    async fn handshake(&mut self) -> Result<Socket, Flow> {
        let result = match self.request_headers() {
            Ok(headers) => self.open(headers).await,
            Err(e) => Some(Err(e)),
        };
        match result {
            None => Err(Flow::Quit),
            Some(Ok(socket)) => Ok(socket),
            Some(Err(error)) => {
                tracing::debug!(%error, "attempt failed");
                Err(Flow::Go(
                    self.lifecycle
                        .attempt_failed(error, &mut |s| self.status.emit(s)),
                ))
            }
        }
    }

    /// The headers of the next upgrade request: the fixed ones, overridden by
    /// those of `headers_fn`.
    fn request_headers(&self) -> Result<HeaderMap, Error> {
        let mut headers = self.headers.as_deref().cloned().unwrap_or_default();
        if let Some(fresh) = self.headers_fn.as_ref().map(|f| f()) {
            for (name, value) in &fresh {
                headers.insert(name.clone(), value.clone());
            }
        }
        check_headers(&headers)?;
        Ok(headers)
    }

    /// Opens a connection, bounded by the handshake timeout, while serving
    /// commands; `None` if told to quit meanwhile.
    async fn open(&mut self, headers: HeaderMap) -> Option<Result<Socket, Error>> {
        tracing::debug!(url = self.target.url(), "connecting");
        // Boxed: the attempt's state is large (TCP, TLS, the upgrade) and
        // only lives during the attempt, so it must not stay part of every
        // idle machine's task.
        let (connector, target) = (&self.connector, &self.target);
        let mut connect = Box::pin(timeout(self.limits.handshake_timeout, async move {
            connector.connect(target, &headers).await
        }));
        loop {
            tokio::select! {
                result = &mut connect => {
                    return Some(result.unwrap_or_else(|_| {
                        Err(Error::HandshakeTimeout(self.limits.handshake_timeout))
                    }));
                }
                command = self.commands.recv() => {
                    // Pings need a connection; a reconnect is under way.
                    if let Some(Command::Quit) = common_command(&mut self.text_mode, command) {
                        return None;
                    }
                }
                () = self.status.drain_one(), if self.status.has_backlog() => {}
                permit = room(&self.input.tx), if self.input.is_held_up() => {
                    InputOut::room(&mut self.input.held, permit);
                }
            }
        }
    }

    /// The wait between attempts.
    async fn wait(&mut self, delay: Duration) -> Flow {
        let timer = sleep(delay);
        tokio::pin!(timer);
        loop {
            tokio::select! {
                () = &mut timer => break,
                command = self.commands.recv() => match common_command(&mut self.text_mode, command) {
                    Some(Command::Quit) => return Flow::Quit,
                    Some(Command::Reconnect) => break,
                    _ => {}
                },
                () = self.status.drain_one(), if self.status.has_backlog() => {}
                permit = room(&self.input.tx), if self.input.is_held_up() => {
                    InputOut::room(&mut self.input.held, permit);
                }
            }
        }
        Flow::Go(self.lifecycle.wait_over(&mut |s| self.status.emit(s)))
    }

    /// The connection is open: run it until it ends.
    async fn connected(&mut self, socket: Socket) -> Flow {
        let now = Instant::now();
        self.lifecycle.connected(now, &mut |s| self.status.emit(s));
        let mut link = Link {
            socket,
            keepalive: KeepAlive::new(self.limits.ping_interval, self.limits.pong_timeout, now),
            flush_needed: false,
            dirty_since: now,
            close: None,
            rearm_keepalive: false,
            write_watched: false,
        };
        {
            // Scoped, so the list takes no room in the phase's state.
            let on_connect = self.on_connect.as_ref().map(|f| f()).unwrap_or_default();
            for message in &on_connect {
                if let Err(error) = self.write(&mut link, message) {
                    return self.lost(error);
                }
            }
        }
        // One timer for the keep-alive and for a stuck write (see
        // `Link::next_deadline`).
        let timer = sleep_until(link.keepalive.deadline());
        tokio::pin!(timer);

        loop {
            // Commands go before messages: a mode switch sent before a
            // message applies to it.
            if let Ok(command) = self.commands.try_recv() {
                if let Some(flow) = self
                    .on_command(&mut link, Some(command), timer.as_mut())
                    .await
                {
                    return flow;
                }
                continue;
            }
            while self.outbox.can_replay() {
                let Some(message) = self.outbox.take_replay() else {
                    break;
                };
                if let Err(error) = self.write_tracked(&mut link, message) {
                    return self.lost(error);
                }
            }
            let read = !self.input.is_held_up();
            let flush = link.flush_needed;
            tokio::select! {
                command = self.commands.recv() => {
                    if let Some(flow) = self.on_command(&mut link, command, timer.as_mut()).await {
                        return flow;
                    }
                }
                event = poll_fn(|cx| link.poll_io(cx, read, &self.input.tx, &mut self.input.held, &mut self.outbox)), if read || flush => {
                    match event {
                        IoEvent::Progress => {
                            if std::mem::take(&mut link.rearm_keepalive) {
                                timer.as_mut().reset(link.next_deadline(self.limits.write_timeout));
                            }
                        }
                        IoEvent::Stalled => {
                            // A write waits for the socket: the timer now
                            // also watches it (until it fires).
                            link.write_watched = true;
                            let deadline = link.write_deadline(self.limits.write_timeout);
                            if deadline < timer.deadline() {
                                timer.as_mut().reset(deadline);
                            }
                        }
                        IoEvent::Failed(error) => return Box::pin(self.failed(&mut link, error)).await,
                        IoEvent::Ended(close) => {
                            let error = close.map_or_else(
                                || Error::ConnectionLost(Arc::new(io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    "the server closed the TCP connection without a close frame",
                                ))),
                                |(code, reason)| Error::Closed { code, reason },
                            );
                            return self.lost(error);
                        }
                    }
                }
                message = self.output.recv(), if self.output_open && self.outbox.can_take() => {
                    let Some(message) = message else {
                        self.output_open = false;
                        continue;
                    };
                    if !self.commands.is_empty() {
                        // A command came first: apply it, then write this.
                        self.outbox.put_back(message);
                        continue;
                    }
                    if let Err(error) = self.write_tracked(&mut link, message) {
                        return self.lost(error);
                    }
                    // Take what else is already queued, so it goes out in the
                    // same socket write.
                    for _ in 1..BATCH {
                        if !self.outbox.can_take() || !self.commands.is_empty() {
                            break;
                        }
                        let Ok(message) = self.output.try_recv() else {
                            break;
                        };
                        if let Err(error) = self.write_tracked(&mut link, message) {
                            return self.lost(error);
                        }
                    }
                }
                () = &mut timer => {
                    let now = Instant::now();
                    if std::mem::take(&mut link.write_watched) && link.flush_needed {
                        if now >= link.write_deadline(self.limits.write_timeout) {
                            return self.lost(Error::WriteTimeout(self.limits.write_timeout));
                        }
                        // Progress was made, or the deadline is later:
                        // keep watching.
                        link.write_watched = true;
                    }
                    if self.input.is_held_up() {
                        // The socket is not being read because the caller is
                        // behind: an unread pong is not the peer's fault.
                        // Detection resumes once reading does.
                        let _ = link.keepalive.received(now);
                    }
                    match link.keepalive.on_timer(now) {
                        Due::Rearm(_) => {}
                        Due::Ping => {
                            tracing::trace!("keep-alive ping");
                            if let Err(error) = link.send(engine::ping()) {
                                return self.lost(error);
                            }
                            link.keepalive.ping_sent(now);
                        }
                        Due::Dead => return self.lost(Error::PongTimeout(self.limits.pong_timeout)),
                    }
                    timer.as_mut().reset(link.next_deadline(self.limits.write_timeout));
                }
                () = self.status.drain_one(), if self.status.has_backlog() => {}
                permit = room(&self.input.tx), if self.input.is_held_up() => {
                    InputOut::room(&mut self.input.held, permit);
                }
            }
        }
    }

    /// Serves a command while connected; returns how the phase ends, if it
    /// does.
    async fn on_command(
        &mut self,
        link: &mut Link,
        command: Option<Command>,
        timer: Pin<&mut Sleep>,
    ) -> Option<Flow> {
        match common_command(&mut self.text_mode, command)? {
            // The close handshake is boxed, like every rare path, to keep
            // the connected phase's state small.
            Command::Quit => {
                Box::pin(self.close(link)).await;
                Some(Flow::Quit)
            }
            Command::Reconnect => {
                Box::pin(self.close(link)).await;
                self.outbox.connection_lost();
                Some(Flow::Go(self.lifecycle.connection_lost(
                    None,
                    Instant::now(),
                    &mut |s| self.status.emit(s),
                )))
            }
            Command::Ping => {
                if let Err(error) = link.send(engine::ping()) {
                    return Some(self.lost(error));
                }
                link.keepalive.ping_sent(Instant::now());
                timer.reset(link.next_deadline(self.limits.write_timeout));
                None
            }
            _ => None,
        }
    }

    /// Writes a message that is not tracked (`on_connect`).
    fn write(&mut self, link: &mut Link, message: &Message) -> Result<(), Error> {
        match engine::outgoing(message, self.text_mode, self.limits.max_message_size) {
            Ok(frame) => link.send(frame),
            Err(refused) => {
                self.refuse(refused);
                Ok(())
            }
        }
    }

    /// Writes a message from `output` and tracks it until it is confirmed.
    fn write_tracked(&mut self, link: &mut Link, message: Message) -> Result<(), Error> {
        match engine::outgoing(&message, self.text_mode, self.limits.max_message_size) {
            Ok(frame) => {
                self.outbox.written(message.resolved(self.text_mode));
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
        let status = self.lifecycle.refused(error);
        self.emit(status);
    }

    /// The peer broke the protocol or sent too large a message: the engine
    /// queued a close frame saying so (1002, 1007 or 1009), which is flushed
    /// within the close timeout before the connection is dropped.
    async fn failed(&mut self, link: &mut Link, error: Error) -> Flow {
        if matches!(error, Error::Protocol(_) | Error::MessageTooLarge { .. }) {
            let flush = poll_fn(|cx| link.socket.poll_flush(cx));
            if let Ok(Err(e)) = timeout(self.limits.close_timeout, flush).await {
                tracing::debug!(error = %e, "close frame not sent");
            }
        }
        self.lost(error)
    }

    /// The connection ended with `error`.
    fn lost(&mut self, error: Error) -> Flow {
        tracing::debug!(%error, "connection lost");
        self.outbox.connection_lost();
        Flow::Go(
            self.lifecycle
                .connection_lost(Some(error), Instant::now(), &mut |s| self.status.emit(s)),
        )
    }

    /// Closes the connection with a close handshake, bounded by the close
    /// timeout. Messages that still arrive are handed over if there is room
    /// and held, in order, otherwise.
    async fn close(&mut self, link: &mut Link) {
        let input = &mut self.input;
        let outbox = &mut self.outbox;
        let socket = &mut link.socket;
        let handshake = async {
            socket.send(engine::close())?;
            poll_fn(|cx| socket.poll_flush(cx)).await?;
            outbox.flushed();
            while let Some(item) = poll_fn(|cx| socket.poll_next(cx)).await {
                if let Incoming::Message(message) = item? {
                    outbox.received(&message);
                    hand_over(&input.tx, &mut input.held, message);
                }
            }
            Ok::<(), Error>(())
        };
        match timeout(self.limits.close_timeout, handshake).await {
            Ok(Ok(())) => tracing::debug!("closed"),
            Ok(Err(e)) => tracing::debug!(error = %e, "close handshake failed"),
            Err(_) => tracing::debug!("close handshake timed out"),
        }
    }
}

/// Applies a command that means the same in every phase (the text mode) and
/// returns the ones the phase must handle itself; a closed command channel
/// means quit.
fn common_command(text_mode: &mut bool, command: Option<Command>) -> Option<Command> {
    match command {
        None | Some(Command::Quit) => Some(Command::Quit),
        Some(Command::UseText) => {
            *text_mode = true;
            None
        }
        Some(Command::UseBinary) => {
            *text_mode = false;
            None
        }
        Some(other) => Some(other),
    }
}

/// What one poll of the socket achieved.
enum IoEvent {
    /// Frames were read or a flush completed.
    Progress,
    /// A flush waits for the socket and the timer does not watch it yet.
    Stalled,
    /// The connection failed.
    Failed(Error),
    /// The connection ended; with the server's close code and reason if it
    /// sent a close frame.
    Ended(Option<(u16, String)>),
}

/// One open connection and its per-connection state.
struct Link {
    socket: Socket,
    keepalive: KeepAlive,
    /// Frames were handed to the engine and not yet flushed.
    flush_needed: bool,
    /// Since when a flush is pending.
    dirty_since: Instant,
    /// The server's close frame, once it arrived (boxed: rare, and the
    /// link lives as long as the connection).
    close: Option<Box<(u16, String)>>,
    /// A ping was answered: the timer must be reset.
    rearm_keepalive: bool,
    /// The timer also watches a write that waits for the socket.
    write_watched: bool,
}

impl Link {
    /// Hands a frame to the engine; the next loop iteration flushes it.
    fn send(&mut self, frame: Frame) -> Result<(), Error> {
        self.socket.send(frame).map_err(|e| self.end_error(e))?;
        self.mark_dirty();
        Ok(())
    }

    /// Once the server's close frame arrived, the connection ended because
    /// the server closed it, whatever fails after (writing the close reply,
    /// a write refused by the closed engine).
    fn end_error(&mut self, error: Error) -> Error {
        match self.close.take().map(|close| *close) {
            Some((code, reason)) => Error::Closed { code, reason },
            None => error,
        }
    }

    /// When a waiting write counts as stuck: `write_timeout` after it last
    /// made progress (or, if it made none, after it became pending).
    fn write_deadline(&self, write_timeout: Duration) -> Instant {
        let progress = self
            .socket
            .last_write()
            .map_or(self.dirty_since, |at| at.max(self.dirty_since));
        after(progress, write_timeout)
    }

    /// When the connection's one timer must fire next: for the keep-alive,
    /// or earlier for a write it watches. Writes are watched only once a
    /// flush has had to wait for the socket, so the timer is not reset for
    /// every batch written.
    fn next_deadline(&self, write_timeout: Duration) -> Instant {
        let keepalive = self.keepalive.deadline();
        if self.write_watched {
            keepalive.min(self.write_deadline(write_timeout))
        } else {
            keepalive
        }
    }

    fn mark_dirty(&mut self) {
        if !self.flush_needed {
            self.flush_needed = true;
            self.dirty_since = Instant::now();
        }
    }

    /// Flushes pending writes and reads up to a batch of frames, handing
    /// received messages to `input`.
    fn poll_io(
        &mut self,
        cx: &mut std::task::Context<'_>,
        read: bool,
        input: &Sender<Message>,
        held: &mut VecDeque<Message>,
        outbox: &mut Outbox,
    ) -> Poll<IoEvent> {
        let mut progress = false;
        if self.flush_needed {
            match self.socket.poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    self.flush_needed = false;
                    outbox.flushed();
                    progress = true;
                }
                Poll::Ready(Err(error)) => {
                    return Poll::Ready(IoEvent::Failed(self.end_error(error)));
                }
                Poll::Pending if !self.write_watched => return Poll::Ready(IoEvent::Stalled),
                Poll::Pending => {}
            }
        }
        let mut received = false;
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
                                outbox.received(&message);
                                hand_over(input, held, message);
                            }
                            // The engine queued the pong: it goes out with
                            // the next flush.
                            Incoming::Ping => self.mark_dirty(),
                            Incoming::Pong => {}
                            Incoming::Close { code, reason } => {
                                self.close = Some(Box::new((code, reason)));
                                self.mark_dirty();
                            }
                        }
                    }
                    Poll::Ready(Some(Err(error))) => {
                        return Poll::Ready(IoEvent::Failed(self.end_error(error)));
                    }
                    Poll::Ready(None) => {
                        return Poll::Ready(IoEvent::Ended(self.close.take().map(|close| *close)));
                    }
                    Poll::Pending => break,
                }
            }
        }
        if received && self.keepalive.received(Instant::now()) {
            self.rearm_keepalive = true;
        }
        if progress || received {
            Poll::Ready(IoEvent::Progress)
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{channel::channel, config::Target};

    /// Every idle machine holds its task's state: the rare paths (the
    /// attempt, the close handshake, the ending) are boxed so that this
    /// stays small. (It was 4.7 KiB before they were, with the driver
    /// stored twice.)
    #[test]
    fn the_task_state_stays_small() {
        let url = "ws://127.0.0.1:1/";
        let target = Target::parse(url).expect("a valid URL");
        let (input, _input) = channel(1);
        let (_output, output) = channel(1);
        let (status, _status) = channel(1);
        let (_command, command) = channel(1);
        let driver = super::Driver::new(
            crate::Machine::builder(url),
            target,
            input,
            output,
            status,
            command,
        );
        let driver_size = std::mem::size_of_val(&driver);
        let task = driver.run();
        let size = std::mem::size_of_val(&task);
        assert!(
            size <= driver_size + 1024,
            "the task state is {size} bytes, the driver {driver_size}"
        );
    }
}
