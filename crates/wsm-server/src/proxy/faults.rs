//! What the link does to one direction's bytes: plain values, set from the
//! test with [`Proxy::set_faults`](super::Proxy::set_faults) and read by
//! that direction's pump before each step.

use std::{
    num::{NonZeroU64, NonZeroUsize},
    time::Duration,
};

/// The faults of one direction of the proxied link, applied at once to every
/// connection, open or to come. The default is a perfect link.
///
/// Faults combine: bytes are read at [`rate`](Self::rate), held for the
/// [`latency`](Self::latency), then written in [`slicer`](Self::slicer)
/// slices; a [`black_hole`](Self::black_hole) stops all of it.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use wsm_server::proxy::Faults;
///
/// let ms = Duration::from_millis;
/// let faults = Faults::default()
///     .latency(ms(100), ms(20)) // 80 to 120 ms, order kept
///     .cut_after(Some(64 * 1024)); // then every connection is reset
/// assert_eq!(faults.latency.map(|l| l.delay), Some(ms(100)));
/// assert!(!faults.black_hole);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Faults {
    /// Bytes per second; `None` (the default): as fast as the sockets go.
    /// What may not pass yet stays in the kernel, so the sender's TCP sees
    /// the link's pace.
    pub rate: Option<NonZeroU64>,
    /// How long bytes take to cross; `None` (the default): no delay.
    pub latency: Option<Latency>,
    /// Nothing passes, and the TCP connections stay open: a half-open link.
    /// The bytes sent meanwhile wait (in the proxy or the kernel) and pass
    /// once it is lifted, as TCP's retransmissions would deliver them when
    /// a real partition heals. The sender's TCP sees a closed window rather
    /// than lost segments, so it never gives up on its own: only a
    /// keep-alive above TCP finds the link dead. Default `false`.
    pub black_hole: bool,
    /// Each connection is cut (reset, both legs, as by
    /// [`Proxy::reset`](super::Proxy::reset)) once it has carried this many
    /// bytes in this direction: exactly that many are written on, then the
    /// reset follows (a receiver that let its buffer fill may miss the last
    /// of them, as behind a real cut). Counted per connection from its
    /// start, so every new connection is cut again while this is set.
    /// `Some(0)` accepts each connection and resets it at once. Default
    /// `None`.
    pub cut_after: Option<u64>,
    /// Bytes are written in small slices with a pause between them;
    /// `None` (the default): as they were read.
    pub slicer: Option<Slicer>,
    /// When this direction's sender closes (its FIN), the close is passed
    /// on only this long after everything before it; `None` (the default):
    /// at once. A reset is never held.
    pub slow_close: Option<Duration>,
}

/// How long bytes take to cross the link: [`delay`](Self::delay), give or
/// take up to [`jitter`](Self::jitter) (uniformly), never reordered: a
/// piece of data never passes before one read earlier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latency {
    /// The mean delay.
    pub delay: Duration,
    /// The most the delay of one read's bytes differs from `delay` (never
    /// below zero).
    pub jitter: Duration,
}

/// Bytes written in slices of at most [`size`](Self::size) bytes, each
/// slice [`delay`](Self::delay) after the previous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slicer {
    /// The most bytes one write carries.
    pub size: NonZeroUsize,
    /// The pause after each slice.
    pub delay: Duration,
}

impl Faults {
    /// Sets [`rate`](Self::rate): `bytes_per_second` (`None` or 0: no
    /// limit).
    #[must_use]
    pub fn rate(mut self, bytes_per_second: Option<u64>) -> Self {
        self.rate = bytes_per_second.and_then(NonZeroU64::new);
        self
    }

    /// Sets [`latency`](Self::latency): `delay`, give or take `jitter`
    /// (both zero: no latency).
    #[must_use]
    pub fn latency(mut self, delay: Duration, jitter: Duration) -> Self {
        self.latency = (!delay.is_zero() || !jitter.is_zero()).then_some(Latency { delay, jitter });
        self
    }

    /// Sets [`black_hole`](Self::black_hole).
    #[must_use]
    pub fn black_hole(mut self, on: bool) -> Self {
        self.black_hole = on;
        self
    }

    /// Sets [`cut_after`](Self::cut_after).
    #[must_use]
    pub fn cut_after(mut self, bytes: Option<u64>) -> Self {
        self.cut_after = bytes;
        self
    }

    /// Sets [`slicer`](Self::slicer): slices of `size` bytes, `delay`
    /// apart (`size` 0: no slicing).
    #[must_use]
    pub fn slicer(mut self, size: usize, delay: Duration) -> Self {
        self.slicer = NonZeroUsize::new(size).map(|size| Slicer { size, delay });
        self
    }

    /// Sets [`slow_close`](Self::slow_close).
    #[must_use]
    pub fn slow_close(mut self, delay: Option<Duration>) -> Self {
        self.slow_close = delay;
        self
    }
}

impl Latency {
    /// The delay for one read's bytes, `unit` being uniform in `[0, 1]`:
    /// `delay - jitter` at 0, `delay + jitter` at 1, never below zero.
    pub(crate) fn pick(&self, unit: f64) -> Duration {
        let spread = self.jitter.mul_f64(2.0 * unit.clamp(0.0, 1.0));
        (self.delay + spread).saturating_sub(self.jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_latency_stays_within_the_jitter_and_above_zero() {
        let latency = Latency {
            delay: 100 * MS,
            jitter: 20 * MS,
        };
        assert_eq!(latency.pick(0.0), 80 * MS);
        assert_eq!(latency.pick(0.5), 100 * MS);
        assert_eq!(latency.pick(1.0), 120 * MS);
        let wide = Latency {
            delay: 10 * MS,
            jitter: 30 * MS,
        };
        assert_eq!(wide.pick(0.0), Duration::ZERO);
        assert_eq!(wide.pick(1.0), 40 * MS);
    }

    #[test]
    fn zero_settings_mean_no_fault() {
        let faults = Faults::default()
            .rate(Some(0))
            .latency(Duration::ZERO, Duration::ZERO)
            .slicer(0, MS);
        assert_eq!(faults, Faults::default());
    }
}
