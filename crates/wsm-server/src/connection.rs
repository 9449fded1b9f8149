//! One task per connection: the upgrade, then one `select!` loop.
//!
//! The loop owns the WebSocket and waits on, in priority order: commands from
//! the handle, the freeze timer, the close-handshake deadline, and the next
//! frame (flushing queued echoes whenever the read side has nothing more). A
//! frozen connection leaves the loop and just holds its socket. A separate
//! kill switch, raced against everything, drops the socket at once: it is how
//! `drop_all` works even while a write is blocked on a peer that does not
//! read, and the accept loop aborts every task the same way on stop.

use std::{
    collections::VecDeque,
    future::{Future, poll_fn},
    net::SocketAddr,
    sync::Arc,
    task::Poll,
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use tokio::{
    io::AsyncWriteExt,
    net::TcpStream,
    sync::mpsc,
    time::{Instant, sleep_until, timeout},
};
use tokio_websockets::{CloseCode, Error, Limits, Message, ServerBuilder, WebSocketStream};
use tracing::{Instrument, debug, debug_span, trace};

use crate::{
    coalesced::Coalesced,
    handshake::{self, Incoming},
    prefixed::Prefixed,
    shared::{Command, Registration, Shared},
};

/// How long a client may take to send its upgrade request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the peer may take to answer our close frame before the socket is
/// dropped anyway.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The server side of one upgraded connection.
type Ws = WebSocketStream<Prefixed<Coalesced<TcpStream>>>;

/// Where a connection is in its life. Frozen is not here: a frozen connection
/// leaves the loop for [`hold_frozen`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Echoing.
    Open,
    /// A close frame was sent or an error seen; waiting for the peer's close
    /// (or EOF) until the deadline, ignoring data.
    Closing,
}

/// Serves one accepted TCP connection until it ends.
pub(crate) async fn serve(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let span = debug_span!("connection", %peer, id = tracing::field::Empty);
    serve_inner(&shared, stream).instrument(span).await;
}

/// [`serve`], inside its span.
async fn serve_inner(shared: &Shared, mut stream: TcpStream) {
    let incoming = match timeout(REQUEST_TIMEOUT, handshake::read_request(&mut stream)).await {
        Ok(Ok(incoming)) => incoming,
        Ok(Err(err)) => {
            debug!(cause = %err, "reading the upgrade request failed");
            return;
        }
        Err(_) => {
            debug!("no upgrade request in time");
            return;
        }
    };
    let (request, leftover) = match incoming {
        Incoming::Request(request, leftover) => (request, leftover),
        Incoming::Malformed(why) => {
            debug!(why, "malformed upgrade request");
            respond_and_close(&mut stream, handshake::BAD_REQUEST).await;
            return;
        }
        Incoming::Closed => {
            debug!("closed before sending an upgrade request");
            return;
        }
    };
    shared.record_request(&request.headers);

    if let Some(rejection) = shared.rejection() {
        debug!(status = rejection.status, "rejecting upgrade");
        respond_and_close(&mut stream, &handshake::rejection_response(&rejection)).await;
        return;
    }
    let accept = match request.upgrade {
        Ok(accept) => accept,
        Err(why) => {
            debug!(why, "invalid upgrade request");
            respond_and_close(&mut stream, handshake::BAD_REQUEST).await;
            return;
        }
    };

    let (registration, commands, kill) = shared.register();
    tracing::Span::current().record("id", registration.id);
    let protocol = shared
        .forced_protocol()
        .or_else(|| handshake::choose_protocol(&request.headers, &shared.config.protocols));
    if let Err(err) = stream
        .write_all(&handshake::switching_protocols(
            &accept,
            protocol.as_deref(),
        ))
        .await
    {
        debug!(cause = %err, "writing 101 failed");
        return;
    }
    let upgraded_at = Instant::now();
    debug!("upgraded");

    let limits = Limits::default().max_payload_len(Some(shared.config.max_message_size));
    let ws = ServerBuilder::new()
        .limits(limits)
        .serve(Prefixed::new(leftover, Coalesced::new(stream)));

    tokio::select! {
        // The kill switch comes first so that it wins over a busy socket.
        // Dropping `run` drops the socket; nothing else needs cleaning up.
        biased;
        _ = kill => debug!("dropped by drop_all"),
        () = run(shared, &registration, ws, commands, upgraded_at) => {}
    }
}

