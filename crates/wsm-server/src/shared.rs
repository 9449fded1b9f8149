//! State shared between the [`Server`](crate::Server) handle and its tasks.
//!
//! Counters that tests wait on are `watch` channels, so a test awaits a
//! condition instead of polling in a sleep loop. The registry of live
//! connections maps each one to a command channel (to reach it while it runs)
//! and a kill switch (to drop its socket even while it is blocked writing to a
//! peer that does not read). Locks are `std` mutexes held only to copy or push
//! small values, never across I/O or an `.await`.

use std::{
    collections::HashMap,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::HeaderMap;
use tokio::{
    sync::{mpsc, oneshot, watch},
    time::Instant,
};

use crate::{
    config::{Config, Rejection},
    data::{Data, Received},
};

/// An order to one running connection.
#[derive(Clone, Debug)]
pub(crate) enum Command {
    /// Stop reading and writing; keep the socket open.
    Freeze,
    /// Send a normal close frame and finish the close handshake.
    Close,
    /// Send this message.
    Send(Data),
    /// Write these bytes to the socket unframed.
    Garbage(Bytes),
}

/// How the server reaches one live connection.
#[derive(Debug)]
struct Entry {
    /// Commands, handled in order by the connection's task.
    commands: mpsc::UnboundedSender<Command>,
    /// Fired (and taken) by `drop_all`: the task drops its socket at once.
    kill: Option<oneshot::Sender<()>>,
}

/// Everything the handle and the tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Fixed configuration.
    pub(crate) config: Config,
    /// Live (upgraded) connections by id.
    connections: Mutex<HashMap<u64, Entry>>,
    /// Source of connection ids.
    next_id: AtomicU64,
    /// How to answer new upgrade requests; `None` accepts them.
    rejection: Mutex<Option<Rejection>>,
    /// Close each new connection right after its upgrade.
    accept_then_close: AtomicBool,
    /// A subprotocol to answer with whatever the client offers.
    forced_protocol: Mutex<Option<String>>,
    /// While `true` the accept loop stops calling `accept`.
    pub(crate) paused: watch::Sender<bool>,
    /// Upgrades answered with 101.
    accepted: watch::Sender<u64>,
    /// Complete HTTP requests received (valid upgrades or not).
    handshakes: watch::Sender<u64>,
    /// Connections currently registered.
    open: watch::Sender<usize>,
    /// Text and binary messages received.
    messages: watch::Sender<u64>,
    /// Headers of the first `config.record_limit` requests counted in
    /// `handshakes`, in order.
    request_headers: Mutex<Vec<HeaderMap>>,
    /// When each of the first `config.record_limit` upgrades was accepted.
    accepted_at: Mutex<Vec<Instant>>,
    /// The first `config.record_limit` messages received.
    received: Mutex<Vec<Received>>,
}

