//! One proxied connection: two pumps, one per direction, each reading from
//! one socket and writing what it read to the other, at its direction's
//! rate.
//!
//! A pump reads only what its bucket allows, so bytes it may not pass yet
//! stay in the kernel, and the sender's TCP feels the link's pace as a
//! closing window, as it would behind a real slow link. Later faults
//! (latency, a black hole, a reset, a cut after N bytes) belong here, as
//! more of the [`Shaping`] a pump reads before each read.

use std::{io, num::NonZeroU64};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::watch,
    time::{Instant, sleep_until},
};

use super::bucket::Bucket;

/// Most bytes one read takes.
pub(crate) const CHUNK: usize = 16 * 1024;

/// How one direction treats the bytes it carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Shaping {
    /// Bytes per second; `None`: as fast as the sockets go.
    pub(crate) rate: Option<NonZeroU64>,
}

/// What a pump reads its shaping from and reports its progress to.
pub(crate) struct Leg<'a> {
    pub(crate) shaping: &'a watch::Sender<Shaping>,
    /// Bytes written on, over all connections.
    pub(crate) forwarded: &'a watch::Sender<u64>,
}

/// Carries bytes both ways between `client` and `server` until both
/// directions have ended, or either fails (then both sockets are dropped).
pub(crate) async fn join(
    client: TcpStream,
    server: TcpStream,
    to_server: Leg<'_>,
    to_client: Leg<'_>,
) -> io::Result<()> {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::try_join!(
        pump(client_read, server_write, to_server),
        pump(server_read, client_write, to_client),
    )?;
    Ok(())
}

/// One direction: read what the bucket allows, write it on; at the end of
/// the input, end the output (half-close), as TCP does.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, leg: Leg<'_>) -> io::Result<()> {
    let mut shaping = leg.shaping.subscribe();
    let mut buf = vec![0u8; CHUNK];
    let mut bucket = Bucket::new(Instant::now(), CHUNK);
    loop {
        let rate = shaping.borrow_and_update().rate.map(NonZeroU64::get);
        let allowed = match rate {
            None => CHUNK,
            Some(rate) => match bucket.available(Instant::now(), rate) {
                0 => {
                    let ready = bucket.ready_at(Instant::now(), rate);
                    // A new rate applies at once, not after the old wait.
                    tokio::select! {
                        () = sleep_until(ready) => {}
                        _ = shaping.changed() => {}
                    }
                    continue;
                }
                n => n.min(CHUNK),
            },
        };
        let n = from.read(&mut buf[..allowed]).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        if let Some(rate) = rate {
            bucket.take(Instant::now(), rate, n);
        }
        to.write_all(&buf[..n]).await?;
        leg.forwarded
            .send_modify(|total| *total = total.saturating_add(n as u64));
    }
}
