//! The message type that travels on the `input` and `output` channels.
//!
//! It is the crate's own type so that the WebSocket engine can be swapped
//! without breaking callers. The payload is a [`Bytes`], so a message can be
//! handed from the caller to the socket without copying, and cloning one (as
//! the delivery bookkeeping does) only bumps a reference count.

use std::{
    hash::{Hash, Hasher},
    time::Duration,
};

use bytes::Bytes;
use tokio::time::Instant;

/// What kind of WebSocket message this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A text message: the payload is valid UTF-8.
    Text,
    /// A binary message.
    Binary,
    /// Plain bytes whose kind is chosen when they are sent: binary by default,
    /// text after [`Command::UseText`](crate::Command::UseText). Only
    /// messages built by the caller have this kind; received ones are always
    /// [`Kind::Text`] or [`Kind::Binary`].
    Unspecified,
}

/// How plain bytes ([`Kind::Unspecified`]) are sent: the machine's mode,
/// switched by [`Command::UseText`](crate::Command::UseText) and
/// [`Command::UseBinary`](crate::Command::UseBinary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Mode {
    #[default]
    Binary,
    Text,
}

/// One WebSocket message.
///
/// Received messages are always [`Kind::Text`] or [`Kind::Binary`]. Messages
/// to send can be explicit ([`Message::text`], [`Message::binary`]) or plain
/// bytes (`From<Vec<u8>>`, `From<&[u8]>`, `From<Bytes>`) that go out in the
/// machine's current mode.
///
/// ```
/// use ws_machine::{Kind, Message};
///
/// let hello = Message::from("hello");
/// assert_eq!(hello.kind(), Kind::Text);
/// assert_eq!(hello.as_text(), Some("hello"));
///
/// let raw = Message::from(vec![1u8, 2, 3]);
/// assert_eq!(raw.kind(), Kind::Unspecified);
/// assert_eq!(raw.as_ref(), &[1, 2, 3]);
/// ```
///
/// Two messages are equal when their kind and payload are: a deadline
/// ([`Message::expires_in`]) or [`Message::no_replay`] is about how a
/// message is sent, not what it says.
#[derive(Debug, Clone)]
pub struct Message {
    kind: Kind,
    resend: Resend,
    payload: Bytes,
    /// Not written after this (see [`Message::expires_in`]).
    deadline: Option<Instant>,
    /// The connection a received message came on (0: built by the caller).
    /// It lives in what would be padding: a message is no larger for it.
    connection: u32,
}

/// Whether a message may be written again on a new connection when the
/// connection it was written on ended before it was confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resend {
    Allowed,
    Never,
}

impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.payload == other.payload
    }
}

impl Eq for Message {}

impl Hash for Message {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.payload.hash(state);
    }
}