/// Writes a complete HTTP response and closes the socket.
async fn respond_and_close(stream: &mut TcpStream, response: &[u8]) {
    let result = async {
        stream.write_all(response).await?;
        stream.shutdown().await
    };
    if let Err(err) = result.await {
        debug!(cause = %err, "writing the HTTP response failed");
    }
}

/// What the loop does after handling an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Keep looping.
    Continue,
    /// Stop reading and writing; hold the socket.
    Freeze,
    /// Drop the socket.
    End,
}

/// The state of one upgraded connection, owned by its loop.
struct Session<'a> {
    /// Counters and records.
    shared: &'a Shared,
    /// This connection's id, for records.
    id: u64,
    /// The WebSocket.
    ws: Ws,
    /// Open or closing.
    phase: Phase,
    /// Messages echoed so far, for `close_after`.
    echoed: u64,
    /// Whether frames were queued since the last completed flush.
    dirty: bool,
    /// When the last messages arrived, for `max_rate` (at most its count).
    arrivals: VecDeque<Instant>,
}

/// The connection loop, from the upgrade until the socket should be dropped.
async fn run(
    shared: &Shared,
    registration: &Registration<'_>,
    ws: Ws,
    mut commands: mpsc::UnboundedReceiver<Command>,
    upgraded_at: Instant,
) {
    let mut session = Session {
        shared,
        id: registration.id,
        ws,
        phase: Phase::Open,
        echoed: 0,
        dirty: false,
        arrivals: VecDeque::new(),
    };

    let freeze_at = shared.config.freeze_after.map(|after| upgraded_at + after);
    // Only polled when `freeze_at` is set, so the placeholder deadline is
    // never reached.
    let freeze_timer = sleep_until(freeze_at.unwrap_or(upgraded_at));
    tokio::pin!(freeze_timer);
    // Armed (`reset`) when closing starts; only polled while closing.
    let close_deadline = sleep_until(upgraded_at);
    tokio::pin!(close_deadline);

    let mut step = if shared.accept_then_close() || shared.config.close_after == Some(0) {
        session.start_close().await
    } else {
        Step::Continue
    };
    let mut was_open = true;

    while step == Step::Continue {
        if was_open && session.phase == Phase::Closing {
            close_deadline
                .as_mut()
                .reset(Instant::now() + CLOSE_TIMEOUT);
        }
        was_open = session.phase == Phase::Open;

        // Every branch is cancel-safe: `recv` and `Sleep` are, and
        // `next_or_flush` keeps all its progress inside `ws` (tokio-websockets
        // buffers partial frames and queued writes in the stream itself).
        step = tokio::select! {
            biased;
            // Commands first: a freeze must not wait behind a busy reader.
            command = commands.recv() => match command {
                Some(command) => session.on_command(command).await,
                None => Step::End,
            },
            () = &mut freeze_timer, if freeze_at.is_some() => Step::Freeze,
            () = &mut close_deadline, if session.phase == Phase::Closing => {
                debug!("peer did not finish the close handshake in time");
                Step::End
            }
            frame = next_or_flush(&mut session.ws, &mut session.dirty) => match frame {
                Some(Ok(message)) => session.on_message(message).await,
                Some(Err(err)) => session.on_error(err).await,
                None => {
                    debug!("closed");
                    Step::End
                }
            },
        };
    }

    if step == Step::Freeze {
        debug!("frozen");
        hold_frozen(session.ws, commands).await;
    }
}

