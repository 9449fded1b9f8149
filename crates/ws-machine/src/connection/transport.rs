//! What the engine runs on: the opened stream, plus a recorder of the
//! upgrade's answer.
//!
//! The engine reports a rejected upgrade's status code but not its headers,
//! and the machine needs `Retry-After`. So while the handshake is under way
//! the transport records the bytes read (the first 16 KiB of a rejection;
//! nothing of a `101` answer), and it cuts the answer off at 64 KiB, so a
//! server sending endless headers cannot fill memory while the handshake
//! timeout runs.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::oneshot,
    time::Instant,
};

use super::stream::Io;

/// Most bytes of a rejected handshake's answer kept to read its headers.
const MAX_RECORDED: usize = 16 * 1024;

/// How a successful answer to the upgrade request starts.
const SWITCHING_PROTOCOLS: &[u8] = b"HTTP/1.1 101 ";

/// Most bytes read while waiting for the answer to the upgrade request.
const MAX_HANDSHAKE_ANSWER: usize = 64 * 1024;

/// The byte stream under the engine.
pub(crate) struct Transport {
    io: Box<dyn Io>,
    /// While the handshake is under way, the recorder of the bytes read;
    /// after it, the subprotocol the server chose, until the driver takes
    /// it. Boxed: most of a connection's life it is `None`.
    handshake: Option<Box<Handshake>>,
}

enum Handshake {
    Recording(Recorder),
    Chosen(Arc<str>),
}

/// The answer to the upgrade request as read so far. The engine drops the
/// transport when the handshake fails, so the recording is handed out then.
struct Recorder {
    bytes: Vec<u8>,
    /// False once the answer is known to be `101 Switching Protocols`.
    keep: bool,
    /// All bytes read so far, recorded or not.
    total: usize,
    /// Whether the head of a `101` answer is handed out too, as soon as it
    /// is complete (for an engine that does not return the answer).
    success_head: bool,
    /// Where the recording goes: when the transport is dropped during the
    /// handshake, or (with `success_head`) once a `101` head is complete.
    on_drop: Option<oneshot::Sender<Vec<u8>>>,
}

impl Transport {
    /// A transport that records the upgrade's answer; the receiver gets the
    /// recording if the transport is dropped before [`Transport::upgraded`].
    pub(crate) fn recording(io: Box<dyn Io>) -> (Self, oneshot::Receiver<Vec<u8>>) {
        Self::recorder(io, false)
    }

    /// A transport that records the upgrade's answer, as
    /// [`Transport::recording`], and also hands out the head of a `101`
    /// answer as soon as it is complete (then stops recording): for an
    /// engine that keeps the answer to itself.
    #[cfg(feature = "deflate")]
    pub(crate) fn recording_head(io: Box<dyn Io>) -> (Self, oneshot::Receiver<Vec<u8>>) {
        Self::recorder(io, true)
    }

    fn recorder(io: Box<dyn Io>, success_head: bool) -> (Self, oneshot::Receiver<Vec<u8>>) {
        let (on_drop, recording) = oneshot::channel();
        let recorder = Recorder {
            bytes: Vec::new(),
            keep: true,
            total: 0,
            success_head,
            on_drop: Some(on_drop),
        };
        (
            Self {
                io,
                handshake: Some(Box::new(Handshake::Recording(recorder))),
            },
            recording,
        )
    }

    /// The upgrade succeeded, with this subprotocol: stop recording.
    pub(crate) fn upgraded(&mut self, protocol: Option<Arc<str>>) {
        self.handshake = protocol.map(|p| Box::new(Handshake::Chosen(p)));
    }

    /// The subprotocol the server chose, once.
    pub(crate) fn take_protocol(&mut self) -> Option<Arc<str>> {
        match self.handshake.take().map(|h| *h) {
            Some(Handshake::Chosen(protocol)) => Some(protocol),
            Some(recording @ Handshake::Recording(_)) => {
                self.handshake = Some(Box::new(recording));
                None
            }
            None => None,
        }
    }

    /// When the socket last accepted a byte.
    pub(crate) fn last_write(&self) -> Option<Instant> {
        self.io.last_write()
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        if let Some(Handshake::Recording(recorder)) = self.handshake.take().map(|h| *h)
            && let Some(on_drop) = recorder.on_drop
        {
            // Nobody waits for it once the handshake succeeded or was abandoned.
            let _ = on_drop.send(recorder.bytes);
        }
    }
}

impl Recorder {
    /// Notes `fresh`, the bytes just read; an error once the answer is too
    /// long. `Ok(true)` once a `101` head was handed out: recording is over.
    fn note(&mut self, fresh: &[u8]) -> io::Result<bool> {
        if self.total == 0 && fresh.starts_with(SWITCHING_PROTOCOLS) && !self.success_head {
            // The upgrade succeeds: its headers will not be needed, so
            // nothing is copied (only counted, for the size limit).
            self.keep = false;
        }
        if self.keep {
            let room = MAX_RECORDED.saturating_sub(self.bytes.len());
            self.bytes
                .extend_from_slice(&fresh[..fresh.len().min(room)]);
        }
        self.total += fresh.len();
        if self.total > MAX_HANDSHAKE_ANSWER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the answer to the upgrade request exceeds {MAX_HANDSHAKE_ANSWER} bytes"),
            ));
        }
        if self.success_head
            && self.bytes.starts_with(SWITCHING_PROTOCOLS)
            && let Some(end) = self.bytes.windows(4).position(|w| w == b"\r\n\r\n")
            && let Some(on_drop) = self.on_drop.take()
        {
            self.bytes.truncate(end + 4);
            let _ = on_drop.send(std::mem::take(&mut self.bytes));
            return Ok(true);
        }
        Ok(false)
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(this.io.as_mut()).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(Handshake::Recording(recorder))) =
            (&result, this.handshake.as_deref_mut())
        {
            match recorder.note(&buf.filled()[before..]) {
                Err(e) => return Poll::Ready(Err(e)),
                Ok(true) => this.handshake = None,
                Ok(false) => {}
            }
        }
        result
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.get_mut().io.as_mut()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.get_mut().io.as_mut()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().io.as_mut()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().io.as_mut()).poll_shutdown(cx)
    }
}