impl Message {
    /// A text message.
    #[must_use]
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            kind: Kind::Text,
            payload: Bytes::from(text.into()),
            resend: Resend::Allowed,
            deadline: None,
            connection: 0,
        }
    }

    /// A binary message, whatever the machine's mode.
    #[must_use]
    pub fn binary(payload: impl Into<Bytes>) -> Self {
        Self {
            kind: Kind::Binary,
            payload: payload.into(),
            resend: Resend::Allowed,
            deadline: None,
            connection: 0,
        }
    }

    /// Plain bytes, sent as binary or text according to the machine's mode
    /// ([`Command::UseBinary`](crate::Command::UseBinary) is the default).
    #[must_use]
    pub fn bytes(payload: impl Into<Bytes>) -> Self {
        Self {
            kind: Kind::Unspecified,
            payload: payload.into(),
            resend: Resend::Allowed,
            deadline: None,
            connection: 0,
        }
    }

    /// Builds a message of a known kind from bytes that are already known to
    /// match it (the engine validated UTF-8 for text).
    pub(crate) fn received(kind: Kind, payload: Bytes) -> Self {
        Self {
            kind,
            resend: Resend::Allowed,
            payload,
            deadline: None,
            connection: 0,
        }
    }

    /// This received message, marked with the number of the connection it
    /// came on.
    pub(crate) fn on_connection(self, connection: u32) -> Self {
        Self { connection, ..self }
    }

    /// For a received message: the number of the connection it came on,
    /// the same as [`Status::connection`](crate::Status::connection) of the
    /// `Connected` that opened it (the machine's connections count from 1).
    /// Two messages with different numbers have a reconnect between them,
    /// so a caller that reads only `input` knows when to resynchronise
    /// (reload a snapshot, ask for what it missed). 0 for messages built by
    /// the caller.
    ///
    /// ```
    /// use ws_machine::Message;
    ///
    /// let mut last = 0;
    /// let mut on_message = |message: &Message| {
    ///     if message.connection() != last {
    ///         last = message.connection();
    ///         // a new connection: reload the snapshot before applying updates
    ///     }
    /// };
    /// on_message(&Message::text("built here"));
    /// assert_eq!(last, 0, "not a received message");
    /// ```
    #[must_use]
    pub fn connection(&self) -> u32 {
        self.connection
    }

    /// This message, not to be written later than `within` from now: an
    /// order queued during an outage is dangerous when it goes out after
    /// the reconnect. The machine checks the deadline when it is about to
    /// write the message (taken from `output`, or written again after a
    /// reconnect); one past it is handed back in a status with
    /// [`Error::Expired`](crate::Error::Expired) (or in
    /// [`Leftovers::refused`](crate::Leftovers::refused) if that status
    /// never reached the caller), never written late. While disconnected
    /// the machine does not take from `output`, so an expired message comes
    /// back when the next connection opens; if the machine stops first, it
    /// is in [`Leftovers::unsent`](crate::Leftovers::unsent) like any
    /// other. A message already written when the deadline passes is not
    /// taken back.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use ws_machine::Message;
    ///
    /// let order = Message::text(r#"{"op":"buy","qty":1}"#).expires_in(Duration::from_secs(2));
    /// assert!(order.deadline().is_some());
    /// # }
    /// ```
    #[must_use]
    pub fn expires_in(self, within: Duration) -> Self {
        Self {
            // Too far to add to a clock (`Duration::MAX`): never.
            deadline: Instant::now().checked_add(within),
            ..self
        }
    }

    /// When this message stops being worth writing, if it has a deadline
    /// ([`Message::expires_in`]).
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// How long ago the deadline passed, at `now`, if it did.
    pub(crate) fn late(&self, now: Instant) -> Option<Duration> {
        self.deadline
            .filter(|&deadline| now >= deadline)
            .map(|deadline| now - deadline)
    }

    /// This message, written at most once: if the connection it was
    /// written on ends before its delivery is confirmed (written out to
    /// the socket, or acknowledged with
    /// [`Builder::ack_key`](crate::Builder::ack_key)), it is handed back in
    /// a status with [`Error::NotReplayed`](crate::Error::NotReplayed)
    /// instead of being written again on the next connection. For messages
    /// that must not reach the server twice, or late: the caller decides
    /// what to do with it. (A message that waits in `output` while the
    /// machine is disconnected has not been written: it goes out on the next
    /// connection; give it a deadline with [`Message::expires_in`] to bound
    /// that.)
    ///
    /// ```
    /// use ws_machine::Message;
    ///
    /// let cancel = Message::text(r#"{"op":"cancel","id":7}"#).no_replay();
    /// assert!(!cancel.is_replayed());
    /// assert!(Message::text("quote").is_replayed());
    /// ```
    #[must_use]
    pub fn no_replay(self) -> Self {
        Self {
            resend: Resend::Never,
            ..self
        }
    }

    /// Whether this message is written again on a new connection when the
    /// one it was written on ended first (the default; see
    /// [`Message::no_replay`]).
    #[must_use]
    pub fn is_replayed(&self) -> bool {
        match self.resend {
            Resend::Allowed => true,
            Resend::Never => false,
        }
    }

    /// The message as it goes out in the given mode: plain bytes become text
    /// or binary, so a message written again after a reconnect keeps the
    /// kind it was first written with.
    pub(crate) fn resolved(self, mode: Mode) -> Self {
        let kind = match (self.kind, mode) {
            (Kind::Unspecified, Mode::Text) => Kind::Text,
            (Kind::Unspecified, Mode::Binary) => Kind::Binary,
            (kind @ (Kind::Text | Kind::Binary), _) => kind,
        };
        Self { kind, ..self }
    }

    /// The kind of this message.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether this is a text message.
    #[must_use]
    pub fn is_text(&self) -> bool {
        self.kind == Kind::Text
    }

    /// Whether this is a binary message.
    #[must_use]
    pub fn is_binary(&self) -> bool {
        self.kind == Kind::Binary
    }

    /// The payload as text, if this is a text message.
    #[must_use]
    pub fn as_text(&self) -> Option<&str> {
        match self.kind {
            Kind::Text => std::str::from_utf8(&self.payload).ok(),
            Kind::Binary | Kind::Unspecified => None,
        }
    }

    /// The payload.
    #[must_use]
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The payload, without copying.
    #[must_use]
    pub fn into_payload(self) -> Bytes {
        self.payload
    }

    /// The payload's length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.payload.len()
    }

    /// Whether the payload is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }
}

