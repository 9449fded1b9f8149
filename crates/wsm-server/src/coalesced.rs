//! A write buffer under the engine, so that echoes go out in few large
//! writes.
//!
//! tokio-websockets hands its queued frames to the socket as vectored writes
//! of at most 64 slices (32 frames: a header and a payload each). For small
//! messages that is one `writev` per 2 KiB or so, and on loopback each write
//! also runs the receiving side's TCP work: the server spent 80 % of its time
//! in `writev` and, not the client, set the pace of the throughput
//! benchmark. Gathering the slices here into one buffer makes it a write per
//! 64 KiB. The buffer is allocated on the first write, so connections that
//! never write (the idle benchmark's) cost nothing for it.

use std::{
    io::{self, IoSlice},
    pin::Pin,
    task::{Context, Poll, ready},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes gathered before they are written.
const CAPACITY: usize = 64 * 1024;

/// `inner`, with writes gathered into one buffer until it is full or
/// flushed.
#[derive(Debug)]
pub(crate) struct Coalesced<S> {
    inner: S,
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    written: usize,
}

impl<S> Coalesced<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            written: 0,
        }
    }
}

impl<S: AsyncWrite + Unpin> Coalesced<S> {
    /// Writes out everything gathered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.buf.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesced<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesced<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if this.buf.len() + total > CAPACITY {
            ready!(this.poll_drain(cx))?;
        }
        if total >= CAPACITY {
            // Too large to be worth a copy.
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        if this.buf.capacity() == 0 {
            this.buf.reserve_exact(CAPACITY);
        }
        for slice in bufs {
            this.buf.extend_from_slice(slice);
        }
        Poll::Ready(Ok(total))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn writes_wait_for_a_flush_and_arrive_whole_and_in_order() {
        let (near, mut far) = tokio::io::duplex(4 * CAPACITY);
        let mut stream = Coalesced::new(near);
        let slices = [IoSlice::new(b"ab"), IoSlice::new(b"cd")];
        assert_eq!(stream.write_vectored(&slices).await.expect("buffered"), 4);
        stream.write_all(b"ef").await.expect("buffered");
        // Nothing reached the socket before the flush.
        let mut probe = [0u8; 1];
        assert!(
            far.read(&mut probe).now_or_never().is_none(),
            "data went out before the flush"
        );
        stream.flush().await.expect("flushed");
        let mut got = [0u8; 6];
        far.read_exact(&mut got).await.expect("six bytes");
        assert_eq!(&got, b"abcdef");

        // Past the buffer's size: what was gathered goes first, then the
        // large write, in order.
        let big = vec![7u8; CAPACITY + 10];
        stream.write_all(b"xy").await.expect("buffered");
        stream.write_all(&big).await.expect("written");
        stream.flush().await.expect("flushed");
        let mut got = vec![0u8; 2 + big.len()];
        far.read_exact(&mut got).await.expect("all bytes");
        assert_eq!(&got[..2], b"xy");
        assert!(got[2..].iter().all(|&b| b == 7));
    }
}
