//! The Autobahn|Testsuite client driver: runs every case of a fuzzing
//! server against a machine with permessage-deflate on, each case on a
//! machine of its own that echoes every message back with the same kind,
//! then asks the server to write its reports.
//!
//! `conformance/autobahn.sh` starts the fuzzing server, runs this and
//! summarizes the report. By hand, with a fuzzing server on port 9001:
//!
//! ```text
//! cargo run --release -p ws-machine --example autobahn -- [SERVER] [FIRST[-LAST]]
//! ```
//!
//! `SERVER` defaults to `ws://127.0.0.1:9001`; the optional range runs only
//! those cases (numbered from 1, in the server's order). Exits non-zero if
//! the server cannot be reached or a case does not end within its time.

use std::{fmt, process::ExitCode, time::Duration};

use ws_machine::{Builder, Deflate, Kind, Machine, Message, State};

const DEFAULT_SERVER: &str = "ws://127.0.0.1:9001";
/// The name the reports file the results under.
const AGENT: &str = "ws-machine";
/// Large enough for the largest messages of the 9.* cases (16 MiB).
const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;
/// The longest a case may take, its close handshake included; the slowest
/// (9.* with 16 MiB messages, 12.* and 13.* with 1000 compressed messages)
/// take seconds.
const CASE_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest the server may take to answer `getCaseCount`, or to write
/// its reports for `updateReports`.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(stuck) => {
            eprintln!("autobahn: {stuck} case(s) did not end within {CASE_TIMEOUT:?}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("autobahn: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the cases; the number of cases that timed out.
async fn run() -> Result<usize, DriverError> {
    let mut args = std::env::args().skip(1);
    let server = args.next().unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let server = server.trim_end_matches('/');
    let range = args.next();

    let count = case_count(server).await?;
    let (first, last) = match range.as_deref() {
        Some(range) => parse_range(range, count)?,
        None => (1, count),
    };
    println!("{count} cases on {server}; running {first} to {last} as agent {AGENT}");

    let mut stuck = 0;
    for case in first..=last {
        let url = format!("{server}/runCase?case={case}&agent={AGENT}");
        let started = std::time::Instant::now();
        match tokio::time::timeout(CASE_TIMEOUT, session(&url, Role::Echo)).await {
            Ok(Ok(ended)) => println!(
                "case {case}/{count}: {ended} ({} ms)",
                started.elapsed().as_millis()
            ),
            Ok(Err(e)) => return Err(e),
            // The machine was dropped with the future, which stops it.
            Err(_) => {
                println!("case {case}/{count}: did not end within {CASE_TIMEOUT:?}");
                stuck += 1;
            }
        }
    }

    let url = format!("{server}/updateReports?agent={AGENT}");
    tokio::time::timeout(CONTROL_TIMEOUT, session(&url, Role::Collect))
        .await
        .map_err(|_| {
            DriverError::Server(format!("updateReports: no end within {CONTROL_TIMEOUT:?}"))
        })??;
    println!("reports updated");
    Ok(stuck)
}

/// Asks the server how many cases it has.
async fn case_count(server: &str) -> Result<u32, DriverError> {
    let url = format!("{server}/getCaseCount");
    let ended = tokio::time::timeout(CONTROL_TIMEOUT, session(&url, Role::Collect))
        .await
        .map_err(|_| {
            DriverError::Server(format!(
                "getCaseCount: no answer within {CONTROL_TIMEOUT:?}"
            ))
        })??;
    let Some(message) = ended.received.first() else {
        return Err(DriverError::Server(format!(
            "getCaseCount sent no message ({ended}); is the fuzzing server running on {server}?"
        )));
    };
    let text = message.as_text().ok_or_else(|| {
        DriverError::Server(format!(
            "getCaseCount sent a binary message of {} bytes",
            message.len()
        ))
    })?;
    text.trim()
        .parse()
        .map_err(|e| DriverError::Server(format!("getCaseCount sent {text:?}, not a number: {e}")))
}

/// "N" or "FIRST-LAST", within 1 to `count`.
fn parse_range(range: &str, count: u32) -> Result<(u32, u32), DriverError> {
    let bad = |why: &str| DriverError::Usage(format!("case range {range:?}: {why}"));
    let number = |s: &str| s.trim().parse::<u32>().map_err(|e| bad(&e.to_string()));
    let (first, last) = match range.split_once('-') {
        Some((first, last)) => (number(first)?, number(last)?),
        None => (number(range)?, number(range)?),
    };
    if first == 0 || first > last || last > count {
        return Err(bad(&format!("not within 1-{count}")));
    }
    Ok((first, last))
}

/// What a session does with the messages it receives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Send each back at once, with the same kind (a test case).
    Echo,
    /// Keep them (the case count).
    Collect,
}

