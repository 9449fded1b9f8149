//! Round-trip times, from pings and heartbeat replies.
//!
//! A ping carries the moment it was sent, so its pong says how long the
//! round trip took without the connection keeping any state per ping: the
//! payload is a tag and the nanoseconds since the machine's epoch (an
//! instant fixed when the machine starts). A pong whose payload is not one
//! of ours (a peer may send pongs of its own, unasked) measures nothing.
//!
//! The smoothed value follows RFC 6298's estimator for TCP: the first
//! sample sets it, then each sample moves it by an eighth of the difference,
//! so one slow answer does not swing it.

use std::time::Duration;

use tokio::time::Instant;

/// What a ping's payload starts with.
const TAG: [u8; 4] = *b"wsm1";

/// The length of a ping's payload: the tag and the nanoseconds since the
/// epoch.
pub(crate) const PAYLOAD: usize = TAG.len() + 8;

/// The payload of a ping sent at `now`.
pub(crate) fn ping_payload(epoch: Instant, now: Instant) -> [u8; PAYLOAD] {
    let nanos = u64::try_from(now.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX);
    let mut payload = [0; PAYLOAD];
    payload[..TAG.len()].copy_from_slice(&TAG);
    payload[TAG.len()..].copy_from_slice(&nanos.to_be_bytes());
    payload
}

/// An answer that measures a round trip, as the connection reads it (it
/// does not know the epoch: the machine does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A pong to one of the machine's pings, sent this many nanoseconds
    /// after the epoch.
    Pong { sent: u64 },
    /// A heartbeat reply, this long after the heartbeat.
    Reply(Duration),
}

impl Answer {
    /// The answer a pong with `payload` is: `None` for a pong that does not
    /// echo one of the machine's pings.
    pub(crate) fn pong(payload: &[u8]) -> Option<Self> {
        let nanos = payload.strip_prefix(&TAG)?;
        Some(Self::Pong {
            sent: u64::from_be_bytes(nanos.try_into().ok()?),
        })
    }

    /// The round trip measured, for an answer arriving at `now`: `None`
    /// for a pong that claims a ping sent in the future.
    pub(crate) fn round_trip(self, epoch: Instant, now: Instant) -> Option<Duration> {
        match self {
            Self::Pong { sent } => {
                let sent = epoch.checked_add(Duration::from_nanos(sent))?;
                now.checked_duration_since(sent)
            }
            Self::Reply(rtt) => Some(rtt),
        }
    }
}

#[cfg(test)]
fn pong_round_trip(payload: &[u8], epoch: Instant, now: Instant) -> Option<Duration> {
    Answer::pong(payload)?.round_trip(epoch, now)
}

/// The last round trip and the smoothed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RoundTrips {
    pub(crate) last: Option<Duration>,
    pub(crate) smoothed: Option<Duration>,
}

impl RoundTrips {
    /// A new sample.
    pub(crate) fn sample(&mut self, rtt: Duration) {
        self.last = Some(rtt);
        self.smoothed = Some(match self.smoothed {
            None => rtt,
            // 7/8 of the old value and 1/8 of the new one.
            Some(old) => (old.saturating_mul(7) + rtt) / 8,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_pong_echoing_a_ping_measures_the_round_trip() {
        let epoch = Instant::now();
        let sent = epoch + 1_500 * MS;
        let payload = ping_payload(epoch, sent);
        assert_eq!(
            pong_round_trip(&payload, epoch, sent + 42 * MS),
            Some(42 * MS)
        );
        assert_eq!(pong_round_trip(&payload, epoch, sent), Some(Duration::ZERO));
    }

    #[test]
    fn other_pongs_measure_nothing() {
        let epoch = Instant::now();
        let now = epoch + 10 * MS;
        assert_eq!(pong_round_trip(b"", epoch, now), None, "empty");
        assert_eq!(
            pong_round_trip(b"hello world!", epoch, now),
            None,
            "not ours"
        );
        let ours = ping_payload(epoch, now);
        assert_eq!(pong_round_trip(&ours[..8], epoch, now), None, "cut short");
        let mut longer = ours.to_vec();
        longer.push(0);
        assert_eq!(pong_round_trip(&longer, epoch, now), None, "too long");
        let future = ping_payload(epoch, now + MS);
        assert_eq!(
            pong_round_trip(&future, epoch, now),
            None,
            "from the future"
        );
        let mut huge = ours;
        huge[TAG.len()..].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(pong_round_trip(&huge, epoch, now), None, "absurd");
    }

    #[test]
    fn the_smoothed_value_moves_an_eighth_of_the_way() {
        let mut rtt = RoundTrips::default();
        assert_eq!(rtt.last, None);
        rtt.sample(80 * MS);
        assert_eq!((rtt.last, rtt.smoothed), (Some(80 * MS), Some(80 * MS)));
        rtt.sample(160 * MS);
        assert_eq!((rtt.last, rtt.smoothed), (Some(160 * MS), Some(90 * MS)));
        rtt.sample(10 * MS);
        assert_eq!(rtt.smoothed, Some(80 * MS));
    }
}