/// Locks `mutex`, ignoring poisoning: the data (counters, records) stays
/// usable even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Fresh state for a server running `config`.
    pub(crate) fn new(config: Config) -> Self {
        Self {
            config,
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            rejection: Mutex::new(None),
            accept_then_close: AtomicBool::new(false),
            forced_protocol: Mutex::new(None),
            paused: watch::Sender::new(false),
            accepted: watch::Sender::new(0),
            handshakes: watch::Sender::new(0),
            open: watch::Sender::new(0),
            messages: watch::Sender::new(0),
            request_headers: Mutex::new(Vec::new()),
            accepted_at: Mutex::new(Vec::new()),
            received: Mutex::new(Vec::new()),
        }
    }

    /// Records a complete HTTP request.
    pub(crate) fn record_request(&self, headers: &HeaderMap) {
        // Push before counting, so that a test woken by the count sees the
        // headers.
        let mut recorded = lock(&self.request_headers);
        if recorded.len() < self.config.record_limit {
            recorded.push(headers.clone());
        }
        drop(recorded);
        self.handshakes.send_modify(|n| *n += 1);
    }

    /// The current rejection, if upgrades are being refused.
    pub(crate) fn rejection(&self) -> Option<Rejection> {
        lock(&self.rejection).clone()
    }

    /// Sets or clears the rejection.
    pub(crate) fn set_rejection(&self, rejection: Option<Rejection>) {
        *lock(&self.rejection) = rejection;
    }

    /// Whether new connections are closed right after their upgrade.
    pub(crate) fn accept_then_close(&self) -> bool {
        self.accept_then_close.load(Ordering::Relaxed)
    }

    /// The subprotocol to answer with whatever the client offers, if set.
    pub(crate) fn forced_protocol(&self) -> Option<String> {
        lock(&self.forced_protocol).clone()
    }

    /// Sets or clears the forced subprotocol.
    pub(crate) fn set_forced_protocol(&self, protocol: Option<String>) {
        *lock(&self.forced_protocol) = protocol;
    }

    /// Sets [`Shared::accept_then_close`].
    pub(crate) fn set_accept_then_close(&self, on: bool) {
        self.accept_then_close.store(on, Ordering::Relaxed);
    }

    /// Registers a connection about to be upgraded and counts it as
    /// accepted. The returned guard unregisters it when dropped.
    ///
    /// Registering before the 101 is written means that once a client has
    /// its 101, commands such as `send_all` already reach its connection.
    pub(crate) fn register(
        &self,
    ) -> (
        Registration<'_>,
        mpsc::UnboundedReceiver<Command>,
        oneshot::Receiver<()>,
    ) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (kill, kill_rx) = oneshot::channel();
        lock(&self.connections).insert(
            id,
            Entry {
                commands,
                kill: Some(kill),
            },
        );
        {
            let mut accepted_at = lock(&self.accepted_at);
            if accepted_at.len() < self.config.record_limit {
                accepted_at.push(Instant::now());
            }
        }
        self.open.send_modify(|n| *n += 1);
        self.accepted.send_modify(|n| *n += 1);
        (Registration { shared: self, id }, commands_rx, kill_rx)
    }

    /// Sends `command` to every live connection; returns how many got it.
    pub(crate) fn broadcast(&self, command: &Command) -> usize {
        lock(&self.connections)
            .values()
            .filter(|entry| entry.commands.send(command.clone()).is_ok())
            .count()
    }

    /// Fires every connection's kill switch; returns how many were fired.
    pub(crate) fn kill_all(&self) -> usize {
        lock(&self.connections)
            .values_mut()
            .filter_map(|entry| entry.kill.take())
            .filter_map(|kill| kill.send(()).ok())
            .count()
    }

    /// Counts (and maybe records) a text or binary message.
    pub(crate) fn record_message(&self, connection: u64, message: &tokio_websockets::Message) {
        let mut index = 0;
        self.messages.send_modify(|n| {
            *n += 1;
            index = *n;
        });
        if index <= self.config.record_limit as u64
            && let Some(data) = Data::from_message(message)
        {
            lock(&self.received).push(Received { connection, data });
        }
    }

    /// Upgrades answered with 101 so far.
    pub(crate) fn accepted(&self) -> u64 {
        *self.accepted.borrow()
    }

    /// Complete HTTP requests received so far.
    pub(crate) fn handshakes(&self) -> u64 {
        *self.handshakes.borrow()
    }

    /// Connections currently open.
    pub(crate) fn open(&self) -> usize {
        *self.open.borrow()
    }

    /// Text and binary messages received so far.
    pub(crate) fn messages(&self) -> u64 {
        *self.messages.borrow()
    }

    /// A copy of the recorded acceptance times.
    pub(crate) fn accepted_at(&self) -> Vec<Instant> {
        lock(&self.accepted_at).clone()
    }

    /// A copy of the recorded request headers.
    pub(crate) fn request_headers(&self) -> Vec<HeaderMap> {
        lock(&self.request_headers).clone()
    }

    /// A copy of the recorded messages.
    pub(crate) fn received(&self) -> Vec<Received> {
        lock(&self.received).clone()
    }

    /// Waits until `accepted` satisfies `done`, at most `timeout`.
    pub(crate) async fn wait_accepted(
        &self,
        timeout: Duration,
        done: impl FnMut(&u64) -> bool,
    ) -> bool {
        wait(&self.accepted, timeout, done).await
    }

    /// Waits until `handshakes` satisfies `done`, at most `timeout`.
    pub(crate) async fn wait_handshakes(
        &self,
        timeout: Duration,
        done: impl FnMut(&u64) -> bool,
    ) -> bool {
        wait(&self.handshakes, timeout, done).await
    }

    /// Waits until `open` satisfies `done`, at most `timeout`.
    pub(crate) async fn wait_open(
        &self,
        timeout: Duration,
        done: impl FnMut(&usize) -> bool,
    ) -> bool {
        wait(&self.open, timeout, done).await
    }

    /// Waits until `messages` satisfies `done`, at most `timeout`.
    pub(crate) async fn wait_messages(
        &self,
        timeout: Duration,
        done: impl FnMut(&u64) -> bool,
    ) -> bool {
        wait(&self.messages, timeout, done).await
    }
}

/// Waits until the value in `sender` satisfies `done`, at most `timeout`.
async fn wait<T>(
    sender: &watch::Sender<T>,
    timeout: Duration,
    done: impl FnMut(&T) -> bool,
) -> bool {
    let mut rx = sender.subscribe();
    // `wait_for` checks the current value first, so nothing is missed
    // between subscribing and waiting.
    matches!(
        tokio::time::timeout(timeout, rx.wait_for(done)).await,
        Ok(Ok(_))
    )
}

/// A registered connection; dropping it unregisters the connection.
#[derive(Debug)]
pub(crate) struct Registration<'a> {
    /// Where it is registered.
    shared: &'a Shared,
    /// Its id: 1, 2, ... in order of registration.
    pub(crate) id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        lock(&self.shared.connections).remove(&self.id);
        self.shared.open.send_modify(|n| *n = n.saturating_sub(1));
    }
}
