//! The machine side of every scenario starts and stops the same way: spawn
//! from a builder, wait for `Connected` on `status`, and at the end quit
//! with `shutdown()`, bounded. Only the public API is used, as a user would.

use std::{iter, time::Duration};

use ws_machine::{Builder, Machine, State, Status, channel::Receiver};

use crate::error::{Error, within};

/// How long a machine may take to report its first `Connected`.
pub(crate) const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// How long a machine may take to stop (its close timeout is 1 s).
const STOP_LIMIT: Duration = Duration::from_secs(5);

/// A machine for `url` at its defaults, offering permessage-deflate when
/// `compression`.
pub(crate) fn builder(url: &str, compression: bool) -> Builder {
    let builder = Machine::builder(url);
    if compression {
        builder.compression(ws_machine::Deflate::new())
    } else {
        builder
    }
}

/// Spawns the machine `builder` describes and waits, for at most
/// [`CONNECT_LIMIT`], until it is connected.
///
/// # Errors
///
/// [`Error::Machine`] for a configuration the machine refuses,
/// [`Error::MachineStopped`] if it stops before connecting,
/// [`Error::Timeout`] if it does not connect in time.
pub(crate) async fn start(builder: Builder) -> Result<Machine, Error> {
    let mut machine = builder.spawn().map_err(Error::Machine)?;
    within(
        "connecting the machine",
        CONNECT_LIMIT,
        connected(&mut machine),
    )
    .await?;
    Ok(machine)
}

/// Reads the machine's `status` until `Connected`, skipping the statuses before it
/// (`Connecting`, and `Disconnected`/`Waiting` of failed attempts that the
/// machine retries by itself).
///
/// # Errors
///
/// [`Error::MachineStopped`] with the machine's reason if it stops first.
pub(crate) async fn connected(machine: &mut Machine) -> Result<(), Error> {
    while let Some(status) = machine.status.recv().await {
        if status.state == State::Connected {
            return Ok(());
        }
        if status.is_final() {
            return Err(Error::MachineStopped(status.error));
        }
    }
    Err(Error::MachineStopped(None))
}

/// Why a machine whose `input` or `output` closed stopped: the error of its
/// final status, found among the statuses left in its `status` channel.
/// (It takes the channel, not the machine, so that a `select!` arm can call
/// it while another field of the machine is borrowed.)
pub(crate) fn why_stopped(status: &mut Receiver<Status>) -> Error {
    let left = iter::from_fn(|| status.try_recv().ok());
    Error::MachineStopped(left.filter_map(|status| status.error).last())
}

/// Quits the machine and waits (bounded) until it has stopped. What it hands
/// back is not counted by any scenario: a benchmark counts only what the
/// caller read while the scenario ran.
pub(crate) async fn stop(machine: Machine) {
    // A machine that does not stop in time is dropped with the runtime.
    let _ = tokio::time::timeout(STOP_LIMIT, machine.shutdown()).await;
}
