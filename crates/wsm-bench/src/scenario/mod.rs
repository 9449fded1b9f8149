//! The scenarios of the bench contract, one module each. Where `--raw`
//! applies (throughput, latency, idle), the module holds both variants side
//! by side, the machine's and the bare engine's, so that a reader can check
//! that they do the same work.

mod churn;
mod deadpeer;
mod idle;
mod latency;
mod throughput;

use std::time::Duration;

use crate::{cli::Command, error::Error, report::Report};

/// The longest a throughput or latency run may take once connected. The
/// benchmark's sizes take about a second; this only stops a stalled run.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Runs the scenario `command` names and returns what it measured.
///
/// # Errors
///
/// Whatever stopped the scenario; see [`Error`].
pub(crate) async fn run(command: Command) -> Result<Report, Error> {
    match command {
        Command::Throughput(args) => throughput::run(&args).await,
        Command::Latency(args) => latency::run(&args).await,
        Command::Idle(args) => idle::run(&args).await,
        Command::Churn(args) => churn::run(&args).await,
        Command::Deadpeer(args) => deadpeer::run(&args).await,
    }
}

/// A payload of `size` bytes, allocated once and shared by every message.
fn payload(size: usize) -> bytes::Bytes {
    bytes::Bytes::from(vec![0xa5; size])
}

/// Fails with [`Error::BadEcho`] unless `got` bytes came back for `expected`.
fn check_echo(expected: usize, got: usize) -> Result<(), Error> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::BadEcho { expected, got })
    }
}
