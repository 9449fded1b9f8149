//! `wsm`: the ws-machine command-line tool.
//!
//! # Layout
//!
//! - `cli`: the subcommands and the flags of `demo` and `echo-server`.
//! - `app`: runs a subcommand, prints its error, picks the exit status.
//! - `connect`: `wsm connect`, the resilient client (its own modules).
//! - `demo`: `wsm demo`, a machine surviving a server restart.
//! - `echo_server`: `wsm echo-server`, the local echo server.
//! - `fault_proxy`: `wsm fault-proxy`, the fault proxy's Toxiproxy-compatible
//!   API.
//! - `output`: the demo's timestamped lines.
//! - `exit`: the exit codes and what each means.
//! - `error`: the CLI's error type and its one-line report.
//! - `logging`: `RUST_LOG` to stderr.

mod app;
mod cli;
mod connect;
mod demo;
mod echo_server;
mod error;
mod exit;
mod fault_proxy;
mod logging;
mod output;

use std::process::ExitCode;

fn main() -> ExitCode {
    app::run(cli::parse()).into()
}
