//! `wsm`: the ws-machine command-line tool.
//!
//! # Layout
//!
//! - `cli`: the flags (clap) and the settings each subcommand derives from
//!   them.
//! - `demo`: `wsm demo`, a machine surviving a server restart.
//! - `echo_server`: `wsm echo-server`, the local echo server.
//! - `output`: timestamped lines.
//! - `error`: the CLI's error type.

mod cli;
mod demo;
mod echo_server;
mod error;
mod output;

use std::{
    error::Error as _,
    io::{self, IsTerminal},
    process::ExitCode,
};

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::{cli::Args, error::Error};

fn main() -> ExitCode {
    // Bad flags and `--help` end here, with clap's message and exit code.
    let args = Args::parse();
    init_logging();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // `wsm demo | head`: the reader has what it wanted.
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("wsm: error: {err}");
            let mut source = err.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Error> {
    // The echo server runs on one thread: it serves benchmarks pinned to one
    // core, where worker threads would only contend for that core.
    let mut builder = match args.command {
        cli::Command::EchoServer(_) => tokio::runtime::Builder::new_current_thread(),
        cli::Command::Demo(_) => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = builder.enable_all().build().map_err(Error::Runtime)?;
    runtime.block_on(async {
        match args.command {
            cli::Command::Demo(args) => demo::run(&args, io::stdout()).await,
            cli::Command::EchoServer(args) => echo_server::run(&args, io::stdout()).await,
        }
    })
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings and errors),
/// in colour only when stderr is a terminal.
fn init_logging() {
    let (filter, bad_filter) = match std::env::var("RUST_LOG") {
        Ok(spec) => match EnvFilter::try_new(&spec) {
            Ok(filter) => (filter, None),
            Err(e) => (EnvFilter::new("warn"), Some((spec, e))),
        },
        Err(_) => (EnvFilter::new("warn"), None),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .init();
    if let Some((spec, e)) = bad_filter {
        eprintln!("wsm: warning: ignoring RUST_LOG={spec:?} ({e}); logging warnings only");
    }
}
