//! One proxied connection: two pumps, one per direction, each reading from
//! one socket and writing what it read to the other, as its direction's
//! [`Faults`] say.
//!
//! A pump is one loop around one `select!`: a change of faults, a read, a
//! write, or the next timed step (the bucket's refill, the latency's due
//! time, the slicer's pause, the held close). Each turn it reads the faults
//! afresh, so a change applies at once, also mid-wait. A pump reads only
//! what its bucket allows and, without latency, only once the previous read
//! is written on, so bytes that may not pass yet stay in the kernel and the
//! sender's TCP feels the link's pace as a closing window, as behind a real
//! slow link. With latency, it holds up to [`HELD_MAX`] bytes in flight.

use std::{collections::VecDeque, io};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpStream,
        tcp::{ReadHalf, WriteHalf},
    },
    sync::watch,
    time::{Instant, sleep_until},
};

use super::{Faults, bucket::Bucket};

/// Most bytes one read takes.
pub(crate) const CHUNK: usize = 16 * 1024;

/// Most bytes a pump holds while they wait for their latency: bytes in
/// flight on the link, beyond which the sender's TCP waits, as for a window.
const HELD_MAX: usize = 256 * 1024;

/// How a pump (or both) ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The input ended and the end was passed on (half-close).
    Closed,
    /// [`Faults::cut_after`] bytes were passed: the connection is to be
    /// reset.
    Cut,
}

/// What a pump reads its faults from and reports its progress to.
pub(crate) struct Leg<'a> {
    pub(crate) faults: &'a watch::Sender<Faults>,
    /// Bytes written on, over all connections.
    pub(crate) forwarded: &'a watch::Sender<u64>,
}

/// Carries bytes both ways between `client` and `server` until both
/// directions have ended ([`End::Closed`]), one was cut ([`End::Cut`], the
/// other is stopped at once), or either fails. The caller owns the sockets,
/// so that it can close them as it must.
pub(crate) async fn join(
    client: &mut TcpStream,
    server: &mut TcpStream,
    to_server: Leg<'_>,
    to_client: Leg<'_>,
) -> io::Result<End> {
    let (client_read, client_write) = client.split();
    let (server_read, server_write) = server.split();
    let up = pump(client_read, server_write, to_server);
    let down = pump(server_read, client_write, to_client);
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        // A finished pump is not polled again (its branch is disabled).
        tokio::select! {
            end = &mut up, if !up_done => match end? {
                End::Closed => up_done = true,
                End::Cut => return Ok(End::Cut),
            },
            end = &mut down, if !down_done => match end? {
                End::Closed => down_done = true,
                End::Cut => return Ok(End::Cut),
            },
        }
    }
    Ok(End::Closed)
}

/// What a pump has read and not yet written on, in order.
enum Held {
    /// Bytes, of which `written` are passed on already, due at `due`.
    Data {
        bytes: Vec<u8>,
        written: usize,
        due: Instant,
    },
    /// The end of the input, due at `due`.
    End { due: Instant },
}

