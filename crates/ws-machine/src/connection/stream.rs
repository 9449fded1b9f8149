//! The byte stream under the WebSocket, as the rest of the connection layer
//! sees it: one boxed type whatever opened it (TCP, TLS over any stream, the
//! caller's dialer), which also says when a write last made progress.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Instant,
};
use tokio_rustls::client::TlsStream;

use crate::settings::ByteStream;

/// An open byte stream that notes write progress (see [`Tracked`]).
pub(crate) trait Io: ByteStream {
    /// When the socket last accepted a byte.
    fn last_write(&self) -> Option<Instant>;
}

/// A stream that notes when a write last made progress: if that is long
/// ago while data waits, the write is stuck. It sits right above the
/// socket, under TLS, so TLS records still draining count as progress.
#[derive(Debug)]
pub(crate) struct Tracked<S> {
    inner: S,
    last_write: Option<Instant>,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            last_write: None,
        }
    }

    fn note(&mut self, result: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(1..)) = result {
            self.last_write = Some(Instant::now());
        }
    }
}

impl<S: ByteStream> Io for Tracked<S> {
    fn last_write(&self) -> Option<Instant> {
        self.last_write
    }
}

impl<S: ByteStream> Io for TlsStream<Tracked<S>> {
    fn last_write(&self) -> Option<Instant> {
        self.get_ref().0.last_write
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.note(&result);
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.note(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn only_accepted_bytes_count_as_progress() {
        let (client, mut server) = tokio::io::duplex(4);
        let mut tracked = Tracked::new(client);
        assert_eq!(tracked.last_write(), None);
        tracked.write_all(b"abcd").await.expect("room for 4 bytes");
        let first = tracked.last_write().expect("progress noted");
        tokio::time::advance(std::time::Duration::from_secs(5)).await;
        // The pipe is full: a write waits and notes nothing.
        let waiting =
            tokio::time::timeout(std::time::Duration::from_secs(1), tracked.write_all(b"e")).await;
        assert!(waiting.is_err(), "the full pipe took a byte");
        assert_eq!(tracked.last_write(), Some(first));
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).await.expect("the bytes arrive");
        tracked.write_all(b"e").await.expect("room again");
        assert!(tracked.last_write() > Some(first));
    }
}
