//! The machine's decisions, free of I/O: which state comes next and what
//! each command means ([`lifecycle`], [`command`]), how long to wait
//! ([`backoff`]), when a peer is dead or a write is stuck ([`keepalive`],
//! [`heartbeat`], [`write_watch`]), whether the caller's messages may go
//! out yet ([`ready`]) and how fast ([`pace`]), where the next attempt
//! connects ([`urls`]), which messages are still owed ([`delivery`]), and
//! how long round trips take ([`rtt`]).
//! Nothing here touches a socket, a channel or the clock (times are passed
//! in), so each is unit-tested on its own.

pub(crate) mod backoff;
pub(crate) mod command;
pub(crate) mod delivery;
pub(crate) mod heartbeat;
pub(crate) mod keepalive;
pub(crate) mod lifecycle;
pub(crate) mod pace;
pub(crate) mod ready;
pub(crate) mod rtt;
pub(crate) mod urls;
pub(crate) mod write_watch;

use std::time::Duration;

use tokio::time::Instant;

/// `at + wait`, or about 30 years after `at` when that would overflow: a
/// huge interval or timeout (such as `Duration::MAX`) means "never".
pub(crate) fn after(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait)
        .unwrap_or_else(|| at + Duration::from_secs(30 * 365 * 24 * 3600))
}
