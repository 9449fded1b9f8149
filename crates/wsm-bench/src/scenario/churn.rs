//! `churn`: N numbered messages to a server that closes every connection
//! after K messages; which of them come back?
//!
//! Each message starts with its sequence number (8 bytes, little endian).
//! One `select!` loop watches `status` (reconnects and their gaps), reads
//! `input` (marking each sequence number seen once; duplicates from
//! redelivery count once) and feeds `output` as fast as the machine takes
//! messages. The run ends when every number came back, when nothing new came
//! back for [`QUIET`] after everything was handed to `output`, or after
//! [`RUN_LIMIT`]. Messages the machine hands back from `shutdown` are not
//! counted as received: only what the caller read during the run is.

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::time::{Instant, sleep, sleep_until};
use ws_machine::{Machine, Message, State};

use crate::{
    cli::ChurnArgs,
    error::{Error, within},
    machine,
    report::{Client, Report},
};

/// The longest the run may take once connected (the contract's 60 s).
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// After everything was handed to `output`, the run ends when nothing new
/// has come back for this long.
const QUIET: Duration = Duration::from_secs(5);

/// The sequence number a message starts with, if it is long enough.
fn sequence_number(message: &Message) -> Option<u64> {
    let first: [u8; 8] = message.as_ref().get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(first))
}

/// Message number `seq`, `size` bytes long (`size >= 8`).
fn numbered(seq: u64, size: usize) -> Message {
    let mut payload = BytesMut::with_capacity(size);
    payload.put_u64_le(seq);
    payload.resize(size.max(8), 0);
    Message::binary(payload.freeze())
}

/// Reconnects seen on `status`, and the gaps between losing a connection and
/// having the next one.
#[derive(Debug, Default)]
struct Reconnects {
    /// `Connected` statuses after the first.
    count: usize,
    /// When the current outage began (the first `Disconnected` after a
    /// `Connected`).
    down_since: Option<Instant>,
    /// Sum of the finished outages.
    total: Duration,
}

impl Reconnects {
    /// Notes a status received at `now`.
    fn note(&mut self, state: State, now: Instant) {
        match state {
            State::Disconnected => {
                self.down_since.get_or_insert(now);
            }
            State::Connected => {
                self.count += 1;
                if let Some(since) = self.down_since.take() {
                    self.total += now - since;
                }
            }
            // The bench sets no ready gate: Connected is the reconnect.
            State::Connecting | State::Ready | State::Waiting => {}
        }
    }

    /// The mean outage, if there was a reconnect.
    fn mean(&self) -> Option<Duration> {
        let count = u32::try_from(self.count).ok().filter(|&c| c > 0)?;
        Some(self.total / count)
    }
}

/// Runs the scenario.
pub(crate) async fn run(args: &ChurnArgs) -> Result<Report, Error> {
    let n = args.messages;
    let mut builder = Machine::builder(&args.url);
    if let Some(min_uptime) = args.min_uptime() {
        builder = builder.min_uptime(min_uptime);
    }
    if !args.no_ack {
        // The server echoes each message: the echo acknowledges it.
        builder = builder.ack_key(sequence_number);
    }
    let mut machine = machine::start(builder).await?;
    let started = Instant::now();

    let mut seen = vec![false; n];
    let mut received = 0;
    let mut next = 0;
    let mut reconnects = Reconnects::default();
    let run = within("the churn run", RUN_LIMIT + QUIET, async {
        let deadline = sleep_until(started + RUN_LIMIT);
        // Armed only once everything was handed to `output`; reset by every
        // new echo. Timers are pinned and reset, never re-created.
        let quiet = sleep(QUIET);
        tokio::pin!(deadline, quiet);
        while received < n {
            tokio::select! {
                biased;
                // Cancel-safe: `recv` loses nothing when another arm wins.
                status = machine.status.recv() => {
                    let Some(status) = status else {
                        return Err(Error::MachineStopped(None));
                    };
                    if status.is_final() {
                        return Err(Error::MachineStopped(status.error));
                    }
                    // A refused outgoing message is reported with the state
                    // unchanged and an error: not a change of state.
                    let refusal = status.state == State::Connected && status.error.is_some();
                    if !refusal {
                        reconnects.note(status.state, Instant::now());
                    }
                }
                message = machine.input.recv() => {
                    let Some(message) = message else {
                        return Err(machine::why_stopped(&mut machine.status));
                    };
                    let slot = sequence_number(&message)
                        .and_then(|seq| usize::try_from(seq).ok())
                        .and_then(|seq| seen.get_mut(seq));
                    if let Some(slot) = slot.filter(|seen| !**seen) {
                        *slot = true;
                        received += 1;
                        quiet.as_mut().reset(Instant::now() + QUIET);
                    }
                }
                // `reserve` is `send` split in two: the cancel-safe way to
                // send from a `select!` (a dropped `send` would drop its
                // message). It waits exactly as `send` does.
                permit = machine.output.reserve(), if next < n => {
                    let Ok(permit) = permit else {
                        return Err(machine::why_stopped(&mut machine.status));
                    };
                    if permit.send(numbered(next as u64, args.size)).is_err() {
                        return Err(machine::why_stopped(&mut machine.status));
                    }
                    next += 1;
                    if next == n {
                        quiet.as_mut().reset(Instant::now() + QUIET);
                    }
                }
                () = &mut quiet, if next == n => break,
                () = &mut deadline => break,
            }
        }
        Ok(())
    })
    .await;
    let elapsed = started.elapsed();
    machine::stop(machine).await;
    run?;
    Ok(Report::Churn {
        client: Client::Machine,
        messages: n,
        received,
        // The first `Connected` was read by `machine::start`.
        reconnects: reconnects.count,
        mean_reconnect: reconnects.mean(),
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        let message = numbered(0x0102_0304_0506_0708, 64);
        assert_eq!(message.len(), 64);
        assert_eq!(message.as_ref()[0], 0x08);
        assert_eq!(sequence_number(&message), Some(0x0102_0304_0506_0708));
        assert_eq!(sequence_number(&Message::binary(vec![1u8; 7])), None);
    }

    #[test]
    fn outages_are_averaged_over_reconnects() {
        let t0 = Instant::now();
        let mut r = Reconnects::default();
        assert_eq!(r.mean(), None);
        r.note(State::Disconnected, t0);
        r.note(State::Waiting, t0 + Duration::from_millis(1));
        // A failed attempt does not restart the outage.
        r.note(State::Disconnected, t0 + Duration::from_millis(5));
        r.note(State::Connected, t0 + Duration::from_millis(10));
        r.note(State::Disconnected, t0 + Duration::from_millis(100));
        r.note(State::Connected, t0 + Duration::from_millis(130));
        assert_eq!(r.count, 2);
        assert_eq!(r.mean(), Some(Duration::from_millis(20)));
    }
}