impl AsRef<[u8]> for Message {
    fn as_ref(&self) -> &[u8] {
        &self.payload
    }
}

impl From<Vec<u8>> for Message {
    fn from(payload: Vec<u8>) -> Self {
        Self::bytes(payload)
    }
}

impl From<&[u8]> for Message {
    fn from(payload: &[u8]) -> Self {
        Self::bytes(Bytes::copy_from_slice(payload))
    }
}

impl From<Bytes> for Message {
    fn from(payload: Bytes) -> Self {
        Self::bytes(payload)
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Self::text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Self::text(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every queued and received message is this size: the connection
    /// number must stay in what was padding.
    #[test]
    fn the_connection_number_costs_no_space() {
        assert_eq!(
            std::mem::size_of::<Message>(),
            std::mem::size_of::<(Bytes, Option<Instant>, u64)>()
        );
    }

    #[test]
    fn conversions_pick_the_right_kind() {
        assert_eq!(Message::from(String::from("a")).kind(), Kind::Text);
        assert_eq!(Message::from(&b"a"[..]).kind(), Kind::Unspecified);
        assert_eq!(
            Message::from(Bytes::from_static(b"a")).kind(),
            Kind::Unspecified
        );
        assert_eq!(Message::binary(vec![0u8]).kind(), Kind::Binary);
        assert!(Message::binary(vec![0u8]).is_binary());
    }

    #[test]
    fn only_text_reads_as_text() {
        assert_eq!(Message::text("héllo").as_text(), Some("héllo"));
        assert_eq!(Message::binary(&b"hello"[..]).as_text(), None);
        assert_eq!(Message::bytes(&b"hello"[..]).as_text(), None);
    }

    #[test]
    fn resolving_fixes_only_plain_bytes() {
        assert_eq!(
            Message::bytes(&b"a"[..]).resolved(Mode::Text).kind(),
            Kind::Text
        );
        assert_eq!(
            Message::bytes(&b"a"[..]).resolved(Mode::Binary).kind(),
            Kind::Binary
        );
        assert_eq!(
            Message::binary(&b"a"[..]).resolved(Mode::Text).kind(),
            Kind::Binary
        );
        assert_eq!(Message::text("a").resolved(Mode::Binary).kind(), Kind::Text);
    }

    #[test]
    fn payload_is_not_copied_from_bytes() {
        let payload = Bytes::from(vec![7u8; 1024]);
        let message = Message::from(payload.clone());
        assert_eq!(message.payload().as_ptr(), payload.as_ptr());
        assert_eq!(message.len(), 1024);
        assert!(!message.is_empty());
    }
}