impl Session<'_> {
    /// Handles a command from the handle.
    async fn on_command(&mut self, command: Command) -> Step {
        match command {
            Command::Freeze => Step::Freeze,
            Command::Close if self.phase == Phase::Open => self.start_close().await,
            Command::Send(data) if self.phase == Phase::Open => {
                self.queue(data.into_message(), "push").await
            }
            Command::Close | Command::Send(_) => Step::Continue,
            Command::Garbage(bytes) => match write_garbage(&mut self.ws, &bytes).await {
                Ok(()) => {
                    self.dirty = false;
                    Step::Continue
                }
                Err(err) => {
                    debug!(cause = %err, "writing garbage failed");
                    Step::End
                }
            },
        }
    }

    /// Handles a message from the peer: echo, `/CLOSE`, or a control frame.
    async fn on_message(&mut self, message: Message) -> Step {
        if !message.is_text() && !message.is_binary() {
            // A ping's pong (or a close's answer) has been queued by
            // tokio-websockets: make sure it is flushed.
            self.dirty = true;
            return Step::Continue;
        }
        self.shared.record_message(self.id, &message);
        if self.phase != Phase::Open {
            return Step::Continue;
        }
        if &**message.as_payload() == b"/CLOSE" {
            return self.start_close().await;
        }
        if self.over_rate() {
            debug!("rate limit exceeded");
            return self
                .close_with(CloseCode::POLICY_VIOLATION, "rate limit")
                .await;
        }
        trace!(len = message.as_payload().len(), "echo");
        let step = self.queue(message, "echo").await;
        self.echoed += 1;
        if step == Step::Continue && self.shared.config.close_after == Some(self.echoed) {
            return self.start_close().await;
        }
        step
    }

    /// Handles a read error.
    async fn on_error(&mut self, err: Error) -> Step {
        if let Error::Io(err) = err {
            debug!(cause = %err, "socket failed");
            return Step::End;
        }
        debug!(cause = %err, "protocol error");
        // tokio-websockets has queued the matching close frame (1002, 1007,
        // 1009, ...) where it could. Where it could not (a fragmented message
        // grown too long) queue one here; this fails harmlessly when a close
        // frame is already queued. Then keep polling so that it is flushed,
        // until the stream ends or the close deadline passes.
        let code = if matches!(err, Error::PayloadTooLong { .. }) {
            CloseCode::MESSAGE_TOO_BIG
        } else {
            CloseCode::PROTOCOL_ERROR
        };
        let _ = self.ws.feed(Message::close(Some(code), "")).await;
        self.dirty = true;
        self.phase = Phase::Closing;
        Step::Continue
    }

    /// Queues a normal close frame (code 1000) and starts closing.
    async fn start_close(&mut self) -> Step {
        self.close_with(CloseCode::NORMAL_CLOSURE, "").await
    }

    /// Queues a close frame with `code` and `reason` and starts closing.
    async fn close_with(&mut self, code: CloseCode, reason: &str) -> Step {
        debug!(code = u16::from(code), "closing");
        let step = self
            .queue(Message::close(Some(code), reason), "close")
            .await;
        self.phase = Phase::Closing;
        step
    }

    /// Notes a message's arrival; whether it is one too many for
    /// `max_rate`.
    fn over_rate(&mut self) -> bool {
        let Some((count, per)) = self.shared.config.max_rate else {
            return false;
        };
        let now = Instant::now();
        while self
            .arrivals
            .front()
            .is_some_and(|&at| now.duration_since(at) >= per)
        {
            self.arrivals.pop_front();
        }
        self.arrivals.push_back(now);
        self.arrivals.len() > usize::try_from(count).unwrap_or(usize::MAX)
    }

    /// Queues `message` for the next flush.
    async fn queue(&mut self, message: Message, what: &'static str) -> Step {
        // `feed` only waits when more than the flush threshold is queued, i.e.
        // when the peer reads slower than it sends.
        match self.ws.feed(message).await {
            Ok(()) => {
                self.dirty = true;
                Step::Continue
            }
            Err(err) => {
                debug!(cause = %err, what, "queueing a frame failed");
                Step::End
            }
        }
    }
}

/// Flushes queued frames, then writes `bytes` unframed onto the socket.
async fn write_garbage(ws: &mut Ws, bytes: &[u8]) -> Result<(), Error> {
    ws.flush().await?;
    let socket = ws.get_mut();
    socket.write_all(bytes).await?;
    socket.flush().await?;
    Ok(())
}

/// The next message, flushing queued frames while there is nothing to read.
///
/// Echoes are queued with `feed` and not flushed one by one: as long as the
/// read side has another message ready, the echoes pile up (tokio-websockets
/// flushes on its own past 8 KiB) and go out in one write. Once a read would
/// wait, the queue is flushed.
fn next_or_flush<'a>(
    ws: &'a mut Ws,
    dirty: &'a mut bool,
) -> impl Future<Output = Option<Result<Message, Error>>> + 'a {
    poll_fn(move |cx| {
        if let Poll::Ready(item) = ws.poll_next_unpin(cx) {
            return Poll::Ready(item);
        }
        if *dirty {
            match ws.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => *dirty = false,
                Poll::Ready(Err(err)) => return Poll::Ready(Some(Err(err))),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
}

/// A frozen connection: never reads or writes again, but keeps the socket
/// open until the task is killed (`drop_all`) or aborted (server stop).
async fn hold_frozen(ws: Ws, mut commands: mpsc::UnboundedReceiver<Command>) {
    let _socket = ws;
    // Discard commands so that they do not pile up.
    while commands.recv().await.is_some() {}
    std::future::pending::<()>().await;
}
