//! Message payloads as tests see them: what the server pushes and what it got.
//!
//! These are the crate's own types rather than tokio-websockets' `Message`, so
//! that tests can build and compare them (`PartialEq`, plain `String` and
//! `Bytes`) without depending on the WebSocket implementation.

use bytes::Bytes;

/// A text or binary message.
///
/// Sent to clients by [`Server::send_all`](crate::Server::send_all) and
/// recorded in [`Received`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Bytes),
}

impl Data {
    /// The payload bytes, whatever the kind.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(bytes) => bytes,
        }
    }

    /// The text, if this is a text message.
    #[must_use]
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            Self::Binary(_) => None,
        }
    }

    /// Converts into the tokio-websockets message to send.
    pub(crate) fn into_message(self) -> tokio_websockets::Message {
        match self {
            Self::Text(text) => tokio_websockets::Message::text(text),
            Self::Binary(bytes) => tokio_websockets::Message::binary(bytes),
        }
    }

    /// Copies a received text or binary message; `None` for control frames.
    pub(crate) fn from_message(message: &tokio_websockets::Message) -> Option<Self> {
        if let Some(text) = message.as_text() {
            Some(Self::Text(text.to_owned()))
        } else if message.is_binary() {
            // Payload -> Bytes is a reference-count bump, not a copy.
            Some(Self::Binary(Bytes::from(message.as_payload().clone())))
        } else {
            None
        }
    }
}

impl From<&str> for Data {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for Data {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<Bytes> for Data {
    fn from(bytes: Bytes) -> Self {
        Self::Binary(bytes)
    }
}

impl From<Vec<u8>> for Data {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Binary(bytes.into())
    }
}

impl From<&[u8]> for Data {
    fn from(bytes: &[u8]) -> Self {
        Self::Binary(Bytes::copy_from_slice(bytes))
    }
}

/// A text or binary message the server received (and echoed, unless it was
/// `/CLOSE` or arrived while closing).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Received {
    /// The connection it came on: connections are numbered 1, 2, ... in the
    /// order the server accepted their upgrade.
    pub connection: u64,
    /// The message.
    pub data: Data,
}