/// One direction: read what the faults allow, hold it as long as they say,
/// write it on; at the end of the input, end the output (half-close), as
/// TCP does.
async fn pump(mut from: ReadHalf<'_>, mut to: WriteHalf<'_>, leg: Leg<'_>) -> io::Result<End> {
    let mut faults = leg.faults.subscribe();
    let mut buf = vec![0u8; CHUNK];
    let mut bucket = Bucket::new(Instant::now(), CHUNK);
    let mut held = VecDeque::new();
    let mut held_bytes = 0usize;
    // Bytes of this connection read and written in this direction (for the
    // cut).
    let mut read_total = 0u64;
    let mut written_total = 0u64;
    let mut input_ended = false;
    // The slicer's pause: no slice before this.
    let mut next_slice = Instant::now();
    // When the held close is passed on, once it is due.
    let mut close_at = None;
    let wake = sleep_until(Instant::now());
    tokio::pin!(wake);
    loop {
        let now_faults = *faults.borrow_and_update();
        if now_faults
            .cut_after
            .is_some_and(|limit| written_total >= limit)
        {
            return Ok(End::Cut);
        }
        let now = Instant::now();
        // The earliest timed step, if one is waited for.
        let mut wake_at: Option<Instant> = None;

        let mut room = 0;
        if !now_faults.black_hole && !input_ended {
            let space = if now_faults.latency.is_some() {
                HELD_MAX.saturating_sub(held_bytes).min(CHUNK)
            } else if held.is_empty() {
                CHUNK
            } else {
                0
            };
            let before_cut = now_faults
                .cut_after
                .map_or(u64::MAX, |limit| limit.saturating_sub(read_total));
            room = space.min(usize::try_from(before_cut).unwrap_or(usize::MAX));
            if room > 0
                && let Some(rate) = now_faults.rate
            {
                match bucket.available(now, rate.get()) {
                    0 => {
                        wake_at = earliest(wake_at, bucket.ready_at(now, rate.get()));
                        room = 0;
                    }
                    n => room = room.min(n),
                }
            }
        }

        // The part of the first held bytes to write now, if any.
        let mut to_write = None;
        if !now_faults.black_hole {
            match held.front() {
                Some(Held::Data {
                    bytes,
                    written,
                    due,
                }) => {
                    let at = match now_faults.slicer {
                        Some(_) => (*due).max(next_slice),
                        None => *due,
                    };
                    if at > now {
                        wake_at = earliest(wake_at, at);
                    } else {
                        let end = now_faults
                            .slicer
                            .map_or(bytes.len(), |s| bytes.len().min(written + s.size.get()));
                        to_write = Some(*written..end);
                    }
                }
                Some(Held::End { due }) if *due > now => wake_at = earliest(wake_at, *due),
                Some(Held::End { .. }) => {
                    let release = *close_at
                        .get_or_insert_with(|| now + now_faults.slow_close.unwrap_or_default());
                    if release > now {
                        wake_at = earliest(wake_at, release);
                    } else {
                        to.shutdown().await?;
                        return Ok(End::Closed);
                    }
                }
                None => {}
            }
        }
        if let Some(at) = wake_at {
            wake.as_mut().reset(at);
        }

        // Every branch is cancel-safe: a single `read` or `write` either
        // completed (and its handler runs) or moved no bytes.
        tokio::select! {
            // New faults: the next turn reads them. The sender is borrowed
            // by this pump, so it cannot be gone.
            changed = faults.changed() => {
                if changed.is_err() {
                    return Err(io::Error::other("the proxy's faults are gone"));
                }
            }
            read = from.read(&mut buf[..room]), if room > 0 => {
                let n = read?;
                let delay = now_faults
                    .latency
                    .map_or(Default::default(), |l| l.pick(fastrand::f64()));
                let due = Instant::now() + delay;
                if n == 0 {
                    input_ended = true;
                    held.push_back(Held::End { due });
                } else {
                    if let Some(rate) = now_faults.rate {
                        bucket.take(Instant::now(), rate.get(), n);
                    }
                    read_total += n as u64;
                    held_bytes += n;
                    held.push_back(Held::Data { bytes: buf[..n].to_vec(), written: 0, due });
                }
            }
            written = write_held(&mut to, &held, to_write.clone()), if to_write.is_some() => {
                let n = written?;
                written_total += n as u64;
                held_bytes -= n;
                if let Some(slicer) = now_faults.slicer {
                    next_slice = Instant::now() + slicer.delay;
                }
                if let Some(Held::Data { bytes, written, .. }) = held.front_mut() {
                    *written += n;
                    if *written == bytes.len() {
                        held.pop_front();
                    }
                }
                leg.forwarded
                    .send_modify(|total| *total = total.saturating_add(n as u64));
            }
            () = &mut wake, if wake_at.is_some() => {}
        }
    }
}

/// Writes `range` of the first held bytes (one `write`: cancel-safe);
/// `WriteZero` if the socket takes none.
async fn write_held(
    to: &mut WriteHalf<'_>,
    held: &VecDeque<Held>,
    range: Option<std::ops::Range<usize>>,
) -> io::Result<usize> {
    let bytes = match (held.front(), range) {
        (Some(Held::Data { bytes, .. }), Some(range)) => &bytes[range],
        _ => &[][..],
    };
    match to.write(bytes).await? {
        0 if !bytes.is_empty() => Err(io::ErrorKind::WriteZero.into()),
        n => Ok(n),
    }
}

fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}