/// How one connection went.
struct Ended {
    /// Whether the upgrade succeeded.
    connected: bool,
    /// The compression the server agreed to.
    compression: Option<Deflate>,
    /// The messages kept ([`Role::Collect`]).
    received: Vec<Message>,
    /// How many messages were echoed.
    echoed: usize,
    /// Why the connection ended, as the machine's last `Disconnected` said.
    why: Option<ws_machine::Error>,
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.connected {
            f.write_str("never connected")?;
        } else {
            let compression = match &self.compression {
                Some(agreed) => agreed.to_string(),
                None => "no compression".to_owned(),
            };
            write!(f, "{compression}, {} echoed", self.echoed)?;
        }
        match &self.why {
            Some(why) => write!(f, "; ended: {why}"),
            None => f.write_str("; ended"),
        }
    }
}

/// One connection to `url` on a machine of its own that does not reconnect,
/// until the machine stops (the server closed, or the connection failed).
async fn session(url: &str, role: Role) -> Result<Ended, DriverError> {
    let mut machine = builder(url).spawn().map_err(DriverError::Machine)?;
    let mut ended = Ended {
        connected: false,
        compression: None,
        received: Vec::new(),
        echoed: 0,
        why: None,
    };
    let (mut status_open, mut input_open) = (true, true);
    while status_open || input_open {
        tokio::select! {
            status = machine.status.recv(), if status_open => match status {
                Some(status) => match status.state {
                    State::Connected => {
                        ended.connected = true;
                        ended.compression = status.compression;
                    }
                    State::Disconnected => ended.why = status.error,
                    _ => {}
                },
                None => status_open = false,
            },
            message = machine.input.recv(), if input_open => match message {
                Some(message) if role == Role::Echo => {
                    let echo = echo_of(message)?;
                    // An error means the machine has stopped (the server
                    // closed): the echo has nowhere to go.
                    if machine.output.send(echo).await.is_ok() {
                        ended.echoed += 1;
                    }
                }
                Some(message) => ended.received.push(message),
                None => input_open = false,
            },
        }
    }
    Ok(ended)
}

/// The machine for one connection.
fn builder(url: &str) -> Builder {
    Machine::builder(url)
        .compression(Deflate::new())
        .max_message_size(MAX_MESSAGE_SIZE)
        // One connection per case: the server decides when it ends.
        .reconnect(false)
        // No pings of our own: the cases expect only the echoes.
        .ping_interval(Duration::MAX)
        // 1000 messages of up to 16 MiB may be in flight at once.
        .write_timeout(Duration::from_secs(60))
        .close_timeout(Duration::from_secs(5))
}

/// `message`, to be sent back with its kind.
fn echo_of(message: Message) -> Result<Message, DriverError> {
    Ok(match message.kind() {
        Kind::Text => match message.as_text() {
            Some(text) => Message::text(text),
            None => {
                return Err(DriverError::Invalid(
                    "the machine delivered a text message that is not UTF-8",
                ));
            }
        },
        Kind::Binary | Kind::Unspecified => Message::binary(message.into_payload()),
    })
}

#[derive(Debug)]
enum DriverError {
    Usage(String),
    Server(String),
    Machine(ws_machine::Error),
    Invalid(&'static str),
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(e) => write!(f, "usage: {e}"),
            Self::Server(e) => write!(f, "fuzzing server: {e}"),
            Self::Machine(e) => write!(f, "machine: {e}"),
            Self::Invalid(e) => f.write_str(e),
        }
    }
}
