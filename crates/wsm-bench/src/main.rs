//! `wsm-bench`: the benchmark client of ws-machine, implementing the bench
//! contract (`throughput`, `latency`, `idle`, `churn`, `deadpeer`; one JSON
//! line per run) so that it runs side by side with the other clients against
//! one neutral echo server.
//!
//! Every scenario runs on a current-thread tokio runtime, for the machine and
//! for the bare engine alike: the bench script pins the client to one core,
//! and one thread makes the comparison fair.
//!
//! # Layout
//!
//! - `cli`: the contract's flags (clap), plus `--raw` where it applies.
//! - `scenario`: one module per scenario; machine and bare-engine variants
//!   side by side.
//! - `machine`: starting, waiting for `Connected`, stopping a machine.
//! - `raw`: the bare engine (tokio-websockets at its defaults).
//! - `raw_yawc`: bare yawc 0.5 (issue 8's candidate engine).
//! - `report`: the JSON lines, keys in the contract's order.
//! - `rss`: the process's resident memory, for `idle`.
//! - `error`: the tool's error type.

mod cli;
mod error;
mod machine;
mod raw;
mod raw_yawc;
mod report;
mod rss;
mod scenario;

use std::{
    error::Error as _,
    io::{self, Write},
    process::ExitCode,
};

use clap::Parser;

use crate::{cli::Args, error::Error};

fn main() -> ExitCode {
    // Bad flags and `--help` end here, with clap's message and exit code.
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // `wsm-bench ... | head`: the reader has what it wanted.
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("wsm-bench: error: {err}");
            // ws-machine's messages include their cause's text: a cause
            // already said is not printed again.
            let mut said = err.to_string();
            let mut source = err.source();
            while let Some(cause) = source {
                let text = cause.to_string();
                if !said.contains(&text) {
                    eprintln!("  caused by: {text}");
                }
                said = text;
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

/// Runs the scenario on a current-thread runtime and prints its JSON line.
fn run(args: Args) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let report = runtime.block_on(scenario::run(args.command))?;
    let mut out = io::stdout().lock();
    writeln!(out, "{report}")
        .and_then(|()| out.flush())
        .map_err(Error::Output)
}
