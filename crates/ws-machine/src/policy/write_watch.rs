//! Whether a write is stuck, as pure deadline arithmetic.
//!
//! A write is stuck when data waits to be written and the socket has
//! accepted no byte for the write timeout: the peer stopped reading. Progress
//! is noted below TLS on every write the socket accepts (see the connection
//! layer), so a slow write that moves is never cut. Watching every write would
//! reset the connection's timer for every batch; instead a write is watched
//! only once a flush has had to wait for the socket, which is rare.

use std::time::Duration;

use tokio::time::Instant;

use super::after;

/// The write side of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writes {
    /// Everything handed to the engine has been flushed.
    Flushed,
    /// Frames wait for a flush since `since`; no flush has had to wait for
    /// the socket yet, so the timer does not watch them.
    Pending { since: Instant },
    /// A flush had to wait for the socket; the timer watches the write,
    /// pending since `since`.
    Watched { since: Instant },
}

/// The write watch of one connection (the timeout comes with each
/// question: the settings hold it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteWatch {
    writes: Writes,
}

impl WriteWatch {
    pub(crate) fn new() -> Self {
        Self {
            writes: Writes::Flushed,
        }
    }

    /// Whether frames wait for a flush.
    pub(crate) fn needs_flush(&self) -> bool {
        match self.writes {
            Writes::Flushed => false,
            Writes::Pending { .. } | Writes::Watched { .. } => true,
        }
    }

    /// Frames were handed to the engine at `now`.
    pub(crate) fn queued(&mut self, now: Instant) {
        match self.writes {
            Writes::Flushed => self.writes = Writes::Pending { since: now },
            Writes::Pending { .. } | Writes::Watched { .. } => {}
        }
    }

    /// The flush completed: nothing waits any more.
    pub(crate) fn flushed(&mut self) {
        self.writes = Writes::Flushed;
    }

    /// The flush has to wait for the socket. True when the watch starts now,
    /// so the timer must be brought forward to [`WriteWatch::deadline`].
    pub(crate) fn stalled(&mut self) -> bool {
        match self.writes {
            Writes::Pending { since } => {
                self.writes = Writes::Watched { since };
                true
            }
            Writes::Flushed | Writes::Watched { .. } => false,
        }
    }

    /// When the watched write counts as stuck: the write timeout after the
    /// socket last accepted a byte of it (`last_progress`), or after it
    /// became pending if it accepted none. `None` while no write is watched.
    pub(crate) fn deadline(
        &self,
        last_progress: Option<Instant>,
        timeout: Duration,
    ) -> Option<Instant> {
        match self.writes {
            Writes::Watched { since } => {
                let progress = last_progress.map_or(since, |at| at.max(since));
                Some(after(progress, timeout))
            }
            Writes::Flushed | Writes::Pending { .. } => None,
        }
    }

    /// Whether, at `now`, the watched write is stuck.
    pub(crate) fn is_stuck(
        &self,
        now: Instant,
        last_progress: Option<Instant>,
        timeout: Duration,
    ) -> bool {
        self.deadline(last_progress, timeout)
            .is_some_and(|at| now >= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn only_a_write_that_had_to_wait_is_watched() {
        let t0 = Instant::now();
        let timeout = 10 * SECOND;
        let mut watch = WriteWatch::new();
        assert!(!watch.needs_flush());
        watch.queued(t0);
        assert!(watch.needs_flush());
        assert_eq!(
            watch.deadline(None, timeout),
            None,
            "not watched before it waits"
        );
        assert!(watch.stalled(), "the watch starts");
        assert!(!watch.stalled(), "and starts only once");
        assert_eq!(watch.deadline(None, timeout), Some(t0 + 10 * SECOND));
        watch.flushed();
        assert_eq!(watch.deadline(None, timeout), None);
        assert!(!watch.stalled(), "nothing to watch once flushed");
    }

    #[test]
    fn progress_postpones_the_deadline_and_only_silence_is_stuck() {
        let t0 = Instant::now();
        let timeout = 10 * SECOND;
        let mut watch = WriteWatch::new();
        watch.queued(t0);
        // More frames queued later do not move the start of the wait.
        watch.queued(t0 + SECOND);
        watch.stalled();
        assert!(!watch.is_stuck(t0 + 9 * SECOND, None, timeout));
        assert!(watch.is_stuck(t0 + 10 * SECOND, None, timeout));
        let progress = Some(t0 + 6 * SECOND);
        assert!(!watch.is_stuck(t0 + 15 * SECOND, progress, timeout));
        assert!(watch.is_stuck(t0 + 16 * SECOND, progress, timeout));
        // Progress from before this write began does not count.
        watch.flushed();
        watch.queued(t0 + 20 * SECOND);
        watch.stalled();
        assert_eq!(watch.deadline(progress, timeout), Some(t0 + 30 * SECOND));
    }

    #[test]
    fn a_write_that_keeps_moving_is_never_stuck_however_long_it_waits() {
        // A slow link: the socket takes some bytes every 1.9 s, for an hour,
        // under a 2 s timeout.
        let t0 = Instant::now();
        let timeout = 2 * SECOND;
        let mut watch = WriteWatch::new();
        watch.queued(t0);
        watch.stalled();
        let step = Duration::from_millis(1_900);
        let mut now = t0;
        let mut progress = None;
        while now < t0 + 3_600 * SECOND {
            now += step;
            assert!(
                !watch.is_stuck(now, progress, timeout),
                "cut at {:?}",
                now - t0
            );
            progress = Some(now);
        }
        // Once it stops, it is stuck one timeout after the last progress.
        let last = now;
        assert!(!watch.is_stuck(last + step, progress, timeout));
        assert!(watch.is_stuck(last + 2 * SECOND, progress, timeout));
        assert_eq!(watch.deadline(progress, timeout), Some(last + 2 * SECOND));
    }

    #[test]
    fn a_huge_timeout_means_never() {
        let t0 = Instant::now();
        let timeout = Duration::MAX;
        let mut watch = WriteWatch::new();
        watch.queued(t0);
        watch.stalled();
        assert!(!watch.is_stuck(t0 + 3600 * SECOND, None, timeout));
    }
}
